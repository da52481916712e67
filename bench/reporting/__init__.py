"""Reports built from a RunResult: markdown tables (and, later, figures)."""
