"""The commands that write a results folder: compare (paired seeds, the base row, the pre-registration), sweep (a
grid of compares), the data summary, predictions on files, and the checks the CLI makes before the heavy imports."""
