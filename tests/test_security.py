"""Security: configs cannot load code outside ``bench``; nothing unpickles user files;
examples bind the tracking server to 127.0.0.1."""

import re

import pytest

from bench.config import build
from bench.errors import ConfigError
from tests.helpers import ROOT


@pytest.mark.parametrize("target", ["os.system", "subprocess.run", "builtins.eval",
                                    "benchmark.evil", "bench", ".bench.x", 42])
def test_targets_outside_the_package_are_refused(target):
    with pytest.raises(ConfigError, match=r"_target_: expected a dotted path inside the 'bench'"):
        build({"_target_": target, "command": "rm -rf /"}, "models.evil")


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
