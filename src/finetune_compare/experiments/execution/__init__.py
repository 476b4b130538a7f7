"""How the runs of a command are trained: one run (method x seed) and what it leaves in its folder, the executors
(local in order, or Ray tasks side by side), and the progress over the whole command."""
