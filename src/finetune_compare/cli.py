"""Command line: `python main.py --mode data|train|lora|full|compare|predict|optimize|report ...`."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shlex
import sys
from pathlib import Path

from . import __version__
from .errors import UserError
from .cli_help import MODE_HELP
from .cli_output import announce, print_comparison, print_optimization, print_plan, print_sweep
from .layout import Layout
from .redaction import redact_text
from .utils import signals


log = logging.getLogger("finetune_compare")

# The commands import their stage inside the function on purpose: `finetune-compare --help` and a bad
# command line answer in 0.1 s, while importing the experiments (torch, transformers, peft) takes ~6 s here.


CONFIG_MODES = ("compare", "sweep", "train", "lora", "full", "data", "optimize")


class _Parser(argparse.ArgumentParser):
    """One line on stderr and exit status 2 for a bad command line, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="finetune-compare",
        description="LoRA or full fine-tuning? Train, compare and report on 3-class sentiment.",
        epilog="Run `finetune-compare COMMAND --help` for a command's options and examples. "
               "`python main.py --mode COMMAND ...` works too.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="mode", metavar="COMMAND", parser_class=_Parser)
    for mode, (summary, examples) in MODE_HELP.items():
        m = sub.add_parser(mode, help=summary, description=summary, epilog="examples:\n" + examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if mode in CONFIG_MODES or mode in ("config", "plan"):
            m.add_argument("--config", action="append", default=[],
                           help="YAML config file; repeatable, later files override earlier ones")
            m.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config key (value parsed as YAML); repeatable; "
                                "`finetune-compare config --list` lists the keys")
        if mode in CONFIG_MODES or mode == "plan":
            m.add_argument("--output-dir", help="results folder (overrides output_dir)")
        if mode in CONFIG_MODES:
            m.add_argument("--overwrite", action="store_true",
                           help="delete this project's earlier results in --output-dir when they come from a "
                                "different configuration (never anything else)")
        if mode in ("sweep", "plan"):
            m.add_argument("--sweep", dest="sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                           help="a swept key and its values (parsed as YAML); repeat for a second key; replaces "
                                "the config's `sweep` grid")
        if mode in ("compare", "optimize", "sweep", "plan"):
            from .methods import method_names

            # no fixed choices: a peft type by its name or a config's method_variants is a method too (the config
            # checks the name, with the same message as for `methods`)
            m.add_argument("--method", metavar="METHOD",
                           help=f"one method ({', '.join(method_names())}, a peft type by its name, or one of the "
                                "config's method_variants), or both = full and lora (default: the config's methods)")
            m.add_argument("--backend", choices=("local", "ray"), dest="execution_backend",
                           help="local: in this process, one after another; ray: the runs (optimize: the trial "
                                "workers of --workers) side by side as Ray tasks with the execution section's "
                                "resources (sets execution.backend)")
        if mode in ("compare", "sweep", "plan"):
            m.add_argument("--tune-trials", type=int, dest="tune_trials", metavar="N",
                           help="tune each method first with N Optuna trials of its own on the validation split, "
                                "then compare the best settings of each (sets tune_trials)")
        if mode == "optimize":
            m.add_argument("--trials", type=int, help="trials per method (0: only create the studies)")
            m.add_argument("--storage", help="Optuna storage URL (postgresql://, mysql://, sqlite:///) or journal:PATH")
            m.add_argument("--workers", type=int, dest="hpo_workers", metavar="N",
                           help="with --backend ray: N trial workers per study as Ray tasks on one shared --storage "
                                "(sets hpo_workers)")
        if mode == "predict":
            m.add_argument("--model", required=True, help="a folder saved with save_model: true")
            m.add_argument("--text", action="append", help="a text to classify; repeatable")
            m.add_argument("--input", help="a .csv or .jsonl file of texts; every column is kept in the output")
            m.add_argument("--text-column", default="text", help="the --input column (or JSON key) holding the texts "
                                                                 "(default: text)")
            m.add_argument("--output", help="write predictions to this .csv or .jsonl file")
        if mode == "export":
            m.add_argument("--run", required=True, help="a run folder (runs/<method>/seed-<n>), or a comparison folder "
                                                        "with --method")
            m.add_argument("--output", required=True, help="the folder to write (new, empty, or an earlier export "
                                                           "with --overwrite)")
            m.add_argument("--method", help="with a comparison folder: the method whose run to export")
            m.add_argument("--seed", type=int, help="with --method: that seed's run (default: the run nearest the "
                                                    "method's median primary score)")
            m.add_argument("--merge", action=argparse.BooleanOptionalAction, default=True,
                           help="merge the adapter into the base where peft can (default); --no-merge keeps it apart")
            m.add_argument("--onnx", action="store_true", help="also write model.onnx (ONNX Runtime, CPU), checked too")
            m.add_argument("--overwrite", action="store_true",
                           help="replace an earlier export in --output (only the files it wrote)")
        if mode == "report":
            m.add_argument("--results", required=True, help="a results folder (of compare or sweep)")
        if mode == "plan":
            m.add_argument("--pilot", help="a comparison's results folder (its comparison.json): plan the pairs")
            m.add_argument("--probe-steps", type=int, default=10, metavar="N",
                           help="with --config: optimizer steps each method's probe trains (default 10)")
            m.add_argument("--json", dest="plan_json", metavar="FILE",
                           help="with --config: also write the plan as JSON to FILE")
            m.add_argument("--effect", type=float, help="the true difference to detect (primary metric units)")
            m.add_argument("--margin", type=float, help="the equivalence margin to show (default: the pilot's)")
            m.add_argument("--power", type=float, default=0.8, help="probability of detecting it (default 0.8)")
        if mode == "config":
            m.add_argument("--list", action="store_true", help="list every key with type, default and meaning")
        m.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
        m.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return p


