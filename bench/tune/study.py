"""One Optuna study per model: a seeded sampler, an optional pruner, a budget, resume.

:func:`run_study` asks Optuna for parameter values (:meth:`Space.sample`), scores each
trial with :func:`bench.tune.objective.evaluate_config` on the validation task, and tells
Optuna the result, until the model's :class:`Budget` is spent: a number of trials
(every finished trial counts, pruned and failed ones too) and/or CPU seconds (the sum of
the trials' own CPU time, so parallel trials count in full). Trial 0 evaluates the model
config as it is (``start_from_defaults``).

Studies live in an Optuna RDB storage (SQLite by default, any SQLAlchemy URL such as
PostgreSQL), named ``<study>/<model>``. Running the same command again resumes each
study up to its budget; a study made with another space, metric, data or validation cut
is refused (its attributes are compared), so trials of different problems never mix.

With ``jobs > 1`` trials are asked in batches and evaluated in worker processes (the
sampler sees a batch's results together; pruning needs ``jobs=1``).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.errors import BenchError, ConfigError
from bench.tune.objective import Pruned, ValidationTask, evaluate_config
from bench.tune.space import Space, apply_values

log = logging.getLogger("bench")

__all__ = [
    "Budget", "Outcome", "StudyResult", "StudySetup", "TrialPool", "TrialRecord",
    "evaluate_outcome", "make_sampler", "run_study",
]


@dataclass(frozen=True)
class Budget:
    """Trials, CPU seconds, or both: the study ends when the first is reached."""

    trials: int | None = None
    seconds: float | None = None

    def spent(self, trials: int, cpu_seconds: float) -> bool:
        return ((self.trials is not None and trials >= self.trials)
                or (self.seconds is not None and cpu_seconds >= self.seconds))

    def describe(self) -> str:
        parts = []
        if self.trials is not None:
            parts.append(f"{self.trials} trials")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g} CPU seconds")
        return " or ".join(parts)


@dataclass(frozen=True)
class StudySetup:
    """How every study of one command searches (recorded with the results)."""

    storage: str
    prefix: str
    sampler: str = "tpe"
    pruner: str = "none"
    seed: int = 0
    start_from_defaults: bool = True
    jobs: int = 1
    #: what must match for a stored study to be resumed (metric, data, validation cut)
    attrs: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, as plain data."""

    number: int
    state: str
    value: float | None
    params: dict
    cpu_seconds: float
    seconds: float
    defaults: bool = False
    error: str | None = None


@dataclass
class StudyResult:
    """What tuning one model gave: its status, the budget, every trial, the best values."""

    model: str
    status: str
    budget: Budget
    space: dict
    study: str | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    default_value: float | None = None
    boundary: list[str] = field(default_factory=list)

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    @property
    def cpu_seconds(self) -> float:
        return float(sum(t.cpu_seconds for t in self.trials))

    def record(self) -> dict:
        """The plain-data summary the overlay, the card and the report carry."""
        out: dict = {"status": self.status}
        if self.status in ("tuned", "failed"):
            out.update(
                study=self.study, budget=self.budget.describe(), trials=self.n_trials,
                cpu_seconds=round(self.cpu_seconds, 2),
                states={s: sum(t.state == s for t in self.trials)
                        for s in sorted({t.state for t in self.trials})},
                best_value=self.best_value, default_value=self.default_value,
                best=dict(self.best_params), boundary=list(self.boundary),
            )
        return out


