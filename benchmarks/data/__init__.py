"""Datasets: embedded (``mnist5k``), generated (``lines``, ``shapes``) and torchvision ones.

Importing this package registers every dataset in :data:`DATASETS`.
"""

from latentbench.benchmarks.data import lines, mnist5k, shapes, torchvision_sets
from latentbench.benchmarks.data.lines import draw_lines
from latentbench.benchmarks.data.registry import DATASETS, DataSpec, ImageData, load_dataset

__all__ = [
    "DATASETS",
    "DataSpec",
    "ImageData",
    "draw_lines",
    "lines",
    "load_dataset",
    "mnist5k",
    "shapes",
    "torchvision_sets",
]
