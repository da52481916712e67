"""Fuzzing the run folders ``bench report``, ``bench compare`` and ``resume`` read back
(issue 15): random byte mutations, truncations, deletions and JSON edits of each file of a
real small run folder.

Property: the command gives a result — for ``resume``, exactly the numbers of an untouched
run — or exits 2 with one ``bench: error:`` line; never a traceback, never exit 1.
(``bench check`` reads run folders back only through ``resume``; its baseline file is an
input, fuzzed with the other inputs.)

``BENCH_FUZZ_EXAMPLES`` sets the examples per test (small by default, for CI); the test
prints how many cases ran and how long they took.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.errors import BenchError
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import report_cfg, write_ratings_csv

EXAMPLES = int(os.environ.get("BENCH_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

#: files of the run folder that bench report / bench compare read
RUN_FILES = ["results.json", "card.json", "per_user.parquet", "curves.parquet",
             "cold_start.parquet"]
#: files of a cell folder that resume reads (and copies)
CELL = "artifacts/rule_random/fold0"
CELL_FILES = [f"{CELL}/done.json", f"{CELL}/per_user.parquet", f"{CELL}/topk.parquet",
              f"{CELL}/metrics.json"]


def cfg_for(csv: Path, **over):
    models = {"rule_popular": {"_target_": "bench.models.rule.popular.PopularityRecommender"},
              "rule_random": {"_target_": "bench.models.rule.random.RandomRecommender",
                              "seed": 1}}
    return report_cfg(csv, models=models, stats={"baseline": "rule_popular",
                                                 "n_resamples": 20, "seed": 0},
                      cold_start={"user": {"quantile": 0.5, "fold_in": [0, 1], "seed": 0},
                                  "item": None},
                      report={"figures": False, "curve_k": 10}, **over)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    """The ratings file, a finished run folder, and its per-user numbers."""
    root = tmp_path_factory.mktemp("fuzzrun")
    csv = write_ratings_csv(root / "ratings.csv")
    result = run_experiment(cfg_for(csv), output_dir=root / "runs" / "t" / "clean",
                            tracker=MemoryTracker())
    assert not result.failures
    return csv, root / "runs" / "t" / "clean", numbers(root / "runs" / "t" / "clean")


def numbers(folder: Path) -> pd.DataFrame:
    frame = pd.read_parquet(folder / "per_user.parquet")
    cols = ["model", "fold", "user_id", *sorted(c for c in frame.columns if "@" in c)]
    return frame[cols].sort_values(["model", "fold", "user_id"]).reset_index(drop=True)


# ---------------------------------------------------------------------- mutations
JSON_VALUES = st.sampled_from([None, "", "x", -1, 0, 1.5, 1e308, float("nan"), True, [],
                               {}, [1, "a"], {"k": None}])
MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                        min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("garbage"), st.binary(max_size=64)),
    st.just(("delete",)),
    st.just(("empty",)),
    st.tuples(st.just("json"), st.integers(0, 2**32), JSON_VALUES, st.booleans()),
)


def mutate(path: Path, mutation: tuple) -> None:
    """Apply one mutation to ``path`` (a missing file stays missing)."""
    kind = mutation[0]
    if kind == "delete":
        path.unlink(missing_ok=True)
        return
    data = path.read_bytes() if path.exists() else b""
    if kind == "truncate":
        data = data[: int(len(data) * mutation[1])]
    elif kind == "flip" and data:
        buf = bytearray(data)
        for where, value in mutation[1]:
            buf[min(int(where * len(buf)), len(buf) - 1)] = value
        data = bytes(buf)
    elif kind == "insert":
        at = int(len(data) * mutation[1])
        data = data[:at] + mutation[2] + data[at:]
    elif kind == "garbage":
        data = mutation[1]
    elif kind == "empty":
        data = b""
    elif kind == "json":
        data = json_edit(data, *mutation[1:])
    path.write_bytes(data)


def json_edit(data: bytes, seed: int, value, drop: bool) -> bytes:
    """Replace (or drop) one value anywhere in a JSON document; other files unchanged."""
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    slots = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                slots.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                slots.append((node, i))
                walk(v)

    walk(doc)
    if not slots:
        return json.dumps(value).encode()
    node, key = random.Random(seed).choice(slots)
    if drop and isinstance(node, dict):
        del node[key]
    else:
        node[key] = value
    return json.dumps(doc).encode()


# ---------------------------------------------------------------------- the property
COUNT: dict[str, list] = {}


def one_line_or_result(code: int, err: str, what: str) -> None:
    assert "Traceback" not in err, f"{what}:\n{err}"
    assert code in (0, 2), f"{what}: exit {code}:\n{err}"
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("bench: error: "), f"{what}:\n{err}"


def tally(name: str, t0: float) -> None:
    runs = COUNT.setdefault(name, [0, 0.0])
    runs[0] += 1
    runs[1] += time.perf_counter() - t0


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    for name, (n, seconds) in COUNT.items():
        print(f"\n{name}: {n} cases in {seconds:.1f} s")


@FUZZ
@given(st.sampled_from(RUN_FILES), st.lists(MUTATION, min_size=1, max_size=2),
       st.sampled_from(["report", "compare"]))
def test_report_and_compare_of_a_damaged_run_folder(clean, capsys, file, mutations, command):
    t0 = time.perf_counter()
    _, folder, _ = clean
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(folder, run)
        for m in mutations:
            mutate(run / file, m)
        capsys.readouterr()
        argv = ["report", str(run)] if command == "report" else ["compare", str(folder),
                                                                  str(run)]
        try:
            code = main(argv)
        except BaseException as exc:
            raise AssertionError(f"{command} {file} {mutations}: {exc!r}") from exc
        out = capsys.readouterr()
        one_line_or_result(code, out.err, f"bench {command} with {file} {mutations}")
    tally(f"bench {command}", t0)


@pytest.mark.slow  # a run per case
@FUZZ
@given(st.sampled_from(CELL_FILES), st.lists(MUTATION, min_size=1, max_size=2))
def test_resume_from_a_damaged_cell_gives_the_same_numbers(clean, file, mutations):
    t0 = time.perf_counter()
    csv, folder, expected = clean
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(folder, source)
        for m in mutations:
            mutate(source / file, m)
        try:
            result = run_experiment(cfg_for(csv, resume=str(source)),
                                    output_dir=Path(tmp) / "again", tracker=MemoryTracker())
        except BenchError as exc:  # the command line prints it as one line, exit 2
            assert "\n" not in str(exc), str(exc)
        else:
            assert not result.failures, result.failures
            got = numbers(Path(tmp) / "again")
            pd.testing.assert_frame_equal(got, expected, check_exact=True,
                                          obj=f"resume after {file} {mutations}")
    tally("resume=<damaged folder>", t0)
