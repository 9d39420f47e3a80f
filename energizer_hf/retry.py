"""One retry policy with exponential back-off, for every client that talks to a server.

The Hub client (:mod:`energizer_hf.revisions.hub`) and the Label Studio oracle
(:mod:`energizer_hf.oracles.label_studio`) both call :func:`call_with_retries`; they only
say which errors are worth another attempt and how to report the last one.

>>> calls = []
>>> def flaky():
...     calls.append(1)
...     if len(calls) < 3:
...         raise ConnectionError("dropped")
...     return "ok"
>>> call_with_retries(flaky, RetryPolicy(attempts=5, backoff=0.0), retryable=lambda e: True)
'ok'
>>> len(calls)
3
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["RetryError", "RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to try.

    Attributes:
        attempts: calls in all (>= 1; 1 means no retry).
        backoff: seconds before the second attempt; doubled before each later one.
        max_backoff: the longest single wait.
        deadline: give up when the next wait would end more than this many seconds after
            the first attempt started (``None``: no deadline).
        sleep: the wait function (tests pass a fake one).
    """

    attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    deadline: float | None = None
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)


class RetryError(Exception):
    """The call failed for good: ``error`` is the last failure, after ``attempts`` calls.

    ``exhausted`` is ``True`` when the error was retryable but the attempts (or the
    deadline) ran out, ``False`` when it was not worth retrying.
    """

    def __init__(self, error: BaseException, attempts: int, elapsed: float, exhausted: bool) -> None:
        super().__init__(f"{type(error).__name__} after {attempts} attempt(s)")
        self.error, self.attempts, self.elapsed, self.exhausted = error, attempts, elapsed, exhausted


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    retryable: Callable[[BaseException], bool],
    catch: tuple[type[BaseException], ...] = (Exception,),
    on_retry: Callable[[BaseException, int, float], Any] | None = None,
    check: Callable[[], T | None] | None = None,
) -> T:
    """``fn()``, called again after a wait while it raises a ``retryable`` error.

    Args:
        fn: the call.
        policy: attempts, waits and deadline.
        retryable: whether an error is worth another attempt.
        catch: the errors handled here; any other propagates at once, untouched.
        on_retry: told ``(error, attempt, delay)`` before each wait (e.g. to log).
        check: asked after each wait, before the next attempt; a non-``None`` answer is
            returned instead of calling ``fn`` again (e.g. "the commit landed after all").

    Raises:
        RetryError: the last error (``.error``), with the number of attempts; raised
            without chaining, so that a message with a secret is never printed by accident.
    """
    if policy.attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {policy.attempts}.")
    start = time.monotonic()
    attempt = 0
    while True:
        try:
            return fn()
        except catch as err:
            last: BaseException = err
            attempt += 1
            elapsed = time.monotonic() - start
            if not retryable(err):
                raise RetryError(err, attempt, elapsed, exhausted=False) from None
            delay = policy.delay(attempt)
            late = policy.deadline is not None and elapsed + delay > policy.deadline
            if attempt >= policy.attempts or late:
                raise RetryError(err, attempt, elapsed, exhausted=True) from None
        if on_retry is not None:
            on_retry(last, attempt, delay)
        policy.sleep(delay)
        if check is not None:
            found = check()
            if found is not None:
                return found
