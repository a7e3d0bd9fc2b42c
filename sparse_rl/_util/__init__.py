"""Helpers shared by every layer (L0, imports nothing of the package): argument checks with
"did you mean" hints (:mod:`~sparse_rl._util.validation`), the one registry class
(:mod:`~sparse_rl._util.registry`) and JSON cleaning (:mod:`~sparse_rl._util.jsonutil`)."""
