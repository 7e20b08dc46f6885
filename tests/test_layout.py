"""The shape of chalicelib/ that the code relies on, package by package: what each part may
import, who speaks to which outside system, no import cycle, and packages that load nothing a
request does not use."""

from __future__ import annotations

import ast
import json
import os
import re
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


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Every module a module imports, anywhere in it (a lazy import inside a function, or one
    under `if TYPE_CHECKING:`, is still a dependency), relative imports resolved; and, for
    `from m import n`, `m.n` too (n may be a module, or a name the checks look for). `source`
    stands in for the file's text (the checks' own test)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
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


def test_the_adapters_the_root_builds_do_not_need_it() -> None:
    """What keeps the exception above harmless: nothing the composition root imports leads back
    to it, so no cycle can pass through it."""
    edges = graph()
    seen, todo = set(), [i for i in edges[ROOT_MODULE] if part(i) != "config"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        assert module != ROOT_MODULE, "an adapter the root builds imports the root"
        todo += [i for i in edges.get(module, ()) if i in edges]
    assert ROOT_MODULE not in seen


def test_the_cycle_check_finds_a_cycle() -> None:
    """The checks above are only worth something if they fail on a real cycle."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


HTTP_LIBRARIES = (
    "urllib3",
    "requests",
    "httpx",
    "aiohttp",
    "http.client",
    "urllib.request",
    "socket",
)
DYNAMODB_OPERATIONS = (
    "put_item|get_item|update_item|delete_item|query|scan|batch_write_item|batch_get_item|"
    "transact_write_items|transact_get_items"
)
# An operation named as a string (the store's one door takes its name), or called on a client.
DYNAMODB_CALL = re.compile(
    rf"""["']({DYNAMODB_OPERATIONS.replace("query|", "")})["']|\.({DYNAMODB_OPERATIONS})\("""
)


def test_only_two_clients_speak_http_and_only_the_store_speaks_dynamodb() -> None:
    http, speakers, dynamodb, clients = set(), set(), set(), set()
    for name, path in modules().items():
        text, imported = path.read_text(), imports_of(path)
        if "HttpClient(" in text and name != "chalicelib.http.client":
            http.add(name)
        if any(i == lib or i.startswith(lib + ".") for i in imported for lib in HTTP_LIBRARIES):
            speakers.add(name)
        if DYNAMODB_CALL.search(text):
            dynamodb.add(name)
        if re.search(r"""["']dynamodb["']""", text):
            clients.add(name)
    # Fuse's client, and the one sender of deliveries to integrations' receivers.
    assert http == {"chalicelib.fuse.client", "chalicelib.deliveries.sender"}
    # The HTTP library and the network are held by http/ alone: its client, and the checks of
    # where a delivery may go.
    assert speakers == {"chalicelib.http.client", "chalicelib.http.addresses"}
    assert "chalicelib.store.table" in dynamodb
    assert all(part(module) == "store" for module in dynamodb), dynamodb
    assert clients == {"chalicelib.config.dependencies"}  # where the one client is made


def test_the_checks_see_what_a_module_imports_and_calls() -> None:
    """The layout checks read imports anywhere, relative ones resolved, and DynamoDB calls in
    either quotes: a lazy `from . import x` cannot slip past them."""
    lazy = "def f():\n    from ..results import callbacks\n    from . import ids\n"
    found = imports_of(PACKAGE / "placing" / "lists.py", source=lazy)
    assert {"chalicelib.results.callbacks", "chalicelib.placing.ids"} <= found
    assert part("chalicelib.placing.calls") == "placing"
    assert part("chalicelib.errors") == "errors"
    assert DYNAMODB_CALL.search("client.put_item(Item=x)")
    assert DYNAMODB_CALL.search("request('delete_item', Key=k)")
    assert not DYNAMODB_CALL.search('auth = "query"')


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
    io = ("botocore", "boto3", "aws_lambda_powertools", "os", "sys", "pathlib", "subprocess")
    io += ("threading", "concurrent", *HTTP_LIBRARIES)
    for module, path in modules().items():
        if part(module) in allowed and module != "chalicelib":
            assert chalicelib_imports(module) <= allowed, module
            reached = [i for i in imports_of(path) for x in io if i == x or i.startswith(x + ".")]
            assert not reached, (module, reached)
            assert "open(" not in path.read_text(), module


def test_the_store_imports_no_flow_and_no_configuration() -> None:
    for module in graph():
        if part(module) == "store":
            assert chalicelib_imports(module) <= {"store", *VALUES, *OBSERVABILITY}, module


def test_packages_import_nothing_on_their_own() -> None:
    """Every __init__.py is a docstring: importing a package loads none of its modules, so a
    cold request loads only what it uses."""
    for path in PACKAGE.rglob("__init__.py"):
        body = ast.parse(path.read_text()).body
        assert len(body) == 1, path
        assert isinstance(body[0], ast.Expr), path
        assert isinstance(body[0].value, ast.Constant), path
        assert isinstance(body[0].value.value, str), path


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


# Exactly what a cold POST /calls loads of the bridge: nothing of results, lists, hooks, the
# reconciler or the deliveries beyond their queue (which the collaborators hold).
COLD_POST_CALLS = {
    "chalicelib",
    "chalicelib.admission",
    "chalicelib.admission.calls",
    "chalicelib.campaigns",
    "chalicelib.config",
    "chalicelib.config.dependencies",
    "chalicelib.config.integrations",
    "chalicelib.config.parameters",
    "chalicelib.config.settings",
    "chalicelib.consent",
    "chalicelib.consent.calling",
    "chalicelib.consent.hours",
    "chalicelib.consent.schedule",
    "chalicelib.consent.zones",
    "chalicelib.errors",
    "chalicelib.fuse",
    "chalicelib.fuse.callback_urls",
    "chalicelib.fuse.client",
    "chalicelib.fuse.form",
    "chalicelib.fuse.responses",
    "chalicelib.http",
    "chalicelib.http.client",
    "chalicelib.http.deadlines",
    "chalicelib.http.standard_webhooks",
    "chalicelib.integrations",
    "chalicelib.integrations.callers",
    "chalicelib.logs",
    "chalicelib.metrics",
    "chalicelib.placing",
    "chalicelib.placing.calls",
    "chalicelib.placing.idempotency",
    "chalicelib.placing.ids",
    "chalicelib.placing.pacing",
    "chalicelib.placing.replies",
    "chalicelib.queues",
    "chalicelib.records",
    "chalicelib.results",
    "chalicelib.results.publisher",
    "chalicelib.store",
    "chalicelib.store.calls",
    "chalicelib.store.items",
    "chalicelib.store.numbers",
    "chalicelib.store.table",
    "chalicelib.timestamps",
    "chalicelib.validation",
    "chalicelib.validation.call_request",
    "chalicelib.validation.call_settings",
    "chalicelib.validation.fields",
    "chalicelib.validation.json_body",
    "chalicelib.validation.phones",
}


def test_a_cold_post_calls_imports_only_its_own_modules() -> None:
    """app.py imports the modules of every route but POST /calls on first use: a cold start of
    the call a CRM waits on loads exactly these of the bridge, and neither csv nor defusedxml."""
    probe = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {m for m in loaded if m.split(".")[0] == "chalicelib"} == COLD_POST_CALLS
    assert not loaded & {"csv", "defusedxml"}
