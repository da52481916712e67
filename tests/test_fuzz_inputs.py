"""Fuzzing every input surface (issue 15): the answer is a result or one line, never a crash.

Surfaces: the interactions file (content, ids, ratings, timestamps, encodings, separators,
quoting), the items file, the exclusion list, the MovieLens side files, every config key
of the schema plus the dataset and split keys, every model's parameters, and the
arguments of every subcommand. The property everywhere: either success (and then no row
went missing without a count), or a :class:`~bench.errors.BenchError` whose message is
one line — at the command line, exit code 2 and one ``bench: error:`` line — and never
another exception, a traceback, or exit 0 after a silent drop.

Most cases run in-process (the loader, ``load_settings``, ``build``, ``bench.cli.main``);
a few go through the real ``bench`` executable for the exit code.

Budget: ``BENCH_FUZZ_EXAMPLES`` examples per test (default 15), a fifth of it for the
command line; the file runs in about 40 s on a loaded 2-core machine.
``BENCH_FUZZ_REPORT=path.json`` writes the number of cases each surface ran and the time.
The issue-15 hunt ran ``BENCH_FUZZ_EXAMPLES=2000`` (the commit message gives the counts).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from bench.cli import main
from bench.config import load_settings
from bench.data.consent import exclusion_drops
from bench.data.interactions import MAX_SECONDS, Interactions
from bench.data.movielens import load_ml_100k
from bench.data.tabular import load_table
from bench.errors import BenchError
from bench.targets import build
from tests.helpers import CONFIG_DIR, compose_config, csv_dataset

EXAMPLES = int(os.environ.get("BENCH_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
#: the command line costs 0.1-0.5 s a case: a fifth of the budget (at least 3)
FUZZ_CLI = settings(FUZZ, max_examples=max(3, EXAMPLES // 5))
COUNTS: Counter[str] = Counter()
SECONDS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def fuzz_report():
    start = time.perf_counter()
    yield
    out = os.environ.get("BENCH_FUZZ_REPORT")
    if out:
        Path(out).write_text(json.dumps({
            "examples_setting": EXAMPLES, "cases": dict(COUNTS), "total": sum(COUNTS.values()),
            "seconds": {k: round(v, 1) for k, v in SECONDS.items()},
            "wall_seconds": round(time.perf_counter() - start, 1)}, indent=1))


@contextlib.contextmanager
def counted(surface: str):
    COUNTS[surface] += 1
    t = time.perf_counter()
    try:
        yield
    finally:
        SECONDS[surface] += time.perf_counter() - t


def one_line(exc: BaseException, *names: str) -> str:
    """Assert ``exc`` is a BenchError with a one-line message naming one of ``names``."""
    assert isinstance(exc, BenchError), f"{type(exc).__name__}: {exc}"
    msg = str(exc)
    assert msg and "\n" not in msg and "\r" not in msg, f"not one line: {msg!r}"
    if names:
        assert any(n in msg for n in names), f"{msg!r} names none of {names}"
    return msg


# ====================================================================== the interactions file
ID_TEXT = st.sampled_from(["1", "2", "3", "17", "1.0", " 2 ", "007", "7", "u1", "U1", "é",
                           "a b", '"4"', "-1", "+1", "1e3", "0", "00", "1.50", "1.5", "x\x00",
                           "NaN", "", "user", "item", "99999999999999999999999", "\t5"])
RATING_TEXT = st.sampled_from(["1", "2.5", "3", "4", "5", "5.0", "0", "6", "-1", "x", "",
                               "inf", "nan", "4,5", "1e400", " 3 "])
TS_TEXT = st.sampled_from([
    "0", "5", "1000000000", "1600000000", "1600000000000", "1600000000000000",
    "1600000000000000000", "99999999999999999999", "-5", "1.5", "2020-01-01",
    "2021-06-01T10:00:00Z", "2300-01-01", "10000-01-01", "1960-01-01", "yesterday", "",
    "253402300799", "253402300800", "2020-01-01 25:00", "9223372036854775808"])


def _field(value: str, sep: str, quote: bool) -> str:
    if quote or sep in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def table_text(draw):
    sep = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    names = ["user", "item", "stars", "ts"]
    header = draw(st.sampled_from([names, names, ["user", "item", "ts", "stars"],
                                   ["usr", "item", "stars", "ts"], [*names, "extra"]]))
    n = draw(st.integers(0, 10))
    kinds = draw(st.sampled_from(["clean", "clean", "nasty"]))

    def value(col: str) -> str:
        col = {"usr": "user", "extra": "user"}.get(col, col)
        if kinds == "clean" and draw(st.integers(0, 9)) > 0:
            clean = {"user": st.integers(0, 4), "item": st.integers(0, 6),
                     "stars": st.integers(1, 5), "ts": st.integers(10**9, 2 * 10**9)}
            return str(draw(clean[col]))
        return draw({"user": ID_TEXT, "item": ID_TEXT, "stars": RATING_TEXT,
                     "ts": TS_TEXT}[col])

    quote = draw(st.booleans())
    rows = [[_field(value(c), sep, quote and draw(st.booleans())) for c in header]
            for _ in range(n)]
    if draw(st.integers(0, 9)) == 0 and rows:  # a short or long row
        rows[-1] = rows[-1][:-1] if draw(st.booleans()) else rows[-1] + ["9"]
    lines = [sep.join(header)] + [sep.join(r) for r in rows]
    if draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(1, len(lines))), sep.join(header))  # repeated header
    eol = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    text = eol.join(lines) + eol + draw(st.sampled_from(["", "", "\n\n", "  \n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    return data, sep, len(rows)


LOAD_OPTIONS = st.fixed_dictionaries({
    "duplicates": st.sampled_from(["error", "keep_last", "keep_first", "mean"]),
    "rating_scale": st.sampled_from([None, (1, 5), (0.5, 5)]),
    "timestamp_unit": st.sampled_from([None, None, "s", "ms", "us", "ns"]),
    "implicit": st.booleans(),
    "sep_given": st.sampled_from([None, "right", "wrong"]),
    "suffix": st.sampled_from([".csv", ".csv", ".tsv", ".txt"]),
})
COLUMNS = {"user_id": "user", "item_id": "item", "rating": "stars", "timestamp": "ts"}


def check_loaded(ds, n_rows: int, scale) -> None:
    """What a successful load promises: every data row is there or counted in drops."""
    x = ds.interactions
    dropped = sum(v for k, v in ds.drops.items() if k.startswith("duplicates_"))
    assert len(x) + dropped == n_rows, (len(x), dropped, n_rows, dict(ds.drops))
    for vocab in (x.user_ids, x.item_ids):
        if vocab.dtype == object or pd.api.types.is_string_dtype(vocab.dtype):
            words = [str(v) for v in vocab]
            assert all(w == w.strip() and w for w in words), words
            assert not any(re.search(r"[\x00-\x1f\x7f]", w) for w in words), words
    if x.timestamps is not None:
        assert ((x.timestamps >= 0) & (x.timestamps <= MAX_SECONDS)).all()
    if x.ratings is not None:
        assert np.isfinite(x.ratings).all()
        if scale is not None:
            assert ((x.ratings >= scale[0]) & (x.ratings <= scale[1])).all()


@FUZZ
@given(table_text(), LOAD_OPTIONS)
def test_fuzz_interactions_file(content, options):
    data, sep, n_rows = content
    with counted("interactions file"), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{options['suffix']}"
        path.write_bytes(data)
        given_sep = {None: None, "right": sep, "wrong": "," if sep != "," else ";"}[
            options["sep_given"]]
        kwargs = {k: options[k] for k in ("duplicates", "rating_scale", "timestamp_unit",
                                          "implicit")}
        try:
            ds = load_table(path=path, columns=COLUMNS, sep=given_sep, **kwargs)
        except Exception as exc:
            one_line(exc, "fuzz", "load_table")
            return
        check_loaded(ds, n_rows, options["rating_scale"])


@FUZZ
@given(st.binary(max_size=400), st.sampled_from([".csv", ".csv.gz", ".parquet", ".tsv"]))
def test_fuzz_raw_bytes(data, suffix):
    with counted("interactions file (raw bytes)"), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            load_table(path=path, columns=COLUMNS)
        except Exception as exc:
            one_line(exc, "fuzz")


# ====================================================================== items file
def _ratings(tmp: Path, text_ids: bool) -> Path:
    rows = [f"{'u' if text_ids else ''}{u},{'i' if text_ids else ''}{(u + j) % 8},4,"
            f"{1000 + j}" for u in range(6) for j in range(3)]
    path = tmp / "ratings.csv"
    path.write_text("user,item,stars,ts\n" + "\n".join(rows) + "\n")
    return path


ITEM_ID = st.sampled_from(["0", "1", "2", "7", "1.0", " 3 ", "i1", "i2", " i3", "007", "2.5",
                           "", "NaN", "x\x00", "99", "-1", "item"])
TITLE = st.sampled_from(["Heat (1995)", "", "A, B", "Up", '"Q"', "é", "x|y"])
YEAR = st.sampled_from(["1995", "", "2020", "soon", "19.5", "NaN", "-3", "1e3"])
GENRES = st.sampled_from(["Action|Crime", "Drama", "", "Action;Comedy", "A, B", "(no genres "
                          "listed)", "|", "Sci-Fi/Fantasy", " Action | Drama "])


@FUZZ
@given(st.booleans(), st.sampled_from([["item", "title", "year", "genres"], ["item", "title"],
                                       ["item_id", "genres"], ["title", "genres"],
                                       ["item", "genres", "genres"]]),
       st.lists(st.tuples(ITEM_ID, TITLE, YEAR, GENRES), max_size=8),
       st.sampled_from(["|", "|", ";", ","]), st.sampled_from([".csv", ".parquet"]))
def test_fuzz_items_file(text_ids, header, rows, genre_sep, suffix):
    with counted("items file"), tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ratings = _ratings(tmp, text_ids)
        items = tmp / f"items{suffix}"
        values = {"item": 0, "item_id": 0, "title": 1, "year": 2, "genres": 3}
        table = [[r[values[c]] for c in header] for r in rows]
        if suffix == ".parquet":
            names = list(dict.fromkeys(header))
            pd.DataFrame([r[: len(names)] for r in table], columns=names, dtype=object
                         ).to_parquet(items)
        else:
            lines = [",".join(header)] + [",".join(_field(v, ",", False) for v in r)
                                          for r in table]
            items.write_text("\n".join(lines) + "\n")
        try:
            ds = load_table(path=ratings, columns=COLUMNS, items_path=items,
                            genre_sep=genre_sep)
        except Exception as exc:
            one_line(exc, "items", "load_table")
            return
        f = ds.item_features
        assert list(f.item_ids) == list(ds.interactions.item_ids)
        assert f.genres.shape == (len(f), len(f.genre_names))
        assert all(g and g == g.strip() for g in f.genre_names), f.genre_names


# ====================================================================== exclusion list
LISTED = st.sampled_from(["0", "1", "5", "5.0", " 2 ", "99", "u1", "1e0", "# note", "",
                          "3 # asked", "1,2", "x y", "-0", "user_id", "7.5"])


@FUZZ
@given(st.lists(LISTED, max_size=6), st.booleans(), st.booleans())
def test_fuzz_exclusion_list(lines, as_csv, text_ids):
    with counted("exclusion list"), tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        frame = pd.DataFrame({"user_id": [f"u{u}" if text_ids else u for u in range(6)
                                          for _ in range(2)],
                              "item_id": list(range(12))})
        path = tmp / "withdrawn.txt"
        body = "\n".join(lines)
        path.write_text(("user_id,reason\n" + "\n".join(f"{x},r" for x in lines)) if as_csv
                        else body)
        try:
            out, drops = exclusion_drops(frame, path, source="ratings.csv")
        except Exception as exc:
            one_line(exc, "withdrawn.txt")
            return
        if drops["excluded_users"]:
            assert drops["excluded_user_ids"] >= 1
        assert len(out) + drops["excluded_users"] == len(frame)
        removed = set(frame["user_id"]) - set(out["user_id"])
        assert len(removed) == drops["excluded_user_ids"]


# ====================================================================== MovieLens side files
GENRE_FILE = "unknown|0\nAction|1\nDrama|2\n"
ITEM_LINE = "{i}|Movie {i} (1995)|01-Jan-1995||http://x|0|{a}|{d}"


def _ml100k(folder: Path) -> dict[str, str]:
    return {
        "u.data": "".join(f"{u}\t{(u + j) % 5 + 1}\t{3 + j % 3}\t{880000000 + j}\n"
                          for u in range(1, 6) for j in range(3)),
        "u.item": "".join(ITEM_LINE.format(i=i, a=i % 2, d=(i + 1) % 2) + "\n"
                          for i in range(1, 6)),
        "u.genre": GENRE_FILE,
        "u.user": "".join(f"{u}|{20 + u}|M|student|1000{u}\n" for u in range(1, 6)),
    }


NASTY_LINE = st.sampled_from(["", "x", "1|2", "1\t2\t3", "1\t2\t3\t4\t5", "a|b|c|d|e|f|g|h",
                              "7\t1\t9\t5", "1\t1\t3\t99999999999999999999", "unknown|1",
                              "0|x||||0|1|0", "é|0", "1|1|M|x|y|z", "-1\t2\t3\t4"])


@FUZZ
@given(st.sampled_from(["u.data", "u.item", "u.genre", "u.user"]),
       st.lists(st.tuples(st.integers(0, 20), NASTY_LINE), min_size=1, max_size=3),
       st.booleans())
def test_fuzz_movielens_side_files(name, edits, truncate):
    with counted("ml-100k files"), tempfile.TemporaryDirectory() as tmp_name:
        folder = Path(tmp_name) / "ml-100k"
        folder.mkdir()
        files = _ml100k(folder)
        lines = files[name].splitlines()
        for pos, line in edits:
            lines.insert(min(pos, len(lines)), line)
        if truncate:
            lines = lines[: len(lines) // 2]
        files[name] = "\n".join(lines) + ("\n" if lines else "")
        for fname, text in files.items():
            (folder / fname).write_text(text, encoding="latin-1", errors="replace")
        try:
            ds = load_ml_100k(path=folder)
        except Exception as exc:
            one_line(exc, str(folder), "ml_100k", "ml-100k")
            return
        assert len(ds.interactions) > 0


# ====================================================================== config keys
#: values a user might type for any key: wrong types, out of range, paths that escape
VALUES = st.sampled_from([
    None, True, False, 0, 1, -1, 2, 3, 10**12, -(10**12), 0.5, -0.5, 1.5, 1e-300,
    float("nan"), float("inf"), "", "abc", "../x", "a/b", "x@y", "ndcg@10", "auto", "keep",
    "2020-01-01", "2300-01-01", "10000-01-01", [], [1], [0, 0], [5, 1], [1, 5], [0], ["a"],
    [1.5], [None], {}, {"a": 1}, {"abs": -1}, "1", "ms", "%d/%m/%Y", " ", "é", "x" * 300,
])


def _leaf_keys(node, prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("columns",):
            out += _leaf_keys(value, path + ".")
        elif key != "_target_":
            out.append(path)
    return out


SPLITS = ["temporal", "temporal_warm", "holdout", "kfold", "leave_last_n", "user_cold_start",
          "item_cold_start"]


def _base(tmp: Path, split: str) -> dict:
    ratings = tmp / "ratings.csv"
    rows = [f"{u},{(u + 3 * j) % 30},{3 + (u + j) % 3},{1000 + 100 * j + u}"
            for u in range(20) for j in range(6)]
    ratings.write_text("user,item,stars,ts\n" + "\n".join(rows) + "\n")
    cfg = compose_config([*csv_dataset(ratings), f"split={split}", "~experiment",
                          "tracker=none", "model=[rule_popular]", "cold_start.user={}",
                          "cold_start.item={}"])
    return OmegaConf.to_container(cfg, resolve=True)


_BASES: dict[str, dict] = {}
_TMP = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))


def base_config(split: str) -> dict:
    if split not in _BASES:
        (_TMP / split).mkdir()
        _BASES[split] = _base(_TMP / split, split)
    return copy.deepcopy(_BASES[split])


def config_keys() -> list[str]:
    raw = base_config("temporal")
    keys = [k for k in _leaf_keys(raw) if not k.startswith(("tracker", "models", "hydra"))]
    keys += ["dataset.columns.user_id", "dataset.columns.rating", "dataset.columns",
             "dataset.genre_sep", "dataset.items_path", "dataset.exclude_users"]
    return sorted(set(keys))


def _set(raw: dict, key: str, value) -> None:
    parts = key.split(".")
    node = raw
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


@pytest.mark.slow  # ~0.3 s a case (settings, load, split)
@FUZZ
@given(st.sampled_from(SPLITS), st.data())
def test_fuzz_every_config_key(split, data):
    """Schema keys, dataset keys and the chosen split's keys: settings, data and split."""
    raw = base_config(split)
    keys = sorted(set(config_keys()) | {f"split.{k}" for k in _leaf_keys(raw["split"])})
    key = data.draw(st.sampled_from(keys), label="key")
    value = data.draw(VALUES, label="value")
    _set(raw, key, value)
    with counted("config keys"):
        try:
            load_settings(raw)
            ds = build(raw["dataset"], "dataset")
            splitter = build(raw["split"], "split")
            splits = splitter.split(ds.interactions)
        except Exception as exc:
            one_line(exc)
            return
        assert splits and all(len(s.test) > 0 or len(s.train) > 0 for s in splits)


