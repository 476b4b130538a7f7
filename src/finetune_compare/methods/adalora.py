"""AdaLoRA (Zhang et al. 2023): LoRA whose rank budget is reallocated between layers during training.

peft's AdaLoraConfig is used as is (a peft type by name, `generic.py`); this file adds what peft leaves to the training
loop, which a Trainer run does not do by itself:
- `total_step`, which peft requires up front, is the run's own step count (set when training begins), so the
  reallocation schedule follows the declared budget (a value the user set is replaced, with a warning);
- `update_and_allocate(step)` after every optimizer step (peft: "call it in the training loop, before zero_grad");
- the orthogonality penalty, which peft adds to the model's own loss: our loss is computed from the logits, so the
  model is asked for a zero loss during training and peft's penalty is added to it (`loss_is_regularization`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ModelError
from .generic import Extras, register_extras

log = logging.getLogger(__name__)
PLACEHOLDER_STEPS = 1000  # peft checks total_step when the config is built; the run's step count replaces it


def _prepare(values: dict) -> dict:
    return {**values, "total_step": values.get("total_step") or PLACEHOLDER_STEPS}


def _zero_loss_in_training(module: Any, args: Any, kwargs: Any, output: Any) -> Any:
    """A training forward pass returns a zero loss, so peft's AdaLoraModel adds its orthogonality penalty to it."""
    import torch

    if module.training and getattr(output, "loss", None) is None:
        output["loss"] = torch.zeros((), device=output["logits"].device)
        output["loss_is_regularization"] = True
    return output


def _after_apply(peft_model: Any) -> Any:
    peft_model.base_model.model.register_forward_hook(_zero_loss_in_training, with_kwargs=True)
    return peft_model


def _callbacks(model: Any) -> list:
    from transformers import TrainerCallback

    class AdaLoraBudget(TrainerCallback):
        """total_step from the run's steps; the rank budget reallocated after every optimizer step."""

        def on_train_begin(self, args, state, control, **kwargs):
            tuner = model.base_model
            config = tuner.peft_config[tuner.trainable_adapter_name]
            if config.total_step not in (PLACEHOLDER_STEPS, state.max_steps):
                log.warning("adalora_total_step %d is replaced by this run's %d optimizer steps, so the rank "
                            "schedule follows the declared budget", config.total_step, state.max_steps)
            if config.tinit >= state.max_steps - config.tfinal:
                raise ModelError(f"adalora_tinit {config.tinit} + adalora_tfinal {config.tfinal} leave no steps to "
                                 f"reallocate ranks in this run's {state.max_steps} steps: lower them")
            config.total_step = state.max_steps
            tuner.rankallocator.set_total_step(state.max_steps)

        def on_optimizer_step(self, args, state, control, **kwargs):
            model.base_model.update_and_allocate(state.global_step)

    return [AdaLoraBudget()]


register_extras("adalora", Extras(
    description="AdaLoRA: LoRA with its rank budget reallocated between layers during training + the full head",
    prepare=_prepare, training_callbacks=_callbacks, after_apply=_after_apply,
    # its capacity is the final average rank (target_r), from init_r (peft's 12) ranks per layer at the start
    capacity=("target_r", [4, 8, 12])))
