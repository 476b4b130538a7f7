"""Experiment tracking: MLflow and Weights & Biases observe the same events; they never decide anything."""

from .hub import TrackerHub, build_tracker_hub

__all__ = ["TrackerHub", "build_tracker_hub"]
