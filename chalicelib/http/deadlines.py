"""A total deadline on a blocking call, whatever it blocks on.

Socket timeouts bound each read, not a request: a server that sends one byte a second holds a
request as long as it likes. `within` runs the call on a worker thread and stops waiting at the
deadline. The worker is abandoned, not killed (Python cannot kill a thread): its result is never
read, and the pool keeps spares so a straggler does not delay the next call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from chalicelib.logs import logger

WORKERS = 8  # one call at a time per invocation; the rest are room for stragglers
Value = TypeVar("Value")
_pool: list[ThreadPoolExecutor] = []  # made on first use, one per container


class DeadlinePassed(Exception):
    """The call was still running when its deadline came; it is abandoned."""


def within(
    seconds: float,
    call: Callable[[], Value],
    late: Callable[[Value], None] | None = None,
) -> Value:
    """`call()`'s result, or DeadlinePassed once `seconds` have gone by. When the abandoned call
    does finish after all, `late` gets its result (on the worker thread; its failures are
    logged, never raised), so what it learnt is not lost."""
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="deadline"))
    future = _pool[0].submit(call)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        if not future.cancel() and late is not None:
            future.add_done_callback(functools.partial(_deliver_late, late))
        raise DeadlinePassed from None


def _deliver_late(late: Callable[[Value], None], future: Future[Value]) -> None:
    if future.exception() is not None:
        return
    try:
        late(future.result())
    except Exception:
        logger.exception("a late answer could not be used")
