"""The Ray executor on a real local Ray (127.0.0.1 only, no dashboard, 2 declared fake GPUs): runs side by side
within the declared resources, pinned devices, a lost process retried, a killed driver resumed, and the same
results as the local backend."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from finetune_compare.experiments.execution.ray_executor import SINGLE_MACHINE_ENV

from .. import ray_faults
from ..conftest import tiny_config
from ..ray_faults import CRASHED

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="the Ray extra is not installed: pip install -e '.[ray]'")

ROOT = Path(__file__).resolve().parents[2]


def _listening_addresses(pids: set[int]) -> list[str]:
    """The local addresses the given processes listen on (ss -ltnp)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            found.append(line.split()[3].rsplit(":", 1)[0])
    return found


def _ray_pids() -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines()[1:]
            if "ray::" in line or "raylet" in line or "gcs_server" in line or "ray/dashboard" in line
            or "runtime_env" in line}


@pytest.fixture(scope="module")
def ray_cluster():
    from ray._private import ray_constants

    # conftest sets SINGLE_MACHINE_ENV before anything imports ray; never start a Ray that would listen elsewhere
    assert os.environ[SINGLE_MACHINE_ENV] == "0" and not ray_constants.ENABLE_RAY_CLUSTER
    # every worker of this cluster loses CRASHED's first attempt (tests/ray_faults.py, pickled by value: the workers
    # need not import the tests); the commands' own private Rays get no fault
    ray.cloudpickle.register_pickle_by_value(ray_faults)
    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, configure_logging=False,
             runtime_env={"worker_process_setup_hook": ray_faults.lose_the_first_attempt_of_crashed})
    try:
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        yield
    finally:
        ray.shutdown()


def _config(tiny_bert, tmp_path, name, **overrides):
    values = dict(num_epochs=1, num_runs=2, lora_learning_rate=1e-2, output_dir=str(tmp_path / name))
    return tiny_config(tiny_bert, tmp_path, **{**values, **overrides})


