"""Training budgets: the units a budget may be declared in, and what each counts (the config's choices and the
reports' wording). A leaf: it imports nothing."""

BUDGET_UNITS = {"epochs": "epochs", "steps": "optimizer steps", "examples": "training examples",
                "seconds": "wall seconds of training"}


def declared_budget(budget: dict | None) -> str | None:
    """A run record's declared budget in words ("400 optimizer steps"); None when each method trains its own
    num_epochs (or the record predates budgets)."""
    if not budget or budget.get("unit", "epochs") == "epochs":
        return None
    return f"{budget['value']:g} {BUDGET_UNITS[budget['unit']]}"


def ran_text(efficiency: dict) -> str:
    """What a method's runs took, from its efficiency entry (mean epochs run and optimizer steps)."""
    epochs, steps = efficiency.get("epochs_run"), efficiency.get("steps")
    return (f"{epochs:.3g} epochs" if epochs is not None else "? epochs") + (f", {steps:,.0f} steps" if steps else "")


def budget_text(efficiency: dict) -> str:
    """A method's budget beside its scores and costs: the declared one and what its runs took, or only the latter."""
    declared = declared_budget(efficiency.get("budget"))
    return f"{declared} (ran {ran_text(efficiency)})" if declared else ran_text(efficiency)
