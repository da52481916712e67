"""The example plug-in package (``examples/cooccurrence``) evaluated like a built-in model.

The package is not installed here: its folder is put on ``sys.path`` (as ``PYTHONPATH``
would) and declared with ``BENCH_PLUGINS=rec_cooc``, so the normal suite covers it.
``.ci/run`` installs it with pip and runs the same steps through its entry point.

Covered: a run with ``model=[cooc,rule_popular]`` (the model found through the package's
config folder) shows up in ``results.json``, ``report.md`` and an MLflow child run; its
``topk.parquet`` read back through ``precomputed`` gives identical per-user metrics; and
``bench check`` passes against a baseline written from the same config, and fails with
exit 1 naming the model when a hyperparameter degrades it (and likewise for its lists
gated as a ``precomputed`` model). Two more tests keep docs/bring-your-own.md honest: the
files it shows are the package's, and its CI commands are lines of ``.ci/run``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from bench import plugins
from bench.check.baseline import read_baseline
from bench.cli import main

#: end-to-end runs of the example package (.ci/run also runs it, installed with pip)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cooccurrence"
PACKAGE = "rec_cooc"

#: Small synthetic data with planted tastes: seconds per run, and enough users (300) for
#: the gate's paired tests to see a real regression.
SMALL = ["dataset=synthetic", "dataset.n_users=300", "dataset.n_items=120",
         "dataset.n_interactions=9000"]


def quick(reports: Path) -> list[str]:
    """A plain run without the spectrum experiment: no figures, short bootstrap."""
    return ["~experiment", "report.figures=false", "eval.cutoffs=[5,10]", "stats.n_resamples=50",
            "split=temporal", *SMALL, f"report.dir={reports}"]


@pytest.fixture(scope="module")
def declared():
    """``examples/cooccurrence`` on ``sys.path`` and declared with ``BENCH_PLUGINS``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(EXAMPLE))
        mp.setenv(plugins.ENV_VAR, PACKAGE)
        yield mp


def run_folder(reports: Path) -> Path:
    (results,) = reports.rglob("results.json")
    return results.parent


@pytest.fixture(scope="module")
def plain(declared, tmp_path_factory):
    """One run of ``model=[cooc,rule_popular]`` tracked in a temporary SQLite MLflow store."""
    tmp = tmp_path_factory.mktemp("plain")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    code = main([*quick(tmp / "reports"), "model=[cooc,rule_popular]", "tracker=mlflow",
                 f"tracker.tracking_uri={uri}", f"tracker.artifact_root={tmp / 'artifacts'}"])
    assert code == 0
    return run_folder(tmp / "reports"), uri


def test_plugin_model_is_in_results_and_report_like_a_builtin(plain):
    folder, _ = plain
    results = json.loads((folder / "results.json").read_text())
    rows = {r["model"]: r for r in results["models"]}
    assert set(rows) == {"cooc", "rule_popular"}
    cooc = rows["cooc"]
    assert cooc["target"] == "rec_cooc.models.Cooccurrence"
    assert cooc["family"] == "collaborative"
    assert cooc["params"] == {"similarity": "cosine", "min_count": 1}
    # planted tastes: co-occurrence beats all-time popularity
    assert cooc["metrics"]["ndcg@10"] > rows["rule_popular"]["metrics"]["ndcg@10"]
    report = (folder / "report.md").read_text()
    assert re.search(r"^\|.*\bcooc\b.*\|", report, flags=re.M), "a table row for cooc"
    assert (folder / "artifacts" / "cooc" / "fold0" / "topk.parquet").is_file()


def test_plugin_model_is_an_mlflow_child_run(plain):
    from mlflow.tracking import MlflowClient

    folder, uri = plain
    parent = json.loads((folder / "results.json").read_text())["mlflow_parent_run_id"]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("recspectrum")
    children = client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    (child,) = [c for c in children if c.data.tags.get("model") == "cooc"]
    assert child.info.status == "FINISHED"
    assert child.data.tags["family"] == "collaborative"
    assert child.data.params["_target_"] == "rec_cooc.models.Cooccurrence"
    assert child.data.params["similarity"] == "cosine"
    assert "ndcg_at_10" in child.data.metrics
    assert "topk.parquet" in {a.path for a in client.list_artifacts(child.info.run_id)}


def test_plugin_lists_read_back_through_precomputed_give_identical_metrics(plain, tmp_path,
                                                                           capsys):
    folder, _ = plain
    export = tmp_path / "export"
    assert main(["split", "export", str(export), "~experiment", "split=temporal", *SMALL]) == 0
    cooc = folder / "artifacts" / "cooc" / "fold0"
    code = main([*quick(tmp_path / "back"), "tracker=none", "model=[precomputed]",
                 f"models.precomputed.path={cooc / 'topk.parquet'}",
                 f"models.precomputed.split_card={export / 'split.json'}"])
    assert code == 0, capsys.readouterr().err
    back = run_folder(tmp_path / "back") / "artifacts" / "precomputed" / "fold0"
    pd.testing.assert_frame_equal(pd.read_parquet(cooc / "per_user.parquet"),
                                  pd.read_parquet(back / "per_user.parquet"), check_exact=True)
    assert json.loads((cooc / "metrics.json").read_text()) == \
        json.loads((back / "metrics.json").read_text())


