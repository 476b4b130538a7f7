"""The execution section and the Ray executor's checks that need no cluster."""

import sys

import pytest

from finetune_compare import Config, ConfigError, UserError


def test_the_execution_section_nested_flat_and_on_the_command_line():
    from finetune_compare.cli import build_parser
    from finetune_compare.config import flatten_sections

    cfg = Config(**flatten_sections({"execution": {"backend": "ray", "gpus_per_run": 0.25, "max_retries": 3}}))
    assert (cfg.execution_backend, cfg.execution_gpus_per_run, cfg.execution_max_retries) == ("ray", 0.25, 3)
    assert build_parser().parse_args(["compare", "--backend", "ray"]).execution_backend == "ray"
    with pytest.raises(ConfigError, match="'execution_backend': 'slurm' is not allowed; allowed: local, ray"):
        Config(execution_backend="slurm")
    with pytest.raises(ConfigError, match="execution_cpus_per_run"):
        Config(execution_cpus_per_run=0)


def test_the_backend_does_not_decide_the_folder():
    """A folder started on one backend resumes on the other: execution keys are not result-affecting."""
    from finetune_compare.experiments.study.ownership import result_affecting

    assert result_affecting(Config(execution_backend="ray", execution_gpus_per_run=0.5)) == result_affecting(Config())


def test_without_ray_installed_the_ray_backend_is_one_line_saying_how_to_install_it(monkeypatch):
    from finetune_compare.experiments.execution.ray_executor import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(UserError, match=r"needs Ray, which is not installed: pip install -e '\.\[ray\]'"):
        import_ray()


def test_runs_side_by_side_are_what_the_resources_allow():
    from finetune_compare.experiments.execution.ray_executor import check_fits, side_by_side

    cfg = Config(execution_backend="ray", execution_gpus_per_run=0.5, execution_cpus_per_run=1)
    assert side_by_side({"CPU": 16, "GPU": 2}, cfg, tasks=10) == 4  # fractional GPUs pack runs
    assert side_by_side({"CPU": 3, "GPU": 2}, cfg, tasks=10) == 3  # CPUs bind first
    assert side_by_side({"CPU": 16, "GPU": 2}, cfg, tasks=2) == 2
    assert side_by_side({"CPU": 2}, Config(execution_backend="ray", execution_cpus_per_run=2), tasks=5) == 1
    with pytest.raises(UserError, match=r"a run declares 1 CPU\(s\) and 0.5 GPU\(s\).*has 16 CPU\(s\) and 0 GPU"):
        check_fits({"CPU": 16}, cfg)


def test_trial_workers_need_ray_and_a_storage_several_processes_can_write(tmp_path):
    from finetune_compare.experiments.search.optimize import run_optimization
    from finetune_compare.experiments.search.ray_trials import check_shared_storage

    with pytest.raises(UserError, match="hpo_workers 2 .* add --backend ray"):
        run_optimization(Config(hpo_workers=2, output_dir=str(tmp_path / "o")), ["full"], n_trials=2)
    for url in (None, "sqlite:///x.db"):
        with pytest.raises(UserError, match="use --storage journal:PATH .* or postgresql://"):
            check_shared_storage(url, 2)
    check_shared_storage(None, 1)
    check_shared_storage("journal:/tmp/s.journal", 4)
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_a_private_ray_that_would_listen_on_the_network_is_never_started(monkeypatch):
    """ray imported before the single-machine switch: refused before ray.init is called."""
    import types

    from finetune_compare.experiments.execution import ray_executor

    calls = []
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(kw))
    constants = types.SimpleNamespace(ENABLE_RAY_CLUSTER=True)
    monkeypatch.setitem(sys.modules, "ray._private", types.SimpleNamespace(ray_constants=constants))
    monkeypatch.setitem(sys.modules, "ray._private.ray_constants", constants)
    with pytest.raises(UserError, match="would listen on every network interface"):
        ray_executor.start_private_ray(fake)
    assert not calls
