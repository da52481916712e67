"""Tuning parity: ``bench tune`` and the leaderboards of studies and sweeps.

* :mod:`bench.tune.space` — search spaces declared in each model's YAML (``_tune_``),
  checked as data;
* :mod:`bench.tune.objective` — the validation split (training rows minus a validation
  carve; the test part is never read) and the score of one model config on it;
* :mod:`bench.tune.study` — one seeded Optuna study per model, equal budgets, resume;
* :mod:`bench.tune.leaderboard` — tables and figures for studies and Hydra sweeps;
* :mod:`bench.tune.command` — ``bench tune`` end to end, and the tuned overlay.

Optuna is imported only when a study runs.
"""
