"""``data.binarize``: static and dynamic Bernoulli draws, their seeds, and what they do to the
Bernoulli likelihood (its entropy floor is 0 on binary digits, 46 nats per image on grey ones)."""

import hashlib
import json
from dataclasses import replace

import pytest
import torch

from latentbench.benchmarks.config import RunConfig, config_from_tables
from latentbench.benchmarks.data import DataSpec, load_dataset
from latentbench.benchmarks.data.registry import bernoulli_draw
from latentbench.benchmarks.suite import load_suite
from latentbench.metrics import METRICS, EvalContext
from latentbench.models.protocol import LatentModel, Posterior
from latentbench.models.registry import InputError


@pytest.fixture(scope="module")
def grey():
    return load_dataset(DataSpec())


@pytest.fixture(scope="module")
def static():
    return load_dataset(DataSpec(binarize="static"))


def test_static_draws_are_binary_fixed_and_as_bright_as_the_grey_digits(grey, static):
    again = grey.binarized("static", 0)  # what load_dataset does after loading
    assert torch.equal(static.train, again.train) and torch.equal(static.test, again.test)
    for split in ("train", "test"):
        binary, intensity = getattr(static, split), getattr(grey, split)
        assert set(binary.unique().tolist()) == {0.0, 1.0}
        # E[ones] = mean intensity; the draw's s.d. over 784,000+ pixels is < 4e-4.
        assert binary.mean().item() == pytest.approx(intensity.mean().item(), abs=2e-3)
        # Black and white pixels stay what they are; only the grey ones are drawn.
        assert torch.equal(binary[intensity == 0], intensity[intensity == 0])
        assert torch.equal(binary[intensity == 1], intensity[intensity == 1])
    assert static.binarize == "static" and not static.dynamic
    assert static.train_epoch(0, 0) is static.train  # the same images every epoch
    assert not torch.equal(static.train, grey.binarized("static", seed=1).train)
    assert torch.equal(static.train_labels, grey.train_labels)


