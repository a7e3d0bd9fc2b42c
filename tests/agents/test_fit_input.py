"""The ``fit_input`` preset on agents: dense (SB3 itself) on clean inputs, ``strength_filter`` at a
floor of connections per hidden unit on noisy ones; exact counts, seeds, save/load, both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from stable_baselines3 import SAC, TD3

from sparse_rl.agents import SparseSAC, SparseTD3
from sparse_rl.agents.networks import input_layers
from sparse_rl.envs import make_env
from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.layers.csr import CSRSparseLinear
from sparse_rl.sparse.topology import TopologyUpdate

HIDDEN = 32  # the tiny agents' width: the input layers' output units


def _sparse_layers(module: torch.nn.Module) -> dict[str, SparseLinear]:
    return {name: m for name, m in module.named_modules() if isinstance(m, SparseLinear)}


def _noisy_pendulum(noise_fraction: float) -> Any:
    return make_env({"id": "Pendulum-v1", "noise_fraction": noise_fraction}, seed=0)


@pytest.mark.parametrize(("sparse_class", "sb3_class"), [(SparseSAC, SAC), (SparseTD3, TD3)])
def test_clean_inputs_cost_nothing_the_agent_is_sb3(sparse_class: type, sb3_class: type, tiny: Callable) -> None:
    # Pendulum: 3 observations (+1 action for the critic) <= 32: every input layer dense, and the
    # agent trains parameter for parameter as SB3's own.
    ours = sparse_class("MlpPolicy", "Pendulum-v1", sparsity="fit_input", **tiny()).learn(300)
    theirs = sb3_class("MlpPolicy", "Pendulum-v1", **tiny()).learn(300)
    assert not _sparse_layers(ours.policy)
    ours_state, theirs_state = ours.policy.state_dict(), theirs.policy.state_dict()
    assert ours_state.keys() == theirs_state.keys()
    for key in ours_state:
        assert torch.equal(ours_state[key], theirs_state[key]), key
    assert all(not updater.active for updater in ours.topology_updaters.values())


@pytest.mark.parametrize(("noise_fraction", "min_fan_in", "actor_density"), [
    (0.98, None, 32 / 150),  # 150 inputs: 32 / 150 > 0.2 (from 160 inputs on it is 0.2)
    (0.9, 4, 0.2),  # 30 inputs: 4 / 30 < 0.2, strength_filter's density
    (0.8, 8, 8 / 15),  # 15 inputs
])
@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_noisy_inputs_keep_the_floor_exactly_through_training(
    noise_fraction: float, min_fan_in: int | None, actor_density: float, backend: str, tiny: Callable
) -> None:
    sparsity: dict[str, Any] = {"preset": "fit_input", "backend": backend, "update_interval": 40, "drop_fraction": 0.3}
    if min_fan_in is not None:
        sparsity["min_fan_in"] = min_fan_in
    k = min_fan_in or 32
    model = SparseSAC("MlpPolicy", _noisy_pendulum(noise_fraction), sparsity=sparsity, **tiny())
    layers = input_layers(model.policy)
    assert all(isinstance(layer, SparseLinear) for layer in layers.values())
    assert layers["actor"].target_density == pytest.approx(actor_density)
    expected = {}
    for name, layer in layers.items():
        n_in = layer.in_features  # the critics' include the action
        assert 0.2 <= layer.target_density < 1.0
        expected[name] = max(k * HIDDEN, round(0.2 * n_in * HIDDEN))
        assert layer.nnz == expected[name], name
        if backend == "csr":
            assert isinstance(layer, CSRSparseLinear)
    counts = {name: layer.nnz for name, layer in _sparse_layers(model.policy).items()}
    updates: list[TopologyUpdate] = []

    def check(name: str, update: TopologyUpdate) -> None:
        updates.append(update)
        assert {n: layer.nnz for n, layer in _sparse_layers(model.policy).items()} == counts
        for online, target in ((model.critic, model.critic_target),):
            for layer_name, layer in _sparse_layers(online).items():
                follower = _sparse_layers(target)[layer_name]
                assert torch.equal(layer.mask, follower.mask) and follower.nnz == layer.nnz

    model.add_topology_listener(check)
    model.learn(500)
    assert len(updates) >= 18 and all(update.changed > 0 for update in updates)
    assert {name: layer.nnz for name, layer in input_layers(model.policy).items()} == expected
    for layer in _sparse_layers(model.policy).values():
        assert torch.all(layer.weight[~layer.mask] == 0)


def _fit_input_model(backend: str = "auto", **overrides: Any) -> SparseSAC:
    sparsity = {"preset": "fit_input", "update_interval": 50, "drop_fraction": 0.3, "backend": backend}
    return SparseSAC("MlpPolicy", _noisy_pendulum(0.98), sparsity=sparsity, **overrides)


def test_deterministic_under_a_seed(tiny: Callable) -> None:
    first, second = _fit_input_model(**tiny()).learn(400), _fit_input_model(**tiny()).learn(400)
    assert first.topology_updaters["critic"].history  # topology updates happened
    for key, value in first.policy.state_dict().items():
        assert torch.equal(value, second.policy.state_dict()[key]), key
    other = _fit_input_model(**tiny(seed=1)).learn(400)
    actor_masks = [input_layers(m.policy)["actor"].mask for m in (first, other)]
    assert not torch.equal(*actor_masks)


@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_save_load_and_resume(backend: str, tiny: Callable, tmp_path: Path) -> None:
    model = _fit_input_model(backend, **tiny()).learn(300)
    model.save(tmp_path / "model.zip")
    loaded = SparseSAC.load(tmp_path / "model.zip", env=model.get_env())
    assert loaded.sparsity == model.sparsity and loaded.sparsity.min_fan_in == 32
    for name, layer in input_layers(loaded.policy).items():
        assert layer.target_density == pytest.approx(input_layers(model.policy)[name].target_density)
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    for name in ("actor", "critic"):
        assert loaded.topology_updaters[name].state_dict()["step_count"] == 200
        assert torch.equal(loaded.topology_updaters[name].generator.get_state(),
                           model.topology_updaters[name].generator.get_state())
    # The next update from the restored state is the original's: same updater RNG, same masks,
    # weights and Adam moments afterwards, targets following. (The input scales come from the replay
    # buffer, which a checkpoint restores and model.save does not: copied here.)
    for name in ("actor", "critic"):
        for ours, theirs in zip(_sparse_layers(getattr(model, name)).values(),
                                _sparse_layers(getattr(loaded, name)).values(), strict=True):
            assert ours.input_scale is not None
            theirs.input_scale = ours.input_scale.clone()
        for agent in (model, loaded):
            agent.topology_updaters[name].before_update = None
            assert agent.topology_updaters[name].update().changed > 0
        ours_state = getattr(model, name).optimizer.state_dict()["state"]
        theirs_state = getattr(loaded, name).optimizer.state_dict()["state"]
        for index in ours_state:
            assert torch.equal(ours_state[index]["exp_avg_sq"], theirs_state[index]["exp_avg_sq"]), (name, index)
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key


def test_many_inputs_train_exactly_as_strength_filter(tiny: Callable) -> None:
    # Pendulum at f = 0.99: 300 inputs >= 32 / 0.2 = 160, so the floor changes nothing: the same
    # run as strength_filter, bit for bit (what fit_input at f = 0.98 is on the MuJoCo tasks).
    runs = []
    for preset in ("fit_input", "strength_filter"):
        sparsity = {"preset": preset, "update_interval": 50, "drop_fraction": 0.3}
        runs.append(SparseSAC("MlpPolicy", _noisy_pendulum(0.99), sparsity=sparsity, **tiny()).learn(300))
    fit, sf = runs
    assert all(layer.target_density == 0.2 for layer in input_layers(fit.policy).values())
    assert fit.topology_updaters["critic"].history
    for key, value in fit.policy.state_dict().items():
        assert torch.equal(value, sf.policy.state_dict()[key]), key
