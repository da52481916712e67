"""Item vectors for the content rung: genres, title words, release-year bins and tags.

:func:`build_item_vectors` turns an :class:`~bench.data.features.ItemFeatures` (already
aligned to a model's item codes) into one sparse row per item:

* **genres** — the multi-hot genre columns as they are;
* **title** — TF-IDF of the title's words: lowercase runs of letters and digits, with a
  trailing ``(YYYY)`` removed first; ``tf`` is the raw count of the word in the title and
  ``idf = ln(N / df)``, where ``N`` is the number of items with at least one title word and
  ``df`` the number of those items whose title has the word. Words found in fewer than
  ``min_df`` titles are dropped, and so is a word in every title (``idf = 0``);
* **year** — one-hot of the release-year bin ``floor(year / year_bin) * year_bin`` (decades by
  default); an unknown year (NaN) has no bin;
* **tags** — TF-IDF of the tag counts (same ``idf`` and ``min_df``, ``N`` counting items with
  at least one tag), when the features carry tags; otherwise the block is empty.

Each block's rows are L2-normalised and multiplied by the block's weight, the blocks are
concatenated, and the rows L2-normalised again, so ``V @ V.T`` is the cosine similarity.
An item whose row is all zeros (no feature at all, or only zero-weighted ones) has no
vector: the content models cannot score it and return NaN.

The vocabulary statistics (``df``) are computed over every item in the aligned table,
that is the whole catalogue the model's vocabulary knows, including items that have no
training interaction. That uses item metadata only, never interactions, and is what lets
the content rung rank new items.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.errors import ConfigError

BLOCKS = ("genres", "title", "year", "tags")
"""Names of the feature blocks, in the order their columns are concatenated."""

DEFAULT_WEIGHTS: Mapping[str, float] = {"genres": 1.0, "title": 0.5, "year": 0.5, "tags": 1.0}
"""Block weights used when a model's ``weights`` is ``None``."""

_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, eq=False)
class ItemVectors:
    """Item vectors aligned to item codes.

    Attributes:
        matrix: float32 CSR ``(n_items, n_features)``; every non-empty row has unit L2 norm.
        feature_names: one label per column, ``"<block>:<value>"`` (``"genres:Drama"``,
            ``"title:story"``, ``"year:1990"``, ``"tags:pixar"``).
        has_vector: boolean mask over items whose row is not all zeros.
    """

    matrix: sp.csr_matrix
    feature_names: tuple[str, ...]
    has_vector: np.ndarray

    @property
    def n_features(self) -> int:
        return self.matrix.shape[1]


def tokenize(title: str) -> list[str]:
    """Lowercase word tokens of a title, after removing a trailing ``(YYYY)``.

    ``"Toy Story (1995)"`` gives ``["toy", "story"]``; punctuation separates words and is
    dropped (``"Monsters, Inc."`` gives ``["monsters", "inc"]``).
    """
    return _WORD.findall(_YEAR_SUFFIX.sub("", str(title)).lower())


def tfidf(counts: sp.csr_matrix, min_df: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """TF-IDF of a documents x terms count matrix; returns the matrix and kept columns.

    ``tf`` is the count, ``idf = ln(N / df)`` with ``N`` the number of non-empty documents
    and ``df`` the documents containing the term. Terms with ``df < min_df`` are dropped,
    and so are terms in every document (``idf = 0``: they carry nothing); the returned
    index array lists the kept columns. Rows are not normalised.
    """
    counts = sp.csr_matrix(counts, dtype=np.float64)
    present = counts.copy()
    present.data = (present.data > 0).astype(np.float64)
    present.eliminate_zeros()
    df = np.asarray(present.sum(axis=0)).ravel()
    n_docs = int(np.count_nonzero(np.diff(present.indptr)))
    keep = np.flatnonzero((df >= max(1, min_df)) & (df > 0) & (df < n_docs))
    if n_docs == 0 or len(keep) == 0:
        return sp.csr_matrix((counts.shape[0], 0), dtype=np.float64), keep
    idf = np.log(n_docs / df[keep])
    return sp.csr_matrix(counts[:, keep] @ sp.diags(idf)), keep


def title_counts(titles: np.ndarray) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    """Items x words count matrix of the titles (see :func:`tokenize`) and the word list."""
    tokens = pd.Series([tokenize(t) for t in titles], dtype=object)
    exploded = tokens.explode().dropna()
    words, codes = np.unique(exploded.to_numpy(dtype=str), return_inverse=True)
    m = sp.csr_matrix(
        (np.ones(len(codes)), (exploded.index.to_numpy(), codes)),
        shape=(len(titles), len(words)),
    )
    m.sum_duplicates()
    return m, tuple(str(w) for w in words)


def year_bins(years: np.ndarray, width: int) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    """One-hot items x bins of ``floor(year / width) * width``; NaN years have no bin."""
    years = np.asarray(years, dtype=np.float64)
    known = np.isfinite(years)
    starts = (np.floor(years[known] / width) * width).astype(np.int64)
    labels, codes = np.unique(starts, return_inverse=True)
    m = sp.csr_matrix(
        (np.ones(len(codes)), (np.flatnonzero(known), codes)), shape=(len(years), len(labels))
    )
    return m, tuple(str(x) for x in labels)


def l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    m = sp.csr_matrix(m, dtype=np.float64)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ m)


