"""Old import paths kept as thin re-export modules."""

from __future__ import annotations

import importlib
import sys
import warnings


def alias_module(old: str, new: str) -> None:
    """Make the module ``old`` (being imported) the module ``new``, with a ``DeprecationWarning``:
    ``import old``, ``from old import name`` and ``monkeypatch.setattr(old, ...)`` all reach
    ``new`` itself (private names included)."""
    warnings.warn(f"{old} moved to {new}; import it from there", DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
