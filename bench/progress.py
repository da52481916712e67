"""What a run is doing, shown while it runs: an :class:`~bench.observe.Observer`.

The run layer never prints; it announces stages (:mod:`bench.observe`), and the ``bench``
command attaches a :class:`Progress` to show them (``bench -q`` attaches none):

* on a terminal, one live line drawn with tqdm under the log lines::

      cf_als fold 0 · fit      6/14 cells |########    | elapsed 0:12, about 0:07 left

  the cell count (``plan`` stage), the model, fold or cold-start protocol and step of the
  cell running now, elapsed time and an estimate of the rest; before the first cell and
  after the last, the step being done (loading data, splitting, writing the report);
* elsewhere (CI logs, a pipe, a file), one plain line per finished cell and per
  finished long step::

      [6/14] cf_als fold 0: 0.9s (elapsed 0:05, about 0:07 left)

Stage names and their ``info`` keys are those :mod:`bench.observe` lists; ``plan``
[cells, resumed] tells how many cells a run has (``cells`` adds to the total, ``resumed``
counts cells reused from an earlier run as done).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import TextIO

__all__ = ["STEP_LABELS", "Progress", "cell_label", "clock"]

#: stages shown as a step of their own (outside the cells), and how they read
STEP_LABELS = {
    "tracking": "opening the tracker",
    "load": "loading data",
    "split": "splitting",
    "audit": "auditing the split",
    "context": "preparing the fold",
    "protocols": "preparing cold-start protocols",
    "reduce": "writing the report",
}
#: the live line while cells run, and before the first is planned
BAR_FORMAT = "{desc:<44.44} {n_fmt}/{total_fmt} cells |{bar:20}| {timing}"
STEP_FORMAT = "{desc:<44.44} {timing}"
#: steps inside a cell, shown after the cell's label
CELL_STEPS = ("fit", "recommend", "evaluate", "artifacts")
#: steps that get a line of their own when not on a terminal (the others are quick)
PLAIN_STEPS = ("load", "reduce")


def cell_label(info: Mapping[str, object]) -> str:
    """``cf_als fold 0`` (``cf_als fold 0 seed 1``) for the main split, ``cf_als
    user_cold_start`` for a protocol."""
    model = info.get("model", "?")
    if info.get("protocol", "main") == "main":
        seed = f" seed {info['seed']}" if info.get("seed") is not None else ""
        return f"{model} fold {info.get('fold')}{seed}"
    return f"{model} {info.get('protocol')}"


def clock(seconds: float) -> str:
    """``0:05``, ``12:40``, ``1:02:03``."""
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Shows a run's progress on ``stream``.

    ``live`` chooses the display: a tqdm line (True) or plain lines (False); by default,
    live when ``stream`` is a terminal. The default stream is stderr when it is a
    terminal (a live line), else stdout: plain progress lines are the command's normal
    output, and stderr keeps its contract — bad input is one ``bench: error:`` line there.
    """

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None):
        if stream is None:
            stream = sys.stderr if _is_terminal(sys.stderr) else sys.stdout
        self.stream = stream
        self.live = _is_terminal(self.stream) if live is None else live
        self.total = 0
        self.done = 0
        self.ran = 0
        self.cell: str | None = None
        self.t0: float | None = None
        self.t_cells: float | None = None
        self.bar = None
        self._redirect: contextlib.ExitStack | None = None
        self._ticker: _Ticker | None = None

    # ------------------------------------------------------------------ observer
    def start(self, stage: str, info: Mapping[str, object]) -> None:
        if self.t0 is None:
            self.t0 = time.monotonic()
        if stage == "plan":
            self.total += int(info.get("cells", 0) or 0)
            self.done += int(info.get("resumed", 0) or 0)
            self._refresh(None)
        elif stage == "cell":
            if self.t_cells is None:
                self.t_cells = time.monotonic()
            self.cell = cell_label(info)
            self._refresh(self.cell)
        elif stage in CELL_STEPS and self.cell is not None:
            self._refresh(f"{self.cell} · {stage}")
        elif stage in STEP_LABELS and self.cell is None:
            self._refresh(STEP_LABELS[stage])

    def end(self, stage: str, info: Mapping[str, object], seconds: float, ok: bool) -> None:
        if stage == "cell":
            self.done += 1
            self.ran += 1
            label, self.cell = self.cell or cell_label(info), None
            if self.live:
                self._refresh(label)
            else:
                self._line(f"[{self.done}/{max(self.total, self.done)}] {label}: "
                           f"{seconds:.1f}s ({self._timing()})")
        elif stage in PLAIN_STEPS and ok and not self.live and self.cell is None:
            self._line(f"{STEP_LABELS[stage]}: done in {seconds:.1f}s")
        if stage == "reduce":
            self.close()

    def note(self, text: str) -> None:
        """Show ``text`` as the current step (the command's own steps, before a run)."""
        if self.t0 is None:
            self.t0 = time.monotonic()
        self._refresh(text)

    # ------------------------------------------------------------------ display
    def close(self) -> None:
        """Remove the live line (and stop sending log lines around it)."""
        self._close_bar()

    def _timing(self) -> str:
        elapsed = time.monotonic() - (self.t0 or time.monotonic())
        left = self._left()
        return f"elapsed {clock(elapsed)}" + ("" if left is None else f", about {clock(left)} left")

    def _left(self) -> float | None:
        """Seconds left at the pace of the cells run so far (resumed cells excluded)."""
        if self.t_cells is None or self.total <= self.done:
            return None
        if self.ran <= 0:
            return None
        return (time.monotonic() - self.t_cells) / self.ran * (self.total - self.done)

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _refresh(self, text: str | None) -> None:
        if not self.live:
            return
        bar = self._bar()
        if bar.total != self.total:
            bar.total = self.total
        bar.n = self.done
        bar.bar_format = BAR_FORMAT if self.total else STEP_FORMAT
        bar.set_description_str(text or "", refresh=False)
        bar.refresh()

    def _bar(self):
        if self.bar is None:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            owner = self

            class Bar(tqdm):
                @property
                def format_dict(self):  # {timing}: elapsed since the command started
                    return {**super().format_dict, "timing": owner._timing()}

            self.bar = Bar(total=self.total, initial=self.done, file=self.stream,
                           dynamic_ncols=True, leave=False, unit="cell", bar_format=STEP_FORMAT)
            self._ticker = _Ticker(self.bar)
            # log lines (the bench logger's model lines) go above the live line: the
            # loggers that print to the console print through tqdm while it is shown
            loggers = [lg for lg in (logging.getLogger(), logging.getLogger("bench"))
                       if any(_is_console(h) for h in lg.handlers)]
            self._redirect = contextlib.ExitStack()
            if loggers:
                self._redirect.enter_context(logging_redirect_tqdm(loggers, tqdm_class=tqdm))
        return self.bar

    def _close_bar(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._redirect is not None:
            self._redirect.close()
            self._redirect = None


class _Ticker:
    """Redraws a live line every ``interval`` seconds, so the clock moves during a long
    step (opening MLflow, fitting a slow model)."""

    def __init__(self, bar, interval: float = 0.5):
        self.bar = bar
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                       name="bench-progress")
        self.thread.start()

    def _run(self, interval: float) -> None:
        while not self.stopped.wait(interval):
            with contextlib.suppress(Exception):  # a closed stream ends the display only
                self.bar.refresh()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)


def _is_console(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and \
        getattr(handler, "stream", None) in (sys.stdout, sys.stderr)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
