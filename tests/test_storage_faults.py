"""A full disk and read-only folders (issue 15): one line, exit 2, no half-written file,
no MLflow run left RUNNING (the run's are closed FAILED).

* ENOSPC injected at every atomic write of a run, in turn (``os.fsync`` of the temporary
  file fails, where a full disk with delayed allocation says so);
* real file systems, when this machine lets a test mount one (root with CAP_SYS_ADMIN, as
  on CI): a tiny tmpfs that fills up at a different write for each size, and a read-only
  tmpfs for ``report.dir``, the MLflow artifact root and ``bench report``'s folder.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import StorageError, storage_error
from tests.helpers import csv_dataset, write_ratings_csv

RUN = ["~experiment", "model=[rule_popular,rule_random]", "split=temporal",
       "eval.cutoffs=[5]", "report.figures=false", "name=s", "stats.n_resamples=50",
       "report.curve_k=10", "cold_start.user={quantile: 0.5, fold_in: [0, 1], seed: 0}"]
TMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")


def leftovers(root: Path) -> list[Path]:
    """Temporary files of bench.atomic left anywhere under ``root``."""
    return [p for p in root.rglob("*") if TMP_NAME.match(p.name)]


def statuses(root: Path) -> Counter:
    from mlflow.tracking import MlflowClient

    db = root / "mlruns" / "mlflow.db"
    if not db.exists():
        return Counter()
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("recspectrum")
    runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    return Counter(r.info.status for r in runs)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), err
    assert "Traceback" not in err
    return lines[0]


class DiskFull:
    """Replaces ``os.fsync``: counts the atomic writes (fsync of a ``.<name>.<hex>.tmp``
    file) and fails the ``at``-th with ENOSPC."""

    def __init__(self, at: int | None = None):
        self.at, self.names, self.real = at, [], os.fsync

    def __call__(self, fd: int) -> None:
        match = TMP_NAME.match(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        if match:
            self.names.append(match["name"])
            if len(self.names) == self.at:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.real(fd)


@pytest.fixture
def work(tmp_path, monkeypatch) -> tuple[Path, list[str]]:
    monkeypatch.chdir(tmp_path)
    csv = write_ratings_csv(tmp_path / "ratings.csv")
    return tmp_path, [*csv_dataset(csv), *RUN, "report.dir=runs"]


def test_storage_error_names_the_file_and_what_to_do():
    full = storage_error(OSError(errno.ENOSPC, "No space left on device", "/r/x.json"))
    assert isinstance(full, StorageError)
    assert str(full) == ("/r/x.json: cannot write (the disk is full: No space left on "
                         "device); free some space, or set report.dir to a folder on "
                         "another disk")
    ro = storage_error(PermissionError(errno.EROFS, "Read-only file system", "/r"))
    assert str(ro).startswith("/r: cannot write (the file system is read-only: Read-only")
    assert storage_error(OSError(errno.ENOENT, "No such file", "x")) is None
    assert storage_error(ValueError("x")) is None


def test_atomic_write_names_the_target_when_the_disk_is_full(tmp_path, monkeypatch):
    from bench.atomic import write_json

    monkeypatch.setattr(os, "fsync", DiskFull(at=1))
    with pytest.raises(OSError) as info:
        write_json(tmp_path / "a.json", {"x": 1})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "a.json")
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary file


@pytest.mark.slow
def test_disk_full_in_a_cell_stops_the_run_in_one_line(work, monkeypatch, capsys):
    """Not recorded as a model failure (exit 1, one line per model): the run stops."""
    root, argv = work
    full = DiskFull(at=2)  # config.json, then the first cell's topk.parquet
    monkeypatch.setattr(os, "fsync", full)
    assert main([*argv, "tracker=none"]) == 2
    assert full.names == ["config.json", "topk.parquet"]
    line = one_line(capsys)
    assert re.fullmatch(r"bench: error: \S+/artifacts/rule_popular/fold0/topk\.parquet: cannot "
                        r"write \(the disk is full: No space left on device\); free some "
                        r"space, or set report\.dir to a folder on another disk", line), line
    assert leftovers(root) == []
    assert not list(root.rglob("topk.parquet")) and not list(root.rglob("traceback.txt"))


@pytest.mark.slow
def test_disk_full_at_every_atomic_write(work, monkeypatch, capsys):
    root, argv = work
    argv = ["model=[rule_popular]" if a.startswith("model=") else a for a in argv]
    count = DiskFull()
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", count)
        assert main(argv) == 0
    capsys.readouterr()
    names = count.names
    assert {"config.json", "done.json", "per_user.parquet", "results.json", "report.md",
            "stats.json"} <= set(names), names
    clean = statuses(root)  # the parent and the cells' children, all FINISHED
    assert set(clean) == {"FINISHED"} and clean["FINISHED"] >= 2, clean
    for at, name in enumerate(names, start=1):
        monkeypatch.setattr(os, "fsync", DiskFull(at))
        before = set((root / "runs" / "s").iterdir())
        assert main(argv) == 2, (at, name)
        line = one_line(capsys)
        assert f"/{name}: cannot write (the disk is full" in line, (at, name, line)
        assert leftovers(root) == [], (at, name)
        (new,) = set((root / "runs" / "s").iterdir()) - before
        target = line.split("bench: error: ", 1)[1].split(": cannot write", 1)[0]
        assert not Path(target).exists(), (at, name)  # nothing half-written in its place
        if at <= names.index("results.json"):  # results.json is written after the tables
            assert not (new / "results.json").exists(), (at, name)
        now = statuses(root)
        assert "RUNNING" not in now, (at, name, now)
        # config.json is written before the parent run starts; every later write fails it
        assert now["FAILED"] >= at - 1, (at, name, now)


# ---------------------------------------------------------------------- real file systems
def _mount(folder: Path, *options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs",
                           str(folder)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def mounts(tmp_path):
    """Mount tmpfs file systems under tmp_path (skips where this machine does not allow
    it); unmounted at the end."""
    made: list[Path] = []

    def mount(name: str, *options: str) -> Path:
        folder = tmp_path / f"mnt-{name}-{uuid.uuid4().hex[:4]}"
        if os.geteuid() != 0 or not shutil.which("mount") or not _mount(folder, *options):
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
        made.append(folder)
        return folder

    yield mount
    for folder in reversed(made):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


@pytest.mark.slow
def test_report_dir_on_a_read_only_file_system(work, mounts, capsys):
    root, argv = work
    ro = mounts("ro", "ro", "size=64k")
    assert main([*argv, "tracker=none", f"report.dir={ro}/runs"]) == 2
    assert one_line(capsys) == (
        f"bench: error: report.dir: cannot write run folders under '{ro}/runs' ({ro}: "
        f"Read-only file system); set report.dir to a folder you can write")
    assert not (root / "runs").exists()


@pytest.mark.slow
def test_mlflow_artifact_root_on_a_read_only_file_system(work, mounts, capsys):
    root, argv = work
    ro = mounts("art", "ro", "size=64k")
    assert main([*argv, f"tracker.artifact_root={ro}/art", "tracker.experiment=ro"]) == 2
    line = one_line(capsys)
    assert line.startswith(f"bench: error: tracker.artifact_root: cannot write MLflow "
                           f"artifacts to '{ro}/art' (Read-only file system)"), line
    assert not list((root / "runs").rglob("artifacts"))  # stopped before any training


@pytest.mark.slow
def test_bench_report_of_a_folder_on_a_read_only_file_system(work, mounts, capsys):
    root, argv = work
    assert main([*argv, "tracker=none"]) == 0
    (run,) = (root / "runs" / "s").iterdir()
    fs = mounts("rep", "size=4m")
    shutil.copytree(run, fs / "run")
    remount_read_only(fs)
    capsys.readouterr()
    assert main(["report", str(fs / "run")]) == 2
    line = one_line(capsys)
    assert line.startswith(f"bench: error: {fs}/run/") and "the file system is read-only" in line


@pytest.mark.slow
@pytest.mark.parametrize("kib", [8, 24, 96, 256])
def test_a_really_full_disk(work, mounts, capsys, kib):
    """report.dir on a tmpfs of ``kib`` KiB: the run fills it at some write (8: Hydra's
    .hydra/ files; 24: a cell's lists; 96: the run's card.json) or fits (256)."""
    root, argv = work
    fs = mounts(f"full{kib}", f"size={kib}k")
    code = main([*argv, f"report.dir={fs}/runs"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and "Logging error" not in err, err
    if code == 0:
        assert list(fs.rglob("report.md")), "a run that fits writes its report"
    else:
        assert code == 2 and len(lines) == 1, err
        assert re.search(r"(No space left on device|disk is full)", lines[0]), lines[0]
    assert leftovers(fs) == []
    assert "RUNNING" not in statuses(root)
