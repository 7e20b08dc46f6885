"""The shape of chalicelib/ that the code relies on, package by package: what each part may
import, who speaks to which outside system, no import cycle, and packages that load nothing a
request does not use."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "chalicelib"
# The shared values at the top of chalicelib/: what every part may import.
VALUES = {"errors", "records", "timestamps", "campaigns"}
OBSERVABILITY = {"logs", "metrics"}
# The composition root: it names every adapter it builds, and every part names it for its type.
ROOT_MODULE = "chalicelib.config.dependencies"
MAX_TOP_LEVEL_MODULES = 8
MAX_MODULE_LINES = 350


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


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(path) & set(found) for name, path in found.items()}


def part(module: str) -> str:
    """`chalicelib.placing.calls` -> `placing`; a top-level module is a part of its own."""
    return module.split(".")[1] if module.count(".") else module


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


def chalicelib_imports(module: str) -> set[str]:
    return {part(i) for i in graph()[module] if i != "chalicelib"}


def test_chalicelib_has_no_import_cycle() -> None:
    assert find_cycle(graph()) is None


def test_the_parts_import_each_other_one_way() -> None:
    """Between packages too, imports go one way: a part never needs one that needs it. The one
    exception is the composition root, whose imports of the adapters it builds are left out."""
    parts: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph().items():
        if module == ROOT_MODULE:
            continue
        parts[part(module)] |= {part(i) for i in imported} - {part(module), "chalicelib"}
    assert find_cycle(parts) is None, find_cycle(parts)


def test_the_cycle_check_finds_a_cycle() -> None:
    """The checks above are only worth something if they fail on a real cycle."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_two_clients_speak_http_and_only_the_store_speaks_dynamodb() -> None:
    http, speakers, dynamodb = set(), set(), set()
    for name, path in modules().items():
        imported = imports_of(path)
        if "chalicelib.http.client.HttpClient" in imported:
            http.add(name)
        if any(i == "urllib3" or i.startswith(("urllib3.", "requests")) for i in imported):
            speakers.add(name)
        # Operation names as strings: "query" alone is also an integration's auth scheme.
        operations = ('"put_item"', '"get_item"', '"update_item"', '"transact_write_items"')
        if any(op in path.read_text() for op in operations):
            dynamodb.add(name)
    # Fuse's client, and the one sender of deliveries to integrations' receivers.
    assert http == {"chalicelib.fuse.client", "chalicelib.deliveries.sender"}
    assert speakers == {"chalicelib.http.client"}  # the one module that holds the HTTP library
    assert dynamodb
    assert all(part(module) == "store" for module in dynamodb), dynamodb


def test_placing_does_not_import_results() -> None:
    """Placing a call never depends on how its results are received (results/ may read
    placing's ids: a list's result finds its contact's call by them)."""
    for module in graph():
        if part(module) == "placing":
            assert "results" not in chalicelib_imports(module), module


def test_values_and_validation_import_no_configuration_and_no_io() -> None:
    """Validation is pure, and the shared values are values: neither reaches configuration,
    SSM, DynamoDB, HTTP or any other part."""
    allowed = VALUES | {"validation"}
    io = ("botocore", "boto3", "urllib3", "requests", "aws_lambda_powertools")
    for module, path in modules().items():
        if part(module) in allowed and module != "chalicelib":
            assert chalicelib_imports(module) <= allowed, module
            assert not [i for i in imports_of(path) if i.startswith(io)], module


def test_the_store_imports_no_flow_and_no_configuration() -> None:
    for module in graph():
        if part(module) == "store":
            assert chalicelib_imports(module) <= {"store", *VALUES, *OBSERVABILITY}, module


def test_packages_import_nothing_on_their_own() -> None:
    """Every __init__.py is a docstring: importing a package loads none of its modules, so a
    cold request loads only what it uses."""
    for path in PACKAGE.rglob("__init__.py"):
        body = ast.parse(path.read_text()).body
        assert all(isinstance(n, ast.Expr) for n in body), path
        assert ast.get_docstring(ast.parse(path.read_text())), path


def test_the_folders_are_the_parts_and_modules_stay_small() -> None:
    top = [p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(p.name for p in top)
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES, path


def public_names(path: Path) -> set[str]:
    """What a module defines (not imports) at its top level, bar private names."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            for target in node.targets:
                if isinstance(target, ast.Tuple):
                    names |= {e.id for e in target.elts if isinstance(e, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_") and name != "__all__"}


def test_no_two_modules_define_the_same_name() -> None:
    """One name, one meaning: a name defined in two modules would mean two things (or one thing
    twice, which should live once)."""
    where: dict[str, list[str]] = defaultdict(list)
    for name, path in modules().items():
        for defined in public_names(path):
            where[defined].append(name)
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert not twice, twice


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
        "chalicelib.deliveries.attempts",
        "chalicelib.deliveries.queueing",
        "chalicelib.fuse.bulk_form",
        "chalicelib.integrations.signatures",
        "chalicelib.placing.cancels",
        "chalicelib.placing.events",
        "chalicelib.placing.lists",
        "chalicelib.placing.webhooks",
        "chalicelib.reading.calls",
        "chalicelib.reading.lists",
        "chalicelib.results.callbacks",
        "chalicelib.results.reconciler",
        "chalicelib.validation.list_request",
        "csv",
        "defusedxml",
    }
    assert not loaded & others, loaded & others
