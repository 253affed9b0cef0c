"""The regression gate on results.csv and bench JSON files: improved, unchanged, regressed and
broken inputs, through :func:`run_compare` and through the CLI for the exit codes."""

import copy
import json
import math
from pathlib import Path

import pytest

from latentbench.benchmarks.cli import main
from latentbench.benchmarks.config import RunConfig
from latentbench.benchmarks.results import write_results as harness_write_results
from latentbench.benchmarks.run import RunOutcome
from latentbench.models import ModelSpec
from latentbench.reports.compare import (
    CompareInputError,
    Tolerance,
    load_measurements,
    load_tolerances,
    run_compare,
)

#: (model, decoder, beta) → metric → values over seeds 0, 1, 2.
BASELINE = {
    ("ae", "transposed", math.nan): {"recon_mse": [0.010, 0.011, 0.012],
                                     "psnr": [20.0, 20.2, 20.4],
                                     "fid[lenet-mnist]": [40.0, 41.0, 42.0],
                                     "data_copying": [0.5, -0.5, 0.0]},
    ("vae", "unpool-nearest", 4.0): {"recon_mse": [0.020, 0.020, 0.020],
                                     "psnr": [18.0, 18.0, 18.0],
                                     "fid[lenet-mnist]": [30.0, 30.0, 30.0],
                                     "data_copying": [1.0, 1.0, 1.0]},
}
AE, VAE = "mnist5k · ae · transposed · z=16", "mnist5k · vae · unpool-nearest · β=4 · z=16"


def write_results(path: Path, values=BASELINE, failed=()) -> Path:
    """A results.csv written by the harness's own writer; ``failed`` holds (model, decoder,
    seed) runs that failed and so have one row without a metric."""
    runs = []
    for (model, decoder, beta), metrics in values.items():
        for seed in range(3):
            config = RunConfig(suite="s", model=ModelSpec(
                name=model, decoder=decoder, beta=None if math.isnan(beta) else beta), seed=seed)
            if (model, decoder, seed) in failed:
                runs.append((config, RunOutcome(config.run_id, "failed", "non-finite loss")))
                continue
            runs.append((config, RunOutcome(config.run_id, "done", metrics={
                metric: series[seed] for metric, series in metrics.items()})))
    harness_write_results(path, runs)
    return path


def changed(config, metric, factor=None, add=None):
    """BASELINE with one metric of one configuration scaled or shifted on every seed."""
    values = copy.deepcopy(BASELINE)
    series = values[config][metric]
    values[config][metric] = [v * factor if factor is not None else v + add for v in series]
    return values


AE_KEY, VAE_KEY = list(BASELINE)


@pytest.fixture
def baseline(tmp_path):
    return write_results(tmp_path / "baseline.csv")


def gate(baseline, current, *extra):
    """Exit code of ``latentbench compare`` through the CLI's main()."""
    return main(["compare", str(baseline), str(current), *extra])


def rows_of(capsys):
    out = capsys.readouterr().out
    return out, [line for line in out.splitlines() if line.startswith("mnist5k")]


def test_unchanged_results_pass_with_every_row_ok(baseline, tmp_path, capsys):
    current = write_results(tmp_path / "current.csv")
    assert gate(baseline, current) == 0
    out, rows = rows_of(capsys)
    assert len(rows) == 8 and "0 regression(s) in 8 comparison(s)" in out
    # data_copying has a target (0), so it is compared like every other metric.
    assert sum(" ok" in row for row in rows) == 8


def test_improvements_pass_and_say_so(baseline, tmp_path, capsys):
    values = changed(VAE_KEY, "recon_mse", factor=0.5)
    values[VAE_KEY]["psnr"] = [25.0] * 3
    assert gate(baseline, write_results(tmp_path / "better.csv", values)) == 0
    _, rows = rows_of(capsys)
    improved = [row for row in rows if row.rstrip().endswith("improved")]
    assert len(improved) == 2 and all(VAE in row for row in improved)


