"""Search spaces as data: parsing, refusals, conditions, components, edges."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bench.errors import ConfigError
from bench.targets import build
from bench.tune.space import Param, apply_values, parse_space, strip_tune
from tests.helpers import CONFIG_DIR, compose_config

ALS = {"_target_": "bench.models.collaborative.als.ImplicitALS", "factors": 16,
       "regularization": 0.1, "weighting": "bm25", "bm25_b": 0.8}


class Stub:
    """A stand-in for an Optuna trial: returns fixed answers and records what was asked."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def suggest_int(self, name, low, high, step=1, log=False):
        self.asked.append(("int", name, low, high, log))
        return self.answers[name]

    def suggest_float(self, name, low, high, step=None, log=False):
        self.asked.append(("float", name, low, high, log))
        return self.answers[name]

    def suggest_categorical(self, name, choices):
        self.asked.append(("categorical", name, tuple(choices)))
        return self.answers[name]


def space_of(block, cfg=ALS, name="m"):
    return parse_space(name, {**cfg, "_tune_": block})


def test_a_space_parses_into_typed_entries_with_conditions():
    sp = space_of({
        "factors": {"type": "int", "low": 8, "high": 128, "log": True},
        "weighting": {"type": "categorical", "choices": ["none", "bm25"]},
        "bm25_b": {"type": "float", "low": 0.1, "high": 1.0, "when": {"weighting": "bm25"}},
    })
    assert sp.status == "tunable"
    assert [p.path for p in sp.params] == ["factors", "weighting", "bm25_b"]
    assert sp.params[0] == Param("factors", "int", 8, 128, log=True)
    assert sp.params[2].when == (("weighting", ("bm25",)),)
    assert sp.defaults == {"factors": 16, "weighting": "bm25", "bm25_b": 0.8}


def test_sampling_skips_entries_whose_condition_does_not_hold():
    sp = space_of({
        "weighting": {"type": "categorical", "choices": ["none", "bm25"]},
        "bm25_b": {"type": "float", "low": 0.1, "high": 1.0, "when": {"weighting": "bm25"}},
    })
    off = Stub({"weighting": "none", "bm25_b": 0.5})
    assert sp.sample(off) == {"weighting": "none"}
    assert [a[1] for a in off.asked] == ["weighting"]
    on = Stub({"weighting": "bm25", "bm25_b": 0.5})
    assert sp.sample(on) == {"weighting": "bm25", "bm25_b": 0.5}
    assert on.asked[1] == ("float", "bm25_b", 0.1, 1.0, False)


def test_empty_block_means_no_hyperparameters_and_no_block_means_no_space():
    assert space_of({}).status == "no hyperparameters"
    assert parse_space("m", ALS).status == "no search space"
    assert parse_space("m", ALS).params == ()


