"""The package's layering, checked on the source (`ast`): a broken boundary fails here, not in review.

Stages, low to high: leaves (errors, redaction, labels, fields, methods, layout, config) -> utils ->
data, models -> training -> evaluation, analysis, tracking -> experiments -> cli. Imports
inside functions count too.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "finetune_compare"
LEAVES = {"errors", "redaction", "labels", "fields", "methods", "layout", "metric_names", "budgets", "sweep_grid"}

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
              "budgets", "sweep_grid"},
}
# leaf modules import only other leaves (config also reads the method registry: each method's settings)
LEAF_ALLOWED = {"errors": set(), "redaction": set(), "labels": set(), "layout": set(), "metric_names": set(),
                "sweep_grid": set(),
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
    assert "Config" in config_names_imported(PACKAGE / "experiments" / "execution" / "run.py")


# --------------------------------------------------------------------------------------
# No import circle between modules (issue 39): a circle makes the import order matter and hides which module owns
# what. Imports inside functions count; imports under `if TYPE_CHECKING:` (annotations only) do not.
# --------------------------------------------------------------------------------------

MODULES = {".".join(_module_name(p)): p for p in SOURCES if _module_name(p)}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _existing(parts: list[str]) -> str | None:
    """The longest prefix of `parts` that is one of our modules."""
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts = parts[:-1]
    return None


def module_imports(name: str, source: str | None = None) -> set[str]:
    """Our modules (dotted, below finetune_compare) that module `name` imports at run time."""
    path = MODULES.get(name) or PACKAGE.joinpath(*name.split(".")).with_suffix(".py")
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8") if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = (package[: len(package) - (node.level - 1)] if node.level > 1 else package) + (
                    node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("finetune_compare"):
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import x` / `from .pkg import module` name a module; else the target
                found.add(_existing(target + [alias.name]) if ".".join(target + [alias.name]) in MODULES
                          else _existing(target))
        elif isinstance(node, ast.Import):
            found.update(_existing(a.name.split(".")[1:]) for a in node.names if a.name.startswith("finetune_compare."))
    return found - {None, name}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, circles, counter = {}, {}, set(), [], [], [0]

    def visit(start):
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circle():
    graph = {name: module_imports(name) for name in MODULES}
    assert import_circles(graph) == [], "import circles: " + "; ".join(" <-> ".join(c) for c in import_circles(graph))


def test_the_circle_check_sees_a_circle_and_ignores_annotations_only_imports():
    graph = {name: module_imports(name) for name in MODULES}
    # a deliberate circle, read as if config/rules.py imported config/loading.py at run time (nothing is written)
    graph["config.rules"] = module_imports("config.rules", "def f():\n    from .loading import from_dict\n")
    assert ["config.core", "config.loading", "config.rules"] in import_circles(graph)
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .core import Config\n"
    assert module_imports("config.rules", typing_only) == set()


# --------------------------------------------------------------------------------------
# experiments/ by job (issue 39), low to high: a sub-package imports only its own and those below it.
#   study (the folder and the runs, before training) <- execution (train the runs) <- search (Optuna trials,
#   which are runs) <- planning (what a command costs: it probes runs and reads studies) <- commands
# --------------------------------------------------------------------------------------

EXPERIMENT_LAYERS = ["study", "execution", "search", "planning", "commands"]


def experiment_layer_violations(name: str, source: str | None = None) -> list[str]:
    parts = name.split(".")
    if parts[0] != "experiments" or len(parts) < 3:
        return []
    level = EXPERIMENT_LAYERS.index(parts[1])
    above = set(EXPERIMENT_LAYERS[level + 1:])
    return sorted(m for m in module_imports(name, source)
                  if m.startswith("experiments.") and m.split(".")[1] in above)


def test_experiments_has_only_its_sub_packages():
    loose = [p.name for p in (PACKAGE / "experiments").glob("*.py") if p.name != "__init__.py"]
    packages = sorted(p.name for p in (PACKAGE / "experiments").iterdir() if (p / "__init__.py").is_file())
    assert not loose and packages == sorted(EXPERIMENT_LAYERS), (loose, packages)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("experiments.") and n.count(".") >= 2))
def test_an_experiments_sub_package_imports_only_those_below_it(name):
    assert not experiment_layer_violations(name), f"{name} imports {experiment_layer_violations(name)}, above it"


def test_the_layer_check_catches_an_upward_import():
    probe = "from ..commands.compare import ComparisonExperiment\n"
    assert experiment_layer_violations("experiments.execution.run", probe) == ["experiments.commands.compare"]


# --------------------------------------------------------------------------------------
# The orchestration reads the config through its sections (config.training.batch_size), not by flat key through
# Config.__getattr__ (kept for the Python API: flat keys are what files, --set and Config(...) take).
# --------------------------------------------------------------------------------------

FLAT_READ = re.compile(r"\b(config|point|tuned)\.(\w+)\b(?!\s*\()")


def flat_config_reads(source: str) -> list[str]:
    from finetune_compare.config import config_keys

    keys = config_keys()
    return [m.group(0) for m in FLAT_READ.finditer(source) if m.group(2) in keys]


ORCHESTRATION = sorted([*(PACKAGE / "experiments").rglob("*.py"), PACKAGE / "cli.py", PACKAGE / "cli_output.py"])


@pytest.mark.parametrize("path", ORCHESTRATION, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_orchestration_reads_the_config_by_section(path):
    found = flat_config_reads(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(PACKAGE)} reads flat keys {found}: read them through their section"


def test_the_flat_read_check_sees_one():
    assert flat_config_reads("n = ctx.config.num_runs + config.training.num_epochs") == ["config.num_runs"]
