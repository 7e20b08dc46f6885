"""`make configure STAGE=...`: writes a stage's SSM parameters, asking for each value.

Secrets are asked without echo and written as SecureStrings; the callback secret and the tokens
can be generated. Generated tokens are shown once, here, for the operator to hand to the CRMs.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
from collections.abc import Callable

import boto3

from chalicelib.validation.phones import InvalidPhone, parse_phone
from infra.parameters import PARAMETERS, Parameter, put_parameters

Ask = Callable[[Parameter], str]


def ask_terminal(parameter: Parameter) -> str:
    prompt = f"{parameter.question}: "
    return (getpass.getpass(prompt) if parameter.secret else input(prompt)).strip()


def collect(ask: Ask, region: str = "US") -> tuple[dict[str, str], dict[str, str]]:
    """The values to write, and those that were generated (to show once)."""
    values: dict[str, str] = {}
    generated: dict[str, str] = {}
    for parameter in PARAMETERS:
        while True:
            value = ask(parameter)
            if not value and parameter.generated:
                value = generated[parameter.name] = secrets.token_urlsafe(32)
            if parameter.name.endswith("caller_id") and value:
                try:
                    value = parse_phone(value, region)
                except InvalidPhone as err:
                    print(f"  that caller id {err}; try again")
                    continue
            if value or parameter.optional:
                break
            print("  a value is needed")
        if value:
            values[parameter.name] = value
    return values, generated


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a stage's SSM parameters.")
    parser.add_argument("--stage", required=True, choices=["dev", "prod"])
    args = parser.parse_args()
    prefix = f"/fuse-bridge/{args.stage}"
    print(f"Writing the SSM parameters under {prefix} (Ctrl-C stops without writing).")
    values, generated = collect(ask_terminal)
    put_parameters(boto3.client("ssm"), prefix, values)
    print(f"Wrote {len(values)} parameters under {prefix}.")
    for name, value in generated.items():
        print(f"Generated {name}: {value}")


if __name__ == "__main__":
    main()
