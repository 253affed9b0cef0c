r"""Interpolation metrics: how a model's decodes move along a path between two latent codes.

A path runs between the codes of two test images (a model that encodes; the codes are posterior
means) or between two draws of the distribution the model samples from (a GAN:
:meth:`~latentbench.models.protocol.LatentModel.sample_latent`, the prior N(0, I)). It is
decoded at ``T`` evenly spaced points, endpoints included, and the decodes are embedded by a
feature extractor; with :math:`d_t = \lVert f(x_{t+1}) - f(x_t) \rVert` (Euclidean feature
distance between consecutive decodes), docs/metrics.md "Interpolation" defines:

- ``interp_smoothness`` = :math:`\max_t d_t / \sum_t d_t - 1/(T - 1)`: 0 when the decodes move
  at an even pace, :math:`1 - 1/(T - 1)` when all the change happens in one step (ACAI's
  smoothness, with feature distances in place of line angles);
- ``interp_straightness`` = :math:`\sum_t d_t / d(x_0, x_{T-1})`: 1 for a straight path in
  feature space, larger for a detour;
- ``ppl``: StyleGAN's perceptual path length, the mean squared feature speed along the path;
- ``ppl_ratio``: the PPL over the mean squared feature distance between the paths' endpoints,
  free of the feature scale (≈ 1 for decodes that move through feature space at constant
  velocity);
- ``interp_fid``: the FID of decoded midpoints (t = ½) against the test images.

Every score carries a standard error (:attr:`Score.std_error`, with ``std_error_method`` in its
details): the std over paths / √paths for the per-path scores, the std of the kept per-pair
values / √kept for the PPL, a bootstrap over pairs for the PPL ratio and over the midpoints for
``interp_fid``.

Decoders that unpool with encoder switches (``unpool-max``) have no switches between two
images: the switches of either endpoint would leak that image into the path (a crossfade in
disguise). Every decode here is a plain :meth:`decode` of the code — for ``unpool-max`` each
value goes to the top-left of its cell, as when sampling — and the scores say so in their
``details``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentbench.metrics.context import INTERPOLATION_PATHS, EvalContext
from latentbench.metrics.frechet import bootstrap_counts, frechet_bootstrap, frechet_distance
from latentbench.metrics.registry import Score, register_metric
from latentbench.models.registry import check_int

#: Below this sin Ω (Ω the angle between the endpoints) the great circle is not defined well
#: enough to follow — (anti)parallel or zero vectors — and :func:`slerp` takes the straight line.
SLERP_MIN_SINE = 1e-7
#: The feature set of the decoded midpoints, as named in :meth:`EvalContext.feature_set`.
MIDPOINTS = "interp_midpoints"
#: Bootstrap resamples of the midpoints for the standard error of ``interp_fid`` (measured on 2
#: shared cores at 1,000 midpoints: ≈ 0.2 s each at d = 2048, ≈ 15 ms at d = 128).
INTERP_FID_BOOTSTRAP = 20
#: Bootstrap resamples of the pairs for the standard error of ``ppl_ratio`` (a percentile and
#: two means each: cheap).
PPL_RATIO_BOOTSTRAP = 200


# --------------------------------------------------------------------------- paths in latent space


def _broadcast_t(t: float | Tensor, like: Tensor) -> Tensor:
    """``t`` as a tensor of ``like``'s dtype with a trailing axis, to broadcast over ``d``."""
    return torch.as_tensor(t, dtype=like.dtype, device=like.device).unsqueeze(-1)


