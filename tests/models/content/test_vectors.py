"""Item vectors: tokenizer, TF-IDF, year bins, block weights, empty rows."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.errors import ConfigError
from bench.models.content import build_item_vectors, tfidf, tokenize
from bench.models.content.vectors import title_counts, year_bins


def features(titles, years, genres, tags=None, tag_names=()):
    n = len(titles)
    g = sp.csr_matrix(np.asarray(genres, dtype=np.float32).reshape(n, -1))
    t = None if tags is None else sp.csr_matrix(np.asarray(tags, dtype=np.float32))
    return ItemFeatures(
        pd.Index(range(n), name="item_id"),
        np.asarray(titles, dtype=object),
        np.asarray(years, dtype=np.float64),
        g,
        tuple(f"g{i}" for i in range(g.shape[1])),
        t,
        tuple(tag_names),
    )


def test_tokenize_drops_year_and_punctuation():
    assert tokenize("Toy Story (1995)") == ["toy", "story"]
    assert tokenize("Monsters, Inc. (2001)") == ["monsters", "inc"]
    assert tokenize("2001: A Space Odyssey") == ["2001", "a", "space", "odyssey"]
    assert tokenize("") == []


def test_tfidf_hand_computed_three_titles():
    titles = ["Toy Story (1995)", "Toy Soldiers (1991)", "Story of Us (1999)"]
    counts, words = title_counts(np.asarray(titles, dtype=object))
    assert words == ("of", "soldiers", "story", "toy", "us")
    m, keep = tfidf(counts, min_df=1)
    assert keep.tolist() == [0, 1, 2, 3, 4]
    dense = m.toarray()
    l15, l3 = math.log(3 / 2), math.log(3)
    expected = np.array(
        [
            [0, 0, l15, l15, 0],  # toy, story: df 2 of N=3
            [0, l3, 0, l15, 0],  # soldiers: df 1
            [l3, 0, l15, 0, l3],
        ]
    )
    np.testing.assert_allclose(dense, expected, rtol=1e-12)
    m2, keep2 = tfidf(counts, min_df=2)  # only story and toy survive
    assert [words[i] for i in keep2] == ["story", "toy"]
    np.testing.assert_allclose(m2.toarray(), [[l15, l15], [0, l15], [l15, 0]], rtol=1e-12)


def test_tfidf_word_in_every_title_weighs_nothing_and_empty_titles_do_not_count():
    counts, words = title_counts(np.asarray(["item 1", "item 2", ""], dtype=object))
    m, keep = tfidf(counts, min_df=1)
    # N = 2 non-empty titles; "item" has df 2 -> idf ln(1) = 0, dropped; "1", "2": idf ln 2
    assert words == ("1", "2", "item")
    assert keep.tolist() == [0, 1]
    np.testing.assert_allclose(m.toarray(), [[math.log(2), 0], [0, math.log(2)], [0, 0]])


def test_year_bins_decades_and_nan():
    m, labels = year_bins(np.array([1995.0, 1999.0, np.nan, 2003.0]), 10)
    assert labels == ("1990", "2000")
    assert m.toarray().tolist() == [[1, 0], [1, 0], [0, 0], [0, 1]]
    m5, labels5 = year_bins(np.array([1995.0, 1999.0]), 5)
    assert labels5 == ("1995",) and m5.toarray().tolist() == [[1], [1]]


def test_blocks_weighted_then_rows_normalised():
    f = features(
        ["A", "B", ""],
        [1995.0, np.nan, np.nan],
        [[1, 1], [1, 0], [0, 0]],
    )
    v = build_item_vectors(f, weights={"genres": 1.0, "year": 0.5}, min_df=1)
    assert v.feature_names == ("genres:g0", "genres:g1", "year:1990")
    # item 0: genres [1/sqrt2, 1/sqrt2] (unit), year [0.5]; then divided by sqrt(1 + 0.25)
    s = math.sqrt(1.25)
    np.testing.assert_allclose(
        v.matrix.toarray(),
        [[1 / math.sqrt(2) / s, 1 / math.sqrt(2) / s, 0.5 / s], [1, 0, 0], [0, 0, 0]],
        rtol=1e-6,
    )
    assert v.has_vector.tolist() == [True, True, False]


def test_title_and_tag_blocks():
    f = features(
        ["Toy Story", "Toy Soldiers", "Story of Us"],
        [np.nan] * 3,
        np.zeros((3, 0)),
        tags=[[2, 0], [1, 0], [0, 0]],
        tag_names=("pixar", "war"),
    )
    v = build_item_vectors(f, weights={"title": 1.0, "tags": 1.0}, min_df=2)
    # titles keep story, toy (df 2 of N=3); the tag pixar is on every tagged item (df 2 of
    # N=2 -> idf 0) and war on none: no tag column survives
    assert v.feature_names == ("title:story", "title:toy")
    dense = v.matrix.toarray()
    np.testing.assert_allclose(dense[0, :2], [1 / math.sqrt(2)] * 2, rtol=1e-6)
    np.testing.assert_allclose(dense[1, :2], [0, 1], rtol=1e-6)
    np.testing.assert_allclose(dense[2, :2], [1, 0], rtol=1e-6)


def test_missing_tags_block_is_skipped():
    f = features(["a", "b"], [2000.0, 2001.0], [[1], [1]])
    v = build_item_vectors(f)  # default weights include tags, but there are none
    assert not any(n.startswith("tags:") for n in v.feature_names)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weights": {"genre": 1.0}}, "unknown key"),
        ({"weights": {"genres": -1.0}}, "weights.genres"),
        ({"weights": {"genres": 0.0}}, "at least one weight"),
        ({"weights": [1, 2]}, "mapping"),
        ({"min_df": 0}, "min_df"),
        ({"year_bin": 2.5}, "year_bin"),
    ],
)
def test_bad_vector_params(kwargs, match):
    f = features(["a"], [2000.0], [[1]])
    with pytest.raises(ConfigError, match=match):
        build_item_vectors(f, **kwargs)
