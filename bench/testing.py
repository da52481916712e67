"""The conformance kit: the checks every built-in model passes, for any model.

A team that writes its own :class:`~bench.models.base.Recommender` puts one line in its
tests (as with scikit-learn's ``check_estimator``)::

    from bench.testing import check_recommender

    def test_my_model_conforms():
        check_recommender(MyModel, params={"factors": 8})

``check_recommender`` fits the model on a small synthetic dataset with planted structure
(user segments with genre tastes, plus random demographics so segment rules have
something to read) and runs the checks in :data:`CHECKS`. The first failing check raises
an ``AssertionError`` whose message starts with ``check '<name>' failed``. The built-in
models run the same function (``tests/models/test_conformance.py``).

The checks (what ``bench`` relies on when it evaluates, logs and compares a model):

* ``declares_what_it_is`` — a ``Recommender`` with a known ``family`` and a docstring;
* ``params_round_trip`` — ``type(m)(**m.get_params())`` has the same ``repr``
  (what Hydra, MLflow and the config hash rely on);
* ``not_fitted_error`` — recommending before ``fit`` raises ``NotFittedError``;
* ``fit_returns_self``;
* ``lists_well_formed`` — at most k unique items per user, scores non-increasing, padding
  (item -1, score NaN) only at the end, no training item, an unknown user handled, most
  test users served, every source label declared in ``source_names()``;
* ``recommend_frame`` — ``recommend(ids)`` gives ``user_id, item_id, rank, score, source``,
  ranks 1..n, and an unknown id is no crash;
* ``deterministic`` — two models from the same parameters give bitwise the same lists;
* ``batch_size_invariant`` — another batch size gives the same lists (scores to 1e-5);
* ``fit_shared`` — a second model fitted while the first one's fit is shared
  (:mod:`bench.models.fitshare`: a run fits equal models once) takes the first one's
  learned state, gives the lists of a model fitted on its own (also with fold-in
  history), and recommending from either never writes the shared state;
* ``unknown_pairs_nan`` — a rating predictor predicts NaN for unknown users and items;
* ``planted_tastes`` (only with ``personalised=True``) — the model recommends in-taste
  items at least 0.1 more often than the better of random (its expected share) and
  all-time popularity;
* ``lists_well_formed`` and the other list checks run on a split whose vocabulary holds
  users and items with no training row; ``sees_training_vocabulary`` checks that ``fit``
  re-coded the training rows to the training vocabulary (plus the side information the
  model declares in ``extra_vocabulary``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data.synthetic import SyntheticDataset, generate_synthetic
from bench.errors import NotFittedError
from bench.models.base import Recommender
from bench.models.fitshare import SharedFits, fit_signature, leaves, sharing
from bench.splits.base import Split

__all__ = [
    "CHECKS",
    "FAMILIES",
    "ConformanceData",
    "check_recommender",
    "conformance_data",
    "taste_share",
]

FAMILIES = ("rule", "content", "collaborative", "hybrid")
#: The checks run by default, in order.
CHECKS = (
    "declares_what_it_is",
    "params_round_trip",
    "not_fitted_error",
    "fit_returns_self",
    "lists_well_formed",
    "recommend_frame",
    "deterministic",
    "batch_size_invariant",
    "fit_shared",
    "unknown_pairs_nan",
    "sees_training_vocabulary",
)
#: Opt-in checks (``personalised=True`` or by name in ``checks``).
OPTIONAL_CHECKS = ("planted_tastes",)
#: How much more often than the non-personal floors a personalised model must hit tastes.
TASTE_MARGIN = 0.1


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (cache key)
class ConformanceData:
    """The data the checks run on: a synthetic dataset, user features and one split."""

    dataset: SyntheticDataset
    user_features: pd.DataFrame
    split: Split


@cache
def conformance_data() -> ConformanceData:
    """200 users x 120 items, 4,000 rows, 4 taste segments; a temporal 80/20 split (cached)."""
    from bench.splits.temporal import GlobalTemporalSplitter

    ds = generate_synthetic(n_users=200, n_items=120, n_interactions=4000, n_segments=4,
                            n_genres=8, seed=3)
    uf = ds.user_features.copy()
    rng = np.random.default_rng(0)
    uf["age"] = rng.integers(15, 70, len(uf))
    uf["gender"] = rng.choice(["F", "M"], len(uf))
    uf["occupation"] = rng.choice(["student", "engineer", "artist", "other"], len(uf))
    split = GlobalTemporalSplitter(quantile=0.8, cold_users="keep").split(ds.interactions)[0]
    return ConformanceData(ds, uf, split)


def check_recommender(
    model: type[Recommender] | Callable[[], Recommender],
    params: Mapping[str, object] | None = None,
    *,
    k: int = 10,
    personalised: bool = False,
    checks: Iterable[str] | None = None,
    data: ConformanceData | None = None,
) -> list[str]:
    """Run the conformance checks on a model; return the names of the checks that ran.

    Args:
        model: a ``Recommender`` subclass (built as ``model(**params)``) or a factory
            called with no arguments that returns a new, unfitted model each time.
        params: constructor keyword arguments when ``model`` is a class.
        k: list length the checks ask for.
        personalised: also run ``planted_tastes`` (for models meant to personalise).
        checks: run only these (names from :data:`CHECKS` and :data:`OPTIONAL_CHECKS`).
        data: what to fit on; default :func:`conformance_data`.

    Raises:
        AssertionError: ``check '<name>' failed for <model>: <what was wrong>``; an
            exception the model raises during a check is reported the same way.
        ValueError: an unknown check name, or ``params`` given with a factory.
    """
    if params is not None and not isinstance(model, type):
        raise ValueError("params: expected None when model is a factory (pass a class)")
    if isinstance(model, type):
        cls, kwargs = model, dict(params or {})

        def make() -> Recommender:
            return cls(**kwargs)
    else:
        make = model
    names = list(checks) if checks is not None else [
        *CHECKS, *(OPTIONAL_CHECKS if personalised else ())]
    unknown = [n for n in names if n not in CHECKS and n not in OPTIONAL_CHECKS]
    if unknown:
        raise ValueError(
            f"checks: unknown name(s) {unknown}; expected some of {[*CHECKS, *OPTIONAL_CHECKS]}"
        )
    run = _Run(make, data or conformance_data(), k)
    for name in names:
        try:
            getattr(run, name)()
        except AssertionError as exc:
            raise AssertionError(f"check {name!r} failed for {run.label}: {exc}") from exc
        except Exception as exc:
            raise AssertionError(
                f"check {name!r} failed for {run.label}: {type(exc).__name__}: {exc}"
            ) from exc
    return names


def taste_share(model: Recommender, data: ConformanceData | None = None, k: int = 10) -> float:
    """Share of a fitted model's top-k items that are in the user's planted taste."""
    data = data or conformance_data()
    users = data.split.test.present_users()
    top = model.recommend_codes(users, k)
    uid = data.split.test.user_ids[users]
    seg = data.dataset.user_features.loc[uid, "segment"].to_numpy().astype(int)
    taste = data.dataset.in_taste[seg][np.arange(len(users))[:, None], np.maximum(top.items, 0)]
    return float(taste[top.items >= 0].mean())


@cache
def _floors(data: ConformanceData, k: int) -> tuple[float, float]:
    """Taste shares of the random floor and all-time popularity on ``data``.

    The random floor is the expected share of a uniformly random list, not one seeded
    draw (one draw varies by about 0.02 from seed to seed): per test user, the share of
    in-taste items among the items a random ranking draws from (those with a training
    row the user has not seen), averaged over users.
    """
    from bench.models.rule.popular import PopularityRecommender

    train = data.split.train
    users = data.split.test.present_users()
    uid = data.split.test.user_ids[users]
    seg = data.dataset.user_features.loc[uid, "segment"].to_numpy().astype(int)
    taste = data.dataset.in_taste[seg]
    seen = train.to_csr()[users].toarray() > 0
    pool = ~seen & (train.item_counts() > 0)[None, :]
    size = pool.sum(axis=1)
    random_share = float(((taste & pool).sum(axis=1)[size > 0] / size[size > 0]).mean())
    model = PopularityRecommender()
    model.fit(train, item_features=data.dataset.item_features,
              user_features=data.user_features)
    return random_share, taste_share(model, data, k)


def _learned_digest(model: Recommender) -> dict[str, str]:
    """SHA-256 of every array and sparse matrix of each leaf model's attributes."""
    out = {}
    for i, leaf in enumerate(leaves(model)):
        for name, value in vars(leaf).items():
            if sp.issparse(value):
                value = sp.csr_matrix(value)
                arrays = (value.data, value.indices, value.indptr)
            elif isinstance(value, np.ndarray) and value.dtype != object:
                arrays = (value,)
            else:
                continue
            h = hashlib.sha256()
            for arr in arrays:
                h.update(np.ascontiguousarray(arr).tobytes())
            out[f"{i}.{name}"] = h.hexdigest()
    return out


