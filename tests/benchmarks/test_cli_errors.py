"""Every kind of unusable input: exit code 2, one line on stderr that names the file and the
field, no traceback, and nothing computed.

Each case runs :func:`~latentbench.benchmarks.cli.main`, the console script's entry point, in
this process (in its own folder); each command's cases also go once through the real
``latentbench`` script (:data:`THROUGH_THE_SCRIPT`), where the exit status, the stderr of the
whole process and the absence of a traceback are those a user sees. Not every case goes through
the script: ``run`` imports torch before it reads the suite, so each process costs ~4 s of CPU
in start-up alone, ~2 minutes for all the cases on a 2-core runner.
"""

import json
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from latentbench.benchmarks.cli import main
from latentbench.benchmarks.run import cached_dataset
from latentbench.benchmarks.suite import load_suite

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")

SUITE = """\
[suite]
name = "tiny"

[data]
dataset = "mnist5k"
n_train = 64
n_test = 32

[model]
name = "vae"
decoder = "transposed"
latent_dim = 4
beta = 1.0

[train]
epochs = 1
batch_size = 32

[eval]
metrics = ["recon_mse"]
"""


def suite_with(*edits: tuple[str, str]) -> Callable[[Path], list[str]]:
    """A case: ``run`` of SUITE with ``(old, new)`` text replacements, into ``tmp/out``."""

    def setup(tmp: Path) -> list[str]:
        text = SUITE
        for old, new in edits:
            assert old in text, old
            text = text.replace(old, new)
        (tmp / "my.toml").write_text(text, encoding="utf-8")
        return ["run", "my.toml", "--out", "out", "--device", "cpu", "--no-progress"]

    return setup


