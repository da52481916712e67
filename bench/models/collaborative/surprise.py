"""Rating predictors from Surprise (scikit-surprise), wrapped as batch rankers.

Surprise predicts one (user, item) pair at a time and quietly returns the global mean
when it cannot predict. This wrapper fits a Surprise algorithm on a ``Trainset`` built
straight from our :class:`~bench.data.interactions.Interactions` arrays (no text files),
then:

* ranks from the learned arrays in user batches (SVD, SVD++, NMF, BaselineOnly), or
  through the vectorised neighbourhood scorer in
  :mod:`bench.models.collaborative.surprise_neighbours` (KNN*, SlopeOne, CoClustering);
* predicts ratings for (user, item) pairs with the same values ``algo.predict`` gives,
  but NaN — never the global mean — for users or items absent from training and for
  pairs Surprise finds impossible (:meth:`SurpriseRecommender.predict_codes`).

Surprise's own answer for those pairs — its *default* — is applied in one place only,
:meth:`SurpriseRecommender.predict_like_surprise`, which the evaluation calls when
``eval.unscored_ratings`` is ``surprise_default`` (to reproduce Surprise's benchmark).

Raw ids inside the Surprise trainset are the model's integer codes (``int``; its training
vocabulary, :mod:`bench.models.vocabulary`), so ``model.algo_.predict(u_code, i_code)``
is Surprise's own answer for a pair of model codes. The public methods take the codes of
the data given to ``fit`` and map them first.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.rule.random import GOLDEN, mix64

#: Algorithms scored from their learned arrays here: offset + biases + factor products.
LINEAR = ("SVD", "SVDpp", "NMF", "BaselineOnly")
#: Algorithms scored by ``surprise_neighbours.score_batch`` (or the per-pair fallback).
NEIGHBOURS = ("KNNBasic", "KNNWithMeans", "KNNBaseline", "SlopeOne", "CoClustering")
ALGORITHMS = (*LINEAR, *NEIGHBOURS, "NormalPredictor")
#: Algorithms whose constructor takes ``random_state``.
SEEDED = ("SVD", "SVDpp", "NMF", "CoClustering")

# Keyword kinds, for validating ``params`` before Surprise sees them.
_COUNTS = {"n_factors", "n_epochs", "k", "min_k", "n_cltr_u", "n_cltr_i"}
_BOOLS = {"biased", "cache_ratings"}
_OPTION_DICTS = {"sim_options", "bsl_options"}
# Keys that are ours (top-level hyperparameters) or forced (no printing in library code).
_RESERVED = {"random_state", "verbose"}
#: numeric parameters that are rates, penalties or scales (names start with these)
_NON_NEGATIVE = ("reg", "lr", "init_std_dev", "init_low", "init_high")
# The KNN classes take ``bsl_options`` through ``**kwargs`` (used by pearson_baseline).
_EXTRA_KEYS = {"KNNBasic": {"bsl_options"}, "KNNWithMeans": {"bsl_options"}}
_SIM_NAMES = ("cosine", "msd", "pearson", "pearson_baseline")
_SIM_KEYS = {"name", "user_based", "min_support", "shrinkage"}
_BSL_KEYS = {"method", "n_epochs", "reg", "reg_u", "reg_i", "learning_rate"}

#: Users per block in the per-pair fallback for neighbourhood algorithms.
FALLBACK_BLOCK_USERS = 64
#: Pairs per chunk when predicting ratings from factor arrays.
PAIR_CHUNK = 1 << 16


def surprise_class(algorithm: str):
    """The Surprise class named ``algorithm`` (one of :data:`ALGORITHMS`)."""
    import surprise

    return getattr(surprise, algorithm)


def algorithm_defaults(algorithm: str) -> dict[str, object]:
    """Surprise's constructor defaults for ``algorithm``, less ``random_state``/``verbose``."""
    sig = inspect.signature(surprise_class(algorithm).__init__)
    out = {
        p.name: p.default
        for p in sig.parameters.values()
        if p.name != "self"
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in _RESERVED
    }
    for key in _EXTRA_KEYS.get(algorithm, ()):
        out[key] = {}
    return out


