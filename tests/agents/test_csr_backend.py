"""SparseSAC and SparseTD3 on the csr layer backend: training, target networks, save and load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from sparse_rl.agents import SparseSAC, SparseTD3
from sparse_rl.agents.sparsity import SparsityConfig
from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.layers.csr import CSRSparseLinear

SPARSITY = {"preset": "all_layers", "backend": "csr", "target_rule": "online_mask", "update_interval": 50,
            "drop_fraction": 0.3, "update_stop": None}


def _csr_layers(module: torch.nn.Module) -> dict[str, CSRSparseLinear]:
    return {name: m for name, m in module.named_modules() if isinstance(m, CSRSparseLinear)}


def _targets(model: SparseSAC | SparseTD3) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    pairs = [(model.critic, model.critic_target)]
    if hasattr(model, "actor_target"):
        pairs.append((model.actor, model.actor_target))
    return pairs


def test_backend_is_validated_and_saved_in_the_config() -> None:
    with pytest.raises(ValueError, match="unknown sparse layer backend 'dense'"):
        SparsityConfig(backend="dense")
    assert SparsityConfig().backend == "auto"
    assert SparsityConfig.from_dict(SparsityConfig(backend="csr").to_dict()).backend == "csr"


@pytest.mark.parametrize("sparse_class", [SparseSAC, SparseTD3])
def test_csr_agent_trains_keeps_target_structure_saves_and_loads(
    sparse_class: type, tiny: Callable, tmp_path: Path
) -> None:
    model = sparse_class("MlpPolicy", "Pendulum-v1", sparsity=SPARSITY, **tiny())
    layers = _csr_layers(model.policy)
    assert layers and all(not isinstance(m, SparseLinear) or isinstance(m, CSRSparseLinear)
                          for m in model.policy.modules())
    for online, target in _targets(model):  # targets built by SB3 (fresh, then loaded) share the structure
        for name, layer in _csr_layers(online).items():
            assert torch.equal(layer.flat_index, _csr_layers(target)[name].flat_index), name
    values_before = {name: layer.values.detach().clone() for name, layer in layers.items()}
    model.learn(300)
    assert model.topology_updaters["critic"].history  # updates happened
    for name, layer in _csr_layers(model.policy).items():
        assert not torch.equal(layer.values.detach(), values_before[name]), name  # it trained
        assert torch.isfinite(layer.values).all()
    for network in (model.actor, model.critic):  # optimizer state only for the active weights
        for layer in _csr_layers(network).values():
            assert network.optimizer.state[layer.values]["exp_avg"].shape == layer.values.shape
    # Polyak after the updates kept each target on its online network's slots.
    for online, target in _targets(model):
        target_layers = _csr_layers(target)
        for name, layer in _csr_layers(online).items():
            assert torch.equal(layer.flat_index, target_layers[name].flat_index), name
    model.save(tmp_path / "model.zip")
    loaded = sparse_class.load(tmp_path / "model.zip", env=model.get_env())
    assert loaded.sparsity.backend == "csr"
    loaded_state = loaded.policy.state_dict()
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded_state[key]), key
    for name, layer in _csr_layers(model.policy).items():
        assert torch.equal(layer.mask, _csr_layers(loaded.policy)[name].mask), name
    # (SB3 does not resume bit for bit, so the two runs drift apart: only check the loaded one works.)
    loaded.learn(100, reset_num_timesteps=False)
    assert loaded.topology_updaters["critic"].history[-1].step == 300
    for online, target in _targets(loaded):
        target_layers = _csr_layers(target)
        for name, layer in _csr_layers(online).items():
            assert torch.equal(layer.flat_index, target_layers[name].flat_index), name


def test_agents_build_their_layers_for_their_own_device(tiny: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_rl.agents import training
    from sparse_rl.envs import make_env
    from sparse_rl.sparse.layers import layers_built_for

    env = make_env({"id": "Pendulum-v1", "n_noise": 400}, seed=0)  # 403 inputs: csr under auto on the CPU
    on_cpu = SparseSAC("MlpPolicy", env, sparsity="anf", **tiny())
    assert isinstance(on_cpu.actor.latent_pi[0], CSRSparseLinear)
    seen = []

    def as_if_on_a_gpu(device: torch.device):  # SB3 falls back to the CPU here: pretend the agent's device is one
        seen.append(torch.device(device))
        return layers_built_for("cuda")

    monkeypatch.setattr(training, "layers_built_for", as_if_on_a_gpu)
    on_gpu = SparseSAC("MlpPolicy", env, sparsity="anf", **tiny())
    assert seen == [torch.device("cpu")]  # the agent's own device was passed
    layers = [m for m in on_gpu.policy.modules() if isinstance(m, SparseLinear)]
    assert layers and all(layer.backend == "masked" for layer in layers)
