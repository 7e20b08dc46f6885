"""The shape of chalicelib/ that the code relies on: no import cycles, and one module per
outside system (only the Fuse client speaks HTTP, only the store speaks DynamoDB)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chalicelib"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """What a module imports at its top level, `if TYPE_CHECKING:` blocks included (a cycle
    hidden from the interpreter is still two modules that need each other)."""
    names: set[str] = set()
    top = ast.parse(path.read_text()).body
    for node in [*top, *(n for s in top if isinstance(s, ast.If) for n in s.body)]:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path) & set(modules) for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A path of imports that comes back to where it started, if there is one."""
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(edges.get(name, ())):
            if name.startswith(imported + "."):  # a package's own __init__
                continue
            if cycle := visit(imported, (*path, name)):
                return cycle
        done.add(name)
        return None

    for module in sorted(edges):
        if cycle := visit(module, ()):
            return cycle
    return None


def test_chalicelib_has_no_import_cycle() -> None:
    assert find_cycle(graph()) is None


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check above is only worth something if it fails on a real cycle."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_two_clients_speak_http_and_only_the_store_speaks_dynamodb() -> None:
    http, dynamodb, speakers = set(), set(), set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if any(i == "chalicelib.http.client" for i in imports_of(path)):
            http.add(module_name(path))
        if any(i == "urllib3" or i.startswith(("urllib3.", "requests")) for i in imports_of(path)):
            speakers.add(module_name(path))
        # Operation names as strings: "query" alone is also an integration's auth scheme.
        operations = ('"put_item"', '"get_item"', '"update_item"', '"transact_write_items"')
        if any(op in text for op in operations):
            dynamodb.add(module_name(path))
    # Fuse's client, and the one sender of results to integrations' receivers.
    assert http == {"chalicelib.fuse.client", "chalicelib.deliveries.sender"}
    assert speakers == {"chalicelib.http.client"}  # the one module that holds the HTTP library
    assert all(module.startswith("chalicelib.store.") for module in dynamodb), dynamodb
    assert dynamodb


def test_a_cold_post_calls_imports_only_its_own_modules() -> None:
    """app.py imports the modules of every route but POST /calls on first use: a cold start of
    the call a CRM waits on does not pay for results, lists (their validation, their CSV), hooks
    or the reconciler."""
    probe = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "chalicelib.placing.calls" in loaded
    others = {
        "chalicelib.api_document",
        "chalicelib.placing.cancels",
        "chalicelib.placing.events",
        "chalicelib.placing.webhooks",
        "chalicelib.fuse.bulk_form",
        "chalicelib.placing.lists",
        "chalicelib.validation.list_request",
        "chalicelib.reading.calls",
        "chalicelib.results.callbacks",
        "chalicelib.results.reconciler",
        "csv",
        "defusedxml",
    }
    assert not loaded & others, loaded & others
