"""Statistics over per-user metric values: bootstrap intervals, paired tests, Holm.

- :func:`bootstrap_means`: percentile-bootstrap interval of per-column means, users resampled.
- :func:`paired_comparison`: candidate vs baseline on the same users -- mean difference with
  its bootstrap interval, paired t-test, Wilcoxon signed-rank test, Cohen's d_z.
- :func:`holm` / :func:`reject`: Holm–Bonferroni adjusted p-values for a family of tests.

Formulas and edge cases are in each module's docstring.
"""

from bench.stats.bootstrap import BootstrapCI, bootstrap_means
from bench.stats.multiple import holm, reject
from bench.stats.paired import WILCOXON_ZERO_METHOD, PairedComparison, paired_comparison

__all__ = [
    "WILCOXON_ZERO_METHOD",
    "BootstrapCI",
    "PairedComparison",
    "bootstrap_means",
    "holm",
    "paired_comparison",
    "reject",
]
