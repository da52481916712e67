"""Every configs/split/*.yaml composes, builds its splitter and splits; options documented."""

import inspect

import pytest
from omegaconf import OmegaConf

from bench.config import to_container
from bench.errors import ConfigError
from bench.splits import Splitter
from bench.targets import build
from tests.helpers import CONFIG_DIR, compose_config
from tests.splits.helpers import assert_split_invariants

CONFIGS = sorted((CONFIG_DIR / "split").glob("*.yaml"))
SPLITTER_CONFIGS = {
    "temporal",
    "leave_last_n",
    "holdout",
    "kfold",
    "user_cold_start",
    "item_cold_start",
}


def compose_split(name: str, seed: int = 11) -> dict:
    """The `split` node as Hydra composes it (defaults lists and interpolations resolved)."""
    cfg = compose_config([f"+split={name}", f"+seed={seed}"], config_name=None)
    return to_container(cfg)["split"]


def test_every_splitter_has_a_config():
    assert SPLITTER_CONFIGS <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_composes_builds_and_splits(path, events):
    raw = compose_split(path.stem)
    splitter = build(raw, "split")
    assert isinstance(splitter, Splitter)
    options = set(inspect.signature(type(splitter).__init__).parameters) - {"self"}
    assert set(raw) - {"_target_"} <= options
    if "seed" in options:
        assert splitter.seed == 11, "seed: ${seed} follows the global seed"
    for split in splitter.split(events):
        assert_split_invariants(events, split)


@pytest.mark.parametrize("name", sorted(SPLITTER_CONFIGS))
def test_splitter_config_lists_and_comments_every_option(name):
    path = CONFIG_DIR / "split" / f"{name}.yaml"
    node = OmegaConf.load(path)
    target = node["_target_"]
    raw = compose_split(name)
    splitter = build(raw, "split")
    assert target == f"{type(splitter).__module__}.{type(splitter).__name__}"
    options = set(inspect.signature(type(splitter).__init__).parameters) - {"self"}
    assert set(node) - {"_target_"} == options, "every option appears in the config"
    if "seed" in options:
        assert OmegaConf.to_container(node)["seed"] == "${seed}"
    lines = path.read_text().splitlines()
    for option in options:  # a comment right above the option (or on its line)
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{option}:"))
        assert lines[at - 1].startswith("#") or "#" in lines[at], option
    # the config's values are the constructor's defaults (seed aside)
    defaults = {
        k: p.default
        for k, p in inspect.signature(type(splitter).__init__).parameters.items()
        if k != "self"
    }
    assert {k: v for k, v in raw.items() if k not in ("_target_", "seed")} == {
        k: v for k, v in defaults.items() if k != "seed"
    }


def test_unknown_option_is_a_config_error():
    raw = {"_target_": "bench.splits.temporal.GlobalTemporalSplitter", "quantle": 0.9}
    with pytest.raises(ConfigError, match=r"split: unknown key\(s\) \['quantle'\]"):
        build(raw, "split")


def test_date_override_from_the_command_line(events):
    cfg = compose_config(["+split=temporal", "+seed=1", "split.date=1970-01-01T00:00:30"],
                         config_name=None)
    splitter = build(to_container(cfg)["split"], "split")
    assert splitter.split(events)[0].cut == 30