# ====================================================================== model parameters
MODEL_CONFIGS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")
                       if p.stem != "precomputed")
#: parameter values for models: no large counts (a fuzzer asking ALS for 10**12 factors
#: tests the memory budget, which has its own tests, not the parameter checks)
MODEL_VALUES = st.sampled_from([None, True, False, 0, 1, -1, 2, 3, 0.5, -0.5, 1.5,
                                float("nan"), float("inf"), "", "abc", "auto", "rating",
                                [], [1], {}, {"a": 1}, "1"])
_MODELS: dict[str, dict] = {}


def model_node(name: str) -> dict:
    if name not in _MODELS:
        cfg = compose_config([f"+model={name}", "+seed=1"], config_name=None)
        _MODELS[name] = OmegaConf.to_container(cfg.models[name], resolve=True)
    return copy.deepcopy(_MODELS[name])


class Tiny(tuple):
    """The tiny data set, the user table and the split (a short repr for Hypothesis)."""

    def __repr__(self) -> str:
        return "tiny"


@pytest.fixture(scope="module")
def tiny():
    from bench.data.synthetic import generate_synthetic
    from bench.splits.temporal import GlobalTemporalSplitter
    from tests.helpers import with_demographics

    ds = generate_synthetic(n_users=30, n_items=25, n_interactions=400, n_segments=2,
                            n_genres=4, seed=1)
    split = GlobalTemporalSplitter(quantile=0.8).split(ds.interactions)[0]
    return Tiny((ds, with_demographics(ds.user_features), split))