def write_idx(path: Path, values: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes (the MNIST format)."""
    header = struct.pack(">HBB", 0, 8, values.ndim) + b"".join(
        struct.pack(">I", n) for n in values.shape)
    path.write_bytes(header + values.astype(np.uint8).tobytes())


def mnist_root(size: int = 28, damage: Callable[[Path], None] | None = None):
    """A case: ``run`` on ``dataset = "mnist"`` from a fake root of ``size``² images, with
    ``damage`` done to its training images file."""

    def setup(tmp: Path) -> list[str]:
        raw = tmp / "root" / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for split in ("train", "t10k"):
            write_idx(raw / f"{split}-images-idx3-ubyte", np.zeros((8, size, size)))
            write_idx(raw / f"{split}-labels-idx1-ubyte", np.zeros(8))
        if damage:
            damage(raw / "train-images-idx3-ubyte")
        return suite_with(('dataset = "mnist5k"', 'dataset = "mnist"\nroot = "root"'))(tmp)

    return setup


def finished_run_with_metrics(text: str):
    """A case: ``run`` into an --out whose (finished) run left ``metrics.json`` = ``text``."""

    def setup(tmp: Path) -> list[str]:
        args = suite_with()(tmp)
        run_dir = tmp / "out" / "runs" / load_suite(str(tmp / "my.toml")).runs[0].run_id
        run_dir.mkdir(parents=True)
        (run_dir / "status").write_text("done\n")
        (run_dir / "metrics.json").write_text(text)
        return args

    return setup


def results_csv(text: str):
    """A case: ``report`` of a folder whose results.csv holds ``text``."""

    def setup(tmp: Path) -> list[str]:
        (tmp / "out").mkdir()
        (tmp / "out" / "results.csv").write_text(text)
        return ["report", "out"]

    return setup


def compare_baseline(text: str):
    """A case: ``compare`` with a baseline file holding ``text`` (current: a real bench JSON)."""

    def setup(tmp: Path) -> list[str]:
        (tmp / "base.json").write_text(text)
        (tmp / "current.json").write_text(json.dumps(
            {"format": 1, "configs": [{"config": "ae", "metrics": {"train_img_s": 1.0}}]}))
        return ["compare", "base.json", "current.json"]

    return setup


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


# name → (setup in a fresh folder → CLI arguments, regex the one stderr line must match).
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "malformed TOML": (suite_with(("[model]", "[model")),
                       r"my\.toml: not valid TOML: .*\(at line 9, column 7\)"),
    "unknown section": (suite_with(("[train]", "[trian]")),
                        r"my\.toml: trian: unknown section; allowed: .*train"),
    "unknown key": (suite_with(("batch_size", "batch_sise")),
                    r"my\.toml: train\.batch_sise: unknown key; allowed: .*batch_size"),
    "unknown model": (suite_with(('name = "vae"', 'name = "vea"')),
                      r"my\.toml: model\.name: unknown model 'vea' \(did you mean 'vae'\?\)"),
    "unknown decoder": (suite_with(('"transposed"', '"transposd"')),
                        r"my\.toml: model\.decoder: unknown decoder 'transposd' "
                        r"\(did you mean 'transposed'\?\); choose one of: "),
    "unknown metric": (suite_with(('"recon_mse"', '"recon_mes"')),
                       r"my\.toml: eval\.metrics: unknown metric 'recon_mes' \(did you mean "
                       r"'recon_mse'"),
    "unknown dataset": (suite_with(('"mnist5k"', '"mnist5"')),
                        r"my\.toml: data\.dataset: unknown dataset 'mnist5' \(did you mean "
                        r"'mnist5k'"),
    "unknown feature": (suite_with(('metrics = ["recon_mse"]',
                                    'metrics = ["fid"]\nfeatures = ["lenet-mnst"]')),
                        r"my\.toml: eval\.features: unknown feature extractor 'lenet-mnst' "
                        r"\(did you mean 'lenet-mnist'"),
    "negative beta": (suite_with(("beta = 1.0", "beta = -1")),
                      r"my\.toml: model\.beta: must be a number >= 0, got -1"),
    "nan lr": (suite_with(("batch_size = 32", "batch_size = 32\nlr = nan")),
               r"my\.toml: train\.lr: must be a number > 0, got nan"),
    "latent size 0": (suite_with(("latent_dim = 4", "latent_dim = 0")),
                      r"my\.toml: model\.latent_dim: must be a positive integer, got 0"),
    "huge width": (suite_with(("latent_dim = 4", "latent_dim = 4\nwidth = 2147483648")),
                   r"my\.toml: model: cannot build 'vae' with latent_dim 4, width 2147483648, "
                   r"hidden 256 \(RuntimeError: "),
    "batch size 0": (suite_with(("batch_size = 32", "batch_size = 0")),
                     r"my\.toml: train\.batch_size: must be a number > 0, got 0"),
    "negative seed": (suite_with(("[suite]", "seed = -1\n[suite]")),
                      r"my\.toml: seed: must be an integer in \[0, 9223372036854775807\], got -1"),
    "empty grid list": (suite_with(("[eval]", '[grid]\n"model.beta" = []\n[eval]')),
                        r"my\.toml: grid\.model\.beta: must be a non-empty list"),
    "grid key not a field": (suite_with(("[eval]", '[grid]\n"model.bta" = [1.0]\n[eval]')),
                             r"my\.toml: grid\.model\.bta: unknown key; allowed: "),
    "suite name ../..": (suite_with(('name = "tiny"', 'name = "../../etc"')),
                         r"my\.toml: suite\.name: '\.\./\.\./etc' is not a folder name; "
                         r"allowed: letters, digits"),
    "suite name NUL": (suite_with(('name = "tiny"', 'name = "a\\u0000b"')),
                       r"my\.toml: suite\.name: 'a\\x00b' is not a folder name"),
    "key with a newline": (suite_with(("[train]", '[train]\n"a\\nb" = 1')),
                           r"my\.toml: train\.a\\nb: unknown key"),
    "30×30 images": (mnist_root(size=30),
                     r"my\.toml: data\.dataset: its images are 30×30, but .* divisible by 4"),
    "truncated IDX": (mnist_root(damage=truncate),
                      r"my\.toml: data\.root: cannot load dataset 'mnist': "
                      r"\S+/train-images-idx3-ubyte is 100 bytes, but its header \(8×28×28\) "
                      r"needs 6288"),
    "garbage IDX": (mnist_root(damage=lambda p: p.write_bytes(b"<html>not found</html>")),
                    r"my\.toml: data\.root: .*train-images-idx3-ubyte is not an uncompressed "
                    r"IDX file"),
    "missing IDX": (mnist_root(damage=Path.unlink),
                    r"my\.toml: data\.root: cannot load dataset 'mnist': missing "
                    r"train-images-idx3-ubyte in "),
    "corrupt metrics.json": (finished_run_with_metrics('{"format": '),
                             r"out/runs/\w+/metrics\.json: not a metrics\.json \(JSONDecodeError"),
    "old metrics.json": (finished_run_with_metrics('{"fid": 3.0}'),
                         r"out/runs/\w+/metrics\.json: written by another version"),
    "results.csv missing columns": (results_csv("run_id,value\nabc,1.0\n"),
                                    r"out/results\.csv: not a results\.csv this version of "
                                    r"latentbench reads \(is missing column\(s\): "),
    "compare baseline not one": (compare_baseline("hello"),
                                 r"BASELINE base\.json: not a results\.csv or bench JSON"),
}


#: Through the real script as well: a case of each command that reads input files.
THROUGH_THE_SCRIPT = ("malformed TOML", "results.csv missing columns", "compare baseline not one")


def check(name: str, returncode: int, stderr: str, folder: Path) -> None:
    """Exit 2, one line naming the file and the field, nothing computed in ``folder``."""
    lines = stderr.strip().splitlines()
    assert returncode == 2, stderr
    assert len(lines) == 1, stderr
    assert re.match("latentbench: error: " + CASES[name][1], lines[0]), lines[0]
    assert not (folder / "runs").exists()
    assert not list(folder.glob("out/runs/*/model.pt")) and not list(folder.glob("out/*.html"))


def buggy_plugin(folder: Path) -> tuple[list[str], dict[str, str]]:
    """``run`` of a plug-in model whose construction raises ZeroDivisionError (a bug)."""
    (folder / "buggy.py").write_text(
        "from latentbench.models.vae import VAE\n\n"
        "class Buggy(VAE):\n"
        "    @classmethod\n"
        "    def from_spec(cls, spec, image_shape):\n"
        "        return 1 / 0\n")
    suite_with(('name = "vae"', 'name = "buggy:Buggy"'))(folder)
    return ["run", "my.toml", "--out", "out"], {"PYTHONPATH": str(folder)}


def debug_of_bad_input(folder: Path) -> tuple[list[str], dict[str, str]]:
    """``--debug run`` of a suite with a negative β."""
    suite_with(("beta = 1.0", "beta = -1"))(folder)
    return ["--debug", "run", "my.toml", "--out", "out"], {}


#: The script's processes: the cases above, an internal error and --debug. name -> setup in a
#: fresh folder -> (arguments, extra environment).
SCRIPT_RUNS: dict[str, Callable[[Path], tuple[list[str], dict[str, str]]]] = {
    **{name: (lambda folder, name=name: (CASES[name][0](folder), {}))
       for name in THROUGH_THE_SCRIPT},
    "internal error": buggy_plugin,
    "--debug": debug_of_bad_input,
}


def _run_script(name: str, root: Path, env: dict[str, str]
                ) -> tuple[subprocess.CompletedProcess, Path]:
    folder = root / re.sub(r"\W", "_", name)
    folder.mkdir()
    args, extra_env = SCRIPT_RUNS[name](folder)
    env = {**env, "PYTHONWARNINGS": "ignore", **extra_env}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=folder,
                          env=env, timeout=300), folder


def run_scripts(root: Path, env: dict[str, str]
                ) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """The processes of :data:`SCRIPT_RUNS`: a background job (tests/conftest.py)."""
    return {name: _run_script(name, root, env) for name in SCRIPT_RUNS}


BACKGROUND_JOBS = {"script_results": run_scripts}



@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_is_computed(name, tmp_path, monkeypatch,
                                                              capsys):
    args = CASES[name][0](tmp_path)
    monkeypatch.chdir(tmp_path)
    # As in a new process: no dataset loaded before. The cache is keyed by the DataSpec, whose
    # root "root" is relative, so it would hand this case the files of an earlier case's folder.
    cached_dataset.cache_clear()
    returncode = main(args)
    check(name, returncode, capsys.readouterr().err, tmp_path)


@pytest.mark.parametrize("name", THROUGH_THE_SCRIPT)
def test_through_the_console_script_too(script_results, name):
    result, folder = script_results[name]
    check(name, result.returncode, result.stderr, folder)


def test_an_unexpected_exception_is_one_line_internal_error_exit_1(script_results):
    result, _ = script_results["internal error"]
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "latentbench: internal error: ZeroDivisionError: division by zero (run with --debug for "
        "the traceback)"]


def test_debug_shows_the_traceback(script_results):
    result, _ = script_results["--debug"]
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "InputError: my.toml: model.beta: must be a number >= 0" in result.stderr
