"""The structure the code is held to: no import cycles, a catalog read without Keras, unchanged models."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import garden
from garden.catalog import CATALOG
from model_figures import FIGURES, figures

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("garden", "deploy", "edge_app")


def unit(module):
    """The unit a module belongs to: a subpackage of garden (``garden.train``), a top-level module of
    garden (``garden.registry``), the ``garden`` package itself, ``deploy`` or ``edge_app``."""
    parts = module.split(".")
    if parts[0] != "garden":
        return parts[0]
    return ".".join(parts[:2])


def module_name(path):
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path):
    """Every module an ``import`` statement in ``path`` names, at any depth (inside functions too)."""
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield f"{base}.{node.module}" if node.module else base
            else:
                yield node.module


def import_graph():
    graph = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            source = unit(module_name(path))
            for target in imported(path):
                if target.split(".")[0] in PACKAGES and unit(target) != source:
                    graph.setdefault(source, set()).add(unit(target))
    return graph


def find_cycle(graph):
    """A list of units that import each other round in a circle, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_the_packages():
    graph = import_graph()
    assert "garden.cli" in graph and "deploy" in graph  # the walk found the imports it must judge
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_garden_does_not_import_deploy_or_the_edge_app():
    graph = import_graph()
    reached = {target for source, targets in graph.items() if source.startswith("garden") for target in targets}
    assert not reached & {"deploy", "edge_app"}
    assert not graph.get("edge_app")


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["models", "--task", "segmentation"]])
def test_listing_needs_no_keras(argv):
    """``garden models`` and ``garden --help`` answer where importing Keras (or TensorFlow) fails."""
    code = (
        "import sys; sys.modules['keras'] = None; sys.modules['tensorflow'] = None\n"
        f"from garden.cli import main; sys.exit(main({argv!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    if argv[0] == "models":
        listed = [line.split()[0] for line in result.stdout.splitlines()]
        expected = garden.list_models(argv[2] if len(argv) > 2 else None)
        assert listed == expected
    else:
        assert "export" in result.stdout and "train" in result.stdout


def test_catalog_descriptions_are_the_builders_own():
    for name, entry in CATALOG.items():
        builder = garden.registry.get_entry(name).builder
        assert (builder.__doc__ or "").strip().splitlines()[0] == entry.description, name


RECORDED = json.loads(FIGURES.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECORDED))
def test_model_figures_unchanged(name):
    """Parameters, multiply-adds and layer names of every model as recorded before the restructuring."""
    assert figures(name) == RECORDED[name]
