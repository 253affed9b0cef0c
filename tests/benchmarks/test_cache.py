"""The cache folder: $LATENTBENCH_CACHE, else ~/.cache/latentbench."""

from pathlib import Path

from latentbench.benchmarks.cache import cache_dir


def test_the_cache_folder_comes_from_the_environment_else_the_home_folder(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("LATENTBENCH_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LATENTBENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "latentbench"


def test_tests_use_the_session_cache_folder_not_the_home_folder(latentbench_cache):
    assert cache_dir() == latentbench_cache != Path.home() / ".cache" / "latentbench"
