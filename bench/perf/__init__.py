"""Benchmarks: ``bench perf <workload>`` (or ``python -m bench.perf <workload>``).

Each workload is a module of this package with ``HELP``, ``add_arguments(parser)`` and
``run(args, parser) -> int``; it prints a table (medians, min/max, ratios) and, with
``--json``, writes its numbers. Performance targets live here, in benchmarks, never in
timed unit tests. This package is a script: it prints.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["WORKLOADS", "main"]

#: workload name -> module (imported only when that workload runs)
WORKLOADS = {
    "metrics": "bench.perf.metrics",
    "surprise": "bench.perf.surprise",
    "topk": "bench.perf.topk",
    "spectrum": "bench.perf.spectrum",
    "scale": "bench.perf.scale",
    "shards": "bench.perf.shards",
    "cells": "bench.perf.cells",
    "project": "bench.perf.project",
    "suite": "bench.perf.suite",
}


def main(argv: list[str] | None = None, prog: str = "bench perf") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    modules = {}
    for name, module in WORKLOADS.items():
        mod = importlib.import_module(module)
        modules[name] = mod
        mod.add_arguments(sub.add_parser(name, help=mod.HELP, description=mod.__doc__))
    args = parser.parse_args(argv)
    return modules[args.bench].run(args, parser)


if __name__ == "__main__":
    sys.exit(main())
