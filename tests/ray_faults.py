"""Test-only fault injection for the Ray backend's tests, installed in every worker of the tests' own Ray cluster
through Ray's `worker_process_setup_hook` (tests/experiments/test_ray_backend.py's `ray_cluster`): the product code
carries no test switch, and no cluster ever receives one."""

from __future__ import annotations

CRASHED = ("lora", 8)  # its first attempt in every folder loses its process


def lose_the_first_attempt_of_crashed() -> None:
    """In this worker, the first attempt of the CRASHED run loses its process once its attempt is recorded, as a
    killed worker or node would (exit 17, no exception for Ray to report)."""
    import os

    from finetune_compare.experiments.execution import ray_executor

    train = ray_executor.run_method

    def run_method(ctx, method, seed):
        if (method, seed) == CRASHED and ctx.environment["executor"]["attempt"] == 1:
            os._exit(17)
        return train(ctx, method, seed)

    ray_executor.run_method = run_method
