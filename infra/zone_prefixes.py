"""`python -m infra.zone_prefixes`: writes chalicelib/consent/zone_prefixes.json, the time zones
of phone numbers by prefix, from libphonenumber's data.

The bridge depends on phonenumberslite, which leaves out libphonenumber's time-zone data, so the
data is carried here: this downloads the full `phonenumbers` wheel of the very version of
phonenumberslite installed (the same data release as the metadata that parses the numbers),
reads the data out of it without installing or importing it (`ast`, not `exec`), and writes it
compactly. A test checks the file's version against the installed phonenumberslite, so a bump
of the dependency fails until this is run again.

    python -m infra.zone_prefixes [--wheel phonenumbers-X.Y.Z-py2.py3-none-any.whl]

Attribution: the data is libphonenumber's (Copyright (C) 2011 and later The Libphonenumber
Authors; https://github.com/google/libphonenumber), as packaged by the `phonenumbers` Python
port (https://github.com/daviddrysdale/python-phonenumbers), licensed under the Apache License,
Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0). The written file is a derived, reshaped
copy of phonenumbers/tzdata (ICU's "Etc/Unknown" left out) and names its source and licence.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "chalicelib" / "consent" / "zone_prefixes.json"
PACKAGE = "phonenumbers/tzdata/"
UNKNOWN = "Etc/Unknown"  # ICU's "no zone": as no entry
SOURCE = (
    "libphonenumber (https://github.com/google/libphonenumber) time-zone data, "
    "via the phonenumbers wheel's phonenumbers/tzdata; Copyright (C) The Libphonenumber "
    "Authors; Apache License 2.0 (http://www.apache.org/licenses/LICENSE-2.0); "
    "regenerate with python -m infra.zone_prefixes"
)


def download_wheel(release: str, folder: Path) -> Path:
    """The pure-Python wheel of `phonenumbers==release`, from the package index pip uses."""
    command = [sys.executable, "-m", "pip", "download", f"phonenumbers=={release}"]
    command += ["--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"]
    subprocess.run([*command, str(folder)], check=True)
    (wheel,) = folder.glob(f"phonenumbers-{release}-*.whl")
    return wheel


def literal(node: ast.expr) -> Any:
    """A constant of the data files: strings (old releases wrap them in `u('...')`), ints, and
    tuples and dicts of them. Anything else is refused: the file is read, never run."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "u":
        (argument,) = node.args
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
    if isinstance(node, ast.Tuple):
        return tuple(literal(element) for element in node.elts)
    if isinstance(node, ast.Dict):
        return {literal(k): literal(v) for k, v in zip(node.keys, node.values, strict=True) if k}
    raise ValueError(f"unexpected expression in the time-zone data: {ast.dump(node)[:80]}")


def assignments(source: str) -> dict[str, ast.expr]:
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found[target.id] = node.value
    return found


def read_wheel(wheel: Path) -> tuple[dict[str, tuple[str, ...]], int]:
    """The prefix -> zones mapping and the longest prefix, as phonenumbers/tzdata defines them:
    __init__.py names the data modules (`from .data0 import data`) and TIMEZONE_LONGEST_PREFIX."""
    with zipfile.ZipFile(wheel) as archive:
        init = archive.read(PACKAGE + "__init__.py").decode()
        modules = [
            node.module
            for node in ast.parse(init).body
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        ]
        mapping: dict[str, tuple[str, ...]] = {}
        for module in modules:
            source = archive.read(f"{PACKAGE}{module}.py").decode()
            mapping.update(literal(assignments(source)["data"]))
    longest = literal(assignments(init)["TIMEZONE_LONGEST_PREFIX"])
    if not mapping or max(map(len, mapping)) != longest:
        raise ValueError("the wheel's time-zone data does not match its longest prefix")
    return mapping, longest


def build(mapping: dict[str, tuple[str, ...]], longest: int, release: str) -> dict[str, Any]:
    """Zone names once, in a sorted list; each prefix as the indexes of its zones ("3,17"). A
    prefix of only Etc/Unknown stays, empty: it must still hide a shorter prefix's zones."""
    zones = sorted({zone for names in mapping.values() for zone in names} - {UNKNOWN})
    index = {zone: str(i) for i, zone in enumerate(zones)}
    prefixes = {
        prefix: ",".join(index[zone] for zone in mapping[prefix] if zone != UNKNOWN)
        for prefix in sorted(mapping)
    }
    return {
        "libphonenumber": release,
        "source": SOURCE,
        "longest_prefix": longest,
        "zones": zones,
        "prefixes": prefixes,
    }


def write(data: dict[str, Any], output: Path = OUTPUT) -> int:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    output.write_text(text)
    return len(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a phonenumbers wheel already downloaded")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    release = version("phonenumberslite")
    with tempfile.TemporaryDirectory() as folder:
        wheel = args.wheel or download_wheel(release, Path(folder))
        if f"phonenumbers-{release}-" not in wheel.name:
            raise SystemExit(f"{wheel.name} is not phonenumbers {release}, the installed lite")
        mapping, longest = read_wheel(wheel)
    size = write(build(mapping, longest, release), args.output)
    print(f"wrote {args.output} ({len(mapping)} prefixes, {size} bytes) from {wheel.name}")


if __name__ == "__main__":
    main()