# ---------------------------------------------------------------------------- Optuna
def make_sampler(name: str, seed: int):
    """A seeded Optuna sampler: ``tpe`` (TPESampler) or ``random`` (RandomSampler)."""
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def open_study(setup: StudySetup, model: str, space: Space):
    """Create the model's study, or load it when it exists and was made for the same
    problem (space, metric, data, validation cut); otherwise a ConfigError line."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"{setup.prefix}/{model}"
    try:
        study = optuna.create_study(
            storage=_storage(setup.storage), study_name=name, direction="maximize",
            sampler=make_sampler(setup.sampler, setup.seed), pruner=make_pruner(setup.pruner),
            load_if_exists=True,
        )
    except (ImportError, ModuleNotFoundError) as exc:
        raise ConfigError(f"tune.storage: cannot open {setup.storage!r}: {exc} (install the "
                          "database driver, e.g. psycopg2 for PostgreSQL)") from None
    except Exception as exc:  # SQLAlchemy: unreachable server, bad URL, ...
        if type(exc).__module__.startswith(("sqlalchemy", "optuna")):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"tune.storage: cannot open {setup.storage!r}: {first}") from None
        raise
    wanted = {**setup.attrs, "space": space.fingerprint(), "sampler": setup.sampler,
              "seed": setup.seed}
    stored = study.user_attrs
    if stored:
        differ = sorted(k for k in wanted if stored.get(k) != wanted[k])
        if differ:
            raise ConfigError(
                f"tune.study: the stored study {name!r} was made with other {differ}; set "
                f"tune.study=<new name> for a fresh study (or delete it from {setup.storage})"
            )
    else:
        for k, v in wanted.items():
            study.set_user_attr(k, v)
    return study


@functools.lru_cache(maxsize=8)
def _storage(url: str):
    """One storage object per database URL in this process (opening one checks and, for a
    new file, creates its schema: seconds that every study of a command would repeat)."""
    import optuna

    return optuna.storages.RDBStorage(url)


def _finished(study) -> list:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False) if t.state in done]


def _record(t) -> TrialRecord:
    return TrialRecord(
        number=t.number, state=t.state.name, value=t.value if t.values else None,
        params=dict(t.params), cpu_seconds=float(t.user_attrs.get("cpu_seconds", 0.0)),
        seconds=float(t.user_attrs.get("seconds", 0.0)),
        defaults=bool(t.user_attrs.get("defaults", False)), error=t.user_attrs.get("error"),
    )


def _enqueue_defaults(study, space: Space) -> None:
    """Trial 0 evaluates the config as it is: its values that lie in the space are fixed
    (the rest sampled); it counts as the defaults' score only when every value was."""
    fixed = {}
    for p in space.params:
        v = space.defaults.get(p.path)
        if p.kind == "categorical":
            ok = v in p.choices
        else:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and p.low <= v <= p.high
        if ok:
            fixed[p.path] = v
    whole = len(fixed) == len([p for p in space.params if p.path in space.defaults])
    study.enqueue_trial(fixed, user_attrs={"defaults": whole})


# ---------------------------------------------------------------------------- the loop
def run_study(model: str, model_cfg: dict, space: Space, task: ValidationTask,
              budget: Budget, setup: StudySetup,
              on_trial: Callable[[str, TrialRecord], None] | None = None,
              pool=None) -> StudyResult:
    """Tune one model until its budget is spent (resuming a stored study); see the module
    docstring. ``pool`` evaluates trials in parallel (``jobs > 1``)."""
    result = StudyResult(model=model, status=space.status, budget=budget,
                         space=space.describe())
    if space.status != "tunable":
        return result
    from optuna.trial import TrialState

    study = open_study(setup, model, space)
    result.study = study.study_name
    if setup.start_from_defaults and not study.get_trials(deepcopy=False):
        _enqueue_defaults(study, space)
    while True:
        done = _finished(study)
        used = sum(float(t.user_attrs.get("cpu_seconds", 0.0)) for t in done)
        if budget.spent(len(done), used):
            break
        left = budget.trials - len(done) if budget.trials is not None else setup.jobs
        batch = max(1, min(setup.jobs, left))
        trials = [study.ask() for _ in range(batch)]
        values = [space.sample(t) for t in trials]
        configs = [apply_values(model_cfg, v) for v in values]
        if pool is None or batch == 1:
            outcomes = [_run_one(task, model, cfg, t) for t, cfg in zip(trials, configs,
                                                                         strict=True)]
        else:
            outcomes = pool.evaluate(model, configs)
        for trial, outcome in zip(trials, outcomes, strict=True):
            state, value = _tell(study, trial, outcome, TrialState)
            rec = _record(study.get_trials(deepcopy=False)[trial.number])
            log.info("tune %s trial %d: %s%s %s", model, trial.number, state.lower(),
                     "" if value is None else f" {task.metric}={value:.4f}", rec.params)
            if on_trial is not None:
                on_trial(model, rec)
    return _summarise(result, study, space)


