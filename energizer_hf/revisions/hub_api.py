"""Talking to the Hub: ids checked up front, failures classified and scrubbed of secrets.

The pieces :class:`~energizer_hf.revisions.hub.HubRevisions` builds on: repository ids and
branch names validated before any call, a failure classified as worth a retry or not
(:mod:`energizer_hf.retry` does the waiting), every message cleaned of tokens, and a round
loaded back from a Hub dataset repository with its metadata.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from energizer_hf.revisions.base import HubSyncError, InvalidRepoIdError, RoundNotFoundError
from energizer_hf.revisions.rounds import set_dataset_meta
from energizer_hf.run import CARD_FILE, META_KEY, front_matter, parse_round_tag

__all__ = [
    "DATA_FILE",
    "card_meta",
    "classify",
    "http_status",
    "is_offline",
    "load_hub_round",
    "message_run_id",
    "scrub",
    "validate_branch",
    "validate_repo_id",
]

log = logging.getLogger(__name__)

DATA_FILE = "data/train-00000-of-00001.parquet"  # the Hub repository's layout
_HEX_RE = re.compile(r"^[0-9a-f]{7,40}$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9_]{6,}")


def validate_repo_id(repo_id: str, what: str = "repo_id") -> str:
    """Check ``repo_id`` up front (``namespace/name``) with a clear error."""
    from huggingface_hub.utils import HFValidationError
    from huggingface_hub.utils import validate_repo_id as _validate

    if not isinstance(repo_id, str) or not repo_id:
        raise InvalidRepoIdError(
            scrub(f"{what} must be a non-empty string like 'user/name', got {repo_id!r}.", [])
        )
    try:
        _validate(repo_id)
    except HFValidationError as err:
        raise InvalidRepoIdError(
            scrub(
                f"{what} {repo_id!r} is not a valid Hub repository id: {err} Use 'namespace/name' "
                "with letters, digits, '-', '_' and '.' only.",
                [],
            )
        ) from None
    if repo_id.count("/") != 1:
        raise InvalidRepoIdError(
            scrub(f"{what} {repo_id!r} needs a namespace: use 'user/name' or 'organization/name'.", [])
        )
    return repo_id


def validate_branch(branch: str) -> str:
    if (
        not isinstance(branch, str)
        or not _BRANCH_RE.match(branch)
        or ".." in branch
        or branch.endswith((".lock", "/", "."))
        or parse_round_tag(branch) is not None
    ):
        raise InvalidRepoIdError(
            f"run_branch {branch!r} is not a usable branch name: use letters, digits, '-', '_', "
            "'.', '/' (and not the name of a round tag)."
        )
    return branch


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and anything shaped like a token or credential) masked,
    by the package's one scrubber (:func:`energizer_hf.scrub.scrub`).

    >>> "hf_abcdefghijkl" in scrub("Bearer hf_abcdefghijkl failed", [])
    False
    """
    from energizer_hf.scrub import scrub as _scrub

    return _scrub(text, secrets)


def http_status(err: BaseException) -> int | None:
    """The HTTP status of a failed call, when it had a response."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


_NO_NETWORK = (
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname",
    "Network is unreachable",
    "No route to host",
    "getaddrinfo failed",
)


def is_offline(err: BaseException) -> bool:
    """The Hub cannot be reached at all: offline mode (``HF_HUB_OFFLINE=1``) or no network
    (the host name does not resolve, no route): retrying soon does not help.

    >>> is_offline(OSError("[Errno -2] Name or service not known")), is_offline(OSError("reset"))
    (True, False)
    """
    if any(c.__name__ == "OfflineModeIsEnabled" for c in type(err).__mro__):
        return True
    from huggingface_hub import constants

    if getattr(constants, "HF_HUB_OFFLINE", False):
        return True
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:  # the cause chain of an HTTP client error
        seen.add(id(e))
        if any(marker in str(e) for marker in _NO_NETWORK):
            return True
        e = e.__cause__ or e.__context__
    return False


def classify(err: BaseException) -> str:
    """``"retry"`` for server errors and dropped connections, ``"auth"``, ``"offline"``
    (offline mode or no network: not retried), or ``"fatal"``."""
    from huggingface_hub.errors import HfHubHTTPError

    if http_status(err) is None and is_offline(err):
        return "offline"
    status = http_status(err)
    if isinstance(err, HfHubHTTPError):
        if status in (401, 403):
            return "auth"
        if status is None or status >= 500 or status in (408, 429):
            return "retry"
        return "fatal"
    if status in (401, 403):
        return "auth"
    if status is not None and (status >= 500 or status in (408, 429)):
        return "retry"
    if isinstance(err, (ConnectionError, TimeoutError)):
        return "retry"
    root = type(err).__module__.split(".")[0]
    if root in ("httpx", "httpx2", "httpcore", "requests", "urllib3"):
        return "retry"
    if isinstance(err, OSError) and status is None:
        return "retry"
    return "fatal"


def message_run_id(message: str | None) -> str | None:
    """The run id a commit description of this package carries (``None`` otherwise)."""
    m = re.search(r'"run_id": "([0-9a-f]+)"', message or "")
    return m.group(1) if m else None


def card_meta(card: Path) -> dict[str, Any]:
    """The ``energizer_hf`` metadata of a card file (``{}`` when it has none)."""
    meta = front_matter(card.read_text(encoding="utf-8")).get(META_KEY)
    return meta if isinstance(meta, dict) else {}


def load_hub_round(repo_id: str, revision: str, token: str | None = None) -> Any:
    """A round from a Hub dataset repository (``revision``: a tag, branch or commit).

    Raises:
        RoundNotFoundError: no such repository or revision; the message lists the
            ``round-*`` refs.
        HubSyncError: the Hub answered with an error.
    """
    import datasets
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    api = HfApi(token=token)
    secrets = [token, os.environ.get("HF_TOKEN")]
    try:
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
    except RepositoryNotFoundError:
        raise RoundNotFoundError(
            f"The dataset repository '{repo_id}' does not exist (or the token cannot see it)."
        ) from None
    except HfHubHTTPError as err:
        raise HubSyncError(
            f"Could not list the refs of '{repo_id}': {scrub(str(err), secrets)}",
            status_code=http_status(err),
        ) from None
    names = {r.name for r in (*refs.tags, *refs.branches)}
    rounds = sorted(n for n in names if parse_round_tag(n) is not None)
    known = revision in names
    if not known and _HEX_RE.match(revision):
        known = api.revision_exists(repo_id, revision, repo_type="dataset")
    if not known:
        branches = sorted(b.name for b in refs.branches)
        raise RoundNotFoundError(
            f"No revision {revision!r} in the dataset repository '{repo_id}'. Existing round-* "
            f"refs: {', '.join(rounds) or 'none'} (branches: {', '.join(branches)})."
        )
    ds = datasets.load_dataset(repo_id, revision=revision, split="train", token=token)
    try:
        card = Path(hf_hub_download(repo_id, CARD_FILE, repo_type="dataset", revision=revision, token=token))
        meta = card_meta(card)
    except Exception as err:  # noqa: BLE001 - the data loaded; metadata is optional
        log.warning("No card metadata for %s@%s: %s", repo_id, revision, type(err).__name__)
        meta = {}
    if meta:
        set_dataset_meta(ds, meta)
    return ds
