"""Shared fits (bench/models/fitshare.py): equal fits of one run are done once.

The run-level tests count real ``_fit`` calls of ALS through a subclass declared as a
plug-in (``BENCH_PLUGINS`` names this module), put in place of every ALS of the default
spectrum with config overrides: nothing of the library is patched.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from bench import plugins
from bench.data.interactions import Interactions
from bench.executor.local import LocalExecutor
from bench.models.base import Recommender
from bench.models.collaborative.als import ImplicitALS
from bench.models.collaborative.bpr import ImplicitBPR
from bench.models.fitshare import SharedFits, fit_signature, leaves, sharing
from bench.models.hybrid.blend import WeightedBlend
from bench.models.precomputed import PrecomputedRecommender
from bench.models.rule.popular import PopularityRecommender
from bench.models.rule.random import RandomRecommender
from bench.models.vocabulary import Vocabulary
from bench.runner import run_experiment
from bench.testing import check_recommender, conformance_data
from bench.tracking import MemoryTracker
from tests.helpers import compose_config

#: one entry per ``CountingALS._fit`` call: its ``factors``
ALS_FITS: list[int] = []


class CountingALS(ImplicitALS):
    """ImplicitALS that records each real fit (the tests' probe)."""

    def _fit(self, train, item_features, user_features) -> None:
        ALS_FITS.append(self.factors)
        super()._fit(train, item_features, user_features)


#: every ALS of the default spectrum: cf_als and the hybrids' ALS children
ALS_KEYS = ["models.cf_als", "models.hybrid_blend.components.cf_als",
            "models.hybrid_fallback.components.cf_als",
            "models.hybrid_cascade.components.candidates",
            "models.hybrid_cascade.components.reranker.components.cf_als"]
#: the default spectrum's models that hold an ALS, and its stats baseline
ALS_MODELS = "[rule_popular,cf_als,hybrid_blend,hybrid_fallback,hybrid_cascade]"
TINY = ["dataset=synthetic", "dataset.n_users=80", "dataset.n_items=50",
        "dataset.n_interactions=1200", "tracker=none", "report.figures=false",
        "eval.cutoffs=[5,10]", "stats.n_resamples=20"]
#: the default ALS's factors
FACTORS = compose_config().models.cf_als.factors


@pytest.fixture
def counting_als(monkeypatch):
    """Declare this module as a plug-in and reset the fit count."""
    monkeypatch.setenv(plugins.ENV_VAR, __name__)
    ALS_FITS.clear()
    return [f"{key}._target_={__name__}.CountingALS" for key in ALS_KEYS]


def run(tmp_path, overrides, share: bool = True):
    cfg = compose_config([*TINY, *overrides])
    return run_experiment(cfg, output_dir=tmp_path, tracker=MemoryTracker(),
                          executor=LocalExecutor(share_fits=share))


def numbers(result) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per-user rows, cold-start rows and every metric of a run."""
    per_user = pd.concat([r.per_user.assign(model=r.model) for r in result.models],
                         ignore_index=True)
    return (per_user, result.cold_start.reset_index(drop=True),
            {(r.model, r.fold): r.metrics for r in result.models})


def assert_same_numbers(a, b) -> None:
    a, b = numbers(a), numbers(b)
    assert len(a[0]) and len(a[1]) and a[2]  # something was compared
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    pd.testing.assert_frame_equal(a[1], b[1], check_exact=True)
    assert a[2] == b[2]


# ------------------------------------------------------------------ in a run
def test_default_spectrum_fits_als_once_per_training_set(tmp_path, counting_als, caplog):
    with caplog.at_level(logging.DEBUG, logger="bench"):
        result = run(tmp_path, [f"model={ALS_MODELS}", *counting_als])
    assert ALS_FITS == [FACTORS]  # one fit for five ALS models (and the cold-start sweep)
    assert not result.failures and len(result.cold_start)
    reused = [r.getMessage().split(" (")[0] for r in caplog.records if "reused from" in r.message]
    assert [line for line in reused if "CountingALS" in line] == [
        f"{m}/fold0: CountingALS fit reused from cf_als/fold0"
        for m in ("hybrid_blend", "hybrid_fallback", "hybrid_cascade", "hybrid_cascade")]
    assert any(r.message.startswith("shared fits: ") and "CountingALS x4" in r.message
               for r in caplog.records)


@pytest.mark.slow
def test_als_models_give_the_same_numbers_with_and_without_sharing(tmp_path, counting_als):
    shared = run(tmp_path / "shared", [f"model={ALS_MODELS}", *counting_als])
    ALS_FITS.clear()
    alone = run(tmp_path / "alone", [f"model={ALS_MODELS}", *counting_als], share=False)
    assert ALS_FITS == [FACTORS] * 5
    assert_same_numbers(shared, alone)
    fit_s = {r.model: r.fit_seconds for r in shared.models}
    assert fit_s["cf_als"] > 0 and all(s >= 0 for s in fit_s.values())


@pytest.mark.slow
def test_other_hyperparameters_fit_again(tmp_path, counting_als):
    run(tmp_path, [f"model={ALS_MODELS}", *counting_als,
                   "models.hybrid_blend.components.cf_als.factors=8"])
    assert sorted(ALS_FITS) == [8, FACTORS]


@pytest.mark.slow
def test_other_training_rows_fit_again(tmp_path, counting_als):
    # two folds and the cold-start sweep's own rows (no cut to share with k-fold): one ALS
    # fit per training set, each shared by the five ALS models that train on it
    run(tmp_path, [f"model={ALS_MODELS}", *counting_als, "split=kfold", "split.n_folds=2"])
    assert ALS_FITS == [FACTORS] * 3


@pytest.mark.slow
def test_default_spectrum_numbers_equal_with_and_without_sharing(tmp_path):
    shared, alone = (run(tmp_path / str(share), [], share=share) for share in (True, False))
    assert len(shared.models) == len(compose_config().models) == len(alone.models)
    assert_same_numbers(shared, alone)
    for r in shared.models:  # the lists themselves, byte for byte
        part = f"artifacts/{r.model}/fold{r.fold}/topk.parquet"
        assert (tmp_path / "True" / part).read_bytes() == (tmp_path / "False" / part).read_bytes()


# ------------------------------------------------------------------ memory
def popular_fits(n: int) -> tuple[list[PopularityRecommender], Interactions]:
    return [PopularityRecommender() for _ in range(n)], conformance_data().split.train


def fit(model: Recommender, train: Interactions) -> Recommender:
    return model.fit(train, item_features=conformance_data().dataset.item_features)


def test_a_state_is_held_only_while_a_later_fit_expects_it():
    models, train = popular_fits(3)
    other = RandomRecommender(seed=1)  # planned once: never held
    shared = SharedFits.plan([*((m, train) for m in models), (other, train)])
    held = []
    with sharing(shared):
        for model in (models[0], other, models[1], models[2]):
            fit(model, train)
            held.append((len(shared), shared.held_bytes()))
    assert [n for n, _ in held] == [1, 1, 1, 0]
    assert held[0][1] == models[0].scores_.nbytes > 0 and held[-1][1] == 0
    assert shared.reused == {"PopularityRecommender": 2}
    assert models[1].scores_ is models[0].scores_  # shared, not copied
    assert models[1].vocabulary_ is not models[0].vocabulary_  # its own maps


def test_fits_beyond_the_plan_are_neither_held_nor_shared():
    models, train = popular_fits(3)
    shared = SharedFits.plan([(m, train) for m in models[:2]])
    with sharing(shared):
        for model in models:
            fit(model, train)
        assert len(shared) == 0
    assert shared.reused == {"PopularityRecommender": 1}
    assert models[2].scores_ is not models[0].scores_
    np.testing.assert_array_equal(models[2].scores_, models[0].scores_)


def test_leaving_the_batch_drops_every_state():
    models, train = popular_fits(3)
    shared = SharedFits.plan([(m, train) for m in models])
    with sharing(shared):
        fit(models[0], train)
        assert len(shared) == 1
    assert len(shared) == 0
    fit(models[1], train)  # no batch active: a fit of its own
    assert models[1].scores_ is not models[0].scores_


def test_other_training_rows_or_features_are_not_shared():
    data = conformance_data()
    train = data.split.train
    fewer = train.take(np.arange(len(train)) % 7 != 0)
    models = [PopularityRecommender() for _ in range(4)]
    shared = SharedFits.plan([(m, t) for m, t in zip(models, [train, fewer, train, train],
                                                        strict=True)])
    with sharing(shared):
        fit(models[0], train)
        fit(models[1], fewer)  # another fingerprint: planned alone, fitted alone
        models[2].fit(train, item_features=None)  # other item features: another key
        fit(models[3], train)
    assert shared.reused == {"PopularityRecommender": 1}
    assert models[3].scores_ is models[0].scores_
    assert models[2].scores_ is not models[0].scores_


# ------------------------------------------------------------------ who shares
def test_only_reproducible_leaf_models_share():
    als = ImplicitALS(factors=8)
    blend = WeightedBlend(components={"cf_als": als, "rule_popular": PopularityRecommender()},
                          weights={"cf_als": 1.0, "rule_popular": 1.0})
    assert fit_signature(als) is not None
    assert fit_signature(blend) is None  # its children share instead
    assert leaves(blend) == [als, blend.components["rule_popular"]]
    assert fit_signature(ImplicitALS(seed=None)) is None  # a fresh random state per fit
    assert fit_signature(ImplicitBPR(num_threads=2)) is None  # hogwild SGD
    assert fit_signature(ImplicitBPR(num_threads=1)) is not None
    assert fit_signature(PrecomputedRecommender(path="lists.csv")) is None  # reads a file


def test_signatures_compare_type_and_exact_value():
    def sig(**params):
        return fit_signature(ImplicitALS(**params))

    assert sig(factors=8) == sig(factors=8) != sig(factors=9)
    assert sig(alpha=1.0) != sig(alpha=1)  # another type may take another code path
    assert sig(regularization=0.1) != sig(regularization=float(np.nextafter(0.1, 1.0)))
    assert sig(factors=np.int64(8)) is None  # not compared exactly: not shared


def test_recoding_keeps_the_fingerprint_it_would_compute():
    train = conformance_data().split.train
    train.fingerprint()
    compact = Vocabulary.build(train).compact(train)
    assert compact is not train and compact.n_users < train.n_users
    kept = compact.fingerprint()
    del compact.__dict__["_fingerprint"]  # computed afresh from the re-coded rows
    assert compact.fingerprint() == kept == train.fingerprint()


# ------------------------------------------------------------------ the kit's check
class _Scribbler(Recommender):
    """Counts its calls in a learned array: unsafe to share, though its lists are right."""

    def _fit(self, train, item_features, user_features):
        self.calls_ = np.zeros(1)

    def _score(self, users, history):
        self.calls_ += 1
        return np.tile(self.item_counts_.astype(np.float32), (len(users), 1))


def test_the_kit_catches_a_model_that_writes_its_learned_state():
    with pytest.raises(AssertionError, match=r"^check 'fit_shared' failed for _Scribbler: "):
        check_recommender(_Scribbler, checks=["fit_shared"])
