"""`finetune-compare plan --config`: the runs a compare or sweep would execute, the done ones, a probe's time and
memory scaled to the run's own batches, the wall time; nothing trained into or written to the results folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from finetune_compare.cli import main
from finetune_compare.experiments.planning.cost_plan import run_estimate
from finetune_compare.experiments.planning.cost_probe import Probe, fit_step_time
from finetune_compare.experiments.planning.wall_time import list_schedule

from ..conftest import tiny_config


def _probe(**kw) -> Probe:
    values = dict(method="full", steps=10, startup_seconds=2.0, step_seconds=0.5, step_seconds_range=(0.1, 1.0),
                  seconds_per_step=0.05, seconds_per_token=0.001, tokens_range=(100, 1000),
                  eval_seconds_per_token=0.0002, peak_rss_mb=900.0, peak_rss_above_baseline_mb=400.0,
                  peak_cuda_mb=None, threads=1, device="cpu", precision="no")
    return Probe(**{**values, **kw})


def test_the_step_fit_recovers_a_fixed_part_and_a_part_per_token():
    tokens = [128, 512, 2048, 256, 1024, 640]
    fixed, per_token = fit_step_time(tokens, [0.03 + 0.0007 * t for t in tokens])
    assert fixed == pytest.approx(0.03) and per_token == pytest.approx(0.0007)
    # alike batches: the pace is all per token, and sums to the probe's time
    fixed, per_token = fit_step_time([500, 510], [0.5, 0.52])
    assert fixed == 0 and per_token * 1010 == pytest.approx(1.02)
    # time that falls with the batch (noise): a constant step at the mean
    assert fit_step_time([100, 200, 300], [0.3, 0.2, 0.1]) == (pytest.approx(0.2), 0.0)


def test_a_run_is_estimated_from_its_own_batches_evaluations_and_test_pass():
    config = tiny_config("unused", Path("/nonexistent"), batch_size=8, num_epochs=2, evaluations_per_epoch=2)
    sizes = {"train": 80, "validation_tokens": 5000, "test_tokens": 10000}
    tokens = [400] * 20  # 10 steps an epoch, 2 epochs
    run, trial = run_estimate(_probe(), config, sizes, tokens)
    steps = 19 * (0.05 + 0.001 * 400)  # after the first, which set-up covers
    evaluations = 4 * 5000 * 0.0002  # every 5 steps
    assert trial == pytest.approx(2.0 + steps + evaluations)
    assert run == pytest.approx(trial + 10000 * 0.0002)
    capped = config.replace(budget_unit="seconds", budget=3.0)
    assert run_estimate(_probe(), capped, sizes, tokens)[1] == pytest.approx(3.0 + 5000 * 0.0002)


def test_runs_side_by_side_are_scheduled_in_the_executors_order():
    assert list_schedule([], 4) == 0
    assert list_schedule([10, 10, 10, 10], 1) == 40
    assert list_schedule([10, 10, 10, 10], 2) == 20
    assert list_schedule([10, 10, 10], 2) == 20  # the third waits for a slot
    assert list_schedule([30, 10, 10, 10], 2) == 30


@pytest.mark.parametrize("argv, message", [
    (["plan"], "plan needs exactly one of --config FILE"),
    (["plan", "--config", "c.yaml", "--pilot", "p"], "plan needs exactly one of --config FILE"),
    (["plan", "--config", "configs/quickstart.yaml", "--effect", "0.01"], "plan --config does not take --effect"),
    (["plan", "--pilot", "p", "--backend", "ray"], "plan --pilot does not take --backend"),
    (["plan", "--config", "configs/quickstart.yaml", "--probe-steps", "1"], "--probe-steps must be between 2"),
])
def test_plan_refuses_a_mixed_up_command_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _yaml(path, config) -> str:
    import yaml

    path.write_text(yaml.safe_dump(config.to_dict()))
    return str(path)


def _listing(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_plan_counts_what_is_done_and_writes_nothing(tiny_bert, tmp_path, capsys):
    out = tmp_path / "out"
    config = tiny_config(tiny_bert, tmp_path, num_runs=2, num_epochs=1, lora_learning_rate=1e-2, output_dir=str(out))
    path = _yaml(tmp_path / "c.yaml", config)
    assert main(["plan", "--config", path, "--probe-steps", "4"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()  # a plan trains only its probe, elsewhere
    assert "= 4 runs into" in text and "folder: new (no results yet)" in text
    assert re.search(r"full: 0 of 2 runs done, 2 to train; each \d+ steps with \d+ validation passes", text)
    assert re.search(r"probe \(an estimate: 4 optimizer steps, at most 120 s, and one validation pass .* cpu, fp32, "
                     r"1 torch thread", text)
    assert re.search(r"local backend, 4 run\(s\) one after another: about \d", text)

    # one pair done, and a run of the second that failed on every attempt on Ray
    assert main(["compare", "--config", path, "--set", "num_runs=1", "--quiet"]) == 0
    failed = out / "runs" / "lora" / "seed-8"
    failed.mkdir(parents=True)
    (failed / "failure.json").write_text(json.dumps({"error": "RuntimeError: lost"}))
    capsys.readouterr()
    before = _listing(out)
    assert main(["plan", "--config", path, "--probe-steps", "3"]) == 0
    text = capsys.readouterr().out
    assert _listing(out) == before  # not a file added, removed or touched
    assert "folder: resume (finished runs are kept)" in text
    assert "full: 1 of 2 runs done, 1 to train" in text and "lora: 1 of 2 runs done, 1 to train" in text
    assert "(1 of them failed on every attempt before: they are retried)" in text
    assert "local backend, 2 run(s) one after another" in text

    assert main(["compare", "--config", path, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["plan", "--config", path]) == 0
    text = capsys.readouterr().out
    assert "full: 2 of 2 runs done, 0 to train" in text and "nothing to train: every run is done" in text
    assert "probe (" not in text  # nothing to probe, so nothing trained


@pytest.mark.slow
def test_a_sweep_plan_probes_each_distinct_run_once(tiny_bert, tmp_path, capsys):
    config = tiny_config(tiny_bert, tmp_path, num_epochs=1, output_dir=str(tmp_path / "sweep"))
    path = _yaml(tmp_path / "c.yaml", config)
    assert main(["plan", "--config", path, "--sweep", "samples_per_class=40,50", "--probe-steps", "3"]) == 0
    text = capsys.readouterr().out
    assert "plan for `finetune-compare sweep`: full, lora x 1 paired seeds x 2 points = 4 runs" in text
    sizes = [int(n) for n in re.findall(r"^point samples_per_class=(?:40|50): (\d+) train", text, re.M)]
    assert len(sizes) == 2 and sizes[0] < sizes[1]
    # the points differ only in their data: one probe per method serves both
    assert len(re.findall(r"^  (full|lora): steps 2-3 took", text, re.M)) == 2
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_the_readme_plan_command_runs_as_written(monkeypatch, capsys):
    import shlex

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    line = next(line.split("  #")[0].strip() for line in readme.splitlines()
                if line.startswith("finetune-compare plan --config configs/quickstart.yaml"))
    monkeypatch.chdir(root)
    assert main(shlex.split(line)[1:]) == 0
    text = capsys.readouterr().out
    assert "plan for `finetune-compare compare`: full, lora x 3 paired seeds = 6 runs into outputs/quickstart" in text
    assert "full:" in text and "lora:" in text


def test_the_estimate_carries_the_probes_spread_and_a_busy_probe_is_flagged():
    from finetune_compare.experiments.planning.cost_plan import scaled_probe
    from finetune_compare.experiments.planning.cost_probe import Probe, step_ratios

    # steps of 100 and 200 tokens fitted as 0.1 s + 1 ms per token: one ran 20% slow, one 10% fast, one on the fit
    assert step_ratios([100, 200, 100], [0.24, 0.27, 0.20], 0.1, 0.001) == (0.9, 1.2)
    probe = Probe(method="lora", steps=10, startup_seconds=1.0, step_seconds=0.2, step_seconds_range=(0.1, 0.3),
                  seconds_per_step=0.1, seconds_per_token=0.001, tokens_range=(100, 200), eval_seconds_per_token=1e-4,
                  peak_rss_mb=100.0, peak_rss_above_baseline_mb=None, peak_cuda_mb=None, threads=2, device="cpu",
                  precision="no", load=5.0, cores=2)
    assert probe.busy and not Probe(**{**probe.to_json(), "load": 1.5}).busy
    slow = scaled_probe(probe, 1.2)
    assert (slow.seconds_per_step, slow.seconds_per_token) == pytest.approx((0.12, 0.0012))
    assert slow.eval_seconds_per_token == probe.eval_seconds_per_token  # evaluation as measured