def build_trainset(
    train: Interactions,
    rating_scale: tuple[float, float] | None = None,
    order: np.ndarray | None = None,
):
    """A Surprise ``Trainset`` of ``train``'s rows, in their order, with our codes as raw ids.

    ``order`` (positions into ``train``, e.g. ``Split.train_order``) replaces the stored
    row order, so a protocol's own order (Surprise's KFold) reaches the learner.

    Inner ids are given in order of first appearance, exactly as Surprise's
    ``Dataset.construct_trainset`` does when it reads the same rows in the same order, so
    SGD-based algorithms see the ratings in the same sequence and learn the same arrays.

    Returns ``(trainset, user_codes, item_codes)``: ``user_codes[inner]`` is the user
    code of Surprise inner user ``inner`` (likewise items).
    """
    if train.ratings is None:
        raise ConfigError(f"{train.source}: Surprise needs ratings; the data has none")
    from surprise import Trainset

    pos = np.arange(len(train)) if order is None else np.asarray(order, dtype=np.int64)
    if len(pos) != len(train) or (len(pos) and not np.array_equal(np.sort(pos),
                                                                  np.arange(len(train)))):
        raise ConfigError(
            f"{train.source}: train_order must be a permutation of the {len(train)} training "
            f"rows, got {len(pos)} positions"
        )
    users = np.asarray(train.users, dtype=np.int64)[pos]
    items = np.asarray(train.items, dtype=np.int64)[pos]
    ratings = np.asarray(train.ratings, dtype=np.float64)[pos]
    user_codes, u_inner = _first_appearance(users)
    item_codes, i_inner = _first_appearance(items)
    if rating_scale is None:
        rating_scale = train.rating_scale or (float(ratings.min()), float(ratings.max()))
    ur = _grouped_lists(u_inner, i_inner, ratings, len(user_codes))
    ir = _grouped_lists(i_inner, u_inner, ratings, len(item_codes))
    trainset = Trainset(
        ur,
        ir,
        len(user_codes),
        len(item_codes),
        len(ratings),
        (float(rating_scale[0]), float(rating_scale[1])),
        {int(c): n for n, c in enumerate(user_codes.tolist())},
        {int(c): n for n, c in enumerate(item_codes.tolist())},
    )
    return trainset, user_codes, item_codes


def _first_appearance(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct codes in order of first appearance, inner id of every row)."""
    uniq, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return uniq[order], rank[inverse]


def _grouped_lists(keys, others, ratings, n_keys) -> defaultdict:
    """``{key: [(other, rating), ...]}`` keeping row order within each key (keys 0..n-1)."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n_keys + 1))
    other_list = others[order].tolist()
    rating_list = ratings[order].tolist()
    out: defaultdict = defaultdict(list)
    for k in range(n_keys):  # fit-time construction of Surprise's own structure
        lo, hi = bounds[k], bounds[k + 1]
        out[k] = list(zip(other_list[lo:hi], rating_list[lo:hi], strict=True))
    return out


