"""A pre-registered study: what it declared before it ran (primary metric, equivalence margin, effect of interest,
training budget, tuning trials per method) and, from a pilot, the pairs needed for 80% power; written before
anything trains, kept beside the result.

The declarations are result-affecting config keys, so a folder's preregistration.json cannot be changed after
the fact without --overwrite (which deletes the results it was declared for). A tuned comparison writes it before
its first tuning trial.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from ...config import Config
from ...layout import Layout
from ...utils.io import read_json, write_json
from ..search.optimize import search_space_for
from ..planning.plan import plan_lines
from ..study.study_plan import StudyPlan

log = logging.getLogger(__name__)


def declared(config: Config) -> bool:
    return config.experiment.effect_of_interest is not None or config.experiment.pilot is not None


def preregister(plan: StudyPlan) -> dict | None:
    """The study's declarations and plan, logged, and written once (a resumed command keeps the first record)."""
    config = plan.config
    if not declared(config):
        return None
    path = Layout(plan.output_dir).preregistration
    if path.is_file():
        record = read_json(path)
    else:
        e = config.experiment
        lines = plan_lines(Path(e.pilot), e.effect_of_interest, e.equivalence_margin) if e.pilot else []
        record = {"primary_metric": e.primary_metric, "equivalence_margin": e.equivalence_margin,
                  "effect_of_interest": e.effect_of_interest, "pilot": e.pilot, "plan": lines,
                  "pairs_run": len(plan.seeds), "methods": list(plan.methods),
                  "budget": {"unit": config.training.budget_unit, "value": config.training.budget},
                  "tune_trials": config.search.tune_trials,
                  **({"tune_extend": True} if config.search.tune_trials and config.search.tune_extend else {}),
                  # methods under names of their own: what makes each one that method, declared with the rest
                  **({"method_variants": config.experiment.method_variants}
                     if config.experiment.method_variants else {}),
                  # tuned against tuned: every method's search space, declared before the first trial
                  **({"search_spaces": {m: search_space_for(config, m) for m in plan.methods}}
                     if config.search.tune_trials else {}),
                  "declared_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        write_json(path, record)
    effect = f"effect of interest ±{record['effect_of_interest']:g}, " if record["effect_of_interest"] else ""
    margin = f"margin ±{record['equivalence_margin']:g}, " if record["equivalence_margin"] else ""
    log.info("pre-registered before training: primary %s, %s%s%d pairs", record["primary_metric"], effect, margin,
             record["pairs_run"])
    for line in record["plan"]:
        log.info("plan: %s", line)
    return record
