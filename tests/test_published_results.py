"""The published study (docs/results/) says what its committed JSON says: tables and quoted numbers."""

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
STUDY = RESULTS / "minilm-size-sweep"


def _summary() -> dict:
    return json.loads((STUDY / "sweep.json").read_text(encoding="utf-8"))


def _sweep_table():
    spec = importlib.util.spec_from_file_location("sweep_table", ROOT / "scripts" / "sweep_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json_numbers(summary: dict) -> set[str]:
    """Every 4-decimal number the JSON can print as: means, interval ends, paired differences."""
    out = set()

    def add(v):
        if isinstance(v, float):
            out.update({f"{v:.4f}", f"{v:+.4f}", f"{abs(v):.4f}"})

    for p in summary["points"]:
        for m in p["methods"].values():
            for s in [m["primary"], *m["per_source"].values()]:
                for k in ("mean", "ci_low", "ci_high"):
                    add((s or {}).get(k))
        for c in p["comparisons"].values():
            for k in ("diff_mean", "ci_low", "ci_high"):
                add(c[k])
            for k in ("value", "low", "high"):  # what the pairs could detect
                add((c.get("detectable") or {}).get(k))
    return out


def test_the_published_table_is_generated_from_the_committed_json():
    assert _sweep_table().table(_summary()) in (RESULTS / "README.md").read_text(encoding="utf-8")


def _quoted(marker: str, docs) -> list[str]:
    """The 4-decimal numbers inside <!-- marker --> ... <!-- /marker --> of each doc."""
    quoted = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        block = text.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
        quoted += re.findall(r"[+\-−]?\d\.\d{4}\b", block)
    assert quoted, f"the {marker} quotes no number"
    return [q.replace("−", "-").lstrip("±") for q in quoted]


def test_every_number_quoted_in_the_earlier_study_s_summary_is_in_its_json():
    allowed = _json_numbers(_summary())
    missing = [q for q in _quoted("earlier study summary", [RESULTS / "README.md"]) if q not in allowed]
    assert not missing, f"quoted but not in sweep.json: {missing}"


TUNED = RESULTS / "minilm-tuned-700"


def _tuned() -> dict:
    return json.loads((TUNED / "comparison.json").read_text(encoding="utf-8"))


def _printed(*values) -> set[str]:
    """The 4-decimal forms a quoted float can take (signed, unsigned, absolute); non-floats give none."""
    return {f for v in values if isinstance(v, float) for f in (f"{v:.4f}", f"{v:+.4f}", f"{abs(v):.4f}")}


def _scores_and_verdicts(cmp: dict) -> set[str]:
    """What a comparison.json's per-method scores and primary verdicts can print as: means, SDs, intervals, the
    paired differences and what the pairs could detect."""
    out = set()
    for per in cmp["per_method"].values():
        for s in per.values():
            out |= _printed(*(s.get(k) for k in ("mean", "std", "ci_low", "ci_high")))
    for c in cmp["comparisons"].values():
        p, v = c["primary"], c["primary"]["verdict"]
        out |= _printed(p["diff_mean"], p["diff_sd"], v["ci_low"], v["ci_high"], v.get("margin_floor"), *p["diffs"])
        out |= _printed(*((v.get("detectable") or {}).get(k) for k in ("value", "low", "high")))
    return out


def _tuned_numbers(cmp: dict) -> set[str]:
    """Every 4-decimal number the tuned study's comparison.json can print as."""
    out = _scores_and_verdicts(cmp)
    for per in cmp["per_method"].values():
        for s in per.values():
            out |= _printed(*(s.get("values") or []))
    for c in cmp["comparisons"].values():
        for s in c["secondary"].values():
            out |= _printed(s["diff_mean"], s["t_ci_low"], s["t_ci_high"])
    for t in cmp["tuning"].values():
        out |= _printed(t["best_value"], *(x for point in t["expected_validation"]
                                           for x in (point["mean"], point["sd"])))
    return out


def _study_table():
    spec = importlib.util.spec_from_file_location("study_table", ROOT / "scripts" / "study_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tuned_study_s_tables_are_generated_from_its_json():
    cmp, text = _tuned(), (RESULTS / "README.md").read_text(encoding="utf-8")
    assert _study_table().method_table(cmp) in text and _study_table().difference_table(cmp) in text


def test_every_number_quoted_in_the_study_summaries_is_in_the_tuned_study_s_json():
    allowed = _tuned_numbers(_tuned())
    missing = [q for q in _quoted("study summary", [RESULTS / "README.md", ROOT / "README.md"]) if q not in allowed]
    assert not missing, f"quoted but not in {TUNED.name}/comparison.json: {missing}"


def test_the_readme_keeps_the_earlier_study_s_figures_out():
    """Once the tuned study landed, the README quotes none of the earlier study's numbers."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = {q.replace("−", "-").lstrip("±") for q in re.findall(r"[+\-−]?\d\.\d{4}\b", readme)}
    earlier = _json_numbers(_summary()) - _tuned_numbers(_tuned())
    assert not quoted & earlier, sorted(quoted & earlier)


def test_the_tuned_study_was_declared_before_it_ran_and_ran_as_declared():
    cmp = _tuned()
    pre = cmp["preregistration"]
    assert pre["effect_of_interest"] == 0.02 and pre["primary_metric"] == cmp["primary_metric"] == "macro_f1"
    assert pre["pilot"].endswith("samples_per_class=700") and pre["plan"]
    assert all(c["primary"]["n_pairs"] == pre["pairs_run"] for c in cmp["comparisons"].values())
    assert {m: t["trials"] for m, t in cmp["tuning"].items()} == {m: pre["tune_trials"] for m in cmp["methods"]}
    for m in cmp["methods"]:  # one declared budget, the same for both
        assert cmp["efficiency"][m]["budget"] == pre["budget"] == {"unit": "steps", "value": 400}
        assert cmp["efficiency"][m]["steps"] == 400
    assert not cmp["collapsed_runs"] and not cmp.get("failed_runs")
    config = (TUNED / "config.yaml").read_text(encoding="utf-8")
    assert "samples_per_class: 700" in config and "val_fraction: 0.15" in config


def test_the_committed_report_matches_the_json():
    summary, md = _summary(), (STUDY / "sweep_report.md").read_text(encoding="utf-8")
    assert len(summary["points"]) >= 3 and not summary["missing_points"]
    assert all(c["n_pairs"] >= 5 for p in summary["points"] for c in p["comparisons"].values())
    for p in summary["points"]:
        for c in p["comparisons"].values():
            assert f"{c['diff_mean']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" in md
    for path in summary["plots"].values():
        assert (STUDY / path).is_file()


QUICKSTART = RESULTS / "quickstart"


def test_the_readme_quotes_the_stored_quickstart_run():
    """The README's quickstart output and table come from docs/results/quickstart (a `make quickstart` run)."""
    cmp = json.loads((QUICKSTART / "comparison.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    verdict = readme.split("<!-- quickstart verdict -->")[1].split("<!-- /quickstart verdict -->")[0]
    assert cmp["summary"][0] in verdict and cmp["headline"][0] in verdict
    rows = {line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| full |")
            or line.startswith("| LoRA r=8")}
    for label, method in (("full", "full"), ("LoRA r=8 (query, value), bf16 frozen base", "lora")):
        per, eff = cmp["per_method"][method], cmp["efficiency"][method]
        expected = [f"{per[k]['mean']:.4f}" for k in ("accuracy", "macro_f1", "macro_f1_imdb", "macro_f1_sst5",
                                                       "macro_f1_tweeteval")]
        expected += [f"{eff['trainable_params']:,}", f"{eff['train_seconds']['mean']:.1f}",
                     f"{eff['peak_rss_above_baseline_mb']:.0f}"]
        assert [c.strip() for c in rows[label].split("|")[2:-1]] == expected


def test_the_published_decision_rule_table_is_the_simulations():
    """docs/statistics.md's table is generated from the committed simulation (benchmarks/results/decision-rule.json),
    and every rate the README quotes is in it."""
    spec = importlib.util.spec_from_file_location("simulate_decision_rule", ROOT / "benchmarks" /
                                                  "simulate_decision_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = json.loads((ROOT / "benchmarks" / "results" / "decision-rule.json").read_text(encoding="utf-8"))
    docs = (ROOT / "docs" / "statistics.md").read_text(encoding="utf-8")
    assert module.table(result) in docs
    assert all(c["reps"] == 800 for c in result["cells"].values()) and len(result["cells"]) == 18
    rates = {f"{100 * v:.1f}%" for c in result["cells"].values() for k, v in c.items()
             if k in ("claims", "t_claims", "before_claims", "covered") and isinstance(v, float)}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- decision rule summary -->")[1].split("<!-- /decision rule summary -->")[0]
    quoted = re.findall(r"(\d+\.\d)(?=%|-\d)", block)
    assert quoted and not [q for q in quoted if f"{q}%" not in rates]


def _point(size: int) -> dict:
    path = STUDY / "points" / f"samples_per_class={size}" / "comparison.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_study_s_other_findings_are_the_json_s():
    """'What else the study shows': seed SDs and ranges, per-source differences with their Holm p, per-epoch time."""
    text = (RESULTS / "README.md").read_text(encoding="utf-8")
    block = text.split("**What else the earlier study showed**")[1].split("### How the earlier study was run")[0]
    block = " ".join(block.split())
    for size, lora_sd, full_sd in ((220, "0.103", "0.022"), (70, "0.075", "0.108"), (700, "0.0072", "0.0095")):
        methods = _point(size)["per_method"]
        assert f"{methods['lora']['macro_f1']['std']:.{len(lora_sd) - 2}f}" == lora_sd
        assert f"{methods['full']['macro_f1']['std']:.{len(full_sd) - 2}f}" == full_sd
    lora_220 = _point(220)["per_method"]["lora"]["macro_f1"]["values"]
    assert f"from {min(lora_220):.2f} to {max(lora_220):.2f}" in block
    secondary = _point(700)["comparisons"]["lora_vs_full"]["secondary"]
    for key, name in (("macro_f1_imdb", "IMDB"), ("macro_f1_sst5", "SST-5"), ("macro_f1_tweeteval", "TweetEval")):
        assert f"{secondary[key]['diff_mean']:+.4f} ({name})".replace("+-", "-") in block
        assert secondary[key]["p_holm"] == 1.0
    efficiency = _point(700)["efficiency"]
    assert (f"{efficiency['lora']['seconds_per_epoch']:.1f} s vs {efficiency['full']['seconds_per_epoch']:.1f} s"
            in block)


def test_the_gpu_estimate_quotes_its_json():
    text = " ".join((RESULTS / "README.md").read_text(encoding="utf-8").split())
    sweep = json.loads((RESULTS / "reference-cost-estimate.json").read_text(encoding="utf-8"))["reference_sweep"]
    minutes = 60 * (sweep["full"]["gpu_hours_flop_bound"] + sweep["lora"]["gpu_hours_flop_bound"])
    assert f"FLOPs alone would take {minutes:.1f} minutes" in text


def test_the_tuned_study_s_other_statements_are_its_files():
    """'What a user should conclude' and 'What it cannot say': trial scores, best settings, late runs' times."""
    import csv

    text = " ".join((RESULTS / "README.md").read_text(encoding="utf-8").split("## Earlier study")[0].split())
    trials = {row["number"]: row for row in csv.DictReader(open(TUNED / "optimize" / "lora" / "trials.csv"))}
    fast = sorted(float(r["value"]) for r in trials.values()
                  if r["state"] == "COMPLETE" and float(r["params_lora_learning_rate"]) >= 8e-4)
    slow = sorted(float(r["value"]) for r in trials.values()
                  if r["state"] == "COMPLETE" and float(r["params_lora_learning_rate"]) < 2.4e-4)
    assert f"scored {fast[0]:.4f} to {fast[-1]:.4f} on validation, those below 2.4e-4 {slow[0]:.4f} and {slow[1]:.4f}" \
        in text
    cmp = _tuned()
    best = {m: t["best_params"] for m, t in cmp["tuning"].items()}
    assert f"({best['full']['learning_rate']:.2g} of 1e-5 to 1e-4" in text
    assert f"{best['lora']['lora_learning_rate']:.2e} of 1e-4 to 1e-3" in text and best["lora"]["lora_r"] == 32
    late = {m: cmp["efficiency"][m]["train_seconds"]["values"][-4:] for m in cmp["methods"]}
    assert (f"{min(late['full']):.0f} to {max(late['full']):.0f} s (full) and {min(late['lora']):.0f} to "
            f"{max(late['lora']):.0f} s (LoRA)") in text
    assert cmp["efficiency"]["lora"]["best_at_last_evaluation"] == 3 and cmp["efficiency"]["full"]["best_at_last_evaluation"] == 0


def test_the_many_methods_example_says_what_its_json_says():
    """docs/methods.md's six-method quickstart: every quoted 4-decimal number is in its committed comparison.json,
    and what it says of the verdicts, the subset and the fronts is what that file holds."""
    folder = RESULTS / "quickstart-many"
    cmp = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    numbers = set()

    def add(v):
        if isinstance(v, float):
            numbers.update({f"{v:.4f}", f"{v:+.4f}", f"{abs(v):.4f}"})

    for m in cmp["methods"]:
        for k in ("mean", "ci_low", "ci_high"):
            add(cmp["per_method"][m]["macro_f1"][k])
    for c in cmp["comparisons"].values():
        add(c["primary"]["diff_mean"])
        add(c["primary"]["verdict"]["ci_low"])
        add(c["primary"]["verdict"]["ci_high"])
    for r in cmp["possibly_best"]["methods"].values():
        add(r["diff_mean"])
        add(r["upper"])
    quoted = _quoted("many methods quickstart", [ROOT / "docs" / "methods.md"])
    assert not [q for q in quoted if q not in numbers]
    assert {c["primary"]["verdict"]["kind"] for c in cmp["comparisons"].values()} == {"inconclusive"}
    inside = [m for m, r in cmp["possibly_best"]["methods"].items() if r["in_set"]]
    assert sorted(inside) == ["adalora", "full", "hra", "lokr", "oft"]
    fronts = {k: sorted(m for m, r in v["methods"].items() if r["on_front"]) for k, v in cmp["pareto"].items()}
    assert fronts["trainable_params"] == ["hra", "lokr"] and fronts["peak_rss_above_baseline_mb"] == ["hra"]
    assert fronts["train_seconds"] == ["adalora", "hra", "oft"]


def test_the_many_methods_simulation_summary_is_its_json():
    """docs/statistics.md's many-methods table is generated from the committed JSON, and every rate its summary
    quotes is one of that JSON's."""
    spec = importlib.util.spec_from_file_location("simulate_many_methods", ROOT / "benchmarks" /
                                                  "simulate_many_methods.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = json.loads((ROOT / "benchmarks" / "results" / "many-methods.json").read_text(encoding="utf-8"))
    docs = (ROOT / "docs" / "statistics.md").read_text(encoding="utf-8")
    assert module.table(result) in docs
    assert all(c["reps"] == 100 for c in result["cells"].values()) and len(result["cells"]) == 4
    rates = {f"{100 * v:.1f}%" for c in result["cells"].values() for k, v in c.items() if isinstance(v, float)
             and k.startswith(("any_", "m1_", "best_"))}
    sizes = {f"{c['set_size']:.2f}" for c in result["cells"].values()}
    block = docs.split("<!-- many methods summary -->")[1].split("<!-- /many methods summary -->")[0]
    quoted = re.findall(r"(\d+\.\d)%", block)
    assert quoted and not [q for q in quoted if f"{q}%" not in rates]
    assert all(s in sizes for s in re.findall(r"\b(\d\.\d\d) and (\d\.\d\d) of the", block)[0])


REGRET = RESULTS / "study-regret"


def _regret() -> dict:
    return json.loads((REGRET / "comparison.json").read_text(encoding="utf-8"))


def _regret_numbers(cmp: dict) -> set[str]:
    """Every 4-decimal number the lead study's comparison.json can print as: scores, differences and their
    intervals, what each method gives up, the searches' best values and curves, the fairness checks' gains."""
    out = _scores_and_verdicts(cmp)
    for c in cmp["comparisons"].values():
        out |= _printed(c["primary"]["verdict"]["p"], c["primary"]["verdict"].get("p_adjusted"))
    for rows in cmp["gives_up"]["comparisons"].values():
        for r in rows:
            out |= _printed(*(r[k] for k in ("diff_mean", "ci_low", "ci_high", "p", "p_holm")))
    for t in cmp["tuning"].values():
        for search in [t, *(t.get("searches") or {}).values()]:
            out |= _printed(search["best_value"], *(x for point in search["expected_validation"] or []
                                                    for x in (point["mean"], point["sd"])))
    for found in (cmp.get("fairness") or {}).values():
        out |= _printed((found.get("saturation") or {}).get("last_gain"))
    for r in (cmp.get("possibly_best") or {}).get("methods", {}).values():
        out |= _printed(r["diff_mean"], r["upper"])
    return out


def test_the_lead_study_s_tables_are_generated_from_its_json():
    assert _study_table().tables(_regret()) in (RESULTS / "README.md").read_text(encoding="utf-8")


def test_every_number_quoted_about_the_lead_study_is_in_its_json():
    allowed = _regret_numbers(_regret())
    quoted = _quoted("regret summary", [RESULTS / "README.md", ROOT / "README.md"]) + _quoted(
        "regret checks", [RESULTS / "README.md"])
    missing = [q for q in quoted if q not in allowed]
    assert not missing, f"quoted but not in {REGRET.name}/comparison.json: {missing}"


def test_the_readme_s_first_screen_summarises_the_lead_study_and_what_it_cannot_say():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40]
    head = "\n".join(lines)
    assert "<!-- regret summary -->" in head and "<!-- /regret summary -->" in head
    assert "cannot say" in head.split("<!-- regret summary -->")[1]


def test_the_lead_study_was_declared_before_it_ran_and_ran_as_declared():
    import datetime

    import optuna
    import yaml

    cmp = _regret()
    pre = cmp["preregistration"]
    config = yaml.safe_load((ROOT / "configs" / "study-regret.yaml").read_text(encoding="utf-8"))
    assert pre == json.loads((REGRET / "preregistration.json").read_text(encoding="utf-8"))
    assert pre["primary_metric"] == cmp["primary_metric"] == config["primary_metric"] == "macro_f1_in_domain"
    assert pre["effect_of_interest"] == config["effect_of_interest"] and pre["pairs_run"] == config["num_runs"]
    assert pre["methods"] == config["methods"] and pre["tune_extend"] and pre["tune_trials"] == 10
    assert pre["method_variants"]["lora_all"]["lora_target_modules"][-2:] == ["intermediate.dense", "output.dense"]
    assert cmp["held_out_sources"] == ["tweeteval"] and cmp["reference"] == "full"
    assert all(c["primary"]["n_pairs"] == pre["pairs_run"] for c in cmp["comparisons"].values())
    for m in cmp["methods"]:  # one declared budget for every method
        assert cmp["efficiency"][m]["budget"] == pre["budget"] == {"unit": "steps", "value": 200}
        assert cmp["efficiency"][m]["steps"] == 200
        tuning = cmp["tuning"][m]
        searches = tuning.get("searches") or {"first": tuning}
        assert all(s["trials"] == pre["tune_trials"] for s in searches.values())
        assert ("searches" in tuning) == ("extension" in cmp["fairness"].get(m, {}))
    assert not cmp["collapsed_runs"] and not cmp.get("failed_runs")
    storage = f"sqlite:///{REGRET / 'optimize' / 'optuna.db'}"
    first = min(t.datetime_start for s in optuna.get_all_study_summaries(storage)
                for t in optuna.load_study(study_name=s.study_name, storage=storage).trials)
    assert datetime.datetime.fromisoformat(pre["declared_at"]) <= first.astimezone(datetime.timezone.utc)
