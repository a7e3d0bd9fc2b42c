"""Registry of named dynamic sparse training algorithms.

An algorithm says whether the network is sparse, whether its topology changes, and how: a drop
score (lowest dropped) and a grow rule (which free positions are filled). A new algorithm is one
small class registered by name, then ``sparsity.algorithm: NAME`` in a config::

    @register_algorithm
    class MyAlgorithm(SET):
        name = "mine"
        def drop_scores(self, layer): ...
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch

from sparse_rl._util.registry import Registry
from sparse_rl.sparse import criteria
from sparse_rl.sparse.layers import SparseLinear


class DSTAlgorithm:
    """Base class of a sparse training algorithm: magnitude drop, random growth.

    Subclasses override :meth:`drop_scores` and/or :meth:`grow_indices`, and the class flags.
    """

    name: ClassVar[str] = ""
    #: whether the networks are sparse at all (``dense`` is the control)
    sparse: ClassVar[bool] = True
    #: whether the topology changes during training (``static`` is the control)
    updates_topology: ClassVar[bool] = True
    #: whether the grow rule needs the dense-weight gradient (layers are armed before an update)
    needs_dense_gradient: ClassVar[bool] = False
    #: whether the grow rule may pick a connection dropped in the same update (it then stays, with
    #: its weight and optimizer state, as if it had not been dropped); otherwise growth is among
    #: the positions that were inactive before the update
    regrow_dropped: bool = False
    #: whether the scores weigh inputs by their scale (the agent sets ``layer.input_scale`` first)
    uses_input_scale: bool = False

    def drop_scores(self, layer: SparseLinear) -> torch.Tensor:
        """Scores of the layer's positions; the active ones with the lowest scores are dropped."""
        return criteria.magnitude(layer)

    def drop_indices(self, layer: SparseLinear, k: int) -> torch.Tensor:
        """Flat indices of the ``k`` active connections to drop: by default the lowest
        :meth:`drop_scores`; override for a rule that is not one score."""
        return criteria.lowest_active(self.drop_scores(layer), layer.active_positions(), k)

    def grow_indices(
        self, layer: SparseLinear, candidates: torch.Tensor, k: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``k`` flat indices, among the ``True`` entries of ``candidates``, to activate."""
        return criteria.sample_candidates(candidates, k, generator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


ALGORITHMS: Registry[type[DSTAlgorithm]] = Registry("sparse training algorithm", "hyperparameter")
_A = TypeVar("_A", bound=type[DSTAlgorithm])


def register_algorithm(cls: _A) -> _A:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    return ALGORITHMS.register(cls)


#: the algorithms' old names (a config naming one gets an error naming the new one)
ALGORITHMS.renamed["strength_growth"] = "strength_filter"


def make_algorithm(name: str | DSTAlgorithm, **hyperparams: Any) -> DSTAlgorithm:
    """The algorithm registered as ``name``, built with its ``hyperparams`` (an instance passes
    through); an unknown name raises ``ValueError`` listing the known ones, an unknown
    hyperparameter one naming the algorithm's."""
    if isinstance(name, DSTAlgorithm):
        return name
    return ALGORITHMS.build(
        name, "unknown hyperparameter {key} of algorithm {name!r}{hint}; it takes: {accepted}", **hyperparams
    )


@register_algorithm
class Dense(DSTAlgorithm):
    """No sparsity at all: the dense control."""

    name = "dense"
    sparse = False
    updates_topology = False


@register_algorithm
class Static(DSTAlgorithm):
    """A random sparse topology fixed at initialisation: the static sparse control."""

    name = "static"
    updates_topology = False


@register_algorithm
class SET(DSTAlgorithm):
    """Sparse Evolutionary Training (Mocanu et al., Nature Communications 2018): drop the active
    connections of smallest magnitude, regrow as many at random free positions.

    :param regrow_dropped: draw the regrown positions among every inactive position after the
        drop, the ones just dropped included, as Grooten et al.'s ANF code does (its ``grow_set``
        samples every zero of the pruned mask); a just-dropped connection drawn again keeps its
        weight there (their masks are reapplied, not the weights reset), and here too. ``False``
        (the default): only positions that were inactive before the update can grow.
    """

    name = "set"

    def __init__(self, regrow_dropped: bool = False) -> None:
        if not isinstance(regrow_dropped, bool):
            raise ValueError(f"regrow_dropped must be true or false, got {regrow_dropped!r}")
        self.regrow_dropped = regrow_dropped

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, regrow_dropped={self.regrow_dropped})"


