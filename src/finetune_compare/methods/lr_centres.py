"""Learning-rate centres of the peft types' default search spaces, from benchmarks/lr_range_test.py (generated
by it; do not edit by hand). Each is the rate with the best validation macro-F1 among
0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03 (and 3e-05 or 0.1 where the best lay at an end of that grid),
one seed, 60 optimizer steps, the quickstart's data and the embedded MiniLM-L6, measured on
AMD EPYC, 2 cores with peft 0.21.2, transformers 5.25.0, torch 2.13.0+cpu.
A starting point for the search on one model, not a tuned rate."""

LR_CENTRES = {
    "adalora": 0.01,
    "boft": 0.01,
    "fourierft": 0.1,
    "hra": 0.03,
    "lokr": 0.01,
    "oft": 0.003,
}
