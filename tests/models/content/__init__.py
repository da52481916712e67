"""Tests of the content rung (bench.models.content)."""
