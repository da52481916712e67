"""Hydra multiruns (``bench -m``) on any launcher: one MLflow parent per sweep, one child
per job, and a leaderboard read from the job folders when the sweep ends.

A sweep's jobs may run in this process (Hydra's basic launcher), in Ray tasks
(``hydra/launcher=ray``) or in Slurm jobs (``hydra/launcher=submitit_slurm``), so nothing
here relies on the state of the process that runs a job. :class:`SweepCallback`, listed
under ``hydra.callbacks`` in ``configs/config.yaml``, does the sweep's bookkeeping in the
process that runs Hydra:

* ``on_multirun_start``: creates the sweep's MLflow parent once, before any job starts
  (named after the sweep folder, ``<name>/<stamp>-sweep``: :func:`parent_name`; tagged
  ``recspectrum.invocation`` = the sweep folder). What a job needs from the sweep — the
  parent's id, the swept keys, the command's ``-q``/``-v`` — is a :class:`SweepContext`
  held by the callback, which Hydra's launchers ship to wherever the job runs.
* ``on_job_start`` (in the job's process): makes that context the current one;
  :func:`current_job` then gives the job's MLflow names. The job's run is one child of the
  sweep's parent, named by the job's swept values (``cf_als.factors=32``), and its cells'
  runs are children of the job's run. A job only adds runs; it never ends the parent.
* ``on_multirun_end``: reads every job folder (``results.json``, ``.hydra/overrides.yaml``,
  and ``failed.json``, which a job that failed writes: :func:`record_job_failure`),
  writes ``leaderboard.md``, ``leaderboard.csv`` and ``figures/leaderboard.png`` into the
  sweep folder, logs them to the parent and ends it: FINISHED, or FAILED when a job
  failed or left no results (the leaderboard names those jobs).

A sweep that stops before its end (Ctrl-C, a lost Ray worker, a launcher error) never
reaches ``on_multirun_end``: the command line then calls :func:`abort_open_sweeps`, which
writes the leaderboard of what finished and ends the parent KILLED or FAILED.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra.experimental.callback import Callback

from bench.atomic import write_json
from bench.errors import BenchError
from bench.record import RESULTS, read_record
from bench.tune.leaderboard import SweepJob, job_label, write_sweep_leaderboard

log = logging.getLogger("bench")

__all__ = [
    "FAILED_FILE",
    "SweepCallback",
    "SweepContext",
    "SweepJobRun",
    "SweepOutcome",
    "abort_open_sweeps",
    "current_job",
    "finish_sweep",
    "job_label",
    "job_name",
    "job_overrides",
    "open_sweeps",
    "parent_name",
    "read_jobs",
    "record_job_failure",
    "set_command_options",
    "swept_keys",
    "take_finished_sweep",
]

#: written into a job's folder when the job failed: ``{"exit_code": 2, "error": "..."}``
FAILED_FILE = "failed.json"
#: tags on a job's MLflow run: the sweep folder, and the job's number
SWEEP_TAG = "recspectrum.sweep"
JOB_TAG = "recspectrum.sweep.job"
#: how deep under the sweep folder job folders are looked for (``hydra.sweep.subdir``)
JOB_DEPTH = 3

# State of the process that runs Hydra (the driver): the command's -q/-v, the sweeps
# started and not ended (for abort_open_sweeps), and those ended (for the exit code).
# A job's process only sets _current, from the context its callback brought along.
_command = {"quiet": False, "verbose": False}
_open: dict[str, SweepCallback] = {}
_finished: list[SweepOutcome] = []
_current: SweepContext | None = None


@dataclass(frozen=True)
class SweepContext:
    """What every job of a sweep needs from the sweep (plain data: it is pickled with
    the callback and shipped to the job's process by Ray or submitit)."""

    folder: str
    name: str
    parent_id: str
    tracker_cfg: dict | None
    swept: tuple[str, ...]
    figures: bool = True
    quiet: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class SweepJobRun:
    """One job of a sweep, seen from the process that runs it."""

    num: int
    #: the job's overrides of the swept keys
    overrides: tuple[str, ...]
    quiet: bool
    verbose: bool
    #: keyword arguments of :func:`bench.runner.run_experiment` for this job
    run_args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SweepOutcome:
    """A sweep that ended: its jobs as read from disk, its leaderboard, its parent's status."""

    folder: Path
    jobs: list[SweepJob]
    paths: list[Path]
    status: str

    @property
    def failed(self) -> list[SweepJob]:
        return [j for j in self.jobs if j.error is not None]

    @property
    def exit_code(self) -> int:
        """0 when every job finished; 2 when every failed job failed on bad input; else 1."""
        if self.status == "FINISHED":
            return 0
        codes = [j.exit_code for j in self.failed]
        return 2 if codes and all(c == 2 for c in codes) else 1


class SweepCallback(Callback):
    """The sweep's bookkeeping (see the module docstring); ``hydra.callbacks.sweep``."""

    def __init__(self) -> None:
        self.context: SweepContext | None = None

    def on_multirun_start(self, config, **kwargs) -> None:
        self.context = open_sweep(config)
        _open[self.context.folder] = self

    def on_job_start(self, config, **kwargs) -> None:
        global _current
        _current = self.context

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        global _current
        _current = None

    def on_multirun_end(self, config, **kwargs) -> None:
        if self.context is None or _open.pop(self.context.folder, None) is None:
            return
        _finished.append(finish_sweep(self.context))


def set_command_options(*, quiet: bool, verbose: bool) -> None:
    """The command's ``-q``/``-v``: sweeps started from now on pass them to their jobs."""
    _command.update(quiet=quiet, verbose=verbose)


def open_sweep(config) -> SweepContext:
    """Create the sweep's MLflow parent (before any job starts) and return the context."""
    from omegaconf import OmegaConf

    from bench.runner import INVOCATION_TAG
    from bench.tracking.factory import build_tracker

    folder = str(config.hydra.sweep.dir)
    task = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task)]
    tracker_cfg = (OmegaConf.to_container(config.tracker, resolve=True)
                   if config.get("tracker") is not None else None)
    name = str(config.name)
    tracker = build_tracker(tracker_cfg)
    tracker.check()
    parent = tracker.start_run(parent_name(name, folder), tags={
        INVOCATION_TAG: folder, SWEEP_TAG: folder, "recspectrum.experiment": name})
    swept = tuple(sorted(swept_keys(task)))
    tracker.log_params(parent, {"sweep.keys": " ".join(swept) or "-",
                                "sweep.overrides": " ".join(task) or "-"})
    return SweepContext(folder=folder, name=name, parent_id=parent, tracker_cfg=tracker_cfg,
                        swept=swept, figures=bool(config.report.figures), **_command)


