"""Training budgets: the units a budget may be declared in, and what each counts (the config's choices and the
reports' wording). A leaf: it imports nothing."""

BUDGET_UNITS = {"epochs": "epochs", "steps": "optimizer steps", "examples": "training examples",
                "seconds": "wall seconds of training"}


def declared_budget(budget: dict | None) -> str | None:
    """A run record's declared budget in words ("400 optimizer steps"); None when each method trains its own
    num_epochs (or the record predates budgets)."""
    if not budget or budget.get("unit", "epochs") == "epochs":
        return None
    unit = BUDGET_UNITS[budget["unit"]]
    value = f"{budget['value']:g}"
    return f"{value} {unit[:-1] if value == '1' and unit.endswith('s') else unit}"


def ran_text(efficiency: dict) -> str:
    """What a method's runs took, from its efficiency entry (mean epochs run and optimizer steps)."""
    epochs, steps = efficiency.get("epochs_run"), efficiency.get("steps")
    ran = plural(f"{epochs:.3g}", "epoch") if epochs is not None else "? epochs"
    return ran + (f", {plural(f'{steps:,.0f}', 'step')}" if steps else "")


def plural(count: str, noun: str) -> str:
    """'1 epoch', '0.5 epochs', '3 steps': the noun agrees with the number as printed."""
    return f"{count} {noun}" + ("" if count == "1" else "s")


def budget_text(efficiency: dict) -> str:
    """A method's budget beside its scores and costs: the declared one and what its runs took, or only the latter."""
    declared = declared_budget(efficiency.get("budget"))
    return f"{declared} (ran {ran_text(efficiency)})" if declared else ran_text(efficiency)
