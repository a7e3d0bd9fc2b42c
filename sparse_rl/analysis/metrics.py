"""Connectivity metrics of input layers: pure functions of masks, weights and the real features."""

from __future__ import annotations

import numpy as np
import torch


def real_share(mask: torch.Tensor, real_columns: np.ndarray | torch.Tensor) -> float:
    """The share of a layer's active connections whose input column is a real feature.

    :param mask: the layer's boolean mask, shape (out_features, in_features)
    :param real_columns: boolean, length in_features, True at real input features
    """
    real = torch.as_tensor(np.asarray(real_columns, dtype=bool), device=mask.device)
    if real.numel() != mask.shape[1]:
        raise ValueError(f"real_columns has {real.numel()} entries, the layer has {mask.shape[1]} inputs")
    total = int(mask.sum().item())
    return float(mask[:, real].sum().item()) / total if total else 0.0
