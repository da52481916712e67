"""Fault-injection matrix (issue 15): ``bench`` killed (SIGKILL, SIGINT) at every stage.

Each row of :data:`POINTS` names a stage the run layer announces (:mod:`bench.observe`)
and which occurrence of it to stop at, or an atomic write (``write:<file>``: the temporary
file is complete and about to be renamed — the worst moment). A test-only observer sends
the signal to its own process when that stage starts. After the kill, for every row:

* SIGINT: exit 130, one line on stderr (the resume hint when a cell finished), no
  traceback, no MLflow run left RUNNING;
* the killed folder read back: ``bench report FOLDER``, ``bench report NAME`` (whose
  latest run is the killed one when it finished nothing) and ``bench compare`` either give
  a result or exit 2 with one line saying the folder is incomplete — never a traceback,
  never a half-written file;
* ``resume=true`` after every kill that left a folder, the next plain ``bench`` after the
  SIGKILLs of :data:`NEXT_AFTER`, and ``bench check ... resume=true`` after the SIGKILLs of
  :data:`CHECK_AFTER` (each on its own copy of the folder and store) exit 0, leave no
  RUNNING run, mark the killed process's stale runs KILLED, and give exactly the numbers
  of an uninterrupted run.

Speed: every ``bench`` runs in a process forked from a server that has imported ``bench``
already (multiprocessing's forkserver), and every scenario starts from a copy of an empty
MLflow store, so a run costs about a second rather than ten.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import csv_dataset, write_ratings_csv

pytestmark = pytest.mark.slow

#: how many ``bench`` processes run at once (the machine has 2 cores)
PARALLEL = int(os.environ.get("BENCH_FAULT_PARALLEL", "3"))
#: seconds any one ``bench`` process may take
TIMEOUT_S = 180
NAME = "m"
#: a tiny run: two rule models on one temporal fold, the user cold-start sweep (evaluated
#: inside the main cells) and the item cold-start protocol (its own cells)
RUN = ["~experiment", "model=[rule_popular,rule_random]", "split=temporal",
       "eval.cutoffs=[5]", "report.figures=false", "report.dir=runs", f"name={NAME}",
       "stats.n_resamples=200", "report.curve_k=10", "check.metrics=[ndcg@5]",
       "cold_start.user={quantile: 0.5, fold_in: [0, 1], seed: 0}",
       "cold_start.item={fraction: 0.2, seed: 0}"]

#: (label, stage, occurrence, info filter). The run has 2 main cells then 2 protocol cells,
#: so occurrence 2 of a cell stage is the second model, after the first one finished.
POINTS: list[tuple[str, str, int, dict]] = [
    ("tracking:build", "tracking", 1, {"call": "build"}),
    ("load", "load", 1, {}),
    ("split", "split", 1, {}),
    ("audit", "audit", 1, {}),
    ("context", "context", 1, {}),
    ("plan", "plan", 1, {}),
    ("cell#1", "cell", 1, {}),
    ("cell#2", "cell", 2, {}),
    ("fit#2", "fit", 2, {}),
    ("recommend#2", "recommend", 2, {}),
    ("evaluate#2", "evaluate", 2, {}),
    ("artifacts#2", "artifacts", 2, {}),
    ("tracking:end_run#2", "tracking", 2, {"call": "end_run"}),
    ("protocols", "protocols", 1, {}),
    ("cell#3 (item cold start)", "cell", 3, {}),
    ("reduce", "reduce", 1, {}),
    ("write:done.json#2", "write", 2, {"file": "done.json"}),
    ("write:results.json", "write", 1, {"file": "results.json"}),
    ("write:per_user.parquet#3", "write", 3, {"file": "per_user.parquet"}),
    ("write:report.md", "write", 1, {"file": "report.md"}),
]
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGINT": signal.SIGINT}
#: rows after whose SIGKILL ``bench check ... resume=true`` runs too (each costs a full run):
#: a finished cell next to an unfinished one, a temporary file left by a killed write
CHECK_AFTER = {"fit#2", "artifacts#2", "write:done.json#2", "write:results.json"}
#: rows after whose SIGKILL a plain ``bench`` (no resume) runs too: resume=true shows the
#: stale runs closed after every row; these show the next plain run closes them as well
NEXT_AFTER = {"context", "fit#2", "tracking:end_run#2", "reduce", "write:results.json"}


# ---------------------------------------------------------------------- the child process
class KillAt:
    """An observer that signals its own process when the n-th matching stage starts."""

    def __init__(self, stage: str, nth: int, where: dict, sig: int):
        self.stage, self.nth, self.where, self.sig, self.seen = stage, nth, where, sig, 0

    def hit(self, stage: str, info) -> None:
        if stage == self.stage and all(info.get(k) == v for k, v in self.where.items()):
            self.seen += 1
            if self.seen == self.nth:
                os.kill(os.getpid(), self.sig)

    def start(self, stage, info) -> None:
        self.hit(stage, info)

    def end(self, stage, info, seconds, ok) -> None:
        pass


def _kill_on_replace(killer: KillAt) -> None:
    """Announce every atomic rename (bench.atomic: temp file complete, target untouched)
    as a ``write`` stage with the target's file name, before it happens."""
    real = os.replace

    def replace(src, dst, *a, **k):
        killer.hit("write", {"file": Path(dst).name})
        return real(src, dst, *a, **k)

    os.replace = replace