@pytest.mark.slow  # a fit per case (milliseconds on tiny data, more under load)
@FUZZ
@given(st.sampled_from(MODEL_CONFIGS), st.data())
def test_fuzz_every_model_parameter(tiny, name, data):
    ds, users, split = tiny
    node = model_node(name)
    key = data.draw(st.sampled_from(_leaf_keys(node)), label="key")
    _set(node, key, data.draw(MODEL_VALUES, label="value"))
    with counted("model parameters"):
        try:
            model = build(node, f"models.{name}")
            model.fit(split.train, ds.item_features, users)
            recs = model.recommend_codes(np.unique(split.test.users), 5)
        except Exception as exc:
            one_line(exc)
            return
        assert recs.items.shape[1] == 5


# ====================================================================== subcommand arguments
TOKEN = st.sampled_from(["--force", "--reports-dir", "--output", "--baseline", "--markdown",
                         "--junit", "--data-dir", "--base-url", "-h", "--nope", "x", "",
                         "{tmp}", "{tmp}/run", "../..", "name=../x", "seed=abc", "=",
                         "eval.cutoffs=[0]", "é", "-", "--", "ml-100k", "ml_nope",
                         "split=nope", "+x=1", "~dataset"])


def run_cli(argv: list[str], cwd: Path | None = None) -> tuple[int, str]:
    """``bench.cli.main(argv)`` in ``cwd`` (a temporary folder: relative paths in a fuzzed
    command line must not land in the checkout); its exit code and stderr."""
    err = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.chdir(cwd or stack.enter_context(
            tempfile.TemporaryDirectory())))
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        try:
            code = main(argv)
        except SystemExit as exc:  # main never lets one out; count it as a failure
            code = f"SystemExit({exc.code!r}) escaped main"
    return code, err.getvalue()


