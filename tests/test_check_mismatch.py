"""``bench check`` never passes on less than its baseline promises (issue 15, point 1).

A baseline promises, for every model it shares with the run, each gated (metric, segment)
on exactly its users with a value. Each case edits a copy of a freshly written baseline
so that some of that promise cannot be kept (other user ids, model names, fold numbers,
segment labels, metrics; missing values; an empty table) and checks that the gate exits 2
with one ``bench: error:`` line naming what did not match. Before the fix every one of
them printed "PASS" over 0 (or fewer) paired tests and exited 0.
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest

from bench.check.command import run_check
from bench.check.promise import key_mismatches, label_mismatches, value_mismatch
from bench.cli import main
from tests.helpers import CONFIG_DIR

SMALL = ["dataset=synthetic", "dataset.n_users=300", "dataset.n_items=120",
         "dataset.n_interactions=9000", "tracker=none"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """A baseline written by ``--update-baseline`` on the small synthetic data, as JSON."""
    tmp = tmp_path_factory.mktemp("promise")
    code = run_check([*SMALL, f"report.dir={tmp / 'reports'}"], config_dir=CONFIG_DIR,
                     baseline=str(tmp / "base.json"), update=True, out=io.StringIO())
    assert code == 0
    return json.loads((tmp / "base.json").read_text())


# ---------------------------------------------------------------------- edits
def column(name: str, f: Callable) -> Callable[[dict], None]:
    """Replace every value ``v`` of per_user column ``name`` by ``f(v)``."""
    def edit(d: dict) -> None:
        d["per_user"][name] = [f(v) for v in d["per_user"][name]]
    return edit


def rows(keep: Callable[[int, dict], bool], drop: bool = False) -> Callable[[dict], None]:
    """Keep the per_user rows ``i`` for which ``keep(i, row)`` holds (``row``: column ->
    value); with ``drop``, the others."""
    def edit(d: dict) -> None:
        cols = d["per_user"]
        n = len(cols["model"])
        kept = [i for i in range(n) if keep(i, {c: v[i] for c, v in cols.items()}) != drop]
        d["per_user"] = {c: [v[i] for i in kept] for c, v in cols.items()}
    return edit


def null_where(name: str, pick: Callable[[int, dict], bool]) -> Callable[[dict], None]:
    """Null the values of column ``name`` in the rows ``pick`` selects."""
    def edit(d: dict) -> None:
        cols = d["per_user"]
        cols[name] = [None if pick(i, {c: v[i] for c, v in cols.items()}) else x
                      for i, x in enumerate(cols[name])]
    return edit


def renamed_models(d: dict) -> None:
    column("model", lambda m: f"{m}_old")(d)
    d["models"] = {f"{m}_old": v for m, v in d["models"].items()}


def other_metrics(d: dict) -> None:
    d["metrics"] = ["map@10"]
    d["per_user"]["map@10"] = d["per_user"]["ndcg@10"]


def first_of(model: str, n: int) -> Callable[[int, dict], bool]:
    """The first ``n`` rows of ``model``."""
    seen: list[int] = []

    def pick(i: int, row: dict) -> bool:
        if row["model"] == model and len(seen) < n:
            seen.append(i)
            return True
        return False
    return pick


def moved_bucket(d: dict) -> None:
    cols = d["per_user"]
    i = cols["model"].index("cf_als")
    cols["history_bucket"][i] = "101+" if cols["history_bucket"][i] != "101+" else "1-5"


@dataclass(frozen=True)
class Mismatch:
    id: str
    edit: Callable[[dict], None]
    pattern: str
    extra: tuple[str, ...] = ()


MISMATCHES = [
    # ------------------------------------------------------------- users, folds, models
    Mismatch("other-user-ids", column("user_id", lambda u: u + 100_000),
             r"model rule_popular fold 0 has 0 of (\d+) users in common with this run "
             r"\(this run has \1 others\); expected the same users \(is this the same split\?\) "
             r"\(and 5 more mismatch\(es\)\)$"),
    Mismatch("user-ids-as-text", column("user_id", str),
             r"model rule_popular fold 0 has 0 of \d+ users in common with this run"),
    Mismatch("fewer-users", rows(first_of("cf_als", 10), drop=True),
             r"model cf_als fold 0 has (\d+) of \1 users in common with this run \(this run "
             r"has 10 others\); expected the same users"),
    Mismatch("other-fold-numbers", column("fold", lambda f: f + 7),
             r"model rule_popular fold 7 \(\d+ users\) is not a fold of this run \(it has "
             r"fold\(s\) \[0\]\); expected the same folds \(is this the same split\?\) "
             r"\(and 11 more mismatch\(es\)\)$"),
    Mismatch("fold-numbers-as-text", column("fold", str),
             r"model rule_popular fold '0' \(\d+ users\) is not a fold of this run \(it has "
             r"fold\(s\) \[0\]\)"),
    Mismatch("other-model-names-in-rows", column("model", lambda m: f"{m}_old"),
             r"per_user holds rows of model\(s\) \['rule_popular_old', .*\] that models does "
             r"not list \(\['rule_popular', .*\]\)"),
    Mismatch("other-model-names", renamed_models,
             r"no model in common with this run \(the baseline has \['rule_popular_old', .*\], "
             r"this run \['rule_popular', .*\]\), so there is nothing to compare"),
    Mismatch("model-without-rows", rows(lambda i, r: r["model"] != "cf_als"),
             r"model\(s\) \['cf_als'\] listed in models have no per_user rows"),
    # ------------------------------------------------------------- values
    Mismatch("all-null-metric", column("ndcg@10", lambda v: None),
             r"model rule_popular ndcg@10 \[all\]: the baseline has no ndcg@10 values \(this "
             r"run has values for \d+ users\); expected values for the same users"),
    Mismatch("all-null-metrics", lambda d: [column(m, lambda v: None)(d) for m in d["metrics"]],
             r"model rule_popular precision@10 \[all\]: the baseline has no precision@10 "
             r"values"),
    Mismatch("some-null-values", null_where("recall@10", first_of("cf_item_knn", 4)),
             r"model cf_item_knn recall@10 \[all\]: the baseline has no value for 4 of this "
             r"run's \d+ users with one; expected values for the same users"),
    Mismatch("empty-per-user-table", rows(lambda i, r: False),
             r"per_user has no rows, so there is nothing to compare with \(models lists "
             r"\['rule_popular', .*\]\)"),
    Mismatch("metric-column-missing", lambda d: d["per_user"].pop("ndcg@10"),
             r"per_user lacks column\(s\) \['ndcg@10'\]"),
    Mismatch("other-metrics", other_metrics,
             r"check\.metrics \['precision@10', 'recall@10', 'ndcg@10'\] are not in the "
             r"baseline \(it has \['map@10'\]\)"),
    # ------------------------------------------------------------- segments
    Mismatch("other-history-buckets", column("history_bucket", lambda b: f"old {b}"),
             r"(\d+) of \1 per-user rows have another history_bucket in this run than in the "
             r"baseline \(e\.g\. model rule_popular fold 0 user \d+: baseline 'old [^']+', run "
             r"'[^']+'\); expected the same segments"),
    Mismatch("user-in-another-bucket", moved_bucket,
             r"1 of \d+ per-user rows have another history_bucket .*model cf_als fold 0"),
    Mismatch("no-history-buckets", lambda d: d["per_user"].pop("history_bucket"),
             r"check\.segments gates 'history_bucket' but the baseline has no history_bucket "
             r"labels \(this run has\)"),
    Mismatch("no-rule-segments", lambda d: d["per_user"].pop("segment"),
             r"check\.segments gates 'segment' but the baseline has no segment labels",
             extra=("check.segments=[all,segment]",)),
    Mismatch("rule-segments-nowhere",
             lambda d: (d["per_user"].pop("segment"), d["models"].pop("rule_segment"),
                        rows(lambda i, r: r["model"] != "rule_segment")(d)),
             r"check\.segments gates 'segment' but neither the baseline nor this run has "
             r"segment labels; remove it from check\.segments",
             extra=("check.segments=[all,segment]", "~models.rule_segment")),
]


@pytest.mark.slow  # a gate run each (about 5 s), but for those refused before the run
@pytest.mark.parametrize("case", MISMATCHES, ids=[c.id for c in MISMATCHES])
def test_each_mismatch_exits_2_with_one_line_saying_what(case, made, tmp_path, capsys):
    edited = copy.deepcopy(made)
    case.edit(edited)
    path = tmp_path / "ci.json"
    path.write_text(json.dumps(edited))
    code = main(["check", *SMALL, f"report.dir={tmp_path / 'reports'}", *case.extra,
                 "--baseline", str(path)])
    out, err = capsys.readouterr()
    assert code == 2, out[-2000:] + err[-2000:]
    assert "PASS" not in out and "Traceback" not in err
    mine = [line for line in err.splitlines() if line.startswith("bench: error:")]
    assert len(mine) == 1, err
    assert mine[0].startswith(f"bench: error: baseline {path}: ") or \
        mine[0].startswith(f"bench: error: {path}: ")
    assert re.search(case.pattern, mine[0]), f"{case.pattern!r} not in {mine[0]!r}"


@pytest.mark.slow
def test_the_unedited_baseline_still_passes_and_a_model_missing_from_it_is_reported(
        made, tmp_path, capsys):
    path = tmp_path / "ci.json"
    path.write_text(json.dumps(made))
    argv = ["check", *SMALL, f"report.dir={tmp_path / 'reports'}"]
    assert main([*argv, "--baseline", str(path)]) == 0
    assert "**PASS**" in capsys.readouterr().out
    # a model only in the run is reported, not failed: the others keep their promise
    fewer = copy.deepcopy(made)
    fewer["models"].pop("cf_als")
    rows(lambda i, r: r["model"] != "cf_als")(fewer)
    path.write_text(json.dumps(fewer))
    assert main([*argv, "--baseline", str(path)]) == 0
    out = capsys.readouterr().out
    assert "New models (not in the baseline, not gated): cf_als." in out


# ---------------------------------------------------------------------- the checks alone
def frame(users, fold=0, model="m", **columns) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "fold": fold, "user_id": users, **columns})


def test_key_mismatches_name_the_fold_and_count_the_users():
    ref, cur = frame([1, 2, 3]), frame([2, 3, 4, 5])
    assert key_mismatches("m", ref, ref) == []
    (line,) = key_mismatches("m", ref, cur)
    assert line.startswith("model m fold 0 has 2 of 3 users in common with this run "
                           "(this run has 2 others)")
    lines = key_mismatches("m", frame([1], fold=1), frame([1], fold=0))
    assert [x.split(";")[0] for x in lines] == [
        "model m fold 1 (1 users) is not a fold of this run (it has fold(s) [0])",
        "model m fold 0 of this run (1 users) is not in the baseline (it has fold(s) [1])"]


def test_value_mismatch_allows_a_column_absent_on_both_sides_only():
    ref, cur = frame([1, 2]), frame([1, 2])
    # a new-items metric is only written when some user has a new relevant item
    assert value_mismatch("m", "ndcg@10.new_items", "new_items", ref, cur) is None
    cur = frame([1, 2], **{"ndcg@10.new_items": [0.5, None]})
    line = value_mismatch("m", "ndcg@10.new_items", "new_items", ref, cur)
    assert line.startswith("model m ndcg@10.new_items [new_items]: the baseline has no "
                           "ndcg@10.new_items column (this run has values for 1 users)")
    line = value_mismatch("m", "ndcg@10.new_items", "new_items", cur, ref)
    assert line.startswith("model m ndcg@10.new_items [new_items]: this run has no "
                           "ndcg@10.new_items values (the baseline has them for 1 users)")
    # undefined for the same users on both sides: the promise is the user with a value
    assert value_mismatch("m", "ndcg@10.new_items", "new_items", cur, cur) is None
    both = frame([1, 2], **{"ndcg@10.new_items": [None, 0.1]})
    line = value_mismatch("m", "ndcg@10.new_items", "new_items", cur, both)
    assert ("this run has no value for 1 of the baseline's 1 users with one and the baseline "
            "has no value for 1 of this run's 1 users with one") in line


def test_label_mismatches_treat_a_label_missing_on_both_sides_as_the_same():
    ref = frame([1, 2], history_bucket=["1-5", None])
    assert label_mismatches("history_bucket", ref, ref) == []
    (line,) = label_mismatches("history_bucket", ref, frame([1, 2], history_bucket=["1-5", "6"]))
    assert line.startswith("1 of 2 per-user rows have another history_bucket in this run than "
                           "in the baseline (e.g. model m fold 0 user 2: baseline None, run '6')")