def _require(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class _Run:
    """One model under test: the factory, the data, and a fitted model made on demand."""

    def __init__(self, make: Callable[[], Recommender], data: ConformanceData, k: int):
        self.make, self.data, self.k = make, data, k
        self._fitted: Recommender | None = None
        self.label = "the model"
        first = make()
        self.label = type(first).__name__

    def fit(self) -> Recommender:
        model = self.make()
        out = model.fit(self.data.split.train, item_features=self.data.dataset.item_features,
                        user_features=self.data.user_features)
        _require(out is model, f"fit must return self, got {type(out).__name__}")
        return model

    @property
    def fitted(self) -> Recommender:
        if self._fitted is None:
            self._fitted = self.fit()
        return self._fitted

    def test_users(self) -> np.ndarray:
        return self.data.split.test.present_users()

    # ------------------------------------------------------------------ checks
    def declares_what_it_is(self) -> None:
        model = self.make()
        _require(isinstance(model, Recommender),
                 f"expected a bench.models.base.Recommender, got {type(model).__name__}")
        _require(model.family in FAMILIES,
                 f"family: expected one of {list(FAMILIES)}, got {model.family!r}")
        _require((type(model).__doc__ or "").strip(),
                 "expected a class docstring stating the model's assumptions")

    def params_round_trip(self) -> None:
        model = self.make()
        clone = type(model)(**model.get_params())
        _require(repr(clone) == repr(model),
                 f"type(m)(**m.get_params()) gives {clone!r}, expected {model!r}")

    def not_fitted_error(self) -> None:
        try:
            self.make().recommend_codes(np.array([0]), self.k)
        except NotFittedError:
            return
        raise AssertionError("recommend_codes before fit: expected NotFittedError, got none")

    def fit_returns_self(self) -> None:
        self._fitted = self.fit()

    def lists_well_formed(self) -> None:
        model, k = self.fitted, self.k
        users = np.append(self.test_users(), -1)  # plus a user nobody has seen
        top = model.recommend_codes(users, k)
        _require(top.items.shape == (len(users), k) and top.scores.shape == (len(users), k),
                 f"expected items and scores of shape {(len(users), k)}, got "
                 f"{top.items.shape} and {top.scores.shape}")
        filled = top.items >= 0
        _require((np.diff(filled.astype(int), axis=1) <= 0).all(),
                 "padding (item -1) must only come at the end of a list")
        _require(np.array_equal(np.isnan(top.scores), ~filled),
                 "scores must be NaN exactly where the item is -1 (padding)")
        for row, ok in zip(top.items, filled, strict=True):
            _require(len(set(row[ok])) == ok.sum(), f"a list repeats an item: {row[ok]}")
        s = np.where(filled, top.scores, np.float32(-3e38))
        _require((np.diff(s, axis=1) <= 0)[filled[:, 1:]].all(),
                 "scores must be non-increasing along each list")
        seen = self.data.split.train.to_csr()  # the data's codes, as recommend_codes'
        known = users >= 0
        for u, row in zip(users[known], top.items[known], strict=True):
            overlap = set(row[row >= 0]) & set(seen.indices[seen.indptr[u]:seen.indptr[u + 1]])
            _require(not overlap, f"user code {u} is recommended training items {overlap}")
        served = filled[:-1].any(axis=1).mean()
        _require(served > 0.5, f"only {served:.0%} of known test users get a list; expected most")
        labels = set(model.source_labels(top)[filled])
        _require(labels <= set(model.source_names()),
                 f"source labels {sorted(labels)} not all in source_names() "
                 f"{list(model.source_names())}")

    def recommend_frame(self) -> None:
        model, test = self.fitted, self.data.split.test
        ids = [*list(test.user_ids[self.test_users()[:5]]), "no-such-user"]
        frame = model.recommend(ids, k=self.k)
        columns = ["user_id", "item_id", "rank", "score", "source"]
        _require(list(frame.columns) == columns,
                 f"recommend(): expected columns {columns}, got {list(frame.columns)}")
        ranks = frame.groupby("user_id")["rank"].apply(list)
        _require(all(r == list(range(1, len(r) + 1)) for r in ranks),
                 "recommend(): ranks must run 1..n for each user")
        _require(frame["source"].notna().all(), "recommend(): every row must name its source")

    def deterministic(self) -> None:
        users = self.test_users()
        a = self.fitted.recommend_codes(users, self.k)
        b = self.fit().recommend_codes(users, self.k)
        _require(np.array_equal(a.items, b.items),
                 "two models with the same parameters give different lists")
        _require(np.array_equal(a.scores, b.scores, equal_nan=True),
                 "two models with the same parameters give different scores")

    def batch_size_invariant(self) -> None:
        # BLAS may pick another kernel for another block shape: scores may differ in the
        # last float32 bit, the lists may not
        users = self.test_users()
        a = self.fitted.recommend_codes(users, self.k)
        c = self.fitted.recommend_codes(users, self.k, batch_size=7)
        _require(np.array_equal(a.items, c.items), "batch_size=7 changes the lists")
        _require(np.allclose(a.scores, c.scores, rtol=1e-5, atol=1e-7, equal_nan=True),
                 "batch_size=7 changes the scores beyond rounding")

    def fit_shared(self) -> None:
        train = self.data.split.train
        first, second = self.make(), self.make()
        shared = SharedFits.plan([(first, train), (second, train)])
        with sharing(shared):
            for model in (first, second):
                model.fit(train, item_features=self.data.dataset.item_features,
                          user_features=self.data.user_features)
            # every shareable leaf of the second model, and the first model's leaves
            # equal to an earlier one of its own (a cascade's two ALS)
            signatures = [s for s in map(fit_signature, leaves(second)) if s is not None]
            expected = 2 * len(signatures) - len(set(signatures))
            _require(sum(shared.reused.values()) == expected,
                     f"expected {expected} fit(s) to reuse a shared one, "
                     f"{sum(shared.reused.values())} did")
        _require(len(shared) == 0, "the shared states must be dropped after the last fit")
        before = _learned_digest(first)
        users = np.append(self.test_users(), -1)
        # fold-in: the first users' histories plus one item, for users and unknown ones
        rows = np.arange(len(users))
        history = self.data.split.train.to_csr()[np.maximum(users, 0)] + sp.csr_matrix(
            (np.ones(len(users), np.float32), (rows, np.zeros_like(rows))),
            shape=(len(users), self.data.split.train.n_items))
        history.data[:] = 1.0
        alone = self.fitted
        for model in (first, second):
            for kwargs in ({}, {"history": history}, {"batch_size": 7}):
                a = model.recommend_codes(users, self.k, **kwargs)
                b = alone.recommend_codes(users, self.k, **kwargs)
                _require(np.array_equal(a.items, b.items)
                         and np.array_equal(a.scores, b.scores, equal_nan=True),
                         f"a model fitted under sharing gives other lists ({kwargs or 'plain'})")
            if model.predicts_ratings:
                test = self.data.split.test
                _require(np.array_equal(model.predict_codes(test.users, test.items),
                                        alone.predict_codes(test.users, test.items),
                                        equal_nan=True),
                         "a model fitted under sharing predicts other ratings")
        _require(_learned_digest(first) == before,
                 "recommending wrote into the learned state, which fits share")

    def unknown_pairs_nan(self) -> None:
        model = self.fitted
        if not model.predicts_ratings:
            return
        pred = model.predict_codes(np.array([-1, self.test_users()[0]]), np.array([0, -1]))
        _require(np.isnan(pred).all(),
                 f"unknown users and items must be predicted NaN, never a default; got {pred}")

    def sees_training_vocabulary(self) -> None:
        # a user and the most popular item lose their training rows but stay in the data's
        # vocabulary, as test-only ids of a split do: fit must never see them
        train = self.data.split.train
        item = int(np.argmax(train.item_counts()))
        user = int(train.users[0])
        sub = train.take((train.items != item) & (train.users != user),
                         source=f"{train.source}[minus one user and item]")
        model = self.make()
        model.fit(sub, item_features=self.data.dataset.item_features,
                  user_features=self.data.user_features)
        sources = model.vocabulary_sources()
        if "data" in sources:
            return
        seen = model.train_
        want_users = set(sub.user_ids[np.unique(sub.users)].tolist())
        want_items = set(sub.item_ids[np.unique(sub.items)].tolist())
        if "user_features" in sources:
            want_users |= set(self.data.user_features.index.tolist())
        if "item_features" in sources and self.data.dataset.item_features is not None:
            want_items |= set(self.data.dataset.item_features.item_ids.tolist())
        _require(set(seen.user_ids.tolist()) == want_users,
                 f"fit saw {seen.n_users} user ids; expected the {len(want_users)} with a "
                 f"training row (plus declared side information)")
        _require(set(seen.item_ids.tolist()) == want_items,
                 f"fit saw {seen.n_items} item ids; expected the {len(want_items)} with a "
                 f"training row (plus declared side information)")
        if "item_features" not in sources:
            top = model.recommend_codes(self.test_users(), self.k)
            _require(not (top.items == item).any(),
                     f"item code {item} has no training row but was recommended")

    def planted_tastes(self) -> None:
        share = taste_share(self.fitted, self.data, self.k)
        random_share, popular_share = _floors(self.data, self.k)
        floor = max(random_share, popular_share)
        _require(share >= floor + TASTE_MARGIN,
                 f"{share:.3f} of recommendations are in the user's planted taste; expected "
                 f">= {floor + TASTE_MARGIN:.3f} (random gets {random_share:.3f}, popularity "
                 f"{popular_share:.3f})")
