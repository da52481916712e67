"""Upper bounds on the config values that size memory, checked before anything trains.

A value such as ``stats.n_resamples = 10**9`` used to pass every check, train every model
and then die in the report step with ``MemoryError`` and a half-written run folder. Each
check here estimates the bytes one array of the run takes from the settings and the data
sizes, and refuses a value whose estimate exceeds :data:`MEMORY_BUDGET`, in one line
naming the key, the largest value that fits and the estimate:

- ``stats.n_resamples``: the bootstrap keeps ``n_resamples x columns`` resampled means
  (float64) and ``numpy.quantile`` sorts a copy: ``16`` bytes a cell. ``columns`` is at
  least ``len(eval.metrics) x len(eval.cutoffs)`` (the report bootstraps every metric
  column of a model at once). The resampling itself is chunked (about 32 MB whatever the
  number of users) and models are bootstrapped one at a time, so users and models cost
  time here, not memory.
- ``eval.cutoffs`` / ``report.curve_k`` (the longer is the list length ``k``): every cell
  keeps top-k lists of ``n_users x k`` item codes (int32), scores (float32) and sources
  (int16): ``10`` bytes a cell.
- ``report.curve_k``: the metric@k curves evaluate every ``k = 1..curve_k``: per-user
  float64 values for each curve metric, ``n_users x curve_k x metrics x 8`` bytes.
- ``eval.batch_size`` (when set): one score block is ``min(batch_size, n_users) x n_items``
  cells: float32 scores, a float32 copy and the int64 keys and order of the exact top-k
  selection, ``24`` bytes a cell.
- ``eval.cutoffs`` (how many): the per-user table of every model is kept until the report
  (and copied once when the models are stacked): ``n_users x n_models x columns x 16``
  bytes, ``columns = len(eval.metrics) x len(eval.cutoffs)``, twice with
  ``eval.segments.new_items``.

:func:`check_budget` takes the sizes once they are known (after the split);
:func:`bench.config.load_settings` calls it with one user and one item, which catches the
values that cannot fit whatever the data, plus :data:`MAX_K`.
"""

from __future__ import annotations

from bench.errors import ConfigError, describe
from bench.metrics.registry import CURVE_METRICS

__all__ = ["MAX_K", "MEMORY_BUDGET", "check_budget", "human_bytes"]

MEMORY_BUDGET = 8 * 2**30
"""Bytes one array of a run may take (8 GiB): far above any sensible setting on MovieLens
32M, far below what an absurd value asks for."""
MAX_K = 100_000
"""Longest top-k list (``eval.cutoffs`` and ``report.curve_k``): lists cost ``10`` bytes per
user and rank, and the curves evaluate every k up to ``curve_k``."""

LIST_BYTES = 4 + 4 + 2
SCORE_BYTES = 4 + 4 + 8 + 8
RESAMPLE_BYTES = 8 + 8
VALUE_BYTES = 8


def human_bytes(n: float) -> str:
    """``1.5 GiB``, ``32.0 MiB``, ``512 B``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_budget(settings, n_users: int, n_items: int, n_models: int, *,
                 budget: int = MEMORY_BUDGET) -> None:
    """Refuse settings whose memory estimate for this data exceeds ``budget`` bytes.

    Args:
        settings: a :class:`bench.config.RunSettings` (``eval``, ``stats`` and ``report``
            are read).
        n_users: the users one fold evaluates (the dataset's users are a safe bound).
        n_items: the items a model scores (the catalogue).
        n_models: the models of the run.
        budget: bytes one array may take (default :data:`MEMORY_BUDGET`).

    Raises:
        ConfigError: one line naming the key, the largest value that fits and why.
    """
    ev, st, rep = settings.eval, settings.stats, settings.report
    users, items, models = max(1, int(n_users)), max(1, int(n_items)), max(1, int(n_models))
    k_key, k = (("report.curve_k", rep.curve_k) if rep.curve_k > ev.k_max
                else ("eval.cutoffs", ev.k_max))
    if k > MAX_K:
        raise ConfigError(describe(
            k_key, f"a list length of at most {MAX_K:,} (top-k lists take {LIST_BYTES} bytes "
                   f"per user and rank)", _shown(k_key, ev, rep)))
    columns = len(ev.metrics) * len(ev.cutoffs)
    _check(budget, "stats.n_resamples", st.n_resamples, columns * RESAMPLE_BYTES,
           f"bootstrap: resamples x {columns} metric columns x {RESAMPLE_BYTES} bytes",
           st.n_resamples)
    _check(budget, k_key, k, users * LIST_BYTES,
           f"top-k lists: {users:,} users x k x {LIST_BYTES} bytes", _shown(k_key, ev, rep))
    curves = len([m for m in CURVE_METRICS if m in ev.metrics]) or len(CURVE_METRICS)
    _check(budget, "report.curve_k", rep.curve_k, users * curves * VALUE_BYTES,
           f"metric@k curves: {users:,} users x curve_k x {curves} metrics x {VALUE_BYTES} "
           f"bytes", rep.curve_k)
    if ev.batch_size is not None:
        rows = min(ev.batch_size, users)
        _check(budget, "eval.batch_size", rows, items * SCORE_BYTES,
               f"score block: min(batch_size, {users:,} users) x {items:,} items x "
               f"{SCORE_BYTES} bytes", ev.batch_size)
    per_cutoff = models * len(ev.metrics) * (2 if ev.new_items else 1)
    _check(budget, "eval.cutoffs", len(ev.cutoffs), users * per_cutoff * RESAMPLE_BYTES,
           f"per-user table: {users:,} users x {models} models x {len(ev.metrics)} metrics "
           f"x cutoffs{' x 2 (new items)' if ev.new_items else ''} x {RESAMPLE_BYTES} bytes",
           list(ev.cutoffs), unit=" cutoffs")


def _check(budget: int, key: str, value: int, bytes_per_unit: int, why: str, shown,
           unit: str = "") -> None:
    """Refuse ``value`` when ``value x bytes_per_unit`` exceeds ``budget``."""
    need = value * bytes_per_unit
    if need <= budget:
        return
    bound = max(0, budget // bytes_per_unit)
    raise ConfigError(describe(
        key, f"at most {bound:,}{unit} ({why} = {human_bytes(need)} > the "
             f"{human_bytes(budget)} memory budget)", shown))


def _shown(key: str, ev, rep):
    return rep.curve_k if key == "report.curve_k" else list(ev.cutoffs)
