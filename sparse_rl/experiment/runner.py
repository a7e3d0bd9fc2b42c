"""Run an experiment: build env and agent from an :class:`~sparse_rl.experiment.config.ExperimentConfig`,
train with evaluation, checkpoints, connectivity snapshots and a NaN guard into a run directory;
resume a run from its last checkpoint; evaluate a finished run.

This module gathers the public names of the modules that do each job:
:mod:`~sparse_rl.experiment.factory` (env and agent), :mod:`~sparse_rl.experiment.session`
(:func:`train`), :mod:`~sparse_rl.experiment.resume` (:func:`resume`),
:mod:`~sparse_rl.experiment.evaluate` (:func:`evaluate_run`) and
:mod:`~sparse_rl._util.rundir` (the run directory, whose layout is
:class:`~sparse_rl._util.rundir.RunDir`'s).

Run directory (the names are :mod:`sparse_rl._util.rundir`'s)::

    runs/<env>-<agent>-<sparsity>-f<noise>-s<seed>-<YYYYmmdd-HHMMSS>/
      config.yaml      the resolved config (``sparse-rl train`` loads it again)
      metrics.csv      one row per evaluation (see :data:`~sparse_rl.experiment.callbacks.METRICS_FIELDS`)
      tb/              TensorBoard events (SB3's logger; ``sparsity/`` scalars come from the agents)
      checkpoints/     ``step_<N>/`` atomic checkpoints (see :mod:`sparse_rl.experiment.checkpoint`)
      connectivity/    input-layer snapshots (:mod:`sparse_rl.analysis.snapshots`)
      model.zip        the final model
      evaluations.npz  every evaluation's episode returns and lengths (SB3's ``EvalCallback`` format)
      best_model.zip   the model at its best evaluation (:mod:`sparse_rl.experiment.evaluations`)
      progress.csv …   the SB3 logger formats chosen in ``run.log_formats`` (:mod:`sparse_rl.experiment.tracking`)

Every sparsity, ``dense`` included, trains a :class:`~sparse_rl.agents.SparseSAC` /
:class:`~sparse_rl.agents.SparseTD3`: with ``dense`` they are parameter-identical to SB3's SAC /
TD3 for the same seed, and one code path keeps checkpoints and logs alike. With
``agent.implementation: sb3`` (and ``sparsity: dense``) the run trains ``stable_baselines3.SAC`` /
``TD3`` themselves instead, the reference baseline of the benchmarks, through the same code path;
on an extremely noisy env they get :class:`~sparse_rl.agents.buffers.NoiseFreeReplayBuffer` (the
same samples as SB3's buffer, without storing the noise) unless ``agent.hyperparams.store_noise``.
"""

from sparse_rl._util.rundir import (
    BEST_MODEL,
    CHECKPOINTS,
    CONFIG_FILE,
    CONNECTIVITY_DIR,
    FINAL_MODEL,
    METRICS_FILE,
    TB_DIR,
    TOPOLOGY_FILE,
    RunDir,
    create_run_dir,
    require_run_dir,
    run_name,
    write_config,
)
from sparse_rl.experiment.checkpoint import latest_checkpoint
from sparse_rl.experiment.evaluate import EvaluationResult, evaluate_run
from sparse_rl.experiment.factory import (
    action_noise,
    agent_class,
    agent_kwargs,
    build_env,
    build_model,
    check_device,
    sb3_replay_buffer,
)
from sparse_rl.experiment.resume import FIXED_HYPERPARAMS, RESUMABLE_CHANGES, resume
from sparse_rl.experiment.session import (
    DEMO_CONFIG,
    BindNoiseFreeBuffer,
    RunResult,
    TrainingDiverged,
    TrainingInterrupted,
    load_run_config,
    save_final_model,
    train,
)

__all__ = [
    "BEST_MODEL",
    "CHECKPOINTS",
    "CONFIG_FILE",
    "CONNECTIVITY_DIR",
    "DEMO_CONFIG",
    "FINAL_MODEL",
    "FIXED_HYPERPARAMS",
    "METRICS_FILE",
    "RESUMABLE_CHANGES",
    "TB_DIR",
    "TOPOLOGY_FILE",
    "BindNoiseFreeBuffer",
    "EvaluationResult",
    "RunDir",
    "RunResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "action_noise",
    "agent_class",
    "agent_kwargs",
    "build_env",
    "build_model",
    "check_device",
    "create_run_dir",
    "evaluate_run",
    "latest_checkpoint",
    "load_run_config",
    "require_run_dir",
    "resume",
    "run_name",
    "save_final_model",
    "sb3_replay_buffer",
    "train",
    "write_config",
]
