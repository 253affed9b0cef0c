"""Metrics: the registry, the evaluation context, and every registered metric.

Importing this package registers all metrics in :data:`METRICS`.
"""

from latentbench.metrics import (
    checkerboard,
    elbo,
    features,
    inception,
    iwae,
    latent,
    lenet,
    memorisation,
    reconstruction,
)
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
    "checkerboard",
    "elbo",
    "features",
    "frechet_distance",
    "inception",
    "iwae",
    "kid",
    "latent",
    "lenet",
    "memorisation",
    "prdc",
    "reconstruction",
    "register_metric",
]
