"""Security: configs cannot load code outside ``bench`` and the declared plug-ins, nor call
anything but the class their group expects; nothing unpickles user files; examples bind the
tracking server to 127.0.0.1.

The no-side-effect probes give each refused target a file to write (or a module whose
import writes one) and check, after the refusal, that the file does not exist.
"""

import re
import sys
import uuid

import pytest

from bench import plugins
from bench.cli import main
from bench.errors import ConfigError
from bench.targets import build
from tests.helpers import ROOT


@pytest.mark.parametrize("target", ["os.system", "subprocess.run", "builtins.eval",
                                    "benchmark.evil", "bench", ".bench.x", 42])
def test_targets_outside_the_package_are_refused(target):
    with pytest.raises(ConfigError, match=r"_target_: expected a dotted path inside the 'bench'"):
        build({"_target_": target, "command": "rm -rf /"}, "models.evil")


PROBE_MODULE = """
from pathlib import Path

Path({probe!r}).write_text("imported")


class Writer:
    \"\"\"Not a Recommender: its constructor writes the probe file.\"\"\"

    def __init__(self, **kwargs):
        Path({probe!r}).write_text("called")
"""


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """A module ``probe_<hex>`` on sys.path whose import, and whose class ``Writer``'s
    constructor, write ``tmp_path/probe``; yields (module name, probe path)."""
    name = f"probe_{uuid.uuid4().hex[:8]}"
    probe = tmp_path / "probe"
    (tmp_path / f"{name}.py").write_text(PROBE_MODULE.format(probe=str(probe)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    yield name, probe
    sys.modules.pop(name, None)


def test_a_function_target_is_refused_before_it_is_called(tmp_path):
    probe = tmp_path / "probe"
    node = {"_target_": "bench.atomic.atomic_write_text", "path": str(probe), "text": "x"}
    for where in ("models.evil", "split", "dataset", "tracker"):
        with pytest.raises(ConfigError, match=rf"^{where}\._target_: expected .*, got the "
                           r"function 'bench\.atomic\.atomic_write_text'$"):
            build(node, where)
    assert not probe.exists()


def test_a_module_outside_bench_and_the_plugins_is_not_even_imported(probe_module):
    name, probe = probe_module
    with pytest.raises(ConfigError, match=r"expected a dotted path inside the 'bench' package"):
        build({"_target_": f"{name}.Writer"}, "models.evil")
    assert name not in sys.modules
    assert not probe.exists()


def test_a_class_of_the_wrong_kind_is_refused_before_it_is_called(probe_module, monkeypatch):
    name, probe = probe_module
    monkeypatch.setenv(plugins.ENV_VAR, name)  # declared: importing it is allowed
    probe.unlink(missing_ok=True)
    assert not probe.exists()
    with pytest.raises(ConfigError, match=rf"^models\.evil\._target_: expected a Recommender "
                       rf"subclass .*got the class '{name}\.Writer'$"):
        build({"_target_": f"{name}.Writer"}, "models.evil")
    assert probe.read_text() == "imported"  # the import ran (declared); the constructor did not


@pytest.mark.parametrize(("where", "target", "expected"), [
    ("split", "bench.models.rule.popular.PopularityRecommender", "a splitter class"),
    ("models.x", "bench.splits.holdout.RandomHoldoutSplitter", "a Recommender subclass"),
    ("models.x.components.child", "bench.tracking.base.NullTracker", "a Recommender subclass"),
    ("dataset", "bench.data.tabular.read_header", "a dataset loader"),
    ("dataset", "bench.data.dataset.Dataset", "a dataset loader"),
    ("tracker", "bench.models.rule.popular.PopularityRecommender", "a Tracker class"),
])
def test_each_group_builds_only_its_own_kind(where, target, expected):
    with pytest.raises(ConfigError, match=rf"^{re.escape(where)}\._target_: expected {expected}"):
        build({"_target_": target}, where)


def test_a_composite_model_cannot_smuggle_a_function_in_as_a_child(tmp_path):
    probe = tmp_path / "probe"
    node = {"_target_": "bench.models.hybrid.blend.WeightedBlend",
            "components": {"evil": {"_target_": "bench.atomic.atomic_write_text",
                                    "path": str(probe), "text": "x"}}}
    with pytest.raises(ConfigError, match=r"^models\.blend\.components\.evil\._target_: "
                       r"expected a Recommender subclass"):
        build(node, "models.blend")
    assert not probe.exists()


def test_private_modules_are_never_imported():
    # bench.perf.__main__ runs a benchmark when imported
    before = set(sys.modules)
    with pytest.raises(ConfigError, match=r"expected a public dotted path"):
        build({"_target_": "bench.perf.__main__.main"}, "models.x")
    assert "bench.perf.__main__" not in set(sys.modules) - before


def test_config_overrides_that_would_write_a_file_exit_2_and_write_nothing(tmp_path, capsys):
    probe = tmp_path / "probe"
    fast = ["tracker=none", "model=[rule_popular]", "~experiment", "report.figures=false",
            "dataset=synthetic", "dataset.n_users=50", "dataset.n_interactions=500",
            f"report.dir={tmp_path / 'reports'}"]
    writer = f"_target_: bench.atomic.atomic_write_text, path: {probe}, text: x"
    attempts = [
        [f"+models.evil={{{writer}}}"],
        [f"dataset={{{writer}}}"],
        ["+hydra.callbacks.evil._target_=bench.atomic.atomic_write_text",
         f"+hydra.callbacks.evil.path={probe}", "+hydra.callbacks.evil.text=x"],
        [f"+hydra={{callbacks: {{evil: {{{writer}}}}}}}"],
        [f"hydra.callbacks={{evil: {{{writer}}}}}"],
        ["++hydra.job_logging.handlers.evil.class=bench.atomic.atomic_write_text",
         f"++hydra.job_logging.handlers.evil.path={probe}"],
    ]
    for extra in attempts:
        code = main([*fast, *extra])
        err = capsys.readouterr().err
        assert code == 2, (extra, err)
        assert len([x for x in err.splitlines() if x.startswith("bench: error:")]) == 1, err
        assert not probe.exists(), extra


def test_no_code_path_unpickles_files():
    # pickle (and libraries built on it) execute code from the file they read; results,
    # baselines and caches are JSON and Parquet instead
    pattern = re.compile(r"\b(import pickle|from pickle|joblib|cloudpickle|dill\b|"
                         r"allow_pickle\s*=\s*True|torch\.load|pd\.read_pickle)")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "bench").rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_examples_bind_the_tracking_server_to_localhost():
    texts = [ROOT / "README.md", *(ROOT / "configs").rglob("*.yaml"),
             *(ROOT / ".github").rglob("*.yml")]
    for path in texts:
        text = path.read_text()
        assert "0.0.0.0" not in text, path
        for host in re.findall(r"mlflow (?:server|ui)[^\n]*--host (\S+)", text):
            assert host == "127.0.0.1", path
