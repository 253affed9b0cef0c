"""Fuzzing the suite parser: whatever a suite file holds, loading it either gives a valid
:class:`Suite` or raises :class:`InputError` (exit code 2, one line) — never a TypeError, KeyError
or ValueError that would reach the user as a traceback."""

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentbench.benchmarks.config import SECTIONS
from latentbench.benchmarks.suite import Suite, expand_suite, load_suite
from latentbench.models.registry import InputError

# Deterministic and bounded so that CI is stable and fast: the same 200 examples every run.
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

FIELDS = sorted({f"{section}.{name}" for section, cls in SECTIONS.items()
                 for name in cls.__dataclass_fields__} | {"seed", "suite.name", "grid.x"})

# Every kind of value TOML can hold, the edges of its numbers included.
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 2**63 - 1, 3, 4, 30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["vae", "ae", "gan", "transposed", "unpool-max", "mnist5k", "lines",
                     "recon_mse", "fid[lenet-mnist]", "../..", "/abs", "a\x00b", ".hidden"]),
    st.datetimes(), st.dates(), st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def section(names: list[str]) -> st.SearchStrategy:
    """A table with keys mostly from the real schema, so that the parser gets past "unknown key"
    and its value checks are exercised too; sometimes not a table at all."""
    keys = st.one_of(st.sampled_from(names), st.sampled_from(names), st.text(max_size=8))
    return st.one_of(st.dictionaries(keys, values, max_size=4),
                     st.dictionaries(keys, values, max_size=4), values)


grid = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.sampled_from(sorted(SECTIONS)),
                                 st.text(max_size=8)),
                       st.one_of(st.lists(values, min_size=1, max_size=3), values), max_size=2)
tables = st.one_of(
    st.fixed_dictionaries({}, optional={
        **{name: section(list(cls.__dataclass_fields__)) for name, cls in SECTIONS.items()},
        "suite": section(["name", "description"]),
        "grid": st.one_of(grid, grid, values),
        "seed": values,
    }),
    st.dictionaries(st.text(max_size=8), values, max_size=3),  # unknown sections
)


def _expands_or_input_error(load) -> None:
    try:
        suite = load()
    except InputError:
        return  # the CLI prints it on one line, control characters escaped
    assert isinstance(suite, Suite) and suite.runs


@FUZZ
@given(tables)
def test_any_table_expands_or_raises_input_error(table):
    _expands_or_input_error(lambda: expand_suite(table))


def _toml_value(value) -> str:
    """A TOML literal of ``value`` (None has none: an empty array stands in)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "[]"
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                         for c in value) + '"'


def _toml_key(key: str) -> str:
    return _toml_value(key)


@FUZZ
@given(st.one_of(
    tables.map(lambda t: "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in t.items())),
    st.text(max_size=200),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
))
def test_any_file_loads_or_raises_input_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "suite.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _expands_or_input_error(lambda: load_suite(str(path)))


def test_undecodable_file_is_an_input_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[suite]\nname = "caf\xe9"\n')
    try:
        load_suite(str(path))
    except InputError as err:
        assert str(err).startswith(f"{path}: not a readable UTF-8 text file")
    else:
        raise AssertionError("a file that is not UTF-8 must be an InputError")
