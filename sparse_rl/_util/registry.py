"""The one registry class: named classes (DST algorithms, noise distributions) registered by a
decorator and built by name with checked keyword arguments."""

from __future__ import annotations

import inspect
from typing import Any, Generic, TypeVar

from sparse_rl._util.validation import check_choice, check_keys

T = TypeVar("T", bound=type)


class Registry(dict[str, T], Generic[T]):
    """A ``dict`` from name to class, filled by :meth:`register` (a class decorator keyed by the
    class attribute ``name``).

    :param what: what the entries are, for messages ("sparse training algorithm")
    :param parameter: what a constructor argument is called in messages ("hyperparameter")
    """

    def __init__(self, what: str, parameter: str = "parameter") -> None:
        super().__init__()
        self.what = what
        self.parameter = parameter
        #: old name -> new name, for configs and checkpoints made by an older version
        self.renamed: dict[str, str] = {}

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        name = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"{cls.__name__} needs a non-empty class attribute 'name' to be registered")
        self[name] = cls
        return cls

    def lookup(self, name: str) -> T:
        """The class registered as ``name``; an unknown name raises ``ValueError`` with the closest,
        a renamed one (:attr:`renamed`) a ``ValueError`` naming the new name."""
        if isinstance(name, str) and name in self.renamed and name not in self:
            raise ValueError(f"the {self.what} {name!r} was renamed {self.renamed[name]!r}: a config or checkpoint "
                             f"made by an older version of sparse_rl names it; use {self.renamed[name]!r}")
        if not isinstance(name, str) or name not in self:
            check_choice(name, self, self.what)
        return self[name]

    def build(self, name: str, message: str | None = None, **kwargs: Any) -> Any:
        """``lookup(name)(**kwargs)``; an unknown keyword raises ``ValueError`` naming the accepted
        ones (``message``: see :func:`~sparse_rl._util.validation.check_keys`; it may use ``{name}``)."""
        cls = self.lookup(name)
        default = f"unknown {self.parameter} {{key}} of {self.what} {{name!r}}{{hint}}; accepted: {{accepted}}"
        template = message or default
        check_keys(kwargs, parameter_names(cls), template, name=name)
        return cls(**kwargs)

    def copy(self) -> Registry[T]:
        """A registry with the same entries (tests register into a copy)."""
        new: Registry[T] = Registry(self.what, self.parameter)
        new.update(self)
        new.renamed.update(self.renamed)
        return new


def parameter_names(cls: type) -> list[str]:
    """Names of the named constructor parameters of ``cls``."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    return [p.name for p in parameters if p.kind in named and p.name != "self"]
