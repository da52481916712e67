"""Item side information: genres (multi-hot), titles, release years and tags.

:class:`ItemFeatures` is indexed by the item ids of the source data and can be aligned
to any item vocabulary with :meth:`ItemFeatures.align`; items it does not know get
empty rows and unknown years (NaN), never invented values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.errors import DataError

NO_GENRE = "(no genres listed)"


@dataclass(frozen=True, eq=False)
class ItemFeatures:
    """Item attributes aligned to ``item_ids``.

    Attributes:
        item_ids: the ids row ``i`` of every array describes.
        titles: object array of titles ("" when unknown).
        years: float64 release years, NaN when unknown.
        genres: float32 CSR multi-hot (items x genres), columns named by ``genre_names``.
        tags: float32 CSR tag counts (items x tags) or ``None`` when the source has no tags.
    """

    item_ids: pd.Index
    titles: np.ndarray
    years: np.ndarray
    genres: sp.csr_matrix
    genre_names: tuple[str, ...]
    tags: sp.csr_matrix | None = None
    tag_names: tuple[str, ...] = ()

    @classmethod
    def from_frame(
        cls,
        movies: pd.DataFrame,
        *,
        tags: pd.DataFrame | None = None,
        source: str = "<items>",
        genre_sep: str = "|",
    ) -> ItemFeatures:
        """Build from a frame with ``item_id`` and any of ``title``, ``year``, ``genres``.

        ``genres`` is a ``genre_sep``-separated string per item (MovieLens style), or
        already a list. ``tags`` is an optional frame of ``item_id, tag`` rows (one per
        tag application); counts become the tag matrix. Duplicate item ids keep the first
        row. When ``year`` is absent it is read from a trailing ``(YYYY)`` in the title.
        """
        if "item_id" not in movies.columns:
            raise DataError(
                f"{source}: missing required column ['item_id']; found columns "
                f"{[str(c) for c in movies.columns]}"
            )
        movies = movies.drop_duplicates("item_id", keep="first").reset_index(drop=True)
        if movies["item_id"].isna().any():
            i = int(np.flatnonzero(movies["item_id"].isna().to_numpy())[0])
            raise DataError(f"{source}: column 'item_id' data row {i + 1}: expected an id, got NaN")
        ids = pd.Index(movies["item_id"], name="item_id")
        n = len(ids)
        titles = (
            movies["title"].fillna("").astype(str).to_numpy(dtype=object)
            if "title" in movies.columns
            else np.full(n, "", dtype=object)
        )
        if "year" in movies.columns:
            years = pd.to_numeric(movies["year"], errors="coerce").to_numpy(dtype=np.float64)
        else:
            found = pd.Series(titles).str.extract(r"\((\d{4})\)\s*$")[0]
            years = pd.to_numeric(found, errors="coerce").to_numpy(dtype=np.float64)
        if "genres" in movies.columns:
            lists = movies["genres"].apply(
                lambda g: list(g)
                if isinstance(g, list | tuple)
                else ([] if pd.isna(g) or g == "" else str(g).split(genre_sep))
            )
            genres, genre_names = _multi_hot(lists, exclude=(NO_GENRE,))
        else:
            genres, genre_names = sp.csr_matrix((n, 0), dtype=np.float32), ()
        tag_m, tag_names = None, ()
        if tags is not None and len(tags):
            tag_m, tag_names = _tag_counts(tags, ids)
        return cls(ids, titles, years, genres, genre_names, tag_m, tag_names)

    def __len__(self) -> int:
        return len(self.item_ids)

    def align(self, item_ids: pd.Index) -> ItemFeatures:
        """Reorder (and pad) rows to match ``item_ids``; unknown items get empty rows."""
        pos = self.item_ids.get_indexer(item_ids)
        known = pos >= 0
        n = len(item_ids)
        titles = np.full(n, "", dtype=object)
        titles[known] = self.titles[pos[known]]
        years = np.full(n, np.nan)
        years[known] = self.years[pos[known]]
        return ItemFeatures(
            pd.Index(item_ids, name="item_id"),
            titles,
            years,
            _take_rows(self.genres, pos),
            self.genre_names,
            None if self.tags is None else _take_rows(self.tags, pos),
            self.tag_names,
        )

    def genre_frame(self) -> pd.DataFrame:
        """Dense 0/1 genre table indexed by item id (for inspection and reports)."""
        return pd.DataFrame(
            self.genres.toarray(), index=self.item_ids, columns=list(self.genre_names)
        )


def _multi_hot(lists: pd.Series, exclude: tuple[str, ...] = ()) -> tuple[sp.csr_matrix, tuple]:
    exploded = lists.explode()
    exploded = exploded[exploded.notna() & ~exploded.isin(exclude)].astype(str).str.strip()
    exploded = exploded[exploded != ""]
    names = tuple(sorted(exploded.unique()))
    col = pd.Index(names).get_indexer(exploded.to_numpy())
    rows = exploded.index.to_numpy()
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, col)), shape=(len(lists), len(names))
    )
    m.data[:] = 1.0  # a genre listed twice is still one genre
    return m, names


def _tag_counts(tags: pd.DataFrame, ids: pd.Index) -> tuple[sp.csr_matrix, tuple]:
    t = tags[["item_id", "tag"]].dropna()
    t = t.assign(tag=t["tag"].astype(str).str.strip().str.lower())
    t = t[t["tag"] != ""]
    rows = ids.get_indexer(t["item_id"])
    t = t[rows >= 0]
    rows = rows[rows >= 0]
    codes, names = pd.factorize(t["tag"], sort=True)
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, codes)), shape=(len(ids), len(names))
    )
    m.sum_duplicates()
    return m, tuple(str(x) for x in names)


def _take_rows(m: sp.csr_matrix, pos: np.ndarray) -> sp.csr_matrix:
    padded = sp.vstack([m, sp.csr_matrix((1, m.shape[1]), dtype=m.dtype)]).tocsr()
    return padded[np.where(pos >= 0, pos, m.shape[0])]
