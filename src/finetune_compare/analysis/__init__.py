"""Analysis: statistics over runs, plots, and the report."""
