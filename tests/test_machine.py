"""bench.machine: usable cores, threads runnable elsewhere, and the spare-core decision."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench import machine


def test_usable_cores_is_the_affinity_mask():
    assert machine.usable_cores() == len(os.sched_getaffinity(0))


def _fake_loadavg(monkeypatch, readings):
    """/proc/loadavg reads that return ``readings`` (running counts) in turn."""
    it = iter(readings)
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            import io

            return io.StringIO(f"2.50 1.90 1.20 {next(it)}/120 4242\n")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(machine.time, "sleep", lambda s: None)


def test_busy_elsewhere_leaves_out_the_caller_and_keeps_the_smallest_reading(monkeypatch):
    _fake_loadavg(monkeypatch, [4, 2, 3])
    # the caller is one of the running threads; a passing process does not decide
    assert machine.busy_elsewhere() == 1.0


def test_busy_elsewhere_never_negative(monkeypatch):
    _fake_loadavg(monkeypatch, [0, 0, 0])
    assert machine.busy_elsewhere() == 0.0


def test_spare_core_ignores_a_stale_high_load_average(monkeypatch):
    """The run's own ALS fit keeps the one-minute average near the core count for a
    minute after it ends; only the threads running now count."""
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    _fake_loadavg(monkeypatch, [1, 1, 1])  # only the caller runs, load average 2.5
    assert machine.spare_core() is True
    _fake_loadavg(monkeypatch, [2, 3, 2])  # one other thread runs throughout
    assert machine.spare_core() is False


@pytest.mark.parametrize(("cores", "load", "expected"), [(2, 1.4, True), (2, 1.6, False),
                                                          (1, 0.0, False)])
def test_without_proc_the_load_average_decides(monkeypatch, cores, load, expected):
    monkeypatch.setattr(machine, "usable_cores", lambda: cores)
    monkeypatch.setattr(machine, "busy_elsewhere", lambda: None)
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (load, load, load))
    assert machine.spare_core() is expected


@pytest.mark.parametrize(("env", "expected"), [(None, "False"), ("1", "True")])
def test_importing_bench_turns_off_numpys_huge_pages_unless_the_user_chose(env, expected):
    """bench/__init__.py sets NUMPY_MADVISE_HUGEPAGE=0 before numpy is imported (a fresh
    200 MB array: 0.5 s with huge pages, 0.12 s without, on the machines we measure);
    a value in the environment wins."""
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    code = ("import bench, numpy, numpy._core.multiarray as m; "
            "print(m._get_madvise_hugepage())")
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == expected


def test_in_background_runs_the_job_on_one_thread_when_a_core_is_free(monkeypatch):
    import threading

    monkeypatch.setattr(machine, "spare_core", lambda: True)
    done = threading.Event()
    names = []
    assert machine.offload(lambda: (names.append(threading.current_thread().name),
                                          done.set())) is True
    assert done.wait(10)
    assert names[0].startswith("recspectrum-background")


def test_in_background_asks_for_a_core_only_when_its_thread_is_idle(monkeypatch):
    import threading

    release, started, second = threading.Event(), threading.Event(), threading.Event()
    monkeypatch.setattr(machine, "spare_core", lambda: True)
    assert machine.offload(lambda: (started.set(), release.wait(10)))
    assert started.wait(10)
    asked = []
    # busy with the first job: the thread is this process's own load, queue behind it
    monkeypatch.setattr(machine, "spare_core", lambda: asked.append(1) or False)
    assert machine.offload(second.set) is True
    assert asked == []
    release.set()
    assert second.wait(10)
    assert machine.wait_idle(10)  # the backlog empties once the jobs have returned
    assert machine.offload(lambda: None) is False  # idle, no core free
    assert asked == [1]


def test_a_failing_background_job_is_logged_not_raised(monkeypatch, caplog):
    import logging
    import threading

    monkeypatch.setattr(machine, "spare_core", lambda: True)
    after = threading.Event()
    with caplog.at_level(logging.DEBUG, logger="bench.machine"):
        assert machine.offload(lambda: 1 / 0)
        assert machine.offload(after.set)  # the thread lives on
        assert after.wait(10)
    assert any("ZeroDivisionError" in r.getMessage() for r in caplog.records)


def test_a_module_is_imported_early_on_a_free_core():
    code = (
        "import sys, time, bench.machine as m\n"
        "m.spare_core = lambda: True\n"
        "assert 'scipy.stats' not in sys.modules\n"
        "print(m.import_early('scipy.stats'))\n"
        "for _ in range(3000):\n"
        "    if 'scipy.stats' in sys.modules and hasattr(sys.modules['scipy.stats'], 'wilcoxon'):\n"
        "        break\n"
        "    time.sleep(0.01)\n"
        "from scipy import stats\n"
        "print(callable(stats.wilcoxon), m.import_early('scipy.stats'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "True", "False"]


def test_map_on_cores_gives_the_loops_results_in_order(monkeypatch):
    for spare in (True, False):
        monkeypatch.setattr(machine, "spare_core", lambda spare=spare: spare)
        assert machine.map_on_cores(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]
        with pytest.raises(ZeroDivisionError):
            machine.map_on_cores(lambda x: 1 / x, [1, 0, 2])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_threads():
    """After a fork the parent's pool threads do not exist in the child: a child that
    used them would wait forever (``bench perf cells`` forks one process per cell)."""
    code = (
        "import os, threading\n"
        "import bench.machine as m\n"
        "m.spare_core = lambda: True\n"
        "assert m.map_on_cores(lambda x: x + 1, [1, 2]) == [2, 3]\n"
        "done = threading.Event(); assert m.offload(done.set); assert done.wait(10)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = m.map_on_cores(lambda x: x * 2, [1, 2]) == [2, 4]\n"
        "    again = threading.Event(); m.offload(again.set)\n"
        "    os._exit(0 if ok and again.wait(10) else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["0"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_waits_for_the_background_jobs_and_their_locks():
    """A job's lock held at the fork would stay held in the child forever (a cell
    process forked while relevant.parquet was being encoded waited on the property's
    lock): the fork waits until the background thread is idle."""
    code = (
        "import os, threading, time\n"
        "import bench.machine as m\n"
        "m.spare_core = lambda: True\n"
        "held = threading.Lock(); started = threading.Event()\n"
        "def job():\n"
        "    with held:\n"
        "        started.set(); time.sleep(0.5)\n"
        "assert m.offload(job); assert started.wait(10)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if held.acquire(timeout=5) else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["0"]


def test_the_process_does_not_wait_for_background_work_on_its_way_out():
    """Background jobs are optional work (warm-ups, early hashing): a run that ends, or
    is stopped with Ctrl-C, while one runs exits at once instead of waiting for it."""
    code = (
        "import threading, time\n"
        "import bench.machine as m\n"
        "m.spare_core = lambda: True\n"
        "started = threading.Event()\n"
        "assert m.offload(lambda: (started.set(), time.sleep(600)))\n"
        "assert started.wait(10)\n"
    )
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert time.monotonic() - t < 30


def test_wait_idle_waits_for_the_jobs_and_not_for_itself(monkeypatch):
    import threading

    monkeypatch.setattr(machine, "spare_core", lambda: True)
    release, inside = threading.Event(), []
    assert machine.offload(lambda: (inside.append(machine.wait_idle(5)), release.wait(10)))
    assert machine.wait_idle(0.2) is False  # the job still runs: timed out
    release.set()
    assert machine.wait_idle(10) is True
    assert inside == [False]  # a job asking returns at once instead of waiting for itself
