"""The ``executor`` config group: checked like every key (one line, exit 2), documented
where every key is, Ray needed only when asked for and never imported by ``import bench``."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from bench.cli import main
from bench.config import ExecutorSettings, load_settings
from bench.executor import LocalExecutor, build_executor
from bench.schema import ExecutorConfig
from tests.executor.helpers import REQUIRE, require_ray, skip_or_fail
from tests.helpers import CONFIG_DIR, QUICK_RUN, ROOT, csv_dataset, write_ratings_csv

KEYS = [f.name for f in ExecutorConfig.__dataclass_fields__.values()]


def argv(tmp_path, *extra: str) -> list[str]:
    csv = write_ratings_csv(tmp_path / "ratings.csv")
    return [*csv_dataset(csv), *QUICK_RUN, f"report.dir={tmp_path / 'reports'}",
            f"hydra.run.dir={tmp_path / 'hydra'}", *extra]


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


BAD = [
    (["executor=spark"], "bench: error: executor=spark: no such option; expected one of "
                         "['local', 'ray']"),
    (["executor.kind=spark"], "bench: error: executor.kind: expected one of ['local', 'ray'], "
                              "got 'spark'"),
    (["executor=ray", "executor.max_retries=-1"],
     "bench: error: executor.max_retries: expected an integer >= 0, got -1"),
    (["executor=ray", "executor.cpus_per_cell=0"],
     "bench: error: executor.cpus_per_cell: expected an integer >= 1, got 0"),
    (["executor=ray", "executor.cpus_per_cell=two"],
     "bench: error: executor.cpus_per_cell: expected an integer >= 1, got 'two'"),
    (["executor=ray", "executor.max_concurrent_cells=0"],
     "bench: error: executor.max_concurrent_cells: expected an integer >= 1 or null"),
    (["executor=ray", "executor.num_cpus=0"],
     "bench: error: executor.num_cpus: expected an integer >= 1 or null (every core), got 0"),
    (["executor=ray", "executor.address=''"], "bench: error: executor.address: expected a Ray "
                                              "cluster address"),
    (["executor.address=auto"], "bench: error: executor.address: expected it only with "
                                "executor=ray"),
    (["+executor.workers=4"], "bench: error: executor: unknown key(s) ['workers']"),
]


#: the cases the fast tier runs (each is a command line, about a second); all run in `pytest`
FAST = 3


@pytest.mark.parametrize(("overrides", "line"), [
    pytest.param(o, line, id=" ".join(o), marks=() if i < FAST else pytest.mark.slow)
    for i, (o, line) in enumerate(BAD)])
def test_a_bad_executor_value_is_one_line_and_exit_2(overrides, line, tmp_path, capsys,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv(tmp_path, *overrides)) == 2
    assert one_error_line(capsys).startswith(line)
    assert not (tmp_path / "reports").exists()  # refused before any work


def test_ray_missing_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(argv(tmp_path, "executor=ray")) == 2
    line = one_error_line(capsys)
    assert line.startswith("bench: error: executor.kind: expected Ray to be installed for "
                           "executor=ray")
    assert "install recspectrum[ray]" in line and "executor=local" in line
    assert not list(tmp_path.glob("reports/*/*/artifacts"))  # nothing was trained


MINIMAL = {"dataset": {"_target_": "bench.x"}, "split": {"_target_": "bench.y"},
           "models": {"m": {"_target_": "bench.z"}}}


def test_local_is_the_default_and_builds_the_local_executor():
    settings = load_settings(MINIMAL)
    assert settings.executor == ExecutorSettings(kind="local", address=None, num_cpus=None,
                                                 cpus_per_cell=1, max_concurrent_cells=None,
                                                 max_retries=3)
    assert isinstance(build_executor(settings.executor), LocalExecutor)


def test_an_unreachable_cluster_is_one_line_before_any_data_is_read(tmp_path, capsys,
                                                                   monkeypatch):
    require_ray()
    import ray

    def refuse(address=None, **kwargs):
        raise ConnectionError(f"Could not find any running Ray instance at {address}.\nmore")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.chdir(tmp_path)
    assert main(argv(tmp_path, "executor=ray", "executor.address=10.0.0.1:6379")) == 2
    assert one_error_line(capsys) == (
        "bench: error: executor.address: expected a running Ray cluster, got none at "
        "'10.0.0.1:6379' (Could not find any running Ray instance at 10.0.0.1:6379.); start "
        "one (ray start --head) or set executor.address=null to start a local cluster")
    assert not list(tmp_path.glob("reports/*/*/artifacts"))


def test_import_bench_does_not_import_ray():
    code = ("import sys, bench, bench.runner, bench.api, bench.executor, bench.cells; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------- documented
def test_the_group_files_set_the_schema_defaults():
    schema = OmegaConf.to_container(OmegaConf.structured(ExecutorConfig))
    assert OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "executor" / "local.yaml")) == {
        "kind": "local"}
    ray_file = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "executor" / "ray.yaml"))
    assert ray_file == {**schema, "kind": "ray"}
    text = (CONFIG_DIR / "executor" / "ray.yaml").read_text()
    for key in KEYS:  # a comment above every key
        assert re.search(rf"^# .*\n{key}:", text, re.M), key


def test_every_executor_key_is_in_the_configuration_reference():
    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text[text.index("## `executor`"):]
    section = section[:section.index("\n## ", 1)]
    for key in KEYS:
        assert f"`executor.{key}`" in section, key


def test_ci_turns_missing_ray_into_a_failure_not_a_skip(monkeypatch):
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no ray"):
        skip_or_fail("no ray")
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"no ray .*must run here"):
        skip_or_fail("no ray")
