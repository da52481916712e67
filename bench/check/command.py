"""``bench check``: run the pinned experiment, compare it with the baseline, exit 0/1/2.

Exit codes: 0 no significant regression; 1 a regression (or another configured
failure: improvement, new or missing model); 2 the baseline is missing, unreadable, or
was made on other data or with another protocol (the message says what differs), or a
config error. ``--update-baseline`` runs the experiment and (re)writes the baseline
atomically instead of comparing.
"""

from __future__ import annotations

import logging
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.check.baseline import baseline_payload, read_baseline, write_baseline
from bench.check.gate import run_gate
from bench.check.outputs import junit_xml, markdown_summary
from bench.config import check_settings, to_container
from bench.errors import BenchError, ConfigError
from bench.reporting.analysis import RunData

log = logging.getLogger("bench")

__all__ = ["compose_check_config", "run_check"]

DEFAULT_EXPERIMENT = "ci"


def compose_check_config(overrides: list[str], config_dir: Path):
    """Compose ``configs/config.yaml`` with ``overrides`` (``experiment=ci`` unless given)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    if not any(o.lstrip("+~").startswith("experiment") for o in overrides):
        overrides.insert(0, f"experiment={DEFAULT_EXPERIMENT}")
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"bench check {' '.join(overrides)}: {first}") from None


def run_check(
    overrides: list[str],
    *,
    config_dir: Path,
    baseline: str | None = None,
    update: bool = False,
    markdown: str | None = None,
    junit: str | None = None,
    tracker=None,
    out=None,
) -> int:
    """Run the gate; return the exit code (see the module docstring).

    ``out`` receives the summary lines; ``None`` means the ``sys.stdout`` of the moment of
    the call (a default bound at import would keep a stream that may since be closed).
    """
    out = sys.stdout if out is None else out
    from bench.runner import run_experiment

    cfg = compose_check_config(overrides, config_dir)
    raw = to_container(cfg)
    settings = check_settings(raw.get("check"))
    path = Path(baseline or settings.baseline)
    if not update:
        read_baseline(path)  # missing or corrupt: fail now, not after the run
    name = str(raw.get("name") or "default")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path((raw.get("report") or {}).get("dir", "reports")) / name / (
        f"{stamp}-check-{uuid.uuid4().hex[:6]}")
    state: dict = {}

    def finish(result, trk, parent) -> list[Path]:
        if result.failures:
            return []
        data = RunData.load(result.output_dir)
        if update:
            state["written"] = write_baseline(path, baseline_payload(data, list(settings.metrics)))
            return []
        try:
            gate = run_gate(data, read_baseline(path), settings)
        except BenchError as exc:  # incomparable: reported after the run ends cleanly
            state["error"] = exc
            return []
        state["gate"] = gate
        md = result.output_dir / "check.md"
        xml = result.output_dir / "check.xml"
        md.write_text(markdown_summary(gate))
        xml.write_text(junit_xml(gate))
        trk.log_metrics(parent, {"check.passed": float(gate.exit_code == 0),
                                 "check.regressions": float(len(gate.regressions)),
                                 "check.tests": float(len(gate.tests))})
        return [md, xml]

    result = run_experiment(cfg, output_dir=folder, tracker=tracker, on_result=finish)
    if result.failures:  # a model that crashed cannot be vouched for, nor be a baseline
        for f in result.failures:
            print(f"check: model {f.model} failed: {f.error} (traceback: {f.traceback})",
                  file=out)
        if update:
            print("baseline NOT written: fix the failing model(s) first", file=out)
        return 1
    if update:
        print(f"baseline written: {state['written']} (from run {folder}); commit it", file=out)
        return 0
    if "error" in state:
        raise state["error"]
    gate = state["gate"]
    text = markdown_summary(gate)
    print(text, file=out)
    for dest, body in ((markdown, text), (junit, junit_xml(gate))):
        if dest:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            Path(dest).write_text(body)
    print(f"check: {folder / 'check.md'}, {folder / 'check.xml'}", file=out)
    return gate.exit_code