@register_algorithm
class SignedSET(SET):
    """SET as Mocanu et al. (2018) and Sokar et al.'s DS-TD3 code prune: the positive and the
    negative weights separately, the smallest positive ones and the largest negative ones (those
    closest to zero from each side), each in proportion to how many there are; regrowth at random.

    ``set`` (|w| over all active weights, as ANF's code prunes) drops the same connections when
    the weights are symmetric around zero; the two differ when they are not.
    """

    name = "set_signed"

    def drop_indices(self, layer: SparseLinear, k: int) -> torch.Tensor:
        """``k`` active connections: ``round(k · n₊ / nnz)`` smallest positive weights, the rest
        largest negative ones (zeros count as positive)."""
        return criteria.lowest_signed(layer.active_values().detach(), layer.active_positions(), k)


@register_algorithm
class RigL(DSTAlgorithm):
    """Rigged Lottery (Evci et al., ICML 2020): drop the active connections of smallest magnitude,
    grow where the magnitude of the dense-weight gradient |∂L/∂W| is largest."""

    name = "rigl"
    needs_dense_gradient = True

    def grow_indices(
        self, layer: SparseLinear, candidates: torch.Tensor, k: int, generator: torch.Generator
    ) -> torch.Tensor:
        """The ``k`` candidates with the largest dense-gradient magnitude."""
        return criteria.highest_candidates(criteria.dense_gradient_magnitude(layer), candidates, k)


@register_algorithm
class StrengthFilter(DSTAlgorithm):
    """The strength filter (the ``strength_filter`` preset; "SF-SAC" in sweeps): drop by magnitude
    like SET; grow in proportion to how strongly the layer already uses each input: a free position
    of input column ``j`` is drawn with weight ``(m_j / mean(m))^p + λ``, ``m_j`` the mean |w| of
    the column's active connections (:func:`~sparse_rl.sparse.criteria.column_mean_magnitude`).

    Not from a paper: sparse_rl's filter for extremely noisy inputs. ANF's random growth (SET)
    lands ``1 − f`` of the regrown connections on real features (2% at f = 0.98); here a real
    feature whose weights the gradient has made stronger than the noise's draws a larger share at
    each update, and the ``λ`` floor keeps exploring every column (a column that lost all its
    connections can come back). Adding a column's regrown zero weights lowers its mean, so growth
    does not pile into one column. It needs no gradient (works on every backend, at SET's cost),
    and unlike RigL's dense gradient it does not favour inputs of large scale (N(0, 1) noise over
    small real features).

    With ``scaled`` (the default), both the drop score and the column strength weigh each input
    by its root mean square (:func:`~sparse_rl.sparse.criteria.contribution`, the agent measures
    it on the replay buffer before each update): magnitude alone prunes first the real features
    whose values are large (MuJoCo velocities of ±5 need small weights), and keeps N(0, 1) noise.

    :param exploration: ``λ``, the floor as a fraction of the mean column weight (0: none)
    :param scaled: weigh inputs by their scale (needs ``layer.input_scale``; without it, |w|)
    :param sharpness: ``p``: the column weight is ``(m_j / mean(m))^p + λ``; 1 grows in proportion
        to the strength, larger values concentrate growth on the strongest columns (with 2% real
        columns, a real column twice as strong as the noise draws ``2^p`` times its share)
    """

    name = "strength_filter"

    def __init__(self, exploration: float = 0.1, scaled: bool = True, sharpness: float = 1.0) -> None:
        for name, value in (("exploration", exploration), ("sharpness", sharpness)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        self.sharpness = float(sharpness)
        if not isinstance(scaled, bool):
            raise ValueError(f"scaled must be true or false, got {scaled!r}")
        self.exploration = float(exploration)
        self.scaled = scaled
        self.uses_input_scale = scaled

    def drop_scores(self, layer: SparseLinear) -> torch.Tensor:
        """|w| times the input's scale (``scaled``), else |w|."""
        return criteria.contribution(layer) if self.scaled else criteria.magnitude(layer)

    def grow_indices(
        self, layer: SparseLinear, candidates: torch.Tensor, k: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``k`` free positions drawn without replacement, weighted by their column's strength."""
        column = criteria.column_mean_magnitude(layer, scaled=self.scaled)
        mean = float(column.mean())
        weights = (column / mean).pow(self.sharpness) + self.exploration if mean > 0 else torch.ones_like(column)
        return criteria.sample_proportional(weights.to(candidates.device).unsqueeze(0), candidates, k, generator)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, exploration={self.exploration}, scaled={self.scaled}, "
                f"sharpness={self.sharpness})")