def check_exit(code, err: str, argv) -> None:
    assert code in (0, 2), f"{argv}: exit {code}\n{err}"
    assert "Traceback" not in err, f"{argv}:\n{err}"
    if code == 2:
        mine = [x for x in err.splitlines() if x.startswith("bench: error:")]
        usage = [x for x in err.splitlines() if re.search(r"^bench[\w ]*: error:", x)]
        assert len(mine) == 1 or (not mine and usage), f"{argv}: not one error line:\n{err}"


def _argv(tmp: Path, tokens: list[str]) -> list[str]:
    return [t.replace("{tmp}", str(tmp)) for t in tokens]


@FUZZ_CLI
@given(st.sampled_from(["report", "compare", "data", "split", "check"]),
       st.lists(TOKEN, max_size=5))
def test_fuzz_subcommand_arguments(command, tokens):
    with counted("subcommand arguments"), tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "run").mkdir()
        (tmp / "run" / "results.json").write_text("{not json")
        argv = [command, *_argv(tmp, tokens)]
        if command == "data":  # never the network: a local mirror that does not exist
            argv = ["data", "download", *argv[1:], "--base-url", "file:///nonexistent",
                    "--data-dir", str(tmp / "d")]
        if command == "check":  # never a full run: the baseline is missing
            argv = [*argv, "--baseline", str(tmp / "missing.json")]
        if command == "split":
            argv = ["split", "export", *argv[1:], "dataset=synthetic", "dataset.n_users=30",
                    "dataset.n_items=20", "dataset.n_interactions=200"]
        code, err = run_cli(argv, cwd=tmp)
        check_exit(code, err, argv)


