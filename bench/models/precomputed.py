"""Recommendations computed outside the harness, evaluated on the harness's split.

:class:`PrecomputedRecommender` learns nothing: ``fit`` reads a file of ranked lists made
by another pipeline (Spark, PyTorch, a service, a notebook) and checks that they were
made on the very split it is being evaluated on; ``recommend`` then returns those lists.
Masking, top-k and metrics are the harness's own, as for every model.

File format
-----------
Parquet (``.parquet``, ``.pq``) or CSV (``.csv``, ``.csv.gz``), one row per recommendation:

``user_id``, ``item_id``
    source ids, as in the dataset (and in the files ``bench split export`` writes).
``rank`` or ``score``
    ``rank``: integers >= 1, 1 = best; gaps are allowed, a repeated rank within one user's
    list is an error. ``score``: finite numbers, higher = better; equal scores are ordered
    toward the lower item code (the harness's tie rule for every model). When both are
    present ``rank`` decides the order.
``fold`` (optional)
    the fold number a row belongs to; rows of other folds are ignored. Needed when one
    file holds the lists of a split with several folds.

Other columns (``score`` next to ``rank``, ``source``, ...) are ignored, so a run's own
``artifacts/<model>/fold<k>/topk.parquet`` can be read back unchanged.

``path`` is one file, or a pattern with ``{fold}`` (``lists/fold{fold}.parquet``,
``export/fold{fold}/lists.csv``) with one file per fold, or a folder holding
``fold<k>.parquet`` / ``fold<k>.csv`` files.

Which split: the split card
---------------------------
Lists are only comparable on the split they were made from. Every list file needs a
split card: the ``split.json`` that ``bench split export`` writes (see
:mod:`bench.splits.export`), or any JSON object with the same ``folds`` entries
(``{"folds": [{"fold": 0, "train_fingerprint": "<sha256>", "fingerprint": ...}]}``).
It is looked up, first found wins:

1. the ``split_card`` hyperparameter (a path), when set;
2. ``<file>.json`` next to the list file (``lists.parquet.json``);
3. the Parquet file's key-value metadata under the key ``recspectrum.split``;
4. ``split.json`` in the list file's folder, then in its parent folder (the layout of an
   export folder: ``DIR/split.json`` and ``DIR/fold<k>/lists.parquet``).

At ``fit`` the fingerprint of the training rows the model is given
(:meth:`bench.data.interactions.Interactions.fingerprint`) must equal one fold's
``train_fingerprint``: that is how the fold is identified, never by counting. Lists made
on any other split are refused with a :class:`~bench.errors.DataError` naming the file
and both fingerprints (``bench`` exits 2).

Policies
--------
* unknown users or items (ids outside the split's vocabulary, i.e. not in the dataset):
  error, with the count and a few examples;
* a (user, item) pair listed twice: error, with the count and the first pair;
* lists longer than the run's ``k``: the first ``k`` are kept (base-class top-k); the
  number of such users is logged;
* lists shorter than ``k``, and test users with no list at all: normal; the missing
  places are misses (an empty list scores 0);
* items the user has in training (``seen_policy``): ``drop`` (default) removes them when
  the lists are read, exactly what ``eval.exclude_seen`` does to every model, and logs how
  many; ``keep`` leaves them to ``eval.exclude_seen``; ``error`` refuses the file.

Limits: the lists belong to one split, so the cold-start protocols (``cold_start.*``),
which fit models on splits of their own, refuse them like any other split; and
``resume`` keys a finished (model, fold) on the config, not on the file's content, so
lists rewritten in place under the same ``path`` need ``resume=false`` (or a new path).

Scores
------
``_score`` gives each listed item ``-position`` (1-based place in the user's ordered list)
and NaN to every other item ("cannot score"), so the base class's masking and top-k keep
the file's order exactly: positions are small integers, exact in float32, and never tie.
The ``score`` column of the run's ``topk.parquet`` for this model is therefore ``-position``.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from bench.config import FAMILIES
from bench.errors import ConfigError, DataError
from bench.models.base import Recommender, TopK

log = logging.getLogger("bench")

#: Parquet key-value metadata key that may carry the split card.
METADATA_KEY = "recspectrum.split"
#: File name of the card ``bench split export`` writes.
CARD_NAME = "split.json"
SEEN_POLICIES = ("drop", "keep", "error")
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv")
_EXAMPLES = 3


class PrecomputedRecommender(Recommender):
    """Serve ranked lists produced outside the harness (see the module docstring).

    Args:
        path: the list file, a ``{fold}`` pattern, or a folder of ``fold<k>`` files.
        split_card: the split card (``split.json``) to check the lists against; ``None``
            looks it up next to the list file.
        family: the spectrum rung of whatever produced the lists (``rule``, ``content``,
            ``collaborative`` or ``hybrid``), used by the report's ladder; the harness
            cannot know it.
        seen_policy: items the user has in training: ``drop``, ``keep`` or ``error``.
    """

    #: the lists may name any user and item of the dataset; nothing is learned from them
    extra_vocabulary = frozenset({"data"})
    #: its fit reads a file, which is not among its hyperparameters' values
    shares_fits = False

    def __init__(self, *, path: str, split_card: str | None = None,
                 family: str = "collaborative", seen_policy: str = "drop"):
        self.path = path
        self.split_card = split_card
        self.family = family
        self.seen_policy = seen_policy

    # ------------------------------------------------------------------ fit
    def _fit(self, train, item_features, user_features) -> None:
        self._check_params()
        file, fold, shared = self._locate(train)
        frame = read_lists(file, fold, shared)
        users, items, order_key = _encode(frame, file, train)
        self.source_file_ = str(file)
        self.fold_ = fold
        users, items, order_key = self._apply_seen_policy(users, items, order_key, file)
        # per user, items in list order: rank ascending, or score descending then code
        order = np.lexsort((items, order_key, users))
        users, items = users[order], items[order]
        counts = np.bincount(users, minlength=train.n_users)
        self.indptr_ = np.zeros(train.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=self.indptr_[1:])
        self.items_ = items.astype(np.int32)
        self.positions_ = (np.arange(len(items)) - self.indptr_[users] + 1).astype(np.int64)
        self.list_lengths_ = counts
        log.info("precomputed %s (fold %d): %d lists, %d recommendations", file, fold,
                 int(np.count_nonzero(counts)), len(items))

    def _check_params(self) -> None:
        if not isinstance(self.path, str | Path) or not str(self.path):
            raise ConfigError(f"path: expected a list file, pattern or folder, got {self.path!r}")
        if self.family not in FAMILIES:
            raise ConfigError(f"family: expected one of {list(FAMILIES)}, got {self.family!r}")
        if self.seen_policy not in SEEN_POLICIES:
            raise ConfigError(
                f"seen_policy: expected one of {list(SEEN_POLICIES)}, got {self.seen_policy!r}"
            )

    def _locate(self, train) -> tuple[Path, int, bool]:
        """The list file for the fold ``train`` belongs to, that fold's number, and whether
        the file is shared by several folds (a single file for a multi-fold split)."""
        actual = train.fingerprint()
        candidates = _candidate_files(str(self.path))
        explicit = Path(self.split_card) if self.split_card is not None else None
        seen_cards: list[tuple[Path, Path, list[dict]]] = []
        for file, file_fold in candidates:
            card_path, folds = load_card(file, explicit)
            seen_cards.append((file, card_path, folds))
            for entry in folds:
                if entry["train_fingerprint"] != actual:
                    continue
                if file_fold is not None and file_fold != entry["fold"]:
                    continue
                return file, int(entry["fold"]), file_fold is None and len(folds) > 1
        file, card_path, folds = seen_cards[0]
        made_on = ", ".join(
            f"fold {e['fold']} train {e['train_fingerprint']}" for e in folds
        )
        where = file if len(candidates) == 1 else f"{self.path} ({len(candidates)} files)"
        raise DataError(
            f"{where}: lists made on a different split: card {card_path} gives {made_on}; "
            f"the train this model is fitted on has fingerprint {actual}. Make the lists "
            f"from `bench split export` of this run's dataset and split"
        )

    def _apply_seen_policy(self, users, items, order_key, file):
        seen = np.asarray(self.seen_[users, items]).ravel() > 0 if len(users) else \
            np.zeros(0, dtype=bool)
        n_seen = int(np.count_nonzero(seen))
        self.seen_dropped_ = 0
        if not n_seen:
            return users, items, order_key
        if self.seen_policy == "error":
            i = int(np.flatnonzero(seen)[0])
            raise DataError(
                f"{file}: {n_seen} recommendation(s) of items the user has in training "
                f"under seen_policy='error'; first: ({_show(self.user_index_[users[i]])}, "
                f"{_show(self.item_index_[items[i]])}). Expected none; set seen_policy to "
                f"drop or keep"
            )
        if self.seen_policy == "keep":
            log.info("precomputed %s: %d recommendation(s) of items seen in training kept "
                     "(seen_policy=keep; eval.exclude_seen decides)", file, n_seen)
            return users, items, order_key
        log.info("precomputed %s: dropped %d recommendation(s) of items seen in training "
                 "(seen_policy=drop)", file, n_seen)
        self.seen_dropped_ = n_seen
        keep = ~seen
        return users[keep], items[keep], order_key[keep]

    # ------------------------------------------------------------------ recommend
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        out = np.full((len(users), self.n_items), np.nan, dtype=np.float32)
        rows, items, positions = self._batch_lists(users)
        out[rows, items] = -positions.astype(np.float32)
        return out

    def _top_k_fast(self, users, history, k, exclude_seen):
        """The lists in order, history items skipped, cut to ``k`` (what top-k would give)."""
        rows, items, positions = self._batch_lists(users)
        if exclude_seen and history is not None and history.nnz and len(rows):
            n = np.int64(self.n_items)
            hist_rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
            hist_keys = hist_rows.astype(np.int64) * n + history.indices
            keep = ~np.isin(rows.astype(np.int64) * n + items, hist_keys)
            rows, items, positions = rows[keep], items[keep], positions[keep]
        starts = np.searchsorted(rows, np.arange(len(users)))
        place = np.arange(len(rows)) - starts[rows]
        take = place < k
        out_items = np.full((len(users), k), -1, dtype=np.int32)
        out_scores = np.full((len(users), k), np.nan, dtype=np.float32)
        out_items[rows[take], place[take]] = items[take]
        out_scores[rows[take], place[take]] = -positions[take].astype(np.float32)
        return out_items, out_scores

    def recommend_codes(self, users, k, **kwargs) -> TopK:
        top = super().recommend_codes(users, k, **kwargs)
        codes = np.asarray(users, dtype=np.int64)
        lengths = self.list_lengths_[codes[codes >= 0]]
        self.long_lists_ = int(np.count_nonzero(lengths > k))
        if self.long_lists_:
            log.info("precomputed %s: %d user(s) have lists longer than k=%d; their first %d "
                     "kept (longest: %d)", self.source_file_, self.long_lists_, k, k,
                     int(lengths.max()))
        return top

    def _batch_lists(self, users: np.ndarray):
        """Flat (row in batch, item code, position) of the batch's lists, rows ascending."""
        users = np.asarray(users, dtype=np.int64)
        known = users >= 0
        safe = np.where(known, users, 0)
        starts = self.indptr_[safe]
        lengths = np.where(known, self.indptr_[safe + 1] - starts, 0)
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = np.repeat(starts, lengths) + offsets
        return rows, self.items_[flat], self.positions_[flat]


