"""Sharded evaluation with exact merges (placeholder docstring, filled below)."""