def _comparable():
    """benchmarks/bench_ray.py's `comparable`: comparison.json minus what may differ between backends (timings,
    memory, where each run ran, also inside the verdict's cost sentence); the benchmark judges equality with it too."""
    spec = importlib.util.spec_from_file_location("bench_ray", ROOT / "benchmarks" / "bench_ray.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.comparable


_without_timings = _comparable()


def _runs(out: Path) -> dict[Path, dict]:
    """Every finished run's metrics.json under `out` (a comparison or a sweep), by its folder."""
    return {p.parent: json.loads(p.read_text()) for p in sorted(out.glob("**/runs/*/seed-*/metrics.json"))}


def test_the_cluster_listens_on_loopback_only(ray_cluster):
    addresses = _listening_addresses(_ray_pids())
    assert addresses and all(a in ("127.0.0.1", "[::ffff:127.0.0.1]") for a in addresses), addresses


def test_a_sweep_on_ray_equals_the_local_backend_with_a_lost_run_retried(ray_cluster, tiny_bert, tmp_path):
    from finetune_compare.experiments.commands.sweep import run_sweep

    sweep = {"samples_per_class": [40, 50]}
    local = run_sweep(_config(tiny_bert, tmp_path, "local", sweep=sweep))
    on_ray = run_sweep(_config(tiny_bert, tmp_path, "ray", sweep=sweep, execution_backend="ray",
                               execution_gpus_per_run=0.5))
    assert _without_timings(on_ray["points"]) == _without_timings(local["points"])
    for point in ("samples_per_class=40", "samples_per_class=50"):
        a = json.loads((tmp_path / "local" / "points" / point / "comparison.json").read_text())
        b = json.loads((tmp_path / "ray" / "points" / point / "comparison.json").read_text())
        assert _without_timings(b) == _without_timings(a)
    runs = _runs(tmp_path / "ray")
    assert len(runs) == 8
    for metrics in runs.values():
        placement = metrics["environment"]["executor"]
        assert placement["backend"] == "ray" and placement["cuda_visible_devices"] in ("0", "1")
        assert placement["attempt"] == (2 if (metrics["method"], metrics["seed"]) == CRASHED else 1)  # the lost process was retried
    # 4 runs at 0.5 GPU each fit the 2 GPUs at once: they overlapped
    assert _max_overlap(tmp_path / "ray" / "points" / "samples_per_class=40") >= 2


def _intervals(out: Path) -> list[tuple[float, float, str]]:
    spans = []
    for path in out.glob("runs/*/seed-*/metrics.json"):
        placement = json.loads(path.read_text())["environment"]["executor"]
        spans.append((placement["started_at"], path.stat().st_mtime, placement["cuda_visible_devices"]))
    return spans


def _max_overlap(out: Path) -> int:
    spans = _intervals(out)
    return max(sum(1 for s, e, _ in spans if s <= t < e) for t, _, _ in spans)


def test_one_gpu_per_run_runs_two_at_a_time_on_different_devices(ray_cluster, tiny_bert, tmp_path):
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    cfg = _config(tiny_bert, tmp_path, "one-gpu", execution_backend="ray", execution_gpus_per_run=1)
    ComparisonExperiment(cfg).run_multiple_runs()
    spans = _intervals(Path(cfg.output_dir))
    assert len(spans) == 4 and _max_overlap(Path(cfg.output_dir)) <= 2
    for s1, e1, d1 in spans:  # two runs that overlap never share a device
        for s2, e2, d2 in spans:
            if (s1, e1) != (s2, e2) and s1 < e2 and s2 < e1:
                assert d1 != d2


def test_a_run_that_fails_every_attempt_is_recorded_and_named(ray_cluster, tiny_bert, tmp_path):
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    # max_retries 0: the crashed run's only attempt is lost, the others go on
    cfg = _config(tiny_bert, tmp_path, "fails", execution_backend="ray", execution_max_retries=0)
    result = ComparisonExperiment(cfg).run_multiple_runs()
    failure = json.loads((Path(cfg.output_dir) / "runs" / "lora" / "seed-8" / "failure.json").read_text())
    assert failure["attempts"] == 1 and "lora" == failure["method"]
    assert len(result["runs"]) == 3 and result["failed_runs"][0]["seed"] == 8
    report = (Path(cfg.output_dir) / "report.md").read_text()
    assert "Missing: lora seed 8 failed on all 1 attempt(s)" in report and "rerun the same command" in report
    # the same command again trains only the failed run (its second attempt does not crash)
    ComparisonExperiment(cfg).run_multiple_runs()
    assert len(_runs(Path(cfg.output_dir))) == 4 and not (Path(cfg.output_dir) / "runs/lora/seed-8/failure.json").exists()


def _kill_group(pgid: int) -> None:
    """SIGKILL every process of the group, then wait (up to 20 s) until none is left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
        if not alive:
            return
        time.sleep(0.2)


def _group(pgid: int) -> list[str]:
    """The processes of a process group that are still running (zombies are gone already)."""
    pids = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        except OSError:
            continue  # gone meanwhile
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            out.append(f"{pid} {command[:80]!r}")
    return out


def _reapers(driver_pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-f", f"ray_reaper {driver_pid}$"], capture_output=True, text=True).stdout.split()


def test_a_killed_driver_is_resumed_by_the_same_command(tiny_bert, tmp_path):
    """kill -9 of the command mid-sweep (its private Ray, on 127.0.0.1, dies with it, agents included), then the same
    command: only the runs without metrics.json train."""
    cfg = _config(tiny_bert, tmp_path, "killed", sweep={"samples_per_class": [40, 50]})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    command = [sys.executable, "-m", "finetune_compare.cli", "sweep", "--config", str(path), "--backend", "ray"]
    env = dict(os.environ)
    driver = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    out = Path(cfg.output_dir)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and driver.poll() is None and len(_runs(out)) < 2:
            time.sleep(0.5)
        assert driver.poll() is None, driver.stderr.read()
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        # Ray's agents outlived a SIGKILL of the driver (ray 2.60.0); the reaper beside the private Ray kills every
        # Ray process left, and then ends itself
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_group(driver.pid) or _reapers(driver.pid)):
            time.sleep(0.5)
        assert not _group(driver.pid) and not _reapers(driver.pid), (_group(driver.pid), _reapers(driver.pid))
    finally:
        _kill_group(driver.pid)  # its Ray's processes too: a worker outliving the driver could still finish a run
    mtimes = {p: p.stat().st_mtime for p in out.glob("points/*/runs/*/seed-*/metrics.json")}
    assert 2 <= len(mtimes) < 8
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(list(out.glob("points/*/runs/*/seed-*/metrics.json"))) == 8
    assert all(p.stat().st_mtime == t for p, t in mtimes.items())  # a finished run is never redone
    assert again.stderr.count("(already complete, kept)") == len(mtimes)


def test_optimize_workers_share_one_study_on_ray(ray_cluster, tiny_bert, tmp_path):
    """optimize --workers 2 --backend ray: 2 Ray tasks per study on one journal; no duplicate trial numbers or
    settings, every trial run by a Ray worker, each study stops at its count."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from finetune_compare.experiments.search.optimize import run_optimization

    from ..conftest import FAST_SEARCH_SPACE as FAST

    journal = tmp_path / "study.journal"
    cfg = _config(tiny_bert, tmp_path, "opt", search_space=FAST, hpo_pruner="none", execution_backend="ray",
                  hpo_workers=2, hpo_storage=f"journal:{journal}")
    summaries = run_optimization(cfg, ["full", "lora"], n_trials=4)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    for method in ("full", "lora"):
        trials = optuna.load_study(study_name=f"finetune-compare-{method}", storage=storage).get_trials()
        assert 4 <= len(trials) <= 5 and all(t.state.name == "COMPLETE" for t in trials)  # up to workers - 1 over
        assert len({t.number for t in trials}) == len(trials)
        assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)  # workers seed apart
        assert all(int(t.user_attrs["worker"].split(":")[1]) != os.getpid() for t in trials)  # run in Ray workers
        assert summaries[method]["trials"] == len(trials) and summaries[method]["best_params"]


