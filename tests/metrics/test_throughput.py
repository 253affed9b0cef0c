"""Throughput measurements: FLOP counts against closed forms, timings that order a slower model
after a faster one (paired, generous), memory that covers what training must hold, and the
registered metrics through an evaluation context."""

import math
import time

import pytest
import torch
from torch import nn

from latentbench.metrics import METRICS, EvalContext
from latentbench.metrics.measurements import (
    flop_counts,
    measure_decode,
    measure_encode,
    measure_latency,
    measure_model,
    measure_training,
)
from latentbench.metrics.peak_memory import MIB
from latentbench.metrics.timing import CompileFailed, ThroughputOptions, count_flops, time_calls
from latentbench.models import ModelSpec, ModuleVAE, build_model
from latentbench.models.registry import InputError

SHAPE = (1, 8, 8)
PIXELS = math.prod(SHAPE)
LATENT = 4
FAST = ThroughputOptions(repeats=3, warmup=1)
TIMED = ("train_img_s", "encode_img_s", "decode_img_s", "latency_ms", "peak_mem_mb")


class Sleep(nn.Module):
    """Identity that waits: a model made slower by a known amount and nothing else."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return x


def linear_vae(delay: float = 0.0, pixels: int = PIXELS, latent: int = LATENT) -> ModuleVAE:
    """A VAE of one Linear each way: its FLOPs have a closed form. ``delay`` seconds of sleep
    in the decoder make decoding and training slower, and encoding not."""
    torch.manual_seed(0)
    shape = (1, 1, pixels) if pixels != PIXELS else SHAPE
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 2 * latent))
    decoder = nn.Sequential(nn.Linear(latent, pixels), Sleep(delay), nn.Unflatten(1, shape))
    return ModuleVAE(encoder, decoder, latent)


def images(n: int, shape: tuple[int, ...] = SHAPE) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))


def test_a_linear_layer_costs_two_flops_per_weight_per_image():
    layer = nn.Linear(30, 20)
    x = torch.randn(7, 30)
    assert count_flops(lambda: layer(x)) == 2 * 30 * 20 * 7


def test_flop_counts_of_a_linear_vae_match_the_closed_forms():
    # Encoder Linear(P → 2L), decoder Linear(L → P): forward 2·P·2L + 2·L·P = 6PL per image.
    # Backward: the encoder needs only its weight gradient (the images need none), 4PL; the
    # decoder its weight and its input gradient, 2 · 2LP. A step is 6PL + 4PL + 4PL = 14PL.
    pl = PIXELS * LATENT
    counts = flop_counts(linear_vae(), images(16))
    assert counts.encode == 4 * pl
    assert counts.decode == 2 * pl
    assert counts.loss_forward == 6 * pl
    assert counts.train_step == 14 * pl


def test_a_slower_model_measures_slower_and_the_figures_are_positive():
    fast, slow = linear_vae(), linear_vae(delay=0.02)  # ~1 ms of work against 20 ms of sleep
    batch, codes = images(16), torch.randn(16, LATENT)
    fast_train = measure_training(fast, batch, FAST)
    slow_train = measure_training(slow, batch, FAST)
    assert len(fast_train.timing.seconds) == FAST.repeats and fast_train.timing.items == 16
    assert 0 < slow_train.timing.img_s < fast_train.timing.img_s / 2
    fast_decode, slow_decode = (measure_decode(m.eval(), codes, FAST) for m in (fast, slow))
    assert 0 < slow_decode.img_s < fast_decode.img_s / 2
    fast_latency, slow_latency = (measure_latency(m, batch[:1], FAST) for m in (fast, slow))
    assert slow_latency.median_ms > 2 * fast_latency.median_ms > 0
    assert measure_encode(fast, batch, FAST).img_s > 0
    assert fast_train.timing.img_s_iqr >= 0 and fast_latency.iqr_ms >= 0


def test_training_on_a_copy_leaves_the_model_as_it_was():
    model = build_model(ModelSpec(name="vae", latent_dim=4, width=4, hidden=16), (1, 8, 8))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}
    with torch.no_grad():  # as the evaluation driver runs metrics
        measure_training(model, images(8), FAST)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training and model.step == 0


def test_peak_memory_covers_the_copy_its_gradients_and_adam_state():
    # A 2048 × 2048 decoder: 16 MiB of weights. Training a copy with Adam holds the copy, its
    # gradients and two moment buffers: at least 4 × 16 MiB beyond what was resident before.
    model = linear_vae(pixels=2048, latent=1024)
    weight_mib = sum(p.numel() for p in model.parameters()) * 4 / MIB
    measured = measure_training(model, images(4, (1, 1, 2048)), ThroughputOptions(1, 1))
    assert measured.peak_bytes / MIB >= 3.5 * weight_mib, measured.memory_method


def test_measure_model_gives_every_figure_and_none_for_a_missing_encoder():
    spec = ModelSpec(name="dcgan", latent_dim=4, width=4, hidden=16)
    gan = measure_model(build_model(spec, SHAPE), SHAPE, 8, FAST)
    vae = measure_model(linear_vae(), SHAPE, 8, FAST)
    assert "encode_img_s" not in gan.metrics and "encode_flop_s" not in gan.metrics
    assert gan.flops["encode_per_img"] is None and gan.latency_path == "decode"
    assert vae.latency_path == "encode+decode"
    for result in (gan, vae):
        # A model of a few KiB may fit in pages already resident: its growth can read 0.
        assert result.metrics.pop("peak_mem_mb") >= 0
        assert all(value > 0 for value in result.metrics.values()), result.metrics
        expected = result.flops["train_step_per_img"] * result.metrics["train_img_s"]
        assert result.metrics["train_flop_s"] == pytest.approx(expected)
    assert vae.metrics["flops_per_img"] == 6 * PIXELS * LATENT


@pytest.mark.parametrize("options, message", [
    ({"repeats": 0}, "repeats: must be a positive integer, got 0"),
    ({"warmup": True}, "warmup: must be a positive integer, got True"),
    ({"repeats": 2.0}, "repeats: must be a positive integer, got 2.0"),
    ({"amp": "fp8"}, "amp: must be one of bf16, fp16, got 'fp8'"),
])
def test_options_reject_bad_counts_and_precisions_naming_the_field(options, message):
    # Field names, not command-line flags: `latentbench bench` checks its flags itself.
    with pytest.raises(InputError) as raised:
        ThroughputOptions(**options)
    assert str(raised.value) == message


def test_a_bad_batch_size_names_the_argument():
    with pytest.raises(InputError, match=r"^batch_size: must be a positive integer, got 0$"):
        measure_model(linear_vae(), SHAPE, 0, FAST)


def test_a_failed_compilation_is_an_input_error_with_the_reason_apart():
    def broken() -> None:
        raise RuntimeError("no compiler\nmore lines")

    with pytest.raises(CompileFailed) as raised:
        time_calls(broken, torch.device("cpu"), 1, ThroughputOptions(1, 1, compile=True))
    assert isinstance(raised.value, InputError)
    assert raised.value.reason.startswith("torch.compile failed (RuntimeError: no compiler)")
    assert str(raised.value) == f"compile: {raised.value.reason}"
    with pytest.raises(RuntimeError):  # without compilation an error is not rewritten
        time_calls(broken, torch.device("cpu"), 1, ThroughputOptions(1, 1))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_training_runs_for_default_and_own_steps(amp):
    options = ThroughputOptions(repeats=1, warmup=1, amp=amp, channels_last=True)
    vae = measure_model(linear_vae(), SHAPE, 8, options)
    gan = measure_model(build_model(ModelSpec(name="dcgan", latent_dim=4, width=4, hidden=16),
                                    SHAPE), SHAPE, 8, options)
    assert vae.metrics["train_img_s"] > 0 and gan.metrics["train_img_s"] > 0
    assert vae.notes == []
    assert bool(gan.notes) == (amp == "fp16")  # a GAN's own step gets no loss scaling


def test_registered_metrics_run_from_an_evaluation_context():
    model = build_model(ModelSpec(name="ae", latent_dim=4, width=4, hidden=16), SHAPE).eval()
    ctx = EvalContext(model=model, test_images=images(20), train_images=images(20),
                      batch_size=8)
    rng = torch.get_rng_state()
    with torch.no_grad():
        values = {name: METRICS.get(name).compute(ctx)
                  for name in (*TIMED, "params", "flops_per_img")}
    assert torch.equal(rng, torch.get_rng_state())  # timing leaves other metrics' draws alone
    assert values.pop("peak_mem_mb") >= 0  # see above: a tiny model may add no pages
    assert all(isinstance(v, float) and v > 0 for v in values.values()), values
    assert values["params"] == sum(p.numel() for p in model.parameters())
    assert all(not METRICS.get(name).default for name in TIMED)
    assert METRICS.get("params").default and METRICS.get("flops_per_img").default
    assert METRICS.get("encode_img_s").needs == {"encode"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_timings_wait_for_the_kernels_and_memory_comes_from_the_allocator():
    device = torch.device("cuda")
    # A kernel that spins ~1e8 GPU cycles (≥ 25 ms at any clock below 4 GHz) is launched in
    # microseconds: only a sync inside the timed region makes the call take its real time.
    spin = time_calls(lambda: torch.cuda._sleep(100_000_000), device, 1, FAST)
    assert spin.median_s > 0.01
    model = build_model(ModelSpec(name="vae"), (1, 28, 28)).to(device)
    result = measure_model(model, (1, 28, 28), 128, ThroughputOptions(repeats=5, warmup=2))
    weight_mib = sum(p.numel() for p in model.parameters()) * 4 / MIB
    assert result.metrics["peak_mem_mb"] >= 3.5 * weight_mib  # copy, grads, two Adam moments
    assert result.memory_method.startswith("torch.cuda.max_memory_allocated")
    assert all(value > 0 for value in result.metrics.values())
    for amp in ("bf16", "fp16"):
        mixed = measure_model(model, (1, 28, 28), 128,
                              ThroughputOptions(repeats=3, warmup=1, amp=amp, channels_last=True))
        assert mixed.metrics["train_img_s"] > 0 and mixed.notes == []
