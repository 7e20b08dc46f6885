"""Consent applied to a list's contacts: each its own window (contacts of different windows go
to Fuse in different bulk requests), each counted against its number's cap; a contact consent
does not let ring is skipped with the reason, the others go. Apart from admission.py, so a cold
POST /calls loads nothing of lists."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from chalicelib.admission.calls import admit, give_back, number_key, suppressed, window_of
from chalicelib.config.parameters import Parameters
from chalicelib.config.settings import Settings
from chalicelib.errors import BridgeError, CallLimitReached, FieldError, PhoneSuppressed
from chalicelib.store.calls import CallStore
from chalicelib.validation.list_request import Contact, ListRequest, Skipped

COUNTERS = 8  # a list's contacts counted at once (boto3 clients are thread-safe)


def schedule_list(
    request: ListRequest, parameters: Parameters, settings: Settings, now: float
) -> ListRequest:
    """Each contact's window; a contact whose window holds no calling hour is skipped with the
    reason, as consent's other refusals are (see admit_contacts)."""
    shared = request.settings
    contacts: list[Contact] = []
    skipped = list(request.skipped)
    for contact in request.contacts:
        try:
            window = window_of(
                contact.phone,
                contact.timezone,
                shared,
                parameters=parameters,
                settings=settings,
                now=now,
                kind=contact.kind,
            )
        except BridgeError as err:
            if err.status >= 500:
                raise
            skipped.append(skipped_for(contact, err))
            continue
        own = (window.start_at, window.end_at)
        contacts.append(
            contact if own == (shared.start_at, shared.end_at) else replace(contact, window=own)
        )
    skipped.sort(key=lambda s: s.index)
    return replace(request, contacts=tuple(contacts), skipped=tuple(skipped))


def skipped_for(contact: Contact, err: BridgeError) -> Skipped:
    details = tuple(
        FieldError(f"contacts[{contact.index}].{d.field}", d.message) for d in err.details
    )
    return Skipped(
        contact.index, details or (FieldError(f"contacts[{contact.index}]", err.message),), err.code
    )


def admit_contacts(
    record_ids: dict[int, str],
    request: ListRequest,
    *,
    parameters: Parameters,
    settings: Settings,
    store: CallStore,
    now: float,
) -> ListRequest:
    """Each contact checked against the do-not-call list (100 a read) and counted (several at
    once); one refused is skipped with its reason."""
    keys = {c.index: number_key(parameters.id_secret, c.phone) for c in request.contacts}
    held = store.suppressions.suppressed_among(set(keys.values()))

    def one(contact: Contact) -> BridgeError | None:
        if keys[contact.index] in held:
            return suppressed()
        try:
            own = contact.window or (request.settings.start_at, request.settings.end_at)
            admit(
                record_ids[contact.index],
                contact.phone,
                replace(request.settings, start_at=own[0], end_at=own[1]),
                parameters=parameters,
                settings=settings,
                store=store,
                now=now,
                checked=True,
            )
        except (PhoneSuppressed, CallLimitReached) as err:
            return err
        return None

    with ThreadPoolExecutor(max_workers=COUNTERS) as pool:
        refusals = list(pool.map(one, request.contacts))  # list(): re-raises the first failure
    kept = [c for c, err in zip(request.contacts, refusals, strict=True) if err is None]
    skipped = [*request.skipped]
    skipped += [skipped_for(c, e) for c, e in zip(request.contacts, refusals, strict=True) if e]
    skipped.sort(key=lambda s: s.index)
    return replace(request, contacts=tuple(kept), skipped=tuple(skipped))


def give_back_contacts(
    ids: dict[int, str],
    request: ListRequest,
    *,
    parameters: Parameters,
    store: CallStore,
) -> None:
    """Each contact's count given back (several at once): its list was not placed."""
    with ThreadPoolExecutor(max_workers=COUNTERS) as pool:
        for contact in request.contacts:
            pool.submit(give_back, ids[contact.index], contact.phone, parameters, store)