# ---------------------------------------------------------------------- files and cards
def _candidate_files(path: str) -> list[tuple[Path, int | None]]:
    """The list files ``path`` names, each with the fold its name gives (None: a single file)."""
    p = Path(path)
    if "{fold}" not in path and p.is_file():
        return [(p, None)]
    if "{fold}" not in path and not p.is_dir():
        raise DataError(f"{path}: the precomputed list file does not exist")
    patterns = [path] if "{fold}" in path else [str(p / "fold{fold}.parquet"),
                                                 str(p / "fold{fold}.csv")]
    found: list[tuple[Path, int | None]] = []
    for pattern in patterns:
        head, _, tail = pattern.partition("{fold}")
        regex = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + r"\Z")
        for name in sorted(glob.glob(glob.escape(head) + "*" + glob.escape(tail))):
            m = regex.match(name)
            if m and Path(name).is_file():
                found.append((Path(name), int(m.group(1))))
    if not found:
        raise DataError(
            f"{path}: no precomputed list file found (expected files like "
            f"{patterns[0].replace('{fold}', '0')})"
        )
    return found


def load_card(file: Path, explicit: Path | None = None) -> tuple[Path, list[dict]]:
    """The split card for the list ``file``: ``(where it was found, its fold entries)``."""
    if explicit is not None:
        if not explicit.is_file():
            raise DataError(f"{explicit}: the split card (split_card) does not exist")
        return explicit, _card_folds(_read_json(explicit), explicit)
    sidecar = file.with_name(file.name + ".json")
    if sidecar.is_file():
        return sidecar, _card_folds(_read_json(sidecar), sidecar)
    if file.name.endswith(_PARQUET):
        meta = _parquet_metadata(file)
        if METADATA_KEY.encode() in meta:
            where = Path(f"{file}[metadata {METADATA_KEY}]")
            try:
                raw = json.loads(meta[METADATA_KEY.encode()])
            except ValueError as exc:
                raise DataError(f"{where}: expected a JSON split card ({exc})") from None
            return where, _card_folds(raw, where)
    for folder in (file.parent, file.parent.parent):
        card = folder / CARD_NAME
        if card.is_file():
            return card, _card_folds(_read_json(card), card)
    raise DataError(
        f"{file}: no split card found (looked for {sidecar.name}, Parquet metadata "
        f"'{METADATA_KEY}', {CARD_NAME} in its folder and the parent); make the lists from "
        f"a `bench split export` folder or set the model's split_card"
    )


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: expected a JSON split card ({exc})") from None


