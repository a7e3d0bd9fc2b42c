"""The ``sparse-rl`` command line: ``train``, ``evaluate``, ``analyze``, ``compare``, ``demo``, ``benchmark``,
``configs``.

Each subcommand is a pair in :data:`COMMANDS`: a function adding its arguments to an argparse
parser and a handler taking the parsed arguments and returning an exit code. Adding one is a few
lines. A mistake the user can fix (:class:`~sparse_rl.experiment.config.UserError`) prints
``error: <one paragraph>`` on stderr and exits with its code: 2 for bad configs, files, checkpoints
and run directories, 3 when training diverged (NaN/inf), 4 when a run's file could not be written
(a full disk: the earlier checkpoints are intact), 1 when runs of a benchmark failed, 130 on
Ctrl-C (after a checkpoint). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sparse_rl.experiment.errors import UserError

Handler = Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------------------------------
# train


def _configure_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configs", nargs="*", metavar="CONFIG",
                        help="YAML config file(s) or shipped config names, merged in order (e.g. "
                             "quick/pendulum_sac_anf); none: the shipped base config with --method and --env")
    parser.add_argument("--method", default=None,
                        help="a paper's method: anf_sac, anf_td3, ds_sac, ds_td3, rigl_sac (its training settings, "
                             "sparsity and per-task values)")
    parser.add_argument("--env", default=None, metavar="ID", help="a gymnasium id, e.g. HalfCheetah-v5")
    parser.add_argument("--noise", type=float, default=None, metavar="F",
                        help="the fraction of inputs that are noise, in [0, 1) (e.g. 0.98)")
    parser.add_argument("--sparsity", default=None, metavar="PRESET",
                        help="another sparsity preset than the method's (dense, static, anf, strength_filter...)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its newest checkpoint")
    parser.add_argument("--checkpoint", metavar="DIR", help="with --resume: resume from this checkpoint directory")
    parser.add_argument("--track", action="store_true",
                        help="log to Weights & Biases too (run.track; pip install 'sparse_rl[track]'; "
                             "WANDB_MODE=offline to log without an account)")
    _add_set(parser)
    _add_progress(parser)


def _train(args: argparse.Namespace) -> int:
    from sparse_rl.experiment import runner

    composing = [flag for flag in ("method", "env", "noise", "sparsity") if getattr(args, flag) is not None]
    if args.resume and (args.configs or composing):
        what = "CONFIG files" if args.configs else "--" + composing[0]
        raise UserError(f"give either {what} (a new run) or --resume RUN_DIR (an existing run), not both; "
                        "a resumed run uses its own config.yaml (change it with --set)")
    if args.checkpoint and not args.resume:
        raise UserError("--checkpoint needs --resume RUN_DIR")
    if args.track:
        args.overrides = [*args.overrides, "run.track=true"]
    if args.resume:
        result = runner.resume(args.resume, args.overrides, checkpoint=args.checkpoint, progress_bar=args.progress)
    else:
        from sparse_rl.experiment.shipped_configs import compose_run

        config = compose_run(args.configs, method=args.method, env=args.env, noise=args.noise,
                             sparsity=args.sparsity, overrides=args.overrides)
        result = runner.train(config, progress_bar=args.progress,
                              on_run_dir=lambda path: print(f"run directory: {path}", file=sys.stderr))
    print(result.message)
    print(f"run directory: {result.run_dir}")
    return 0


# --------------------------------------------------------------------------------------------------
# evaluate


def _configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by 'sparse-rl train'")
    parser.add_argument("--episodes", "-n", type=int, default=None,
                        help="episodes (default: the config's eval.n_episodes)")
    parser.add_argument("--seed", type=int, default=None, help="evaluation env seed (default: the config's)")
    parser.add_argument("--checkpoint", metavar="DIR", help="evaluate this checkpoint instead of model.zip")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    parser.add_argument("--best", action="store_true", help="evaluate best_model.zip (the best periodic evaluation)")
    parser.add_argument("--video", nargs="?", const="", default=None, metavar="DIR_OR_FILE",
                        help="record an MP4 of the evaluation into a directory (default: RUN_DIR/videos) or a file "
                             "ending in .mp4 (pip install 'sparse_rl[video]')")
    parser.add_argument("--video-length", type=int, default=None, metavar="STEPS",
                        help="env steps in the video (default: one episode)")


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sparse_rl.experiment import runner

    video_dir = None
    if args.video is not None:
        video_dir = Path(args.video) if args.video else Path(args.run_dir) / "videos"
    result = runner.evaluate_run(args.run_dir, n_episodes=args.episodes, seed=args.seed, checkpoint=args.checkpoint,
                                 deterministic=not args.stochastic, best=args.best, video_dir=video_dir,
                                 video_length=args.video_length)
    print(f"return over {len(result.returns)} episodes: {result.mean:.2f} ± {result.std:.2f} "
          f"(model {result.model_path}, trained for {result.num_timesteps} steps)")
    if result.video is not None:
        print(f"video: {result.video}")
    return 0


# --------------------------------------------------------------------------------------------------
# analyze


def _configure_analyze(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by 'sparse-rl train'")
    parser.add_argument("--out", metavar="DIR", default=None, help="where the plots go (default: RUN_DIR/plots)")
    parser.add_argument("--no-gif", dest="gif", action="store_false", help="skip the animated GIF (the slowest part)")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="do not write the analysis to RUN_DIR/tb/analysis (never written with --out: "
                             "then nothing is written into RUN_DIR)")


def _analyze(args: argparse.Namespace) -> int:
    from sparse_rl.experiment.runner import require_run_dir

    run_dir = require_run_dir(args.run_dir)
    try:
        from sparse_rl.analysis.report import analyze_run
    except ImportError as error:
        raise UserError(f"the connectivity analysis is not available in this installation ({error})") from None
    if args.out is None and not os.access(run_dir, os.W_OK | os.X_OK):
        raise UserError(f"run directory {str(run_dir)!r} is read-only and the plots go into it by default; give "
                        "--out DIR to write them elsewhere")
    try:
        summary = analyze_run(run_dir, out_dir=args.out, tensorboard=args.tensorboard and args.out is None,
                              gif=args.gif)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(f"cannot analyze {str(run_dir)!r}: {' '.join(str(error).split())}") from None
    except OSError as error:
        raise UserError(f"cannot analyze {str(run_dir)!r}: cannot write {error.filename or 'a file'}: "
                        f"{error.strerror or error}; give --out DIR on a writable disk") from None
    files = summary.get("files", {})
    print(f"{len(files)} files in {summary.get('out_dir')} ({summary.get('snapshots', 0)} connectivity snapshots)")
    for name, path in files.items():
        print(f"  {name}: {path}")
    if summary.get("final"):
        print(f"input-layer connectivity at step {summary.get('final_step')} (from {summary.get('final_source')}):")
    for network, final in (summary.get("final") or {}).items():
        shown = [f"{key} {final[key]:.3g}" for key in analyze_summary_keys()
                 if isinstance(final.get(key), (int, float)) and math.isfinite(final[key])]
        print(f"  {network}: " + ", ".join(shown))
    return 0


def analyze_summary_keys() -> tuple[str, ...]:
    """What ``analyze`` prints per network: the density, the share of connections and of |w| on real
    features vs chance, and every registered filtering metric."""
    from sparse_rl.sparse.connectivity import filtering_keys

    return ("density", "chance_share", "strength_real_share", *filtering_keys())


# --------------------------------------------------------------------------------------------------
# verify


def _configure_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by 'sparse-rl train'")


def _verify(args: argparse.Namespace) -> int:
    from sparse_rl._util.rundir import verify_run

    found = verify_run(args.run_dir)
    print(f"{args.run_dir}: {len(found.checkpoints)} checkpoint(s) match their manifests"
          + (f" ({', '.join(found.checkpoints)})" if found.checkpoints else ""))
    if found.models:
        print("sha256 of the model files (SB3 unpickles their pickled values when it loads one; compare the digests "
              "with ones you trust before evaluate, analyze, resume or a benchmark report loads them):")
        for name, (digest, pickled) in found.models.items():
            print(f"  {digest}  {name}  ({pickled} pickled values)")
    if found.problems:
        raise UserError(f"run {args.run_dir!r} did not verify: " + "; ".join(found.problems))
    return 0


# --------------------------------------------------------------------------------------------------
# demo


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="runs", help="directory holding the demo's run directory (default: runs)")
    _add_set(parser)
    _add_progress(parser)


def _demo(args: argparse.Namespace) -> int:
    from sparse_rl.experiment import runner
    from sparse_rl.experiment.config import apply_overrides, config_from_dict, deep_merge

    data = deep_merge(runner.DEMO_CONFIG, {"run": {"root": args.root}})
    config = config_from_dict(apply_overrides(data, args.overrides))
    print(f"demo: {config.description}; {config.total_timesteps} steps", file=sys.stderr)
    result = runner.train(config, progress_bar=args.progress,
                          on_run_dir=lambda path: print(f"run directory: {path}", file=sys.stderr))
    mean, std = result.last_eval or (float("nan"), float("nan"))
    print(f"final evaluation return: {mean:.2f} ± {std:.2f} over {config.eval.n_episodes} episodes")
    scale = demo_yardstick(config.env.id, config.env.make_kwargs)
    if scale:
        print(scale)
    print(f"run directory: {result.run_dir}")
    command, note = command_hint()
    if note:
        print(note)
    tensorboard, _ = command_hint("tensorboard")
    print(f"next: {command} evaluate {result.run_dir}  |  {command} analyze {result.run_dir}  |  "
          f"{tensorboard} --logdir {result.run_dir / 'tb'}")
    return 0


#: what a random and a solved policy score per episode, by env id (episodes of the env's own length)
DEMO_YARDSTICKS = {
    # 200-step episodes; random actions (measured here, 100 seeded episodes): -1,208 ± 294; a policy
    # that swings the pendulum up and holds it (rl-zoo3's SAC and TD3): about -150 to -200
    "Pendulum-v1": ("about -1,200", "about -150 to -200"),
}


def demo_yardstick(env_id: str, make_kwargs: dict) -> str:
    """A line saying what the demo's return means: what a random and a solved policy score on
    ``env_id`` (``""`` when unknown, or when ``make_kwargs`` changes the episodes' length)."""
    if env_id not in DEMO_YARDSTICKS or "max_episode_steps" in make_kwargs:
        return ""
    random_score, solved = DEMO_YARDSTICKS[env_id]
    return (f"yardstick on {env_id} (higher is better): a random policy scores {random_score} per episode, a "
            f"solved one {solved}")


def command_hint(name: str = "sparse-rl") -> tuple[str, str]:
    """How the user can call the command ``name`` (installed beside this Python) from this shell:
    the command, and a note when it is not on PATH (installed in a virtual environment that is not
    active, e.g. by ``make demo``)."""
    import os
    import shutil
    from pathlib import Path

    bin_dir = Path(sys.executable).parent
    script = bin_dir / (f"{name}.exe" if os.name == "nt" else name)
    found = shutil.which(name)
    if found and (not script.exists() or Path(found).resolve() == script.resolve()):
        return name, ""
    if not script.exists():
        return (f"{Path(sys.executable).name} -m sparse_rl" if name == "sparse-rl" else name), ""
    def shown_path(path: Path) -> Path:
        return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path

    shown, activate = shown_path(script), shown_path(bin_dir / "activate")
    return str(shown), (f"{name} is installed in {bin_dir.parent}, which is not active in this shell: run "
                        f"'source {activate}' to use plain '{name}', or call {shown}")


# --------------------------------------------------------------------------------------------------
# benchmark


def _configure_benchmark(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", metavar="SWEEP",
                        help="a sweep file or a shipped sweep's name (e.g. configs/bench/quick.yaml or bench/quick)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="the sweep's output directory (default: bench_runs/<sweep name>); run the same command "
                             "again to resume it")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local: a process pool on this machine (default); ray: a Ray cluster (pip install "
                             "'sparse_rl[ray]')")
    parser.add_argument("--workers", "-j", type=int, default=None,
                        help="runs at once, one torch thread each (default: the number of CPU cores); with --backend "
                             "ray, the CPUs of the local Ray instance")
    parser.add_argument("--address", default=None,
                        help="with --backend ray: an existing cluster (auto, HOST:PORT or ray://HOST:10001); default: "
                             "start a local Ray instance")
    parser.add_argument("--dry-run", action="store_true", help="print the runs (done / to run) and train nothing")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing; write results.csv, summary.md and plots from the runs finished so far")
    _add_set(parser)


def _benchmark(args: argparse.Namespace) -> int:
    from sparse_rl.benchmark.sweep import run_sweep
    from sparse_rl.experiment.shipped_configs import resolve_config_path

    if args.dry_run and args.report_only:
        raise UserError("give --dry-run or --report-only, not both")
    outcome = run_sweep(resolve_config_path(args.sweep, "sweep"), out_dir=args.out, backend=args.backend,
                        workers=args.workers, address=args.address, overrides=args.overrides, dry_run=args.dry_run,
                        report_only=args.report_only)
    if not args.dry_run:
        print(f"sweep directory: {outcome.out_dir}")
    return 0


# --------------------------------------------------------------------------------------------------
# compare


def _configure_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="RUN_OR_SWEEP",
                        help="run directories, sweep directories (bench_runs/<name>) or directories holding runs")
    parser.add_argument("--out", "-o", default="comparison.png", metavar="FILE",
                        help="the image to write (PNG, PDF, SVG; default: comparison.png)")
    parser.add_argument("--labels", nargs="+", default=None, help="a legend label per run directory")
    parser.add_argument("--title", default=None, help="the plot's title")


