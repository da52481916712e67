"""The CI model-quality gate: ``bench check`` against a committed baseline.

* :mod:`bench.check.baseline` — the baseline file: write (atomically), read, validate;
* :mod:`bench.check.gate` — paired per-user comparison of a run with its baseline;
* :mod:`bench.check.promise` — what a baseline promises to compare, and what of it a run
  does not match;
* :mod:`bench.check.outputs` — the markdown summary (a PR comment) and JUnit XML.
"""
