"""Connectivity metrics on hand-worked masks and weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sparse_rl.analysis.metrics import (
    ACTION,
    NOISE,
    REAL,
    FeatureConnectivity,
    column_kinds,
    in_degree,
    input_layer_connectivity,
    layer_connectivity,
    rank_features,
    real_share,
    share_on,
    strength,
    topk_precision_recall,
)
from sparse_rl.sparse.layers import SparseLinear

#: 3 outputs × 4 inputs: column in-degrees 3, 1, 1, 0
MASK = np.array([[1, 0, 1, 0],
                 [1, 1, 0, 0],
                 [1, 0, 0, 0]], dtype=bool)
WEIGHT = np.array([[0.5, -2.0, 1.0, 3.0],
                   [-1.0, 2.0, 0.0, 0.0],
                   [0.25, 0.0, 0.0, 0.0]], dtype=np.float32)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_in_degree_and_strength_by_hand(as_tensor: bool) -> None:
    mask = torch.as_tensor(MASK) if as_tensor else MASK
    weight = torch.as_tensor(WEIGHT) if as_tensor else WEIGHT
    np.testing.assert_array_equal(in_degree(mask), [3, 1, 1, 0])
    # masked: column 1 keeps only the 2.0, column 3's 3.0 is inactive
    np.testing.assert_allclose(strength(weight, mask), [1.75, 2.0, 1.0, 0.0])
    np.testing.assert_allclose(strength(weight), [1.75, 4.0, 1.0, 3.0])
    assert strength(weight).dtype == np.float32


def test_real_share_by_hand() -> None:
    real = np.array([True, False, False, True])
    assert real_share(MASK, real) == pytest.approx(3 / 5)
    assert real_share(torch.as_tensor(MASK), torch.as_tensor(real)) == pytest.approx(3 / 5)
    assert real_share(np.zeros((2, 4), dtype=bool), real) == 0.0
    assert share_on(np.array([1.75, 2.0, 1.0, 0.0]), real) == pytest.approx(1.75 / 4.75)
    with pytest.raises(ValueError, match="3 entries"):
        real_share(MASK, real[:3])


def test_ranking_and_topk_by_hand() -> None:
    np.testing.assert_array_equal(rank_features(np.array([1.75, 2.0, 1.0, 0.0])), [1, 0, 2, 3])
    np.testing.assert_array_equal(rank_features(np.array([1.0, 1.0, 0.0])), [0, 1, 2])  # ties: lower index first
    ranking = np.array([1, 0, 2, 3])
    real = np.array([True, False, False, True])
    assert topk_precision_recall(ranking, real, 1) == (0.0, 0.0)
    assert topk_precision_recall(ranking, real, 2) == (0.5, 0.5)
    assert topk_precision_recall(ranking, real, 4) == (0.5, 1.0)
    with pytest.raises(ValueError, match="k must be"):
        topk_precision_recall(ranking, real, 0)


def test_feature_connectivity_of_a_critic_by_hand() -> None:
    """3 observation features (the first real) and 1 action column."""
    conn = FeatureConnectivity("qf0", strength(WEIGHT, MASK), in_degree(MASK), out_features=3, n_observation=3,
                               real_mask=np.array([True, False, False]))
    np.testing.assert_array_equal(conn.column_kinds, [REAL, NOISE, NOISE, ACTION])
    assert conn.n_actions == 1 and conn.n_real == 1 and conn.nnz == 5
    assert conn.real_share() == pytest.approx(3 / 5)  # real + action columns
    assert conn.chance_share() == pytest.approx(2 / 4)
    summary = conn.summary()
    assert summary["in_degree_real"] == 3 and summary["in_degree_noise"] == 1 and summary["in_degree_action"] == 0
    assert not any(key.startswith("mean_in_degree") for key in summary)  # one name per metric: the registry's
    np.testing.assert_array_equal(conn.ranking(), [1, 0, 2])  # observation features only
    assert conn.topk() == (0.0, 0.0)
    assert conn.topk(2) == (0.5, 1.0)
    assert summary["density"] == pytest.approx(5 / 12) and summary["topk_k"] == 1
    rows = conn.feature_rows()
    assert [r["kind"] for r in rows] == ["real", "noise", "noise", "action"]
    assert [r["strength_rank"] for r in rows] == [2, 1, 3, None]


def test_dense_layer_reports_strength_only() -> None:
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(WEIGHT))
    conn = layer_connectivity(layer, "actor", real_mask=np.array([True, False, False, True]))
    assert not conn.is_sparse and conn.in_degree is None and conn.nnz is None
    summary = conn.summary()
    assert conn.real_share() is None and summary["in_degree_real"] is None and summary["in_degree_action"] is None
    np.testing.assert_allclose(conn.strength, [1.75, 4.0, 1.0, 3.0])
    assert conn.strength_real_share() == pytest.approx(4.75 / 9.75)
    assert conn.topk() == (0.5, 0.5)  # top 2 by strength: columns 1, 3


def test_sparse_layer_connectivity_matches_the_mask() -> None:
    layer = SparseLinear(4, 3, density=0.5)
    layer.set_mask_(torch.as_tensor(MASK))
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(WEIGHT) * torch.as_tensor(MASK))
    conn = layer_connectivity(layer, "actor")
    np.testing.assert_array_equal(conn.in_degree, [3, 1, 1, 0])
    np.testing.assert_allclose(conn.strength, [1.75, 2.0, 1.0, 0.0])
    assert conn.real_mask is None and conn.topk() is None and conn.summary()["real_share"] is not None


def test_column_kinds_checks_sizes() -> None:
    np.testing.assert_array_equal(column_kinds(3, None), [REAL, REAL, REAL])
    with pytest.raises(ValueError, match="observation features"):
        column_kinds(3, np.ones(4, dtype=bool))


def test_input_layer_connectivity_of_an_agent() -> None:
    from sparse_rl.agents import SparseSAC

    model = SparseSAC("MlpPolicy", "Pendulum-v1", sparsity="anf", policy_kwargs={"net_arch": [16, 16]}, seed=0,
                      learning_starts=10, device="cpu")
    real = np.array([True, False, True])
    result = input_layer_connectivity(model, real_mask=real)
    assert set(result) == {"actor", "qf0", "qf1"}
    assert result["actor"].n_inputs == 3 and result["qf0"].n_inputs == 4 and result["qf0"].n_actions == 1
    layer = model.actor.latent_pi[0]
    assert result["actor"].nnz == layer.nnz and result["actor"].out_features == 16
    np.testing.assert_array_equal(result["qf1"].real_mask, real)
    with pytest.raises(ValueError, match="observation has 3"):
        input_layer_connectivity(model, real_mask=np.ones(5, dtype=bool))


@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_every_storage_backend_gives_the_same_connectivity(backend: str) -> None:
    """Compressed layers are read from their active connections, without a dense weight or mask."""
    from sparse_rl.sparse import layers

    if backend not in getattr(layers, "BACKENDS", ("masked",)):
        pytest.skip(f"no {backend!r} backend in this version")
    layer = SparseLinear(40, 8, density=0.25, backend=backend, generator=torch.Generator().manual_seed(0))
    conn = layer_connectivity(layer, "actor")
    np.testing.assert_array_equal(conn.in_degree, in_degree(layer.mask))
    np.testing.assert_allclose(conn.strength, strength(layer.weight, layer.mask), rtol=1e-6)
    assert conn.nnz == layer.nnz
