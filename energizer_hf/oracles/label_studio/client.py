"""The Label Studio server as the oracle sees it: the SDK client, one retry policy, named errors.

Connection errors and 5xx answers are retried with exponential back-off
(:mod:`energizer_hf.retry`) until ``max_retries`` attempts or ``retry_timeout`` seconds, then
:class:`~energizer_hf.oracles.label_studio.LabelStudioConnectionError`; a refused token is
:class:`~energizer_hf.oracles.label_studio.LabelStudioAuthError` at once. ``label-studio-sdk``
is imported on first use only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from energizer_hf.oracles.label_studio.annotations import (
    LabelStudioAuthError,
    LabelStudioConnectionError,
    LabelStudioError,
    detail,
    reason,
)
from energizer_hf.retry import RetryError, RetryPolicy, call_with_retries

__all__ = ["LabelStudioClient"]

log = logging.getLogger(__name__)


def _sdk() -> tuple[Any, Any, Any]:
    try:
        import httpx
        from label_studio_sdk import LabelStudio
        from label_studio_sdk.core.api_error import ApiError
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise LabelStudioError(
            "LabelStudioOracle needs label-studio-sdk: pip install 'energizer_hf[labelstudio]'."
        ) from err
    return LabelStudio, ApiError, httpx


class LabelStudioClient:
    """Calls to one Label Studio server, retried and mapped to named errors.

    Args:
        url / token: the server and its API token (kept in memory only).
        max_retries / retry_backoff / retry_timeout: the retry policy (attempts in all,
            first wait doubled each time up to 30 s, and the overall deadline in seconds).
        request_timeout: seconds one HTTP request may take.
    """

    def __init__(
        self, url: str, token: str, *, max_retries: int = 8, retry_backoff: float = 1.0,
        retry_timeout: float = 120.0, request_timeout: float = 60.0,
    ) -> None:
        self.url, self._token = url, token
        self.max_retries, self.retry_backoff = int(max_retries), float(retry_backoff)
        self.retry_timeout, self.request_timeout = float(retry_timeout), float(request_timeout)
        self._api: Any = None

    def __repr__(self) -> str:  # never the token
        return f"LabelStudioClient(url={self.url!r})"

    @property
    def api(self) -> Any:
        """The ``label_studio_sdk.LabelStudio`` client."""
        if self._api is None:
            LabelStudio, _, _ = _sdk()
            self._api = LabelStudio(base_url=self.url, api_key=self._token, timeout=self.request_timeout)
        return self._api

    def transient_types(self) -> tuple[type[BaseException], ...]:
        """The SDK's error types this client handles (the others propagate)."""
        _, ApiError, httpx = _sdk()
        return (ApiError, httpx.TransportError)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.max_retries, backoff=self.retry_backoff, max_backoff=30.0,
            deadline=self.retry_timeout,
        )

    def call(self, what: str, fn: Callable[[], Any], *, retry: bool = True) -> Any:
        """Run ``fn`` with retries on connection errors and 5xx; map errors to ours."""

        def log_retry(err: BaseException, attempt: int, delay: float) -> None:
            log.warning(
                "Label Studio at %s: %s while trying to %s; retrying in %.1f s (%d/%d).",
                self.url, reason(err), what, delay, attempt, self.max_retries,
            )

        try:
            return call_with_retries(
                fn,
                self.policy() if retry else RetryPolicy(attempts=1),
                retryable=lambda err: self.map_error(err, what) is None,
                catch=self.transient_types(),
                on_retry=log_retry,
            )
        except RetryError as failed:
            return self.give_up(failed, what, retry)

    def give_up(self, failed: RetryError, what: str, retry: bool = True) -> Any:
        """Raise the named error of a call that failed for good."""
        mapped = self.map_error(failed.error, what)
        if mapped is not None:
            raise mapped from None
        if not retry:
            raise failed.error
        raise LabelStudioConnectionError(
            self._scrub(
                f"Could not reach Label Studio at {self.url} to {what} ({reason(failed.error)}) after "
                f"{failed.attempts} attempts in {failed.elapsed:.0f} s. Is the server running? Nothing is "
                "lost: run again (or `energizer-hf annotate RUN_DIR`) once it is back."
            )
        ) from None

    def _scrub(self, text: str) -> str:
        """``text`` without the API key or anything shaped like a credential (a server may
        echo the ``Authorization`` header in its error body; a URL may carry a password)."""
        from energizer_hf.scrub import scrub

        return scrub(text, [self._token])

    def map_error(self, err: BaseException, what: str) -> LabelStudioError | None:
        """Our error for a final failure, ``None`` for a transient one (retry it)."""
        _, _, httpx = _sdk()
        if isinstance(err, httpx.TransportError):
            return None
        status = getattr(err, "status_code", None)
        if status in (401, 403):
            return LabelStudioAuthError(
                self._scrub(
                    f"Label Studio at {self.url} refused the API token ({status}) while trying "
                    f"to {what}: check LABEL_STUDIO_API_KEY (Account & Settings → Access Token)."
                )
            )
        if status is None or status >= 500 or status in (408, 429):
            return None
        return LabelStudioError(
            self._scrub(
                f"Label Studio at {self.url} answered {status} while trying to {what}: "
                f"{detail(getattr(err, 'body', None))}"
            )
        )
