"""The bad-input catalogue: every malformed input a user can hand `bench` exits 2 with a
message naming the file, column or key and what was expected — never a traceback.

One table drives the test: each case builds its input under ``tmp_path``, runs the real
command line (:func:`bench.cli.main`) and checks the exit code and a regex on the message.
Running this module also writes the table as markdown (input -> message -> exit code) to
``$BENCH_CATALOGUE`` when set (e.g. ``/tmp/bad_input_catalogue.md``), for a closing note.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.cli import main
from bench.data.tabular import load_table
from tests.helpers import QUICK_RUN, RATINGS_COLUMNS, csv_dataset

#: where the markdown catalogue goes; only written when $BENCH_CATALOGUE is set
CATALOGUE = os.environ.get("BENCH_CATALOGUE")
HEADER = "user,item,stars,ts\n"  # the columns of RATINGS_COLUMNS


def fast(tmp: Path) -> list[str]:
    """Overrides that keep a run tiny: one rule model, no tracker, figures or cold start."""
    return [*QUICK_RUN, "split=temporal", "~experiment", "report.figures=false",
            f"report.dir={tmp / 'reports'}"]


def csv_run(path: Path, tmp: Path, *extra: str) -> list[str]:
    return [*csv_dataset(path), *fast(tmp), *extra]


def good_csv(tmp: Path) -> Path:
    """A small valid table (20 users x 6 rows, ratings 3-5): config errors come first."""
    rows = [f"{u},{(u + 3 * j) % 30},{3 + (u + j) % 3},{1000 + 100 * j + u}"
            for u in range(20) for j in range(6)]
    path = tmp / "ratings.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


# ---------------------------------------------------------------------- case builders
def bad_file(content: str | bytes, *extra: str, name: str = "bad.csv"):
    def build(tmp: Path) -> list[str]:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return csv_run(path, tmp, *extra)
    return build


def bad_config(*extra: str):
    return lambda tmp: csv_run(good_csv(tmp), tmp, *extra)


def command(*argv: str):
    return lambda tmp: [a.replace("{tmp}", str(tmp)) for a in argv]


def parquet(table: pa.Table | bytes):
    def build(tmp: Path) -> list[str]:
        path = tmp / "bad.parquet"
        if isinstance(table, bytes):
            path.write_bytes(table)
        else:
            pq.write_table(table, path)
        return csv_run(path, tmp)
    return build


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in ("u.data", "u.item", "u.user", "u.genre"):
            zf.writestr(f"ml-100k/{member}", "1\t2\t3\t4\n" * 500)
    return buf.getvalue()


def mirror(zip_bytes: bytes, md5: str | None = None):
    """A local 'GroupLens mirror' (file:// URL) serving ml-100k.zip and its .md5."""
    def build(tmp: Path) -> list[str]:
        site = tmp / "mirror"
        site.mkdir()
        (site / "ml-100k.zip").write_bytes(zip_bytes)
        digest = md5 or hashlib.md5(zip_bytes).hexdigest()
        (site / "ml-100k.zip.md5").write_text(f"{digest}  ml-100k.zip\n")
        return ["data", "download", "ml-100k", "--base-url", site.as_uri(),
                "--data-dir", str(tmp / "datasets")]
    return build


def precomputed(rows, columns=("user_id", "item_id", "rank"), *, split=(), card=True,
                path: str | None = None):
    """Export good_csv's temporal split, write ``rows`` as the lists of fold 0 and run
    rule_popular next to the precomputed model (the run finishes; only it is refused)."""
    def build(tmp: Path) -> list[str]:
        data = good_csv(tmp)
        base = [*csv_dataset(data), "split=temporal", "~experiment"]
        assert main(["split", "export", str(tmp / "export"), *base, *split]) == 0
        folder = tmp / "export" / "fold0" if card else tmp
        lists = folder / "lists.parquet"
        table = pa.Table.from_pylist([dict(zip(columns, r, strict=True)) for r in rows])
        pq.write_table(table, lists)
        argv = csv_run(data, tmp, f"models.precomputed.path={path or lists}")
        return ["model=[rule_popular,precomputed]" if a == "model=[rule_popular]" else a
                for a in argv]
    return build


@dataclass(frozen=True)
class Case:
    id: str
    input: str            # what the user did, for the catalogue
    build: Callable[[Path], list[str]]
    pattern: str          # regex searched in the message line
    one_line: bool = True  # False: Hydra/argparse print their own (multi-line) usage text


ZIP = _zip_bytes()
H = HEADER
CASES = [
    # ------------------------------------------------------------------ data files
    Case("missing-file", "dataset.path points at a file that does not exist",
         lambda tmp: csv_run(tmp / "nope.csv", tmp),
         r"nope\.csv: the interactions file does not exist"),
    Case("renamed-column", "user column renamed (`usr`) in the header",
         bad_file("usr,item,stars,ts\n1,2,4,5\n"),
         r"bad\.csv: missing column\(s\) \['user'\]; found columns \['usr', 'item'"),
    Case("semicolon-sep", "file separated by `;`, read as comma",
         bad_file("user;item;stars;ts\n1;2;4;5\n"),
         r"bad\.csv: missing column.*separator looks wrong.*contains ';'; set sep=';'"),
    Case("tab-sep", "tab-separated file named .csv",
         bad_file("user\titem\tstars\tts\n1\t2\t4\t5\n"),
         r"bad\.csv: missing column.*separator looks wrong.*contains tab; set sep='\\t'"),
    Case("nan-item-id", "item id written as `NaN`",
         bad_file(H + "1,NaN,4,5\n"),
         r"bad\.csv: column 'item_id' \(file column 'item'\) has 1 missing/empty "
         r"id\(s\); first at data row 1: "
         r"expected a non-empty id, got 'NaN'"),
    Case("na-user-id", "user id written as `NA` (second row)",
         bad_file(H + "1,2,4,5\nNA,3,4,6\n"),
         r"bad\.csv: column 'user_id' \(file column 'user'\) has 1 missing/empty "
         r"id\(s\); first at data row 2: "
         r"expected a non-empty id, got 'NA'"),
    Case("empty-user-id", "empty user id field",
         bad_file(H + ",2,4,5\n"),
         r"bad\.csv: column 'user_id' \(file column 'user'\) has 1 missing/empty "
         r"id\(s\); first at data row 1: "
         r"expected a non-empty id"),
    Case("non-numeric-rating", "rating `x`",
         bad_file(H + "1,2,4,5\n1,3,x,6\n"),
         r"bad\.csv: column 'rating' has 1 non-numeric value\(s\); first at data row 2: "
         r"expected a number, got 'x'"),
    Case("empty-rating", "empty rating field",
         bad_file(H + "1,2,,5\n"),
         r"bad\.csv: column 'rating' has 1 missing value\(s\); first at data row 1: "
         r"expected a number"),
    Case("infinite-rating", "rating `inf`",
         bad_file(H + "1,2,inf,5\n"),
         r"bad\.csv: column 'rating' data row 1: expected a finite number, got inf"),
    Case("rating-above-scale", "rating 9 with rating_scale=[1,5]",
         bad_file(H + "1,2,4,5\n1,3,9,6\n"),
         r"bad\.csv: column 'rating' has 1 value\(s\) outside the declared scale \[1, 5\]; "
         r"first at data row 2: got 9"),
    Case("rating-below-scale", "rating 0 with rating_scale=[1,5]",
         bad_file(H + "1,2,0,5\n"),
         r"column 'rating' has 1 value\(s\) outside the declared scale \[1, 5\].*got 0"),
    Case("unparseable-timestamp", "timestamp `yesterday-ish`",
         bad_file(H + "1,2,4,yesterday-ish\n"),
         r"bad\.csv: column 'timestamp' has 1 unparseable value\(s\); first at data row 1: "
         r"expected Unix seconds or a date, got 'yesterday-ish'"),
    Case("negative-timestamp", "Unix timestamp -5",
         bad_file(H + "1,2,4,5\n1,3,4,-5\n"),
         r"bad\.csv: column 'timestamp' data row 2: expected a non-negative Unix time, got -5"),
    Case("pre-1970-date", "ISO date 1960-01-01 as timestamp",
         bad_file(H + "1,2,4,1960-01-01\n"),
         r"bad\.csv: column 'timestamp' data row 1: expected a time after 1970"),
    Case("timestamp-format", "timestamp not matching dataset.timestamp_format",
         bad_file(H + "1,2,4,03/02/2020\n1,3,4,2020-02-03\n",
                  "dataset.timestamp_format='%d/%m/%Y'"),
         r"bad\.csv: column 'timestamp' has 1 value\(s\) not matching timestamp_format "
         r"'%d/%m/%Y'; first at data row 2: got '2020-02-03'"),
    Case("duplicates-error", "repeated (user, item) pair under duplicates=error",
         bad_file(H + "1,2,4,5\n1,3,4,6\n1,2,3,7\n"),
         r"bad\.csv: 1 duplicate \(user_id, item_id\) row\(s\) under duplicates='error'; "
         r"first at data row 3: \(1, 2\).*keep_last, keep_first or mean"),
    Case("empty-file", "empty file (0 bytes)", bad_file(""),
         r"bad\.csv: the file is empty; expected data rows"),
    Case("blank-file", "file of blank lines", bad_file("\n  \n\n"),
         r"bad\.csv: the file is empty; expected data rows"),
    Case("header-only", "header line, no data rows", bad_file(H),
         r"bad\.csv: the file has a header line but no data rows"),
    Case("latin1-bytes", "latin-1 bytes (`caf\\xe9`) in a file read as UTF-8",
         bad_file((H + "1,2,4,5\n2,caf\xe9,4,6\n").encode("latin-1")),
         r"bad\.csv: cannot be read as utf-8 text \('utf-8' codec can't decode byte 0xe9"),
    Case("binary-garbage", "a binary file given as CSV", bad_file(bytes(range(256))),
         r"bad\.csv: cannot be read as utf-8 text"),
    Case("short-row", "a row with 3 of 4 fields",
         bad_file(H + "1,2,4,5\n1,3,4\n"),
         r"bad\.csv, line 3: expected 4 comma-separated fields, got 3: '1,3,4'"),
    Case("long-row", "a row with 5 of 4 fields",
         bad_file(H + "1,2,4,5,9\n"),
         r"bad\.csv, line 2: expected 4 comma-separated fields, got 5"),
    Case("unbalanced-quote", "an opening quote never closed",
         bad_file(H + '1,"2,4,5\n'),
         r"bad\.csv, line 2: expected 4 comma-separated fields, got 2"),
    Case("corrupt-parquet", "a .parquet file that is not Parquet",
         parquet(b"PAR1 this is not parquet"),
         r"bad\.parquet: not a readable Parquet file"),
    Case("parquet-missing-column", "Parquet table without the rating column",
         parquet(pa.table({"user": [1], "item": [2], "ts": [5]})),
         r"bad\.parquet: missing column\(s\) \['stars'\]; found columns \['user', 'item', 'ts'\]"),
    Case("items-file-missing", "dataset.items_path does not exist",
         bad_config("dataset.items_path={tmp}/no_items.csv"),
         r"no_items\.csv: the items file \(items_path\) does not exist"),
    Case("movielens-folder-missing", "dataset=ml_100k with an empty data_dir",
         command("dataset=ml_100k", "data_dir={tmp}", "tracker=none", "~experiment",
                 "model=[rule_popular]"),
         r"ml-100k.*bench data download"),
    Case("truncated-zip", "`bench data download` of a truncated ml-100k.zip (MD5 matches)",
         mirror(ZIP[:-200]),
         r"ml-100k\.zip: truncated or corrupt zip"),
    Case("zip-md5-mismatch", "`bench data download` whose zip fails the published MD5",
         mirror(ZIP, md5="0" * 32),
         r"ml-100k\.zip: MD5 checksum mismatch: expected 0{32}, got [0-9a-f]{32}; "
         r"the downloaded file was deleted"),
    Case("mirror-unreachable", "`bench data download --base-url` pointing nowhere",
         command("data", "download", "ml-100k", "--base-url", "file:///nonexistent/mirror",
                 "--data-dir", "{tmp}/datasets"),
         r"ml-100k\.zip\.md5: cannot connect"),
    # ------------------------------------------------------------------ configs
    Case("unknown-top-level-key", "`nosuchkey=1`", bad_config("nosuchkey=1"),
         r"nosuchkey: unknown config key \(not in configs/config\.yaml"),
    Case("unknown-eval-key", "`+eval.nosuch=1`", bad_config("+eval.nosuch=1"),
         r"eval: unknown key\(s\) \['nosuch'\]; expected some of"),
    Case("unknown-model-param", "`+models.rule_popular.bogus=1`",
         bad_config("+models.rule_popular.bogus=1"),
         r"models\.rule_popular: unknown key\(s\) \['bogus'\]"),
    Case("seed-not-int", "`seed=abc`", bad_config("seed=abc"),
         r"seed: expected an integer, got 'abc'"),
    Case("seeds-empty", "`seeds=[]`", bad_config("seeds=[]"),
         r"seeds: expected null or a non-empty list of distinct integers >= 0 "
         r"\(e\.g\. \[1, 2, 3\]\), got \[\]"),
    Case("seeds-repeated", "`seeds=[1,1]`", bad_config("seeds=[1,1]"),
         r"seeds: expected null or a non-empty list of distinct integers >= 0 .*got \[1, 1\]"),
    Case("seeds-negative", "`seeds=[1,-2]`", bad_config("seeds=[1,-2]"),
         r"seeds: expected null or a non-empty list of distinct integers >= 0 .*got \[1, -2\]"),
    Case("seeds-not-int", "`seeds=[1,a]`", bad_config("seeds=[1,a]"),
         r"seeds\[1\]: expected an integer, got 'a'"),
    Case("seeds-not-list", "`seeds=3`", bad_config("seeds=3"),
         r"seeds: expected null or a non-empty list of distinct integers >= 0 .*got 3"),
    Case("seed-spread-zero", "`check.seed_spread=0`", bad_config("check.seed_spread=0"),
         r"check\.seed_spread: expected a number > 0 or null \(off\), got 0"),
    Case("cutoffs-not-list", "`eval.cutoffs=abc`", bad_config("eval.cutoffs=abc"),
         r"eval\.cutoffs: expected a non-empty list of integers, got 'abc'"),
    Case("unknown-model", "`model=[no_such_model]`", bad_config("model=[no_such_model]"),
         r"model=no_such_model: no such option; expected one of \['cf_als'"),
    Case("cutoff-zero", "`eval.cutoffs=[0]`", bad_config("eval.cutoffs=[0]"),
         r"eval\.cutoffs: expected every k > 0, got \[0\]"),
    Case("cutoff-negative", "`eval.cutoffs=[-3]`", bad_config("eval.cutoffs=[-3]"),
         r"eval\.cutoffs: expected every k > 0, got \[-3\]"),
    Case("cutoffs-descending", "`eval.cutoffs=[10,5]`", bad_config("eval.cutoffs=[10,5]"),
         r"eval\.cutoffs: expected strictly ascending values, got \[10, 5\]"),
    Case("cutoffs-repeated", "`eval.cutoffs=[5,5]`", bad_config("eval.cutoffs=[5,5]"),
         r"eval\.cutoffs: expected strictly ascending values, got \[5, 5\]"),
    Case("quantile-above-1", "`split=temporal split.quantile=1.5`",
         bad_config("split.quantile=1.5"),
         r"split\.quantile: expected a number in \(0, 1\), got 1\.5"),
    Case("quantile-zero", "`split=temporal split.quantile=0`", bad_config("split.quantile=0"),
         r"split\.quantile: expected a number in \(0, 1\), got 0"),
    Case("holdout-fraction-1", "`split=holdout split.fraction=1.0`",
         bad_config("split=holdout", "split.fraction=1.0"),
         r"split\.fraction: expected a number in \(0, 1\), got 1\.0"),
    Case("holdout-fraction-negative", "`split=holdout split.fraction=-0.2`",
         bad_config("split=holdout", "split.fraction=-0.2"),
         r"split\.fraction: expected a number in \(0, 1\), got -0\.2"),
    Case("confidence-above-1", "`stats.confidence=1.5`", bad_config("stats.confidence=1.5"),
         r"stats\.confidence: expected a number in \(0, 1\), got 1\.5"),
    Case("target-outside-bench", "`models.rule_popular._target_=os.system`",
         bad_config("models.rule_popular._target_=os.system"),
         r"models\.rule_popular\._target_: expected a dotted path inside the 'bench' package, "
         r"got 'os\.system'"),
    Case("dataset-target-outside-bench", "`dataset._target_=subprocess.run`",
         bad_config("dataset._target_=subprocess.run"),
         r"dataset\._target_: expected a dotted path inside the 'bench' package, "
         r"got 'subprocess\.run'"),
    Case("target-does-not-exist", "`models.rule_popular._target_=bench.nope.Nope`",
         bad_config("models.rule_popular._target_=bench.nope.Nope"),
         r"models\.rule_popular\._target_: 'bench\.nope\.Nope' does not exist"),
    Case("unknown-duplicates-policy", "`dataset.duplicates=sometimes`",
         bad_config("dataset.duplicates=sometimes"),
         r"duplicates policy: expected one of \['error', 'keep_last', 'keep_first', 'mean'\], "
         r"got 'sometimes'"),
    Case("reversed-rating-scale", "`dataset.rating_scale=[5,1]`",
         bad_config("dataset.rating_scale=[5,1]"),
         r"rating_scale: expected low < high, got \[5, 1\]"),
    Case("unknown-canonical-column", "`+dataset.columns.score=stars`",
         bad_config("+dataset.columns.score=stars"),
         r"columns: unknown canonical name\(s\) \['score'\]"),
    Case("threshold-off-scale", "`eval.relevance_threshold=9` on a [1, 5] scale",
         bad_config("eval.relevance_threshold=9"),
         r"eval\.relevance_threshold: expected a value within the rating scale \[1, 5\]"),
    # ------------------------------------------------------------------ command line
    Case("unknown-subcommand", "`bench reprot x` (misspelt subcommand)",
         command("reprot", "x"), r"unknown command 'reprot'; expected one of \['data'"),
    Case("unknown-flag", "`bench --frobnicate`", command("--frobnicate"),
         r"unrecognized arguments: --frobnicate", one_line=False),
    Case("check-missing-baseline", "`bench check --baseline missing.json`",
         command("check", "--baseline", "{tmp}/missing.json", "tracker=none"),
         r"missing\.json: no baseline file; create it .*`bench check --update-baseline`"),
    Case("report-nowhere", "`bench report nowhere`",
         command("report", "nowhere", "--reports-dir", "{tmp}/reports"),
         r"run 'nowhere': expected a run folder with results\.json, or an experiment name"),
    Case("compare-missing-runs", "`bench compare a b` (no such runs)",
         command("compare", "a", "b", "--reports-dir", "{tmp}/reports"),
         r"run 'a': expected a run folder with results\.json"),
    Case("download-unknown-dataset", "`bench data download ml-nope`",
         command("data", "download", "ml-nope", "--data-dir", "{tmp}"),
         r"dataset name: expected one of \['ml-100k', .*\], got 'ml-nope'"),
    Case("perf-unknown-workload", "`bench perf nope`", command("perf", "nope"),
         r"invalid choice: 'nope'", one_line=False),
    # ------------------------------------------------------------------ precomputed lists
    Case("precomputed-missing-file", "`models.precomputed.path` names no file",
         precomputed([(0, 1, 1)], path="{tmp}/nope.parquet"),
         r"model precomputed \(fold 0\) failed: DataError: .*nope\.parquet: the precomputed "
         r"list file does not exist"),
    Case("precomputed-no-rank", "list file with `user_id, item_id` only",
         precomputed([(0, 1)], ("user_id", "item_id")),
         r"lists\.parquet: missing column\(s\) \['rank or score'\]; expected user_id, "
         r"item_id and rank or score"),
    Case("precomputed-unknown-users", "lists for users 998 and 999, not in the dataset",
         precomputed([(0, 1, 1), (999, 1, 1), (998, 2, 1)]),
         r"lists\.parquet: 2 row\(s\) name 2 unknown users \(column 'user_id', not in "
         r"the split's vocabulary\), e\.g\. \[999, 998\]"),
    Case("precomputed-duplicate-pair", "item 1 listed twice for user 0",
         precomputed([(0, 1, 1), (0, 1, 2)]),
         r"lists\.parquet: 1 duplicate \(user_id, item_id\) pair\(s\); first at data "
         r"row 2: \(0, 1\)"),
    Case("precomputed-other-split", "lists made on `split.quantile=0.5`, run on 0.8",
         precomputed([(0, 1, 1)], split=("split.quantile=0.5",)),
         r"lists\.parquet: lists made on a different split: card .*split\.json gives fold "
         r"0 train [0-9a-f]{64}; the train this model is fitted on has fingerprint "
         r"[0-9a-f]{64}"),
    Case("precomputed-no-card", "a list file with no split card anywhere",
         precomputed([(0, 1, 1)], card=False),
         r"lists\.parquet: no split card found \(looked for lists\.parquet\.json"),
    Case("split-export-not-empty", "`bench split export DIR` into a non-empty folder",
         lambda tmp: [*command("split", "export", "{tmp}", "split=temporal")(tmp),
                      *csv_dataset(good_csv(tmp))],
         r": folder is not empty; choose a new folder or pass --force"),
    # ------------------------------------------------------------------ code from configs
    Case("target-function", "a model `_target_` naming a function (bench.atomic.atomic_write_text)",
         bad_config("+models.evil={_target_: bench.atomic.atomic_write_text, "
                    "path: {tmp}/probe, text: x}"),
         r"models\.evil\._target_: expected a Recommender subclass "
         r"\(bench\.models\.base\.Recommender\), got the function "
         r"'bench\.atomic\.atomic_write_text'"),
    Case("target-wrong-kind", "`split._target_` naming a model class",
         bad_config("split._target_=bench.models.rule.popular.PopularityRecommender"),
         r"split\._target_: expected a splitter class \(a subclass of "
         r"bench\.splits\.base\.Splitter\), got the class "
         r"'bench\.models\.rule\.popular\.PopularityRecommender'"),
    Case("dataset-target-not-a-loader", "`dataset._target_` naming an unregistered function",
         bad_config("dataset._target_=bench.data.tabular.read_header"),
         r"dataset\._target_: expected a dataset loader \(registered with @dataset_loader\), "
         r"got the function 'bench\.data\.tabular\.read_header'"),
    Case("target-private-module", "a `_target_` inside a private module (bench.perf.__main__)",
         bad_config("+models.x={_target_: bench.perf.__main__.main}"),
         r"models\.x\._target_: expected a public dotted path \(no component starting with "
         r"'_'\), got 'bench\.perf\.__main__\.main'"),
    Case("target-undeclared-plugin", "a model class from a package not declared as a plug-in",
         bad_config("+models.mine={_target_: myrec.models.Cooccur}"),
         r"models\.mine\._target_: expected a dotted path inside the 'bench' package, got "
         r"'myrec\.models\.Cooccur'; other code must be declared as a plug-in "
         r"\(BENCH_PLUGINS or the 'recspectrum\.plugins' entry point\)"),
    Case("hydra-callback-override", "`+hydra.callbacks.x._target_=...` on the command line",
         bad_config("+hydra.callbacks.x._target_=bench.atomic.atomic_write_text"),
         r"hydra\.callbacks\.x\._target_: a callback from the command line runs code; "
         r"expected a Hydra Callback class inside a declared plug-in"),
    Case("hydra-callbacks-mapping", "`hydra.callbacks={x: {_target_: os.system}}`",
         bad_config("hydra.callbacks={x: {_target_: os.system}}"),
         r"hydra\.callbacks\.x\._target_: a callback from the command line runs code.*"
         r"got 'os\.system'"),
    Case("hydra-logging-factory", "`++hydra.job_logging.handlers.x.class=os.system`",
         bad_config("++hydra.job_logging.handlers.x.class=os.system"),
         r"hydra\.job_logging\.handlers\.x\.class: a logging 'class' key imports and calls "
         r"what it names"),
    Case("hydra-searchpath-override", "`hydra.searchpath=[file:///elsewhere]`",
         bad_config("hydra.searchpath=[file:///elsewhere]"),
         r"hydra\.searchpath: config folders from the command line could set hydra\.callbacks; "
         r"expected BENCH_CONFIG_DIR or a declared plug-in's config folder instead"),
    Case("name-escapes", "`name=../x` (the run folder is <report.dir>/<name>/...)",
         bad_config("name=../x"),
         r"name: expected a plain name \(letters, digits, '_', '-', '\.'; not starting with "
         r"'\.' or '-'; no '/' or '\\'; at most 128 characters\), got '\.\./x'"),
    Case("name-with-separator", "`name=a/b`", bad_config("name=a/b"),
         r"name: expected a plain name .*got 'a/b'"),
    Case("n-resamples-beyond-memory", "`stats.n_resamples=1000000000` (used to train "
         "everything, then die with MemoryError)", bad_config("stats.n_resamples=1000000000"),
         r"stats\.n_resamples: expected at most [\d,]+ \(bootstrap: resamples x \d+ metric "
         r"columns x 16 bytes = [\d.]+ GiB > the 8\.0 GiB memory budget\), got 1000000000"),
    Case("curve-k-beyond-memory", "`report.curve_k=100000000`",
         bad_config("report.curve_k=100000000"),
         r"report\.curve_k: expected a list length of at most 100,000 \(top-k lists take 10 "
         r"bytes per user and rank\), got 100000000"),
    Case("cutoff-beyond-memory", "`eval.cutoffs=[5,1000000]`",
         bad_config("eval.cutoffs=[5,1000000]"),
         r"eval\.cutoffs: expected a list length of at most 100,000 .*got \[5, 1000000\]"),
]

# ------------------------------------------------------------------ the gate's baseline
def gate_baseline(edit: Callable[[dict], object]):
    """Write a baseline with `bench check --update-baseline` on good_csv, ``edit`` its JSON,
    and check against it: the gate must refuse what it cannot compare (issue 15)."""
    def build(tmp: Path) -> list[str]:
        argv = ["check", *csv_run(good_csv(tmp), tmp, "check.metrics=[ndcg@5]")]
        path = tmp / "ci.json"
        assert main([*argv, "--baseline", str(path), "--update-baseline"]) == 0
        payload = json.loads(path.read_text())
        edit(payload)
        path.write_text(json.dumps(payload))
        return [*argv, "--baseline", str(path)]
    return build


def _per_user(column: str, f: Callable[[object], object]) -> Callable[[dict], None]:
    return lambda d: d["per_user"].update({column: [f(v) for v in d["per_user"][column]]})


CASES += [
    Case("check-baseline-other-users", "baseline per-user rows with other user ids",
         gate_baseline(_per_user("user_id", lambda u: u + 1000)),
         r"baseline .*ci\.json: model rule_popular fold 0 has 0 of \d+ users in common with "
         r"this run \(this run has \d+ others\); expected the same users"),
    Case("check-baseline-other-folds", "baseline per-user rows numbered fold 3",
         gate_baseline(_per_user("fold", lambda f: 3)),
         r"baseline .*ci\.json: model rule_popular fold 3 \(\d+ users\) is not a fold of "
         r"this run \(it has fold\(s\) \[0\]\); expected the same folds"),
    Case("check-baseline-null-metric", "baseline with every ndcg@5 value null",
         gate_baseline(_per_user("ndcg@5", lambda v: None)),
         r"baseline .*ci\.json: model rule_popular ndcg@5 \[all\]: the baseline has no "
         r"ndcg@5 values \(this run has values for \d+ users\)"),
    Case("check-baseline-other-models", "baseline models renamed (models and per-user rows)",
         gate_baseline(lambda d: (d.update(models={"old": d["models"]["rule_popular"]}),
                                  _per_user("model", lambda m: "old")(d))),
         r"baseline .*ci\.json: no model in common with this run \(the baseline has "
         r"\['old'\], this run \['rule_popular'\]\), so there is nothing to compare"),
    Case("check-baseline-empty-table", "baseline whose per-user table has no rows",
         gate_baseline(lambda d: d.update(per_user={c: [] for c in d["per_user"]})),
         r"ci\.json: per_user has no rows, so there is nothing to compare with"),
]


# ------------------------------------------------------------------ issue 15: values
def side_file(key: str, content: str | bytes, name: str):
    """good_csv plus a side file (``items_path``, ``exclude_users``) holding ``content``."""
    def build(tmp: Path) -> list[str]:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return csv_run(good_csv(tmp), tmp, f"dataset.{key}={path}")
    return build


def large_with_bad_last_row(tmp: Path) -> list[str]:
    """50,000 good rows, then one timestamp that is not a time."""
    rows = [f"{i % 1000},{i // 1000},4,{1_000_000 + i}" for i in range(50_000)]
    rows[-1] = "7,999,4,not-a-time"
    path = tmp / "big.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return csv_run(path, tmp)


CASES += [
    Case("timestamp-beyond-int64", "timestamp 99999999999999999999 (used to wrap to a negative "
         "int64 silently)", bad_file(H + "1,2,4,5\n1,3,4,99999999999999999999\n"),
         r"bad\.csv: column 'timestamp' has 1 value\(s\) after 9999-12-31 as Unix seconds; "
         r"first at data row 2: got 1e\+20\. Expected Unix times from 1970 to 9999"),
    Case("timestamp-milliseconds", "Unix milliseconds (used to be read as seconds, year 52000)",
         bad_file(H + "1,2,4,1600000000000\n1,3,4,1600000001000\n"),
         r"bad\.csv: column 'timestamp' has 2 value\(s\) after 9999-12-31 as Unix seconds; "
         r"first at data row 1: got 1600000000000\. They look like Unix milliseconds: set the "
         r"dataset's timestamp_unit to 'ms' \(dataset\.timestamp_unit=ms\)"),
    Case("timestamp-microseconds", "Unix microseconds",
         bad_file(H + "1,2,4,1600000000000000\n"),
         r"They look like Unix microseconds: set the dataset's timestamp_unit to 'us'"),
    Case("timestamp-beyond-unit", "milliseconds beyond 9999 under `dataset.timestamp_unit=ms`",
         bad_file(H + "1,2,4,1600000000000\n1,3,4,999999999999999\n",
                  "dataset.timestamp_unit=ms"),
         r"bad\.csv: column 'timestamp' has 1 value\(s\) after 9999-12-31 as Unix "
         r"milliseconds; first at data row 2: got 999999999999999\. Expected Unix times "
         r"from 1970 to 9999 \(at most 253402300799000 in milliseconds\)"),
    Case("timestamp-unit-unknown", "`dataset.timestamp_unit=minutes`",
         bad_config("dataset.timestamp_unit=minutes"),
         r"timestamp_unit: expected one of \['s', 'ms', 'us', 'ns'\] or null, got 'minutes'"),
    Case("timestamp-mixed-kinds", "Unix times and ISO dates in one column (used to crash or "
         "blame the wrong rows)", bad_file(H + "1,2,4,1600000000\n1,3,4,1600000100\n"
                                           "1,4,4,2020-09-13\n"),
         r"bad\.csv: column 'timestamp' mixes 2 Unix time\(s\) with 1 date\(s\); first "
         r"date at data row 3: '2020-09-13'\. Expected one kind"),
    Case("timestamp-bad-last-row", "50,000 rows, the last timestamp `not-a-time` (used to be "
         "'50000 unparseable, first at row 1')", large_with_bad_last_row,
         r"big\.csv: column 'timestamp' has 1 unparseable value\(s\); first at data row "
         r"50000: expected Unix seconds or a date, got 'not-a-time'"),
    Case("timestamp-after-9999", "ISO date 10000-01-01", bad_file(H + "1,2,4,10000-01-01\n"),
         r"bad\.csv: column 'timestamp' has 1 unparseable value\(s\); first at data row 1"),
    Case("ids-two-spellings", "user ids `7` and `007` in one column (used to be two users)",
         bad_file(H + "007,2,4,5\n7,3,4,6\nu1,2,4,7\n"),
         r"bad\.csv: column 'user_id' \(file column 'user'\): ids '007' \(data row 1\) and "
         r"'7' \(data row 2\) are the same number written two ways.*write every id the same "
         r"way"),
    Case("ids-nul-byte", "a NUL byte inside an item id", bad_file(H + "1,2\x00,4,5\n1,3,4,6\n"),
         r"bad\.csv: column 'item_id' \(file column 'item'\) has 1 id\(s\) with a control "
         r"character \(NUL, tab, line break\); first at data row 1: got '2\\x00'"),
    Case("repeated-header-line", "two files joined with their headers (the header used to "
         "become a user)", bad_file(H + "1,2,4,5\n" + H + "2,3,4,6\n", "dataset.implicit=true"),
         r"bad\.csv: data row 2 repeats the header line \(1 such row\(s\), e\.g\. user "
         r"'user', item 'item'\); expected data rows only"),
    Case("items-duplicate-id", "an items file listing item 1 twice (used to keep the first "
         "silently)", side_file("items_path", "item,title,genres\n1,A,x\n2,B,y\n1,C,z\n",
                                "items.csv"),
         r"items\.csv: column 'item': item 1 is on data rows 1 and 3 \(1 repeated id\(s\) in "
         r"all\); expected one row per item"),
    Case("items-genre-separator", "genres written `Action;Comedy` (used to be one genre)",
         side_file("items_path", "item,title,genres\n1,A,Action;Comedy\n2,B,Drama\n",
                   "items.csv"),
         r"items\.csv: column 'genres': no value is separated by '\|', but data row 1 has "
         r"'Action;Comedy'; expected '\|'-separated genres: set dataset\.genre_sep=';'"),
    Case("items-match-nothing", "an items file whose ids match no interaction item",
         side_file("items_path", "item,title\n901,A\n902,B\n", "items.csv"),
         r"items\.csv: none of the 2 item ids in column 'item' is an item of the interactions "
         r"\(e\.g\. 901 here, 0 there\)"),
    Case("items-fractional-id", "item id `2.5` in the items file (used to become item 2)",
         side_file("items_path", "item,title\n1,A\n2.5,B\n", "items.csv"),
         r"items\.csv: column 'item' data row 2: expected an integer item id like the "
         r"interactions', got '2\.5'"),
    Case("items-bad-year", "year `soon` in the items file (used to become unknown silently)",
         side_file("items_path", "item,title,year\n1,A,1995\n2,B,soon\n", "items.csv"),
         r"items\.csv: column 'year' data row 2: expected a whole year such as 1995"),
    Case("items-corrupt-parquet", "an items .parquet that is not Parquet (used to be a "
         "traceback)", side_file("items_path", b"PAR1 nope", "items.parquet"),
         r"items\.parquet: not a readable Parquet file"),
    Case("genre-sep-blank", "`dataset.genre_sep=''`", bad_config("dataset.genre_sep=''"),
         r"genre_sep: expected a non-blank separator such as '\|', got ''"),
    Case("exclusion-matches-nobody", "an exclusion list none of whose ids is a user (used to "
         "remove nobody without a word)", side_file("exclude_users", "900\n901\n", "ex.txt"),
         r"ex\.txt: none of the 2 user id\(s\) listed to exclude is a user of .*ratings\.csv "
         r"\(e\.g\. listed 900, data has 0\)"),
    Case("exclusion-file-missing", "`dataset.exclude_users` names no file",
         bad_config("dataset.exclude_users={tmp}/nope.txt"),
         r"nope\.txt: exclusion file \(exclude_users\) does not exist"),
    Case("exclusion-not-integer", "exclusion list id `u7` for integer user ids",
         side_file("exclude_users", "3\nu7\n", "ex.txt"),
         r"ex\.txt, line 2: expected an integer user id \(the data's user ids are integers\), "
         r"got 'u7'"),
]


# ---------------------------------------------------------------------- run folders read back,
# sweeps and folders that cannot be written (issue 15: faults)
def run_folder(damage: Callable[[Path], object] | None = None, *, command: str = "report"):
    """A finished run of good_csv (``damage`` applied to its folder), read back by
    ``bench report FOLDER`` or ``bench compare FOLDER FOLDER``."""
    def build(tmp: Path) -> list[str]:
        assert main(csv_run(good_csv(tmp), tmp, "stats.n_resamples=20")) == 0
        (folder,) = (tmp / "reports").glob("*/*/results.json")
        if damage is not None:
            damage(folder.parent)
        return ["report", str(folder.parent)] if command == "report" else [
            "compare", str(folder.parent), str(folder.parent)]
    return build


def stopped_run(tmp: Path) -> Path:
    """What a killed run leaves: Hydra's files and config.json, no results.json."""
    folder = tmp / "reports" / "exp" / "20300101-000000-abcdef"
    (folder / ".hydra").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def _edit_results(folder: Path) -> None:
    raw = json.loads((folder / "results.json").read_text())
    raw["models"][0]["metrics"]["ndcg@5"] = 1.0
    (folder / "results.json").write_text(json.dumps(raw))


def _rewrite_per_user(folder: Path) -> None:
    frame = pq.read_table(folder / "per_user.parquet").to_pandas()
    frame.loc[0, "ndcg@5"] = 1.0
    frame.to_parquet(folder / "per_user.parquet", index=False)


def _under_a_file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("not a folder")
    return tmp / "a_file"


CASES += [
    Case("sweep-name-path", "`bench -m name=ok,../x` (a sweep job's name is a path)",
         lambda tmp: ["-m", *csv_run(good_csv(tmp), tmp), "name=ok,../x"],
         r"^bench: error: name: expected a plain name .*got '\.\./x'$"),
    Case("sweep-later-job-bad", "`bench -m eval.cutoffs=[5],[0]` (the second job is bad)",
         lambda tmp: ["-m", *csv_run(good_csv(tmp), tmp), "eval.cutoffs=[5],[0]"],
         r"eval\.cutoffs: expected every k > 0, got \[0\]"),
    Case("report-stopped-run", "`bench report FOLDER` of a run killed before results.json",
         lambda tmp: ["report", str(stopped_run(tmp))],
         r"20300101-000000-abcdef: run folder incomplete \(no results\.json\): it was "
         r"stopped or failed before it finished; run the same command with resume=true"),
    Case("report-name-only-stopped", "`bench report NAME` whose only run was killed",
         lambda tmp: (stopped_run(tmp), ["report", "exp", "--reports-dir",
                                         str(tmp / "reports")])[1],
         r"reports/exp: no finished run \(no results\.json in any run folder\); the "
         r"latest, 20300101-000000-abcdef, is incomplete: .* resume=true"),
    Case("report-truncated-results", "`bench report` with results.json cut in half",
         run_folder(lambda f: (f / "results.json").write_bytes(
             (f / "results.json").read_bytes()[:500])),
         r"results\.json: cannot read it as JSON"),
    Case("report-edited-results", "`bench report` with a number in results.json changed",
         run_folder(_edit_results),
         r"results\.json: changed or damaged since the run wrote it \(its digest does not "
         r"match its content\); rerun the experiment"),
    Case("report-garbage-parquet", "`bench report` with per_user.parquet overwritten",
         run_folder(lambda f: (f / "per_user.parquet").write_bytes(b"PAR1 garbage PAR1")),
         r"per_user\.parquet: changed or damaged since the run wrote it"),
    Case("compare-edited-parquet", "`bench compare` with a value in per_user.parquet changed",
         run_folder(_rewrite_per_user, command="compare"),
         r"per_user\.parquet: changed or damaged since the run wrote it \(its SHA-256 does "
         r"not match results\.json\)"),
    Case("report-missing-card", "`bench report` with card.json deleted",
         run_folder(lambda f: (f / "card.json").unlink()),
         r"card\.json: missing, though results\.json lists it; the run folder is damaged: "
         r"rerun the experiment"),
    Case("report-dir-under-a-file", "report.dir inside a path that is a file",
         lambda tmp: csv_run(good_csv(tmp), tmp, f"report.dir={_under_a_file(tmp)}/runs"),
         r"report\.dir: cannot write run folders under '.*a_file/runs' \(.*a_file: Not a "
         r"directory\); set report\.dir to a folder you can write"),
    Case("artifact-root-under-a-file", "tracker.artifact_root inside a path that is a file",
         lambda tmp: [a for a in csv_run(good_csv(tmp), tmp) if a != "tracker=none"] + [
             f"tracker.tracking_uri=sqlite:///{tmp}/mlflow.db",
             f"tracker.artifact_root={_under_a_file(tmp)}/art"],
         r"tracker\.artifact_root: cannot write MLflow artifacts to '.*a_file/art' "
         r"\(.*\); make it writable"),
]


#: One case per kind of input (file, Parquet, download, config key, command line) for the
#: fast tier; every case costs a CLI start (~0.25 s), so the rest are marked slow.
FAST_CASES = {
    "missing-file", "semicolon-sep", "nan-item-id", "rating-above-scale",
    "unparseable-timestamp", "short-row", "corrupt-parquet", "zip-md5-mismatch",
    "unknown-top-level-key", "cutoffs-descending", "target-outside-bench",
    "unknown-subcommand", "unknown-flag", "timestamp-milliseconds", "ids-two-spellings",
    "items-duplicate-id", "report-stopped-run",
}
assert FAST_CASES <= {c.id for c in CASES}, "FAST_CASES names a case that does not exist"

_rows: dict[str, tuple[str, str, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def write_catalogue():
    yield
    if not _rows or not CATALOGUE:
        return
    lines = ["| # | input | message (stderr) | exit |", "|---|---|---|---|"]
    for n, case in enumerate(c for c in CASES if c.id in _rows):
        inp, msg, code = _rows[case.id]
        msg = msg.replace("|", "\\|")
        lines.append(f"| {n + 1} | {inp} | `` {msg} `` | {code} |")
    Path(CATALOGUE).write_text("\n".join(lines) + "\n")


def _message(err: str, one_line: bool) -> str:
    mine = [x for x in err.splitlines() if x.startswith("bench: error:")]
    if one_line:
        assert len(mine) == 1, f"expected one 'bench: error:' line, got:\n{err}"
        return mine[0]
    lines = [x for x in err.splitlines() if x.strip()]
    return next((x for x in lines if re.search(r"error|Could not|Error", x)), lines[0])


def test_catalogue_is_large_enough():
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=() if c.id in FAST_CASES else pytest.mark.slow) for c in CASES
])
def test_bad_input_exits_2_naming_the_problem(case, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.build(tmp_path)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    line = _message(err, case.one_line)
    assert re.search(case.pattern, line), f"{case.pattern!r} not in {line!r}"
    shown = line.replace(str(tmp_path), "<tmp>").replace(Path.cwd().as_posix(), ".")
    _rows[case.id] = (case.input, shown, code)


# ---------------------------------------------------------------------- duplicate policies
def _dup_table(tmp: Path) -> Path:
    """20 users x 6 rows plus 3 repeated pairs: (0, 0) twice more, (1, 1) once more."""
    rows = [f"{u},{(u % 2) + 2 * j},{3 + (u + j) % 3},{1000 + 100 * j + u}"
            for u in range(20) for j in range(6)]
    # (0, 0) first seen at ts 1000 with rating 3; (1, 1) at ts 1001 with rating 4
    rows += ["0,0,5,99999", "0,0,1,99998", "1,1,2,5"]
    path = tmp / "dups.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


@pytest.mark.slow  # a full run per policy; tests/data/test_interactions.py covers each fast
@pytest.mark.parametrize(
    ("policy", "rating_00", "rating_11"),
    [("keep_last", 5.0, 4.0), ("keep_first", 3.0, 2.0), ("mean", 3.0, 3.0)],
)
def test_duplicate_policies_count_and_report_the_dropped_rows(
    policy, rating_00, rating_11, tmp_path, capsys
):
    path = _dup_table(tmp_path)
    code = main(csv_run(path, tmp_path, f"dataset.duplicates={policy}"))
    out = capsys.readouterr()
    assert code == 0, out.err
    (results,) = (tmp_path / "reports").rglob("results.json")
    drops = json.loads(results.read_text())["dataset"]["drops"]
    assert drops == {f"duplicates_{policy}": 3}
    log = (out.out + out.err + "".join(p.read_text() for p in results.parent.rglob("*.log")))
    assert f"'duplicates_{policy}': 3" in log
    # the surviving rating of each repeated pair follows the policy
    ds = load_table(path=path, duplicates=policy, columns=RATINGS_COLUMNS)
    frame = ds.interactions.to_frame().set_index(["user_id", "item_id"])
    assert len(frame) == 120
    assert frame.loc[(0, 0), "rating"] == rating_00
    assert frame.loc[(1, 1), "rating"] == rating_11


def test_utf8_bom_header_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("\ufeff" + HEADER + "1,2,4,5\n1,3,5,6\n")
    ds = load_table(path=path, columns=RATINGS_COLUMNS)
    assert ds.interactions.to_frame()["rating"].tolist() == [4.0, 5.0]