def child_main(argv: list[str], cwd: str, log: str, kill: tuple | None) -> None:
    """Run ``bench argv`` in ``cwd`` with stdout/stderr in ``log``.out/.err, optionally
    killing itself at a stage; exit with bench's exit code."""
    os.chdir(cwd)
    out = open(f"{log}.out", "w", buffering=1)  # held until os._exit
    err = open(f"{log}.err", "w", buffering=1)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    sys.stdout, sys.stderr = out, err
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from bench.cli import main
    from bench.observe import attached

    observers = []
    if kill is not None:
        stage, nth, where, sig = kill
        killer = KillAt(stage, nth, where, sig)
        if stage == "write":
            _kill_on_replace(killer)
        observers.append(killer)
    try:
        with attached(*observers):
            code = main(list(argv))
    except BaseException:  # anything escaping main is a finding: keep its traceback
        import traceback

        traceback.print_exc()
        code = 99
    out.flush()
    err.flush()
    os._exit(code)


@dataclass
class Job:
    argv: list[str]
    cwd: Path
    log: str
    kill: tuple | None = None
    code: int | None = None
    seconds: float = 0.0
    out: str = ""
    err: str = field(default="", repr=False)

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["bench.cli", "bench.runner", "bench.reporting.report",
                                "bench.reporting.compare", "bench.check.command",
                                "bench.tracking.mlflow_tracker", "mlflow.tracking",
                                "hydra", "tests.test_fault_matrix"])
    return ctx


def run_jobs(jobs: list[Job]) -> list[Job]:
    """Run every job, ``PARALLEL`` at a time; fill in exit codes and output."""
    ctx = _context()
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < PARALLEL:
            job = pending.pop(0)
            proc = ctx.Process(target=child_main,
                               args=(job.argv, str(job.cwd), job.log, job.kill))
            proc.start()
            running.append((job, proc, time.monotonic()))
        for item in list(running):
            job, proc, t0 = item
            if proc.is_alive() and time.monotonic() - t0 < TIMEOUT_S:
                continue
            if proc.is_alive():
                proc.kill()
            proc.join()
            job.code = proc.exitcode
            job.seconds = time.monotonic() - t0
            job.out = Path(f"{job.log}.out").read_text()
            job.err = Path(f"{job.log}.err").read_text()
            running.remove(item)
        time.sleep(0.02)
    return jobs


# ---------------------------------------------------------------------- fixtures
@dataclass
class World:
    root: Path
    csv: Path
    store: Path
    complete: Path
    baseline: Path

    def argv(self, *extra: str) -> list[str]:
        return [*csv_dataset(self.csv), *RUN, *extra]


def mlflow_runs(folder: Path) -> dict[str, list]:
    """Runs of the store in ``folder`` by status."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("recspectrum")
    out: dict[str, list] = {}
    if exp is None:
        return out
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        out.setdefault(r.info.status, []).append(r)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """The ratings file, an empty MLflow store to copy, an uninterrupted run of the
    matrix's config (its numbers are what every resumed run must give) and a baseline."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("faults")
    csv = write_ratings_csv(root / "ratings.csv")
    store = root / "store"
    (store / "mlruns").mkdir(parents=True)
    MlflowClient(tracking_uri=f"sqlite:///{store / 'mlruns' / 'mlflow.db'}").search_experiments()
    ref = root / "ref"
    ref.mkdir()
    w = World(root, csv, store, ref, root / "baseline.json")
    (job,) = run_jobs([Job(w.argv("tracker=none"), ref, str(root / "ref"))])
    assert job.code == 0, job.err
    (w.complete,) = (ref / "runs" / NAME).iterdir()
    (job,) = run_jobs([Job(["check", "--update-baseline", "--baseline", str(w.baseline),
                            *w.argv("tracker=none")], ref, str(root / "base"))])
    assert job.code == 0 and w.baseline.is_file(), job.err + job.out
    return w


#: the complete run copied into every scenario, named to sort before any real run
EARLIER = "20000101-000000-aaaaaa"


