"""Plug-ins: a model from code outside ``bench`` runs next to the built-ins once declared.

Each test writes a small plug-in package into ``tmp_path`` (a fresh module name per
test, so nothing is cached between tests), puts it on ``sys.path`` as ``PYTHONPATH``
would, and declares it with ``BENCH_PLUGINS`` or a (monkeypatched) entry point.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench import plugins
from bench.cli import main
from bench.errors import ConfigError
from bench.hydra_overrides import code_override_problem
from bench.models.base import Recommender
from bench.targets import build
from bench.testing import check_recommender

ROOT = Path(__file__).resolve().parents[1]

MODEL_SOURCE = '''
"""A plug-in model: all-time popularity scaled by a constant."""
import numpy as np

from bench.models.base import Recommender


class Cooccur(Recommender):
    """Scores every item by its training count times ``boost``; the same list for all."""

    family = "collaborative"

    def __init__(self, *, boost: float = 1.0):
        self.boost = boost

    def _fit(self, train, item_features, user_features):
        counts = np.bincount(train.items, minlength=len(train.item_ids))
        self.pop_ = counts.astype(np.float32) * np.float32(self.boost)

    def _score(self, users, history):
        return np.tile(self.pop_, (len(users), 1))


class NotAModel:
    """A class of the wrong kind for a model config."""

    def __init__(self, **kwargs):
        pass
'''

CALLBACK_SOURCE = '''
from hydra.experimental.callback import Callback


class Probe(Callback):
    """A plug-in's Hydra callback."""
