"""The API and the workers share Celery wiring without importing each other in a circle, and
the API never builds the worker's Celery app (nor one from the environment) when it was given
its settings."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.support.stack import ROOT

PACKAGES = ("app", "workers")

# A fresh process, so nothing imported by the test session counts. The environment names a
# broker the settings given do not: an app built from the environment would carry it.
API_ONLY = """
import sys

import celery._state

from app.config import Settings
from app.main import create_app
from app.queue import TaskQueue

settings = Settings(broker_url=None, data_dir=sys.argv[1])
assert settings.celery_broker_url == "filesystem://"
create_app(settings)
queue = TaskQueue(settings)
leaked = sorted(m for m in sys.modules if m == "workers" or m.startswith("workers."))
assert leaked == [], leaked
# Every Celery app of this process (a weak set; the private name is Celery's only registry).
brokers = [a.conf.broker_url for a in list(celery._state._apps) if a.main == "hone"]
assert brokers == ["filesystem://"], brokers
queue.close()
print("ok")
"""


def test_the_api_builds_only_its_own_celery_app_from_its_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env.update(HONE_BROKER_URL="redis://from-the-environment.invalid:6379/0", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", API_ONLY, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Project modules imported anywhere in `tree` (inside functions too: an import there runs
    as surely, only later), except under `if TYPE_CHECKING:`."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        stack.extend(ast.iter_child_nodes(node))
    return found & modules


def _import_graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    return {
        name: _imports(ast.parse(path.read_text(), str(path)), set(modules)) - {name}
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_the_api_and_the_workers() -> None:
    graph = _import_graph()
    for name in ("app.queue", "app.celery_factory", "workers.celery_app", "workers.reaper"):
        assert name in graph  # the modules of the cycle this guards against still exist
    assert _cycles(graph) == []


def test_the_celery_factory_is_a_leaf() -> None:
    assert _import_graph()["app.celery_factory"] <= {"app.config"}


def test_the_workers_use_no_api_service() -> None:
    graph = _import_graph()
    used = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith("workers.")
        for target in targets
        if target.endswith((".service", ".checks", ".endpoints"))
    }
    assert used == set()