def _parquet_metadata(file: Path) -> dict:
    try:
        return pq.read_schema(file).metadata or {}
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"{file}: not a readable Parquet file ({exc})") from None


def _card_folds(raw, where: Path) -> list[dict]:
    folds = raw.get("folds") if isinstance(raw, dict) else None
    if not isinstance(folds, list) or not folds or not all(
        isinstance(f, dict) and isinstance(f.get("train_fingerprint"), str)
        and isinstance(f.get("fold"), int) for f in folds
    ):
        raise DataError(
            f"{where}: expected a split card with a 'folds' list of "
            f"{{fold, train_fingerprint}} entries (as `bench split export` writes)"
        )
    return folds


def read_lists(file: Path, fold: int, shared: bool = False) -> pd.DataFrame:
    """The rows of ``file`` for ``fold``: ``user_id``, ``item_id`` and ``rank`` or ``score``.

    ``shared``: the file serves several folds, so it must say which rows are whose.
    """
    name = file.name.lower()
    try:
        if name.endswith(_PARQUET):
            frame = pd.read_parquet(file)
        elif name.endswith(_CSV):
            sep = "\t" if name.endswith(".tsv") else ","
            frame = pd.read_csv(file, sep=sep, dtype={"user_id": str, "item_id": str})
        else:
            raise DataError(
                f"{file}: expected a Parquet ({', '.join(_PARQUET)}) or CSV "
                f"({', '.join(_CSV)}) list file"
            )
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{file}: cannot read the list file ({type(exc).__name__}: {exc})") \
            from None
    missing = [c for c in ("user_id", "item_id") if c not in frame.columns]
    if missing or not ({"rank", "score"} & set(frame.columns)):
        need = missing + ([] if {"rank", "score"} & set(frame.columns) else ["rank or score"])
        raise DataError(
            f"{file}: missing column(s) {need}; expected user_id, item_id and rank or score "
            f"(optional fold); found columns {list(frame.columns)}"
        )
    if shared and "fold" not in frame.columns:
        raise DataError(
            f"{file}: one file for a split with several folds needs a 'fold' column; add "
            f"it, or write one file per fold and set path to a pattern like fold{{fold}}.parquet"
        )
    if "fold" in frame.columns:
        folds = pd.to_numeric(frame["fold"], errors="coerce")
        frame = frame[(folds == fold).to_numpy()]
        if frame.empty:
            raise DataError(
                f"{file}: no row has fold {fold} (the fold its split card matches); "
                f"found folds {sorted(pd.unique(folds.dropna()).tolist())}"
            )
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------------- validation
def _encode(frame: pd.DataFrame, file: Path, train) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of users and items in the split's vocabulary, and the ascending order key."""
    users = _codes(frame["user_id"], train.user_ids, "user_id", file)
    items = _codes(frame["item_id"], train.item_ids, "item_id", file)
    if "rank" in frame.columns:
        key = _numbers(frame["rank"], "rank", file)
        bad = (key < 1) | (key != np.floor(key))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{file}: column 'rank' data row {i + 1}: expected an integer >= 1, "
                f"got {_show(frame['rank'].iloc[i])}"
            )
        _check_unique(users, key, file, frame, "rank")
    else:
        key = -_numbers(frame["score"], "score", file)
    _check_unique(users, items.astype(np.float64), file, frame, "item_id")
    return users, items, key