'''

MODEL_CONFIG = """# @package models.my_model
# The plug-in's own model config, found on Hydra's search path.
_target_: {name}.models.Cooccur
boost: 2.0
"""


def tiny(tmp: Path) -> list[str]:
    """Overrides that keep a run tiny: synthetic data, one cutoff, no tracker or figures."""
    return ["tracker=none", "report.figures=false", "~experiment", "dataset=synthetic",
            "dataset.n_users=60", "dataset.n_items=40", "dataset.n_interactions=600",
            "eval.cutoffs=[5]", "split=temporal", "stats.n_resamples=50",
            f"report.dir={tmp / 'reports'}"]


def results(tmp: Path) -> dict:
    (path,) = (tmp / "reports").rglob("results.json")
    return json.loads(path.read_text())


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A plug-in package ``plug_<hex>`` with a model, a callback and a config folder, on
    ``sys.path`` but not yet declared; yields its name."""
    name = f"plug_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    pkg = src / name
    (pkg / "configs" / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(MODEL_SOURCE)
    (pkg / "callbacks.py").write_text(CALLBACK_SOURCE)
    (pkg / "configs" / "model" / "my_model.yaml").write_text(MODEL_CONFIG.format(name=name))
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    yield name
    for module in [m for m in sys.modules if plugins.within(m, name)]:
        del sys.modules[module]


def test_declared_plugin_model_runs_next_to_builtins(plugin, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(plugins.ENV_VAR, plugin)
    code = main([*tiny(tmp_path), "model=[rule_popular]",
                 f"+models.mine={{_target_: {plugin}.models.Cooccur, boost: 3.0}}"])
    assert code == 0, capsys.readouterr().err
    rows = {r["model"]: r for r in results(tmp_path)["models"]}
    assert set(rows) == {"rule_popular", "mine"}
    assert rows["mine"]["target"] == f"{plugin}.models.Cooccur"
    assert rows["mine"]["params"]["boost"] == 3.0
    assert rows["mine"]["family"] == "collaborative"
    # a popularity ranking by another name: the same metrics as the built-in
    assert rows["mine"]["metrics"] == rows["rule_popular"]["metrics"]


def test_undeclared_plugin_model_is_refused(plugin, tmp_path, capsys):
    code = main([*tiny(tmp_path), "model=[rule_popular]",
                 f"+models.mine={{_target_: {plugin}.models.Cooccur}}"])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [x for x in err.splitlines() if x.startswith("bench: error:")]
    assert f"models.mine._target_: expected a dotted path inside the 'bench' package, got " \
           f"'{plugin}.models.Cooccur'; other code must be declared as a plug-in " \
           f"(BENCH_PLUGINS or the 'recspectrum.plugins' entry point)" in line
    assert plugin not in sys.modules, "an undeclared module is never imported"
    assert not list(tmp_path.rglob("results.json"))


@pytest.mark.slow
def test_plugin_config_folder_adds_model_options(plugin, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(plugins.ENV_VAR, plugin)
    code = main([*tiny(tmp_path), "model=[my_model,rule_popular]"])
    assert code == 0, capsys.readouterr().err
    rows = {r["model"]: r for r in results(tmp_path)["models"]}
    assert rows["my_model"]["target"] == f"{plugin}.models.Cooccur"
    assert rows["my_model"]["params"]["boost"] == 2.0


def test_plugin_config_folder_is_not_searched_when_undeclared(plugin, tmp_path, capsys):
    code = main([*tiny(tmp_path), "model=[my_model,rule_popular]"])
    assert code == 2
    assert "model=my_model: no such option" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_config_dir_may_name_plugin_models(plugin, tmp_path, monkeypatch, capsys):
    configs = tmp_path / "team_configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "model" / "team.yaml").write_text(
        f"# @package models.team\n_target_: {plugin}.models.Cooccur\n")
    monkeypatch.setenv("BENCH_CONFIG_DIR", str(configs))
    monkeypatch.setenv(plugins.ENV_VAR, plugin)
    code = main([*tiny(tmp_path), "model=[team,rule_popular]"])
    assert code == 0, capsys.readouterr().err
    assert {r["model"] for r in results(tmp_path)["models"]} == {"team", "rule_popular"}


def test_entry_point_declares_a_plugin(plugin, monkeypatch):
    ep = importlib.metadata.EntryPoint(name="myrec", value=plugin,
                                       group=plugins.ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points

    def entry_points(**params):
        if params.get("group") == plugins.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints([ep])
        return real(**params)

    node = {"_target_": f"{plugin}.models.Cooccur", "boost": 2.0}
    with pytest.raises(ConfigError, match="must be declared as a plug-in"):
        build(node, "models.mine")
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert [p.prefix for p in plugins.declared()] == [plugin]
    assert plugins.declared()[0].source.startswith("entry point 'myrec'")
    model = build(node, "models.mine")
    assert isinstance(model, Recommender) and model.boost == 2.0
    assert [d.name for d in plugins.config_dirs()] == ["configs"]


@pytest.mark.slow
def test_installed_distribution_entry_point_declares_a_plugin(plugin, tmp_path, capsys):
    # what `pip install` leaves behind: a .dist-info folder with entry_points.txt on sys.path
    dist = tmp_path / "src" / f"{plugin}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {plugin}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\nmine = {plugin}\n")
    assert [(p.prefix, p.source) for p in plugins.declared()] == [
        (plugin, f"entry point 'mine' ({plugin})")]
    code = main([*tiny(tmp_path), "model=[my_model]",
                 f"+models.mine={{_target_: {plugin}.models.Cooccur}}"])
    assert code == 0, capsys.readouterr().err
    assert {r["model"] for r in results(tmp_path)["models"]} == {"my_model", "mine"}


def test_plugin_classes_of_the_wrong_kind_are_refused(plugin, monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, plugin)
    with pytest.raises(ConfigError, match=rf"^models\.mine\._target_: expected a Recommender "
                       rf"subclass .*got the class '{plugin}\.models\.NotAModel'$"):
        build({"_target_": f"{plugin}.models.NotAModel"}, "models.mine")


def test_bench_plugins_prefix_that_cannot_be_imported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(plugins.ENV_VAR, "rule_nothing_here_xyz")
    code = main([*tiny(tmp_path), "model=[rule_popular]"])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [x for x in err.splitlines() if x.startswith("bench: error:")]
    assert line == ("bench: error: BENCH_PLUGINS: cannot import plug-in module "
                    "'rule_nothing_here_xyz' (ModuleNotFoundError: No module named "
                    "'rule_nothing_here_xyz'); expected a module importable from PYTHONPATH")


@pytest.mark.parametrize("value", ["my-rec", "bench", "bench.models", "a..b"])
def test_bench_plugins_prefix_must_be_a_module_name_outside_bench(value, monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, value)
    with pytest.raises(ConfigError, match=r"^BENCH_PLUGINS: expected a module prefix"):
        plugins.declared()


def test_prefixes_match_whole_module_components(plugin, monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, f"{plugin}.models")
    assert plugins.owner(f"{plugin}.models") is not None
    assert plugins.owner(f"{plugin}.models_extra") is None
    assert plugins.owner(plugin) is None  # the package above the prefix is not declared


def test_callback_overrides_only_from_declared_plugins(plugin, monkeypatch):
    target = f"{plugin}.callbacks.Probe"
    override = f"+hydra.callbacks.probe._target_={target}"
    assert "a callback from the command line runs code" in code_override_problem([override])
    monkeypatch.setenv(plugins.ENV_VAR, plugin)
    assert code_override_problem([override]) is None
    assert code_override_problem([f"hydra.callbacks={{probe: {{_target_: {target}}}}}"]) is None
    wrong = f"+hydra.callbacks.probe._target_={plugin}.models.Cooccur"
    assert "expected a subclass of hydra.experimental.callback.Callback" in \
        code_override_problem([wrong])
    assert code_override_problem(["~hydra.callbacks"]) is None


@pytest.mark.slow
def test_plugin_runs_from_pythonpath_in_a_fresh_process(plugin, tmp_path):
    # the documented route end to end: PYTHONPATH + BENCH_PLUGINS, the real entry point
    src = tmp_path / "src"
    env = {**os.environ, plugins.ENV_VAR: plugin,
           "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", *tiny(tmp_path), "model=[my_model]"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["model"] for r in results(tmp_path)["models"]] == ["my_model"]


# ------------------------------------------------------------------ the conformance kit
def test_plugin_model_passes_the_conformance_kit(plugin, monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, plugin)
    cls = build({"_target_": f"{plugin}.models.Cooccur"}, "models.mine").__class__
    assert "lists_well_formed" in check_recommender(cls, params={"boost": 2.0})


class _Undocumented(Recommender):
    family = "rule"

    def _fit(self, train, item_features, user_features):
        self.n_ = len(train.item_ids)

    def _score(self, users, history):
        import numpy as np

        return np.ones((len(users), self.n_), dtype=np.float32)


class _Renamed(_Undocumented):
    """Stores its parameter under another name: get_params cannot read it back."""

    def __init__(self, *, alpha: float = 1.0):
        self.a = alpha


class _Noisy(_Undocumented):
    """Random scores with no seed: two fits disagree."""

    def _score(self, users, history):
        import numpy as np

        return np.random.default_rng().random((len(users), self.n_), dtype=np.float32)


class _Unknown(_Undocumented):
    """Says it is of a rung that does not exist."""

    family = "magic"


@pytest.mark.parametrize(("cls", "check", "detail"), [
    (_Undocumented, "declares_what_it_is", "expected a class docstring"),
    (_Unknown, "declares_what_it_is", "family: expected one of"),
    (_Renamed, "params_round_trip", "AttributeError"),
    (_Noisy, "deterministic", "different lists"),
])
def test_the_kit_names_the_failed_check(cls, check, detail):
    with pytest.raises(AssertionError, match=rf"^check '{check}' failed for {cls.__name__}: "
                       rf".*{detail}"):
        check_recommender(cls)


def test_the_kit_refuses_unknown_check_names():
    with pytest.raises(ValueError, match=r"checks: unknown name\(s\) \['nope'\]"):
        check_recommender(_Undocumented, checks=["nope"])
