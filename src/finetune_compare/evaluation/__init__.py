"""Evaluation: metrics, prediction on a split, prediction rows, and prediction with a saved model."""