PERF_SMALL = {
    "metrics": ["--users", "40", "--items", "30", "--k", "5", "--repeats", "1"],
    "topk": ["--users", "40", "--items", "30", "--factors", "4", "--per-user", "3", "--k", "5",
             "--repeats", "1", "--check-users", "10", "--iterations", "1", "--no-memory"],
}
PERF_FLAGS = {
    "metrics": ["--users", "--items", "--k", "--repeats", "--relevant", "--tile", "--seed"],
    "topk": ["--users", "--items", "--factors", "--per-user", "--k", "--repeats", "--threads",
             "--block-rows", "--implicit-blas", "--check-users", "--iterations", "--seed"],
}
PERF_VALUE = st.sampled_from(["0", "-1", "-0.5", "nan", "inf", "x", "", "1e3", "2"])


@FUZZ_CLI
@given(st.sampled_from(sorted(PERF_SMALL)), st.data())
def test_fuzz_perf_arguments(workload, data):
    """Each numeric option of `bench perf metrics|topk` with an odd value (the sizes stay
    small, so a value that is accepted runs in a second)."""
    flag = data.draw(st.sampled_from(PERF_FLAGS[workload]), label="flag")
    value = data.draw(PERF_VALUE, label="value")
    argv = ["perf", workload, *PERF_SMALL[workload], flag, value]
    with counted("perf arguments"):
        code, err = run_cli(argv)
        check_exit(code, err, argv)