def test_a_regression_beyond_the_seed_noise_fails_and_shows_by_how_much(baseline, tmp_path,
                                                                        capsys):
    # The VAE's seeds agree exactly (std 0): any worse FID fails.
    worse = write_results(tmp_path / "worse.csv", changed(VAE_KEY, "fid[lenet-mnist]", add=3))
    assert gate(baseline, worse) == 1
    out, rows = rows_of(capsys)
    (failed,) = [row for row in rows if "REGRESSED" in row]
    assert VAE in failed and "fid[lenet-mnist]" in failed
    assert "+3 (+10.0%)" in failed
    assert rows[0] == failed  # failures first
    assert "1 regression(s)" in out and f"{VAE} fid[lenet-mnist]" in out.splitlines()[-1]


def test_a_change_within_k_seed_stds_passes_and_beyond_it_fails(baseline, tmp_path):
    # The AE's recon_mse has std 0.001 over seeds: allowed = 3 × 0.001 with --k 3.
    within = write_results(tmp_path / "within.csv", changed(AE_KEY, "recon_mse", add=0.0025))
    beyond = write_results(tmp_path / "beyond.csv", changed(AE_KEY, "recon_mse", add=0.0035))
    assert gate(baseline, within) == 0
    assert gate(baseline, beyond) == 1
    assert gate(baseline, within, "--k", "1") == 1


def test_the_direction_decides_what_worse_means(baseline, tmp_path):
    higher_psnr = write_results(tmp_path / "a.csv", changed(VAE_KEY, "psnr", add=1.0))
    lower_psnr = write_results(tmp_path / "b.csv", changed(VAE_KEY, "psnr", add=-1.0))
    assert gate(baseline, higher_psnr) == 0
    assert gate(baseline, lower_psnr) == 1


def test_a_target_metric_gates_on_its_distance_to_the_target(baseline, tmp_path, capsys):
    # data_copying is best at 0: the VAE's 1.0 moving to -0.5 is closer (fine, whatever the
    # sign), moving to 101 is far off (a regression).
    closer = write_results(tmp_path / "closer.csv", changed(VAE_KEY, "data_copying", add=-1.5))
    assert gate(baseline, closer) == 0
    capsys.readouterr()
    moved = write_results(tmp_path / "moved.csv", changed(VAE_KEY, "data_copying", add=100.0))
    assert gate(baseline, moved) == 1
    _, rows = rows_of(capsys)
    (row,) = [r for r in rows if VAE in r and "data_copying" in r]
    assert "REGRESSED" in row and "+100" in row


def test_a_metric_without_direction_is_reported_and_never_gates(bench_json, tmp_path, capsys):
    def undirected(document):
        document["directions"]["params"] = None

    def undirected_and_moved(document):
        undirected(document)
        document["configs"][0]["metrics"]["params"] *= 10
    base = bench_variant(bench_json, tmp_path / "base.json", undirected)
    moved = bench_variant(bench_json, tmp_path / "undirected.json", undirected_and_moved)
    capsys.readouterr()
    assert gate(base, moved) == 0
    lines = capsys.readouterr().out.splitlines()
    (row,) = [line for line in lines if " params " in line and line.startswith("vae/")]
    assert "no direction" in row and "+900.0%" in row


def test_a_failed_run_is_a_regression(baseline, tmp_path, capsys):
    one_failed = write_results(tmp_path / "one.csv", failed={("vae", "unpool-nearest", 2)})
    assert gate(baseline, one_failed) == 1
    _, rows = rows_of(capsys)
    assert sum("FEWER RUNS (2 OF 3)" in row for row in rows) == 4
    all_failed = write_results(tmp_path / "all.csv", failed={
        ("vae", "unpool-nearest", seed) for seed in range(3)})
    assert gate(baseline, all_failed) == 1
    _, rows = rows_of(capsys)
    assert sum("MISSING" in row for row in rows) == 4


def test_new_metrics_and_configurations_are_reported_not_gated(baseline, tmp_path, capsys):
    values = copy.deepcopy(BASELINE)
    values[AE_KEY]["ssim"] = [0.9, 0.9, 0.9]
    values[("vae", "transposed", 1.0)] = {"recon_mse": [0.1, 0.1, 0.1]}
    assert gate(baseline, write_results(tmp_path / "more.csv", values)) == 0
    _, rows = rows_of(capsys)
    assert sum(row.rstrip().endswith("new") for row in rows) == 2


