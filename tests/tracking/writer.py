"""One of the concurrent writers of ``test_concurrent_writers_lose_nothing``: a process
that logs cells to the tracking server as an executor's worker would.

``python -m tests.tracking.writer OUT INDEX N_CELLS PARENT_ID GO_FILE``: builds the
tracker from ``configs/tracker/mlflow_server.yaml`` (URI from ``MLFLOW_TRACKING_URI``,
experiment from ``BENCH_TEST_EXPERIMENT``), reaches the server, writes ``ready-INDEX``,
waits for ``GO_FILE``, then logs ``N_CELLS`` child runs of ``PARENT_ID``: params, metrics
in three batches and an artifact folder each. What it logged goes to ``OUT/writer-INDEX``:
the cells' artifact folders and ``log.json`` (run ids, params, metrics, start and end
times of the logging).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from bench.tracking.factory import build_tracker

ROOT = Path(__file__).resolve().parents[2]
#: metrics per cell; three log_metrics calls each
N_METRICS = 90


def cell_metrics(index: int, cell: int) -> dict[str, float]:
    """Values that only round-trip if every bit does (thirds, tiny and huge numbers)."""
    rng = np.random.default_rng([index, cell])
    out = {f"m{j:03d}_at_{j % 4 + 1}": float(v) for j, v in enumerate(rng.random(N_METRICS - 3))}
    out.update({"third": (index + 1) / 3, "tiny": 1e-300 * (cell + 1),
                "users_evaluated": float(1000 * index + cell)})
    return out


def write_cell_folder(folder: Path, index: int, cell: int) -> None:
    rng = np.random.default_rng([index, cell, 7])
    (folder / "nested" / "deep").mkdir(parents=True, exist_ok=True)
    (folder / "topk.parquet").write_bytes(rng.bytes(48_000 + 1000 * cell))
    (folder / "metrics.json").write_text(json.dumps(cell_metrics(index, cell), indent=1))
    (folder / "nested" / "deep" / "note.txt").write_text(f"writer {index} cell {cell}\n")


def main(out: Path, index: int, n_cells: int, parent: str, go: Path) -> None:
    cfg = OmegaConf.load(ROOT / "configs" / "tracker" / "mlflow_server.yaml")
    cfg.experiment = os.environ["BENCH_TEST_EXPERIMENT"]
    tracker = build_tracker(OmegaConf.to_container(cfg, resolve=True))
    tracker.check()
    mine = out / f"writer-{index}"
    mine.mkdir(parents=True)
    (out / f"ready-{index}").touch()
    while not go.exists():
        time.sleep(0.01)
    log = {"pid": os.getpid(), "start": time.time(), "cells": []}
    for cell in range(n_cells):
        name = f"writer{index}/cell{cell}"
        run = tracker.start_run(name, parent_id=parent,
                                tags={"writer": str(index), "cell": str(cell)})
        params = {"writer": index, "cell": cell, "factors": 8 * (cell + 1), "reg": 0.01 * index}
        tracker.log_params(run, params)
        metrics = cell_metrics(index, cell)
        keys = sorted(metrics)
        for part in (keys[0::3], keys[1::3], keys[2::3]):
            tracker.log_metrics(run, {k: metrics[k] for k in part})
        folder = mine / f"cell{cell}"
        write_cell_folder(folder, index, cell)
        tracker.log_artifact(run, folder, None)
        tracker.end_run(run, "FINISHED")
        log["cells"].append({"run_id": run, "name": name, "folder": str(folder),
                             "params": {k: str(v) for k, v in params.items()},
                             "metrics": metrics})
    log["end"] = time.time()
    (mine / "log.json").write_text(json.dumps(log))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(Path(a[0]), int(a[1]), int(a[2]), a[3], Path(a[4]))