def check_vector_params(owner: str, weights, min_df, year_bin) -> dict[str, float]:
    """Validate the item-vector hyperparameters; return the block weights to use.

    ``weights=None`` means :data:`DEFAULT_WEIGHTS`; a mapping is taken literally (a block
    it does not name gets weight 0, i.e. is not used).

    Raises:
        ConfigError: naming ``owner``, the parameter, what was expected and what was given.
    """
    if weights is None:
        weights = DEFAULT_WEIGHTS
    if not isinstance(weights, Mapping):
        raise ConfigError(
            f"{owner} weights: expected a mapping of {list(BLOCKS)} to non-negative numbers, "
            f"got {weights!r}"
        )
    unknown = sorted(set(weights) - set(BLOCKS))
    if unknown:
        raise ConfigError(
            f"{owner} weights: expected keys among {list(BLOCKS)}, got unknown key(s) {unknown}"
        )
    out = {}
    for name in BLOCKS:
        w = weights.get(name, 0.0)
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ConfigError(f"{owner} weights.{name}: expected a number >= 0, got {w!r}")
        out[name] = float(w)
    if not any(out.values()):
        raise ConfigError(f"{owner} weights: expected at least one weight > 0, got {dict(weights)}")
    for name, value in (("min_df", min_df), ("year_bin", year_bin)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{owner} {name}: expected an integer >= 1, got {value!r}")
    return out


def build_item_vectors(
    features: ItemFeatures,
    *,
    weights: Mapping[str, float] | None = None,
    min_df: int = 2,
    year_bin: int = 10,
) -> ItemVectors:
    """Concatenated, weighted, L2-normalised item vectors (see the module docstring).

    Args:
        features: item features, row ``i`` describing item code ``i``.
        weights: weight of each block (``genres``, ``title``, ``year``, ``tags``); ``None``
            = :data:`DEFAULT_WEIGHTS`; a block left out or weighted 0 is not built.
        min_df: minimum number of items a title word or a tag must occur in.
        year_bin: width of the release-year bins in years (10 = decades).
    """
    w = check_vector_params("build_item_vectors", weights, min_df, year_bin)
    n = len(features)
    blocks: list[sp.csr_matrix] = []
    names: list[str] = []

    def add(name: str, m: sp.csr_matrix, labels) -> None:
        if m.shape[1] == 0:
            return
        blocks.append(l2_rows(m) * w[name])
        names.extend(f"{name}:{x}" for x in labels)

    if w["genres"] > 0:
        add("genres", features.genres, features.genre_names)
    if w["title"] > 0:
        counts, words = title_counts(features.titles)
        m, keep = tfidf(counts, int(min_df))
        add("title", m, [words[i] for i in keep])
    if w["year"] > 0:
        m, labels = year_bins(features.years, int(year_bin))
        add("year", m, labels)
    if w["tags"] > 0 and features.tags is not None:
        m, keep = tfidf(features.tags, int(min_df))
        add("tags", m, [features.tag_names[i] for i in keep])
    if blocks:
        matrix = l2_rows(sp.hstack(blocks, format="csr"))
    else:
        matrix = sp.csr_matrix((n, 0), dtype=np.float64)
    matrix.eliminate_zeros()
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sort_indices()
    has_vector = np.diff(matrix.indptr) > 0
    return ItemVectors(matrix, tuple(names), has_vector)
