"""SparseSAC and SparseTD3: dense parity with SB3, sparse training invariants, save/load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from sparse_rl.agents import SparseSAC, SparseTD3
from sparse_rl.agents.networks import input_layers
from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.topology import TopologyUpdate

AGENTS = [(SparseSAC, SAC), (SparseTD3, TD3)]


def _sparse_layers(module: torch.nn.Module) -> dict[str, SparseLinear]:
    return {name: m for name, m in module.named_modules() if isinstance(m, SparseLinear)}


@pytest.mark.parametrize(("sparse_class", "sb3_class"), AGENTS)
def test_dense_preset_equals_sb3(sparse_class: type, sb3_class: type, tiny: Callable) -> None:
    ours = sparse_class("MlpPolicy", "Pendulum-v1", sparsity="dense", **tiny()).learn(300)
    theirs = sb3_class("MlpPolicy", "Pendulum-v1", **tiny()).learn(300)
    ours_state, theirs_state = ours.policy.state_dict(), theirs.policy.state_dict()
    assert ours_state.keys() == theirs_state.keys()
    for key in ours_state:
        assert torch.equal(ours_state[key], theirs_state[key]), key
    assert not _sparse_layers(ours.policy)


def _check_targets_follow(model: SparseSAC | SparseTD3) -> None:
    pairs = [(model.critic, model.critic_target)]
    if hasattr(model, "actor_target"):
        pairs.append((model.actor, model.actor_target))
    for online, target in pairs:
        target_layers = _sparse_layers(target)
        for name, layer in _sparse_layers(online).items():
            assert torch.equal(layer.mask, target_layers[name].mask), name
            assert torch.all(target_layers[name].weight[~layer.mask] == 0), name


@pytest.mark.parametrize("sparse_class", [SparseSAC, SparseTD3])
@pytest.mark.parametrize("algorithm", ["set", "rigl"])
@pytest.mark.parametrize("preset", ["anf", "all_layers"])
def test_sparse_training_keeps_density_and_target_topology(
    sparse_class: type, algorithm: str, preset: str, tiny: Callable
) -> None:
    sparsity = {"preset": preset, "algorithm": algorithm, "update_interval": 40, "drop_fraction": 0.3,
                "update_stop": None, "drop_schedule": "constant", "target_rule": "online_mask"}
    model = sparse_class("MlpPolicy", "Pendulum-v1", sparsity=sparsity, **tiny())
    counts = {name: layer.nnz for name, layer in _sparse_layers(model.policy).items()}
    assert counts and all(layer.density < 1 for layer in _sparse_layers(model.policy).values())
    _check_targets_follow(model)
    updates: list[tuple[str, TopologyUpdate]] = []

    def check(name: str, update: TopologyUpdate) -> None:
        updates.append((name, update))
        _check_targets_follow(model)
        assert {n: layer.nnz for n, layer in _sparse_layers(model.policy).items()} == counts

    model.add_topology_listener(check)
    model.learn(500)
    # 400 gradient steps after 100 warm-up steps: 10 updates each for the actor and the critic.
    assert sum(name == "actor" for name, _ in updates) >= 9
    assert sum(name == "critic" for name, _ in updates) == 10
    assert all(update.changed > 0 for _, update in updates)
    for layer in _sparse_layers(model.policy).values():
        assert torch.all(layer.weight[~layer.mask] == 0)


@pytest.mark.parametrize("sparse_class", [SparseSAC, SparseTD3])
def test_save_load_keeps_masks_weights_optimizers_and_schedule(
    sparse_class: type, tiny: Callable, tmp_path: Path
) -> None:
    sparsity = {"preset": "anf", "update_interval": 50, "drop_fraction": 0.3}
    model = sparse_class("MlpPolicy", "Pendulum-v1", sparsity=sparsity, **tiny()).learn(300)
    model.save(tmp_path / "model.zip")
    loaded = sparse_class.load(tmp_path / "model.zip", env=model.get_env())
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    for name in ("actor", "critic"):
        ours = getattr(model, name).optimizer.state_dict()["state"]
        theirs = getattr(loaded, name).optimizer.state_dict()["state"]
        assert ours.keys() == theirs.keys()
        for index in ours:
            assert torch.equal(ours[index]["exp_avg"], theirs[index]["exp_avg"])
        original, restored = model.topology_updaters[name], loaded.topology_updaters[name]
        assert restored.step_count == original.step_count == 200
        assert torch.equal(restored.generator.get_state(), original.generator.get_state())
    # Both go on identically: same updates at the same steps, same masks.
    model.learn(100, reset_num_timesteps=False)
    loaded.learn(100, reset_num_timesteps=False)
    assert loaded.topology_updaters["critic"].step_count == 300
    assert [u.step for u in loaded.topology_updaters["critic"].history] == [250, 300]
    if sparse_class is SparseTD3:
        return  # TD3's exploration noise draws from numpy's global RNG, which SB3's save does not keep
    for name, layer in _sparse_layers(model.policy).items():
        assert torch.equal(layer.mask, _sparse_layers(loaded.policy)[name].mask), name


@pytest.mark.parametrize("sparse_class", [SparseSAC, SparseTD3])
def test_polyak_prune_targets_keep_the_online_count_by_magnitude(sparse_class: type, tiny: Callable) -> None:
    sparsity = {"preset": "all_layers", "update_interval": 40, "drop_fraction": 0.3, "update_stop": None}
    model = sparse_class("MlpPolicy", "Pendulum-v1", sparsity=sparsity, **tiny())
    assert model.sparsity.target_rule == "polyak_prune" and model.sparsity.algorithm == "set_signed"
    model.learn(500)
    pairs = [(model.critic, model.critic_target)] + ([(model.actor, model.actor_target)]
                                                     if hasattr(model, "actor_target") else [])
    differs = False
    for online, target in pairs:
        target_layers = _sparse_layers(target)
        for name, layer in _sparse_layers(online).items():
            kept = target_layers[name]
            assert kept.nnz == layer.nnz and torch.all(kept.weight[~kept.mask] == 0), name
            differs |= not torch.equal(kept.mask, layer.mask)
    assert differs  # the targets keep recently dropped connections for a while, unlike online_mask


def test_polyak_prune_needs_the_masked_backend() -> None:
    from sparse_rl.agents.sparsity import SparsityConfig

    with pytest.raises(ValueError, match="target_rule 'polyak_prune'.*needs backend 'masked'"):
        SparsityConfig(target_rule="polyak_prune", backend="csr")
    assert SparsityConfig(target_rule="polyak_prune").layer_backend == "masked"


def test_vec_env_and_evaluate_policy(tiny: Callable) -> None:
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = SparseSAC("MlpPolicy", env, sparsity="anf", **tiny()).learn(300)
    mean, std = evaluate_policy(model, env, n_eval_episodes=2)
    assert np.isfinite(mean) and np.isfinite(std)


def test_sparsity_scalars_are_logged(tiny: Callable, tmp_path: Path) -> None:
    model = SparseTD3("MlpPolicy", "Pendulum-v1", sparsity={"preset": "anf", "update_interval": 50}, **tiny())
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(400, log_interval=1)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("sparsity/actor/density", "sparsity/qf0/density", "sparsity/critic/changed"):
        assert key in header, key


def test_plain_sb3_policy_is_refused(tiny: Callable) -> None:
    from stable_baselines3.sac.policies import SACPolicy

    with pytest.raises(ValueError, match="needs a sparse policy"):
        SparseSAC(SACPolicy, "Pendulum-v1", **tiny())


def test_real_share_is_logged_on_a_noisy_env(tiny: Callable, tmp_path: Path) -> None:
    from sparse_rl.envs import make_env

    env = make_env({"id": "Pendulum-v1", "noise_fraction": 0.9}, seed=0)
    model = SparseSAC("MlpPolicy", env, sparsity={"preset": "anf", "update_interval": 50}, **tiny())
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(300, log_interval=1)
    shares = model.input_real_shares()
    assert set(shares) == {"actor", "qf0", "qf1"}
    # 3 of 30 observation columns are real; the critics' action column counts as real too.
    assert 0 < shares["actor"] < 1 and 0 < shares["qf0"] < 1
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert "sparsity/actor/real_share" in header and "sparsity/qf1/real_share" in header


def test_scaled_strength_filter_measures_the_input_scales_before_each_update(tiny: Callable) -> None:
    from sparse_rl.envs import make_env

    env = make_env({"id": "Pendulum-v1", "noise_fraction": 0.9, "noise_kwargs": {"std": 3.0}}, seed=0)
    sparsity = {"preset": "anf", "algorithm": "strength_filter", "update_interval": 50}
    model = SparseSAC("MlpPolicy", env, sparsity=sparsity, **tiny()).learn(300)
    actor_scale = input_layers(model.policy)["actor"].input_scale
    critic_scale = input_layers(model.policy)["qf1"].input_scale
    assert actor_scale is not None and actor_scale.shape == (30,) and critic_scale.shape == (31,)
    assert float(actor_scale[3:].mean()) == pytest.approx(3.0, abs=0.15)  # the noise's std
    assert float(actor_scale[2]) > 0.5  # Pendulum's angular velocity (|v| up to 8)
