"""Optuna studies: the storage (SQLite in the output folder, a URL, or a journal file), the study per method, and
what makes a study one study: a metric and a search space, recorded on it when it is created. A resumed study
whose metric or space changed is refused before any trial, naming both (its trials could not be compared, and
Optuna's samplers fail mid-run on a categorical choice that is gone). Also the trial bookkeeping every worker of
a study shares (this process, other `optimize` processes, Ray trial workers): which trials count, which were left
running by a dead process, and the callback that stops a study at its count.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ...config import SearchConfig
from ...errors import UserError
from ...layout import Layout
from ...redaction import redact_text
from ...utils.processes import is_dead_local_worker

log = logging.getLogger(__name__)


def make_storage(url: str | None, output_dir: Path):
    """The study's storage as an object, so its public methods (Optuna's `BaseStorage`) are at hand."""
    import optuna

    if url is None:
        path = Layout(output_dir).optuna_db
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path.resolve()}"
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise UserError(f"cannot use journal storage '{path}': {exc.strerror or exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError: not a journal Optuna wrote
            raise UserError(f"cannot use journal storage '{path}': it is not an Optuna journal file "
                            f"({type(exc).__name__} while reading it); choose another --storage, or delete it if it "
                            "is a damaged journal of ours (its trials are lost)") from None
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:
        raise UserError(f"cannot open Optuna storage {url.split('@')[-1]!r}: {type(exc).__name__}: "
                        f"{redact_text(str(exc).splitlines()[0][:200])}; if that database is damaged, delete it (its "
                        "trials are lost) or choose another --storage") from None


def make_pruner(name: str):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def create_study(search: SearchConfig, seed: int, method: str, output_dir: Path, storage_url: str | None = None,
                 space: dict | None = None, storage=None, later_search: str | None = None):
    """Create the study if it does not exist (run once before starting parallel workers); `seed` seeds the
    sampler. With `space`, the study's metric and search space are recorded (new study) or checked (resumed)."""
    import optuna

    sampler = (optuna.samplers.TPESampler(seed=seed) if search.hpo_sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    storage = storage or make_storage(storage_url or search.hpo_storage, output_dir)
    try:
        study = optuna.create_study(
            study_name=f"{search.hpo_study_name}-{method}" + (f"-{later_search}" if later_search else ""),
            storage=storage,
            direction="maximize", sampler=sampler, pruner=make_pruner(search.hpo_pruner), load_if_exists=True,
        )
    except Exception as exc:  # SQLAlchemy / journal errors on a damaged database
        where = storage_url or search.hpo_storage or Layout(output_dir).optuna_db
        raise UserError(f"cannot open the Optuna study in {redact_text(str(where))} ({type(exc).__name__}: "
                        f"{redact_text(str(exc).splitlines()[0][:160])}); if that database is damaged, delete it "
                        "(its trials are lost) or choose another --storage") from None
    if space is not None:
        check_study_identity(study, search.hpo_metric, space)
    return study


def _canonical(space: dict) -> dict:
    return json.loads(json.dumps(space, sort_keys=True, default=str))


def _distributions(space: dict) -> dict:
    """The Optuna distributions `suggest` asks for (list choices are suggested joined, as 'query,value')."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
        elif spec["type"] == "int":
            out[name] = IntDistribution(int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            out[name] = CategoricalDistribution([",".join(map(str, c)) if isinstance(c, list) else c
                                                 for c in spec["choices"]])
    return out


def _describe(name: str, dist) -> str:
    return f"{name}: {getattr(dist, 'choices', None) or (dist.low, dist.high)}"


def check_study_identity(study, metric: str, space: dict) -> None:
    """Record the metric and space on a new study; refuse a resumed one scored on another metric or searched over
    another space. Studies made before this was recorded are checked against their trials' distributions."""
    attrs = study.user_attrs
    trials = study.get_trials(deepcopy=False)
    where = f"the Optuna study '{study.study_name}'"
    fix = ("use another --output-dir (or hpo_study_name) for the new one; a study keeps one metric and one space so "
           "that its trials compare")
    if attrs.get("hpo_metric", metric) != metric:
        raise UserError(f"{where} scores trials on validation {attrs['hpo_metric']}, not {metric} (hpo_metric "
                        f"changed): {fix}")
    if "search_space" in attrs:
        if attrs["search_space"] != _canonical(space):
            old, new = attrs["search_space"], _canonical(space)
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            shown = "; ".join(f"{k}: {old.get(k)} -> {new.get(k)}" for k in changed[:4])
            raise UserError(f"{where} was searched over another space ({shown}): {fix}")
    elif trials:
        new = _distributions(space)
        for t in trials:
            for name, dist in t.distributions.items():
                if name not in new or new[name] != dist:
                    now = _describe(name, new[name]) if name in new else f"{name}: not searched"
                    raise UserError(f"{where} was searched over another space ({_describe(name, dist)} -> {now}): "
                                    f"{fix}")
    if "hpo_metric" not in attrs:
        study.set_user_attr("hpo_metric", metric)
    if "search_space" not in attrs:
        study.set_user_attr("search_space", _canonical(space))


# Trial bookkeeping shared by every worker of a study (this process's, other processes', Ray's)

INTERRUPTED = "interrupted"


def is_interrupted(trial) -> bool:
    return trial.user_attrs.get("fail_reason") == INTERRUPTED


def counted_trials(study) -> int:
    """Trials that count toward --trials: complete, pruned, or failed for a reason of their own (not interrupted)."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not is_interrupted(t)))


def fail_orphaned_trials(study, storage) -> int:
    """Mark RUNNING trials whose process (on this host) is gone as FAIL 'interrupted' (kill -9, power loss).

    Trials of live processes, or of other hosts sharing the storage, are left alone. `storage` is the study's
    storage object (`studies.make_storage`): its public methods set the reason of a trial this process does not own.
    """
    from optuna.trial import TrialState

    orphaned = 0
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_dead_local_worker(t.user_attrs.get("worker", "")):
            continue
        storage.set_trial_user_attr(storage.get_trial_id_from_study_id_trial_number(study_id, t.number),
                                    "fail_reason", INTERRUPTED)
        study.tell(t.number, state=TrialState.FAIL)
        orphaned += 1
    if orphaned:
        log.warning("%s: %d trial(s) left running by a process that died marked as failed (interrupted); "
                    "they do not count toward --trials", study.study_name, orphaned)
    return orphaned


class StopAtCountedTrials:
    """Optuna callback: stop once `n` trials count (every worker's; interrupted ones do not)."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, study, trial) -> None:
        if counted_trials(study) >= self.n:
            study.stop()