def _codes(col: pd.Series, vocab: pd.Index, name: str, file: Path) -> np.ndarray:
    missing = col.isna().to_numpy()
    if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
        blank = (col.astype("string").str.strip() == "").fillna(False)
        missing = missing | blank.to_numpy(dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{file}: column '{name}' has {int(missing.sum())} missing/empty id(s); first at "
            f"data row {i + 1}"
        )
    values = col
    if pd.api.types.is_integer_dtype(vocab.dtype) and not pd.api.types.is_integer_dtype(col):
        num = pd.to_numeric(col, errors="coerce")
        whole = num.notna() & (num == np.floor(num))
        values = pd.Series(np.where(whole, num, np.nan)).astype("Int64")
    elif not pd.api.types.is_numeric_dtype(vocab.dtype) and pd.api.types.is_numeric_dtype(col):
        values = col.astype(str)
    codes = vocab.get_indexer(pd.Index(values))
    unknown = codes < 0
    if unknown.any():
        bad = pd.unique(col[unknown].to_numpy())
        what = "users" if name == "user_id" else "items"
        examples = ", ".join(_show(v) for v in bad[:_EXAMPLES])
        raise DataError(
            f"{file}: {int(unknown.sum())} row(s) name {len(bad)} unknown {what} (column "
            f"'{name}', not in the split's vocabulary), e.g. "
            f"[{examples}]; expected ids of the dataset the split was made from"
        )
    return codes.astype(np.int64)


def _numbers(col: pd.Series, name: str, file: Path) -> np.ndarray:
    num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(num)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{file}: column '{name}' has {int(bad.sum())} missing or non-numeric value(s); "
            f"first at data row {i + 1}: expected a finite number, got {_show(col.iloc[i])}"
        )
    return num


def _check_unique(users: np.ndarray, values: np.ndarray, file: Path, frame: pd.DataFrame,
                  what: str) -> None:
    """Each (user, value) at most once: a pair listed twice, or a rank given twice."""
    order = np.lexsort((np.arange(len(users)), values, users))
    same = (users[order][1:] == users[order][:-1]) & (values[order][1:] == values[order][:-1])
    if not same.any():
        return
    i = int(order[1:][same].min())
    label = "duplicate (user_id, item_id) pair(s)" if what == "item_id" else \
        "repeated rank(s) within a user's list"
    raise DataError(
        f"{file}: {int(same.sum())} {label}; first at data row {i + 1}: "
        f"({_show(frame['user_id'].iloc[i])}, {_show(frame[what].iloc[i])}). Expected "
        f"{'each item once per user' if what == 'item_id' else 'one item per rank'}"
    )


def _show(value) -> str:
    if hasattr(value, "item"):
        value = value.item()
    return repr(value)
