"""Split export: the harness's exact train / test / fold-in rows, for a pipeline outside it.

``bench split export DIR [overrides...]`` loads the configured dataset, splits it with the
configured splitter and writes, per fold ``k``::

    DIR/fold<k>/train.parquet        always
    DIR/fold<k>/test.parquet         always
    DIR/fold<k>/fold_in.parquet      when the split gives fold-in history (cold users)
    DIR/fold<k>/validation.parquet   when split.validation is set
    DIR/split.json                   the card (below)

Every Parquet file has the canonical columns ``user_id, item_id`` plus ``rating`` and
``timestamp`` when the dataset has them (source ids, ratings as float64, Unix seconds as
int64), in the harness's canonical row order (user, timestamp, item).

``split.json`` (:data:`CARD_VERSION` 1)::

    {"version": 1,
     "split": {"name": "temporal", "params": {...}, "n_folds": 1},
     "dataset": {"name": "movielens_small", "fingerprint": "<sha256>"},
     "relevance_threshold": 4.0,
     "folds": [{"fold": 0, "fingerprint": "<split sha256>",
                "train_fingerprint": "<sha256 of the train rows>",
                "cut": 1466000000 | null,
                "parts": {"train": {"rows": 80000, "fingerprint": "<sha256>",
                                    "file": "fold0/train.parquet"}, ...}}]}

``fingerprint`` is :attr:`bench.splits.base.Split.fingerprint`; ``train_fingerprint`` is
:meth:`bench.data.interactions.Interactions.fingerprint` of the training part, which is
all a model sees at ``fit``: the precomputed model (:mod:`bench.models.precomputed`) reads
this card to check that lists made outside the harness were made on this very split.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from bench.atomic import atomic_write_text
from bench.config import eval_settings, to_container
from bench.data.dataset import Dataset
from bench.errors import ConfigError
from bench.parquet import write_frame
from bench.splits.base import Split
from bench.targets import build

log = logging.getLogger("bench")

#: Name of the card written next to the fold folders.
CARD_NAME = "split.json"
CARD_VERSION = 1


def split_card(splits: list[Split], dataset: Dataset, relevance_threshold: float | None,
               files: Mapping[int, Mapping[str, str]] | None = None) -> dict:
    """The ``split.json`` payload for ``splits`` (``files``: fold -> part -> relative path)."""
    first = splits[0]
    folds = []
    for split in splits:
        parts = {}
        for name, part in split.parts().items():
            parts[name] = {"rows": len(part), "fingerprint": part.fingerprint()}
            if files is not None:
                parts[name]["file"] = files[split.fold][name]
        folds.append({
            "fold": split.fold,
            "fingerprint": split.fingerprint,
            "train_fingerprint": parts["train"]["fingerprint"],
            "cut": split.cut,
            "info": dict(split.info),
            "parts": parts,
        })
    return {
        "version": CARD_VERSION,
        "split": {"name": first.name, "params": dict(first.params), "n_folds": first.n_folds},
        "dataset": {"name": dataset.name, "fingerprint": dataset.interactions.fingerprint()},
        "relevance_threshold": relevance_threshold,
        "folds": folds,
    }


def export_split(cfg, directory: str | Path, *, force: bool = False) -> Path:
    """Write every fold's parts and ``split.json`` under ``directory``; returns the card path.

    ``cfg`` is a composed config (as for :func:`bench.runner.run_experiment`); only
    ``dataset``, ``split``, ``seed`` and ``eval.relevance_threshold`` are used.

    Raises:
        ConfigError: ``directory`` exists and is not empty (unless ``force``), or the
            config is invalid.
        DataError, SplitError: the dataset cannot be loaded or split.
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: expected a folder to export the split into, got a file")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(
            f"{out}: folder is not empty; choose a new folder or pass --force to overwrite "
            f"the files the export writes"
        )
    raw = to_container(cfg)
    for key in ("dataset", "split"):
        if not isinstance(raw.get(key), Mapping):
            raise ConfigError(f"config: '{key}' is required (choose one, e.g. {key}=...)")
    settings = eval_settings(raw.get("eval"))
    dataset = build(raw["dataset"], "dataset")
    if not isinstance(dataset, Dataset):
        raise ConfigError(
            f"dataset._target_: expected a loader returning a Dataset, got {type(dataset).__name__}"
        )
    splitter = build(raw["split"], "split")
    splits = splitter.split(dataset.interactions)
    files: dict[int, dict[str, str]] = {}
    for split in splits:
        folder = out / f"fold{split.fold}"
        folder.mkdir(parents=True, exist_ok=True)
        files[split.fold] = {}
        for name, part in split.parts().items():
            rel = f"fold{split.fold}/{name}.parquet"
            frame = part.to_frame()
            write_frame(frame, out / rel)
            files[split.fold][name] = rel
        log.info("split %s fold %d: wrote %s", split.name, split.fold,
                 ", ".join(f"{n} {len(p)} rows" for n, p in split.parts().items()))
    card = split_card(splits, dataset, settings.relevance_threshold, files)
    path = out / CARD_NAME
    atomic_write_text(path, json.dumps(card, indent=2, default=str) + "\n")
    return path