def normalise_argv(argv: list[str]) -> list[str]:
    """The seed's `--mode X` (or `--mode=X`) becomes the subcommand X; no command at all means compare."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--mode" and i + 1 < len(argv):
            return [argv[i + 1], *argv[:i], *argv[i + 2:]]
        if arg.startswith("--mode="):
            return [arg.split("=", 1)[1], *argv[:i], *argv[i + 1:]]
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["compare", *argv]
    return argv


MAX_TRIALS = 100_000


def _check_args(args) -> None:
    if getattr(args, "trials", None) is not None and not 0 <= args.trials <= MAX_TRIALS:
        raise UserError(f"--trials must be between 0 and {MAX_TRIALS:,}, got {args.trials}")
    if args.mode == "plan":
        _check_plan_args(args)
        for name in ("effect", "margin"):
            value = getattr(args, name)
            if value is not None and not 0 < value < 1:
                raise UserError(f"--{name} must be between 0 and 1 (a difference in the primary metric), got {value}")
        if not 0.5 <= args.power < 1:
            raise UserError(f"--power must be at least 0.5 and below 1, got {args.power}")
    if args.mode == "predict" and bool(args.text) == bool(args.input):
        raise UserError("predict needs exactly one of --text \"...\" or --input FILE")
    out = getattr(args, "output_dir", None)
    if out and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--output-dir '{out}' exists and is a file, not a directory")


def _check_plan_args(args) -> None:
    """plan answers one of two questions: what a command would cost (--config) or how many pairs (--pilot)."""
    if bool(args.pilot) == bool(args.config):
        raise UserError("plan needs exactly one of --config FILE (what compare or sweep would cost) or --pilot DIR "
                        "(how many pairs a finished comparison says are needed)")
    cost_only = [f for f, v in (("--set", args.overrides), ("--output-dir", args.output_dir), ("--sweep", args.sweep),
                                ("--method", args.method), ("--backend", args.execution_backend),
                                ("--tune-trials", args.tune_trials), ("--json", args.plan_json)) if v]
    if args.pilot and cost_only:
        raise UserError(f"plan --pilot does not take {', '.join(cost_only)} (those go with --config)")
    pilot_only = [f for f, v in (("--effect", args.effect), ("--margin", args.margin)) if v is not None]
    if args.config and pilot_only:
        raise UserError(f"plan --config does not take {', '.join(pilot_only)} (those go with --pilot)")
    if args.plan_json and Path(args.plan_json).is_dir():
        raise UserError(f"--json '{args.plan_json}' is a directory; give a file name, e.g. plan.json")
    if not 2 <= args.probe_steps <= 1000:
        raise UserError(f"--probe-steps must be between 2 and 1,000, got {args.probe_steps}")


def _load(args):
    from .config import load_config

    extra = {"output_dir": getattr(args, "output_dir", None)}
    if args.mode in ("lora", "full"):
        extra["use_lora"] = args.mode == "lora"
    if getattr(args, "tune_trials", None) is not None:
        extra["tune_trials"] = args.tune_trials
    if getattr(args, "hpo_workers", None) is not None:
        extra["hpo_workers"] = args.hpo_workers
    if getattr(args, "execution_backend", None):
        extra["execution_backend"] = args.execution_backend
    if getattr(args, "method", None):
        extra["methods"] = ["full", "lora"] if args.method == "both" else [args.method]
    if getattr(args, "sweep", None):
        from .config import parse_sweep

        extra["sweep"] = parse_sweep(args.sweep)
    config = load_config(args.config or None, args.overrides, **extra)
    if config.experiment.sweep and args.mode not in ("sweep", "config", "plan"):
        raise UserError(f"the config sets a sweep grid ({', '.join(config.experiment.sweep)}), which only "
                        f"`finetune-compare sweep` runs; use that command, or remove `sweep` for {args.mode}")
    return config


def cmd_data(config, overwrite: bool = False) -> None:
    from .data.summary import format_summary
    from .experiments.commands.inspect_data import write_data_summary

    summary, path = write_data_summary(config, overwrite)
    print(format_summary(summary))
    print(f"\nwritten: {path}")


def cmd_single(config, overwrite: bool = False) -> None:
    from .experiments.execution.context import prepare_context
    from .experiments.execution.run import run_method
    from .experiments.study.study_plan import run_dir_for

    from .utils.distributed import is_main

    from .experiments.study.ownership import FolderGuard

    with FolderGuard(config, overwrite=overwrite) as folder:
        ctx = prepare_context(config, folder=folder, methods=[config.single_method])
        record = run_method(ctx, config.single_method, config.experiment.seed)
    if not is_main():
        return
    t = record.test
    print(f"\n{config.single_method}: test macro-F1 {t['macro_f1']:.4f}, accuracy {t['accuracy']:.4f}, "
          f"macro recall {t['macro_recall']:.4f}")
    print(f"results: {run_dir_for(ctx.output_dir, config.single_method, config.experiment.seed)}")


def cmd_compare(config, overwrite: bool = False) -> None:
    from .experiments.commands.compare import ComparisonExperiment

    from .utils.distributed import is_main

    result = ComparisonExperiment(config, overwrite=overwrite).run_multiple_runs(config)
    if is_main():
        print_comparison(result, Path(config.experiment.output_dir))


def cmd_sweep(config, overwrite: bool = False) -> None:
    from .experiments.commands.sweep import run_sweep

    from .utils.distributed import is_main

    summary = run_sweep(config, overwrite)
    if is_main():
        print_sweep(summary, Path(config.experiment.output_dir))


def cmd_optimize(config, args) -> None:
    from .experiments.search.optimize import run_optimization

    out = Path(config.experiment.output_dir)
    summaries = run_optimization(config, list(config.method.methods), args.trials, args.storage, out, args.overwrite)
    print_optimization(summaries, config.search.hpo_metric)
    tuned = Layout(out).tuned
    if tuned.is_file():
        used = " ".join(f"--config {c}" for c in args.config)
        sets = " ".join(f"--set {shlex.quote(o)}" for o in args.overrides)
        print(f"\ntuned vs tuned: finetune-compare compare {used + ' ' if used else ''}--config {tuned}"
              + (f" {sets}" if sets else ""))


def cmd_config(config, args) -> None:
    """`--list`: every key with type, default and meaning; otherwise the resolved config (secrets masked)."""
    from .config import config_to_yaml, describe_keys

    if not args.list:
        print(config_to_yaml(config), end="")
        return
    for key, section, type_name, default, help_text in describe_keys():
        print(f"{key}  ({section}; {type_name}; default: {'null' if default is None else default})\n    {help_text}")


def cmd_report(args) -> None:
    from .analysis.rebuild import rebuild_report

    from .analysis.sweep_report import build_sweep_report, is_sweep_dir

    from .experiments.study.ownership import FolderGuard

    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"--results '{results}' is not a directory with a comparison's or a sweep's results")
    with FolderGuard(None, results):  # never while a compare or sweep writes there
        if is_sweep_dir(results):
            print_sweep(build_sweep_report(results, rebuild=True), results)
            return
        print_comparison(rebuild_report(results), results)


def cmd_predict(args) -> None:
    from .experiments.commands.predict_files import check_output_file, predict_rows, read_input_rows, write_predictions

    out = check_output_file(args.output) if args.output else None
    column = args.text_column if args.input else "text"
    rows = [{"text": t} for t in args.text] if args.text else read_input_rows(args.input, column)
    records, key = predict_rows(args.model, rows, column)
    if out:
        write_predictions(out, records)
        print(f"wrote {len(records)} predictions to {out}")
    else:
        for r in records:
            probs = "  ".join(f"{k[2:]}={v:.3f}" for k, v in r.items() if k.startswith("p_"))
            print(f"{r[key]:<9} {probs}  {r[column][:80]}")


def cmd_export(args) -> None:
    from .experiments.commands.export import export_run

    signals.note(f"the export to {args.output} under way was discarded, nothing half-written")
    info = export_run(args.run, args.output, args.method, args.seed, args.merge, args.onnx, args.overwrite)
    print(f"exported {info['method']} seed {info['seed']} ({info['choice']}) to {args.output}")
    how = "merged into the base" if info["merged"] else ("the adapter apart from its base" if info["is_peft"] else
                                                         "the whole model")
    print(f"  model: {how}, {info['model_bytes'] / 2**20:.1f} MB; labels {', '.join(info['labels'])}")
    if info.get("onnx_skipped"):
        print(f"  onnx: not written: {info['onnx_skipped']}")
    for runtime, c in info["check"]["runtimes"].items():
        print(f"  check ({runtime}, {info['check']['examples']} test texts): label agreement {c['label_agreement']:.2%}, "
              f"largest probability difference {c['max_abs_diff']:.1e} (tolerance {c['tolerance']:g})")


def _quiet_environment() -> None:
    # Never phone home from a library import; tests and CI machines have no network.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # mlflow sets up its own INFO logger on import
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _stopped(kind: type[BaseException]) -> int:
    """One line and the shell's status for a command stopped by a signal (128 + its number)."""
    signals.clear()
    message, code = signals.stop_message(kind)
    _close_progress_bars()
    print(message, file=sys.stderr)
    return code


