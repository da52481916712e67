"""Names that become path components stay inside the run folder (issue 15, point 10).

``name`` is a folder under ``report.dir`` (and Hydra's run folder); every key of ``models``
is a folder under ``<run>/artifacts/``. ``name=../x`` or a model called ``../evil`` used to
write outside. Now each must be a plain name: one line naming the key, exit 2, and
nothing written anywhere — shown by snapshotting the whole ``tmp_path`` tree, with the
command run from (and reporting into) a folder two levels down.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_settings
from bench.errors import ConfigError
from bench.runner import run_experiment
from bench.schema import is_plain_name
from tests.helpers import CONFIG_DIR, POP, QUICK_RUN, csv_dataset, make_cfg, write_ratings_csv

ESCAPES = ["../x", "../../x", "..", ".", "a/b", "a\\b", "/tmp/x", ".hidden", "-rf", "",
           "x" * 129, "a b", "a\x00b", "~"]
PLAIN = ["default", "spectrum_full", "cf_surprise_knn_baseline", "v1.2", "run-3", "_x", "x" * 128]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """cwd = tmp_path/a/b (the run reports into its ./reports); the ratings file in it."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    csv = write_ratings_csv(work / "ratings.csv")
    monkeypatch.chdir(work)
    return work, csv


def cli_args(csv: Path) -> list[str]:
    return [*csv_dataset(csv), *QUICK_RUN, "split=temporal", "~experiment",
            "report.figures=false", "report.dir=reports"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    mine = [ln for ln in err.splitlines() if ln.startswith("bench: error: ")]
    assert len(mine) == 1 and "Traceback" not in err, err
    return mine[0]


@pytest.mark.parametrize("name", ESCAPES, ids=repr)
def test_only_plain_names_pass(name):
    assert not is_plain_name(name)


@pytest.mark.parametrize("name", PLAIN)
def test_plain_names_pass(name):
    assert is_plain_name(name)


def test_every_shipped_name_is_plain():
    for f in (CONFIG_DIR / "model").glob("*.yaml"):
        assert is_plain_name(f.stem), f
    for f in (CONFIG_DIR / "experiment").glob("*.yaml"):
        assert is_plain_name(f.stem), f


# ---------------------------------------------------------------------- name=
@pytest.mark.parametrize("name", ["../x", "../../escaped", "a/b", "..", ".hidden"])
def test_cli_name_that_is_a_path_is_refused_and_writes_nothing(name, sandbox, tmp_path,
                                                               capsys):
    _, csv = sandbox
    before = tree(tmp_path)
    assert main([*cli_args(csv), f"name='{name}'"]) == 2
    line = one_line_error(capsys)
    assert line.startswith("bench: error: name: expected a plain name (letters, digits"), line
    assert f"got {name!r}" in line
    assert tree(tmp_path) == before


@pytest.mark.parametrize("flag", ["-m", "--multirun"])
@pytest.mark.parametrize("sweep", ["name=../x", "name=ok,../x", "seed=1,2 name=a/b"])
def test_cli_sweep_with_a_path_name_is_refused_before_any_folder(flag, sweep, sandbox,
                                                                  tmp_path, capsys):
    """``bench -m name=../x`` used to create ``../x/<stamp>-sweep/multirun.yaml`` before the
    job refused the name: a sweep is now checked job by job before Hydra starts it."""
    _, csv = sandbox
    before = tree(tmp_path)
    assert main([flag, *cli_args(csv), *sweep.split()]) == 2
    line = one_line_error(capsys)
    assert line.startswith("bench: error: name: expected a plain name"), line
    assert tree(tmp_path) == before


def test_cli_sweep_with_a_bad_value_in_a_later_job_is_refused_before_any_folder(
        sandbox, tmp_path, capsys):
    _, csv = sandbox
    before = tree(tmp_path)
    assert main(["-m", *cli_args(csv), "eval.cutoffs=[5],[0]"]) == 2
    assert one_line_error(capsys) == "bench: error: eval.cutoffs: expected every k > 0, got [0]"
    assert tree(tmp_path) == before


def test_sweep_jobs_expand_like_hydra():
    from bench.cli import sweep_jobs

    assert sweep_jobs(["name=a,b", "~experiment", "seed=range(1,3)", "model=[x,y]"]) == [
        ["name=a", "~experiment", "seed=1", "model=[x,y]"],
        ["name=a", "~experiment", "seed=2", "model=[x,y]"],
        ["name=b", "~experiment", "seed=1", "model=[x,y]"],
        ["name=b", "~experiment", "seed=2", "model=[x,y]"],
    ]
    assert sweep_jobs(["name=a,"]).startswith("config: ")


def test_cli_sweep_still_runs_and_reports_inside_the_report_folder(sandbox, tmp_path):
    work, csv = sandbox
    before = tree(tmp_path)
    assert main(["-m", *cli_args(csv), "name=sw", "seed=1,2"]) == 0
    new = tree(tmp_path) - before
    assert new and all(p.startswith("a/b/reports") for p in new), sorted(new)[:5]
    assert len(list((work / "reports" / "sw").glob("*-sweep/*/results.json"))) == 2


def test_cli_plain_name_still_runs_inside_the_report_folder(sandbox, tmp_path):
    work, csv = sandbox
    before = tree(tmp_path)
    assert main([*cli_args(csv), "name=ok.v1"]) == 0
    new = tree(tmp_path) - before
    assert new and all(p.startswith("a/b/reports") for p in new), sorted(new)[:5]
    assert (work / "reports" / "ok.v1").is_dir()


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs"])
def test_run_experiment_name_that_is_a_path_is_refused(name, sandbox, tmp_path):
    work, csv = sandbox
    before = tree(tmp_path)
    with pytest.raises(ConfigError, match=r"^name: expected a plain name"):
        run_experiment(make_cfg(csv, name=name, report={"dir": str(work / "reports")}))
    assert tree(tmp_path) == before


# ---------------------------------------------------------------------- model names
@pytest.mark.parametrize("model", ["../evil", "../../evil", "a/b", "..", ".", "x\\y"])
def test_run_experiment_model_name_that_is_a_path_is_refused(model, sandbox, tmp_path):
    work, csv = sandbox
    before = tree(tmp_path)
    cfg = make_cfg(csv, models={"rule_popular": POP, model: POP},
                   report={"dir": str(work / "reports")})
    with pytest.raises(ConfigError) as info:
        run_experiment(cfg, output_dir=work / "run")  # an explicit run folder too
    assert str(info.value).startswith(f"models[{model!r}]: expected a model name that is a "
                                      f"plain name"), info.value
    assert tree(tmp_path) == before


def test_load_settings_names_the_model_key():
    cfg = make_cfg(Path("unused.csv"), models={"../evil": POP})
    with pytest.raises(ConfigError, match=r"^models\['\.\./evil'\]: expected a model name"):
        load_settings(cfg)


def test_cli_model_name_from_a_config_file_is_refused_and_writes_nothing(
    sandbox, tmp_path, monkeypatch, capsys
):
    """Hydra's override grammar cannot spell a ``..`` key, but a config file can: an
    experiment in the user's config folder (BENCH_CONFIG_DIR)."""
    _, csv = sandbox
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    (configs / "experiment" / "evil.yaml").write_text(
        "# @package _global_\nmodels:\n  ../evil:\n"
        "    _target_: bench.models.rule.popular.PopularityRecommender\n"
    )
    monkeypatch.setenv("BENCH_CONFIG_DIR", str(configs))
    before = tree(tmp_path)
    argv = [a for a in cli_args(csv) if a != "~experiment"] + ["experiment=evil"]
    assert main(argv) == 2
    line = one_line_error(capsys)
    assert line.startswith("bench: error: models['../evil']: expected a model name that is "
                           "a plain name"), line
    assert tree(tmp_path) == before
