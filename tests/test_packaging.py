"""The four code folders install under ``latentbench.*`` and nowhere else."""

import subprocess
import sys


def test_bare_folder_names_are_not_importable_outside_the_repo(tmp_path):
    code = ("import importlib.util as u, sys; "
            "print([n for n in ('models', 'metrics', 'benchmarks', 'reports') if u.find_spec(n)])")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_namespace_packages_import_and_ship_their_data(tmp_path):
    code = ("import latentbench.models, latentbench.metrics, latentbench.benchmarks.cli, "
            "latentbench.reports; from importlib import resources as r; "
            "print(sorted(p.name for p in r.files('latentbench.benchmarks')"
            ".joinpath('suites').iterdir()))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    assert "quick.toml" in result.stdout and "smoke.toml" in result.stdout
