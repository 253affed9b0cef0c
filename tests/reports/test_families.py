"""The headline: each slot answered by the first of its metric names that the results have, in
every feature space, for the headline table and a run's progress line alike."""

from __future__ import annotations

from latentbench.reports.families import HEADLINE, RUN_HEADLINE, headline_keys

KEYS = ["active_units", "fid[inception-v3]", "fid[lenet-mnist]", "iwae_nll", "neg_elbo",
        "params", "prior_coverage", "recon_mse"]


def test_each_slot_takes_its_first_name_present_in_every_feature_space() -> None:
    assert headline_keys(KEYS, RUN_HEADLINE) == [
        "recon_mse", "fid[inception-v3]", "fid[lenet-mnist]", "neg_elbo"]
    assert headline_keys(["iwae_nll", "rate"], RUN_HEADLINE) == ["iwae_nll"]  # no -ELBO
    assert headline_keys(["rate"], RUN_HEADLINE) == []


def test_the_headline_table_falls_back_to_params_when_nothing_was_timed() -> None:
    assert headline_keys(KEYS, HEADLINE) == [
        "recon_mse", "fid[inception-v3]", "fid[lenet-mnist]", "prior_coverage", "params"]
    assert headline_keys([*KEYS, "train_img_s"], HEADLINE)[-1] == "train_img_s"
