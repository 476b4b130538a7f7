"""Interruptions, resume, output-dir reuse, NaN loss, full disk, OOM retry, memory across runs."""

import errno
import gc
import os
import re
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from finetune_compare.cli import main
from finetune_compare.errors import UserError
from finetune_compare.experiments.execution import run as run_module
from finetune_compare.experiments.study.ownership import claim_output_dir
from finetune_compare.experiments.execution.context import prepare_context
from finetune_compare.experiments.execution.run import run_method
from finetune_compare.experiments.study.study_plan import run_dir_for
from finetune_compare.utils import signals
from finetune_compare.utils.io import atomic_write_text, read_jsonl

from ..conftest import tiny_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_output_dir_with_other_config_is_refused(tiny_bert, tmp_path):
    cfg = tiny_config(tiny_bert, tmp_path)
    claim_output_dir(cfg, cfg.output_dir)
    claim_output_dir(cfg.replace(num_runs=5, tracking_wandb=True), cfg.output_dir)  # more runs = a resume
    finished = Path(cfg.output_dir) / "runs" / "full" / "seed-7"
    finished.mkdir(parents=True)
    (finished / "metrics.json").write_text("{}")  # a finished run: now a different config must not take over
    with pytest.raises(UserError) as err:
        claim_output_dir(cfg.replace(learning_rate=0.5), cfg.output_dir)
    assert str(err.value) == (f"output directory '{cfg.output_dir}' holds results of a different configuration "
                              "(learning_rate: 0.001 -> 0.5); use another --output-dir, or --overwrite to delete "
                              "those results")
    claim_output_dir(cfg.replace(learning_rate=0.5), cfg.output_dir, overwrite=True)
    assert not (Path(cfg.output_dir) / "runs").exists()
    assert yaml.safe_load((Path(cfg.output_dir) / "experiment.yaml").read_text())["learning_rate"] == 0.5


class _InterruptAt(run_module.FiniteLossCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_from_checkpoint_with_identical_results(tiny_bert, tmp_path, monkeypatch):
    ref_cfg = tiny_config(tiny_bert, tmp_path / "ref", num_epochs=3, patience=3, save_checkpoints=False)
    reference = run_method(prepare_context(ref_cfg), "lora", 7)

    # checkpoints are on by default; checkpoint_minutes 0 takes one at every evaluation of this seconds-long run
    cfg = tiny_config(tiny_bert, tmp_path / "int", num_epochs=3, patience=3, checkpoint_minutes=0)
    ctx = prepare_context(cfg)
    original = run_module.build_trainer
    monkeypatch.setattr(run_module, "build_trainer", lambda *a, **k: _add(original(*a, **k), _InterruptAt(20)))
    with pytest.raises(KeyboardInterrupt):
        run_method(ctx, "lora", 7)
    run_dir = run_dir_for(ctx.output_dir, "lora", 7)
    assert not (run_dir / "metrics.json").exists()
    assert list((run_dir / "checkpoints").glob("checkpoint-18"))  # evaluation (and save) every 6 steps
    monkeypatch.setattr(run_module, "build_trainer", original)
    resumed = run_method(ctx, "lora", 7)
    assert resumed.test == reference.test
    assert resumed.validation == reference.validation
    assert read_jsonl(run_dir / "predictions.jsonl") == read_jsonl(
        run_dir_for(Path(ref_cfg.output_dir), "lora", 7) / "predictions.jsonl")
    assert not (run_dir / "checkpoints").exists()  # removed once the run is complete


@pytest.mark.parametrize("method", ["full", "lora"])
def test_interrupt_during_the_test_pass_keeps_the_training(tiny_bert, tmp_path, monkeypatch, method):
    """Ctrl-C after training, while the test set is evaluated: the rerun tests the kept weights without retraining,
    and the run's results equal an uninterrupted twin's."""
    reference = run_method(prepare_context(tiny_config(tiny_bert, tmp_path / "ref")), method, 7)
    ctx = prepare_context(tiny_config(tiny_bert, tmp_path / "int"))
    original = run_module.predict_split

    def interrupted(trainer, split):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "predict_split", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_method(ctx, method, 7)
    run_dir = run_dir_for(ctx.output_dir, method, 7)
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "checkpoints").exists()
    assert sorted(p.name for p in (run_dir / "trained").iterdir()) == ["state.json", "weights.safetensors"]
    message, code = signals.stop_message(KeyboardInterrupt)
    assert code == 130 and message == (
        f"interrupted; finished runs are kept; {method} seed 7 had finished training, and its weights are kept in "
        f"{run_dir / 'trained'}: the rerun tests it without retraining; rerun the same command to resume")

    monkeypatch.setattr(run_module, "predict_split", original)
    monkeypatch.setattr(run_module, "train_method", lambda *a, **k: pytest.fail("retrained a trained run"))
    resumed = run_method(ctx, method, 7)
    for section in ("test", "validation", "params", "training", "data", "health"):
        assert getattr(resumed, section) == getattr(reference, section), section
    assert resumed.timing["tested_after_interrupt"] is True
    assert read_jsonl(run_dir / "predictions.jsonl") == read_jsonl(
        run_dir_for(Path(reference_dir := tmp_path / "ref" / "out"), method, 7) / "predictions.jsonl"), reference_dir
    assert not (run_dir / "trained").exists()  # gone once metrics.json marks the run complete
    assert signals.stop_message(KeyboardInterrupt)[0] == (
        "interrupted; finished runs are kept: rerun the same command to resume")