def test_a_smaller_split_gets_the_prefix_of_the_same_draw(grey, static):
    small = grey.head(300, 50).binarized("static", 0)  # load_dataset with n_train, n_test
    assert torch.equal(small.train, static.train[:300]) and torch.equal(small.test,
                                                                        static.test[:50])
    pixels = torch.rand(5000, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    # Across the draw's internal chunks of 4,096 images too.
    assert torch.equal(bernoulli_draw(pixels, 7, 0)[:4100], bernoulli_draw(pixels[:4100], 7, 0))


def test_dynamic_draws_anew_each_epoch_and_evaluates_on_the_static_draw(grey, static):
    dynamic = grey.head(1000, None).binarized("dynamic", 0)
    assert dynamic.dynamic and torch.equal(dynamic.test, static.test)
    assert torch.equal(dynamic.train, static.train[:1000])  # the fixed draw for evaluation
    epochs = [dynamic.train_epoch(epoch, seed=3) for epoch in range(3)]
    assert torch.equal(epochs[1], dynamic.train_epoch(1, seed=3))  # resuming redraws the same
    assert not torch.equal(epochs[0], epochs[1])
    assert not torch.equal(epochs[0], dynamic.train_epoch(0, seed=4))  # and each run its own
    for drawn in epochs:
        assert set(drawn.unique().tolist()) == {0.0, 1.0}
        assert drawn.mean().item() == pytest.approx(grey.train[:1000].mean().item(), abs=3e-3)
    # Averaged over epochs, the draws approach the grey intensities.
    few = dynamic.head(50, None)
    assert torch.equal(few.train_epoch(2, 3), epochs[2][:50])
    many = torch.stack([few.train_epoch(e, 0) for e in range(200)]).mean(0)
    assert (many - grey.train[:50]).abs().max() < 0.15
    assert torch.equal(dynamic.head(10, None).train_intensities, grey.train[:10])


def test_the_setting_is_checked_and_parsed():
    with pytest.raises(InputError, match="data.binarize: must be one of none, static, dynamic"):
        DataSpec(binarize="yes")
    config = config_from_tables("s", {"data": {"binarize": "dynamic"}})
    assert config.data.binarize == "dynamic"
    with pytest.raises(InputError, match="data.binarize"):
        config_from_tables("s", {"data": {"binarize": True}})


def id_before_binarize(config):
    """The run id as it was computed before data.binarize (and eval.iwae_images,
    eval.factor_points, eval.factor_test_points, model.alpha, model.gamma, model.capacity,
    model.capacity_steps, model.weights, model.prior and model.prior_components, added later)
    existed: the same payload, hashed the
    same way, without those fields."""
    payload = {k: v for k, v in config.to_dict().items() if k != "suite"}
    del payload["train"]["checkpoint_seconds"]
    del payload["data"]["binarize"]
    for name in ("iwae_images", "factor_points", "factor_test_points"):
        del payload["eval"][name]
    for name in ("alpha", "gamma", "capacity", "capacity_steps", "weights", "prior",
                 "prior_components"):
        del payload["model"][name]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_the_default_keeps_every_existing_run_id():
    configs = [RunConfig(), RunConfig(data=DataSpec(dataset="lines", n_train=100), seed=3,
                                      model=replace(RunConfig().model, decoder="unpool-max"))]
    configs += load_suite("smoke").runs + load_suite("decoders").runs
    for config in configs:
        assert config.run_id == id_before_binarize(config)
    ids = {RunConfig(data=DataSpec(binarize=b)).run_id for b in ("none", "static", "dynamic")}
    assert len(ids) == 3
    assert json.loads(json.dumps(RunConfig().to_dict()))["data"]["binarize"] == "none"


class PerfectAutoencoder(LatentModel):
    """Gives every image back: the best any decoder can do under a Bernoulli likelihood."""

    capabilities = frozenset({"encode"})
    latent_dim = 784
    pixel_likelihood = "bernoulli"

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def encode(self, x):
        return Posterior(mean=x.flatten(1))

    def decode(self, z):
        return torch.logit(z.clamp(1e-7, 1 - 1e-7)).view(-1, 1, 28, 28)

    def reconstruction_nll(self, logits, x):
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x, reduction="none").flatten(1).sum(1)

    def loss(self, x):
        raise NotImplementedError


def scores(images):
    ctx = EvalContext(PerfectAutoencoder(), images, images, batch_size=500)
    return {name: METRICS.get(name).compute(ctx) for name in ("recon_bce", "distortion")}


def test_the_bernoulli_nll_has_a_floor_on_grey_digits_and_none_on_binary_ones(grey, static):
    test = grey.test.double()
    grey_pixels = ((test > 0) & (test < 1)).double().mean().item()
    floor = -(torch.xlogy(test, test) + torch.xlogy(1 - test, 1 - test)).flatten(1).sum(1)
    # docs/metrics.md, "Likelihood": 18.8 % of the test pixels are grey, and the binary entropy
    # of the pixels, the least Bernoulli NLL any decoder can reach (Gibbs), is 46 nats per image
    # (measured: 18.76 %, 46.40 ± 0.34 nats).
    assert grey_pixels == pytest.approx(0.1876, abs=5e-4)
    assert floor.mean().item() == pytest.approx(46.40, abs=0.01)
    on_grey, on_binary = scores(grey.test), scores(static.test)
    # The perfect reconstruction sits on the floor on grey digits ...
    assert on_grey["distortion"].value == pytest.approx(floor.mean().item(), rel=1e-4)
    assert on_grey["recon_bce"].value == pytest.approx(floor.mean().item() / 784, rel=1e-4)
    assert on_grey["distortion"].details["proper_density"] is False
    assert on_grey["distortion"].details["grey_pixels"] == pytest.approx(grey_pixels)
    # ... and reaches 0 on binarised ones (1e-7 nats per pixel: the clamp of the logits).
    assert on_binary["recon_bce"].value < 1e-6 and on_binary["distortion"].value < 1e-3
    assert on_binary["distortion"].details["proper_density"] is True
    assert on_binary["distortion"].details["grey_pixels"] == 0.0