class SurpriseRecommender(Recommender):
    """A Surprise rating predictor (SVD, SVD++, NMF, baselines, k-NN, Slope One, ...).

    Assumes explicit ratings (fitting implicit data raises ``ConfigError``); the rating
    scale is the one the data declares, else the training ratings' min and max. Rankings
    use unclipped estimates (clipping would create ties at the top of the scale):

    * ``SVD``: ``mu + b_u + b_i + p_u . q_i`` (``p_u . q_i`` alone when not ``biased``);
    * ``SVDpp``: ``mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``,
      the implicit term computed once for all users by a sparse product over the
      trainset's item lists;
    * ``NMF``: ``p_u . q_i``, plus ``mu + b_u + b_i`` when ``biased``;
    * ``BaselineOnly``: ``mu + b_u + b_i``;
    * ``KNNBasic``, ``KNNWithMeans``, ``KNNBaseline``, ``SlopeOne``, ``CoClustering``:
      ``surprise_neighbours.score_batch`` when that module is present; otherwise a
      documented slow path calls ``algo.estimate`` per pair, one block of
      :data:`FALLBACK_BLOCK_USERS` users at a time;
    * ``NormalPredictor``: Surprise draws from ``N(mu, sigma)`` with numpy's global RNG
      on every call. Here each (user code, item code) gets one draw from a hash of
      ``(random_state, user, item)`` (Box-Muller), so scores are deterministic and
      independent of batching; ranking by them is random (a floor, like
      ``rule_random``), and ``predict_codes`` returns the same draws.

    Cannot score (NaN): users without training ratings, items never rated in training,
    and pairs Surprise finds impossible (e.g. k-NN with fewer than ``min_k``
    neighbours) — where Surprise itself would answer with a default (the global mean,
    or the known baseline parts for SVD-like and baseline models; see
    :meth:`predict_like_surprise`, the only method that applies it). It uses no
    fold-in history: a user absent from training stays unscored.

    Args:
        algorithm: the Surprise class name, one of :data:`ALGORITHMS`.
        params: keyword arguments for the Surprise constructor (``None`` or missing keys
            = Surprise's defaults). ``random_state`` and ``verbose`` are not accepted
            here: the first is a hyperparameter of its own, the second is always false.
        random_state: seed passed to algorithms that take one (SVD, SVDpp, NMF,
            CoClustering) and used for NormalPredictor's draws; ``None`` lets Surprise
            use numpy's global RNG (not reproducible).
        clip_predictions: clip ``predict_codes`` to the rating scale, as Surprise's
            ``predict`` does by default. Ranking scores are never clipped.
    """

    family = "collaborative"
    predicts_ratings = True

    def __init__(
        self,
        *,
        algorithm: str = "SVD",
        params: Mapping | None = None,
        random_state: int | None = 0,
        clip_predictions: bool = True,
    ):
        self.algorithm = algorithm
        self.params = params
        self.random_state = random_state
        self.clip_predictions = clip_predictions

    # ------------------------------------------------------------------ fit
    def _fit(self, train, item_features, user_features) -> None:
        kwargs = self._constructor_kwargs()
        if not train.has_ratings:
            raise ConfigError(
                f"SurpriseRecommender({self.algorithm}): expected explicit ratings in the "
                f"training data, got none ({train.source}); Surprise predicts ratings"
            )
        trainset, user_codes, item_codes = build_trainset(train, order=self.train_order_)
        algo = surprise_class(self.algorithm)(**kwargs)
        algo.fit(trainset)
        self.algo_ = algo
        self.trainset_ = trainset
        self.user_codes_ = user_codes  # inner -> code
        self.item_codes_ = item_codes
        self.user_inner_ = np.full(train.n_users, -1, dtype=np.int64)  # code -> inner
        self.user_inner_[user_codes] = np.arange(len(user_codes))
        self.item_inner_ = np.full(train.n_items, -1, dtype=np.int64)
        self.item_inner_[item_codes] = np.arange(len(item_codes))
        self.rating_scale_ = tuple(trainset.rating_scale)
        self.global_mean_ = float(trainset.global_mean)
        if self.algorithm in LINEAR:
            self._extract_linear(algo, trainset)
        elif self.algorithm == "NormalPredictor":
            self.sigma_ = float(algo.sigma)

    def _constructor_kwargs(self) -> dict[str, object]:
        """Validated keyword arguments for the Surprise class (a deep copy of ``params``:
        Surprise mutates ``sim_options`` in place)."""
        name = type(self).__name__
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"{name} algorithm: expected one of {list(ALGORITHMS)}, got {self.algorithm!r}"
            )
        params = self.params if self.params is not None else {}
        if not isinstance(params, Mapping):
            raise ConfigError(
                f"{name} params: expected a mapping of {self.algorithm} keyword arguments, "
                f"got {params!r}"
            )
        if not isinstance(self.clip_predictions, bool):
            raise ConfigError(
                f"{name} clip_predictions: expected true or false, got {self.clip_predictions!r}"
            )
        rs = self.random_state
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, numbers.Integral)
                               or not 0 <= rs < 2**32):
            raise ConfigError(
                f"{name} random_state: expected an integer in [0, 2**32 - 1] or null, got {rs!r}"
            )
        defaults = algorithm_defaults(self.algorithm)
        for key, value in params.items():
            where = f"{name}({self.algorithm}) params.{key}"
            if key in _RESERVED:
                raise ConfigError(
                    f"{where}: not accepted here ("
                    + (
                        "set the top-level random_state"
                        if key == "random_state"
                        else "the wrapper never prints"
                    )
                    + f"), got {value!r}"
                )
            if key not in defaults:
                raise ConfigError(
                    f"{where}: unknown parameter; expected one of {sorted(defaults)}, got {key!r}"
                )
            _check_value(where, key, value, defaults[key])
        kwargs = copy.deepcopy({k: _plain(v) for k, v in params.items()})
        if self.algorithm in SEEDED:
            kwargs["random_state"] = None if rs is None else int(rs)
        if "verbose" in inspect.signature(surprise_class(self.algorithm).__init__).parameters:
            kwargs["verbose"] = False
        return kwargs

    def _extract_linear(self, algo, trainset) -> None:
        """``offset + user_bias[u] + item_bias[i] + user_vecs[u] . item_vecs[i]`` arrays."""
        n_u, n_i = trainset.n_users, trainset.n_items
        biased = self.algorithm in ("SVDpp", "BaselineOnly") or bool(algo.biased)
        self.offset_ = self.global_mean_ if biased else 0.0
        self.user_bias_ = np.asarray(algo.bu, dtype=np.float64) if biased else np.zeros(n_u)
        self.item_bias_ = np.asarray(algo.bi, dtype=np.float64) if biased else np.zeros(n_i)
        if self.algorithm == "BaselineOnly":
            self.user_vecs_ = self.item_vecs_ = None
        else:
            pu = np.asarray(algo.pu, dtype=np.float64)
            if self.algorithm == "SVDpp":
                # |N(u)|^-1/2 sum_{j in N(u)} y_j for every user at once: a row-scaled
                # indicator matrix of the trainset's item lists times y.
                lengths = np.array([len(trainset.ur[u]) for u in range(n_u)], dtype=np.int64)
                cols = np.fromiter(
                    (j for u in range(n_u) for j, _ in trainset.ur[u]), np.int64, lengths.sum()
                )
                indptr = np.concatenate([[0], np.cumsum(lengths)])
                data = np.repeat(1.0 / np.sqrt(np.maximum(lengths, 1)), lengths)
                implicit = sp.csr_matrix((data, cols, indptr), shape=(n_u, n_i))
                pu = pu + implicit @ np.asarray(algo.yj, dtype=np.float64)
            self.user_vecs_ = np.ascontiguousarray(pu)
            self.item_vecs_ = np.ascontiguousarray(np.asarray(algo.qi, dtype=np.float64))
        # For ranking, everything in one product: [p_u, mu + b_u, 1] . [q_i, 1, b_i], the
        # item side in item-code order (zero rows for items absent from training; the
        # ranking masks them to NaN).
        ones_u, ones_i = np.ones((n_u, 1)), np.ones((n_i, 1))
        user_parts = [self.offset_ + self.user_bias_[:, None], ones_u]
        item_parts = [ones_i, self.item_bias_[:, None]]
        if self.user_vecs_ is not None:
            user_parts.insert(0, self.user_vecs_)
            item_parts.insert(0, self.item_vecs_)
        self.rank_users_ = np.ascontiguousarray(np.hstack(user_parts))
        self.rank_items_ = np.zeros((len(self.item_inner_), self.rank_users_.shape[1]))
        self.rank_items_[self.item_codes_] = np.hstack(item_parts)
        self.unknown_items_ = np.flatnonzero(self.item_inner_ < 0)

    # ------------------------------------------------------------------ ranking
    def _inner(self, codes: np.ndarray, table: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        ok = (codes >= 0) & (codes < len(table))
        return np.where(ok, table[np.where(ok, codes, 0)], -1)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        inner = self._inner(users, self.user_inner_)
        rows = np.flatnonzero(inner >= 0)
        if self.algorithm in LINEAR and rows.size == len(users):  # the common case
            return self._rank_block(inner)
        scores = np.full((len(users), len(self.item_inner_)), np.nan, dtype=np.float32)
        if rows.size == 0:
            return scores
        if self.algorithm in LINEAR:
            scores[rows] = self._rank_block(inner[rows])
        else:
            scores[np.ix_(rows, self.item_codes_)] = self.score_inner(inner[rows], users[rows])
        return scores

    def _rank_block(self, user_inner: np.ndarray) -> np.ndarray:
        """Linear models: float32 scores in item-code order, NaN for unknown items."""
        block = (self.rank_users_[user_inner] @ self.rank_items_.T).astype(np.float32)
        block[:, self.unknown_items_] = np.nan
        return block

    def score_inner(self, user_inner: np.ndarray, user_codes: np.ndarray | None = None):
        """Unclipped float64 estimates ``(len(user_inner), n_inner_items)`` for known users,
        columns in Surprise inner item order; NaN where Surprise cannot predict."""
        user_inner = np.asarray(user_inner, dtype=np.int64)
        if self.algorithm in LINEAR:
            out = self.offset_ + self.user_bias_[user_inner][:, None] + self.item_bias_[None, :]
            if self.user_vecs_ is not None:
                out += self.user_vecs_[user_inner] @ self.item_vecs_.T
            return out
        if self.algorithm == "NormalPredictor":
            if user_codes is None:
                user_codes = self.user_codes_[user_inner]
            return self._normal_draw(user_codes[:, None], self.item_codes_[None, :])
        return _neighbour_scores(self.algo_, user_inner)

    def _normal_draw(self, user_codes, item_codes) -> np.ndarray:
        """``mu + sigma * z``, z a standard normal hashed from (seed, user code, item code)."""
        seed = 0 if self.random_state is None else int(self.random_state)
        n = np.uint64(len(self.item_inner_))
        with np.errstate(over="ignore"):
            base = mix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * GOLDEN + np.uint64(7))
            key = np.asarray(user_codes).astype(np.uint64) * n + np.asarray(item_codes).astype(
                np.uint64
            )
            x1 = mix64(base ^ (key * np.uint64(2)))
            x2 = mix64(base ^ (key * np.uint64(2) + np.uint64(1)))
        u1 = ((x1 >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53  # (0, 1]
        u2 = (x2 >> np.uint64(11)).astype(np.float64) / 2.0**53
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        return self.global_mean_ + self.sigma_ * z

    # ------------------------------------------------------------------ rating prediction
    def _predict_codes(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Rating estimates for (user code, item code) pairs, float64.

        Equal to ``algo_.predict(u, i).est`` (clipped when ``clip_predictions``) where
        Surprise knows both and can predict; NaN otherwise.
        """
        self._check_fitted()
        users, items = _code_pairs(users, items)
        out = np.full(users.size, np.nan, dtype=np.float64)
        iu = self._inner(users, self.user_inner_)
        ii = self._inner(items, self.item_inner_)
        ok = np.flatnonzero((iu >= 0) & (ii >= 0))
        if self.algorithm in LINEAR:
            for start in range(0, ok.size, PAIR_CHUNK):
                sel = ok[start : start + PAIR_CHUNK]
                u, i = iu[sel], ii[sel]
                est = self.offset_ + self.user_bias_[u] + self.item_bias_[i]
                if self.user_vecs_ is not None:
                    est += np.einsum("ij,ij->i", self.user_vecs_[u], self.item_vecs_[i])
                out[sel] = est
        elif self.algorithm == "NormalPredictor":
            out[ok] = self._normal_draw(users[ok], items[ok])
        else:
            out[ok] = _neighbour_pairs(self.algo_, iu[ok], ii[ok])
        if self.clip_predictions:
            lo, hi = self.rating_scale_
            np.clip(out, lo, hi, out=out)  # NaN stays NaN
        return out

    # ------------------------------------------------------------------ Surprise's default
    def predict_like_surprise(
        self,
        users: np.ndarray,
        items: np.ndarray,
        sequence: np.ndarray | None = None,
        predicted: np.ndarray | None = None,
    ) -> np.ndarray:
        """What Surprise's ``algo.predict(u, i).est`` returns for every pair: never NaN.

        This is the one place where Surprise's default replaces "cannot score". Where
        :meth:`predict_codes` gives a value, it is kept; where it gives NaN (user or item
        absent from training, or a pair Surprise finds impossible), the value is the one
        Surprise's ``predict`` returns instead (scikit-surprise 1.1.5):

        * ``SVD`` and ``NMF`` with ``biased``, ``SVDpp``, ``BaselineOnly``,
          ``KNNBaseline``: the baseline parts that are known, ``mu + b_u + b_i`` with
          ``b_u`` (``b_i``) left out when the user (item) is unknown — their ``estimate``
          never raises;
        * ``SVD`` and ``NMF`` without ``biased``, ``KNNBasic`` (unknown pair, or fewer
          than ``min_k`` neighbours with a positive similarity), ``KNNWithMeans``,
          ``SlopeOne``, ``CoClustering``: ``PredictionImpossible`` (CoClustering returns
          the mean itself), so ``default_prediction()``, the training ratings' global
          mean ``mu``. (Surprise raises ``ZeroDivisionError`` for ``KNNBasic`` with
          ``min_k: 0`` and no positive neighbour; here that pair gets ``mu`` too.)
        * ``NormalPredictor`` draws ``N(mu, sigma)`` for *every* pair, known or not, from
          numpy's global random stream. With ``sequence`` (each pair's number in the
          protocol's sequence of predictions, ``Split.test_sequence``) pair ``j`` gets
          draw number ``sequence[j]`` of ``np.random.RandomState(random_state)`` — the
          draws Surprise's benchmark makes after ``np.random.seed(random_state)``, when
          nothing else uses the global stream (NormalPredictor is the only algorithm that
          does). Without ``sequence``, the hashed draws of :meth:`predict_codes`, for
          every pair.

        Values are clipped to the rating scale when ``clip_predictions`` is true, as
        Surprise's ``predict`` does by default.

        Args:
            users, items: user and item codes of the data given to ``fit``, one per pair
                (equal lengths).
            sequence: non-negative integers, one per pair (NormalPredictor only; ignored
                by the other algorithms), or ``None``.
            predicted: what :meth:`predict_codes` returned for these pairs, when the
                caller already has it (saves scoring them twice); ``None`` computes it.

        Returns:
            float64 array, one finite value per pair.
        """
        if predicted is None:
            pred = self.predict_codes(users, items)
        else:
            pred = np.array(predicted, dtype=np.float64).ravel()  # a copy: filled below
        users, items = _code_pairs(users, items)
        if pred.shape != users.shape:
            raise ConfigError(
                f"predict_like_surprise predicted: expected one value per pair "
                f"({users.size}), got {pred.size}"
            )
        gap = np.flatnonzero(np.isnan(pred))
        if self.algorithm == "NormalPredictor":
            pred = self._normal_like_surprise(users, items, sequence, pred, gap)
        else:
            # users/items are the data's codes; the learned arrays are indexed by the
            # model's (its training vocabulary): map them before looking up a bias
            vocab = self.vocabulary_
            pred[gap] = self._surprise_default(vocab.users_in(users[gap]),
                                               vocab.items_in(items[gap]))
        if self.clip_predictions:
            lo, hi = self.rating_scale_
            np.clip(pred, lo, hi, out=pred)
        return pred

    def _surprise_default(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Surprise's estimate for pairs ``predict_codes`` leaves NaN (see
        :meth:`predict_like_surprise`): ``mu``, plus the known biases for the algorithms
        whose ``estimate`` falls back to its baseline. ``users`` and ``items`` are the
        model's codes (``-1`` outside its vocabulary), like ``_predict_codes``'s."""
        out = np.full(users.size, self.global_mean_, dtype=np.float64)
        if self.algorithm == "KNNBaseline":
            bu, bi = np.asarray(self.algo_.bu), np.asarray(self.algo_.bi)
        elif self.algorithm in ("SVDpp", "BaselineOnly") or (
            self.algorithm in ("SVD", "NMF") and bool(self.algo_.biased)
        ):
            bu, bi = self.user_bias_, self.item_bias_
        else:  # PredictionImpossible -> default_prediction(): the global mean
            return out
        iu = self._inner(users, self.user_inner_)
        ii = self._inner(items, self.item_inner_)
        # Surprise adds in this order: est = mu; est += b_u; est += b_i
        out[iu >= 0] += bu[iu[iu >= 0]]
        out[ii >= 0] += bi[ii[ii >= 0]]
        return out

    def _normal_like_surprise(self, users, items, sequence, pred, gap) -> np.ndarray:
        """NormalPredictor's draw for every pair: the stream Surprise's benchmark uses
        when ``sequence`` is given, else ``pred`` (``predict_codes``'s hashed draws, in
        the model's codes) with the pairs at ``gap`` (a side outside the model's
        vocabulary) hashed from the data's codes."""
        if sequence is None:
            pred[gap] = self._normal_draw(users[gap], items[gap])
            return pred
        seq = np.asarray(sequence).ravel()
        if (seq.shape != users.shape or not np.issubdtype(seq.dtype, np.integer)
                or (seq.size and seq.min() < 0)):
            raise ConfigError(
                f"predict_like_surprise sequence: expected one non-negative integer per pair "
                f"({users.size}), got shape {seq.shape} of {seq.dtype}"
            )
        if seq.size == 0:
            return np.empty(0, dtype=np.float64)
        # np.random.seed(s); then one np.random.normal(mu, sigma) per prediction ==
        # RandomState(s).normal(mu, sigma, n) (the legacy generator, draw for draw)
        rng = np.random.RandomState(self.random_state)
        draws = rng.normal(self.global_mean_, self.sigma_, int(seq.max()) + 1)
        return draws[seq]


# ---------------------------------------------------------------------- neighbourhood scoring
def _score_batch_function():
    """``surprise_neighbours.score_batch`` when that module exists, else ``None``."""
    try:
        from bench.models.collaborative.surprise_neighbours import score_batch
    except ImportError:
        return None
    return score_batch


def _neighbour_scores(algo, user_inner: np.ndarray) -> np.ndarray:
    score_batch = _score_batch_function()
    if score_batch is not None:
        return np.asarray(score_batch(algo, user_inner), dtype=np.float64)
    return _estimate_rows(algo, user_inner)


def _estimate_rows(algo, user_inner: np.ndarray) -> np.ndarray:
    """Slow fallback: ``algo.estimate`` for every (user, item), a block of users at a time.

    Used only while ``surprise_neighbours`` is missing; it is exact (Surprise's own
    code) but costs one Python call per pair, so it suits small data only.
    """
    n_items = algo.trainset.n_items
    out = np.full((len(user_inner), n_items), np.nan, dtype=np.float64)
    for start in range(0, len(user_inner), FALLBACK_BLOCK_USERS):
        block = user_inner[start : start + FALLBACK_BLOCK_USERS]
        u = np.repeat(block, n_items)
        i = np.tile(np.arange(n_items), len(block))
        out[start : start + len(block)] = _estimate_pairs(algo, u, i).reshape(len(block), -1)
    return out


def _neighbour_pairs(algo, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Estimates for inner pairs: rows from ``score_batch`` per block of distinct users
    when available, else Surprise's per-pair ``estimate``."""
    score_batch = _score_batch_function()
    if score_batch is None:
        return _estimate_pairs(algo, u, i)
    out = np.empty(u.size, dtype=np.float64)
    distinct, where = np.unique(u, return_inverse=True)
    block_users = max(1, (1 << 22) // max(1, algo.trainset.n_items))
    for start in range(0, distinct.size, block_users):
        stop = min(start + block_users, distinct.size)
        rows = np.asarray(score_batch(algo, distinct[start:stop]), dtype=np.float64)
        sel = np.flatnonzero((where >= start) & (where < stop))
        out[sel] = rows[where[sel] - start, i[sel]]
    return out


def _estimate_pairs(algo, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    from surprise import PredictionImpossible

    out = np.empty(u.size, dtype=np.float64)
    for n, (uu, ii) in enumerate(zip(u.tolist(), i.tolist(), strict=True)):
        try:
            est = algo.estimate(uu, ii)
        except PredictionImpossible:
            out[n] = np.nan
            continue
        out[n] = est[0] if isinstance(est, tuple) else est
    return out


# ---------------------------------------------------------------------- param validation
def _plain(value):
    """Mappings (e.g. OmegaConf nodes) as plain dicts, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_value(where: str, key: str, value, default) -> None:
    if key in _COUNTS:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    elif key in _BOOLS:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
    elif key in _OPTION_DICTS:
        _check_options(where, key, value)
    elif value is None and default is None:
        return
    elif not (_is_real(value) and math.isfinite(value)):
        expected = "a finite number or null" if default is None else "a finite number"
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    elif key.startswith(_NON_NEGATIVE) and value < 0:
        # surprise divides by them or draws with them as a scale: a traceback otherwise
        raise ConfigError(f"{where}: expected a number >= 0, got {value!r}")


def _check_options(where: str, key: str, value) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    allowed = _SIM_KEYS if key == "sim_options" else _BSL_KEYS
    for k, v in value.items():
        here = f"{where}.{k}"
        if k not in allowed:
            raise ConfigError(f"{here}: unknown option; expected one of {sorted(allowed)}")
        if k == "name" and (not isinstance(v, str) or v.lower() not in _SIM_NAMES):
            raise ConfigError(f"{here}: expected one of {list(_SIM_NAMES)}, got {v!r}")
        elif k == "method" and v not in ("als", "sgd"):
            raise ConfigError(f"{here}: expected 'als' or 'sgd', got {v!r}")
        elif k == "user_based" and not isinstance(v, bool):
            raise ConfigError(f"{here}: expected true or false, got {v!r}")
        elif k == "min_support" and (
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
        ):  # 0 makes the similarity 0/0 for pairs without common ratings
            raise ConfigError(f"{here}: expected a positive integer, got {v!r}")
        elif k == "n_epochs" and (
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0
        ):
            raise ConfigError(f"{here}: expected a non-negative integer, got {v!r}")
        elif k in ("shrinkage", "reg", "reg_u", "reg_i", "learning_rate") and not (
            _is_real(v) and math.isfinite(v) and v >= 0
        ):
            raise ConfigError(f"{here}: expected a finite number >= 0, got {v!r}")


def _code_pairs(users, items) -> tuple[np.ndarray, np.ndarray]:
    """(user code, item code) pairs as two flat int64 arrays of equal length."""
    users = np.asarray(users, dtype=np.int64).ravel()
    items = np.asarray(items, dtype=np.int64).ravel()
    if users.shape != items.shape:
        raise ConfigError(
            f"predict_codes: expected users and items of equal length, got "
            f"{users.size} and {items.size}"
        )
    return users, items