def lerp(z0: Tensor, z1: Tensor, t: float | Tensor) -> Tensor:
    r"""Straight-line interpolation :math:`z(t) = (1 - t)\,z_0 + t\,z_1`.

    Written as a weighted sum rather than :math:`z_0 + t(z_1 - z_0)` so that ``t = 0`` and
    ``t = 1`` give :math:`z_0` and :math:`z_1` exactly.

    Args:
        z0, z1: codes ``[..., d]`` (broadcastable against each other).
        t: a number, or a tensor broadcastable to the batch shape ``[...]`` (one ``t`` per code
            pair). Values outside [0, 1] extrapolate along the line.

    Returns:
        ``[..., d]`` in the promoted dtype of ``z0`` and ``z1``.
    """
    dtype = torch.promote_types(z0.dtype, z1.dtype)
    z0, z1 = z0.to(dtype), z1.to(dtype)
    t = _broadcast_t(t, z0)
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, t: float | Tensor) -> Tensor:
    r"""Spherical interpolation: along the great circle through the two directions, with the
    norm interpolated linearly.

    With :math:`u_i = z_i / \lVert z_i \rVert` and :math:`\Omega = \angle(u_0, u_1) \in [0, \pi]`
    (computed as :math:`2\,\operatorname{atan2}(\lVert u_0 - u_1 \rVert, \lVert u_0 + u_1
    \rVert)`, accurate at every angle):

    .. math::
        z(t) = \big((1 - t)\lVert z_0 \rVert + t\,\lVert z_1 \rVert\big)\;
               \frac{\sin((1 - t)\Omega)\,u_0 + \sin(t\Omega)\,u_1}{\sin \Omega}

    The direction turns at a constant angular speed and never passes near the origin, where a
    Gaussian latent has almost no mass in high dimensions (why White 2016, "Sampling Generative
    Networks", prefers it to :func:`lerp`); for endpoints of equal norm it is Shoemake's slerp
    and keeps that norm. StyleGAN's PPL slerps unit vectors; ACAI's figures slerp the raw codes
    (whose norm then bulges between unequal endpoints) — the linear norm avoids that bulge.

    Where the great circle is undefined — a zero endpoint, or parallel or antiparallel
    endpoints (:math:`\sin\Omega <` :data:`SLERP_MIN_SINE`) — the result is :func:`lerp`, which
    parallel endpoints give anyway. ``t = 0`` and ``t = 1`` return the endpoints exactly.

    Args:
        z0, z1: codes ``[..., d]`` (broadcastable against each other).
        t: a number, or a tensor broadcastable to the batch shape ``[...]``. Values outside
            [0, 1] continue along the circle.

    Returns:
        ``[..., d]`` in the promoted dtype of ``z0`` and ``z1`` (use float64 for accuracy).
    """
    straight = lerp(z0, z1, t)
    z0, z1 = z0.to(straight.dtype), z1.to(straight.dtype)
    z0, z1 = torch.broadcast_tensors(z0, z1)
    t = _broadcast_t(t, straight)
    n0, n1 = z0.norm(dim=-1, keepdim=True), z1.norm(dim=-1, keepdim=True)
    defined = (n0 > 0) & (n1 > 0)
    u0 = z0 / torch.where(defined, n0, 1)
    u1 = z1 / torch.where(defined, n1, 1)
    omega = 2 * torch.atan2((u0 - u1).norm(dim=-1, keepdim=True),
                            (u0 + u1).norm(dim=-1, keepdim=True))
    sine = torch.sin(omega)
    defined = defined & (sine >= SLERP_MIN_SINE)
    safe_sine = torch.where(defined, sine, 1)
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / safe_sine
    curved = ((1 - t) * n0 + t * n1) * direction
    out = torch.where(defined, curved, straight)
    # The formula gives the endpoints only up to round-off (‖z‖·z/‖z‖); pin them exactly.
    out = torch.where(t == 0, z0, out)
    return torch.where(t == 1, z1, out)


INTERPOLATIONS: dict[str, Callable[[Tensor, Tensor, float | Tensor], Tensor]] = {
    "lerp": lerp, "slerp": slerp}


def interpolate(z0: Tensor, z1: Tensor, t: float | Tensor, path: str) -> Tensor:
    """:func:`lerp` or :func:`slerp` by name.

    Raises:
        ValueError: ``path`` is neither ``lerp`` nor ``slerp``.
    """
    if path not in INTERPOLATIONS:
        raise ValueError(f"interpolation path must be one of "
                         f"{', '.join(INTERPOLATION_PATHS)}, got {path!r}")
    return INTERPOLATIONS[path](z0, z1, t)


