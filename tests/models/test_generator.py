"""Generator-only models: scored on the sample metrics alone, never trained."""

import pytest
import torch

from latentbench.benchmarks.config import EvalSpec
from latentbench.benchmarks.evaluate import evaluate, plan_metrics
from latentbench.models import GeneratorModel, ImageSequence, ModelSpec


class Noise(GeneratorModel):
    def __init__(self, spec, image_shape):
        super().__init__()
        self.image_shape = image_shape

    def sample(self, n, generator=None):
        return torch.rand(n, *self.image_shape, generator=generator)


def test_only_the_sample_metrics_apply():
    planned = {p.key for p in plan_metrics(EvalSpec(), Noise.capabilities, "mnist5k",
                                           ("lenet-mnist",))}
    assert planned == {f"{name}[lenet-mnist]" for name in
                       ("fid", "kid", "precision", "recall", "density", "coverage",
                        "data_copying")} | {"checkerboard", "params"}


def test_a_generator_without_parameters_is_scored_and_its_samples_seeded():
    model = Noise(ModelSpec(), (1, 28, 28))
    assert model.device == torch.device("cpu") and not model.trained_here
    first = model.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(first, model.sample(4, torch.Generator().manual_seed(3)))
    with pytest.raises(NotImplementedError, match="no decoder"):
        model.decode(torch.zeros(1, 1))
    test, train = torch.rand(32, 1, 28, 28), torch.rand(32, 1, 28, 28)
    result = evaluate(model, test, train, EvalSpec(metrics=("checkerboard", "params")), seed=0)
    assert result.values["params"] == 0 and result.values["checkerboard"] > 0
    assert not result.errors


def test_an_image_sequence_hands_out_its_images_in_order_then_wraps():
    images = torch.arange(5.0).view(5, 1, 1, 1) / 4
    sequence = ImageSequence(images, "five images")
    assert sequence.sample(3).flatten().tolist() == [0, 0.25, 0.5]
    assert sequence.sample(4).flatten().tolist() == [0.75, 1.0, 0, 0.25]
    with pytest.raises(ValueError, match="non-empty"):
        ImageSequence(images[:0], "none")
