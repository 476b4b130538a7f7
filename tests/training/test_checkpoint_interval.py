"""CheckpointInterval: one checkpoint per interval of training, none at the last step, and a stop message that says
what an interrupt would keep."""

from types import SimpleNamespace

from transformers import TrainerControl

from finetune_compare.training import trainer as trainer_module
from finetune_compare.training.trainer import CheckpointInterval
from finetune_compare.utils import signals


def _state(step, max_steps=100):
    return SimpleNamespace(global_step=step, max_steps=max_steps)


def _message():
    return signals.stop_message(KeyboardInterrupt)[0]


def test_the_stop_message_follows_the_run(monkeypatch):
    clock = iter([0.0, 10.0, 400.0, 401.0, 410.0])
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: next(clock))
    callback = CheckpointInterval(5, "lora seed 43")
    callback.on_train_begin(None, _state(0), TrainerControl())  # t = 0
    assert _message() == ("interrupted; finished runs are kept; lora seed 43 had no checkpoint yet (one every 5 min of "
                          "training): the rerun starts it again; rerun the same command to resume")
    control = TrainerControl(should_save=True)
    callback.on_step_end(None, _state(10), control)  # t = 10 s: under 5 minutes since the start
    assert not control.should_save
    control = TrainerControl(should_save=True)
    callback.on_step_end(None, _state(60), control)  # t = 400 s
    assert control.should_save
    callback.on_save(None, _state(60), control)  # t = 401 s
    assert "lora seed 43's checkpoint at step 60 is kept: the rerun resumes training there" in _message()
    control = TrainerControl(should_save=True)
    callback.on_step_end(None, _state(100), control)  # the last step: the trained weights are kept instead
    assert not control.should_save
    signals.note(None)


def test_a_trial_or_an_uncheckpointed_run_says_it_starts_again():
    CheckpointInterval(None, "lora trial 3", "is not counted: the rerun runs a new trial in its place").on_train_begin(
        None, _state(0), TrainerControl())
    assert "lora trial 3 is not counted: the rerun runs a new trial in its place;" in _message()
    CheckpointInterval(None, "full seed 42").on_train_begin(None, _state(0), TrainerControl())
    assert "full seed 42 is not checkpointed (save_checkpoints: false): the rerun starts it again;" in _message()
    CheckpointInterval(0, "full seed 42").on_train_begin(None, _state(30), TrainerControl())
    assert "full seed 42 resumed at step 30; its checkpoint is kept: the rerun resumes there" in _message()
    signals.note(None)