def current_job(cfg, hydra_cfg) -> SweepJobRun | None:
    """The running sweep job's MLflow names and settings; ``None`` outside a sweep whose
    callback ran (``~hydra.callbacks``: each job is then a plain run of its own).

    ``hydra_cfg`` is the job's ``HydraConfig``. A job whose tracker differs from the
    sweep's (``tracker`` among the swept keys) cannot log under the sweep's parent: it
    gets a parent of its own, with a warning.
    """
    from omegaconf import OmegaConf

    context = _current
    if context is None:
        return None
    task = [str(o) for o in hydra_cfg.overrides.task]
    overrides = job_overrides(task, set(context.swept))
    num = int(hydra_cfg.job.num)
    tracker_cfg = (OmegaConf.to_container(cfg.tracker, resolve=True)
                   if cfg.get("tracker") is not None else None)
    args: dict = {"label": job_label(overrides)}
    if tracker_cfg == context.tracker_cfg:
        args.update(parent_name=job_name(num, overrides), sweep_parent=context.parent_id,
                    tags={SWEEP_TAG: context.folder, JOB_TAG: str(num),
                          **{f"sweep.{k}": v for k, _, v in
                             (o.lstrip("+~").partition("=") for o in overrides)}})
    else:
        log.warning("sweep job %d: its tracker differs from the sweep's, so its runs get a "
                    "parent of their own instead of the sweep's", num)
    return SweepJobRun(num=num, overrides=overrides, quiet=context.quiet,
                       verbose=context.verbose, run_args=args)


def record_job_failure(folder: Path, exit_code: int, error: str) -> Path | None:
    """Write ``failed.json`` into a failed job's folder, for the sweep's leaderboard (best
    effort: a folder that cannot be written leaves the job as one without results)."""
    try:
        return write_json(Path(folder) / FAILED_FILE,
                          {"exit_code": int(exit_code), "error": str(error)})
    except OSError as exc:
        log.warning("sweep job: could not write %s into %s (%s)", FAILED_FILE, folder, exc)
        return None


def finish_sweep(context: SweepContext, *, stopped: str | None = None) -> SweepOutcome:
    """Read the job folders, write the leaderboard, log it to the parent, end the parent.

    ``stopped`` (``KILLED`` or ``FAILED``): the sweep stopped before its end; the parent
    ends with that status whatever the jobs did. The parent is ended even when writing
    the leaderboard fails.
    """
    from bench.tracking.factory import build_tracker

    folder = Path(context.folder)
    jobs = read_jobs(folder, context.swept)
    tracker = build_tracker(context.tracker_cfg)
    status, paths = "FAILED", []
    try:
        note = (f"The sweep stopped before its end ({stopped}): jobs without results did "
                "not finish.") if stopped else ""
        paths = write_sweep_leaderboard(folder, jobs, context.name, figures=context.figures,
                                        note=note)
        for p in paths:
            tracker.log_artifact(context.parent_id, p, "leaderboard" if p.parent == folder
                                 else "leaderboard/figures")
        if stopped is None and jobs and not any(j.error for j in jobs):
            status = "FINISHED"
    finally:
        tracker.end_run(context.parent_id, stopped or status)
    if not jobs:
        log.error("sweep %s: no job folder found; with jobs on other machines, put "
                  "report.dir on a filesystem every machine shares", folder)
    return SweepOutcome(folder=folder, jobs=jobs, paths=paths, status=stopped or status)