def new_scenario(w: World, label: str) -> Path:
    folder = w.root / label.replace(":", "_").replace("#", "_").replace(" ", "_") \
        .replace("(", "").replace(")", "")
    shutil.copytree(w.store, folder)
    shutil.copytree(w.complete, folder / "runs" / NAME / EARLIER)
    return folder


def killed_folder(folder: Path) -> Path | None:
    runs = [d for d in (folder / "runs" / NAME).iterdir() if d.name != EARLIER]
    assert len(runs) <= 1, runs
    return runs[0] if runs else None


def per_user(folder: Path) -> pd.DataFrame:
    frame = pd.read_parquet(folder / "per_user.parquet")
    cols = ["model", "fold", "user_id", *sorted(c for c in frame.columns if "@" in c)]
    return frame[cols].sort_values(["model", "fold", "user_id"]).reset_index(drop=True)


def one_line_or_result(job: Job, what: str) -> None:
    """Exit 0, or exit 2 with one line — never a traceback or another code."""
    assert "Traceback" not in job.err, f"{what}: {job.err}"
    assert job.code in (0, 2), f"{what}: exit {job.code}: {job.err}"
    if job.code == 2:
        assert len(job.err_lines) == 1, f"{what}: {job.err}"
        assert job.err_lines[0].startswith("bench: error: "), f"{what}: {job.err}"


# ---------------------------------------------------------------------- the matrix
@dataclass
class Outcome:
    label: str
    signal: str
    exit: int | None
    stderr: str
    running_after_kill: int
    report: str = ""
    follow: dict[str, str] = field(default_factory=dict)


MATRIX_TABLE = os.environ.get("BENCH_FAULT_MATRIX")  # write the table here (markdown)


def test_kill_at_every_stage(world, capsys):
    t0 = time.perf_counter()
    scenarios = []
    only = os.environ.get("BENCH_FAULT_ONLY")  # a comma-separated subset of labels
    for label, stage, nth, where in POINTS:
        if only and label not in only.split(","):
            continue
        for sname, sig in SIGNALS.items():
            folder = new_scenario(world, f"{sname}-{label}")
            scenarios.append((label, sname, folder, Job(
                world.argv(), folder, str(folder / "killed"), (stage, nth, where, sig))))
    run_jobs([s[3] for s in scenarios])
    t_kill = time.perf_counter() - t0

    problems: list[str] = []  # every finding, so one run of the matrix shows them all
    outcomes, reads, follows = {}, [], []
    for label, sname, folder, job in scenarios:
        what = f"{label} {sname}"
        if sname == "SIGKILL" and job.code != -signal.SIGKILL:
            problems.append(f"{what}: the kill point was never reached (exit {job.code}): "
                            f"{job.err[-2000:]}")
            continue
        if sname == "SIGINT":
            if job.code != 130 or "Traceback" in job.err or len(job.err_lines) != 1:
                problems.append(f"{what}: exit {job.code}, stderr: {job.err[-3000:]}")
            elif not (job.err_lines[0].startswith("bench: interrupted") and (
                    "resume=true" in job.err_lines[0] or "nothing was kept" in job.err_lines[0])):
                problems.append(f"{what}: {job.err_lines[0]}")
        runs = mlflow_runs(folder)
        running = len(runs.get("RUNNING", []))
        if sname == "SIGINT" and running:
            problems.append(f"{what}: left {running} MLflow run(s) RUNNING")
        outcomes[what] = Outcome(label, sname, job.code, job.err_lines[-1] if job.err_lines
                                 else "", running)
        killed = killed_folder(folder)
        if killed is not None:
            reads += [
                (what, "report FOLDER", killed, Job(["report", str(killed)], folder,
                                                     str(folder / "report_folder"))),
                (what, "compare", killed, Job(
                    ["compare", str(folder / "runs" / NAME / EARLIER), str(killed)],
                    folder, str(folder / "compare"))),
            ]
        reads.append((what, "report NAME", killed, Job(
            ["report", NAME, "--reports-dir", "runs"], folder, str(folder / "report_name"))))
        # resume=true reads the killed folder; after a SIGINT that kept nothing there is
        # none, and resuming from the earlier run is what test_resume covers
        kinds = ["resume"] if killed is not None else []
        if sname == "SIGKILL":
            kinds += ["check"] if label in CHECK_AFTER else []
            kinds += ["next"] if running and label in NEXT_AFTER else []
        for kind in kinds:
            copy = folder.with_name(f"{folder.name}-{kind}")
            shutil.copytree(folder, copy)
            argv = {"next": world.argv(), "resume": world.argv("resume=true"),
                    "check": ["check", "--baseline", str(world.baseline),
                              *world.argv("resume=true")]}[kind]
            follows.append((what, kind, running, killed, Job(argv, copy, str(copy / kind))))
    run_jobs([r[3] for r in reads])
    for what, cmd, killed, job in reads:
        problems += read_back_problems(f"{what}: bench {cmd}", job, killed)
        outcomes[what].report += f"{cmd}: {'ok' if job.code == 0 else 'exit 2'}; "
    run_jobs([f[4] for f in follows])
    t_all = time.perf_counter() - t0
    expected = per_user(world.complete)
    for what, kind, stale, killed, job in follows:
        found = follow_up_problems(f"{what}, then {kind}", job, stale, killed, expected)
        problems += found
        outcomes[what].follow[kind] = "PROBLEM" if found else "exit 0, same numbers"

    with capsys.disabled():
        print(f"\nfault matrix: {len(scenarios)} kills, {len(reads)} read-backs, "
              f"{len(follows)} follow-up runs; kills {t_kill:.0f} s, all {t_all:.0f} s; "
              f"process seconds: kills {sum(s[3].seconds for s in scenarios):.0f}, reads "
              f"{sum(r[3].seconds for r in reads):.0f}, follow-ups "
              f"{sum(f[4].seconds for f in follows):.0f}")
    if MATRIX_TABLE:
        lines = ["| stage | signal | exit | last stderr line | RUNNING after kill | read back | "
                 "follow-ups |", "|---|---|---|---|---|---|---|"]
        for o in outcomes.values():
            lines.append(f"| {o.label} | {o.signal} | {o.exit} | {o.stderr[:100]} | "
                         f"{o.running_after_kill} | {o.report} | "
                         f"{'; '.join(f'{k}: {v}' for k, v in o.follow.items())} |")
        Path(MATRIX_TABLE).write_text("\n".join(lines) + "\n")
    assert not problems, f"{len(problems)} finding(s):\n" + "\n".join(problems)


