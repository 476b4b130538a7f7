"""The package's layering, checked on the source (`ast`): a broken boundary fails here, not in review.

Stages, low to high: leaves (errors, redaction, labels, fields, methods, layout, config) -> utils ->
data, models -> training -> evaluation, analysis, tracking -> experiments -> cli. Imports
inside functions count too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "finetune_compare"
LEAVES = {"errors", "redaction", "labels", "fields", "methods", "layout", "metric_names", "budgets"}

# (importer, what it must never import): names are top-level modules or packages of finetune_compare
FORBIDDEN = {
    "data": {"models", "training", "evaluation", "experiments", "analysis", "tracking", "cli"},
    "models": {"data", "training", "evaluation", "experiments", "analysis", "tracking", "cli"},
    "training": {"evaluation", "experiments", "analysis", "tracking", "cli"},
    "analysis": {"training", "models", "experiments", "tracking", "cli"},
    "evaluation": {"experiments", "analysis", "tracking", "cli"},
    "tracking": {"experiments", "analysis", "cli"},
    # utils is a library under the domain: not even its leaves (errors, the config, the label schema, ...)
    "utils": {"config", "data", "models", "training", "evaluation", "experiments", "analysis", "tracking", "cli",
              "errors", "redaction", "labels", "layout", "fields", "methods", "metric_names", "logging_setup",
              "budgets"},
}
# leaf modules import only other leaves (config also reads the method registry: each method's settings)
LEAF_ALLOWED = {"errors": set(), "redaction": set(), "labels": set(), "layout": set(), "metric_names": set(),
                "budgets": set(),
                "fields": {"errors"},
                "methods": {"errors", "fields"},
                "config": {"errors", "redaction", "fields", "methods", "metric_names", "budgets"}}


def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Top-level finetune_compare modules/packages that `path` imports (its text, or `source` as if it were there),
    anywhere in the file."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8") if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [a.name] for a in node.names] if not node.module else [target]
            elif node.module and node.module.startswith("finetune_compare"):
                names = [node.module.split(".")[1:]]
            else:
                continue
            found.update(n[0] for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("finetune_compare.") and a.name.count("."))
    return found - {here[0] if here else ""}


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_respects_the_layering(path):
    top = _module_name(path)[0] if _module_name(path) else "__init__"
    imported = imports_of(path)
    if top in LEAF_ALLOWED:
        assert imported <= LEAF_ALLOWED[top], f"{top} must stay a leaf; it imports {sorted(imported)}"
    bad = imported & FORBIDDEN.get(top, set())
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}, across a boundary"


def test_the_walker_sees_function_level_and_relative_imports():
    src = PACKAGE / "data" / "build.py"
    assert {"config", "errors"} <= imports_of(src)
    # a deliberately bad file, read as if it were data/_boundary_probe.py (nothing is written into src/), is caught
    probe = PACKAGE / "data" / "_boundary_probe.py"
    assert "models" in imports_of(probe, "def f():\n    from ..models.hf import HFModel\n")
    assert not probe.exists()


# Each stage receives only its config section: what it may import from `config`. Trackers also record the whole
# resolved config as run parameters (that is their job), so they may name `Config`.
SECTION_IMPORTS = {
    "data": {"DataConfig"},
    "models": {"ModelConfig", "MethodConfig"},
    "training": {"TrainingConfig"},
    "evaluation": set(),
    "analysis": set(),
    "tracking": {"TrackingConfig", "Config"},
}


def config_names_imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "config" and (
                node.level or (node.module or "").startswith("finetune_compare")):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("path", [p for p in SOURCES if _module_name(p) and _module_name(p)[0] in SECTION_IMPORTS],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_stage_receives_only_its_config_section(path):
    stage = _module_name(path)[0]
    extra = config_names_imported(path) - SECTION_IMPORTS[stage]
    assert not extra, f"{path.relative_to(PACKAGE)} imports {sorted(extra)} from config; the {stage} stage " \
                      f"works on {sorted(SECTION_IMPORTS[stage]) or 'no config'}"


def test_section_walker_sees_config_imports():
    assert config_names_imported(PACKAGE / "data" / "build.py") == {"DataConfig"}
    assert "Config" in config_names_imported(PACKAGE / "experiments" / "run.py")
