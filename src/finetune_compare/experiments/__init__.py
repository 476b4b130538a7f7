"""Experiments: single runs, comparisons, optimisation."""
