"""The precomputed model: file formats, split-card checks, ordering and every policy."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data.interactions import Interactions
from bench.errors import ConfigError, DataError
from bench.models.base import mask_history, top_k
from bench.models.precomputed import METADATA_KEY, PrecomputedRecommender


def _train(ids=(10, 20, 30), items=(1, 2, 3, 4, 5, 6)) -> Interactions:
    """Users 10/20/30 with a few items each; vocab covers items 1..6 (7 as an unseen id)."""
    rows = [(ids[0], items[0]), (ids[0], items[1]), (ids[1], items[2]), (ids[2], items[3]),
            (ids[2], items[4]), (ids[1], items[5])]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    frame["timestamp"] = np.arange(len(frame))
    return Interactions.from_frame(frame, source="train")


def _card(path, train: Interactions, fold: int = 0, extra=()) -> None:
    folds = [{"fold": fold, "train_fingerprint": train.fingerprint()}, *extra]
    path.write_text(json.dumps({"folds": folds}))


def _lists(tmp, rows, columns=("user_id", "item_id", "rank"), name="lists.parquet",
           train=None, card=True):
    frame = pd.DataFrame(rows, columns=list(columns))
    path = tmp / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    if card:
        _card(tmp / (name + ".json"), train or _train())
    return path


def _fit(path, train=None, **kw) -> PrecomputedRecommender:
    return PrecomputedRecommender(path=str(path), **kw).fit(train or _train())


def _recs(model, users, k=10, **kw) -> dict:
    frame = model.recommend(users, k, **kw)
    return {u: g["item_id"].tolist() for u, g in frame.groupby("user_id", sort=False)}


def test_rank_order_is_kept_exactly_and_seen_items_are_dropped(tmp_path, caplog):
    # user 10 saw items 1, 2: item 2 in the list is dropped (counted), order otherwise kept
    path = _lists(tmp_path, [(10, 5, 3), (10, 2, 1), (10, 4, 7), (10, 3, 2), (20, 1, 1)])
    with caplog.at_level(logging.INFO, logger="bench"):
        model = _fit(path)
    assert model.seen_dropped_ == 1
    assert "dropped 1 recommendation(s) of items seen in training" in caplog.text
    assert _recs(model, [10, 20, 30]) == {10: [3, 5, 4], 20: [1]}


def test_generic_path_and_fast_path_agree(tmp_path):
    rows = [(u, i, r) for u in (10, 20, 30) for r, i in enumerate((6, 1, 2, 3, 4, 5), 1)]
    model = _fit(_lists(tmp_path, rows), seen_policy="keep")
    users = np.array([0, 1, 2, -1])
    hist = model._history_rows(users, None)
    for k in (1, 2, 6):
        for exclude in (True, False):
            fast = model._top_k_fast(users, hist, k, exclude)
            scores = model._score(users, hist)
            if exclude:
                mask_history(scores, hist)
            generic = top_k(scores, k)
            np.testing.assert_array_equal(fast[0], generic[0])
            np.testing.assert_array_equal(fast[1], generic[1])


def test_scores_order_descending_and_ties_go_to_the_lower_item_code(tmp_path):
    rows = [(30, 6, 0.5), (30, 2, 0.9), (30, 1, 0.9), (30, 3, 0.1)]
    model = _fit(_lists(tmp_path, rows, ("user_id", "item_id", "score")))
    assert _recs(model, [30]) == {30: [1, 2, 6, 3]}


def test_longer_lists_keep_the_first_k_and_are_counted(tmp_path, caplog):
    rows = [(20, i, r) for r, i in enumerate((1, 2, 4, 5), 1)]
    model = _fit(_lists(tmp_path, rows))
    with caplog.at_level(logging.INFO, logger="bench"):
        top = model.recommend_codes(np.array([1, 0]), 2)
    assert model.long_lists_ == 1
    assert "1 user(s) have lists longer than k=2" in caplog.text
    assert model.item_index_[top.items[0]].tolist() == [1, 2]
    assert top.items[1].tolist() == [-1, -1]  # no list: all misses


def test_seen_policy_keep_and_error(tmp_path):
    path = _lists(tmp_path, [(10, 1, 1), (10, 3, 2)])
    keep = _fit(path, seen_policy="keep")
    assert _recs(keep, [10], exclude_seen=False) == {10: [1, 3]}
    assert _recs(keep, [10]) == {10: [3]}
    with pytest.raises(DataError, match=r"1 recommendation\(s\) of items the user has in "
                                        r"training under seen_policy='error'; first: \(10, 1\)"):
        _fit(path, seen_policy="error")


def test_fold_column_and_pattern_pick_the_fold_the_train_matches(tmp_path):
    train = _train()
    other = {"fold": 0, "train_fingerprint": "0" * 64}
    rows = [(10, 3, 1, 0), (10, 4, 1, 1)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "fold"])
    frame.to_parquet(tmp_path / "all.parquet", index=False)
    _card(tmp_path / "all.parquet.json", train, fold=1, extra=[other])
    model = _fit(tmp_path / "all.parquet", train)
    assert model.fold_ == 1
    assert _recs(model, [10]) == {10: [4]}
    frame.drop(columns="fold").to_parquet(tmp_path / "nofold.parquet", index=False)
    _card(tmp_path / "nofold.parquet.json", train, fold=1, extra=[other])
    with pytest.raises(DataError, match=r"nofold\.parquet: one file for a split with several "
                                        r"folds needs a 'fold' column"):
        _fit(tmp_path / "nofold.parquet", train)
    # one file per fold, the card in the parent folder (the export layout)
    for k, item in ((0, 5), (1, 6)):
        (tmp_path / "exp" / f"fold{k}").mkdir(parents=True)
        pd.DataFrame({"user_id": [10], "item_id": [item], "rank": [1]}).to_csv(
            tmp_path / "exp" / f"fold{k}" / "lists.csv", index=False)
    _card(tmp_path / "exp" / "split.json", train, fold=1, extra=[other])
    model = _fit(str(tmp_path / "exp" / "fold{fold}" / "lists.csv"), train)
    assert (model.fold_, _recs(model, [10])) == (1, {10: [6]})


def test_card_in_parquet_metadata_and_string_ids_from_csv(tmp_path):
    train = _train(ids=("007", "b", "c"), items=("x1", "x2", "x3", "x4", "x5", "x6"))
    table = pa.table({"user_id": ["007", "007"], "item_id": ["x4", "x3"], "rank": [1, 2]})
    card = json.dumps({"folds": [{"fold": 0, "train_fingerprint": train.fingerprint()}]})
    table = table.replace_schema_metadata({METADATA_KEY: card})
    pq.write_table(table, tmp_path / "meta.parquet")
    assert _recs(_fit(tmp_path / "meta.parquet", train), ["007"]) == {"007": ["x4", "x3"]}
    path = _lists(tmp_path, [("007", "x5", 1)], name="ids.csv", train=train)
    assert _recs(_fit(path, train), ["007"]) == {"007": ["x5"]}


@pytest.mark.parametrize(
    ("rows", "columns", "pattern"),
    [
        ([(10, 3, 1), (99, 3, 1), (98, 4, 1), (99, 5, 2)], None,
         r"lists\.parquet: 3 row\(s\) name 2 unknown users \(column 'user_id', not in the "
         r"split's vocabulary\), e\.g\. \[99, 98\]"),
        ([(10, 77, 1)], None, r"1 row\(s\) name 1 unknown items .* e\.g\. \[77\]"),
        ([(10, 3, 1), (10, 3, 2)], None,
         r"1 duplicate \(user_id, item_id\) pair\(s\); first at data row 2: \(10, 3\)"),
        ([(10, 3, 1), (10, 4, 1)], None, r"1 repeated rank\(s\) within a user's list"),
        ([(10, 3, 0)], None, r"column 'rank' data row 1: expected an integer >= 1, got 0"),
        ([(10, 3, 1.5)], None, r"column 'rank' data row 1: expected an integer >= 1"),
        ([(10, 3)], ("user_id", "item_id"),
         r"missing column\(s\) \['rank or score'\]; expected user_id, item_id and rank or "
         r"score"),
        ([(10, 3, 1)], ("user", "item_id", "rank"), r"missing column\(s\) \['user_id'\]"),
        ([(10, 3, float("nan"))], ("user_id", "item_id", "score"),
         r"column 'score' has 1 missing or non-numeric value"),
    ],
)
def test_bad_lists_are_one_line_data_errors(tmp_path, rows, columns, pattern):
    path = _lists(tmp_path, rows, columns or ("user_id", "item_id", "rank"))
    with pytest.raises(DataError, match=pattern) as info:
        _fit(path)
    assert "\n" not in str(info.value)


def test_lists_made_on_another_split_are_refused_naming_both_fingerprints(tmp_path):
    path = _lists(tmp_path, [(10, 3, 1)])
    other = _train(ids=(10, 20, 31))
    with pytest.raises(DataError) as info:
        _fit(path, other)
    msg = str(info.value)
    assert "lists.parquet: lists made on a different split" in msg
    assert _train().fingerprint() in msg and other.fingerprint() in msg
    assert "\n" not in msg


def test_missing_file_card_and_bad_params(tmp_path):
    with pytest.raises(DataError, match=r"nope\.parquet: the precomputed list file does not"):
        _fit(tmp_path / "nope.parquet")
    path = _lists(tmp_path, [(10, 3, 1)], card=False)
    with pytest.raises(DataError, match=r"no split card found .*split_card"):
        _fit(path)
    with pytest.raises(DataError, match=r"card\.json: the split card \(split_card\) does not"):
        _fit(path, split_card=str(tmp_path / "card.json"))
    (tmp_path / "card.json").write_text("{}")
    with pytest.raises(DataError, match=r"card\.json: expected a split card with a 'folds'"):
        _fit(path, split_card=str(tmp_path / "card.json"))
    with pytest.raises(ConfigError, match=r"seen_policy: expected one of"):
        _fit(path, seen_policy="skip")
    with pytest.raises(ConfigError, match=r"family: expected one of"):
        _fit(path, family="mine")
    with pytest.raises(DataError, match=r"no precomputed list file found"):
        _fit(str(tmp_path / "fold{fold}.parquet"))


def test_family_is_the_hyperparameter():
    assert PrecomputedRecommender(path="x", family="hybrid").family == "hybrid"
    assert PrecomputedRecommender(path="x").family == "collaborative"
