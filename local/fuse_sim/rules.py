"""The field rules Fuse documents for its queue form (docs/fuse-contract.md, "Queueing a call"):
what the simulator refuses with 400, and so what the bridge must never send."""

from __future__ import annotations

import json
import re

PHONE = re.compile(r"^(tel:)?\+?\d{7,15}$")
ANI = re.compile(r"^\+?\d{7,15}$")
POSTD = re.compile(r"^[0-9*#,w]+$")


def field_problem(form: dict[str, str]) -> str | None:
    """Fuse's message for the first rule the form breaks; None when the form is valid."""
    problem = phone_problem(form.get("phone_number"))
    if problem:
        return problem
    for name in ("start_timestamp", "end_timestamp"):
        if name in form and not form[name].isdigit():
            return f"{name} must be a Unix timestamp."
    start, end = form.get("start_timestamp"), form.get("end_timestamp")
    if start and end and int(end) <= int(start):
        return "end_timestamp must be after start_timestamp."
    attempts = form.get("max_attempts")
    if attempts is not None:
        if not attempts.isdigit() or not 1 <= int(attempts) <= 10:
            return "max_attempts must be an integer from 1 to 10."
        if int(attempts) > 1 and "reattempt_wait" not in form:
            return "reattempt_wait is required when max_attempts is set."
    wait = form.get("reattempt_wait")
    if wait is not None and (not wait.isdigit() or not 60 <= int(wait) <= 86400):
        return "reattempt_wait must be between 60 and 86400 seconds."
    if "metadata" in form:
        try:
            metadata = json.loads(form["metadata"])
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            return "metadata must be a JSON object."
    if form.get("is_pci", "0") not in ("0", "1"):
        return "is_pci must be 0 or 1."
    url = form.get("result_url")
    if url is not None and not re.match(r"^https?://[^\s]+$", url):
        return "result_url must be a URL."
    return None


def phone_problem(value: str | None) -> str | None:
    if not value:
        return "phone_number is required."
    number, *params = value.split(";")
    if not PHONE.match(number):
        return "phone_number is invalid."
    seen = set()
    for param in params:
        name, _, param_value = param.partition("=")
        if name in seen or name not in ("ani", "postd"):
            return f"phone_number has an invalid parameter: {name}."
        seen.add(name)
        if not (ANI if name == "ani" else POSTD).match(param_value):
            return f"phone_number has an invalid {name} value."
    return None