def gate(tmp: Path, baseline: Path, *extra: str) -> list[str]:
    """``bench check`` on the example's pinned experiment, on the small synthetic data.

    ``extra`` overrides go before the options: ``bench check`` takes its overrides as one
    run of positional arguments (argparse), none after ``--baseline FILE``.
    """
    return ["check", "experiment=cooc_ci", *SMALL, "tracker=none", f"report.dir={tmp}",
            *extra, "--baseline", str(baseline)]


def test_gate_passes_on_its_own_baseline_and_fails_a_degraded_plugin_model(declared, tmp_path,
                                                                           capsys):
    baseline = tmp_path / "cooc_ci.json"
    assert main([*gate(tmp_path, baseline), "--update-baseline"]) == 0
    assert set(read_baseline(baseline).per_user["model"]) == {"cooc", "rule_popular"}
    capsys.readouterr()

    assert main(gate(tmp_path, baseline)) == 0
    out = capsys.readouterr().out
    assert "**PASS**" in out and "| `cooc` | ndcg@10 |" in out

    # pairs shared by fewer than 1000 users are dropped: every score is 0, lists by item order
    assert main(gate(tmp_path, baseline, "models.cooc.min_count=1000")) == 1
    out = capsys.readouterr().out
    assert "**FAIL**" in out
    assert "- cooc ndcg@10 [all]: -" in out
    assert "- rule_popular" not in out  # only the degraded model fails


def test_committed_example_baseline_is_the_pinned_experiment():
    saved = read_baseline(EXAMPLE / "baselines" / "cooc_ci.json")
    assert set(saved.per_user["model"]) == {"cooc", "rule_popular"}
    assert saved.card["comparable"]["dataset"]["name"] == "movielens_small"


PAGE = ROOT / "docs" / "bring-your-own.md"


def test_docs_ci_block_is_what_ci_runs():
    """Every command of the page's "Gate it in CI" block is a line of ``.ci/run``."""
    section = re.split(r"^## \d+\. Gate it in CI$", PAGE.read_text(), flags=re.M)[1]
    section = section.split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[1]  # [0]: the baseline
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [ln.strip() for ln in block.splitlines() if ln.strip()]
    assert len(commands) == 4
    for command in commands:
        assert command in ci, f"not a line of .ci/run: {command}"


def test_docs_page_shows_the_example_files_as_they_are():
    """The files the page has a reader write are the example package's, byte for byte."""
    shown = dict(re.findall(r"^`([\w/]+\.\w+)`:\n\n```\w+\n(.*?)```$", PAGE.read_text(),
                            flags=re.M | re.S))
    assert set(shown) == {"rec_cooc/models.py", "rec_cooc/__init__.py", "pyproject.toml",
                          "rec_cooc/configs/model/cooc.yaml", "tests/test_cooc.py",
                          "rec_cooc/configs/experiment/cooc_ci.yaml"}
    for path, text in shown.items():
        assert text == (EXAMPLE / path).read_text(), f"docs/bring-your-own.md shows another {path}"


def test_gate_covers_precomputed_lists(declared, tmp_path, capsys):
    """The example's lists, gated as a precomputed model: the same baseline workflow."""
    export = tmp_path / "export"
    split = ["split=leave_last_n", "split.n=5"]  # the cooc_ci experiment's split
    assert main(["split", "export", str(export), "~experiment", *split, *SMALL]) == 0
    assert main(["~experiment", *split, *SMALL, "tracker=none", "report.figures=false",
                 "model=[cooc]", f"report.dir={tmp_path / 'made'}"]) == 0
    lists = export / "fold0" / "lists.parquet"
    made = pd.read_parquet(run_folder(tmp_path / "made") / "artifacts" / "cooc" / "fold0" /
                           "topk.parquet")
    made.to_parquet(lists)
    baseline = tmp_path / "lists.json"
    precomputed = ["model=[rule_popular,precomputed]", f"models.precomputed.path={lists}"]
    assert main([*gate(tmp_path, baseline, *precomputed), "--update-baseline"]) == 0
    assert main(gate(tmp_path, baseline, *precomputed)) == 0
    capsys.readouterr()

    # the pipeline regresses: every user gets the next user's list
    users = sorted(made["user_id"].unique())
    shifted = dict(zip(users, users[1:] + users[:1], strict=True))
    made.assign(user_id=made["user_id"].map(shifted)).to_parquet(lists)
    assert main(gate(tmp_path, baseline, *precomputed)) == 1
    out = capsys.readouterr().out
    assert "- precomputed ndcg@10 [all]: -" in out
    assert "- rule_popular" not in out
