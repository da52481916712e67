"""``bench split export``: every fold's parts as Parquet, exactly the split the runner makes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from bench.cli import config_dir, main
from bench.config import to_container
from bench.targets import build
from tests.conftest import write_ratings_csv

COLUMNS = "dataset.columns={user_id: user, item_id: item, rating: stars, timestamp: ts}"


def _overrides(tmp: Path, *extra: str) -> list[str]:
    path = write_ratings_csv(tmp / "ratings.csv")
    return ["dataset=csv", f"dataset.path={path}", COLUMNS, "dataset.rating_scale=[1,5]",
            "~experiment", *extra]


def _splits(overrides: list[str]):
    """The splits the runner would make for these overrides."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        raw = to_container(compose("config", overrides=overrides))
    dataset = build(raw["dataset"], "dataset")
    return dataset, build(raw["split"], "split").split(dataset.interactions)


@pytest.mark.parametrize(
    "chosen",
    [["split=kfold", "split.n_folds=3"],
     ["split=temporal", "split.validation=0.2"],
     ["split=user_cold_start", "split.fold_in=2"]],
    ids=["kfold", "temporal-validation", "user-cold-start-fold-in"],
)
def test_export_writes_every_fold_part_and_card(tmp_path, capsys, chosen):
    overrides = _overrides(tmp_path, *chosen)
    out = tmp_path / "export"
    assert main(["split", "export", str(out), *overrides]) == 0, capsys.readouterr().err
    dataset, splits = _splits(overrides)
    card = json.loads((out / "split.json").read_text())
    assert card["split"]["name"] == splits[0].name
    assert card["split"]["n_folds"] == len(splits)
    assert card["split"]["params"] == json.loads(json.dumps(dict(splits[0].params)))
    assert card["dataset"]["fingerprint"] == dataset.interactions.fingerprint()
    assert card["relevance_threshold"] == 4.0
    assert len(card["folds"]) == len(splits)
    for split, entry in zip(splits, card["folds"], strict=True):
        assert entry["fold"] == split.fold
        assert entry["fingerprint"] == split.fingerprint
        assert entry["train_fingerprint"] == split.train.fingerprint()
        files = sorted(p.name for p in (out / f"fold{split.fold}").iterdir())
        assert files == sorted(f"{name}.parquet" for name in split.parts())
        for name, part in split.parts().items():
            frame = pd.read_parquet(out / entry["parts"][name]["file"])
            assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
            pd.testing.assert_frame_equal(frame, part.to_frame(), check_exact=True)
            assert entry["parts"][name]["rows"] == len(part)
            assert entry["parts"][name]["fingerprint"] == part.fingerprint()
    parts = {n for e in card["folds"] for n in e["parts"]}
    if "split.validation=0.2" in chosen:
        assert "validation" in parts
    if "split=user_cold_start" in chosen:
        assert "fold_in" in parts


def test_export_refuses_a_non_empty_folder_unless_forced(tmp_path, capsys):
    overrides = _overrides(tmp_path, "split=temporal")
    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["split", "export", str(out), *overrides]) == 2
    assert "export: folder is not empty; choose a new folder or pass --force" in \
        capsys.readouterr().err
    assert main(["split", "export", "--force", str(out), *overrides]) == 0
    assert (out / "fold0" / "train.parquet").is_file()
    assert (out / "keep.txt").read_text() == "mine"


def test_export_bad_override_is_one_line(tmp_path, capsys):
    assert main(["split", "export", str(tmp_path / "x"), "split=nope"]) == 2
    err = capsys.readouterr().err
    assert "split=nope: no such option" in err
    assert not (tmp_path / "x").exists()
