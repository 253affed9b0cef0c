"""What a metric is computed from: the trained model, the data, and passes shared between metrics.

Several metrics read the same forward pass (MSE, BCE, PSNR and SSIM all need the test
reconstructions; rate, distortion and −ELBO the posterior; FID, KID and PRDC the same features of
the same samples), so the context computes each pass once, lazily, and every metric reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import torch
from torch import Tensor

from latentbench.metrics.factors import FactorCodes, FactorSampler, encode_factor_draws
from latentbench.metrics.timing import synchronize
from latentbench.models.protocol import LatentModel
from latentbench.models.registry import InputError, check_int

if TYPE_CHECKING:
    from latentbench.metrics.features import FeatureExtractor

T = TypeVar("T")

#: How interpolations move through latent space (see ``metrics.interpolation``).
INTERPOLATION_PATHS = ("lerp", "slerp")


@dataclass(frozen=True)
class TestPass:
    """Per-image quantities of one pass over the test split (all float64 on the CPU, ``[N]``).

    Attributes:
        squared_error: Σ_pixels (x − x̂)², x̂ decoded from the posterior mean.
        bce: Σ_pixels BCE(x̂, x), x̂ decoded from the posterior mean.
        psnr: peak signal-to-noise ratio of x̂ against x (data range 1), dB.
        ssim: structural similarity of x̂ and x (Gaussian window 11, σ 1.5).
        distortion: −log p(x|z) with one z ~ q(z|x) (posterior mean for a deterministic
            encoder), nats.
        rate: KL(q(z|x) ‖ p(z)) to the model's prior, nats: closed form for N(0, I), else the
            mean of :attr:`rate_samples` Monte-Carlo draws per image; ``None`` for a
            deterministic encoder.
        pixels: pixels per image (C·H·W), to turn sums into per-pixel means.
        latent_mean: the posterior means (an AE: its codes), float64 ``[N, latent_dim]``.
        latent_logvar: the posterior log-variances, ``[N, latent_dim]``; ``None`` for a
            deterministic encoder.
        rate_samples: Monte-Carlo draws per image behind :attr:`rate`; ``None`` for the closed
            form.
        rate_mc_variance: the Monte-Carlo variance of each image's rate estimate, ``[N]``;
            ``None`` for the closed form.
    """

    squared_error: Tensor
    bce: Tensor
    psnr: Tensor
    ssim: Tensor
    distortion: Tensor
    rate: Tensor | None
    pixels: int
    latent_mean: Tensor | None = None
    latent_logvar: Tensor | None = None
    rate_samples: int | None = None
    rate_mc_variance: Tensor | None = None


@dataclass(frozen=True)
class EvalSettings:
    """How much evaluation to do: the knobs of the metrics, shared by every run of a suite.

    Attributes:
        fake_samples: generated samples for the distribution metrics (FID, KID, PRDC,
            checkerboard); ``None``: as many as there are test images, so both sets have equal N
            (FID is biased upward at small N and compares only at equal N).
        kid_subsets, kid_subset_size: KID's random subsets: ``kid_subsets`` of
            ``kid_subset_size`` rows from each set (torchmetrics' 100 × 1,000). ``None``: 1,000,
            at most half the smaller set, so that the subsets' spread is a standard error; a
            size that reaches the smaller set is clipped to half of it, with a warning.
        interp_pairs, interp_steps: interpolations between random pairs of test images (a GAN:
            of prior samples) and the points on each, endpoints included (ACAI: 16 × 16).
        interp_path: ``lerp`` (straight line in latent space) or ``slerp`` (great circle).
        ppl_pairs: latent pairs for the perceptual path length.
        ppl_epsilon: the step ε of the path-length finite difference (StyleGAN: 1e-4).
        iwae_k: importance samples per image for ``iwae_nll`` (Burda et al.: 5,000).
        iwae_images: ``iwae_nll`` on the first this many test images; ``None``: all of them.
            The defaults (k = 100, all 1,000 mnist5k test images) keep its Monte-Carlo
            standard error near 0.02 nats on the quick suite's VAEs.
        features: feature extractors of the feature-space metrics (``fid[lenet-mnist]``);
            ``None``: the dataset's default one.
        inception_weights: a local ``pt_inception-2015-12-05`` weights file for
            ``inception-v3`` (else the ``LATENTBENCH_INCEPTION_WEIGHTS`` variable).
        factor_points, factor_test_points: the disentanglement metrics' draws from the
            dataset's factor grid: ``factor_points`` to compute or fit them on and
            ``factor_test_points`` held out for the scores that test a classifier (DCI, SAP);
            disentanglement_lib's 10,000 and 5,000.
    """

    fake_samples: int | None = None
    kid_subsets: int = 100
    kid_subset_size: int | None = None
    interp_pairs: int = 16
    interp_steps: int = 16
    interp_path: str = "lerp"
    ppl_pairs: int = 1024
    ppl_epsilon: float = 1e-4
    iwae_k: int = 100
    iwae_images: int | None = None
    features: tuple[str, ...] | None = None
    inception_weights: str | None = None
    factor_points: int = 10_000
    factor_test_points: int = 5_000

    def __post_init__(self) -> None:
        for name, minimum in (("fake_samples", 2), ("kid_subsets", 1), ("kid_subset_size", 2),
                              ("interp_pairs", 1), ("interp_steps", 3), ("ppl_pairs", 2),
                              ("iwae_k", 1), ("iwae_images", 1), ("factor_points", 2),
                              ("factor_test_points", 2)):
            value = getattr(self, name)
            if value is None and name in ("fake_samples", "kid_subset_size", "iwae_images"):
                continue
            # Stored as the plain int check_int returns (a numpy integer passes the check), so
            # the run id's JSON can hold it.
            object.__setattr__(self, name, check_int(value, f"eval.{name}", minimum=minimum))
        if self.interp_path not in INTERPOLATION_PATHS:
            raise InputError(f"eval.interp_path: must be one of {', '.join(INTERPOLATION_PATHS)}"
                             f", got {self.interp_path!r}")
        if not 0 < self.ppl_epsilon < 1:
            raise InputError(f"eval.ppl_epsilon: must be in (0, 1), got {self.ppl_epsilon!r}")
        if self.features is not None and not self.features:
            raise InputError("eval.features: give at least one extractor, or leave it out for "
                             "the dataset's default")


@dataclass(frozen=True)
class FeatureSet:
    """The features of one image set in one feature space, with their first two moments.

    Attributes:
        features: float32 ``[N, d]`` on the CPU (PRDC and KID need the points themselves).
        mean: float64 ``[d]``.
        cov: float64 ``[d, d]``, normaliser N − 1 — accumulated as float64 running sums while
            the features stream in, as FID asks.
    """

    features: Tensor
    mean: Tensor
    cov: Tensor

    @property
    def n(self) -> int:
        return len(self.features)


class RealFeatureStore(Protocol):
    """Disk cache of real-data feature sets (the harness provides one; see ``benchmarks``)."""

    def get_or_compute(self, split: str, extractor: FeatureExtractor,
                       compute: Callable[[], FeatureSet]) -> FeatureSet:
        """The cached set of ``split`` in ``extractor``'s space, computing and storing it once."""
        ...


def embed_moments(extractor: Callable[[Tensor], Tensor], batches: Iterator[Tensor],
                  count: int) -> FeatureSet:
    """Stream ``batches`` of images through ``extractor`` into a :class:`FeatureSet`.

    The features go straight into one preallocated float32 matrix and the sums Σf and Σffᵀ into
    float64 accumulators, so a set is held once, never twice.
    """
    features: Tensor | None = None
    total = second = None
    row = 0
    for batch in batches:
        f = extractor(batch).detach()
        if features is None:
            features = torch.empty(count, f.shape[1], dtype=torch.float32)
            total = torch.zeros(f.shape[1], dtype=torch.float64, device=f.device)
            second = torch.zeros(f.shape[1], f.shape[1], dtype=torch.float64, device=f.device)
        f64 = f.double()
        total += f64.sum(0)
        second.addmm_(f64.T, f64)
        features[row:row + len(f)] = f.float().cpu()
        row += len(f)
    if features is None or row != count or count < 2:
        raise ValueError(f"a feature set needs at least 2 images, got {row} of {count}")
    mean = total / count
    cov = (second - count * torch.outer(mean, mean)) / (count - 1)
    return FeatureSet(features, mean.cpu(), cov.cpu())


@dataclass
class EvalContext:
    """Everything a metric may read.

    Attributes:
        model: the trained model, in eval mode, on ``device``.
        test_images, train_images: float32 ``[N, C, H, W]`` in [0, 1] (CPU; batches are moved).
        batch_size: evaluation batch size.
        seed: seeds every random draw of the evaluation, so scores are reproducible.
        settings: the metric knobs (sample counts, interpolation protocol, ...).
        dataset: the dataset's registered name (ACAI scores exist only on ``lines``).
        load_extractor: name → feature extractor, for feature-space metrics.
        real_features: disk cache of real-data feature sets; ``None`` computes them each time.
        binarize: the data's ``data.binarize`` (none, static, dynamic), recorded with the
            likelihood scores.
        factors: the dataset's ground-truth factor sampler (``shapes``), for the
            disentanglement metrics; ``None`` for data without one.
        clock: seconds of a monotonic clock (:func:`time.perf_counter`; a test may step its
            own).
        pass_seconds: pass name → seconds of each shared pass so far (see :meth:`measure`):
            ``test_pass``, ``samples``, ``extractor[<name>]``, ``feature_set[<extractor>,
            <set>]`` and a :meth:`shared` result as its key (``prdc[lenet-mnist, 5]``).

    Timing convention: every second is counted once. A shared pass's seconds are its own, and
    a metric timed with :meth:`measure` gets its own seconds without the passes it triggered
    (the first metric to read the test pass does not pay for it), so the parts of an
    evaluation add up to its total.
    """

    model: LatentModel
    test_images: Tensor
    train_images: Tensor
    batch_size: int = 256
    seed: int = 0
    settings: EvalSettings = field(default_factory=EvalSettings)
    dataset: str = ""
    load_extractor: Callable[[str], FeatureExtractor] | None = None
    real_features: RealFeatureStore | None = None
    binarize: str = "none"
    factors: FactorSampler | None = None
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False)
    pass_seconds: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _extractors: dict[str, FeatureExtractor] = field(default_factory=dict, repr=False)
    _feature_sets: dict[tuple[str, str], FeatureSet] = field(default_factory=dict, repr=False)
    _shared: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)
    # Σ of the own seconds of everything measured so far: what a measurement subtracts for
    # the measurements that finished inside it.
    _measured_seconds: float = field(default=0.0, init=False, repr=False)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def now(self) -> float:
        """:attr:`clock` once the device's queued work is done: CUDA kernels run
        asynchronously, and without the sync a timing measures their launch, not their work."""
        synchronize(self.device)
        return self.clock()

    def measure(self, name: str, compute: Callable[[], T], into: dict[str, float]) -> T:
        """``compute()``, adding its own seconds to ``into[name]`` (also when it raises).

        Own seconds are the wall-clock seconds of the call, device synchronised at both ends,
        less the own seconds of the measurements made inside it (the shared passes it
        triggered, themselves net of the passes they triggered). Measurements nest, and the
        own seconds of all of them add up to the time spent in the outermost ones.
        """
        inner_before = self._measured_seconds
        started = self.now()
        try:
            return compute()
        finally:
            elapsed = self.now() - started
            # Clamped: the difference of equal float sums may be a rounding error below 0.
            own = max(0.0, elapsed - (self._measured_seconds - inner_before))
            into[name] = into.get(name, 0.0) + own
            self._measured_seconds += own

    def _pass(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()`` as the shared pass ``name`` (see :attr:`pass_seconds`)."""
        return self.measure(name, compute, self.pass_seconds)

    @staticmethod
    def _pass_name(kind: str, *parts: object) -> str:
        """``kind`` or ``kind[part, ...]``, as metric keys name their feature space."""
        return f"{kind}[{', '.join(map(str, parts))}]" if parts else kind

    def generator(self) -> torch.Generator:
        """A fresh CPU generator seeded with :attr:`seed`, so each metric's draws are fixed."""
        return torch.Generator().manual_seed(self.seed)

    def batches(self, images: Tensor) -> Iterator[Tensor]:
        """Yield device batches of ``images``, in order."""
        for batch in images.split(self.batch_size):
            yield batch.to(self.device, non_blocking=True)

    def shared(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """``compute()`` once per evaluation under ``key``: for results that several metrics
        read (one PRDC pass gives precision and recall; one decode gives both ACAI scores).
        The key's first item names the pass in :attr:`pass_seconds`, the rest its arguments."""
        if key not in self._shared:
            self._shared[key] = self._pass(self._pass_name(str(key[0]), *key[1:]), compute)
        return self._shared[key]

    @cached_property
    def test_pass(self) -> TestPass:
        from latentbench.metrics.reconstruction import reconstruction_pass

        return self._pass("test_pass", lambda: reconstruction_pass(self))

    @cached_property
    def samples(self) -> Tensor:
        """Generated images, float32 ``[M, C, H, W]`` in [0, 1] on the CPU, drawn once per
        evaluation from :meth:`generator`; ``M`` = ``settings.fake_samples`` or the number of
        test images. Every sample-based metric and feature space sees these same samples."""
        count = self.settings.fake_samples or len(self.test_images)
        generator = self.generator()

        def draw() -> Tensor:
            with torch.no_grad():  # samples are data for the metrics, never differentiated
                return torch.cat([self.model.sample(min(self.batch_size, count - start),
                                                    generator=generator).float().cpu()
                                  for start in range(0, count, self.batch_size)])

        return self._pass("samples", draw)

    def factor_codes(self) -> FactorCodes:
        """The encoded pool of factor draws every disentanglement metric reads:
        ``settings.factor_points + settings.factor_test_points`` points of the factor grid,
        drawn with :attr:`seed`, rendered and encoded a batch at a time, once per evaluation.

        Raises:
            ValueError: the dataset has no factor sampler.
        """
        if self.factors is None:
            raise ValueError(f"dataset {self.dataset!r} has no ground-truth factors")
        train, test = self.settings.factor_points, self.settings.factor_test_points
        sampler = self.factors
        return self.shared(("factor_codes", train, test), lambda: encode_factor_draws(
            self.model, sampler, train, test, self.seed, self.batch_size))

    def extractor(self, name: str) -> FeatureExtractor:
        """The feature extractor ``name``, loaded once and moved to the model's device."""
        if name not in self._extractors:
            if self.load_extractor is None:
                raise ValueError("this evaluation has no feature extractors (load_extractor)")
            load = self.load_extractor
            self._extractors[name] = self._pass(self._pass_name("extractor", name),
                                                lambda: load(name).to(self.device).eval())
        return self._extractors[name]

    def embed(self, extractor: str, images: Tensor) -> FeatureSet:
        """Features of ``images`` (CPU or device, ``[N, C, H, W]`` in [0, 1]), not cached."""
        with torch.no_grad():
            return embed_moments(self.extractor(extractor), self.batches(images), len(images))

    def feature_set(self, extractor: str,
                    which: Literal["test", "train", "samples"] | str,
                    images: Callable[[], Tensor] | None = None) -> FeatureSet:
        """The features of an image set, computed once per evaluation and shared by every
        metric in that space.

        ``test`` and ``train`` are the real splits, read from (and written to) the disk cache
        when there is one; ``samples`` are :attr:`samples`; any other name is the set that
        ``images()`` returns (interpolation midpoints, say).
        """
        key = (extractor, which)
        if key not in self._feature_sets:
            self._feature_sets[key] = self._pass(self._pass_name("feature_set", *key),
                                                 lambda: self._compute_feature_set(*key, images))
        return self._feature_sets[key]

    def _compute_feature_set(self, extractor: str, which: str,
                             images: Callable[[], Tensor] | None) -> FeatureSet:
        if which in ("test", "train"):
            split = self.test_images if which == "test" else self.train_images
            compute = lambda: self.embed(extractor, split)  # noqa: E731
            store = self.real_features
            return (compute() if store is None else
                    store.get_or_compute(which, self.extractor(extractor), compute))
        if which == "samples":
            return self.embed(extractor, self.samples)
        if images is None:
            raise ValueError(f"feature set {which!r} needs an images() function")
        return self.embed(extractor, images())
