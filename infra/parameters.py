"""The bridge's SSM parameters: which exist, which are secret, and how they are written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameter:
    name: str  # under the stage's prefix
    question: str
    secret: bool = False  # a SecureString, asked without echo
    optional: bool = False
    generated: bool = False  # left empty, a random value is made


PARAMETERS = (
    Parameter("fuse/email", "Fuse login email"),
    Parameter("fuse/developer_key", "Fuse developer key (My Account, Developer keys)", secret=True),
    Parameter("campaigns/default/application_id", "Fuse application id of the default campaign"),
    Parameter("campaigns/default/deployment_id", "Fuse deployment id of the default campaign"),
    Parameter(
        "campaigns/default/caller_id",
        "Default caller id, a number of your Plum account (empty: callers must send one)",
        optional=True,
    ),
    Parameter(
        "campaigns/default/caller_ids",
        "Caller ids a request may give, comma-separated (empty: any valid number)",
        optional=True,
    ),
    Parameter(
        "callback_secret", "Callback secret (empty: generate one)", secret=True, generated=True
    ),
    Parameter(
        "id_secret",
        "Id secret, set once and never rotated (empty: generate one)",
        secret=True,
        generated=True,
    ),
    Parameter(
        "api_tokens",
        "API tokens, comma-separated (empty: generate one)",
        secret=True,
        generated=True,
    ),
    Parameter(
        "admin_tokens",
        "Admin tokens, comma-separated (empty: generate one)",
        secret=True,
        generated=True,
    ),
)
SECURE = frozenset(p.name for p in PARAMETERS if p.secret)
# An integration's credentials (integrations/{name}/...): always SecureString.
SECURE_SUFFIXES = ("/token", "/signing_secret")


def is_secret(name: str) -> bool:
    return name in SECURE or (name.startswith("integrations/") and name.endswith(SECURE_SUFFIXES))


def put_parameters(ssm: Any, prefix: str, values: Mapping[str, str]) -> None:
    """Writes `values` (names relative to the prefix); secrets as SecureString."""
    for name, value in values.items():
        ssm.put_parameter(
            Name=f"{prefix.rstrip('/')}/{name}",
            Value=value,
            Type="SecureString" if is_secret(name) else "String",
            Overwrite=True,
        )
