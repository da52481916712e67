"""The ``bench`` command: a thin Hydra entry point plus a few plain subcommands.

* ``bench [overrides...]`` / ``bench -m ...`` — compose ``configs/config.yaml`` with Hydra
  and call :func:`bench.runner.run_experiment`; prints a compact table at the end.
* ``bench data download NAME`` — fetch an official MovieLens zip into ``BENCH_DATA_DIR``.
* ``bench report RUN`` — rebuild ``report.md`` and its figures from a run folder (or the
  latest run of an experiment name) without rerunning anything.
* ``bench compare RUN_A RUN_B`` — paired statistics between two runs of the same split.
* ``bench perf WORKLOAD`` — benchmarks (:mod:`bench.perf`).
* ``bench check [--update-baseline] [overrides...]`` — the CI model-quality gate
  (:mod:`bench.check`): exit 1 on a significant regression from the committed baseline.
* ``bench split export DIR [overrides...]`` — write every fold's train / test / fold-in
  rows as Parquet plus ``split.json`` (:mod:`bench.splits.export`), for outside pipelines.
* ``bench tune [overrides...]`` — tune every model on a validation cut of the training
  data with equal budgets and write ``configs/tuned/<name>.yaml`` (:mod:`bench.tune`);
  ``bench tuned=<name>`` then evaluates the tuned values on test.

Plug-ins (:mod:`bench.plugins`) declared with ``BENCH_PLUGINS`` or the
``recspectrum.plugins`` entry point are imported before composition, and their config
folders join Hydra's search path. Overrides of Hydra's own settings that would run code
(``hydra.callbacks`` outside a plug-in, logging factories, ``hydra.searchpath``) are
refused up front (:mod:`bench.hydra_overrides`).

Exit codes: 0 success; 2 bad input (data, config, command line), with one line on
stderr naming the file, column or key; 1 anything else (a bug: the traceback is kept).
A model that raises during a run does not stop the others: the run finishes, the report
lists the failure, and the exit code is 1 (2 when every failure was bad input).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from bench.errors import EXIT_USAGE, BenchError, storage_error

SUBCOMMANDS = ("data", "report", "compare", "check", "perf", "split", "tune")
_task_entered = False

#: ``bench --help``: one screen (Hydra's own page is ``bench --hydra-help``)
HELP = """\
usage: bench [-q | -v] [KEY=VALUE ...]      run an experiment (default: experiment=spectrum)
       bench [-q | -v] -m KEY=A,B ...       a sweep: one run per combination
       bench SUBCOMMAND --help              help on a subcommand

Runs recommenders across the personalization spectrum (rules, content, collaborative,
hybrid) on one dataset and split, scores them per user with ranking metrics and paired
statistics, and writes reports/<name>/<run>/report.md (runs are logged to MLflow).

subcommands:
  check     the CI quality gate: rerun a pinned experiment, compare with its baseline
  compare   paired per-user statistics of two runs on the same split
  report    rebuild report.md and the figures of a finished run
  perf      benchmarks: time the spectrum run, metrics, scaling
  data      download a MovieLens dataset: bench data download ml_100k
  split     export every fold's train/test rows as Parquet: bench split export DIR
  tune      tune every model on validation data, equal budgets; then bench tuned=NAME

most used overrides:
  experiment=spectrum          what to run (configs/experiment/: spectrum, ci, ...)
  model=[rule_popular,cf_als]  the models (configs/model/)
  dataset=ml_100k              the data (configs/dataset/); your file: dataset=csv
                               dataset.path=FILE
  split=temporal               the split (configs/split/: kfold, leave_last_n, ...)
  tracker=none                 no MLflow
  name=my_run                  runs go to reports/<name>/; default: the experiment,
                               plus the dataset and split when not its own
  resume=true                  reuse the cells the latest run of <name> finished
  seed=7                       one seed for everything random
  eval.cutoffs=[5,10]          the cutoffs k of every ranking metric
  stats.baseline=rule_popular  the model the others are compared with

options:
  -q, --quiet    no progress display and no log lines: the table and errors only
  -v, --verbose  also show third-party logging (MLflow, numba, implicit)
  -h, --help     this page; --hydra-help: Hydra's own flags (--cfg, -m, ...)

