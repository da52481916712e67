"""Splits: the frozen :class:`Split` and the splitters that make them.

Every splitter takes its hyperparameters as keyword arguments and returns a list of
:class:`Split` (one per fold) from :meth:`Splitter.split`, which checks the shared
post-conditions once for all of them.
"""

from bench.splits.base import Split, Splitter
from bench.splits.cold_start import ItemColdStartSplitter, UserColdStartSplitter
from bench.splits.holdout import RandomHoldoutSplitter
from bench.splits.kfold import KFoldSplitter, SurpriseKFoldSplitter
from bench.splits.leave_last import LeaveLastNSplitter
from bench.splits.temporal import GlobalTemporalSplitter

__all__ = [
    "GlobalTemporalSplitter",
    "ItemColdStartSplitter",
    "KFoldSplitter",
    "LeaveLastNSplitter",
    "RandomHoldoutSplitter",
    "Split",
    "Splitter",
    "SurpriseKFoldSplitter",
    "UserColdStartSplitter",
]