def abort_open_sweeps(status: str) -> list[SweepOutcome]:
    """End the sweeps of this process that did not reach their end (``status``: KILLED
    after Ctrl-C, FAILED after an error): leaderboard of what finished, parent ended."""
    out = []
    while _open:
        _, callback = _open.popitem()
        try:
            out.append(finish_sweep(callback.context, stopped=status))
        except Exception as exc:  # already failing: say it, do not hide the first error
            log.warning("sweep %s: could not end its MLflow parent (%s: %s)",
                        callback.context.folder, type(exc).__name__, exc)
    return out


def open_sweeps() -> int:
    """How many sweeps this process started and has not ended."""
    return len(_open)


def take_finished_sweep() -> SweepOutcome | None:
    """The last sweep this process ended (then forgotten), if any."""
    out = _finished[-1] if _finished else None
    _finished.clear()
    return out


# ---------------------------------------------------------------------------- jobs on disk
def read_jobs(folder: Path, swept: Sequence[str]) -> list[SweepJob]:
    """Every job folder under the sweep folder (one holding ``.hydra/overrides.yaml``),
    with the job's swept overrides and, for a job that failed, why."""
    found: list[Path] = []
    for depth in range(1, JOB_DEPTH + 1):
        found += Path(folder).glob("/".join(["*"] * depth) + "/.hydra/overrides.yaml")
    jobs = []
    for path in found:
        job = path.parent.parent
        error, code = job_failure(job)
        jobs.append(SweepJob(num=_job_num(job), overrides=job_overrides(_task(path), set(swept)),
                             folder=job, error=error, exit_code=code))
    return sorted(jobs, key=lambda j: (j.num, str(j.folder)))


def job_failure(job: Path) -> tuple[str | None, int]:
    """Why a job failed and its exit code, from its folder; ``(None, 0)`` when it finished."""
    failed = job / FAILED_FILE
    if failed.is_file():
        try:
            raw = json.loads(failed.read_text())
            return str(raw["error"]), int(raw["exit_code"])
        except (OSError, ValueError, KeyError, TypeError):
            return f"{failed}: unreadable", 1
    if not (job / RESULTS).is_file():
        return ("no results.json: the job did not finish (killed, lost or out of time); "
                "see its log"), 1
    try:
        record = read_record(job)
    except BenchError as exc:
        return str(exc), 1
    if record.failures:
        code = 2 if all(f.bad_input for f in record.failures) else 1
        return "; ".join(f"model {f.model} ({f.where}): {f.error}" for f in record.failures), code
    return None, 0


def _task(path: Path) -> list[str]:
    from omegaconf import OmegaConf

    try:
        return [str(o) for o in OmegaConf.to_container(OmegaConf.load(path))]
    except Exception:  # a damaged file: the job is still listed, without its overrides
        return []


def _job_num(job: Path) -> int:
    from omegaconf import OmegaConf

    try:
        return int(OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.job.num)
    except Exception:
        return int(job.name) if job.name.isdigit() else -1


# ---------------------------------------------------------------------------- names
def swept_keys(argv: Sequence[str]) -> set[str]:
    """The keys a command line sweeps over (``key=a,b``, ``key=range(...)``, ...)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    out = set()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException:
            continue
        if override.is_sweep_override():
            out.add(override.key_or_group)
    return out


def job_overrides(task_overrides: Sequence[str], swept: set[str]) -> tuple[str, ...]:
    """The job's overrides of the swept keys only (the fixed ones name no job)."""
    return tuple(o for o in task_overrides
                 if o.lstrip("+~").partition("=")[0] in swept)


def job_name(num: int, overrides: Sequence[str]) -> str:
    """A job's MLflow run name: its swept values (``cf_als.factors=32``; a swept model
    choice too: ``model=cf_ease``), or ``job <num>``."""
    return " ".join(o.lstrip("+~").removeprefix("models.") for o in overrides) or f"job {num}"


def parent_name(name: str, sweep_folder: str | Path) -> str:
    """``als_sweep/20250101-120000-abc123-sweep``: one parent per multirun."""
    return f"{name}/{Path(sweep_folder).name}"
