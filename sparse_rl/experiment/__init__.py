"""Experiments (L4): one training run from a config to a run directory.

- :mod:`~sparse_rl.experiment.config`: the config schema, YAML composition and overrides, typed
  validation, Stable-Baselines3 argument checks;
- :mod:`~sparse_rl.experiment.errors`: :class:`UserError` and :class:`ConfigError`;
- the run directory's layout, naming and creation live in :mod:`sparse_rl._util.rundir` (below
  the analysis, which reads runs too);
- :mod:`~sparse_rl.experiment.checkpoint`, :mod:`~sparse_rl.experiment.callbacks`: atomic
  checkpoints and the training callbacks;
- :mod:`~sparse_rl.experiment.runner`: train, resume, evaluate.
"""
