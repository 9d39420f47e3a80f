"""The storage protocol of round revisions, and the errors every backend shares.

A *round store* keeps each complete round of a run (the labelled set the round's model was
trained on) somewhere, and reads stored rounds back. The loop calls
:meth:`RoundStore.on_round_end` on the writing process after each round's record is
saved. :class:`~energizer_hf.revisions.local.LocalRevisions` (``<run_dir>/revisions``)
and :class:`~energizer_hf.revisions.hub.HubRevisions` (a Hub dataset repository) implement
it; a new backend is one file with one class that has these three methods
(``tests/test_revisions.py`` plugs in a folder of Parquet files).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from energizer_hf.errors import EnergizerError
from energizer_hf.pool import ActivePool
from energizer_hf.run import RunInfo

__all__ = [
    "DEFAULT_RUN_BRANCH",
    "HubSyncError",
    "InvalidRepoIdError",
    "RoundNotFoundError",
    "RoundStore",
]

DEFAULT_RUN_BRANCH = "energizer-run"


@runtime_checkable
class RoundStore(Protocol):
    """Keeps each complete round of a run, and reads stored rounds back."""

    def on_round_end(self, run: RunInfo, pool: ActivePool, record: dict[str, Any]) -> None:
        """Store the labelled set after ``record["round"]``.

        Args:
            run: the run, with its records up to this one.
            pool: the pool (its label state says which rows are labelled, in which round).
            record: the round's record.
        """
        ...

    def rounds(self) -> list[int]:
        """The stored rounds, ascending."""
        ...

    def load(self, revision: int | str | None = None) -> Any:
        """A stored round as a ``datasets.Dataset`` (``None``: the latest), carrying the
        metadata :func:`~energizer_hf.revisions.rounds.rebuild_pool_state` checks."""
        ...


class HubSyncError(EnergizerError):
    """Pushing a round (or the final model) to the Hub failed, after retries where they help.

    The message never contains the token. ``status_code`` is the HTTP status of the last
    failure when there was one; ``round`` the round being pushed (``None`` otherwise).
    """

    def __init__(self, message: str, *, round: int | None = None, status_code: int | None = None):
        super().__init__(message)
        self.round = round
        self.status_code = status_code


class InvalidRepoIdError(EnergizerError):
    """A repository id or branch name that the Hub would refuse."""


class RoundNotFoundError(EnergizerError):
    """A revision (round tag, branch or commit) that does not exist; lists the existing ones."""
