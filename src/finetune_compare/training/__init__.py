"""Training: one Trainer path for every method (sampler, callbacks, metrics)."""
