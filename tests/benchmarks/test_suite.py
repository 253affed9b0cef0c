"""Suite TOML: shipped suites load, grids expand, bad input gets a one-line error naming it."""

import datetime
import tomllib

import pytest

from latentbench.benchmarks.suite import expand_suite, load_suite, shipped_suites
from latentbench.models.registry import InputError


def test_shipped_suites_load_and_expand():
    assert {"smoke", "quick"} <= set(shipped_suites())
    quick = load_suite("quick")
    assert quick.name == "quick" and len(quick.runs) == 6
    labels = {(r.model.name, r.model.beta, r.model.decoder) for r in quick.runs}
    assert labels == {(m, b, d) for m, b in [("ae", None), ("vae", 1.0), ("vae", 4.0)]
                      for d in ["transposed", "unpool-nearest"]}
    assert all(r.data.dataset == "mnist5k" for r in quick.runs)


def test_grid_is_the_product_of_its_axes_and_run_ids_are_stable():
    suite = expand_suite(tomllib.loads("""
        [model]
        name = "vae"
        [grid]
        "model.beta" = [0.5, 1, 2]
        seed = [0, 1]
    """))
    assert [(r.model.beta, r.seed) for r in suite.runs] == [
        (b, s) for b in (0.5, 1.0, 2.0) for s in (0, 1)]
    assert len({r.run_id for r in suite.runs}) == 6
    again = expand_suite({"model": {"name": "vae", "beta": 2.0}, "seed": 1})
    assert again.runs[0].run_id == suite.runs[5].run_id  # same config, same id


def test_duplicate_grid_points_run_once():
    suite = expand_suite({"grid": {"seed": [3, 3]}})
    assert len(suite.runs) == 1


@pytest.mark.parametrize("table, field", [
    ({"modle": {}}, "modle"),
    ({"model": {"latnet_dim": 3}}, "model.latnet_dim"),
    ({"model": {"latent_dim": "big"}}, "model.latent_dim"),
    ({"model": {"latent_dim": True}}, "model.latent_dim"),
    ({"train": {"epochs": -1}}, "train.epochs"),
    ({"train": {"lr": -1.0}}, "train.lr"),
    ({"data": {"n_train": 0}}, "data.n_train"),
    ({"eval": {"metrics": "recon_mse"}}, "eval.metrics"),
    ({"grid": {"model.beta": []}}, "grid.model.beta"),
    ({"grid": {"model.beta.x": [1]}}, "grid.model.beta.x"),
    ({"grid": {"optimizer": [1]}}, "grid.optimizer"),
    ({"grid": {"model": [1]}}, "grid.model"),
    ({"suite": {"nmae": "x"}}, "suite.nmae"),
    ({"seed": "zero"}, "seed"),
    ({"seed": -1}, "seed"),
    ({"train": {"lr": float("nan")}}, "train.lr"),
    ({"model": {"beta": float("inf")}}, "model.beta"),
    ({"model": {"options": {"when": datetime.date(2024, 1, 1)}}}, "model.options"),
    ({"model": 3}, "model"),
    ({"suite": "x"}, "suite"),
    ({"grid": [1]}, "grid"),
    ({"grid": {"model.bta": [1.0]}}, "grid.model.bta"),
    *[({"suite": {"name": name}}, "suite.name")
      for name in ("../../etc", "/abs", "a/b", "a\\b", ".hidden", "..", "", "a\x00b", 3)],
])
def test_bad_suites_name_the_field(table, field):
    with pytest.raises(InputError) as err:
        expand_suite(table)
    message = str(err.value)
    assert message.startswith(field + ":") and "\n" not in message


def test_unknown_suite_and_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"suite: unknown suite 'quik' \(did you mean 'quick'\?\);"
                                         " choose one of: .*quick"):
        load_suite("quik")
    with pytest.raises(InputError, match="no such file"):
        load_suite(str(tmp_path / "nope.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_suite(str(broken))


@pytest.mark.parametrize("key, values, read", [
    ("data.dataset", ["mnist5k", "lines"], lambda r: r.data.dataset),
    ("data.n_train", [64, 128], lambda r: r.data.n_train),
    ("model.name", ["ae", "vae"], lambda r: r.model.name),
    ("model.decoder", ["transposed", "unpool-nearest"], lambda r: r.model.decoder),
    ("model.beta", [0.5, 4.0], lambda r: r.model.beta),
    ("model.latent_dim", [2, 16], lambda r: r.model.latent_dim),
    ("train.epochs", [1, 10], lambda r: r.train.epochs),
    ("train.lr", [1e-3, 1e-4], lambda r: r.train.lr),
    ("eval.samples", [4, 8], lambda r: r.eval.samples),
    ("seed", [0, 7], lambda r: r.seed),
])
def test_any_config_field_is_a_grid_axis_with_its_own_run_ids(key, values, read):
    suite = expand_suite({"model": {"name": "vae"}, "grid": {key: values}})
    assert [read(r) for r in suite.runs] == values
    assert len({r.run_id for r in suite.runs}) == len(values)


def test_grid_points_that_resolve_to_the_same_config_run_once():
    # 1 and 1.0 are the same β once parsed; a section axis and a dotted axis that set the same
    # value make the same config; the checkpoint interval is not part of what is trained.
    suite = expand_suite({"grid": {
        "model": [{"name": "vae", "beta": 2.0}, {"name": "vae"}],
        "model.beta": [2, 2.0],
        "train.checkpoint_seconds": [0, 30],
    }})
    assert len(suite.runs) == 1 and suite.runs[0].model.beta == 2.0
    assert len({r.run_id for r in load_suite("beta-sweep").runs}) == 18


@pytest.mark.parametrize("name", sorted(shipped_suites()))
def test_every_shipped_suite_loads(name):
    # What the default run keeps of the shipped suites: their runs end to end are slow-marked.
    suite = load_suite(name)
    assert suite.name and suite.runs and len({r.run_id for r in suite.runs}) == len(suite.runs)


def test_new_shipped_suites():
    sweep = load_suite("beta-sweep")
    assert {(r.model.beta, r.seed) for r in sweep.runs} == {
        (b, s) for b in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0) for s in (0, 1, 2)}
    assert {(r.model.name, r.model.decoder, r.model.latent_dim, r.data.dataset)
            for r in sweep.runs} == {("vae", "transposed", 16, "mnist5k")}
    latent2d = load_suite("latent2d")
    assert [(r.model.name, r.model.beta, r.model.latent_dim) for r in latent2d.runs] == [
        ("ae", None, 2), ("vae", 1.0, 2)]
