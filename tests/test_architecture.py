"""The folder tree is the architecture: packages in layers, imports running one way only.

Every ``from strongroom… import …`` in the package, lazy ones inside functions included,
is read with ``ast``; a module may import from its own package or from a package of a
lower layer, never from a higher one, and no two modules import each other, directly or
through others. ``docs/architecture.md`` draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import strongroom

SRC = Path(strongroom.__file__).parent

# Lowest first. A package (or top-level module) may import from its own layer's
# vocabulary only where named together below; otherwise only from lower layers.
LAYERS = [
    {"errors"},
    {"ids", "humanize"},
    {"config"},
    {"scopes", "progress_model"},
    {"policy"},
    {"fs"},
    {"repo"},
    {"db"},
    {"backup", "check"},
    {"inspect"},
    {"restore"},
    {"exchange", "offsite"},
    {"service"},
    {"demo"},
    {"web"},
    {"cli"},
]
LAYER_OF = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("strongroom", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def imported_modules(path: Path) -> set[str]:
    """The strongroom modules one file imports (a name imported from a package counts as
    the submodule when there is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package uses absolute ones")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "strongroom":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "strongroom"}
    return found


FILES = sorted(SRC.rglob("*.py"))
MODULES = {module_name(path) for path in FILES}
GRAPH = {module_name(path): imported_modules(path) - {module_name(path)} for path in FILES}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_and_top_level_module_has_a_layer():
    units = {unit_of(module) for module in MODULES} - {"__init__"}
    assert units <= set(LAYER_OF), f"not placed in a layer: {sorted(units - set(LAYER_OF))}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_layer(module):
    mine = unit_of(module)
    upward = [
        target for target in sorted(GRAPH[module])
        if unit_of(target) not in (mine, "__init__") and LAYER_OF[unit_of(target)] >= LAYER_OF.get(mine, -1)
    ]
    assert not upward, f"{module} imports from its own or a higher layer: {upward}"


def test_no_two_modules_import_each_other_directly_or_through_others():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target in GRAPH and target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_core_knows_nothing_of_the_web_or_the_terminal():
    faces = {"flask", "click", "werkzeug", "jinja2", "waitress"}
    for path in FILES:
        if unit_of(module_name(path)) in {"web", "cli", "demo"}:
            continue
        tree = ast.parse(path.read_text())
        names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        names |= {node.module.split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.module}
        assert not names & faces, f"{path.relative_to(SRC)} imports {sorted(names & faces)}"
