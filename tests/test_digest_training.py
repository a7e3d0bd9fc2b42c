"""scripts/digest_training.py: the digest that checks a speed change is bit-identical must itself be
deterministic under a seed, and must change when any number of the run changes."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import load_script

digest_training = load_script("digest_training")

TINY = {"method": "anf_sac", "noise_fraction": 0.98, "batch_size": 16, "steps": 12, "learning_starts": 8,
        "update_interval": 4}


@pytest.fixture(scope="module")
def tiny_model():
    """One tiny ANF-SAC run at f = 0.98 with several topology updates."""
    torch.manual_seed(0)
    return digest_training.train(**TINY, seed=0)


def test_same_seed_same_digest(tiny_model) -> None:
    again = digest_training.train(**TINY, seed=0)
    assert digest_training.digest(again) == digest_training.digest(tiny_model)


def test_another_seed_another_digest(tiny_model) -> None:
    other = digest_training.train(**TINY, seed=1)
    assert digest_training.digest(other) != digest_training.digest(tiny_model)


def test_one_changed_weight_changes_the_digest(tiny_model) -> None:
    before = digest_training.digest(tiny_model)
    parameter = next(tiny_model.policy.parameters())
    original = parameter.view(-1)[0].clone()
    with torch.no_grad():
        parameter.view(-1)[0] = torch.nextafter(original, torch.tensor(float("inf")))
    try:
        assert digest_training.digest(tiny_model) != before
    finally:
        with torch.no_grad():
            parameter.view(-1)[0] = original
    assert digest_training.digest(tiny_model) == before


def test_parts_cover_policy_optimizers_replay_masks_topology_and_rngs(tiny_model) -> None:
    names = [name for name, _ in digest_training.parts(tiny_model)]
    for prefix in ("policy/", "optimizer/actor", "optimizer/critic", "replay/", "mask/", "topology/", "rng/torch",
                   "rng/env", "counters"):
        assert any(name.startswith(prefix) for name in names), prefix
    assert len(names) == len(set(names))
