"""Training budgets: the units a budget may be declared in, and what each counts (the config's choices and the
reports' wording). A leaf: it imports nothing."""

BUDGET_UNITS = {"epochs": "epochs", "steps": "optimizer steps", "examples": "training examples",
                "seconds": "wall seconds of training"}