def _compare(args: argparse.Namespace) -> int:
    from sparse_rl.benchmark.compare import compare

    print(f"learning curves: {compare(args.paths, args.out, labels=args.labels, title=args.title)}")
    return 0


# --------------------------------------------------------------------------------------------------
# configs


def _configure_configs(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the names of the shipped configs")
    show = actions.add_parser("show", help="print a shipped config")
    show.add_argument("name", metavar="NAME", help="a shipped name (e.g. quick/pendulum_sac_anf) or a YAML file")
    show.add_argument("--resolved", action="store_true",
                      help="every value a run of it uses: its defaults merged in and its method expanded")
    copy = actions.add_parser("copy", help="copy a shipped config to start from")
    copy.add_argument("name", metavar="NAME", help="e.g. quick/pendulum_sac_anf")
    copy.add_argument("destination", metavar="DEST",
                      help="a new directory (gets the whole configs tree), or an existing directory or a .yaml "
                           "file (gets the one config with its parts merged in)")


def _configs(args: argparse.Namespace) -> int:
    from sparse_rl.experiment import shipped_configs

    if args.action == "list":
        print(f"configs shipped in {shipped_configs.configs_root()}:")
        kinds = shipped_configs.list_configs_by_kind()
        for kind, heading in CONFIG_KIND_HEADINGS.items():
            print(heading)
            for name in kinds[kind]:
                print(f"  {name}")
    elif args.action == "show":
        path = Path(args.name) if Path(args.name).is_file() else shipped_configs.find_config(args.name)
        if args.resolved:
            print(_resolved_text(path), end="")
        else:
            text = path.read_text(encoding="utf-8")
            print(text, end="" if text.endswith("\n") else "\n")
            if "defaults" in (shipped_configs.read_config_data(path)):
                print(f"# the parts in 'defaults' merged in: sparse-rl configs show {args.name} --resolved")
    else:
        target, copied = shipped_configs.copy_config(args.name, args.destination)
        if copied > 1:
            print(f"copied the shipped configs ({copied} files) to {args.destination}; the config: {target}")
        else:
            print(f"copied: {target} (its parts merged in)")
    return 0


def _resolved_text(path: Path) -> str:
    """A config with everything a run would use: composed, its method expanded, validated; a
    fragment that is no run by itself (no env) composed only."""
    import yaml

    from sparse_rl.experiment.config import compose
    from sparse_rl.experiment.shipped_configs import compose_run

    data = compose(path)
    if not isinstance(data.get("env"), dict) or "id" not in data["env"]:
        return yaml.safe_dump(data, sort_keys=False)
    return compose_run([str(path)]).to_yaml()


#: how ``configs list`` heads each kind of config (:func:`~sparse_rl.experiment.shipped_configs.config_kind`)
CONFIG_KIND_HEADINGS = {
    "trainable": "runs (sparse-rl train NAME, e.g. sparse-rl train quick/pendulum_sac_anf):",
    "sweep": "sweeps (sparse-rl benchmark NAME, e.g. sparse-rl benchmark bench/quick):",
    "fragment": "fragments (parts the configs above include; not trainable alone):",
}


# --------------------------------------------------------------------------------------------------
# shared options and the parser

#: name -> (help, add arguments, handler)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "train": ("train a new run from YAML config(s), or resume one", _configure_train, _train),
    "evaluate": ("print a run's mean ± std return over N episodes", _configure_evaluate, _evaluate),
    "analyze": ("plot a run's input-layer connectivity", _configure_analyze, _analyze),
    "compare": ("plot the learning curves of several runs or sweeps on one figure", _configure_compare, _compare),
    "verify": ("check a run without loading it: checkpoints against their manifests, no link leaving it, and the "
               "sha256 of every model file", _configure_verify, _verify),
    "demo": ("a one-minute ANF-SAC run on a noisy Pendulum", _configure_demo, _demo),
    "benchmark": ("run a sweep (agents x envs x noise fractions x seeds) and write results.csv, summary.md and "
                  "learning curves", _configure_benchmark, _benchmark),
    "configs": ("list, show or copy the configs shipped with the package", _configure_configs, _configs),
}


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override a config key, value parsed as YAML (e.g. --set env.noise_fraction=0.98 seed=3)")


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: run.progress_bar, else when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    """The ``sparse-rl`` argument parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="sparse-rl", description="Dynamically sparse SAC/TD3 agents: train, "
                                     "evaluate and analyze runs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, configure, handler) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        configure(sub)
        sub.set_defaults(handler=handler)
    return parser


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sparse_rl")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "(not installed)"


def report_error(error: UserError) -> None:
    """Print ``error: <message>`` on stderr as one paragraph (one line; the terminal wraps it).

    :param error: the user's mistake
    """
    print("error: " + " ".join(str(error).split()), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the exit code (0 on success)
    """
    as_program = argv is None
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except UserError as error:
        report_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sparse-rl configs list | head -1`: the reader has what it wanted
        _discard_stdout()
        return BROKEN_PIPE_EXIT
    finally:
        if as_program:
            _quiet_second_interrupt()
            try:
                sys.stdout.flush()
            except BrokenPipeError:
                _discard_stdout()


#: the exit code when stdout's reader went away (as a process killed by SIGPIPE: 128 + 13)
BROKEN_PIPE_EXIT = 141


def _discard_stdout() -> None:
    """Send what is left of stdout to ``os.devnull``, so that the interpreter's last flush of a closed
    pipe raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file (captured in a test)
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives until the process ends
    finally:
        os.close(devnull)


def _quiet_second_interrupt() -> None:
    """Once the command's work is done (a checkpoint written after a Ctrl-C included), a Ctrl-C
    during the interpreter's exit handlers ends the process at once with 130, without a traceback."""
    import signal
    import threading

    def stop(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        os._exit(130)

    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, stop)


if __name__ == "__main__":
    sys.exit(main())
