"""The config's sections, each its own frozen type that validates itself on construction.

Every stage receives only its section (data building gets `config.data`, the trainer `config.training`, ...), so a
stage cannot quietly depend on a key outside its concern. The data section is in `data_section`, the method section
(general keys + every registered method's own settings) in `method_section`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from ..fields import ValidatedSettings, setting
from ..budgets import BUDGET_UNITS
from ..metric_names import DEFAULT_METRIC, OVERALL_METRICS
from ..methods import method_names as _method_names


@dataclass(frozen=True)
class Section(ValidatedSettings):
    """Base of a section: `section` is its name in YAML (`training: {num_epochs: 5}`) and in `--set training.K=V`;
    `prefix` is dropped from its keys when nested (`tracking: {wandb: false}` is `tracking_wandb`)."""

    section: ClassVar[str]
    prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()

    def check(self) -> None:
        """Checks between keys of this section (a section handed to a stage alone can trust them)."""


@dataclass(frozen=True)
class ModelConfig(Section):
    """Which checkpoint, and how texts are cut: read by the model provider."""

    section = "model"
    model_name: str = setting("cardiffnlp/twitter-roberta-base-sentiment-latest",
                              "Hugging Face hub id, local model directory, or 'embedded-minilm' (offline MiniLM-L6).")
    max_length: int = setting(128, "Max tokens per text; capped at the model's position limit.", min=8)
    trust_remote_code: bool = setting(False, "Allow model code from the hub. Off unless you trust the repo.")


@dataclass(frozen=True)
class TrainingConfig(Section):
    """How a run trains (epochs, batches, precision, device): read by the trainer."""

    section = "training"
    num_epochs: int = setting(3, "Maximum training epochs.", min=1, max=1000)
    budget_unit: str = setting(
        "epochs", "How each method's training budget is counted. 'epochs': every method trains up to its own "
        "num_epochs (they may differ; the reports state each method's epochs and steps beside its scores and costs). "
        "'steps', 'examples' or 'seconds': every method gets the same `budget` of optimizer steps, training examples "
        "seen, or wall seconds of training (evaluations included; num_epochs then caps it and sets the learning-rate "
        "schedule).", choices=BUDGET_UNITS)
    budget: Optional[float] = setting(
        None, "The training budget every method gets, in budget_unit (steps, examples or seconds). It cannot be set "
        "per method, so the budgets stay equal.", min=0, exclusive_min=True)
    batch_size: int = setting(16, "Per-device training batch size.", min=1)
    eval_batch_size: int = setting(64, "Per-device evaluation batch size.", min=1)
    gradient_accumulation_steps: int = setting(1, "Micro-batches per optimizer step.", min=1)
    warmup_ratio: float = setting(0.06, "Share of steps with linear warmup (then linear decay).", min=0, max=1,
                                  exclusive_max=True)
    weight_decay: float = setting(0.01, "AdamW weight decay.", min=0)
    max_grad_norm: float = setting(1.0, "Gradient clipping norm (0 disables).", min=0)
    patience: int = setting(2, "Early stopping: evaluations without validation macro-F1 gain (0 disables).", min=0)
    evaluations_per_epoch: int = setting(2, "Validation evaluations per epoch (points on the learning curve).", min=1)
    batch_grouping: str = setting(
        "length", "'length': batches of similar length (less padding), in random order; 'random': plain shuffling.",
        choices=("length", "random"))
    mixed_precision: str = setting(
        "auto", "'auto': on a GPU bf16 (fp16 on GPUs without bf16); on a CPU with bf16 instructions, fp32 or bf16 "
        "autocast, whichever a sub-second probe of the model's layer shapes measures faster (cached per machine); "
        "fp32 on other CPUs. The choice and the measured ratio are recorded in every run's environment.",
        choices=("auto", "no", "bf16", "fp16"), bool_alias={False: "no"})
    prefer_memory_over_speed: bool = setting(
        False, "With mixed_precision auto on a CPU with bf16 instructions: take bf16 even where the probe measures it "
        "slower, so the frozen base of LoRA-like methods is stored in bf16 (half its weights' memory).")
    gradient_checkpointing: bool = setting(False, "Trade compute for activation memory.")
    pad_buckets: int = setting(
        0, "0: pad each batch to its longest text (dynamic shapes). N: pad every batch up to one of N lengths, fitted "
        "to the run's own length-grouped batches (fewest pad tokens; the top one holds the longest text), so a "
        "step sees at most N shapes (what a compiled step or CUDA graphs need; compiling is not built yet). "
        "metrics.json records the lengths and the padding share.", min=0, max=64)
    base_weights_dtype: str = setting(
        "auto", "Storage of the frozen base under parameter-efficient methods (LoRA, DoRA, head): 'auto' = bf16 where "
        "training runs in bf16 (see mixed_precision, prefer_memory_over_speed), else fp32. Adapters, head and optimizer state stay fp32; full fine-tuning always "
        "keeps fp32 master weights. The value used is recorded per run.", choices=("auto", "fp32", "bf16"))
    num_workers: int = setting(0, "DataLoader worker processes.", min=0)
    num_threads: Optional[int] = setting(None, "torch CPU threads (default: torch's choice).", min=1)
    device: str = setting("auto", "Training device: auto, cpu, cuda, or cuda:N for the GPU with index N (applied as "
                          "CUDA_VISIBLE_DEVICES, before CUDA starts; with torchrun, each rank takes its own).",
                          pattern=r"auto|cpu|cuda|cuda:[0-9]+")
    gpu_memory_fraction: Optional[float] = setting(
        None, "Cap this process's CUDA memory (torch.cuda.set_per_process_memory_fraction).", min=0, max=1,
        exclusive_min=True)
    oom_retry: bool = setting(False, "On CUDA out-of-memory, retry with half the batch and double accumulation.")
    save_checkpoints: bool = setting(
        True, "Checkpoint while training (at an evaluation, at most one per checkpoint_minutes; only the last is kept) "
        "so an interrupted run resumes where it stopped; deleted when the run is complete. Off: an interrupted run "
        "starts again (a run that finished training is tested without retraining either way).")
    checkpoint_minutes: float = setting(
        5.0, "Minutes of training between checkpoints (taken at the next evaluation); 0 = at every evaluation. "
        "A RoBERTa-base checkpoint with its optimizer state is ~1.5 GB.", min=0)

    def check(self) -> None:
        from ..errors import ConfigError

        if self.budget_unit != "epochs" and self.budget is None:
            raise ConfigError(f"config key 'budget': required when budget_unit is '{self.budget_unit}' (the "
                              f"{BUDGET_UNITS[self.budget_unit]} every method gets)")
        if self.budget_unit in ("steps", "examples") and self.budget is not None and self.budget != int(self.budget):
            raise ConfigError(f"config key 'budget': budget_unit '{self.budget_unit}' counts whole "
                              f"{BUDGET_UNITS[self.budget_unit]}; got {self.budget:g} (use {int(self.budget)} or "
                              f"{int(self.budget) + 1})")
        if self.budget_unit == "epochs" and self.budget is not None:
            raise ConfigError("config key 'budget': only read with budget_unit steps, examples or seconds; "
                              "budget_unit is 'epochs' (each method trains up to its own num_epochs)")


PRIMARY_METRICS = OVERALL_METRICS  # test metrics a verdict can use


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """Seeds, runs, the verdict's metric and margin, outputs and saving."""

    section = "experiment"
    num_runs: int = setting(3, "Seeds per method in a comparison.", min=1, max=10000)
    resample_data_per_run: bool = setting(
        True, "Pair k draws its training sample and validation split with seed + k (both methods of the pair share "
        "it; the test set stays fixed), so the intervals cover data variance too.")
    primary_metric: str = setting(
        DEFAULT_METRIC, "The one test metric that decides the verdict; the others get Holm-adjusted p-values. An "
        f"overall metric ({', '.join(OVERALL_METRICS)}), one source's ('macro_f1_sst5', 'accuracy_<group>'), or with "
        "holdout_sources an in-domain or out-of-domain one ('macro_f1_out_of_domain', 'accuracy_in_domain', ...). "
        "Model selection and the search always use validation, which never holds a held-out source.", nonempty=True)
    reference: str = setting("full", "The method every other method is compared with: each verdict is '<method> vs "
                             "<reference>'. Must be one of methods when there are two or more.",
                             choices=_method_names)
    equivalence_margin: Optional[float] = setting(
        0.01, "Declared margin on the primary metric: 'equivalent' only when a TOST test shows the difference within "
        "+-margin (null: never claim equivalence).", min=0, exclusive_min=True)
    effect_of_interest: Optional[float] = setting(
        None, "Pre-registration: the true difference on the primary metric worth detecting, declared (with "
        "primary_metric and equivalence_margin) before the study runs. With `pilot`, the command prints the pairs "
        "needed to detect it with 80% power before training and records that plan beside the result "
        "(preregistration.json, comparison.json, the report).", min=0, exclusive_min=True)
    pilot: Optional[str] = setting(
        None, "Pre-registration: a finished comparison's folder whose paired SD plans this study (as "
        "`finetune-compare plan --pilot`); needs effect_of_interest or equivalence_margin.")
    seed: int = setting(42, "Data seed and first run seed (run k uses seed + k).", min=0)
    output_dir: str = setting("outputs", "Where results go.", nonempty=True)
    save_model: bool = setting(False, "Save the trained model (LoRA: adapter + head only).")
    save_merged: bool = setting(False, "LoRA: also save a merged full model.")
    serving: bool = setting(
        False, "Measure serving cost: after the runs, each method's median run is exported (merged where peft can, "
        "and as ONNX), checked against its predictions, and its forward pass timed at batch 1 and 32 as the unmerged "
        "adapter, the merged model and the ONNX graph, in one process and interleaved (serving.json). The verdict's "
        "cost line and the efficiency table add the latency ratio and the deployable size. Needs save_model.")
    save_dir: Optional[str] = setting(None, "Where models are saved (default: inside each run folder).")
    evaluate_base_model: bool = setting(True, "Evaluate the untrained checkpoint when its head already fits.")
    drift: bool = setting(
        True, "Record each run's drift from the base model: linear CKA of every layer's mean-pooled representations "
        "of drift_probe_texts test texts, and the intruder dimensions of the weight matrices training changed "
        "(docs/statistics.md). Compared between methods in the report's 'What each method gives up'.")
    drift_probe_texts: int = setting(
        256, "Drift: how many test texts the CKA is computed on (spread evenly over the length-sorted test split, the "
        "same for every run; all of them when the test set is smaller).", min=2)
    intruder_top_k: int = setting(10, "Drift: how many top singular vectors of each changed matrix are checked for "
                                  "intruder dimensions.", min=1)
    intruder_epsilon: float = setting(
        0.5, "Drift: a top singular vector is an intruder when its highest cosine similarity to any singular vector "
        "of the base matrix is below this.", min=0, max=1, exclusive_min=True, exclusive_max=True)
    method_overrides: dict = setting(
        {}, "Per-method settings, e.g. {lora: {lora_r: 16, batch_size: 32}}; written by --mode optimize as "
        "tuned.yaml.")
    method_variants: dict = setting(
        {}, "Methods under names of their own: {name: {base: METHOD, KEY: VALUE, ...}} trains `name` like METHOD with "
        "those settings (the keys method_overrides allows), e.g. {lora_all: {base: lora, lora_target_modules: [query, "
        "key, value, dense]}}. Each is tuned, run, reported and exported as a method; list it in methods. Its "
        "method_overrides apply over these settings, and its default search space leaves them out.")
    sweep: dict = setting(
        {}, "Grid for `finetune-compare sweep`: one or two keys, each with a list of values, e.g. {samples_per_class: "
        "[100, 400, 1600]}; every point is a full paired comparison. Only the sweep command reads it.")

    def check(self) -> None:
        from ..errors import ConfigError

        if self.save_merged and not self.save_model:
            raise ConfigError("config key 'save_merged': needs save_model: true")
        if self.serving and not self.save_model:
            raise ConfigError("config key 'serving': exports each method's saved model; needs save_model: true")
        if self.pilot is not None and self.effect_of_interest is None and self.equivalence_margin is None:
            raise ConfigError("config key 'pilot': plans a study for effect_of_interest or equivalence_margin; "
                              "declare one of them")


