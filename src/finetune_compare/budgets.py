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