def interpolation_path(z0: Tensor, z1: Tensor, steps: int, path: str) -> Tensor:
    r"""``steps`` evenly spaced points :math:`t_k = k / (T - 1)` on the path from each
    :math:`z_0` to its :math:`z_1`, endpoints included.

    Args:
        z0, z1: start and end codes ``[P, d]``.
        steps: points per path ``T`` ≥ 2.
        path: ``lerp`` or ``slerp``.

    Returns:
        ``[P, T, d]``; ``[:, 0]`` is ``z0`` and ``[:, -1]`` is ``z1`` exactly.

    Raises:
        ValueError: shapes that are not one ``[P, d]``, ``steps`` < 2, or an unknown ``path``.
    """
    if z0.ndim != 2 or z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must both be [P, d], got {tuple(z0.shape)} and "
                         f"{tuple(z1.shape)}")
    steps = check_int(steps, "steps", minimum=2)
    t = torch.linspace(0, 1, steps, dtype=torch.promote_types(z0.dtype, z1.dtype))
    return interpolate(z0[:, None], z1[:, None], t[None, :], path)


# ------------------------------------------------------------------------ scores of feature paths


def _check_paths(features: Tensor) -> Tensor:
    if features.ndim != 3 or features.shape[1] < 2:
        raise ValueError(f"features must be [P, T, d] with T >= 2, got {tuple(features.shape)}")
    return features.double()


def path_smoothness(features: Tensor) -> Tensor:
    r"""Smoothness of each path: :math:`\max_t d_t / \sum_t d_t - 1/(T - 1)`, with
    :math:`d_t = \lVert f_{t+1} - f_t \rVert` (Euclidean).

    0 for uniform motion; :math:`1 - 1/(T - 1)` when one step holds all the change; in between
    otherwise. Computed in float64.

    Args:
        features: ``[P, T, d]``, the features of the ``T`` decodes along each of ``P`` paths.

    Returns:
        float64 ``[P]``; NaN for a path that does not move (:math:`\sum_t d_t = 0`), where the
        ratio is undefined.

    Raises:
        ValueError: not ``[P, T, d]`` with ``T`` ≥ 2.
    """
    f = _check_paths(features)
    steps = (f[:, 1:] - f[:, :-1]).norm(dim=-1)
    total = steps.sum(1)
    ratio = steps.max(1).values / torch.where(total > 0, total, 1)
    return torch.where(total > 0, ratio - 1 / (f.shape[1] - 1), torch.nan)


def path_straightness(features: Tensor) -> Tensor:
    r"""Straightness of each path: :math:`\sum_t d_t / \lVert f_{T-1} - f_0 \rVert` ≥ 1
    (the triangle inequality), 1 for a path that runs straight in feature space. Float64.

    Args:
        features: ``[P, T, d]``.

    Returns:
        float64 ``[P]``; NaN where the endpoints' features coincide.

    Raises:
        ValueError: not ``[P, T, d]`` with ``T`` ≥ 2.
    """
    f = _check_paths(features)
    length = (f[:, 1:] - f[:, :-1]).norm(dim=-1).sum(1)
    chord = (f[:, -1] - f[:, 0]).norm(dim=-1)
    return torch.where(chord > 0, length / torch.where(chord > 0, chord, 1), torch.nan)


