"""metrics.json: what the harness writes reads back equal (format 4, with and without timings),
a format-3 file still reads (without timings), and another format or damaged timings are
refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latentbench.reports.schema import (
    METRICS_FORMAT,
    EvalTimings,
    MetricsDocument,
    SchemaError,
    metrics_document,
    parse_metrics,
)

TIMINGS = EvalTimings(total=2.5, metrics={"recon_mse": 0.25, "fid[lenet-mnist]": 0.5},
                      passes={"test_pass": 1.0, "feature_set[lenet-mnist, samples]": 0.5})
DOCUMENT = MetricsDocument(values={"recon_mse": 0.01, "fid[lenet-mnist]": 40.0},
                           samples={"recon_mse": 64, "fid[lenet-mnist]": 64},
                           details={"recon_mse": {"std": 0.001}}, errors={"kid": "no CUDA"},
                           std_errors={"recon_mse": 0.002}, caveats={"recon_mse": "sees x"},
                           timings=TIMINGS)


def through_json(document: MetricsDocument) -> MetricsDocument:
    """Written and read back as the run folder does (JSON text in between)."""
    return parse_metrics(json.loads(json.dumps(metrics_document(document), sort_keys=True)))


@pytest.mark.parametrize("document", [DOCUMENT, MetricsDocument(values={"a": 1.0},
                                                                samples={"a": 2})],
                         ids=["with timings", "without timings"])
def test_a_document_reads_back_equal(document: MetricsDocument) -> None:
    assert through_json(document) == document
    written = metrics_document(document)
    assert written["format"] == METRICS_FORMAT == 4
    assert set(written) == {"format", "values", "samples", "details", "errors", "std_errors",
                            "caveats", "timings"}


seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
names = st.text(min_size=1, max_size=12)


@given(total=seconds, metrics=st.dictionaries(names, seconds, max_size=5),
       passes=st.dictionaries(names, seconds, max_size=5))
def test_any_timings_read_back_equal(total: float, metrics: dict[str, float],
                                     passes: dict[str, float]) -> None:
    document = MetricsDocument(timings=EvalTimings(total, metrics, passes))
    assert through_json(document) == document


def test_a_format_3_file_reads_without_timings() -> None:
    old = {key: value for key, value in metrics_document(DOCUMENT).items() if key != "timings"}
    old["format"] = 3
    parsed = parse_metrics(old)
    assert parsed.timings is None
    assert parsed == MetricsDocument(**{**DOCUMENT.__dict__, "timings": None})


@pytest.mark.parametrize("format_", [2, 5, "4", None])
def test_another_format_is_refused(format_: object) -> None:
    document = {**metrics_document(DOCUMENT), "format": format_}
    with pytest.raises(SchemaError, match=f"metrics format {format_}, this version reads 3 or 4"):
        parse_metrics(document)


@pytest.mark.parametrize("timings, part", [
    ({"metrics": {}, "passes": {}}, "'total'"),
    ({"total": -1.0}, "'total'"),
    ({"total": True}, "'total'"),
    ({"total": 1.0, "metrics": {"fid": "slow"}}, "timings.metrics"),
    ({"total": 1.0, "passes": [1.0]}, "timings.passes"),
    ([1.0], "'total'"),
])
def test_damaged_timings_are_refused(timings: object, part: str) -> None:
    document = {**metrics_document(DOCUMENT), "timings": timings}
    with pytest.raises(SchemaError, match=part):
        parse_metrics(document)


def test_slowest_lists_metrics_and_passes_slowest_first() -> None:
    assert TIMINGS.slowest() == [
        ("pass", "test_pass", 1.0),
        ("pass", "feature_set[lenet-mnist, samples]", 0.5),  # a tie in name order
        ("metric", "fid[lenet-mnist]", 0.5),
        ("metric", "recon_mse", 0.25),
    ]