@pytest.mark.parametrize(("block", "message"), [
    ({"factors": {"type": "integer", "low": 1, "high": 2}},
     "models.m._tune_.factors.type: expected one of ['int', 'float', 'categorical', "
     "'component'], got 'integer'"),
    ({"factors": {"type": "int", "low": 1, "high": 9, "lo": 3}},
     "models.m._tune_.factors: unknown key(s) ['lo'] for type int; expected some of "
     "['high', 'log', 'low', 'step', 'when']"),
    ({"factors": {"type": "int", "low": "a", "high": 9}},
     "models.m._tune_.factors.low: expected an integer, got 'a'"),
    ({"factors": {"type": "int", "low": 9, "high": 9}},
     "models.m._tune_.factors: expected low < high, got low=9, high=9"),
    ({"regularization": {"type": "float", "low": 0.0, "high": 1.0, "log": True}},
     "models.m._tune_.regularization.low: a log range needs low > 0, got 0.0"),
    ({"weighting": {"type": "categorical", "choices": []}},
     "models.m._tune_.weighting.choices: expected a non-empty list of strings, numbers, "
     "booleans or null, got []"),
    ({"factorz": {"type": "int", "low": 1, "high": 9}},
     "models.m._tune_.factorz: no such key in the model config; expected the path of one of "
     "its settings (e.g. 'factors')"),
    ({"bm25_b": {"type": "float", "low": 0.1, "high": 1.0, "when": {"weighting": "bm25"}}},
     "models.m._tune_.bm25_b.when.weighting: expected a categorical entry declared earlier in "
     "the block (one of []), got 'weighting'"),
    ({"weighting": {"type": "categorical", "choices": ["none", "bm25"]},
      "bm25_b": {"type": "float", "low": 0.1, "high": 1.0, "when": {"weighting": "tfidf"}}},
     "models.m._tune_.bm25_b.when.weighting: expected values among its choices "
     "['none', 'bm25'], got ['tfidf']"),
    ({"factors": 8}, "models.m._tune_.factors: expected a mapping like"),
    ([1, 2], "models.m._tune_: expected a mapping of hyperparameter path"),
])
def test_a_malformed_space_is_one_line_naming_its_key(block, message):
    with pytest.raises(ConfigError) as err:
        space_of(block)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_a_component_entry_brings_the_childs_space_prefixed_with_its_conditions():
    child = {**ALS, "_tune_": {
        "weighting": {"type": "categorical", "choices": ["none", "bm25"]},
        "bm25_b": {"type": "float", "low": 0.1, "high": 1.0, "when": {"weighting": "bm25"}}}}
    hybrid = {"_target_": "bench.models.hybrid.blend.WeightedBlend",
              "weights": {"cf_als": 0.5}, "components": {"cf_als": child},
              "_tune_": {"weights.cf_als": {"type": "float", "low": 0.0, "high": 1.0},
                         "components.cf_als": {"type": "component"}}}
    sp = parse_space("h", hybrid)
    assert [p.path for p in sp.params] == [
        "weights.cf_als", "components.cf_als.weighting", "components.cf_als.bm25_b"]
    assert sp.params[2].when == (("components.cf_als.weighting", ("bm25",)),)
    values = sp.sample(Stub({"weights.cf_als": 0.7, "components.cf_als.weighting": "none"}))
    assert values == {"weights.cf_als": 0.7, "components.cf_als.weighting": "none"}
    out = apply_values(hybrid, values)
    assert out["weights"]["cf_als"] == 0.7
    assert out["components"]["cf_als"]["weighting"] == "none"
    assert hybrid["weights"]["cf_als"] == 0.5  # a copy: the config itself is unchanged


def test_values_on_an_edge_of_their_range_are_named():
    sp = space_of({"factors": {"type": "int", "low": 8, "high": 128, "log": True},
                   "regularization": {"type": "float", "low": 0.001, "high": 1.0, "log": True}})
    assert sp.boundary({"factors": 64, "regularization": 0.03}) == []
    lines = sp.boundary({"factors": 128, "regularization": 0.00101})
    assert lines == [
        "factors=128 is at the upper edge of its range [8, 128] (edge 128)",
        "regularization=0.00101 is at the lower edge of its range [0.001, 1] (edge 0.001)",
    ]


def test_the_fingerprint_follows_the_space_only():
    a = space_of({"factors": {"type": "int", "low": 8, "high": 128}})
    b = space_of({"factors": {"type": "int", "low": 8, "high": 128}}, cfg={**ALS, "factors": 32})
    c = space_of({"factors": {"type": "int", "low": 8, "high": 256}})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_builders_never_see_the_tune_block():
    node = {**ALS, "_tune_": {"factors": {"type": "int", "low": 8, "high": 128}}}
    model = build(node, "models.cf_als")
    assert model.factors == 16
    assert "_tune_" not in model.get_params()
    assert strip_tune({"a": node, "b": [node]}) == {"a": ALS, "b": [ALS]}


MODEL_CONFIGS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))


def test_every_shipped_space_parses_and_its_defaults_lie_in_range():
    cfg = compose_config([f"model=[{','.join(MODEL_CONFIGS)}]", "~experiment"])
    statuses = {}
    for name in MODEL_CONFIGS:
        node = OmegaConf.to_container(cfg.models[name], resolve=False)
        sp = parse_space(name, node)
        statuses[name] = sp.status
        for p in sp.params:
            value = sp.defaults.get(p.path)
            if p.kind == "categorical":
                assert value in p.choices, (name, p.path, value)
            elif not isinstance(value, str):  # ${seed} and the like are not searched
                assert p.low <= value <= p.high, (name, p.path, value)
    assert statuses["rule_popular"] == statuses["rule_random"] == "no hyperparameters"
    tunable = {n for n, s in statuses.items() if s == "tunable"}
    assert {"cf_als", "cf_ease", "cf_item_knn", "hybrid_blend", "hybrid_fallback",
            "hybrid_cascade"} <= tunable
    assert len(parse_space("hybrid_fallback", OmegaConf.to_container(
        cfg.models.hybrid_fallback)).params) == 2 + 7  # its own two and cf_als's seven
