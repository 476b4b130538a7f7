"""The cost plan as the terminal shows it (cost_plan.build_plan's data, in words)."""

from __future__ import annotations

from ...training.progress import format_seconds
from ...training.trainer import evaluation_interval, planned_steps
from ..study.study_plan import seeds_text
from .cost_probe import PROBE_MAX_SECONDS, Probe

PRECISION = {"no": "fp32"}
# what a results folder's state means for the planned command (cost_plan.folder_state names the state)
FOLDER_STATES = {"new": "new (no results yet)", "resume": "resume (finished runs are kept)",
                 "replace-caches": "new (only caches of another configuration: replaced)"}


def _probe_line(probe: Probe) -> str:
    lo, hi = probe.step_seconds_range
    memory = (f"peak CUDA memory {probe.peak_cuda_mb:,.0f} MB" if probe.peak_cuda_mb is not None
              else f"peak RSS {probe.peak_rss_mb:,.0f} MB"
              + (f" ({probe.peak_rss_above_baseline_mb:+,.0f} MB over the process before the run)"
                 if probe.peak_rss_above_baseline_mb is not None else ""))
    t_lo, t_hi = probe.tokens_range
    stopped = (f" (stopped at its {PROBE_MAX_SECONDS:g} s bound after {probe.steps} steps)"
               if probe.stopped_at_seconds else "")
    return (f"  {probe.method}{stopped}: steps 2-{probe.steps} took {lo:.3f}-{hi:.3f} s for {t_lo:,}-{t_hi:,} padded tokens: "
            f"a step {probe.seconds_per_step:.3f} s + {probe.seconds_per_token * 1e3:.3f} ms per padded token; "
            f"set-up and first step {probe.startup_seconds:.1f} s; {memory} (a lower bound for a whole run, which "
            "also holds its best weights and test pass)")


def _point_lines(point) -> list[str]:
    config, sizes = point.config, point.sizes
    lines = []
    for method in config.method.methods:
        done, todo = len(point.done[method]), len(point.to_train[method])
        text = f"  {method}: {done} of {done + todo} runs done, {todo} to train"
        if method in point.run_seconds and todo:
            c = config.for_method(method).training
            steps, every = planned_steps(c, sizes["train"]), evaluation_interval(c, sizes["train"])
            low, high = point.run_seconds_range.get(method, (None, None))
            text += (f"; each {steps:,} steps with {steps // every} validation passes and a test pass: about "
                     f"{format_seconds(point.run_seconds[method])}"
                     + (f" ({format_seconds(low)} to {format_seconds(high)} over the probe's step-time spread)"
                        if low is not None and high > low else "")
                     + (f" (up to: early stopping, patience {c.patience}, may end it sooner)" if c.patience else "")
                     + (f" (at most: a budget of {c.budget:g} s)" if c.budget_unit == "seconds" else ""))
        if point.trials_to_run.get(method):
            text += (f"; before them {point.trials_to_run[method]} tuning trial(s), up to "
                     f"{format_seconds(point.trial_seconds[method])} each at the config's settings (pruning ends "
                     "some sooner; searched batch sizes or epochs change it)")
        lines.append(text)
    if point.failed_before:
        lines.append(f"  ({point.failed_before} of them failed on every attempt before: they are retried)")
    if point.base_to_evaluate:
        lines.append("  and the untrained checkpoint's test pass")
    return lines


def plan_text(plan: dict) -> str:
    config, points, wall = plan["config"], plan["points"], plan["wall"]
    n_runs = sum(len(p.study.runs) for p in points)
    what = (f"{', '.join(config.method.methods)} x {seeds_text([p.study for p in points])} paired seeds"
            + (f" x {len(points)} points" if plan["command"] == "sweep" else "") + f" = {n_runs} runs")
    lines = [f"plan for `finetune-compare {plan['command']}`: {what} into {config.experiment.output_dir}",
             f"folder: {plan['folder']}"]
    for p in points:
        s = p.sizes
        head = f"point {p.name}" if p.name else "runs"
        lines.append(f"{head}: {s['train']:,} train / {s['validation']:,} validation / {s['test']:,} test examples "
                     f"(max length {s['max_length']}), checked and tokenised in {p.data_seconds:.1f} s"
                     + (f"; folder: {p.folder}" if p.name and p.folder not in FOLDER_STATES.values() else ""))
        lines.extend(_point_lines(p))
    if plan["probes"]:
        first = plan["probes"][0]
        lines.append(f"probe (an estimate: {plan['probe_steps']} optimizer steps, at most {PROBE_MAX_SECONDS:g} s, and one "
                     "validation pass of each "
                     f"method on this machine, {first.device}, {PRECISION.get(first.precision, first.precision)}, "
                     f"{first.threads} torch thread(s)):")
        lines.extend(_probe_line(p) for p in plan["probes"])
        busy = [p for p in plan["probes"] if p.busy]
        if busy:
            lines.append(f"warning: the machine was busy during the probe (load {max(p.load for p in busy):.1f} on "
                         f"{busy[0].cores} core(s)): its times, and every estimate below, are unreliable; plan again "
                         "on an idle machine")
    else:
        lines.append("nothing to train: every run is done (the command rebuilds the report)")
    lines.extend(_wall_lines(wall))
    return "\n".join(lines)


def _wall_lines(wall: dict) -> list[str]:
    if not wall["runs_to_train"] and not wall["trials_to_run"]:
        return []
    work = f"{wall['runs_to_train']} run(s)" + (f" and {wall['trials_to_run']} tuning trial(s)"
                                                  if wall["trials_to_run"] else "")
    lines = [f"wall time (an estimate): local backend, {work} one after another: about "
             f"{format_seconds(wall['local_seconds'])} (the runs: loading the libraries and writing the report come on top)"]
    ray = wall.get("ray")
    if ray:
        where = "a private Ray on this machine" if ray["private"] else "the Ray cluster"
        lines.append(f"  ray backend, {where} ({ray['cpus']:g} CPUs, {ray['gpus']:g} GPUs): up to {ray['slots']} run(s) "
                     f"at once" + (f", {ray['trial_workers']} trial workers" if ray["trial_workers"] > 1 else "")
                     + f": about {format_seconds(ray['seconds'])}, if runs side by side keep the pace of one alone "
                     "(shared GPUs, cores and memory bandwidth slow them: a lower bound)")
        lines.extend(f"  warning: {w}" for w in ray["warnings"])
    return lines
