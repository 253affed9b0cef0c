"""The model registry and :func:`build_model`, the one way a suite turns a spec into a model.

Besides the built-in models, a suite can name a plug-in without editing this repo:
- ``model.name = "package.module:Class"`` imports the class;
- a package can register names under the ``latentbench.models`` entry-point group
  (``[project.entry-points."latentbench.models"] my-vae = "my_pkg.models:MyVAE"``).
A plug-in class is a :class:`LatentModel`; it is built with ``Class.from_spec(spec, image_shape)``
when it defines that, else ``Class(spec, image_shape)``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from latentbench.models.protocol import MODEL_SPECIFIC_FIELDS, LatentModel, ModelSpec
from latentbench.models.registry import InputError, Registry, import_attribute

ENTRY_POINT_GROUP = "latentbench.models"
MODELS: Registry[Any] = Registry("model", "model.name")
_loaded_entry_points = False


def load_entry_point_models() -> None:
    """Register the models that installed packages declare under ``latentbench.models``."""
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in MODELS:
            MODELS.register(entry.name)(_checked(entry.load(), f"entry point {entry.name!r}"))


def _checked(cls: Any, origin: str) -> type[LatentModel]:
    if not (isinstance(cls, type) and issubclass(cls, LatentModel)):
        raise InputError(f"model.name: {origin} is not a latentbench.models.LatentModel "
                         f"subclass")
    return cls


def model_class(name: str) -> type[LatentModel]:
    """The class for ``model.name``: registered, from an entry point, or ``module:Class``.

    Raises:
        InputError: unknown name, unimportable module, or not a :class:`LatentModel`.
    """
    if ":" in name:
        return _checked(import_attribute(name, "model.name"), repr(name))
    if name not in MODELS:
        load_entry_point_models()
    return MODELS.get(name)


def check_spec_fields(cls: type[LatentModel], spec: ModelSpec) -> None:
    """Refuse the :data:`~latentbench.models.protocol.MODEL_SPECIFIC_FIELDS` that ``spec``
    sets but ``cls`` does not read (its :attr:`~LatentModel.spec_fields`): a weight of a term
    the model does not have would otherwise be ignored without a word.

    Raises:
        InputError: ``"model.alpha: model 'vae' does not take it; models that do: btcvae"``.
    """
    taken = getattr(cls, "spec_fields", frozenset())
    for name in MODEL_SPECIFIC_FIELDS:
        if getattr(spec, name) is not None and name not in taken:
            takers = [n for n, c in MODELS.items() if name in getattr(c, "spec_fields", ())]
            raise InputError(f"model.{name}: model {spec.name!r} does not take it; models that "
                             f"do: {', '.join(takers) or 'none'}")


def build_model(spec: ModelSpec, image_shape: tuple[int, int, int]) -> LatentModel:
    """Build the model ``spec`` describes for images of ``image_shape`` ``(C, H, W)``.

    Raises:
        InputError: unknown name, encoder, decoder or likelihood, a setting the model does not
            take, or an image shape the model cannot handle.
    """
    cls = model_class(spec.name)
    check_spec_fields(cls, spec)
    build = getattr(cls, "from_spec", None) or cls
    return build(spec, image_shape)
