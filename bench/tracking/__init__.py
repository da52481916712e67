"""Experiment trackers: MLflow (default), in-memory (tests) and none."""

from bench.tracking.base import NullTracker, Tracker
from bench.tracking.memory import MemoryTracker

__all__ = ["MemoryTracker", "NullTracker", "Tracker"]
