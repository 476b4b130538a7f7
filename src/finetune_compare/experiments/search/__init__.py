"""Hyper-parameter search with Optuna: the studies (storage, one metric and space each), the trials of a study in
this process or as Ray tasks, and the optimize command that runs them."""
