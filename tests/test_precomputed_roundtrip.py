"""Round trips through the precomputed model (issue 13, "Done when").

(a) a built-in model's exported top-k lists, read back by the precomputed model, give
    identical per-user metrics;
(b) lists made on another split are refused with one line, exit 2;
(c) ``bench split export`` -> a stand-alone script that reads only the exported
    ``train.parquet`` -> the precomputed model reproduces the in-harness model exactly.

All runs go through the real command line (:func:`bench.cli.main`) on the embedded
movielens_small data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

#: full runs and exports; tests/models/test_precomputed.py is the fast tier's share
pytestmark = pytest.mark.slow


def fast(tmp: Path, reports: str = "reports") -> list[str]:
    return ["tracker=none", "report.figures=false", "~experiment", "eval.cutoffs=[5,10]",
            f"report.dir={tmp / reports}"]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.err


def _artifacts(tmp: Path, reports: str, model: str) -> Path:
    (folder,) = (tmp / reports).rglob(f"artifacts/{model}/fold0")
    return folder


def _same_results(a: Path, b: Path) -> None:
    """Per-user frames equal bit for bit, and the same metric means."""
    pd.testing.assert_frame_equal(pd.read_parquet(a / "per_user.parquet"),
                                  pd.read_parquet(b / "per_user.parquet"), check_exact=True)
    assert json.loads((a / "metrics.json").read_text()) == \
        json.loads((b / "metrics.json").read_text())


def test_builtin_lists_read_back_give_identical_per_user_metrics(tmp_path, capsys):
    split = ["split=temporal"]  # cold users kept: they get popularity lists, no knn lists
    code, err = _run(["split", "export", str(tmp_path / "export"), *split], capsys)
    assert code == 0, err
    code, err = _run([*fast(tmp_path, "built_in"), *split,
                      "model=[rule_popular,cf_item_knn]"], capsys)
    assert code == 0, err
    card = tmp_path / "export" / "split.json"
    for model in ("rule_popular", "cf_item_knn"):
        built_in = _artifacts(tmp_path, "built_in", model)
        code, err = _run([*fast(tmp_path, f"back_{model}"), *split, "model=[precomputed]",
                          f"models.precomputed.path={built_in / 'topk.parquet'}",
                          f"models.precomputed.split_card={card}"], capsys)
        assert code == 0, err
        _same_results(built_in, _artifacts(tmp_path, f"back_{model}", "precomputed"))


def test_lists_made_on_another_split_are_refused_with_one_line(tmp_path, capsys):
    other = tmp_path / "other"
    code, err = _run(["split", "export", str(other), "split=temporal",
                      "split.quantile=0.7"], capsys)
    assert code == 0, err
    code, err = _run([*fast(tmp_path), "split=temporal", "model=[rule_popular]",
                      "split.quantile=0.7"], capsys)
    assert code == 0, err
    shutil.copy(_artifacts(tmp_path, "reports", "rule_popular") / "topk.parquet",
                other / "fold0" / "lists.parquet")
    lists = other / "fold0" / "lists.parquet"
    # rule_popular runs too: the others finish, only the precomputed model is refused
    code, err = _run([*fast(tmp_path, "refused"), "split=temporal",
                      "model=[rule_popular,precomputed]", f"models.precomputed.path={lists}"],
                     capsys)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("bench: error:")]
    assert len(lines) == 1, err
    card = json.loads((other / "split.json").read_text())
    made_on = card["folds"][0]["train_fingerprint"]
    assert f"{lists}: lists made on a different split" in lines[0]
    assert made_on in lines[0]
    assert "the train this model is fitted on has fingerprint" in lines[0]
    assert "Traceback" not in err


#: A stand-alone all-time popularity recommender: reads only train.parquet, ranks items by
#: training count (ties: the lower item id, which is the harness's lower item code since
#: codes follow sorted ids), skips each user's training items, writes ranks 1..k.
EXTERNAL = textwrap.dedent("""
    import sys
    import pandas as pd

    folder, k = sys.argv[1], int(sys.argv[2])
    train = pd.read_parquet(f"{folder}/train.parquet", columns=["user_id", "item_id"])
    counts = train.groupby("item_id").size().rename("n").reset_index()
    ranking = counts.sort_values(["n", "item_id"], ascending=[False, True])["item_id"].tolist()
    seen = train.groupby("user_id")["item_id"].agg(set)
    rows = []
    for user, items in seen.items():
        picked = [i for i in ranking if i not in items][:k]
        rows += [(user, item, r) for r, item in enumerate(picked, 1)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "rank"]).to_parquet(
        f"{folder}/lists.parquet", index=False)
""")


def test_export_external_script_import_reproduces_the_harness(tmp_path, capsys):
    # warm users only: the script sees just train.parquet, so it can serve only users
    # with training rows; on temporal_warm every test user has some
    split = ["split=temporal_warm"]
    export = tmp_path / "export"
    code, err = _run(["split", "export", str(export), *split], capsys)
    assert code == 0, err
    script = tmp_path / "external_popularity.py"
    script.write_text(EXTERNAL)
    subprocess.run([sys.executable, str(script), str(export / "fold0"), "10"], check=True,
                   cwd=tmp_path)
    pattern = str(export / "fold{fold}" / "lists.parquet")
    code, err = _run([*fast(tmp_path), *split, "model=[rule_popular,precomputed]",
                      f"models.precomputed.path='{pattern}'",
                      "models.precomputed.family=rule"], capsys)
    assert code == 0, err
    _same_results(_artifacts(tmp_path, "reports", "rule_popular"),
                  _artifacts(tmp_path, "reports", "precomputed"))
    (results,) = (tmp_path / "reports").rglob("results.json")
    families = {m["model"]: m["family"] for m in json.loads(results.read_text())["models"]}
    assert families["precomputed"] == "rule"