def read_back_problems(what: str, job: Job, killed: Path | None) -> list[str]:
    """A read-back gives a result from complete files only, or one line saying the folder
    is incomplete and what to do."""
    if "Traceback" in job.err or job.code not in (0, 2):
        return [f"{what}: exit {job.code}: {job.err[-3000:]}"]
    complete = killed is not None and (killed / "results.json").is_file()
    if job.code == 2:
        line = job.err_lines[0] if job.err_lines else ""
        if len(job.err_lines) != 1 or not line.startswith("bench: error: "):
            return [f"{what}: not one line: {job.err}"]
        if complete:
            return [f"{what}: refused a complete run folder: {line}"]
        if "incomplete" not in line or "resume=true" not in line:
            return [f"{what}: does not say the folder is incomplete and what to do: {line}"]
        return []
    if "report NAME" in what:  # the latest complete run: the killed one only when complete
        want = killed if complete else killed.parent / EARLIER if killed else None
        if want is not None and f"{want.name}/report.md" not in job.out:
            return [f"{what}: reported another run than {want.name}: {job.out}"]
    elif not complete:
        return [f"{what}: read an incomplete run folder: {job.out[-500:]}"]
    return []


def follow_up_problems(what: str, job: Job, stale: int, killed: Path | None,
                       expected: pd.DataFrame) -> list[str]:
    """The next run exits 0, closes the killed process's stale runs and gives exactly the
    numbers of an uninterrupted run."""
    if job.code != 0:
        return [f"{what}: exit {job.code}: {job.err[-3000:]}"]
    out = []
    runs = mlflow_runs(job.cwd)
    if "RUNNING" in runs:
        out.append(f"{what}: {len(runs['RUNNING'])} MLflow run(s) still RUNNING")
    if stale:
        if f"marked {stale} stale MLflow run(s) KILLED" not in job.err + job.out:
            out.append(f"{what}: no word of the {stale} stale run(s) marked KILLED")
        if len(runs.get("KILLED", [])) != stale:
            out.append(f"{what}: {len(runs.get('KILLED', []))} KILLED, expected {stale}")
    copy_of_killed = job.cwd / "runs" / NAME / killed.name if killed else None
    new = [d for d in (job.cwd / "runs" / NAME).iterdir()
           if d.name != EARLIER and d != copy_of_killed]
    if len(new) != 1 or not (new[0] / "results.json").is_file():
        return [*out, f"{what}: expected one new complete run folder, found {new}"]
    try:
        pd.testing.assert_frame_equal(per_user(new[0]), expected, check_exact=True)
    except AssertionError as exc:
        out.append(f"{what}: other numbers than an uninterrupted run: {exc}")
    if "check" in what.rsplit(" ", 1)[-1] and "PASS" not in job.out:
        out.append(f"{what}: the gate did not pass: {job.out[-1000:]}")
    return out