def test_a_plan_on_ray_uses_the_resources_the_cluster_reports(ray_cluster, tiny_bert, tmp_path):
    """plan --backend ray: as many runs at once as the declared resources allow (4 CPUs, 2 GPUs: 4 runs at 0.5 GPU,
    2 at 1), the wall time scheduled on them, and one line for a run that could never start."""
    from finetune_compare.errors import UserError
    from finetune_compare.experiments.planning.cost_plan import build_plan
    from finetune_compare.experiments.planning.plan_text import plan_text

    cfg = _config(tiny_bert, tmp_path, "plan", execution_backend="ray", execution_gpus_per_run=0.5)
    plan = build_plan(cfg, probe_steps=3)
    ray_wall = plan["wall"]["ray"]
    assert (ray_wall["cpus"], ray_wall["gpus"], ray_wall["slots"]) == (4, 2, 4)
    assert ray_wall["seconds"] < plan["wall"]["local_seconds"]
    assert "ray backend, the Ray cluster (4 CPUs, 2 GPUs): up to 4 run(s) at once" in plan_text(plan)
    assert build_plan(cfg.replace(execution_gpus_per_run=1), probe_steps=2)["wall"]["ray"]["slots"] == 2
    with pytest.raises(UserError, match="no run could ever start"):
        build_plan(cfg.replace(execution_gpus_per_run=3), probe_steps=2)
    assert ray.is_initialized()  # the caller's Ray is left as it was
    assert not Path(cfg.output_dir).exists()


def test_a_plan_starts_and_stops_a_private_ray(tiny_bert, tmp_path):
    """The command line on a machine with no cluster: a private Ray for the question, gone when the plan ends."""
    cfg = _config(tiny_bert, tmp_path, "plan-private")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    before = _ray_pids()
    done = subprocess.run([sys.executable, "-m", "finetune_compare.cli", "plan", "--config", str(path), "--backend",
                           "ray", "--probe-steps", "2"], capture_output=True, text=True, timeout=180,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"ray backend, a private Ray on this machine \(\d+ CPUs, 0 GPUs\): up to 2 run\(s\) at once",
                     done.stdout), done.stdout
    deadline = time.monotonic() + 20
    while _ray_pids() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_pids() - before


