"""The grader's imports run one way: each part imports only the parts below it, so no import
runs up the layers and none goes round in a cycle. A new module is placed in ``LAYERS``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "grader"

# Lowest first. A unit is a subpackage (``grader.stack``) or a top-level module (``grader.cli``).
LAYERS: list[set[str]] = [
    {"grader", "grader.errors", "grader.models", "grader.checkout", "grader.catalogue", "grader.contract"},
    {"grader.hygiene", "grader.cache", "grader.records", "grader.sandbox"},  # files, records, confinement
    {"grader.clock", "grader.stack"},  # the services and the API a scenario runs against
    {"grader.scenarios"},  # the probes, on any backend's stack
    {"grader.checks"},  # the catalogue of checks the scenarios declare
    {"grader.rubric"},
    {"grader.scoring", "grader.identity", "grader.diff", "grader.fetch"},
    {"grader.stack_phase"},  # the local backend's scenarios in their own network namespace
    {"grader.pipeline"},  # fetch, diff, backend and scenarios, score
    {"grader.report", "grader.progress"},
    {"grader.batch", "grader.compare"},
    {"grader.cli_help"},
    {"grader.cli"},
]


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST) -> set[str]:
    """Every grader module ``tree`` imports, at the top or inside a function alike."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "grader"}
        elif (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
              and node.module.split(".")[0] == "grader"):
            found.add(node.module)
            if node.module == "grader":  # ``from grader import errors`` imports grader.errors
                found |= {f"grader.{alias.name}" for alias in node.names
                          if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()}
    return found


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        edges.setdefault(source, set()).update(
            _unit(target) for target in _imported(ast.parse(path.read_text(), str(path))))
    return edges


def _layer_of() -> dict[str, int]:
    return {unit: level for level, units in enumerate(LAYERS) for unit in units}


def test_every_part_of_the_grader_has_a_layer():
    placed = _layer_of()
    assert sum(len(units) for units in LAYERS) == len(placed), "a unit is listed in two layers"
    assert set(_edges()) - set(placed) == set(), "place the new module in LAYERS"
    assert set(placed) - set(_edges()) == set(), "LAYERS names a unit that no longer exists"


def test_no_import_runs_up_the_layers_or_sideways():
    level = _layer_of()
    wrong = sorted(f"{source} (layer {level[source]}) imports {target} (layer {level[target]})"
                   for source, targets in _edges().items() for target in targets
                   if target != source and level[target] >= level[source])
    assert wrong == []


def test_the_reader_sees_imports_inside_functions_and_from_the_package():
    tree = ast.parse("def f():\n    from grader.stack.local import LocalBackend\n"
                     "from grader import errors, __version__\n")
    assert _imported(tree) == {"grader.stack.local", "grader", "grader.errors"}
