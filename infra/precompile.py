"""Finishes a deployment zip: bytecode for what a cold start imports, no optional native code.

Lambda's code folder is read-only, so Python compiles every imported module from source on every
cold start and can keep nothing. Shipping the .pyc files of what a cold start imports (measured
by importing the app from the unpacked zip, not guessed) removes that work: phonenumbers alone
compiles for about 75 ms. The rest, mostly phone-number data for other regions, stays source
only, to keep the zip small.

What nothing reads at run time is left out: type stubs (.pyi) and the installers' RECORD lists
of files (a package's METADATA and licence stay). Of the IANA rules `tzdata` carries (zoneinfo's
fallback when the runtime has none of its own), only the zones a number can be in (those of
libphonenumber's zone data, chalicelib/consent/zone_prefixes.json) and `Etc/` stay: the others
(aliases such as US/Eastern, zones no number maps to) would take the zip past 1.5 MB. A request
naming one of them is then refused 422 naming its `timezone`, where the runtime has no rules.

Compiled extensions that sit beside a pure-Python module of the same name (optional speedups;
none of today's run-time dependencies has one) are left out: the package stays pure Python, the
same for arm64 and x86_64.

    python -m infra.precompile build/prod/deployment.zip

The bytecode is written with unchecked hashes (the zip's timestamps mean nothing) and only by the
Python version the Lambda runs; with another one, nothing is added and the zip works as before.

The finished zip is reproducible, byte for byte: entries in name order, every time 1980-01-01,
the same permissions, and bytecode that names its source as Lambda sees it (/var/task/...), not
the build's temporary folder. The same source gives the same zip, so CloudFormation replaces a
function only when its code changed.
"""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
import tempfile
import zipfile
from importlib.util import cache_from_source
from pathlib import Path

RUNTIME = (3, 13)  # the functions' Runtime, python3.13, as infra/resources.json declares it
TASK_ROOT = "/var/task"  # where Lambda unpacks the zip
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
UNUSED = (".pyi", ".dist-info/RECORD")  # name endings
# Run inside the unpacked zip: what any function's cold start imports. app.py loads POST /calls'
# modules and each other route or handler its own on first use, so every chalicelib module is
# imported here, the XML result reader's defusedxml, and the phone parser's lazily loaded region
# data by parsing one number. Prints every loaded module's name and file.
PROBE = """
import importlib, json, os, pkgutil, sys
import app, chalicelib
for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(module.name)
import defusedxml.ElementTree
from chalicelib.validation.phones import parse_phone
parse_phone("+16175551234", os.environ.get("DEFAULT_PHONE_REGION", "US"))
print(json.dumps({name: os.path.realpath(m.__file__) for name, m in list(sys.modules.items())
    if getattr(m, "__file__", None)}))
"""


ZONE_FILES = "tzdata/zoneinfo/"


def unused_zone(name: str, kept: frozenset[str]) -> bool:
    """`tzdata/zoneinfo/US/Eastern`, when no number is in US/Eastern."""
    if not name.startswith(ZONE_FILES) or name.endswith("/") or name.endswith(".py"):
        return False
    zone = name.removeprefix(ZONE_FILES)
    return zone not in kept and not zone.startswith("Etc/") and zone != "UTC"


def numbers_zones(code: Path) -> frozenset[str]:
    """The zones libphonenumber's data maps numbers to, from the zip's own copy."""
    data = code / "chalicelib" / "consent" / "zone_prefixes.json"
    return frozenset(json.loads(data.read_text())["zones"]) if data.exists() else frozenset()


def has_pure_fallback(name: str, code: Path) -> bool:
    """`pkg/md.cpython-313-aarch64-linux-gnu.so` beside `pkg/md.py`."""
    if not name.endswith(".so"):
        return False
    stem = Path(name).name.split(".", 1)[0]
    return (code / Path(name).parent / f"{stem}.py").exists()


def loaded_modules(code: Path) -> dict[str, Path]:
    """Every module any function loads (name -> file), run from the unpacked zip at `code`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "BRIDGE_SSM_PREFIX": "/fuse-bridge/probe",
        "CALLS_TABLE": "probe",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {name: Path(file) for name, file in json.loads(result.stdout).items()}


def imported_modules(code: Path, skip: set[Path]) -> list[Path]:
    """The zip's .py files a cold start imports, with the left-out extensions already gone."""
    for path in skip:
        path.unlink()
    root = code.resolve()
    files = loaded_modules(code).values()
    return sorted({f for f in files if f.is_relative_to(root) and f.suffix == ".py"})


def add_bytecode(zip_path: Path) -> int:
    """Rewrites the zip with the cold start's bytecode added; returns how many files."""
    if sys.version_info[:2] != RUNTIME:
        print(
            f"precompile: Python {sys.version_info[0]}.{sys.version_info[1]} is not the "
            f"Lambda's {RUNTIME[0]}.{RUNTIME[1]}; the zip is left as it is"
        )
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        code = Path(scratch)
        with zipfile.ZipFile(zip_path) as archive:
            entries = archive.infolist()
            archive.extractall(code)
        zones = numbers_zones(code)
        kept = [
            e
            for e in entries
            if not has_pure_fallback(e.filename, code)
            and not e.filename.endswith(UNUSED)
            and not unused_zone(e.filename, zones)
        ]
        compiled = []
        for source in imported_modules(
            code, skip={code / e.filename for e in entries} - {code / e.filename for e in kept}
        ):
            target = Path(cache_from_source(str(source)))
            py_compile.compile(
                str(source),
                cfile=str(target),
                dfile=f"{TASK_ROOT}/{source.relative_to(code).as_posix()}",
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            compiled.append(target)
        files = {e.filename: code / e.filename for e in kept if not e.is_dir()}
        files.update({target.relative_to(code).as_posix(): target for target in compiled})
        write_reproducibly(zip_path, files)
    return len(compiled)


def write_reproducibly(zip_path: Path, files: dict[str, Path]) -> None:
    """The zip's entries in name order, with fixed times and permissions."""
    rewritten = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(rewritten, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.create_system = 3  # Unix, whatever builds it
            archive.writestr(info, files[name].read_bytes(), zipfile.ZIP_DEFLATED, compresslevel=9)
    rewritten.replace(zip_path)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    count = add_bytecode(Path(sys.argv[1]))
    print(f"precompile: added bytecode for {count} modules a cold start imports")


if __name__ == "__main__":
    main()