@pytest.mark.parametrize("signum, code, stopped", [(signal.SIGINT, 130, "interrupted"),
                                                   (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_ctrl_c_stops_the_running_tasks_and_leaves_no_half_written_file(tiny_bert, tmp_path, signum, code, stopped):
    """SIGINT (or SIGTERM: Ray's own handler used to abort the driver, exit -6) to the command while Ray tasks train:
    its exit status with one line, its Ray's processes gone, no run finishing after it (the tasks were stopped),
    and every JSON file in the folder whole."""
    cfg = _config(tiny_bert, tmp_path, "ctrl-c", num_epochs=3)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    env = dict(os.environ)
    driver = subprocess.Popen([sys.executable, "-m", "finetune_compare.cli", "compare", "--config", str(path),
                               "--backend", "ray"], env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    out = Path(cfg.output_dir)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and driver.poll() is None and not list(out.glob("runs/*/seed-*/attempt.json")):
            time.sleep(0.2)
        time.sleep(1.0)  # the tasks are inside training
        assert driver.poll() is None
        os.kill(driver.pid, signum)
        err = driver.communicate(timeout=60)[1]
        finished = set(out.glob("runs/*/seed-*/metrics.json"))
        deadline = time.monotonic() + 30
        while subprocess.run(["pgrep", "-g", str(driver.pid)], capture_output=True).stdout and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        assert not subprocess.run(["pgrep", "-g", str(driver.pid)], capture_output=True).stdout  # no worker left
    finally:
        _kill_group(driver.pid)
    assert driver.returncode == code, err[-3000:]
    assert f"{stopped}; finished runs are kept: rerun the same command to resume" in err and "Traceback" not in err
    assert len(finished) < 4 and set(out.glob("runs/*/seed-*/metrics.json")) == finished
    for f in out.rglob("*.json"):
        json.loads(f.read_text())  # written whole or not at all


def test_stopping_shuts_a_private_ray_down_and_cancels_a_joined_clusters_tasks_queued_first(monkeypatch):
    """A private Ray is shut down, not cancelled task by task (a cancel meeting a finishing task's reply aborted the
    driver with exit 1 in CI); on a joined cluster the last-submitted (queued) tasks are cancelled first."""
    from finetune_compare.experiments.execution import ray_executor

    calls = []

    class FakeRay:
        def is_initialized(self):
            return True

        def shutdown(self):
            calls.append("shutdown")

        def cancel(self, ref, force):
            calls.append((ref, force))

    monkeypatch.setitem(ray_executor._private, "ray", True)
    ray_executor.stop_tasks(FakeRay(), ["a", "b", "c"])
    assert calls == ["shutdown"] and ray_executor._private["ray"] is False
    calls.clear()
    ray_executor.stop_tasks(FakeRay(), ["a", "b", "c"])
    assert calls == [("c", True), ("b", True), ("a", True)]


def test_a_private_ray_that_times_out_starting_is_one_line(tiny_bert, tmp_path, monkeypatch):
    """Under load Ray's node can time out starting; Ray raises a bare Exception: one line, not its traceback."""
    from finetune_compare.errors import UserError
    from finetune_compare.experiments.execution import ray_executor

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # the module's cluster may be up: this start is faked

    def timed_out(**kwargs):
        raise Exception("The current node timed out during startup. This could happen because some of the raylet "
                        "failed to startup or the GCS has become overloaded.")

    monkeypatch.setattr(ray, "init", timed_out)
    with pytest.raises(UserError) as err:
        ray_executor.connect(tiny_config(tiny_bert, tmp_path, execution_backend="ray"))
    assert str(err.value) == (
        "the private Ray for this command did not start (Exception: The current node timed out during startup. This "
        "could happen because some of the raylet failed to startup or the GCS has become overloaded.); on a busy "
        "machine its start can time out: rerun when the load is lower, or use --backend local (finished runs are "
        "kept)")


def test_sigterm_is_ours_again_after_ray_starts(tiny_bert, tmp_path, monkeypatch):
    """ray.init installs a SIGTERM handler that calls sys.exit (the driver then aborted with exit -6 and a crash
    dump); connect puts ours back, so SIGTERM stops the command like Ctrl-C."""
    from finetune_compare.experiments.execution import ray_executor
    from finetune_compare.utils import signals as our_signals

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # the module's cluster may be up: this start is faked

    def ray_like_init(**kwargs):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # what ray.init does

    our_signals.install()
    monkeypatch.setattr(ray, "init", ray_like_init)
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "127.0.0.1")
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2})
    ray_executor.connect(tiny_config(tiny_bert, tmp_path, execution_backend="ray"))
    assert signal.getsignal(signal.SIGTERM) is our_signals._handler


def test_the_ray_backend_writes_the_comparison_the_local_one_wrote_before(ray_cluster, tiny_bert, tmp_path):
    """tests/fixtures/behaviour/compare.json (the local backend, before issue 39's refactor), on Ray: equal, timings,
    memory, placement and paths aside; lora seed 8 loses its first attempt here and is retried."""
    from ..behaviour import FIXTURES, differences, run_case

    expected = json.loads((FIXTURES / "compare.json").read_text())
    found = differences(expected, run_case("compare", tiny_bert, tmp_path, "--backend", "ray"))
    assert not found, "\n".join(sorted(found)[:40])
