"""The conformance suite: every ``configs/model/*.yaml`` must pass the conformance kit.

A new model config is covered without a new test file. Each config is composed through
Hydra exactly as ``bench model=[NAME]`` would, built with :func:`bench.targets.build`
and handed to :func:`bench.testing.check_recommender` — the same one-line check a plug-in
author runs on their own model, so built-ins and plug-ins pass one suite. The kit's
checks are listed in :mod:`bench.testing`; this file adds what only a config file can
get wrong (its ``# @package`` line) and which models the planted-structure oracle skips.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bench.models.rule.popular import PopularityRecommender
from bench.models.rule.random import RandomRecommender
from bench.targets import build
from bench.testing import CHECKS, check_recommender, conformance_data, taste_share
from tests.helpers import CONFIG_DIR, compose_config, needs_user_value

MODEL_CONFIGS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")
                       if not needs_user_value(p))

#: Models that are random or deliberately non-personal by design, so the oracle does
#: not apply. Every other config must recover the planted tastes.
NOT_PERSONAL = {
    "rule_random": "the random floor itself",
    "cf_surprise_normal": "NormalPredictor draws ratings at random: a random ranking",
    "cf_surprise_baseline": "BaselineOnly is mu + b_u + b_i: every user gets the item-bias order",
    "cf_surprise_slope_one": "on sparse data SlopeOne's ranking is dominated by item means "
    "(identical to Surprise's own estimate)",
    "rule_business_popular": "business rules over all-time popularity: one list for everyone",
    "rule_segment_demographic": "the suite's demographics are random, unrelated to the tastes",
}
#: Overrides for the oracle only, where the shipped setting never triggers on ~20
#: interactions per user.
ORACLE_OVERRIDES = {
    "hybrid_fallback": ["models.hybrid_fallback.min_history.cf_als=5"],  # ships with 100
    # implicit's BPR makes one update per training row and epoch: 50 epochs on 3,200 rows
    # is ~25x less training than on movielens_small, where more epochs hurt validation
    "cf_bpr": ["models.cf_bpr.iterations=200"],
}
#: Cheap configs, one or more per family (plus a rating predictor), fitted in the fast tier;
#: the other configs' fitting checks are marked slow (``test_declares_what_it_is`` stays
#: fast for every config: it composes and builds, it does not fit).
FAST_MODELS = {"rule_popular", "rule_random", "content_knn", "cf_item_knn", "cf_surprise_svd",
               "hybrid_fallback"}
assert FAST_MODELS <= set(MODEL_CONFIGS), "FAST_MODELS names a config that does not exist"


def tiered(names) -> list:
    """``names`` as parameters, those outside FAST_MODELS marked slow."""
    return [pytest.param(n, marks=() if n in FAST_MODELS else pytest.mark.slow) for n in names]


#: Models whose ranking is the same for everyone (popularity rules): the oracle only
#: asks personalised models to beat them.
POPULARITY_LIKE_PREFIX = "rule_popular"


def compose_model(name: str, seed: int = 0, overrides=()) -> dict:
    cfg = compose_config([f"model=[{name}]", f"seed={seed}", "tracker=none", *overrides])
    return OmegaConf.to_container(cfg.models[name], resolve=True)


def factory(name: str, overrides=()):
    """A new, unfitted model from the config each call (the kit builds several)."""
    node = compose_model(name, overrides=overrides)
    return lambda: build(node, f"models.{name}")


def test_there_are_model_configs():
    assert {"rule_popular", "rule_random", "cf_als"} <= set(MODEL_CONFIGS)


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_config_names_its_package(name):
    first = (CONFIG_DIR / "model" / f"{name}.yaml").read_text().splitlines()[0]
    assert first == f"# @package models.{name}"


@pytest.mark.parametrize("name", tiered(MODEL_CONFIGS))
def test_passes_the_conformance_kit(name):
    assert check_recommender(factory(name)) == list(CHECKS)


@pytest.mark.parametrize(
    "name",
    tiered(n for n in MODEL_CONFIGS
           if n not in NOT_PERSONAL and not n.startswith(POPULARITY_LIKE_PREFIX)),
)
def test_planted_tastes_are_recovered(name):
    # ~1,000 recommendations: a share's standard error is about 0.015, so 0.1 is a
    # margin of several standard errors over the better of the two non-personal floors
    check_recommender(factory(name, ORACLE_OVERRIDES.get(name, ())), checks=["planted_tastes"])


def test_oracle_floor_is_what_chance_predicts():
    data = conformance_data()
    model = RandomRecommender(seed=0).fit(data.split.train)
    # the random floor recommends in-taste items at about the catalogue's in-taste rate
    assert abs(taste_share(model) - data.dataset.in_taste.mean()) < 0.1
    # and popularity, one list for everyone, is no oracle either
    popular = PopularityRecommender().fit(data.split.train)
    assert 0.0 <= taste_share(popular) <= 1.0
