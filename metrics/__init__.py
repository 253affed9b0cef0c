"""Metrics: the registry, the evaluation context, and every registered metric.

Importing this package registers all metrics in :data:`METRICS`.
"""

from latentbench.metrics import (
    acai,
    checkerboard,
    elbo,
    features,
    inception,
    interpolation,
    iwae,
    latent,
    lenet,
    memorisation,
    reconstruction,
    sample_quality,
    throughput,
)
from latentbench.metrics.acai import acai_lines_metrics
from latentbench.metrics.context import EvalContext, TestPass
from latentbench.metrics.frechet import frechet_distance
from latentbench.metrics.kid import kid
from latentbench.metrics.prdc import prdc
from latentbench.metrics.registry import METRICS, Metric, register_metric

__all__ = [
    "METRICS",
    "EvalContext",
    "Metric",
    "TestPass",
    "acai",
    "acai_lines_metrics",
    "checkerboard",
    "elbo",
    "features",
    "frechet_distance",
    "inception",
    "interpolation",
    "iwae",
    "kid",
    "latent",
    "lenet",
    "memorisation",
    "prdc",
    "reconstruction",
    "register_metric",
    "sample_quality",
    "throughput",
]