@dataclass(frozen=True)
class TrackingConfig(Section):
    """MLflow and Weights & Biases: read by the trackers."""

    section = "tracking"
    prefix = "tracking_"
    tracking_mlflow: bool = setting(True, "Log to MLflow (default store: SQLite inside output_dir).")
    tracking_mlflow_uri: Optional[str] = setting(
        None, "MLflow tracking URI (a server: http://host:5000); default $MLFLOW_TRACKING_URI or "
        "output_dir/mlflow.db.")
    tracking_mlflow_experiment: str = setting("finetune-compare", "MLflow experiment name.")
    tracking_mlflow_register_model: bool = setting(
        False, "Register the best method's saved model in the MLflow model registry (needs save_model).")
    tracking_wandb: bool = setting(True, "Log to Weights & Biases (offline files under output_dir unless online).")
    tracking_wandb_mode: str = setting(
        "auto", "'auto' = online when WANDB_API_KEY is set, else offline (sync later with `wandb sync`).",
        choices=("auto", "offline", "online"))
    tracking_wandb_project: str = setting("finetune-compare", "W&B project.")
    tracking_wandb_entity: Optional[str] = setting(None, "W&B entity (team or user).")


@dataclass(frozen=True)
class SearchConfig(Section):
    """Optuna's search: read by --mode optimize."""

    section = "search"
    prefix = "hpo_"
    hpo_trials: int = setting(20, "Optuna trials per method (--trials overrides).", min=0, max=100000)
    hpo_metric: str = setting(DEFAULT_METRIC, "Validation metric to maximise.", choices=PRIMARY_METRICS)
    hpo_sampler: str = setting("tpe", "Optuna sampler (seeded with `seed`).", choices=("tpe", "random"))
    hpo_pruner: str = setting("median", "Stop bad trials early at validation evaluations.",
                              choices=("median", "hyperband", "none"))
    hpo_storage: Optional[str] = setting(
        None, "Optuna storage URL (postgresql://, mysql://, sqlite:///) or journal:PATH; default: SQLite in "
        "output_dir.")
    hpo_study_name: str = setting("finetune-compare", "Study name prefix; the method is appended.")
    hpo_workers: int = setting(
        1, "optimize --workers with execution_backend 'ray': trial workers per study, each a Ray task with the "
        "execution section's resources, sharing the study through hpo_storage (journal:PATH or postgresql://; not "
        "the default SQLite file).", min=1, max=1024)
    search_space: dict = setting({}, "Per-method search spaces merged over the defaults (see docs/internals.md, "
                                 "search).")
    tune_trials: int = setting(
        0, "compare and sweep (--tune-trials): before the paired runs, tune each method with this many Optuna trials "
        "over its own search space on the validation split only (the same number for every method), then compare "
        "each method's best settings over the paired seeds on the test set. 0: compare the configured settings.",
        min=0, max=100000)
    tune_extend: bool = setting(
        False, "With tune_trials: a method whose best setting lies within the outer 10% of a searched range (log scale "
        "for a log range), or at the end of three or more numeric choices, is tuned once more with the same number of "
        "trials over that range widened by half its width on that side (choices: one more step). The better of the two "
        "searches' best validation scores decides its settings; both are kept and reported, with the method's trials "
        "in all. Without it the comparison only says so.")



@dataclass(frozen=True)
class ExecutionConfig(Section):
    """Where the runs of compare, sweep and a tuned comparison execute: read by the executor. Not result-affecting:
    a folder started on one backend resumes on the other."""

    section = "execution"
    prefix = "execution_"
    execution_backend: str = setting(
        "local", "'local': the runs one after another in this process; 'ray': each run a Ray task with the resources "
        "below, side by side (pip install -e '.[ray]').", choices=("local", "ray"))
    execution_address: Optional[str] = setting(
        None, "Ray cluster to join: 'auto' (the one `ray start` runs on this machine) or ray://host:port; unset: start "
        "a private local Ray that listens on 127.0.0.1 only and stops with the command.")
    execution_gpus_per_run: float = setting(
        0.0, "GPUs each run declares (Ray pins them: a run sees only its own); fractions pack runs on one card "
        "(0.25: four per GPU). 0: CPU runs.", min=0, max=64)
    execution_cpus_per_run: int = setting(1, "CPU cores each run declares; also its torch threads.", min=1, max=1024)
    execution_max_retries: int = setting(
        1, "Times a run that fails (exception, out of memory, its process or node lost) is retried before it is "
        "recorded as failed while the other runs go on.", min=0, max=100)
