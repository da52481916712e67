"""Statistics over per-user metric values: bootstrap intervals, paired tests, Holm.

- :func:`bootstrap_means`: percentile-bootstrap interval of per-column means, users resampled.
- :func:`paired_comparison`: candidate vs baseline on the same users -- mean difference with
  its bootstrap interval, paired t-test, Wilcoxon signed-rank test, Cohen's d_z.
- :func:`holm` / :func:`reject`: Holm–Bonferroni adjusted p-values for a family of tests;
  :func:`holm_t_intervals`: paired t intervals at the level of each Holm step, which
  exclude 0 exactly when Holm rejects (what a report prints next to a verdict).
- :func:`min_detectable_effect` / :func:`t_test_power`: power of the paired t-test.

- :mod:`bench.stats.budget`: upper bounds on the settings that size memory (checked
  before training).

Formulas and edge cases are in each module's docstring. The names below are imported on
first use, so that ``bench.config`` can import :mod:`bench.stats.budget` without scipy.
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from bench.stats.bootstrap import BootstrapCI, bootstrap_means
    from bench.stats.multiple import HolmIntervals, holm, holm_levels, holm_t_intervals, reject
    from bench.stats.paired import WILCOXON_ZERO_METHOD, PairedComparison, paired_comparison
    from bench.stats.power import min_detectable_effect, t_test_power

#: public name -> the module defining it
_HOMES = {
    "BootstrapCI": "bootstrap", "bootstrap_means": "bootstrap",
    "holm": "multiple", "reject": "multiple", "holm_levels": "multiple",
    "holm_t_intervals": "multiple", "HolmIntervals": "multiple",
    "min_detectable_effect": "power", "t_test_power": "power",
    "WILCOXON_ZERO_METHOD": "paired", "PairedComparison": "paired",
    "paired_comparison": "paired",
}

__all__ = [
    "WILCOXON_ZERO_METHOD",
    "BootstrapCI",
    "HolmIntervals",
    "PairedComparison",
    "bootstrap_means",
    "holm",
    "holm_levels",
    "holm_t_intervals",
    "min_detectable_effect",
    "paired_comparison",
    "reject",
    "t_test_power",
]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'bench.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bench.stats.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
