"""The config schema (bench/schema.py): the documented defaults are the schema's, a plain
mapping loads like a composed config, and every validation failure is one house line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.cli import main
from bench.config import CheckSettings, EvalSettings, RunSettings, load_settings
from bench.errors import ConfigError
from bench.schema import RunConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
GROUPS = ("eval", "stats", "cold_start", "check", "report", "tune")
SCALARS = ("seed", "seeds", "name", "resume", "data_dir", "tuning")


def documented() -> dict:
    """configs/config.yaml as written (no defaults list, no Hydra node, nothing resolved)."""
    node = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "config.yaml"), resolve=False)
    return {k: v for k, v in node.items() if k not in ("defaults", "hydra")}


def schema_defaults() -> dict:
    return OmegaConf.to_container(OmegaConf.structured(RunConfig), resolve=False)


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def minimal(**groups) -> dict:
    return {"seed": 3, "dataset": {"_target_": "bench.x"}, "split": {"_target_": "bench.y"},
            "models": {"m": {"_target_": "bench.z"}}, **groups}


# ---------------------------------------------------------------------- one place per default
@pytest.mark.parametrize("key", [*SCALARS, *GROUPS])
def test_every_documented_default_is_the_schema_default(key):
    assert documented()[key] == schema_defaults()[key]


def test_config_yaml_documents_exactly_the_schema_keys():
    assert set(documented()) == {*SCALARS, *GROUPS}
    text = (CONFIG_DIR / "config.yaml").read_text()
    for group in GROUPS:
        for name in schema_defaults()[group]:
            assert re.search(rf"^  {name}:", text, re.M), f"{group}.{name} is not documented"


def test_config_yaml_extends_the_schema_first():
    defaults = OmegaConf.load(CONFIG_DIR / "config.yaml")["defaults"]
    assert defaults[0] == "bench_schema"


def test_bare_settings_equal_a_config_with_nothing_set():
    s = load_settings(minimal())
    assert s.eval == EvalSettings()
    assert s.check == CheckSettings()


# ---------------------------------------------------------------------- loading
def test_a_plain_mapping_loads_with_defaults_filled_in():
    s = load_settings(minimal(cold_start={"user": {"quantile": 0.3}}, stats={"alpha": 0.1}))
    assert isinstance(s, RunSettings)
    assert s.seed == 3 and s.name == "default" and s.resume is False
    assert s.eval.cutoffs == (1, 5, 10, 20) and s.eval.k_max == 20
    assert s.stats.alpha == 0.1 and s.stats.seed == 3, "stats.seed follows seed"
    assert s.cold_start.user_enabled and s.cold_start.user_quantile == 0.3
    assert s.cold_start.user_seed == 3
    assert s.cold_start.user_fold_in == (0, 1, 3, 5, 10) and s.cold_start.item_fraction is None
    assert s.report.headline == "ndcg@10", "the headline is resolved"
    assert s.check.baseline == "reports/baselines/default.json"
    assert s.models == {"m": {"_target_": "bench.z"}} and s.tracker is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 4


def test_the_composed_default_config_loads_like_the_mapping_it_resolves_to():
    cfg = compose_cfg("tracker=none")
    s = load_settings(cfg)
    assert s == load_settings(OmegaConf.to_container(cfg, resolve=True))
    assert s.tracker == {"_target_": "bench.tracking.base.NullTracker"}
    assert s.check.baseline == f"reports/baselines/{s.name}.json"


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_loads(name):
    assert load_settings(compose_cfg(f"experiment={name}")).name == name


def test_free_form_nodes_keep_their_placeholders_for_build():
    s = load_settings(minimal(models={"m": {"_target_": "bench.z", "k": "???"}}))
    assert s.models["m"]["k"] == "???"


# ---------------------------------------------------------------------- one error line
@pytest.mark.parametrize(
    ("raw", "line"),
    [
        ({"seed": True}, "seed: expected an integer, got True"),
        ({"resume": 3}, "resume: expected true, false or a run folder, got 3"),
        ({"eval": {"graded": 1}}, "eval.graded: expected true or false, got 1"),
        ({"eval": {"batch_size": 0}},
         "eval.batch_size: expected a positive integer or null, got 0"),
        ({"eval": {"map_denominator": "all"}},
         "eval.map_denominator: expected 'relevant' or 'min_k_relevant', got 'all'"),
        ({"eval": {"segments": None}}, "eval.segments: expected a mapping of keys, got None"),
        ({"stats": {"alpha": 0}}, "stats.alpha: expected a number in (0, 1), got 0.0"),
        ({"cold_start": {"item": {"fraction": 1}}},
         "cold_start.item.fraction: expected a number in (0, 1), got 1.0"),
        ({"cold_start": {"user": {"seed": -2}}},
         "cold_start.user.seed: expected an integer >= 0, got -2"),
        ({"check": {"baseline": "x.txt"}},
         "check.baseline: expected a path ending in .json, got 'x.txt'"),
        ({"check": {"tolerance": {"ndcg": {"abs": 0.1}}}}, "check.tolerance: expected 'default'"),
        ({"check": {"tolerance": {"default": {"absolute": 0.1}}}},
         "check.tolerance.default: unknown key(s) ['absolute']; expected some of ['abs', 'rel']"),
        ({"report": {"headline": "ndcg@7"}}, "report.headline: expected a metric@k the run"),
        ({"report": {"figures": "no"}}, "report.figures: expected true or false, got 'no'"),
        ({"nosuch": 1}, "config: unknown top-level key(s) ['nosuch']; expected some of"),
    ],
)
def test_every_failure_of_a_mapping_is_one_line_naming_the_full_key(raw, line):
    with pytest.raises(ConfigError) as info:
        load_settings(minimal(**raw))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(line), message


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["seed=abc"], "seed: expected an integer, got 'abc'"),
        (["eval.cutoffs=[5,x]"], "eval.cutoffs[1]: expected an integer, got 'x'"),
        (["eval.graded=maybe"], "eval.graded: expected true or false, got 'maybe'"),
        (["stats.n_resamples=1.5"], "stats.n_resamples: expected an integer >= 1, got 1.5"),
        (["eval=null"], "eval: expected a mapping of keys, got None"),
        (["+stats.nosuch=1"], "stats: unknown key(s) ['nosuch']; expected some of"),
        (["cold_start.user={quantile: 2}"],
         "cold_start.user.quantile: expected a number in (0, 1) or null, got 2.0"),
        (["report.curve_k=0"], "report.curve_k: expected an integer >= 1, got 0"),
        (["tracker.nosuch=1"], "tracker.nosuch: unknown config key"),
    ],
)
def test_every_failure_on_the_command_line_is_one_line_and_exit_2(overrides, line, capsys):
    assert main([*overrides, "tracker=none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"bench: error: {line}"), err


@pytest.mark.parametrize(
    "override",
    ["cold_start.item={fraction: 0.2}", "+cold_start.item.fraction=0.2",
     "report.ladder={rule: rule_popular}", "check.tolerance.default={abs: 0.01}"],
)
def test_command_line_overrides_reach_optional_and_mapping_groups(override):
    s = load_settings(compose_cfg("~experiment", "cold_start.user=null", override))
    assert s.cold_start.item_fraction in (None, 0.2)
    assert s.report.ladder in (None, (("rule", "rule_popular"),))
    if "tolerance" in override:
        assert s.check.tolerance == (("default", 0.01, 0.02),)
    if "item" in override:
        assert s.cold_start.item_fraction == 0.2 and s.cold_start.item_seed == s.seed