Every key: `bench --cfg job` prints the composed config; docs/configuration.md."""

#: loggers of libraries the harness uses, quiet (WARNING) unless ``-v``
THIRD_PARTY_LOGGERS = ("mlflow", "alembic", "numba", "implicit", "matplotlib", "urllib3",
                       "git", "PIL")
QUIET_FLAGS = ("-q", "--quiet")
VERBOSE_FLAGS = ("-v", "--verbose")
#: exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130


def config_dir() -> Path:
    """The folder holding ``config.yaml``: $BENCH_CONFIG_DIR, the installed copy, or the repo's."""
    env = os.environ.get("BENCH_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "configs", here.parent / "configs"]
    for c in candidates:
        if (c / "config.yaml").is_file():
            return c
    raise BenchError(
        f"configs: no config.yaml in {[str(c) for c in candidates]}; reinstall the package "
        f"or set BENCH_CONFIG_DIR"
    )


def _plugin_problem(argv: list[str]) -> str | None:
    """Set up declared plug-ins; one line when one is broken or an override would run code.

    Imports every declared plug-in (:mod:`bench.plugins`), puts their config folders on
    Hydra's search path (:mod:`bench.plugin_configs`), and refuses Hydra callback and
    logging-factory overrides that no plug-in declares (:mod:`bench.hydra_overrides`).
    """
    from bench import plugins
    from bench.hydra_overrides import code_override_problem
    from bench.plugin_configs import install

    try:
        plugins.load_all()
        plugins.config_dirs()
        install()
        return code_override_problem(argv)
    except BenchError as exc:
        return str(exc)


def _fail(message: str) -> int:
    close_progress()
    print(f"bench: error: {one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def one_line(message: str) -> str:
    """``message`` on one line: a library's multi-line text (pyarrow's) joined with '; '."""
    return "; ".join(ln.strip() for ln in str(message).splitlines() if ln.strip())


def _run_task(cfg) -> int:
    """Body of the Hydra app: run, then print the table and where things went.

    A job of a sweep (``bench -m``) may run in another process or on another machine
    (Ray, Slurm): what it needs from the sweep comes with it (:func:`bench.tune.sweep.
    current_job`), and a job that fails records why in its folder and returns its exit
    code instead of stopping the sweep, whose end reads every job folder.
    """
    global _task_entered
    _task_entered = True
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from bench.runner import run_experiment
    from bench.tune.sweep import current_job

    hc = HydraConfig.get()
    job = current_job(cfg, hc) if hc.mode == RunMode.MULTIRUN else None
    if job is not None:
        _options.update(quiet=job.quiet, verbose=job.verbose)
    quiet_logging(verbose=_options["verbose"], quiet=_options["quiet"])  # Hydra set it up
    # a log file on a full disk must not print a traceback per log line: the run's own
    # writes report the full disk in one line
    logging.raiseExceptions = False
    close_progress()  # drawn again with Hydra's log handlers routed around it
    out = Path(hc.runtime.output_dir)
    args = job.run_args if job is not None else _unsupervised_job(hc)
    try:
        result = run_experiment(cfg, output_dir=out, **args)
    except BenchError as exc:
        end_open_runs("FAILED")
        if job is not None:
            return _job_failed(out, _fail(str(exc)), str(exc))
        remove_unused_run_folder(out, report_root(cfg))
        raise SystemExit(_fail(str(exc))) from None
    except KeyboardInterrupt:
        end_open_runs("KILLED")
        raise SystemExit(interrupted(out, _options["argv"], report_root(cfg))) from None
    except BaseException as exc:
        end_open_runs("FAILED")
        problem = storage_error(exc)
        if job is not None and isinstance(exc, Exception):
            return _job_crashed(out, exc, problem)
        if problem is None:
            raise
        raise SystemExit(_fail(str(problem))) from None
    _print_result(result)
    if result.failures:
        code = failed_models_exit_code(result.failures)
        if job is not None:
            return _job_failed(out, code, "; ".join(
                f"model {f.model} ({f.where}): {f.error}" for f in result.failures))
        raise SystemExit(code)
    return 0


def _print_result(result) -> None:
    from bench.reporting.summary import compact_table, rating_heading, rating_table

    close_progress()
    print()
    print(compact_table(result))
    ratings = rating_table(result)
    if ratings is not None:
        print(f"\n{rating_heading(result)}:")
        print(ratings)
    print(f"\nreport:   {result.output_dir / 'report.md'}")
    print(f"tracking: {result.tracking}")


def _unsupervised_job(hc) -> dict:
    """A job of a multirun whose sweep callback did not run (``~hydra.callbacks``): a
    plain run of its own, its child runs named by the swept values of this command."""
    from hydra.types import RunMode

    if hc.mode != RunMode.MULTIRUN:
        return {}
    from bench.tune.sweep import job_label, job_overrides, swept_keys

    swept = swept_keys(_options["argv"])
    return {"label": job_label(job_overrides(list(hc.overrides.task), swept))}


def _job_failed(out: Path, code: int, message: str) -> int:
    """A sweep job failed: say why in its folder (the sweep's leaderboard reads it)."""
    from bench.tune.sweep import record_job_failure

    record_job_failure(out, code, one_line(message))
    return code


def _job_crashed(out: Path, exc: Exception, problem) -> int:
    """A sweep job raised something other than bad input: its traceback on stderr (a
    full disk: one line), its failure in its folder; the sweep goes on."""
    import traceback

    if problem is not None:
        return _job_failed(out, _fail(str(problem)), str(problem))
    close_progress()
    traceback.print_exception(exc, file=sys.stderr)
    return _job_failed(out, 1, f"{type(exc).__name__}: {exc}")


def sweep_exit_code() -> int | None:
    """After a multirun: say where its leaderboard is and which jobs failed; the exit
    code (0, or 1 / 2 as for a run's failed models). ``None`` after a single run."""
    from bench.tune.sweep import take_finished_sweep

    outcome = take_finished_sweep()
    if outcome is None:
        return None
    close_progress()
    if outcome.paths:
        print(f"\nleaderboard: {outcome.paths[0]} ({len(outcome.jobs)} jobs)")
    failed = outcome.failed
    if failed:
        names = "; ".join(f"job {j.num} ({' '.join(j.overrides) or 'no swept value'}): "
                          f"{j.error}" for j in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        print(f"bench: error: sweep: {len(failed)} of {len(outcome.jobs)} jobs failed: "
              f"{one_line(names)}{more}", file=sys.stderr)
    return outcome.exit_code


def end_open_runs(status: str) -> None:
    """Close the MLflow runs this process left open (none unless MLflow was used)."""
    if "bench.tracking.mlflow_tracker" in sys.modules:
        from bench.tracking.mlflow_tracker import end_open_runs as end_runs

        end_runs(status)


def finished_cells(out: Path) -> int:
    """How many cells of the run in ``out`` finished (their ``done.json`` is written)."""
    from bench.record import DONE

    return sum(1 for _ in (out / "artifacts").glob(f"*/*/{DONE}"))


def remove_unused_run_folder(out: Path, root: Path | None = None) -> bool:
    """Remove the run folder ``out`` when it holds nothing of the run — only what Hydra
    and the run's start wrote (``.hydra/``, the log, ``config.json``, empty folders) —
    and the folders above it up to ``root`` (``report.dir``) that are left empty. True
    when removed."""
    import shutil

    out = Path(out)
    if not out.is_dir():
        return False
    setup = {".hydra", "config.json", "artifacts", "figures"}
    for path in out.iterdir():
        if path.name in setup or path.suffix == ".log":
            continue
        return False
    if any(p.is_file() for p in (out / "artifacts").rglob("*")):
        return False
    shutil.rmtree(out, ignore_errors=True)
    parents = out.resolve().parents
    stop = Path(root).resolve() if root is not None else out.resolve().parent
    for folder in parents:
        if folder != stop and stop not in folder.parents:
            break  # never above report.dir
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break
        if folder == stop:
            break
    return True


def report_root(cfg) -> Path | None:
    """``report.dir`` of a composed config, when it can be read."""
    try:
        return Path(str(cfg.report.dir))
    except Exception:  # an unreadable config: clean up the run folder only
        return None


def interrupted(out: Path, argv: list[str], root: Path | None = None) -> int:
    """Ctrl-C during a run: one line saying what was kept and how to go on."""
    close_progress()
    done = finished_cells(out)
    if done and not remove_unused_run_folder(out, root):
        again = " ".join(["bench", *(a for a in argv if not a.startswith("resume=")),
                          "resume=true"])
        print(f"\nbench: interrupted; {done} finished cell(s) kept in {out}. "
              f"To continue where it stopped: {again}", file=sys.stderr)
    else:
        remove_unused_run_folder(out, root)
        print("\nbench: interrupted before any cell finished; nothing was kept. Run the "
              "same command again to start over.", file=sys.stderr)
    return EXIT_INTERRUPTED


def failed_models_exit_code(failures) -> int:
    """Say which models failed; exit 2 when every failure was bad input, else 1."""
    for f in failures:
        where = f"fold {f.fold}" if f.fold is not None else f.protocol
        print(f"bench: error: model {f.model} ({where}) failed: {f.error} "
              f"(traceback: {f.traceback})", file=sys.stderr)
    return EXIT_USAGE if all(f.bad_input for f in failures) else 1


def _composition_problem(argv: list[str], cdir: Path, *, run: bool = True) -> str | None:
    """Compose the overrides once up front and check the result against the schema, so a
    bad key, option or value is one clear line before Hydra starts the run.

    Hydra reports composition errors itself, over several lines; this turns them into
    the house message. A sweep (``-m``) is checked job by job, before Hydra creates its
    sweep folder. Skipped when other Hydra flags are given (``--cfg``, ...): Hydra handles
    those itself, and the run checks the config again.
    """
    flags = [a for a in argv if a.startswith("-")]
    if any(a not in MULTIRUN_FLAGS for a in flags):
        return None
    overrides = [a for a in argv if a not in MULTIRUN_FLAGS]
    if flags:
        jobs = sweep_jobs(overrides)
        if isinstance(jobs, str):
            return jobs
        added: list[str] = []  # settings chosen again automatically (model_names_problem)
        for job in jobs:
            job = [*job, *added]
            given = len(job)
            problem = _composition_problem(job, cdir, run=run)
            if problem:
                return problem
            added += job[given:]
        argv.extend(added)
        return None
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench.config import load_settings

    try:
        with initialize_config_dir(config_dir=str(cdir), version_base="1.3"):
            cfg = compose("config", overrides=list(argv))
    except (HydraException, OmegaConfBaseException) as exc:
        return _composition_message(exc, cdir) or f"config: {type(exc).__name__}"
    missing = required_values_problem(cfg)
    if missing:
        return missing
    try:
        settings = load_settings(cfg)
    except BenchError as exc:
        return str(exc)
    if not run:
        return None
    return model_names_problem(settings, argv) or unwritable_problem(settings.report.dir)


def unwritable_problem(report_dir) -> str | None:
    """``report.dir`` (or the folder it would be made in) cannot be written: one line now,
    before Hydra creates the run folder in it. Probed with an unnamed temporary file, so
    nothing is left behind."""
    import tempfile

    folder = Path(report_dir).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return (f"report.dir: cannot write run folders under {str(report_dir)!r} ({folder}: "
                f"{exc.strerror or type(exc).__name__}); set report.dir to a folder you can "
                f"write")
    return None


#: Hydra's flags for a sweep (one run per combination of the swept values)
MULTIRUN_FLAGS = ("-m", "--multirun")
#: a sweep with more jobs than this is checked on its first jobs only
SWEEP_CHECK_LIMIT = 64


def sweep_jobs(overrides: list[str]) -> list[list[str]] | str:
    """The overrides of each job of a sweep (``name=a,b seed=1,2``: four jobs), as Hydra's
    basic sweeper expands them; a message when the overrides do not parse."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        return f"config: {lines[0] if lines else type(exc).__name__}"
    choices = []
    for text, o in zip(overrides, parsed, strict=True):
        if o.is_sweep_override() and o.is_discrete_sweep():
            choices.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([text])
    return [list(job) for job in itertools.islice(itertools.product(*choices),
                                                   SWEEP_CHECK_LIMIT)]


#: what to put on the command line for a required value, by key
REQUIRED_EXAMPLES = {
    "dataset.path": "dataset.path=data/ratings.csv (CSV, TSV or Parquet; map its columns "
                    "with dataset.columns.user_id=..., see docs/user-guide.md)",
}


def required_values_problem(cfg) -> str | None:
    """The first required value (``???``) the command line left unset, with what to add."""
    from omegaconf import OmegaConf

    keys = sorted(OmegaConf.missing_keys(cfg))
    if not keys:
        return None
    key = keys[0]
    example = REQUIRED_EXAMPLES.get(key, f"{key}=VALUE")
    return f"{key}: required and not set; add it to the command line: {example}"


#: settings that name one of the run's models; null means "choose for me"
MODEL_SETTINGS = ("stats.baseline", "eval.segments.rules")


def model_names_problem(settings, argv: list[str]) -> str | None:
    """A setting naming a model the run does not have.

    Set on the command line: an error saying what to do. Set by the experiment (its
    ``stats.baseline`` when ``model=[...]`` picks other models): chosen again
    automatically (the override ``KEY=null`` is added to ``argv``) with a note on stderr.
    """
    models = list(settings.models)
    named = [("stats.baseline", settings.stats.baseline)]
    if settings.eval.segment_rules not in (None, "auto"):
        named.append(("eval.segments.rules", settings.eval.segment_rules))
    named += [(f"report.ladder.{fam}", m) for fam, m in (settings.report.ladder or ())]
    for key, model in named:
        if model is None or model in models:
            continue
        given = any(a.lstrip("+~").startswith(f"{key}=") for a in argv)
        if key in MODEL_SETTINGS and not given:
            automatic = "auto" if key == "eval.segments.rules" else "null"
            argv.append(f"{key}={automatic}")
            chosen = "the first model, " + models[0] if key == "stats.baseline" else "auto"
            close_progress()
            print(f"bench: note: {key} is {model}, which is not in this run; using "
                  f"{chosen} instead ({key}=MODEL picks another)", file=sys.stderr)
            continue
        instead = f"{key}=<one of them>" + (" or null" if key in MODEL_SETTINGS else "")
        return (f"{key}: {model!r} is not one of the run's models {models}; set {instead}, "
                f"or add it: model=[{','.join([*models, model])}]")
    return None


def _composition_message(exc: Exception, cdir: Path) -> str | None:
    """One line for a Hydra composition error: the key or group option, and what exists."""
    import re

    from bench.config import config_error_message

    text = str(exc)
    option = re.search(r"Could not (?:load|find) '([\w/]+)/([^'/]+)'", text)
    if option:
        group, name = option.groups()
        found = sorted(f.stem for f in (cdir / group).glob("*.yaml"))
        return (f"{group.replace('/', '.')}={name}: no such option; expected one of {found} "
                f"(files in {cdir / group})")
    key = re.search(r"Could not override '([^']+)'", text)
    if key:
        return (f"{key.group(1)}: unknown config key (not in configs/config.yaml or the chosen "
                "groups; `bench --cfg job` prints the composed config)")
    message = config_error_message(exc)
    if message:
        return message
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return f"config: {lines[0]}" if lines else None


def _hydra_main(argv: list[str]) -> int:
    import hydra

    from bench.naming import register_resolver
    from bench.schema import register

    register()  # config.yaml extends the schema; Hydra must find it whatever the flags
    register_resolver()  # ${run_name:...} in config.yaml, resolved for hydra.run.dir
    _options["argv"] = list(argv)
    global _task_entered
    _task_entered = False

    try:
        cdir = config_dir()
    except BenchError as exc:
        return _fail(str(exc))
    problem = _plugin_problem(argv) or _composition_problem(argv, cdir)
    if problem:
        return _fail(problem)
    register_run_token()
    app = hydra.main(version_base="1.3", config_path=str(cdir), config_name="config")(_run_task)
    saved = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = ["bench", *argv]
    if saved[1] is None:  # Hydra raises what it would print as a trimmed traceback
        os.environ["HYDRA_FULL_ERROR"] = "1"
    from bench.tune.sweep import open_sweeps, set_command_options

    set_command_options(quiet=_options["quiet"], verbose=_options["verbose"])
    started = False
    try:
        try:
            app()
        except BaseException as exc:
            started = bool(open_sweeps())
            _abort_sweeps(exc)
            raise
        code = sweep_exit_code()
    except SystemExit as exc:
        code = exit_code(exc)
        # Hydra reports composition errors (unknown key or option, bad override) itself
        # and exits 1 before our task starts: those are bad input, so exit 2.
        if code == 1 and not (_task_entered or started):
            return EXIT_USAGE
        return code
    except Exception as exc:
        # before the task: Hydra could not set the run up. A full disk (writing .hydra/)
        # becomes one line in main(); a config error one line here; a bug its traceback
        entered = _task_entered or started
        problem = None if entered or storage_error(exc) else _hydra_problem(exc, cdir)
        if problem is None:
            raise
        return _fail(problem)
    finally:
        sys.argv = saved[0]
        if saved[1] is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
    return 0 if code is None else code


def _abort_sweeps(exc: BaseException) -> None:
    """A sweep that stops before its end (Ctrl-C, a lost worker, a launcher error) still
    gets its leaderboard and its MLflow parent ended: KILLED after Ctrl-C, else FAILED."""
    from bench.tune.sweep import abort_open_sweeps

    killed = isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, SystemExit) and exc.code == EXIT_INTERRUPTED)
    abort_open_sweeps("KILLED" if killed else "FAILED")


def _hydra_problem(exc: Exception, cdir: Path) -> str | None:
    """One line for a Hydra or OmegaConf error raised before the run starts."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(exc, HydraException | OmegaConfBaseException):
        return None
    return _composition_message(exc, cdir) or f"config: {type(exc).__name__}"


def register_run_token() -> str:
    """A fresh token for ``${run_token:}`` in ``hydra.run.dir``: every command gets its own
    run folder, even when two start in the same second. Returns the token."""
    import uuid

    from omegaconf import OmegaConf

    token = uuid.uuid4().hex[:6]
    OmegaConf.register_new_resolver("run_token", lambda: token, replace=True)
    return token


def _data_command(argv: list[str]) -> int:
    from bench.data.download import DATASETS, download_dataset

    parser = argparse.ArgumentParser(prog="bench data", description="Manage datasets.")
    sub = parser.add_subparsers(dest="action", required=True)
    dl = sub.add_parser("download", help="download an official MovieLens zip and unpack it")
    dl.add_argument("name", help=f"one of: {', '.join(sorted(DATASETS))}")
    dl.add_argument(
        "--data-dir",
        default=os.environ.get("BENCH_DATA_DIR", "datasets"),
        help="where to unpack (default: $BENCH_DATA_DIR or ./datasets)",
    )
    dl.add_argument("--base-url", default=None, help="mirror to download from")
    dl.add_argument("--force", action="store_true", help="download again if present")
    args = parser.parse_args(argv)
    path = download_dataset(args.name, args.data_dir, base_url=args.base_url, force=args.force)
    print(f"{args.name}: ready in {path}")
    return 0


def _report_command(argv: list[str]) -> int:
    from bench.reporting.report import write_report

    parser = argparse.ArgumentParser(
        prog="bench report",
        description="Rebuild report.md, stats.json and the figures of a finished run.",
    )
    parser.add_argument("run", help="a run folder, or an experiment name (its latest run)")
    parser.add_argument("--reports-dir", default="reports",
                        help="where experiment names are looked up (default: reports)")
    args = parser.parse_args(argv)
    folder = find_run(args.run, args.reports_dir)
    if _options.get("progress") is not None:
        _options["progress"].note(f"writing the report of {folder.name}")
    paths = write_report(folder)
    close_progress()
    print(f"report: {paths[0]} ({len(paths) - 2} figures)")
    return 0


def _compare_command(argv: list[str]) -> int:
    from bench.reporting.compare import compare_runs, format_comparison

    parser = argparse.ArgumentParser(
        prog="bench compare",
        description="Paired per-user statistics of run B against run A (same split only).",
    )
    parser.add_argument("run_a", help="reference run: a run folder or an experiment name")
    parser.add_argument("run_b", help="candidate run: a run folder or an experiment name")
    parser.add_argument("--reports-dir", default="reports",
                        help="where experiment names are looked up (default: reports)")
    parser.add_argument("--output", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    a = find_run(args.run_a, args.reports_dir)
    b = find_run(args.run_b, args.reports_dir)
    text = format_comparison(compare_runs(a, b), str(a), str(b))
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


def find_run(ref: str, reports_dir: str) -> Path:
    """The run folder ``ref`` names (a folder, or a name: its latest run); when there is
    none, the error lists the names that have runs, so the next command is at hand."""
    from bench.errors import IncompleteRunError
    from bench.reporting.compare import resolve_run

    try:
        return resolve_run(ref, reports_dir)
    except IncompleteRunError:
        raise
    except BenchError as exc:
        root = Path(reports_dir)
        names = sorted(d.name for d in root.iterdir() if d.is_dir() and (
            any(d.glob("*/results.json")) or any(d.glob("*/*/results.json"))  # sweeps too
        )) if root.is_dir() else []
        hint = (f"; names with runs under {reports_dir}/: {', '.join(names)}" if names
                else f"; there are no finished runs under {reports_dir}/ yet: `bench` makes one")
        raise type(exc)(f"{exc}{hint}") from None


def _check_command(argv: list[str]) -> int:
    from bench.check.command import run_check

    parser = argparse.ArgumentParser(
        prog="bench check",
        description="Run the pinned experiment (default experiment=ci) and compare it with "
        "its committed baseline. Exit 0: no significant regression; 1: regression; 2: "
        "missing, corrupt or incomparable baseline, or bad input.",
    )
    parser.add_argument("overrides", nargs="*",
                        help="Hydra overrides, e.g. experiment=ci models.cf_als.factors=8")
    parser.add_argument("--update-baseline", action="store_true",
                        help="run and (re)write the baseline atomically instead of comparing")
    parser.add_argument("--baseline", default=None,
                        help="baseline file (default: check.baseline, "
                        "reports/baselines/<name>.json)")
    parser.add_argument("--markdown", default=None, help="also write the summary here")
    parser.add_argument("--junit", default=None, help="also write JUnit XML here")
    args = parser.parse_intermixed_args(argv)  # overrides may come before and after options
    problem = _plugin_problem(args.overrides)
    if problem:
        return _fail(problem)
    _log_to_stderr()
    return run_check(args.overrides, config_dir=config_dir(), baseline=args.baseline,
                     update=args.update_baseline, markdown=args.markdown, junit=args.junit)


def _split_command(argv: list[str]) -> int:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench.splits.export import export_split

    parser = argparse.ArgumentParser(prog="bench split", description="Work with splits.")
    sub = parser.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="write every fold's parts as Parquet plus split.json")
    ex.add_argument("directory", help="folder to write fold<k>/*.parquet and split.json into")
    ex.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. split=temporal")
    ex.add_argument("--force", action="store_true", help="write into a non-empty folder")
    args = parser.parse_args(argv)
    cdir = config_dir()
    problem = _composition_problem(args.overrides, cdir, run=False)
    if problem:
        return _fail(problem)
    _log_to_stderr()
    try:  # an override that looks like a flag ('-') skipped the check above
        with initialize_config_dir(config_dir=str(cdir), version_base="1.3"):
            cfg = compose("config", overrides=list(args.overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        return _fail(_composition_message(exc, cdir) or f"config: {type(exc).__name__}")
    card = export_split(cfg, args.directory, force=args.force)
    print(f"split: {card}")
    return 0


def _tune_command(argv: list[str]) -> int:
    from hydra import compose, initialize_config_dir

    from bench.tune.command import next_command, run_tuning

    parser = argparse.ArgumentParser(
        prog="bench tune",
        description="Tune every model of the experiment on a validation cut of its training "
        "data (the test part is never read), with the same budget per model (tune.trials, "
        "tune.seconds); write the best values to configs/tuned/<name>.yaml. Options are "
        "config keys: tune.trials=20 tune.models=[cf_als] ... (docs/tuning.md).",
    )
    parser.add_argument("overrides", nargs="*",
                        help="Hydra overrides, e.g. experiment=spectrum tune.trials=20")
    args = parser.parse_intermixed_args(argv)
    cdir = config_dir()
    problem = _plugin_problem(args.overrides) or _composition_problem(args.overrides, cdir,
                                                                      run=False)
    if problem:
        return _fail(problem)
    if not _options["quiet"]:
        _log_to_stderr()
    with initialize_config_dir(config_dir=str(cdir), version_base="1.3"):
        cfg = compose("config", overrides=list(args.overrides), return_hydra_config=True)
    from omegaconf import open_dict

    with open_dict(cfg):  # the run name follows the split chosen, as a run's does
        cfg.name = str(cfg.name)
        del cfg["hydra"]
    result = run_tuning(cfg, config_dir=cdir)
    print(f"tuning: {result.record['summary']}")
    for res in result.studies:
        if res.status == "tuned":
            print(f"  {res.model}: {res.n_trials} trials, validation {result.metric} "
                  f"{_fmt(res.default_value)} (defaults) -> {_fmt(res.best_value)} (best)")
            for line in res.boundary:
                print(f"    warning: {line}; widen the range")
        else:
            print(f"  {res.model}: {res.status}")
    print(f"leaderboard: {result.folder / 'leaderboard.md'}")
    if result.overlay is not None:
        print(f"overlay:     {result.overlay}")
    print(f"next:        {next_command(args.overrides, result)}")
    return 1 if any(r.status == "failed" for r in result.studies) else 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _log_to_stderr() -> None:
    logger = logging.getLogger("bench")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


#: how this command was asked to talk: set by :func:`main` from -q / -v
_options: dict = {"quiet": False, "verbose": False, "argv": [], "progress": None}


def quiet_logging(*, verbose: bool, quiet: bool = False) -> None:
    """Third-party loggers at WARNING unless ``verbose`` (then INFO); with ``quiet``, the
    ``bench`` logger too. MLflow configures its own logger when imported: the
    ``MLFLOW_LOGGING_LEVEL`` environment variable (unless the user set it) covers that."""
    level = logging.INFO if verbose else logging.WARNING
    if "MLFLOW_LOGGING_LEVEL" not in os.environ or _options.get("set_mlflow_level"):
        os.environ["MLFLOW_LOGGING_LEVEL"] = logging.getLevelName(level)
        _options["set_mlflow_level"] = True
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if quiet:
        logging.getLogger("bench").setLevel(logging.WARNING)


def split_flags(argv: list[str]) -> tuple[list[str], bool, bool]:
    """``argv`` without -q/--quiet and -v/--verbose, and whether each was given.

    They are global flags: before a subcommand, or anywhere in a run's overrides (no
    Hydra override looks like them). A subcommand's own arguments keep theirs."""
    rest, quiet, verbose = [], False, False
    command = None
    for a in argv:
        if command is None and a in SUBCOMMANDS:
            command = a
        elif (command in (None, "check", "tune")) and a in QUIET_FLAGS:
            quiet = True
            continue
        elif (command in (None, "check", "tune")) and a in VERBOSE_FLAGS:
            verbose = True
            continue
        rest.append(a)
    return rest, quiet, verbose


def wants_help(argv: list[str]) -> bool:
    """``bench --help`` / ``bench -h`` (with or without overrides), not a subcommand's."""
    return bool(argv) and argv[0] not in SUBCOMMANDS and any(a in ("-h", "--help")
                                                             for a in argv)


def progress_observers() -> tuple:
    """The observers a run of this command shows its progress with (none with -q)."""
    if _options["quiet"]:
        return ()
    from bench.progress import Progress

    _options["progress"] = Progress()
    _options["progress"].note("starting")
    return (_options["progress"],)


def close_progress() -> None:
    """Take the live progress line away before printing a message (drawn again on the
    run's next step)."""
    progress = _options.get("progress")
    if progress is not None:
        progress.close()


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``bench``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, quiet, verbose = split_flags(argv)
    _options.update(quiet=quiet, verbose=verbose, argv=list(argv), progress=None)
    quiet_logging(verbose=verbose, quiet=quiet)
    if wants_help(argv):
        print(HELP)
        return 0
    try:
        with contextlib.ExitStack() as stack:
            if not argv or argv[0] in ("check", "report") or argv[0] not in SUBCOMMANDS:
                from bench.observe import attached

                stack.enter_context(attached(*progress_observers()))
                stack.callback(close_progress)
            return _dispatch(argv)
    except BenchError as exc:
        end_open_runs("FAILED")  # bench check runs an experiment outside Hydra's task
        return _fail(str(exc))
    except SystemExit as exc:  # argparse usage errors exit 2 already
        return exit_code(exc)
    except OSError as exc:  # a full disk or a folder that cannot be written: one line
        if storage_error(exc) is None:
            raise
        end_open_runs("FAILED")
        return _fail(str(storage_error(exc)))
    except KeyboardInterrupt:
        end_open_runs("KILLED")
        print("\nbench: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a sweep job lost on Ray (a dead worker or node): one line
        if not type(exc).__module__.startswith("ray."):
            raise
        end_open_runs("FAILED")
        print(f"bench: error: {ray_lost(exc)}", file=sys.stderr)
        return 1


def ray_lost(exc: Exception) -> str:
    """One line for a Ray error that reached the command (with retries off, a sweep job
    whose worker died): what happened and what to do."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    return (f"Ray lost a job ({type(exc).__name__}: {first}); the sweep folder's "
            "leaderboard lists the jobs that finished. Run the command again, or let Ray "
            "retry lost jobs (drop +hydra.launcher.ray.remote.max_retries=0)")


def _dispatch(argv: list[str]) -> int:
    """Run the subcommand ``argv`` names, or an experiment."""
    if argv and argv[0] == "data":
        return _data_command(argv[1:])
    if argv and argv[0] == "report":
        return _report_command(argv[1:])
    if argv and argv[0] == "compare":
        return _compare_command(argv[1:])
    if argv and argv[0] == "check":
        return _check_command(argv[1:])
    if argv and argv[0] == "split":
        return _split_command(argv[1:])
    if argv and argv[0] == "tune":
        return _tune_command(argv[1:])
    if argv and "=" not in argv[0] and not argv[0].startswith(("-", "~", "+")) \
            and argv[0] not in SUBCOMMANDS:
        return _fail(
            f"unknown command {argv[0]!r}; expected one of {list(SUBCOMMANDS)}, or "
            "key=value config overrides (bench --help lists them)"
        )
    if argv and argv[0] == "perf":
        from bench.perf import main as perf_main

        return perf_main(argv[1:])
    return _hydra_main(argv)


def exit_code(exc: SystemExit) -> int:
    """The exit code a ``SystemExit`` stands for: ``None`` is success; an integer is
    itself; a message is a failure (exit 1), printed as one ``bench: error:`` line —
    never swallowed into a success."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(f"bench: error: {exc.code}", file=sys.stderr)
    return 1


def entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `bench --help | head`: the reader left; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    entry()