def _close_progress_bars() -> None:
    """A signal skips the training bar's on_train_end: close it first, or its redraw overwrites the stop message."""
    tqdm_module = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm_module, "tqdm", None), "_instances", ()) or ()):
        bar.close()


def main(argv: list[str] | None = None) -> int:
    _quiet_environment()
    signals.install()  # Ctrl-C / SIGTERM / SIGHUP stop between training steps
    try:
        args, unknown = build_parser().parse_known_args(normalise_argv(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt as exc:  # while the parser imports the method registry
        return _stopped(type(exc))
    if unknown:  # name the command: "--trials" is fine for optimize, not for data
        print(f"error: {args.mode} does not take {' '.join(unknown)} (see: finetune-compare {args.mode} --help)",
              file=sys.stderr)
        return 2
    if args.mode is None:
        print("error: no command given (see: finetune-compare --help)", file=sys.stderr)
        return 2
    from .logging_setup import setup_logging

    from .utils.distributed import is_main

    if args.quiet:
        from .training import progress

        progress.QUIET = True
    setup_logging(("WARNING" if args.quiet else args.log_level) if is_main() else "WARNING")  # one voice under torchrun
    try:
        _check_args(args)
        if args.mode == "predict":
            cmd_predict(args)
            return 0
        if args.mode == "report":
            cmd_report(args)
            return 0
        if args.mode == "export":
            cmd_export(args)
            return 0
        if args.mode == "plan" and args.pilot:
            from .experiments.planning.plan import plan_lines

            print("\n".join(plan_lines(Path(args.pilot), args.effect, args.margin, args.power)))
            return 0
        config = _load(args)
        if args.mode != "config":
            from .experiments.commands.early_checks import early_checks

            early_checks(config, args)  # no model, data or torch needed: answers in about a second
        announce(args.mode, config)
        signals.checkpoint()
        if args.mode == "config":
            cmd_config(config, args)
        elif args.mode == "data":
            cmd_data(config, args.overwrite)
        elif args.mode in ("train", "lora", "full"):
            cmd_single(config, args.overwrite)
        elif args.mode == "compare":
            cmd_compare(config, args.overwrite)
        elif args.mode == "sweep":
            cmd_sweep(config, args.overwrite)
        elif args.mode == "optimize":
            cmd_optimize(config, args)
        elif args.mode == "plan":
            from .experiments.planning.cost_plan import build_plan

            print_plan(build_plan(config, args.probe_steps), args.plan_json)
    except UserError as exc:
        kind = signals.interrupted()
        if kind:  # a signal was swallowed by a library and the command failed on its way out
            return _stopped(kind)
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, and SIGTERM / SIGHUP (signals.Terminated)
        return _stopped(type(exc))
    except OSError as exc:
        message = _os_error_line(exc, args.mode)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    return 0


def _os_error_line(exc: OSError, mode: str) -> str | None:
    """One line for a full disk or a permission refused, naming the path and what to do; None for anything else."""
    path = exc.filename or ("the predictions" if mode == "predict" else "results")
    if exc.errno == errno.ENOSPC:
        advice = ("free space or choose another --output" if mode == "predict" else
                  "free space or choose another --output-dir (finished runs are kept)")
        return f"error: no space left on the device while writing {path}; {advice}"
    if exc.errno in (errno.EACCES, errno.EROFS):
        # a path that exists but cannot be read was being read (a data file or folder); otherwise it was a write
        unreadable = exc.filename and os.path.exists(exc.filename) and not os.access(exc.filename, os.R_OK)
        return f"error: cannot {'read' if unreadable else 'write'} {path}: {exc.strerror}"
    if exc.errno == errno.ELOOP:
        return f"error: {path}: too many levels of symbolic links (a symlink loop); point it at a real folder or file"
    return None





if __name__ == "__main__":
    sys.exit(main())
