"""pythae models scored as they are: trained with pythae's own pipeline, saved, loaded by
latentbench through pythae's AutoModel, and compared with pythae's own outputs."""

import json

import pytest
import torch

pythae = pytest.importorskip("pythae", reason="pythae is in the dev extra")

from pythae.models import AE, VAE, AEConfig, AutoModel, VAEConfig  # noqa: E402
from pythae.pipelines import TrainingPipeline  # noqa: E402
from pythae.trainers import BaseTrainerConfig  # noqa: E402

from latentbench.benchmarks.cli import main  # noqa: E402
from latentbench.benchmarks.data import DataSpec, load_dataset  # noqa: E402
from latentbench.models import InputError, ModelSpec, build_model  # noqa: E402
from latentbench.models.pythae_model import PythaeModel, probabilities_to_logits  # noqa: E402

N_TRAIN, N_TEST = 512, 256


@pytest.fixture(scope="module")
def data():
    return load_dataset(DataSpec(dataset="mnist5k", n_train=N_TRAIN, n_test=N_TEST))


def train_and_save(folder, model, data):
    """One epoch of pythae's TrainingPipeline, then pythae's model.save()."""
    torch.manual_seed(0)
    config = BaseTrainerConfig(output_dir=str(folder / "training"), num_epochs=1,
                               per_device_train_batch_size=64, no_cuda=True)
    TrainingPipeline(model=model, training_config=config)(train_data=data.train.numpy())
    model.save(str(folder / "saved"))
    return folder / "saved"


@pytest.fixture(scope="module")
def saved_vae(tmp_path_factory, data):
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=8, reconstruction_loss="bce"))
    return train_and_save(tmp_path_factory.mktemp("pythae-vae"), model, data)


@pytest.fixture(scope="module")
def saved_ae(tmp_path_factory, data):
    model = AE(AEConfig(input_dim=(1, 28, 28), latent_dim=8))
    return train_and_save(tmp_path_factory.mktemp("pythae-ae"), model, data)


def score(folder, out, *metrics):
    code = main(["eval", "pythae", "--dataset", "mnist5k", "--set", f"model.options.path={folder}",
                 "--set", f"data.n_train={N_TRAIN}", "--set", f"data.n_test={N_TEST}",
                 "--set", f"eval.metrics={json.dumps(list(metrics))}", "--out", str(out),
                 "--no-progress", "--workers", "1"])
    assert code == 0
    (metrics_file,) = out.glob("runs/*/metrics.json")
    return json.loads(metrics_file.read_text())["values"]


def test_recon_mse_equals_pythaes_own_reconstruction(saved_vae, saved_ae, data, tmp_path):
    """A pythae AE's reconstruct() is deterministic: recon_mse equals its MSE to 1e-6. A pythae
    VAE's reconstruct() draws z from q(z|x), so two calls differ; recon_mse decodes the
    posterior mean, which is pythae's decoder at its encoder's embedding."""
    x = data.test
    ae = AutoModel.load_from_folder(str(saved_ae)).eval()
    with torch.no_grad():
        ae_mse = (ae.reconstruct(x) - x).square().mean().item()
    assert score(saved_ae, tmp_path / "ae", "recon_mse")["recon_mse"] == pytest.approx(
        ae_mse, rel=1e-6)

    vae = AutoModel.load_from_folder(str(saved_vae)).eval()
    with torch.no_grad():
        assert not torch.equal(vae.reconstruct(x[:8]), vae.reconstruct(x[:8]))
        at_mean = vae.decoder(vae.encoder(x).embedding).reconstruction
    values = score(saved_vae, tmp_path / "vae", "recon_mse", "rate", "neg_elbo")
    assert values["recon_mse"] == pytest.approx((at_mean - x).square().mean().item(), rel=1e-6)
    with torch.no_grad():  # pythae's KLD term at the same posteriors
        out = vae.encoder(x)
        kld = -0.5 * (1 + out.log_covariance - out.embedding.pow(2)
                      - out.log_covariance.exp()).sum(-1)
    assert values["rate"] == pytest.approx(kld.mean().item(), rel=1e-5)
    assert values["neg_elbo"] > values["rate"]


def test_the_wrapper_maps_pythaes_protocol(saved_vae, saved_ae, data):
    vae = build_model(ModelSpec(name="pythae", options={"path": str(saved_vae)}), (1, 28, 28))
    assert vae.capabilities == {"encode", "variational", "sample", "decode"}
    assert vae.pixel_likelihood == "bernoulli" and vae.latent_dim == 8
    assert type(vae).identity(ModelSpec(name="pythae", options={"path": str(saved_vae)})) == {
        "model": "pythae:VAE", "decoder": "pythae", "latent_dim": 8, "beta": 1.0}
    with torch.no_grad():  # pythae's BCE at the decoded probabilities equals ours at the logits
        x = data.test[:16]
        p = vae.net.decoder(vae.encode(x).mean).reconstruction
        theirs = torch.nn.functional.binary_cross_entropy(p, x, reduction="none").flatten(1).sum(1)
        ours = vae.reconstruction_nll(vae.decode(vae.encode(x).mean), x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)
    ae = build_model(ModelSpec(name="pythae", options={"path": str(saved_ae)}), (1, 28, 28))
    assert ae.capabilities == {"encode", "sample", "decode"}
    assert ae.pixel_likelihood == "gaussian"  # pythae's AE uses mse


def test_probabilities_become_finite_logits():
    p = torch.tensor([0.0, 1e-30, 0.25, 0.5, 1 - 1e-7, 1.0])
    logits = probabilities_to_logits(p)
    assert torch.isfinite(logits).all() and logits.abs().max() <= 100
    torch.testing.assert_close(torch.sigmoid(logits[2:5]), p[2:5], rtol=1e-6, atol=0)
    assert logits[0] == -100 and logits[-1] == 100 and logits[3] == 0


def test_unsupported_or_mismatched_folders_are_refused(saved_vae, tmp_path):
    config = json.loads((saved_vae / "model_config.json").read_text())
    for name, change, message in [
        ("vamp", {"name": "VAMPConfig"}, "pythae model 'VAMP' is not supported"),
        ("size", {"input_dim": [3, 32, 32]}, r"takes inputs \[3, 32, 32\]"),
        ("loss", {"reconstruction_loss": "l1"}, "reconstruction_loss 'l1' has no pixel"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        for file in saved_vae.iterdir():
            (folder / file.name).write_bytes(file.read_bytes())
        (folder / "model_config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(InputError, match=f"^model.options.path: .*{message}"):
            build_model(ModelSpec(name="pythae", options={"path": str(folder)}), (1, 28, 28))
    with pytest.raises(InputError, match="not a folder written by pythae"):
        build_model(ModelSpec(name="pythae", options={"path": str(tmp_path)}), (1, 28, 28))


def test_a_decoder_outside_the_unit_interval_is_refused():
    """A decoder without its final sigmoid gives no pixel probabilities: refused with the range
    it gave (the same check runs on 8 prior draws when the folder is loaded)."""
    net = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=4, reconstruction_loss="bce"))
    net.decoder.layers[-1] = net.decoder.layers[-1][0]  # the Linear alone: the sigmoid dropped
    model = PythaeModel(net.eval(), net.model_config.to_dict())
    with pytest.raises(InputError, match=r"decoder's output lies in \[.*\], not in \[0, 1\]"):
        model.decode(torch.randn(8, 4))
