"""The ``mtvae`` command line: one entry point with subcommands.

User errors print one paragraph and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from mtvae.errors import UserError, on_signal
from mtvae.limits import MAX_SAMPLES
from mtvae.study.workers import BACKENDS, DEFAULT_BACKEND, backend_description, backend_options

STUDY_RUNS_FAILED = 3  # exit status of `mtvae study` when it ended with failed runs


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="mtvae", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of any error (or set MTVAE_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train one model into a run directory")
    train.add_argument("--model", help="model name (see `mtvae models`)")
    train.add_argument("--data", help="data source (see `mtvae datasets`), default shapes")
    train.add_argument("--data-root", metavar="DIR",
                       help="directory of the source's files (data.root), e.g. MNIST IDX files")
    train.add_argument("--config", help="YAML config file")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.epochs=5 (repeatable)")
    train.add_argument("--out", help="run directory to create")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    train.add_argument("--restart", action="store_true",
                       help="with --resume: when the checkpoint is missing or unusable, continue "
                            "from the previous one, or start again from scratch in the same "
                            "directory with its config.yaml")
    train.add_argument("--stage", metavar="STAGE",
                       help="with --resume: (re)run only this post-training stage of a finished "
                            "run, e.g. prior (a VQ-VAE's PixelCNN prior)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--nproc", type=int, metavar="N",
                       help="train with N data-parallel processes (launches torchrun; DDP)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shortcut for train.device")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="evaluate a run, write results.json, print a table")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--metrics", default="all", help="all or a comma list of families")
    evaluate.set_defaults(func=cmd_evaluate)

    sample = sub.add_parser("sample", help="draw samples from a trained run into a PNG grid")
    sample.add_argument("run_dir")
    sample.add_argument("--n", type=int, default=64,
                        help=f"number of samples (1 to {MAX_SAMPLES:,})")
    sample.add_argument("--out", required=True,
                        help="output PNG file (a directory: DIR/samples.png)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--condition", action="append", default=[], metavar="TASK=VALUE",
                        help="fix a task's label, e.g. --condition shape=1 (conditional priors)")
    sample.set_defaults(func=cmd_sample)

    config = sub.add_parser("config", help="print the full default config of a model as YAML")
    config.add_argument("--model", required=True)
    config.add_argument("--data", help="data source")
    config.add_argument("--data-root", metavar="DIR", help="directory of the source's files")
    config.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    config.set_defaults(func=cmd_config)

    sub.add_parser("datasets", help="list data sources").set_defaults(func=cmd_datasets)
    sub.add_parser("models", help="list models").set_defaults(func=cmd_models)

    study = sub.add_parser(
        "study", help="run a grid of models x conditions x seeds (resumable), then write the report"
    )
    source = study.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a shipped study: quick (default), standard or full")
    source.add_argument("--spec", metavar="FILE.yaml", help="your own study spec")
    study.add_argument("--out", required=True, metavar="STUDY_DIR",
                       help="study directory; rerun the same command to resume it")
    study.add_argument("--data", metavar="SOURCE",
                       help="run every model on this data source instead, e.g. npz:my.npz "
                            "(tasks then come from the data)")
    study.add_argument("--data-root", metavar="DIR", help="directory of the source's files")
    study.add_argument("--workers", type=int, help="parallel runs (default: one per core)")
    study.add_argument("--threads", type=int, help="torch threads per worker (default: cores/workers)")
    study.add_argument("--backend", choices=list(BACKENDS), default=DEFAULT_BACKEND,
                       help="where runs execute: " + "; ".join(
                           f"{name}, {backend_description(name)}" for name in BACKENDS)
                       + f" (default: {DEFAULT_BACKEND})")
    study.add_argument("--address", help="Ray cluster address for --backend ray (default: start "
                                         "a local Ray instance)")
    study.add_argument("--gpus-per-run", type=float, default=0.0, metavar="G",
                       help="GPUs each run declares under --backend ray")
    study.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    study.set_defaults(func=cmd_study)

    report = sub.add_parser("report", help="rebuild a study's report from its results.db")
    report.add_argument("study_dir", metavar="STUDY_DIR")
    report.add_argument("--format", choices=["html", "latex", "pdf", "all"], default="html",
                        help="html: index.html + report.md (default); latex: report/latex/ "
                        "(methodology.tex, results.tex, figures/*.pdf, main.tex) for a thesis to "
                        "\\input; pdf: latex, then main.pdf with pdflatex; all: what `mtvae "
                        "study` writes (html, latex, main.pdf where pdflatex is installed)")
    report.set_defaults(func=cmd_report)
    return parser


def raw_config(args: argparse.Namespace) -> dict:
    """Merge the config file, --model, --data and --set overrides into one raw dict."""
    from mtvae.base import apply_overrides, load_config_file

    raw = load_config_file(args.config) if getattr(args, "config", None) else {}
    if args.model:
        raw.setdefault("model", {})
        if not isinstance(raw["model"], dict):
            raise UserError("Config section 'model' must be a mapping, e.g. {name: vae}.")
        raw["model"]["name"] = args.model
    if args.data:
        raw.setdefault("data", {})["source"] = args.data
    if getattr(args, "data_root", None):
        raw.setdefault("data", {})["root"] = args.data_root
    if getattr(args, "device", None):
        raw.setdefault("train", {})["device"] = args.device
    return apply_overrides(raw, args.overrides)


def cmd_train(args: argparse.Namespace) -> None:
    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        from mtvae.train.distributed import launch

        status = launch(args.nproc, without_option(args.argv, "--nproc"))
        if status:
            raise SystemExit(status)
        return
    from mtvae.pipeline import resume_run, train_run, train_stage
    from mtvae.runconfig import resolve_config

    if args.restart and not args.resume:
        raise UserError("--restart goes with --resume: `mtvae train --resume RUN_DIR --restart`.")
    if args.stage and not args.resume:
        raise UserError(
            "--stage runs a stage of a finished run; name the run with --resume, e.g. "
            f"`mtvae train --resume runs/vqvae --stage {args.stage}`."
        )
    if args.resume:
        if args.model or args.data or args.data_root or args.config or args.overrides or args.out:
            raise UserError(
                "--resume takes the run's own config.yaml; drop --model/--data/--config/--set/--out."
            )
        if args.stage:
            run_dir = train_stage(args.resume, args.stage)
        else:
            run_dir = resume_run(args.resume, restart=args.restart)
    else:
        if not args.out:
            raise UserError("Missing --out RUN_DIR: say where the run directory should go.")
        config = resolve_config(raw_config(args))
        run_dir = train_run(config, args.out, overwrite=args.overwrite)
    print(f"run directory: {run_dir}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from mtvae.evaluate.runner import format_table
    from mtvae.pipeline import evaluate_run
    from mtvae.run_directory import ResultsNotSaved

    try:
        results = evaluate_run(args.run_dir, args.metrics)
    except ResultsNotSaved as exc:  # the metrics are computed: show them before the error
        print(format_table(exc.results))
        raise
    print(format_table(results))
    print(f"results: {Path(args.run_dir) / 'results.json'}")


def cmd_sample(args: argparse.Namespace) -> None:
    from mtvae.sampling import check_sample_count, sample_to_png

    check_sample_count(args.n)
    condition = parse_conditions(args.condition)
    path = sample_to_png(args.run_dir, args.n, args.out, seed=args.seed, condition=condition)
    print(f"samples: {path}")


def parse_conditions(items: list[str]) -> dict[str, float]:
    """``["shape=1", "x=0.5"]`` -> ``{"shape": 1, "x": 0.5}`` with numbers checked."""
    condition = {}
    for item in items:
        task, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not task or number is None:
            raise UserError(f"Bad --condition '{item}': expected TASK=NUMBER, e.g. shape=1.")
        condition[task.strip()] = int(number) if number.is_integer() else number
    return condition


def cmd_config(args: argparse.Namespace) -> None:
    import yaml

    from mtvae.runconfig import resolve_config

    args.config, args.device = None, None
    print(yaml.safe_dump(resolve_config(raw_config(args)).to_dict(), sort_keys=False), end="")


def cmd_datasets(args: argparse.Namespace) -> None:
    from mtvae.data.sources import SOURCES

    for entry in SOURCES.values():
        print(f"{entry.name:<14} {entry.description}")


def cmd_models(args: argparse.Namespace) -> None:
    from mtvae.models.registry import MODELS

    for entry in MODELS.values():
        print(f"{entry.name:<14} {entry.description}")


# the backend options (see mtvae.study.workers.BACKENDS) that flags of `mtvae study` set
BACKEND_FLAGS = {"address": "--address", "gpus": "--gpus-per-run"}


def _backend_options(args: argparse.Namespace) -> dict:
    """The options ``--backend`` takes, from their flags; a flag given to a backend that does
    not take it is an error naming the backends that do."""
    given = {option: getattr(args, flag[2:].replace("-", "_"))
             for option, flag in BACKEND_FLAGS.items()}
    takes = backend_options(args.backend)
    stray = [option for option, value in given.items() if value and option not in takes]
    if stray:  # named with the other flags of the same backends
        owners = {o: [n for n in BACKENDS if o in backend_options(n)] for o in BACKEND_FLAGS}
        flags = [f for o, f in BACKEND_FLAGS.items() if owners[o] == owners[stray[0]]]
        raise UserError(f"{' and '.join(flags)} {'apply' if len(flags) > 1 else 'applies'} to "
                        f"{' or '.join(f'--backend {n}' for n in owners[stray[0]])} only.")
    return {option: value for option, value in given.items() if option in takes}


def cmd_study(args: argparse.Namespace) -> int:
    """Run the study; exit status :data:`STUDY_RUNS_FAILED` when any of its runs failed."""
    from mtvae.report.build import STUDY_FORMATS, build_report
    from mtvae.study.spec import load_preset, load_spec_file, with_data
    from mtvae.study.study import failed_runs, run_study

    for flag in ("workers", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be at least 1, got {getattr(args, flag)}.")
    other_data = bool(args.data or args.data_root)  # then the changed spec alone is expanded
    spec = (load_spec_file(args.spec, expand=not other_data) if args.spec
            else load_preset(args.preset or "quick", expand=not other_data))
    if other_data:
        spec = with_data(spec, args.data, args.data_root)
    try:
        options = _backend_options(args)
        out = run_study(spec, args.out, workers=args.workers, threads=args.threads,
                        backend=args.backend, retry_failed=args.retry_failed,
                        backend_options=options,
                        report=lambda study: build_report(study, formats=STUDY_FORMATS))
    except KeyboardInterrupt as exc:
        print(f"mtvae: interrupted; rerun the same command to resume the study in {args.out}.",
              file=sys.stderr)
        raise SystemExit(getattr(exc, "status", 130)) from None
    print(f"report: {out / 'report' / 'index.html'}")
    print(f"latex: {out / 'report' / 'latex'} (results.tex, methodology.tex; main.pdf where "
          "pdflatex is installed)")
    failed = failed_runs(out)
    if failed:
        retry = shlex.join(["mtvae", *[a for a in args.argv if a != "--retry-failed"],
                            "--retry-failed"])
        print(f"mtvae: {failed} run{'s' if failed > 1 else ''} of the study failed (their errors "
              "are in the report's 'Failed runs' section); fix the cause, then run them again "
              f"with `{retry}`.", file=sys.stderr)
        return STUDY_RUNS_FAILED
    return 0


def cmd_report(args: argparse.Namespace) -> None:
    from mtvae.report.build import STUDY_FORMATS, build_report

    formats = {"html": ("html",), "latex": ("latex",), "pdf": ("pdf",),
               "all": STUDY_FORMATS}[getattr(args, "format", "html")]
    path = build_report(args.study_dir, formats=formats)
    if "html" in formats:
        print(f"report: {path}")
        print(f"markdown: {path.parent / 'report.md'}")
    if set(formats) - {"html"}:
        latex = path.parent / "latex"
        print(f"latex: {latex / 'results.tex'}, {latex / 'methodology.tex'} (\\input them)")
        if (latex / "main.pdf").exists() and set(formats) & {"pdf", "pdf?"}:
            print(f"pdf: {latex / 'main.pdf'}")


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE`` (to re-run a command under torchrun)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(option + "="):
            out.append(item)
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status.

    The one boundary where errors become messages: a :class:`UserError` or an ``OSError``
    (full disk, no permission, ...) prints one paragraph and exits 2, SIGINT / SIGTERM exit
    ``128 + signal`` after saying how to resume, anything else is a bug reported in one line;
    a command may return its own status (``mtvae study``: :data:`STUDY_RUNS_FAILED`).
    ``--debug`` (or ``MTVAE_DEBUG=1``) shows the traceback instead.
    """
    from mtvae.io import os_error

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = [a for a in argv if a != "--debug"]
    debug = args.debug or os.environ.get("MTVAE_DEBUG", "") not in ("", "0")
    try:
        with _signals_stop_the_command():
            status = args.func(args)
    except KeyboardInterrupt as exc:
        message = getattr(exc, "message", None) or interrupted_message(args)
        print(f"mtvae: {message}", file=sys.stderr)
        return getattr(exc, "status", 130)
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, OSError):
            exc = os_error(exc)
        if isinstance(exc, UserError):
            print(f"mtvae: error: {exc}", file=sys.stderr)
            return 2
        print(f"mtvae: internal error: {type(exc).__name__}: {str(exc).strip()[:300]}. This is "
              "a bug in mtvae; run the command again with --debug (or MTVAE_DEBUG=1) for the "
              "traceback and report it.", file=sys.stderr)
        return 1
    return status or 0


def interrupted_message(args: argparse.Namespace) -> str:
    """What to do after a signal that the command did not explain itself (training that has
    checkpointed does): ``--resume`` is advised only where the run has a checkpoint."""
    from mtvae.train.trainer import CHECKPOINT

    run = getattr(args, "resume", None) or (
        getattr(args, "out", None) if args.command == "train" else None)
    if run and (Path(run) / CHECKPOINT).is_file():
        return f"interrupted; continue the run with `mtvae train --resume {run}`."
    if run and (Path(run) / "config.yaml").is_file():
        return (f"interrupted before the run saved a checkpoint; start it again with `mtvae "
                f"train --resume {run} --restart`.")
    return ("interrupted; nothing was left half-written (files are replaced whole), so run the "
            "same command again.")


@contextlib.contextmanager
def _signals_stop_the_command() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`~mtvae.errors.Interrupted` while a command runs.

    Training defers them to the next batch and checkpoints first. The previous handlers come
    back afterwards (``main`` is also called in-process, by tests); an ignored signal stays
    ignored.
    """
    saved = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                saved[signum] = signal.signal(signum, on_signal)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
