"""CPU-bound work (parsing, validating and planning from untrusted text) off the event loop.

A plan can take seconds to validate (up to ``engine.validate.VALIDATION_TIME_BUDGET_SECONDS``), and while it
does, an event loop running it would answer nothing: no Slack acknowledgement, no health check. The work runs
in a small pool of its own rather than the loop's default executor, which other libraries use for short
blocking calls (DNS lookups) that must not queue behind a validation, and so that no more than a couple of
threads ever compete with the loop for the interpreter.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 2

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cloudops-cpu")
        return _executor


async def off_loop(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in the pool, with the caller's context variables, as ``asyncio.to_thread`` does."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)