def test_a_cut_off_trained_folder_is_retrained_not_trusted(tiny_bert, tmp_path, monkeypatch):
    ctx = prepare_context(tiny_config(tiny_bert, tmp_path))
    run_dir = run_dir_for(ctx.output_dir, "lora", 7)
    (run_dir / "trained").mkdir(parents=True)
    (run_dir / "trained" / "weights.safetensors").write_bytes(b"cut off")  # no state.json: the save never finished
    calls = []
    original = run_module.train_method
    monkeypatch.setattr(run_module, "train_method", lambda *a, **k: calls.append(1) or original(*a, **k))
    assert run_method(ctx, "lora", 7).training["steps"] > 0
    assert calls == [1] and not (run_dir / "trained").exists()


def test_checkpoints_are_thinned_to_one_per_interval(tiny_bert, tmp_path, monkeypatch):
    """Default: on, one per checkpoint_minutes of training; the step that ends training is never checkpointed (the
    trained weights are kept instead)."""
    from finetune_compare.training.trainer import CheckpointInterval

    saved = []
    monkeypatch.setattr(CheckpointInterval, "on_save", lambda self, args, state, control, **k: saved.append(
        state.global_step))
    ctx = prepare_context(tiny_config(tiny_bert, tmp_path / "a", num_epochs=2))  # 24 steps, evaluated every 6
    assert ctx.config.save_checkpoints and ctx.config.checkpoint_minutes == 5
    run_method(ctx, "lora", 7)
    assert saved == []  # a seconds-long run stays under 5 minutes: no checkpoint cost at all
    run_method(prepare_context(tiny_config(tiny_bert, tmp_path / "b", num_epochs=2, checkpoint_minutes=0)), "lora", 7)
    assert saved == [6, 12, 18]  # every evaluation but the last step (24)


def _add(trainer, callback):
    trainer.add_callback(callback)
    return trainer


