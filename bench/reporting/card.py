"""The evaluation card: what a run measured, on which data, how — one JSON per run.

It is what a reader needs to trust or reproduce a number, and what a CI gate compares
before it compares values: dataset and fingerprint, rows dropped and why, the split and
its parameters and fingerprints, the relevance threshold, the candidate set, metric
definitions, cutoffs, how rating errors treat pairs a model cannot score, seeds, library
versions and the git commit.

``card["comparable"]`` is the subset that must match for two runs' numbers to be
compared (data, split, evaluation protocol); versions, commit and time are recorded but
do not make runs incomparable.
"""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.metrics import beyond, ranking, registry
from bench.seeds import seed_spread

__all__ = [
    "METRIC_DEFINITIONS",
    "UNSCORED_RATING_RULES",
    "card_differences",
    "evaluation_card",
    "git_commit",
    "library_versions",
    "short_value",
    "training_seeds",
    "unscored_ratings_rule",
]

#: Libraries whose versions can change a number.
LIBRARIES = (
    "recspectrum", "numpy", "scipy", "pandas", "implicit", "scikit-surprise", "mlflow",
    "hydra-core", "matplotlib", "optuna",
)

#: One line per metric, from the registry; the full statement is each function's docstring.
METRIC_DEFINITIONS = registry.definitions()

#: How RMSE/MAE treat the test pairs a model cannot score, per ``eval.unscored_ratings``:
#: the label the card, the report and the command line print next to rating errors.
UNSCORED_RATING_RULES = {
    "exclude": "pairs a model cannot score (unknown user or item) are excluded from "
               "RMSE/MAE and counted",
    "surprise_default": "unknown pairs scored with Surprise's default, as in its benchmark",
}


def unscored_ratings_rule(setting: str | None) -> str:
    """The label of an ``eval.unscored_ratings`` value (``None``: a run recorded before
    the key existed, which excluded)."""
    return UNSCORED_RATING_RULES[setting or "exclude"]


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that can change a number, plus Python."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: Path | None = None) -> dict[str, object]:
    """The commit of the source tree ``bench`` runs from, and whether it had local changes.

    ``{"commit": None}`` outside a git checkout (an installed wheel).
    """
    where = path or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def evaluation_card(result) -> dict[str, object]:
    """The card of a :class:`~bench.record.RunResult` (plain JSON types)."""
    ev = result.eval
    raw = result.config
    splits = result.splits
    drops_split = {f"fold{s['fold']}": {k: v for k, v in s.get("info", {}).items()
                                        if "dropped" in k or "without" in k}
                   for s in splits}
    comparable = {
        "dataset": {k: result.dataset.get(k) for k in
                    ("name", "fingerprint", "rows", "users", "items", "rating_scale")},
        "split": {
            "name": splits[0]["name"],
            "params": splits[0]["params"],
            "n_folds": len(splits),
            "fingerprints": [s["fingerprint"] for s in splits],
        },
        "relevance": {
            "threshold": ev.relevance_threshold,
            "rule": ("test rating >= threshold" if ev.relevance_threshold is not None
                     else "every test interaction"),
            "graded": ev.graded,
        },
        "candidates": (
            "every item in the dataset vocabulary that the model can score, minus the "
            "user's training items" if ev.exclude_seen else
            "every item in the dataset vocabulary that the model can score"
        ),
        "cutoffs": list(ev.cutoffs),
        "metrics": list(ev.metrics),
        "map_denominator": ev.map_denominator,
        "segments": {"history_edges": list(ev.history_edges), "rules": ev.segment_rules,
                     "new_items": ev.new_items},
        "seed": raw.get("seed"),
    }
    if result.seeds is not None:  # seed-averaged values compare only with the same seeds
        comparable["seeds"] = list(result.seeds)
    if ev.unscored_ratings != "exclude":  # absent = exclude: older cards stay comparable
        comparable["unscored_ratings"] = ev.unscored_ratings
    card = {
        "card_version": 1,
        "experiment": result.name,
        "run": result.run_name,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "comparable": comparable,
        "dataset": result.dataset,
        "rows_dropped": {"dataset": result.dataset.get("drops", {}), "split": drops_split},
        "split_parts": [s.get("parts") for s in splits],
        "metric_definitions": {m: METRIC_DEFINITIONS[m] for m in METRIC_DEFINITIONS},
        "metric_modules": [ranking.__name__, beyond.__name__],
        "rating_errors": {"unscored_ratings": ev.unscored_ratings,
                          "rule": unscored_ratings_rule(ev.unscored_ratings)},
        "statistics": {
            "baseline": result.stats.baseline,
            "compared_metrics": list(result.stats.metrics),
            "bootstrap": "percentile, resampling users",
            "n_resamples": result.stats.n_resamples,
            "confidence": result.stats.confidence,
            "alpha": result.stats.alpha,
            "seed": result.stats.seed,
            "tests": "paired t-test and Wilcoxon signed-rank, Holm-corrected",
        },
        "cold_start": {
            "user": result.cold_start_settings.user_enabled,
            "user_quantile": result.cold_start_settings.user_quantile,
            "user_fold_in": list(result.cold_start_settings.user_fold_in),
            "user_seed": result.cold_start_settings.user_seed,
            "item_fraction": result.cold_start_settings.item_fraction,
            "item_seed": result.cold_start_settings.item_seed,
        },
        "leakage": result.audits,
        "models": {r.model: {"target": r.target, "family": r.family, "params": r.params}
                   for r in result.models},
        # the record of `bench tune` when the run loads a tuned overlay (tuned=NAME)
        "tuning": raw.get("tuning"),
        "versions": library_versions(),
        "git": git_commit(),
    }
    if result.seeds is not None:
        card["training_seeds"] = training_seeds(result)
    return card


def training_seeds(result) -> dict[str, object]:
    """The card's ``training_seeds`` block: the seeds, which models took them, and each
    seeded model's spread of the headline metric over seeds (:mod:`bench.seeds`)."""
    metric = result.report.headline
    spread = seed_spread(result.models, metric)
    return {
        "seeds": list(result.seeds),
        "rule": "model config keys set to ${seed} take each training seed; split, data, "
                "cold-start protocols and bootstrap keep `seed`; per-user values are "
                "means over seeds",
        "metric": metric,
        "models": {
            r.model: ({"seeds": int(r.seeds), "mean": r.mean, "sd": r.sd, "min": r.min,
                       "max": r.max, "per_seed": {str(k): v for k, v in r.per_seed.items()}}
                      if r.seeds else "runs once (no ${seed} key)")
            for r in spread.itertuples()
        },
    }


def card_differences(current: dict, reference: dict, prefix: str = "",
                     names: tuple[str, str] = ("run", "baseline")) -> list[str]:
    """Every key of two cards' ``comparable`` blocks (or parts of them) whose values
    differ, with both values: ``"split.params.n: run has 3, baseline has 5"``."""
    out = []
    for key in sorted(set(current) | set(reference)):
        a, b = current.get(key, "<absent>"), reference.get(key, "<absent>")
        where = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += card_differences(a, b, f"{where}.", names)
        elif a != b:
            out.append(f"{where}: {names[0]} has {short_value(a)}, {names[1]} has "
                       f"{short_value(b)}")
    return out


def short_value(value) -> str:
    """``repr`` of a card value for a message: fingerprints cut to 12 hex digits."""
    if isinstance(value, list) and value and all(
        isinstance(v, str) and len(v) == 64 for v in value
    ):  # split fingerprints: their first 12 hex digits say enough
        value = [v[:12] for v in value]
    elif isinstance(value, str) and len(value) == 64:
        value = value[:12]
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