def test_tolerances_file_with_exact_keys_globs_and_default(baseline, tmp_path):
    worse = write_results(tmp_path / "worse.csv", changed(VAE_KEY, "fid[lenet-mnist]", add=3))
    loose = tmp_path / "loose.toml"
    loose.write_text('[default]\nrel = 0.0\n\n[tolerances."fid[*]"]\nabs = 5.0\n')
    assert gate(baseline, worse, "--tolerances", str(loose)) == 0
    exact_wins = tmp_path / "exact.toml"
    exact_wins.write_text('[tolerances."fid[*]"]\nabs = 5.0\n\n'
                          '[tolerances."fid[lenet-mnist]"]\nrel = 0.05\n')
    assert gate(baseline, worse, "--tolerances", str(exact_wins)) == 1
    default = tmp_path / "default.toml"
    default.write_text("[default]\nrel = 0.2\n")
    assert gate(baseline, worse, "--tolerances", str(default)) == 0
    tolerances = load_tolerances(loose)
    assert tolerances.for_metric("fid[inception]") == Tolerance(abs=5.0)
    assert tolerances.for_metric("fidelity") == Tolerance()  # brackets are literal
    assert tolerances.for_metric("train_img_s") == Tolerance(rel=0.10)  # built-in for timings


@pytest.mark.parametrize("text, problem", [
    ("[defaults]\nrel = 0.1\n", "unknown key 'defaults'"),
    ('[tolerances."psnr"]\nrelative = 0.1\n', "relative: unknown key"),
    ("[default]\nabs = -1\n", "abs: must be a number >= 0"),
    ("[default]\nrel = true\n", "rel: must be a number >= 0"),
    ("[default\n", "not a readable TOML file"),
])
def test_a_bad_tolerances_file_is_exit_code_2(baseline, tmp_path, capsys, text, problem):
    path = tmp_path / "tolerances.toml"
    path.write_text(text)
    assert gate(baseline, baseline, "--tolerances", str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and problem in err


def test_broken_inputs_are_one_line_and_exit_code_2(baseline, tmp_path, capsys):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("just some notes\nand more\n")
    other_json = tmp_path / "other.json"
    other_json.write_text('{"hello": 1}')
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    unrelated = write_results(tmp_path / "unrelated.csv",
                              {("dcgan", "transposed", math.nan): {"recon_mse": [1, 1, 1]}})
    cases = [
        (tmp_path / "missing.csv", baseline, "BASELINE", "no such file"),
        (baseline, tmp_path / "missing.csv", "CURRENT", "no such file"),
        (baseline, text_file, "CURRENT", "not a results.csv or bench JSON"),
        (baseline, other_json, "CURRENT", "not a latentbench bench file"),
        (baseline, bad_json, "CURRENT", "invalid JSON"),
        (baseline, unrelated, "CURRENT", "no configuration in common"),
    ]
    for base, current, role, problem in cases:
        assert gate(base, current) == 2, problem
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith(f"latentbench: error: {role} ") and problem in err, err
    assert gate(baseline, baseline, "--k", "-1") == 2


def test_update_baseline_prints_then_replaces_the_baseline(baseline, tmp_path, capsys):
    worse = write_results(tmp_path / "worse.csv", changed(VAE_KEY, "fid[lenet-mnist]", add=3))
    assert gate(baseline, worse, "--update-baseline") == 0
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "updated" in out
    assert baseline.read_bytes() == worse.read_bytes()
    assert not list(tmp_path.glob(".baseline.csv.*"))  # no temporary file left behind
    assert gate(baseline, worse) == 0


# --- bench JSON --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory):
    """A real ``latentbench bench --json`` file of two tiny models (one without an encoder)."""
    path = tmp_path_factory.mktemp("bench") / "baseline.json"
    tiny = ["--latent-dim", "4", "--width", "4", "--hidden", "16", "--batch-size", "4",
            "--repeats", "1", "--warmup", "1", "--dataset", "lines"]
    documents = []
    for model in ("vae", "dcgan"):
        assert main(["bench", "--model", model, *tiny, "--json", str(path)]) == 0
        documents.append(json.loads(path.read_text()))
    documents[0]["configs"] += documents[1]["configs"]
    documents[0]["directions"].update(documents[1]["directions"])
    path.write_text(json.dumps(documents[0]))
    return path


def bench_variant(source: Path, path: Path, edit) -> Path:
    document = json.loads(source.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    return path


def scale(metric, factor, config=0):
    def edit(document):
        document["configs"][config]["metrics"][metric] *= factor
    return edit


def test_bench_files_gate_on_their_own_directions(bench_json, tmp_path, capsys):
    measurements = load_measurements(bench_json, "BASELINE")
    assert measurements.kind == "bench JSON" and len(measurements.configs) == 2
    assert gate(bench_json, bench_json) == 0
    faster = bench_variant(bench_json, tmp_path / "faster.json", scale("train_img_s", 2.0))
    assert gate(bench_json, faster) == 0
    noise = bench_variant(bench_json, tmp_path / "noise.json", scale("train_img_s", 0.95))
    assert gate(bench_json, noise) == 0  # within the built-in 10% for timings
    slower = bench_variant(bench_json, tmp_path / "slower.json", scale("train_img_s", 0.5))
    assert gate(bench_json, slower) == 1
    capsys.readouterr()
    later = bench_variant(bench_json, tmp_path / "later.json", scale("latency_ms", 2.0, 1))
    assert gate(bench_json, later) == 1
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "REGRESSED" in line]
    assert row.startswith("dcgan/") and "latency_ms" in row and "(+100.0%)" in row


def test_a_bench_measurement_that_disappeared_fails(bench_json, tmp_path):
    def drop(document):
        del document["configs"][0]["metrics"]["encode_img_s"]
    assert gate(bench_json, bench_variant(bench_json, tmp_path / "drop.json", drop)) == 1


def test_bench_settings_that_differ_are_warned_about(bench_json, tmp_path, capsys):
    def other_batch(document):
        document["settings"]["batch_size"] = [64]
    assert gate(bench_json, bench_variant(bench_json, tmp_path / "b.json", other_batch)) == 0
    assert "warning: settings differ: batch_size [4] in BASELINE, [64] in CURRENT" in (
        capsys.readouterr().out)


def test_a_bench_file_against_a_results_csv_is_exit_code_2(bench_json, baseline, capsys):
    assert gate(baseline, bench_json) == 2
    err = capsys.readouterr().err
    assert "CURRENT" in err and "bench JSON" in err and "results.csv" in err
    with pytest.raises(CompareInputError, match="compare like with like"):
        run_compare(bench_json, baseline, echo=lambda _: None)


def _one_seed(path: Path, recon: float, checker: float, se: float) -> Path:
    config = RunConfig(suite="s", model=ModelSpec(name="vae", beta=1.0))
    harness_write_results(path, [(config, RunOutcome(
        config.run_id, "done", metrics={"recon_mse": recon, "checkerboard": checker},
        std_errors={"recon_mse": se, "checkerboard": se}))])
    return path


def test_uncertainty_and_targets_set_what_regresses(tmp_path):
    base = _one_seed(tmp_path / "base.csv", 0.020, 1.05, 0.001)
    # recon_mse 0.020 → 0.023 is 3 s.e. of one value; the combined s.e. is √2 × 0.001, so it
    # is within k = 3 of them (0.0042) and not a regression; checkerboard 1.05 → 0.97 is closer
    # to its target 1 (better), though lower.
    assert gate(base, _one_seed(tmp_path / "noise.csv", 0.023, 0.97, 0.001)) == 0
    # Twice as far off: 0.020 → 0.026 regresses; so does checkerboard moving away from 1.
    assert gate(base, _one_seed(tmp_path / "worse.csv", 0.026, 1.05, 0.001)) == 1
    assert gate(base, _one_seed(tmp_path / "off.csv", 0.020, 1.30, 0.001)) == 1
    # Without standard errors the same 0.003 is a regression at zero tolerance.
    assert gate(_one_seed(tmp_path / "b0.csv", 0.020, 1.0, 0.0),
                _one_seed(tmp_path / "c0.csv", 0.023, 1.0, 0.0)) == 1
