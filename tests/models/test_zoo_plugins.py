"""Plug-in models join a suite without editing the repo: by ``module:Class`` or an entry point.

The README's "Bring your own model" example is run as written, from a folder outside the repo,
through the real console script.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from latentbench.benchmarks.cli import main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")
SECTION = "## Bring your own model"
# A fenced block the README marks as a file: ```python title="my_models.py"
FILE_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```', re.S | re.M)
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def plugin_docs() -> str:
    """The plug-in section of README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:] if end == -1 else text[start:end]


def latentbench(*args, cwd, pythonpath, shell_command=None, env=None):
    env = os.environ if env is None else env
    env = {**env, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(pythonpath),
           "PATH": f"{Path(SCRIPT).parent}{os.pathsep}{env.get('PATH', '')}"}
    command = shell_command if shell_command is not None else [SCRIPT, *args]
    return subprocess.run(command, shell=shell_command is not None, capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def write_example(folder: Path) -> dict[str, str]:
    files = dict(FILE_BLOCK.findall(plugin_docs()))
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    return files


# Background jobs (tests/conftest.py): the processes of the tests below, run on the other core
# while other tests run.


def readme_example(folder, env):
    """The README's example files written to ``folder`` (outside the repo) and its command run
    there as written: (files, command, the finished process, folder)."""
    files = write_example(folder)
    (command,) = [line.strip() for block in BASH_BLOCK.findall(plugin_docs())
                  for line in block.splitlines() if "latentbench run my-suite.toml" in line]
    return files, command, latentbench(cwd=folder, pythonpath="", shell_command=command,
                                       env=env), folder


def entry_point_model(folder, env):
    """``list models`` and a ``run`` of a model that a fake installed package registers under
    an entry point: (listed, run, folder)."""
    site = folder / "site"
    fake_installed_distribution(site)
    listed = latentbench("list", "models", cwd=folder, pythonpath=site, env=env)
    (folder / "plug.toml").write_text(TINY_SUITE.format(name="my-ae"))
    return listed, latentbench("run", "plug.toml", "--out", "out", cwd=folder, pythonpath=site,
                               env=env), folder


def unimportable_plugin(folder, env):
    """A ``run`` whose model names a module that does not exist: (process, folder)."""
    (folder / "bad.toml").write_text(TINY_SUITE.format(name="nosuchmodule:X"))
    return latentbench("run", "bad.toml", "--out", "out", cwd=folder, pythonpath=folder,
                       env=env), folder


BACKGROUND_JOBS = {"readme_run": readme_example, "entry_point_runs": entry_point_model,
                   "unimportable_run": unimportable_plugin}





def test_the_readme_example_runs_as_written_outside_the_repo(readme_run):
    files, command, result, folder = readme_run
    assert not folder.resolve().is_relative_to(REPO)
    assert set(files) == {"my_models.py", "my-suite.toml"}
    assert 'name = "my_models:MLPVAE"' in files["my-suite.toml"]
    assert "[model.options]" in files["my-suite.toml"]
    assert command.startswith("PYTHONPATH=. ")

    assert result.returncode == 0, result.stderr[-3000:]
    out = folder / "runs" / "my-suite"
    results = pd.read_csv(out / "results.csv")
    assert set(results.model) == {"my_models:MLPVAE"} and (results.status == "done").all()
    assert {"recon_mse", "rate"} <= set(results.metric)
    assert (results[results.metric == "rate"].value > 0).all()
    for run_dir in out.glob("runs/*"):
        state = torch.load(run_dir / "model.pt", weights_only=True)
        assert any(k.startswith("encoder.") for k in state)
        assert all(isinstance(v, torch.Tensor) for v in state.values())


PLUGIN_PACKAGE = '''
"""A plug-in package, installed only as far as its dist-info goes."""
import math

from torch import nn

from latentbench.models import ModuleVAE


class TinyAE(ModuleVAE):
    """An MLP autoencoder registered under an entry point."""

    summary = "tiny MLP autoencoder from mypkg"

    @classmethod
    def from_spec(cls, spec, image_shape):
        pixels = math.prod(image_shape)
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, spec.latent_dim))
        decoder = nn.Sequential(nn.Linear(spec.latent_dim, pixels), nn.Unflatten(1, image_shape))
        return cls(encoder, decoder, variational=False, **cls.spec_settings(spec))
'''

TINY_SUITE = """
[suite]
name = "plug"

[data]
dataset = "mnist5k"
n_train = 64
n_test = 32

[model]
name = "{name}"
latent_dim = 2

[train]
epochs = 1
batch_size = 32

[eval]
metrics = ["recon_mse", "rate"]
samples = 4
grid_images = 4
"""


def fake_installed_distribution(site: Path) -> None:
    (site / "mypkg").mkdir(parents=True)
    (site / "mypkg" / "__init__.py").write_text(PLUGIN_PACKAGE)
    info = site / "mypkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[latentbench.models]\nmy-ae = mypkg:TinyAE\n")


def test_an_entry_point_model_is_listed_and_runs(entry_point_runs):
    listed, result, folder = entry_point_runs
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "tiny MLP autoencoder from mypkg" in lines["my-ae"] and "vae" in lines

    assert result.returncode == 0, result.stderr[-3000:]
    results = pd.read_csv(folder / "out" / "results.csv")
    # A deterministic plug-in gets reconstruction metrics but no rate: absent, never zero.
    assert set(results.model) == {"my-ae"} and set(results.metric) == {"recon_mse"}


def test_an_unimportable_plugin_exits_2_with_one_line_in_a_real_process(unimportable_run):
    result, folder = unimportable_run
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("latentbench: error: bad.toml: model.name") and "nosuchmodule" in line
    assert not (folder / "out" / "runs").exists()


@pytest.mark.parametrize("name, words", [
    ("json:dumps", "not a latentbench.models.LatentModel"),
    ("json:NoSuchThing", "has no 'NoSuchThing'"),
    ("no-such-entry-point", "unknown model"),
    ("latentbench.models:ModuleVAE", "subclass it"),
])
def test_unusable_plugin_names_exit_2_naming_model_name(tmp_path, capsys, name, words):
    (tmp_path / "bad.toml").write_text(TINY_SUITE.format(name=name))
    assert main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"latentbench: error: {tmp_path / 'bad.toml'}: model.name")
    assert words in line
    assert not (tmp_path / "out" / "runs").exists()


def test_a_misspelt_option_exits_2_naming_it(tmp_path, capsys, monkeypatch):
    write_example(tmp_path)
    suite = (tmp_path / "my-suite.toml").read_text().replace("hidden = 128", "hiden = 128")
    (tmp_path / "my-suite.toml").write_text(suite)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    try:
        assert main(["run", str(tmp_path / "my-suite.toml"), "--out", str(tmp_path / "o")]) == 2
    finally:
        sys.modules.pop("my_models", None)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"latentbench: error: {tmp_path / 'my-suite.toml'}: model.options.hiden: "
                    "unknown option; allowed: hidden")


def test_the_docs_cover_the_protocol_and_the_entry_point_form():
    docs = plugin_docs()
    for member in ("encode(x)", "decode(z)", "sample(n", "loss(x)", "reconstruction_nll",
                   "latent_dim", "capabilities", "sampling", "configure_optimizers",
                   "train_step", "calibrate", "`encode`", "`variational`", "`sample`"):
        assert member in docs, member
    assert '[project.entry-points."latentbench.models"]' in docs
