"""The model registry and :func:`build_model`, the one way a suite turns a spec into a model."""

from __future__ import annotations

from typing import Protocol

from latentbench.models.encoders import check_image_shape
from latentbench.models.protocol import LatentModel, ModelSpec
from latentbench.models.registry import Registry


class ModelClass(Protocol):
    """A registered model: a :class:`LatentModel` class with a ``from_spec`` constructor."""

    summary: str

    def from_spec(self, spec: ModelSpec, image_shape: tuple[int, int, int]) -> LatentModel: ...


MODELS: Registry[ModelClass] = Registry("model", "model.name")


def build_model(spec: ModelSpec, image_shape: tuple[int, int, int]) -> LatentModel:
    """Build the model ``spec`` describes for images of ``image_shape`` ``(C, H, W)``.

    Raises:
        InputError: unknown name, encoder, decoder or likelihood, a setting the model does not
            take, or an image shape the conv stacks cannot handle.
    """
    check_image_shape(image_shape)
    return MODELS.get(spec.name).from_spec(spec, image_shape)
