"""``latentbench bench``: the table, the JSON document, suites timed once per network, and
one-line errors with exit code 2."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentbench.benchmarks.cli import main

SCRIPT = shutil.which("latentbench") or str(Path(sys.executable).parent / "latentbench")
TINY = ["--latent-dim", "4", "--width", "4", "--hidden", "16", "--batch-size", "8",
        "--repeats", "2", "--warmup", "1"]
ENVIRONMENT = {"device", "device_name", "torch", "cuda", "cudnn", "threads", "cpus", "cpu_name",
               "python", "platform", "peak_flop_s", "peak_basis"}
CONFIG_KEYS = {"config", "model", "dataset", "image_shape", "batch_size", "metrics", "iqr",
               "flops", "latency_path", "memory_method", "notes"}
METRIC_KEYS = {"train_img_s", "encode_img_s", "decode_img_s", "latency_ms", "peak_mem_mb",
               "params", "flops_per_img", "train_flop_s", "encode_flop_s", "decode_flop_s"}

SUITE = """
[suite]
name = "tiny-bench"

[data]
dataset = "lines"
n_train = 4
n_test = 4

[model]
latent_dim = 4
width = 4
hidden = 16

[train]
batch_size = 8

[grid]
model = [{ name = "ae" }, { name = "vae", beta = 1.0 }, { name = "vae", beta = 4.0 },
         { name = "dcgan" }]
"model.decoder" = ["transposed", "unpool-nearest"]
seed = [0, 1]
"""


def test_bench_prints_a_table_and_writes_the_documented_json(tmp_path, capsys):
    path = tmp_path / "out" / "bench.json"
    assert main(["bench", "--model", "vae", "--decoder", "unpool-nearest", *TINY,
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "train img/s" in out and "MFLOP/img" in out and "GFLOP/s" in out
    row = next(line for line in out.splitlines() if line.startswith("vae/unpool-nearest"))
    assert len(row.split()) >= 10  # the label, then every column filled
    document = json.loads(path.read_text())
    assert document["format"] == "latentbench-bench/1"
    assert ENVIRONMENT <= set(document["environment"])
    assert document["environment"]["torch"] == torch.__version__
    assert document["settings"] == {"batch_size": [8], "repeats": 2, "warmup": 1, "amp": None,
                                    "channels_last": False, "compile": False}
    (entry,) = document["configs"]
    assert set(entry) == CONFIG_KEYS and set(entry["metrics"]) == METRIC_KEYS
    assert entry["config"] == "vae/unpool-nearest latent_dim=4 width=4 hidden=16"
    assert entry["image_shape"] == [1, 28, 28] and entry["latency_path"] == "encode+decode"
    assert all(value >= 0 for value in entry["metrics"].values())
    assert set(document["directions"]) == METRIC_KEYS
    assert document["directions"]["train_img_s"] and not document["directions"]["latency_ms"]
    assert document["units"]["latency_ms"] == "ms"


def test_a_suite_is_timed_once_per_network_and_a_gan_gets_no_encode_figures(tmp_path, capsys):
    suite = tmp_path / "tiny-bench.toml"
    suite.write_text(SUITE)
    path = tmp_path / "bench.json"
    assert main(["bench", "--suite", str(suite), "--repeats", "1", "--warmup", "1",
                 "--json", str(path)]) == 0
    document = json.loads(path.read_text())
    labels = [entry["config"] for entry in document["configs"]]
    # 4 models × 2 decoders × 2 seeds = 16 runs; β and the seed change no computation.
    suffix = " latent_dim=4 width=4 hidden=16"
    assert labels == [f"{name}/{decoder}{suffix}" for name in ("ae", "vae", "dcgan")
                      for decoder in ("transposed", "unpool-nearest")]
    gan = document["configs"][-1]
    assert "encode_img_s" not in gan["metrics"] and gan["flops"]["encode_per_img"] is None
    assert all(entry["image_shape"] == [1, 32, 32] and entry["batch_size"] == 8
               for entry in document["configs"])  # the suite's data and batch size
    gan_row = next(line for line in capsys.readouterr().out.splitlines()
                   if line.startswith("dcgan/unpool-nearest"))
    assert "—" in gan_row  # absent, not zero


@pytest.mark.parametrize("args, field", [
    (["--model", "nope"], "model.name"),
    (["--decoder", "bogus"], "model.decoder"),
    (["--device", "tpu"], "--device"),
    (["--amp", "fp8"], "--amp"),
    (["--repeats", "0"], "--repeats"),
    (["--warmup", "0"], "--warmup"),
    (["--batch-size", "0"], "--batch-size"),
    (["--suite", "quick", "--model", "ae"], "--suite"),
    (["--suite", "no-such-suite"], "suite"),
    (["--dataset", "nope"], "data.dataset"),
])
def test_unusable_input_is_one_line_and_exit_code_2(args, field, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"latentbench: error: {field}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here: --device cuda is valid")
def test_cuda_without_cuda_is_an_input_error(capsys):
    assert main(["bench", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def bench_compiled_without_a_compiler(folder, env):
    """``bench --compile`` with no C++ compiler for inductor (and an empty cache, so nothing
    compiled earlier is reused): compilation fails at the first warm-up call. A background job
    (tests/conftest.py): the process spends ~15 s importing inductor."""
    env = {**env, "CXX": str(folder / "no-cxx"), "CC": str(folder / "no-cc"),
           "TORCHINDUCTOR_CACHE_DIR": str(folder / "inductor"), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([SCRIPT, "bench", "--compile", "--device", "cpu", *TINY], env=env,
                          capture_output=True, text=True, timeout=300)


def bench_through_the_script(folder, env):
    """``bench`` of one tiny network through the real script, its JSON into ``folder``."""
    path = folder / "bench.json"
    return subprocess.run([SCRIPT, "bench", "--model", "ae", "--device", "cpu", *TINY,
                           "--json", str(path)], env={**env, "PYTHONWARNINGS": "ignore"},
                          capture_output=True, text=True, timeout=300), path


BACKGROUND_JOBS = {"compile_failure": bench_compiled_without_a_compiler,
                   "script_bench": bench_through_the_script}



def test_bench_through_the_script_prints_its_table_and_writes_its_json(script_bench):
    done, path = script_bench
    assert done.returncode == 0, done.stderr[-2000:]
    assert "train img/s" in done.stdout
    document = json.loads(path.read_text())
    assert document["format"] == "latentbench-bench/1"
    assert [entry["config"] for entry in document["configs"]] == [
        "ae/transposed latent_dim=4 width=4 hidden=16"]



def test_a_failed_compilation_is_one_line_and_exit_code_2(compile_failure):
    done = compile_failure
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("latentbench:")]
    assert len(errors) == 1 and errors[0].startswith("latentbench: error: --compile:")
    assert "Traceback" not in done.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bench_on_cuda_names_the_gpu(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--device", "cuda", "--model", "dcgan", *TINY, "--amp", "fp16",
                 "--json", str(path)]) == 0
    document = json.loads(path.read_text())
    assert document["environment"]["device_name"] == torch.cuda.get_device_name()
    assert document["environment"]["cuda"] == torch.version.cuda
    (entry,) = document["configs"]
    assert entry["notes"] and "loss scaling" in entry["notes"][0]
    assert entry["memory_method"].startswith("torch.cuda.max_memory_allocated")