def test_sigterm_stops_cleanly_and_the_same_command_resumes(tiny_bert, tmp_path):
    cfg = tmp_path / "c.yaml"
    values = tiny_config(tiny_bert, tmp_path, num_epochs=40, checkpoint_minutes=0, tracking_mlflow=True,
                         methods=["full"], evaluate_base_model=False).to_dict()
    cfg.write_text(yaml.safe_dump(values))
    cmd = [sys.executable, str(ROOT / "main.py"), "--mode", "compare", "--config", str(cfg)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = Path(values["output_dir"]) / "runs" / "full" / "seed-7" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not list(checkpoints.glob("checkpoint-*")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    # the stop message says what was kept of the run it stopped, and what the rerun does
    assert re.search(r"terminated \(SIGTERM\); finished runs are kept; full seed 7's checkpoint at step [0-9]+ is "
                     r"kept: the rerun resumes training there; rerun the same command to resume\n", err), err[-2000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{Path(values['output_dir']) / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("finetune-compare").experiment_id])
    assert {r.info.status for r in runs} == {"KILLED"}  # parent and the interrupted run
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from" in done.stderr or "ignoring incomplete checkpoint" in done.stderr
    assert (Path(values["output_dir"]) / "report.html").is_file()


def test_nan_loss_stops_with_a_reason_and_leaves_no_junk(tiny_bert, tmp_path, capsys):
    args = ["--mode", "full", "--output-dir", str(tmp_path / "o"), "--set", f"model_name={tiny_bert}",
            "--set", "data_source=embedded", "--set", "samples_per_class=70", "--set", "test_samples_per_class=10",
            "--set", "batch_size=8", "--set", "mixed_precision=no", "--set", "tracking.mlflow=false",
            "--set", "tracking.wandb=false", "--set", "num_epochs=1"]
    assert main(args + ["--set", "learning_rate=1e30", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: training loss became nan at step") and "Lower the learning rate" in err
    run_dir = tmp_path / "o" / "runs" / "full" / "seed-42"
    assert not (run_dir / "metrics.json").exists()
    assert main(args) == 0  # the corrected run is not blocked by the failed one's marker (no finished run)
    assert (run_dir / "metrics.json").is_file()


def test_full_disk_gives_one_message_and_no_partial_file(tmp_path, monkeypatch, capsys):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("finetune_compare.utils.io.os.fsync", no_space)
    target = tmp_path / "result.json"
    with pytest.raises(OSError):
        atomic_write_text(target, "x" * 1000)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file is left
    code = main(["--mode", "data", "--set", "data_source=embedded", "--set", "samples_per_class=70",
                 "--set", "test_samples_per_class=10", "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: no space left on the device while writing")


def test_oom_retry_halves_batch_and_keeps_effective_batch(tiny_bert, tmp_path, monkeypatch):
    cfg = tiny_config(tiny_bert, tmp_path, oom_retry=True, batch_size=8)
    ctx = prepare_context(cfg)
    original = run_module._train_and_evaluate
    calls = []

    failed_run = []

    def flaky(ctx_, config, *a):
        calls.append((config.batch_size, config.gradient_accumulation_steps))
        if len(calls) == 1:
            model = torch.nn.Linear(4, 4)  # the failed attempt's model, in a reference cycle like a real one
            model.cycle = model
            failed_run.append(weakref.ref(model))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        # the failed attempt's memory is released before the retry trains: not held by the traceback
        assert failed_run[0]() is None
        return original(ctx_, config, *a)

    monkeypatch.setattr(run_module, "_train_and_evaluate", flaky)
    gc.disable()  # only the retry's own collection may free the cycle
    try:
        run_method(ctx, "full", 7)
    finally:
        gc.enable()
    assert calls == [(8, 1), (4, 2)]
    written = yaml.safe_load((run_dir_for(ctx.output_dir, "full", 7) / "config.yaml").read_text())
    assert (written["batch_size"], written["gradient_accumulation_steps"]) == (4, 2)
    monkeypatch.setattr(run_module, "_train_and_evaluate", lambda *a: (_ for _ in ()).throw(
        torch.cuda.OutOfMemoryError("simulated")))
    with pytest.raises(torch.cuda.OutOfMemoryError):  # off by default: the error is not hidden
        run_method(prepare_context(cfg.replace(oom_retry=False, seed=8), output_dir=tmp_path / "b"), "full", 8)


def test_memory_does_not_grow_over_ten_runs(tiny_bert, tmp_path):
    ctx = prepare_context(tiny_config(tiny_bert, tmp_path, num_epochs=1))
    rss = []
    for k in range(10):
        run_method(ctx, "lora" if k % 2 else "full", 100 + k)
        rss.append(psutil.Process().memory_info().rss / 2**20)
    assert rss[-1] - rss[2] < 40, [round(r) for r in rss]


def test_two_commands_on_one_folder_one_is_refused(tiny_bert, tmp_path):
    cfg = tmp_path / "c.yaml"
    values = tiny_config(tiny_bert, tmp_path, num_epochs=3, methods=["full"], evaluate_base_model=False).to_dict()
    cfg.write_text(yaml.safe_dump(values))
    cmd = [sys.executable, str(ROOT / "main.py"), "--mode", "compare", "--config", str(cfg)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip().splitlines()[-1]
    assert refused.startswith(f"error: output directory '{values['output_dir']}' is in use by pid "), refused
    assert refused.endswith("wait for it to finish, or use another --output-dir")
    assert len(list((Path(values["output_dir"]) / "runs" / "full").glob("seed-*/metrics.json"))) == 1


def test_lock_of_a_dead_process_is_taken_over(tiny_bert, tmp_path):
    cfg = tiny_config(tiny_bert, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from finetune_compare import Config; "
        "from finetune_compare.experiments.study.ownership import claim_output_dir; "
        f"claim_output_dir(Config(**{cfg.to_dict()!r}), {cfg.output_dir!r}); print('held', flush=True); "
        "time.sleep(600)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=f"is in use by pid {holder.pid} on "):
        claim_output_dir(cfg, cfg.output_dir)
    holder.kill()
    holder.wait()
    claim_output_dir(cfg, cfg.output_dir)  # the OS released the dead holder's lock


def test_a_lock_taken_but_not_yet_signed_still_names_its_holder(tiny_bert, tmp_path):
    """The holder writes 'pid N on HOST' just after taking the lock; a second command in between must wait
    for it (CI once saw 'in use by another process' from two commands started together)."""
    import fcntl
    import threading

    from finetune_compare.layout import Layout

    cfg = tiny_config(tiny_bert, tmp_path)
    Path(cfg.output_dir).mkdir(parents=True)
    fd = os.open(Layout(Path(cfg.output_dir)).lock, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, file still empty
    signer = threading.Timer(0.3, lambda: os.pwrite(fd, b"pid 4242 on elsewhere\n", 0))
    signer.start()
    try:
        with pytest.raises(UserError, match="is in use by pid 4242 on elsewhere; wait for it to finish"):
            claim_output_dir(cfg, cfg.output_dir)
    finally:
        signer.join()
        os.close(fd)


def test_diverging_or_collapsed_run_is_flagged():
    from finetune_compare.experiments.execution.run_files import run_health

    healthy = {"confusion_matrix": [[5, 1, 0], [1, 4, 1], [0, 2, 6]]}
    history = {"train": [{"loss": 1.1}, {"loss": 0.9}, {"loss": 0.7}]}
    assert run_health(healthy, history) == {"collapsed": False, "diverged": False, "in_warmup": False, "problems": []}
    # a budget so long that early stopping ends training inside the warmup: the rate never reached its peak
    assert run_health(healthy, history, steps=40, warmup_steps=60000)["problems"] == [
        "training ended at step 40, inside the learning-rate warmup (60000 steps): the learning rate never reached "
        "its peak: lower num_epochs (warmup is warmup_ratio of the planned steps) or warmup_ratio"]
    collapsed = {"confusion_matrix": [[6, 0, 0], [6, 0, 0], [8, 0, 0]]}
    rising = {"train": [{"loss": 1.1}, {"loss": 39.0}, {"loss": 1267.0}, {"loss": 2088.0}]}  # the review's lr=10 run
    health = run_health(collapsed, rising)
    assert health["collapsed"] and health["diverged"]
    assert health["problems"] == [
        "predicts one class for every test example (collapsed); it is excluded from the comparison's statistics: "
        "check the learning rate",
        "training loss rose from 1.100 to 2088.000 (diverged): lower the learning rate"]


@pytest.mark.parametrize("delay", [0.2, 0.6, 1.5])
def test_ctrl_c_while_starting_exits_130_quietly(tmp_path, delay):
    """Whether it lands in Python's start-up, an import (where Python may swallow it) or the data build."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--mode", "data", "--output-dir",
                             str(tmp_path / "o"), "--set", "data_source=embedded"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err


@pytest.mark.parametrize("signum, code, message", [
    (signal.SIGTERM, 143, "terminated (SIGTERM); finished runs are kept: rerun the same command to resume"),
    (signal.SIGHUP, 129, "hung up (SIGHUP: the terminal closed); finished runs are kept: rerun the same command to "
                         "resume")])
@pytest.mark.parametrize("delay", [0.3, 2.0])
def test_sigterm_and_sighup_while_starting_exit_with_their_own_status(tmp_path, signum, code, message, delay):
    """128 + the signal's number, as a shell reports a process the signal ended; the message once our handler is in
    place (before it, within the first ~0.1 s, the signal's default action ends the process with that status)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--mode", "data", "--output-dir",
                             str(tmp_path / "o"), "--set", "data_source=embedded"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (code, -signum) and "Traceback" not in err, err
    if proc.returncode == code:
        assert err.strip().splitlines()[-1] == message, err[-1000:]


def test_a_checkpoint_cut_short_is_ignored_and_a_users_copy_is_left_alone(tmp_path):
    """docs/internals.md: a checkpoint cut short by kill -9 is ignored (and removed); the Trainer's own names only."""
    from finetune_compare.experiments.execution.run_files import CHECKPOINT_COMPLETE, last_checkpoint

    folder = tmp_path / "run" / "checkpoints"
    for name, files in (("checkpoint-4", CHECKPOINT_COMPLETE), ("checkpoint-8", CHECKPOINT_COMPLETE[:1]),
                        ("checkpoint-8-backup", CHECKPOINT_COMPLETE)):
        (folder / name).mkdir(parents=True)
        for f in files:
            (folder / name / f).write_text("x")
    assert last_checkpoint(tmp_path / "run") == str(folder / "checkpoint-4")
    assert not (folder / "checkpoint-8").exists() and (folder / "checkpoint-8-backup").is_dir()


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_cut_off_checkpoint(tiny_bert, tmp_path,
                                                                                       monkeypatch, capsys):
    """safetensors reports a full disk as its own SafetensorError (not an OSError): it gets the same one line."""
    import transformers

    class SafetensorError(Exception):  # the message safetensors' Rust core gives
        pass

    def full_disk(self, output_dir=None, _internal_call=False):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "config.json").write_text("{}")  # what a cut-off save leaves
        raise SafetensorError(f'Error while serializing: I/O error: No space left on device (os error 28) at path '
                              f'"{output_dir}/model.safetensors"')

    monkeypatch.setattr(transformers.Trainer, "save_model", full_disk)
    out = tmp_path / "o"
    code = main(["full", "--output-dir", str(out), "--set", f"model_name={tiny_bert}", "--set", "data_source=embedded",
                 "--set", "samples_per_class=70", "--set", "test_samples_per_class=10", "--set", "batch_size=8",
                 "--set", "mixed_precision=no", "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false",
                 "--set", "num_epochs=1", "--set", "checkpoint_minutes=0"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    checkpoints = out / "runs" / "full" / "seed-42" / "checkpoints"
    assert code == 2 and re.fullmatch(rf"error: no space left on the device while writing {checkpoints}/"
                                      r"checkpoint-[0-9]+/model\.safetensors; free space or choose another "
                                      r"--output-dir \(finished runs are kept\)", err), err
    assert not list(checkpoints.glob("checkpoint-*"))  # the cut-off checkpoint is gone