def _run_one(task: ValidationTask, model: str, cfg: dict, trial) -> Outcome:
    """One trial in this process, with the pruner watching the running mean."""

    def report(step: int, value: float) -> bool:
        trial.report(value, step)
        return trial.should_prune()

    return evaluate_outcome(task, model, cfg, report)


@dataclass(frozen=True)
class Outcome:
    """A trial's outcome as data: ``COMPLETE`` with a value, ``PRUNED`` or ``FAIL`` (with
    the error), and what it cost in CPU and wall-clock seconds."""

    state: str
    value: float | None
    cpu_seconds: float
    seconds: float
    error: str | None = None


def evaluate_outcome(task: ValidationTask, model: str, cfg: dict, report=None) -> Outcome:
    """Score one config; a model that raises fails its trial and the study goes on."""
    cpu, wall = time.process_time(), time.perf_counter()
    state, value, error = "FAIL", None, None
    try:
        score = evaluate_config(task, model, cfg, report)
        if math.isfinite(score.value):
            state, value = "COMPLETE", score.value
        else:
            error = f"non-finite validation value {score.value!r}"
    except Pruned:
        state = "PRUNED"
    except (BenchError, ValueError, ArithmeticError, MemoryError, RuntimeError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    return Outcome(state=state, value=value, cpu_seconds=time.process_time() - cpu,
                   seconds=time.perf_counter() - wall, error=error)


def _tell(study, trial, outcome: Outcome, states) -> tuple[str, float | None]:
    trial.set_user_attr("cpu_seconds", outcome.cpu_seconds)
    trial.set_user_attr("seconds", outcome.seconds)
    if outcome.state == "COMPLETE":
        study.tell(trial, outcome.value)
    elif outcome.state == "PRUNED":
        study.tell(trial, state=states.PRUNED)
    else:
        trial.set_user_attr("error", outcome.error)
        study.tell(trial, state=states.FAIL)
    return outcome.state, outcome.value


class TrialPool:
    """Worker processes that evaluate a batch of trials at once (``tune.jobs > 1``).

    Each worker receives the validation task once; a trial ships only its model config.
    Workers are started with ``spawn`` (no state inherited from a threaded parent).
    """

    def __init__(self, task: ValidationTask, jobs: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(task,),
        )

    def evaluate(self, model: str, configs: list[dict]) -> list[Outcome]:
        return list(self._pool.map(_worker_evaluate, [model] * len(configs), configs))

    def close(self) -> None:
        self._pool.shutdown()


_WORKER_TASK: list[ValidationTask] = []


def _init_worker(task: ValidationTask) -> None:
    _WORKER_TASK[:] = [task]


def _worker_evaluate(model: str, cfg: dict) -> Outcome:
    return evaluate_outcome(_WORKER_TASK[0], model, cfg)


def _summarise(result: StudyResult, study, space: Space) -> StudyResult:
    result.trials = [_record(t) for t in _finished(study)]
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    if not complete:
        result.status = "failed"
        return result
    best = max(complete, key=lambda t: (t.value, -t.number))
    result.status = "tuned"
    result.best_value = best.value
    result.best_params = dict(best.params)
    defaults = [t for t in complete if t.defaults]
    result.default_value = defaults[0].value if defaults else None
    result.boundary = space.boundary(best.params)
    return result