def trimmed_values(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """The values between the ``low`` and ``high`` percentiles, bounds included, in order.

    StyleGAN's PPL rule: the bounds are the order statistics just below / above the
    percentiles (``method="lower"`` / ``"higher"``), so no value is interpolated.
    """
    lo = np.percentile(values, low, method="lower")
    hi = np.percentile(values, high, method="higher")
    return values[(values >= lo) & (values <= hi)]


def trimmed_mean(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, int]:
    """Mean of :func:`trimmed_values`.

    Returns:
        The mean and how many values it kept.
    """
    kept = trimmed_values(values, low, high)
    return float(kept.mean()), int(kept.size)


def standard_error(values: np.ndarray | Tensor) -> float | None:
    """``std(values) / √n`` (normaliser n − 1) of finite values; ``None`` for fewer than two."""
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    return float(array.std(ddof=1) / np.sqrt(array.size)) if array.size >= 2 else None


# --------------------------------------------------------------------- decoding paths of a model


def decodes_without_switches(ctx: EvalContext) -> bool:
    """Whether the model's decoder would use encoder switches it does not get here."""
    return any(getattr(m, "needs_switches", False) for m in ctx.model.modules())


def _random_pairs(n: int, pairs: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``pairs`` index pairs ``(i, j)``, uniform over ordered pairs of distinct items of ``n``."""
    if n < 2:
        raise ValueError(f"interpolation needs at least 2 test images, got {n}")
    first = torch.randint(n, (pairs,), generator=generator)
    second = (first + torch.randint(1, n, (pairs,), generator=generator)) % n
    return first, second


@torch.no_grad()
def endpoint_latents(ctx: EvalContext, pairs: int,
                     generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The two ends of ``pairs`` interpolation paths, float64 ``[pairs, latent_dim]`` (CPU).

    A model that encodes: the posterior means of two distinct random test images per pair. A
    model that does not (a GAN): two draws of :meth:`~LatentModel.sample_latent`, the
    distribution its samples are decoded from.
    """
    model = ctx.model
    if "encode" in model.capabilities:
        first, second = _random_pairs(len(ctx.test_images), pairs, generator)
        images = ctx.test_images[torch.cat([first, second])]
        codes = torch.cat([model.encode(x).mean.flatten(1).cpu() for x in ctx.batches(images)])
        return codes[:pairs].double(), codes[pairs:].double()
    z0 = model.sample_latent(pairs, generator=generator).cpu().double()
    z1 = model.sample_latent(pairs, generator=generator).cpu().double()
    return z0, z1


def _decode_batches(ctx: EvalContext, z: Tensor) -> Iterator[Tensor]:
    """Yield ``sigmoid(model.decode(z))`` batch by batch, on the device, float32."""
    dtype = next(ctx.model.parameters()).dtype
    for batch in ctx.batches(z.to(dtype)):
        yield torch.sigmoid(ctx.model.decode(batch)).float()


@torch.no_grad()
def decode_latents(ctx: EvalContext, z: Tensor) -> Tensor:
    """Images ``sigmoid(decode(z))`` in [0, 1], float32 ``[N, C, H, W]`` on the CPU."""
    return torch.cat([x.cpu() for x in _decode_batches(ctx, z)])


@torch.no_grad()
def decoded_features(ctx: EvalContext, extractor: str, z: Tensor) -> Tensor:
    """Features of the decodes of ``z`` ``[N, latent_dim]`` in ``extractor``'s space, float64
    ``[N, d]`` on the CPU; no image set is held."""
    net = ctx.extractor(extractor)
    return torch.cat([net(x).double().cpu() for x in _decode_batches(ctx, z)])


@torch.no_grad()
def image_features(ctx: EvalContext, extractor: str, images: Tensor) -> Tensor:
    """Features of ``images`` ``[N, C, H, W]`` in ``extractor``'s space, float64 ``[N, d]``."""
    net = ctx.extractor(extractor)
    return torch.cat([net(x).double().cpu() for x in ctx.batches(images)])


@torch.no_grad()
def interpolate_decoded(ctx: EvalContext, pairs: int, steps: int, path: str,
                        generator: torch.Generator) -> Tensor:
    """Decoded interpolations of ``ctx.model``: ``pairs`` paths of ``steps`` points each.

    Endpoints are chosen by :func:`endpoint_latents` (encoded random test pairs, or a GAN's
    latent draws) with ``generator``; the path is :func:`interpolation_path` (``lerp`` or
    ``slerp``, computed in float64, decoded in the model's dtype); each point is decoded by
    :meth:`decode` — never with encoder switches, which are undefined between two images (see
    the module docstring).

    Args:
        ctx: the evaluation context (model, test images, batch size, device).
        pairs: number of paths ``P``.
        steps: points per path ``T`` ≥ 2, endpoints included.
        path: ``lerp`` or ``slerp``.
        generator: the source of every random choice (the pairs, or the latent draws).

    Returns:
        float32 ``[P, T, C, H, W]`` in [0, 1] on the CPU.
    """
    z0, z1 = endpoint_latents(ctx, pairs, generator)
    codes = interpolation_path(z0, z1, steps, path)
    images = decode_latents(ctx, codes.flatten(0, 1))
    return images.view(pairs, steps, *images.shape[1:])


def evaluation_paths(ctx: EvalContext) -> Tensor:
    """The protocol's decoded paths (``settings.interp_pairs`` × ``settings.interp_steps`` on
    ``settings.interp_path``, drawn from ``ctx.generator()``), decoded once per evaluation and
    shared by every metric that reads them (the feature-space smoothness and straightness, the
    ACAI scores)."""
    s = ctx.settings
    return ctx.shared(("interpolation_paths", s.interp_pairs, s.interp_steps, s.interp_path),
                      lambda: interpolate_decoded(ctx, s.interp_pairs, s.interp_steps,
                                                  s.interp_path, ctx.generator()))


def interpolation_strips(ctx: EvalContext, rows: int = 8, steps: int | None = None) -> Tensor:
    """Decoded interpolations for the report's figure: ``rows`` paths, one per row.

    Args:
        ctx: the evaluation context; the path kind is ``settings.interp_path`` and the pairs
            come from ``ctx.generator()``.
        rows: number of paths.
        steps: points per path, endpoints included; ``None``: ``settings.interp_steps``.

    Returns:
        float32 ``[rows · steps, C, H, W]`` in [0, 1], row after row: a grid with ``steps``
        images per row shows one interpolation per row.
    """
    steps = ctx.settings.interp_steps if steps is None else steps
    paths = interpolate_decoded(ctx, rows, steps, ctx.settings.interp_path, ctx.generator())
    return paths.flatten(0, 1)


def path_details(ctx: EvalContext) -> dict[str, Any]:
    """What every interpolation score states about how its paths were made."""
    details: dict[str, Any] = {
        "path": ctx.settings.interp_path,
        "endpoints": ("encoded test pairs (posterior means)" if "encode" in ctx.model.capabilities
                      else "latent draws (sample_latent)"),
    }
    if decodes_without_switches(ctx):
        details["decoder_switches"] = "none between images: unpool-max puts values top-left"
    return details


def _mean_defined(values: Tensor) -> tuple[float, int]:
    """Mean over the non-NaN values and their count (NaN when there are none)."""
    defined = values[~values.isnan()]
    return (float(defined.mean()) if len(defined) else float("nan")), len(defined)


#: How the per-path scores' standard error is computed.
PER_PATH_STD_ERROR = "std over the defined paths (n − 1) / √paths"


def _path_score(ctx: EvalContext, extractor: str, score: Callable[[Tensor], Tensor]) -> Score:
    paths = evaluation_paths(ctx)
    features = image_features(ctx, extractor, paths.flatten(0, 1))
    per_path = score(features.view(paths.shape[0], paths.shape[1], -1))
    value, defined = _mean_defined(per_path)
    return Score(value, samples=defined, std_error=standard_error(per_path),
                 details={**path_details(ctx), "pairs": len(per_path), "steps": paths.shape[1],
                          "undefined_pairs": len(per_path) - defined,
                          "std_error_method": PER_PATH_STD_ERROR})


# ------------------------------------------------------------------------------ registered metrics


@register_metric("interp_smoothness", higher_is_better=False, family="interpolation", unit="ratio",
                 needs={"decode"}, feature_space=True)
def interp_smoothness(ctx: EvalContext, extractor: str) -> Score:
    """Largest feature step over the path's length, minus 1/(T − 1): 0 = uniform motion.

    Mean of :func:`path_smoothness` over the protocol's paths (:func:`evaluation_paths`);
    paths that do not move at all are undefined and left out (``undefined_pairs`` in the
    details; NaN if none is left).
    """
    return _path_score(ctx, extractor, path_smoothness)


@register_metric("interp_straightness", higher_is_better=False, family="interpolation",
                 needs={"decode"}, unit="ratio", feature_space=True)
def interp_straightness(ctx: EvalContext, extractor: str) -> Score:
    """Feature path length over the endpoints' feature distance: 1 = straight.

    Mean of :func:`path_straightness` over the protocol's paths; paths whose endpoints have
    the same features are undefined and left out.
    """
    return _path_score(ctx, extractor, path_straightness)


@dataclass(frozen=True)
class PathLengthPass:
    """The draws and per-pair values behind ``ppl`` and ``ppl_ratio`` in one feature space.

    Attributes:
        z0, z1: the path endpoints, float64 ``[n, latent_dim]`` on the CPU.
        distance: float64 ``[n]``, each pair's squared feature distance over ε².
    """

    z0: Tensor
    z1: Tensor
    distance: np.ndarray


def path_length_pass(ctx: EvalContext, extractor: str) -> PathLengthPass:
    """The PPL draws and per-pair values (see :func:`ppl`), computed once per evaluation and
    feature space and shared by ``ppl`` and ``ppl_ratio``."""

    @torch.no_grad()
    def compute() -> PathLengthPass:
        s = ctx.settings
        generator = ctx.generator()
        z0 = ctx.model.sample_latent(s.ppl_pairs, generator=generator).cpu().double()
        z1 = ctx.model.sample_latent(s.ppl_pairs, generator=generator).cpu().double()
        t = torch.rand(s.ppl_pairs, generator=generator, dtype=torch.float64)
        ends = torch.stack([interpolate(z0, z1, t, s.interp_path),
                            interpolate(z0, z1, t + s.ppl_epsilon, s.interp_path)], dim=1)
        # Both ends of a step go through the decoder in the same batch, side by side, so that
        # batch-size-dependent kernels cannot add a difference of their own that ε² would
        # magnify.
        features = decoded_features(ctx, extractor, ends.flatten(0, 1)).view(s.ppl_pairs, 2, -1)
        distance = (features[:, 1] - features[:, 0]).square().sum(1) / s.ppl_epsilon**2
        return PathLengthPass(z0, z1, distance.numpy())

    return ctx.shared(("path_length", extractor), compute)


def _ppl_details(ctx: EvalContext) -> dict[str, Any]:
    s = ctx.settings
    return {"path": s.interp_path, "epsilon": s.ppl_epsilon,
            "distance": "squared Euclidean of features",
            "endpoints": "latent draws (sample_latent)"}


@register_metric("ppl", higher_is_better=False, family="interpolation",
                 needs={"sample", "decode"}, unit="squared feature dist", feature_space=True,
                 uses_prior=True)
def ppl(ctx: EvalContext, extractor: str) -> Score:
    r"""Perceptual path length: mean squared feature speed along latent paths (StyleGAN).

    .. math::
        \mathrm{PPL} = \mathbb E\Big[\tfrac{1}{\varepsilon^2}
            \big\lVert f(G(i(z_1, z_2; t))) - f(G(i(z_1, z_2; t + \varepsilon)))\big\rVert^2\Big]

    with :math:`z_1, z_2` drawn from :meth:`~LatentModel.sample_latent` (the prior for a VAE or
    GAN, the fitted Gaussian for an AE — the same distribution for every model family, so the
    scores compare across them), :math:`t \sim U(0, 1)`, :math:`i` the ``settings.interp_path``
    interpolation (StyleGAN slerps in Z), :math:`\varepsilon` = ``settings.ppl_epsilon``,
    :math:`G(z) = \sigma(\mathrm{decode}(z))` and ``settings.ppl_pairs`` pairs. Values outside
    the 1st/99th percentiles are dropped before the mean (:func:`trimmed_mean`). Slerp turns
    about the origin, which suits a centred prior N(0, I); the AE's fitted Gaussian is not
    centred, so for it ``lerp`` (the default) is the meaningful path.

    The distance is the *squared Euclidean* distance of the extractor's features. StyleGAN's
    LPIPS is itself a (weighted) squared distance of normalised VGG features, so both are
    squared distances over ε²; the numbers are on the scale of the extractor's features
    (features scaled by c give c² times the PPL) and compare only within one extractor —
    ``ppl_ratio`` is the scale-free companion. The codes are interpolated in float64 but decoded
    in the model's float32, whose round-off, divided by ε², sets a noise floor (as in StyleGAN).
    The standard error is the std of the kept per-pair values over √kept.
    """
    kept = trimmed_values(path_length_pass(ctx, extractor).distance)
    return Score(float(kept.mean()), samples=ctx.settings.ppl_pairs,
                 std_error=standard_error(kept),
                 details={**_ppl_details(ctx), "kept": int(kept.size),
                          "std_error_method": "std of the kept per-pair values (n − 1) / √kept"})


@register_metric("ppl_ratio", higher_is_better=False, family="interpolation",
                 needs={"sample", "decode"},
                 unit="ratio", feature_space=True, uses_prior=True)
@torch.no_grad()
def ppl_ratio(ctx: EvalContext, extractor: str) -> Score:
    r"""PPL over the mean squared feature distance of the path endpoints: scale-free.

    .. math::
        \mathrm{PPL\ ratio} = \mathrm{PPL} \,/\,
            \mathbb E_{z_1, z_2}\big\lVert f(G(z_1)) - f(G(z_2))\big\rVert^2

    on the same pairs as :func:`ppl` (same draws, same features): scaling the features by any
    c multiplies both by c², so the ratio does not depend on the extractor's scale. Per path,
    :math:`\int_0^1 \lVert \dot f \rVert^2 dt \ge \lVert f(1) - f(0) \rVert^2` (Cauchy–Schwarz
    and the triangle inequality), with equality when the decodes move through feature space at
    a constant velocity (a linear decoder on ``lerp``): ≈ 1 is the floor (a little below, from
    the trimming of the PPL's largest values), larger for paths that speed up, slow down or
    detour. NaN when every pair of endpoints decodes to the same features (the PPL is then 0
    too). The standard error is a bootstrap over the pairs (200 resamples, the trimming redone
    in each).
    """
    lengths = path_length_pass(ctx, extractor)
    pairs = len(lengths.distance)
    ends = torch.stack([lengths.z0, lengths.z1], dim=1).flatten(0, 1)
    features = decoded_features(ctx, extractor, ends).view(pairs, 2, -1)
    chord = (features[:, 1] - features[:, 0]).square().sum(1).numpy()

    def ratio(index: np.ndarray | slice) -> float:
        denominator = float(chord[index].mean())
        numerator = float(trimmed_values(lengths.distance[index]).mean())
        return numerator / denominator if denominator > 0 else float("nan")

    value = ratio(slice(None))
    rows = np.arange(pairs)
    resampled = np.array([ratio(np.repeat(rows, counts)) for counts in
                          bootstrap_counts(pairs, PPL_RATIO_BOOTSTRAP, ctx.seed)])
    finite = resampled[np.isfinite(resampled)]
    std_error = float(finite.std(ddof=1)) if np.isfinite(value) and finite.size >= 2 else None
    return Score(value, samples=pairs, std_error=std_error,
                 details={**_ppl_details(ctx), "endpoint_sq_distance": float(chord.mean()),
                          "std_error_method": f"bootstrap over pairs ({PPL_RATIO_BOOTSTRAP} "
                                              f"resamples, trimming redone, seed ctx.seed)"})


def midpoint_count(ctx: EvalContext) -> int:
    """Midpoints for ``interp_fid``: as many as test images (FID compares only at equal N, and
    16 midpoints cannot give a covariance), never fewer than ``settings.interp_pairs``."""
    return max(ctx.settings.interp_pairs, len(ctx.test_images))


def decoded_midpoints(ctx: EvalContext) -> Tensor:
    """The decoded t = ½ points of :func:`midpoint_count` random paths, ``[M, C, H, W]`` in
    [0, 1]; decoded once per evaluation, whatever the number of feature spaces."""
    path, count = ctx.settings.interp_path, midpoint_count(ctx)

    def compute() -> Tensor:
        z0, z1 = endpoint_latents(ctx, count, ctx.generator())
        return decode_latents(ctx, interpolate(z0, z1, 0.5, path))

    return ctx.shared(("interpolation_midpoints", path, count), compute)


@register_metric("interp_fid", higher_is_better=False, family="interpolation",
                 needs={"decode"}, feature_space=True)
def interp_fid(ctx: EvalContext, extractor: str) -> Score:
    """FID of decoded interpolation midpoints (t = ½) against the test images.

    As many midpoints as test images (:func:`midpoint_count`), each between two random test
    codes (a GAN: two latent draws), on ``settings.interp_path``. A realistic midpoint scores
    like a sample from the data; a crossfade of two images does not. The standard error is the
    std of the FIDs of :data:`INTERP_FID_BOOTSTRAP` bootstrap resamples of the midpoints (the
    test set fixed; :func:`~latentbench.metrics.frechet.frechet_bootstrap` with the
    multiplicities of :func:`~latentbench.metrics.frechet.bootstrap_counts` seeded with
    ``ctx.seed``).
    """
    fake = ctx.feature_set(extractor, MIDPOINTS, lambda: decoded_midpoints(ctx))
    real = ctx.feature_set(extractor, "test")
    # Fréchet distance is symmetric: the midpoints go where frechet_bootstrap resamples.
    resampled = frechet_bootstrap(fake.features, real.mean, real.cov,
                                  bootstrap_counts(fake.n, INTERP_FID_BOOTSTRAP, ctx.seed))
    return Score(frechet_distance(fake.mean, fake.cov, real.mean, real.cov), samples=fake.n,
                 std_error=float(resampled.std(ddof=1)),
                 details={**path_details(ctx), "real": real.n,
                          "std_error_method": f"bootstrap over the midpoints "
                                              f"({INTERP_FID_BOOTSTRAP} resamples, test set "
                                              f"fixed, seed ctx.seed)"})