# ====================================================================== the real executable
BENCH = Path(sys.executable).with_name("bench")


@pytest.mark.slow  # ~4 s a bench start on a loaded 2-core machine
@settings(FUZZ, max_examples=2)
@given(st.sampled_from(["1,2,4,1600000000000", "1 ,2.0,4,5", "7,2,4,5\n007,3,4,6",
                        "1,2,4,2300-01-01\n1,3,4,99999999999999999999"]),
       st.sampled_from(["dataset.timestamp_unit=ms", "dataset.timestamp_unit=hours",
                        "seed=abc", "eval.cutoffs=[5]"]))
def test_fuzz_through_the_real_command(rows, override):
    if not BENCH.is_file():
        pytest.skip(f"no bench executable beside {sys.executable}")
    with counted("real command"), tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "r.csv"
        path.write_text("user,item,stars,ts\n" + rows + "\n")
        argv = [str(BENCH), "split", "export", str(tmp / "out"), *csv_dataset(path),
                "split=holdout", "~experiment", override]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp,
                              env={**os.environ, "PYTHONPATH": str(CONFIG_DIR.parent)})
        check_exit(proc.returncode, proc.stderr, argv)


def test_the_property_catches_a_traceback():
    """The harness itself: a non-BenchError, or two lines, fail the property."""
    with pytest.raises(AssertionError):
        one_line(ValueError("x"))
    with pytest.raises(AssertionError):
        one_line(BenchError("a\nb"))
    with pytest.raises(AssertionError):
        check_exit(1, "Traceback (most recent call last):", [])
    assert math.isfinite(one_line.__code__.co_argcount)
    assert Interactions is not None
