"""Metrics: the registry, the evaluation context, and every registered metric.

Importing this package registers all metrics in :data:`METRICS`.
"""

from latentbench.metrics import (
    acai,
    checkerboard,
    disentanglement,
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
from latentbench.metrics.dci import dci
from latentbench.metrics.factor_info import mig, modularity, mutual_information_matrix
from latentbench.metrics.factor_votes import betavae_score, factorvae_score
from latentbench.metrics.frechet import frechet_distance
from latentbench.metrics.kid import kid
from latentbench.metrics.prdc import prdc
from latentbench.metrics.registry import METRICS, Metric, register_metric
from latentbench.metrics.sap import sap
from latentbench.metrics.total_correlation import gaussian_total_correlation

__all__ = [
    "METRICS",
    "EvalContext",
    "Metric",
    "TestPass",
    "acai",
    "acai_lines_metrics",
    "betavae_score",
    "checkerboard",
    "dci",
    "disentanglement",
    "elbo",
    "factorvae_score",
    "features",
    "frechet_distance",
    "gaussian_total_correlation",
    "inception",
    "interpolation",
    "iwae",
    "kid",
    "latent",
    "lenet",
    "memorisation",
    "mig",
    "modularity",
    "mutual_information_matrix",
    "prdc",
    "reconstruction",
    "register_metric",
    "sample_quality",
    "sap",
    "throughput",
]
