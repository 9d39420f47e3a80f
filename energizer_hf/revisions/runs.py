"""A run and its round stores: which stores a run gets, starting a run from a stored round,
and pushing a whole run (``energizer-hf push``).

>>> [type(s).__name__ for s in ensure_round_stores([])]
['LocalRevisions']
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import DatasetMismatchError, EnergizerError
from energizer_hf.pool import ActivePool
from energizer_hf.revisions.base import (
    DEFAULT_RUN_BRANCH,
    InvalidRepoIdError,
    RoundNotFoundError,
    RoundStore,
)
from energizer_hf.revisions.hub import HubRevisions, PushResult
from energizer_hf.revisions.hub_api import load_hub_round, validate_repo_id
from energizer_hf.revisions.local import LocalRevisions, fmt_rounds, load_local_round
from energizer_hf.revisions.rounds import rebuild_pool_state
from energizer_hf.run import RunDir, RunInfo, round_tag

__all__ = [
    "ensure_round_stores",
    "load_round",
    "push_run",
    "push_to_hub",
    "restore_from_revision",
    "split_stores",
]

log = logging.getLogger(__name__)


def split_stores(callbacks: Iterable[Any]) -> tuple[list[Any], list[RoundStore]]:
    """``(loop callbacks, round stores)`` of a mixed list (stores implement
    :class:`~energizer_hf.revisions.base.RoundStore`)."""
    plain, stores = [], []
    for c in callbacks:
        (stores if isinstance(c, RoundStore) else plain).append(c)
    return plain, stores


def ensure_round_stores(
    stores: Iterable[RoundStore],
    *,
    repo_id: str | None = None,
    run_branch: str = DEFAULT_RUN_BRANCH,
    private: bool = True,
    on_error: str = "warn",
) -> list[RoundStore]:
    """``stores`` plus the ones every run gets.

    With ``repo_id``, a :class:`~energizer_hf.revisions.hub.HubRevisions` pushing to it
    (unless one is already there; Hub failures warn and the missing rounds are pushed by the
    next round or ``energizer-hf push``); otherwise a
    :class:`~energizer_hf.revisions.local.LocalRevisions`, unless a store is given. Either
    way every round is kept under ``<run_dir>/revisions``. The token comes from
    ``HF_TOKEN`` or the stored login, never from a configuration.
    """
    out = list(stores)
    if repo_id and not any(isinstance(s, HubRevisions) and s.repo_id == repo_id for s in out):
        out.append(HubRevisions(repo_id, run_branch=run_branch, private=private, on_error=on_error))
    elif not out:
        out.append(LocalRevisions(run_branch=run_branch))
    return out


def load_round(
    source: str | os.PathLike | RoundStore,
    revision: int | str | None = None,
    *,
    token: str | None = None,
    run_branch: str = DEFAULT_RUN_BRANCH,
) -> Any:
    """Load a stored round as a ``datasets.Dataset``.

    ``source``: a run directory (or its ``revisions/``, or a round directory), a Hub
    dataset repo id, or any :class:`~energizer_hf.revisions.base.RoundStore`.
    ``revision``: a round number, a ``round-NNN`` tag, a branch or a commit sha; ``None`` is
    the latest round (local) or the head of ``run_branch`` (Hub). The returned dataset
    carries the round's metadata (pool fingerprint, ...) for
    :func:`~energizer_hf.revisions.rounds.rebuild_pool_state`.

    Raises:
        RoundNotFoundError: the revision does not exist; the message lists the ``round-*`` refs.
    """
    if isinstance(source, RoundStore):
        return source.load(revision)
    if isinstance(revision, (int, np.integer)):
        revision = round_tag(int(revision))
    path = Path(source)
    if path.exists():
        return load_local_round(path, revision)
    if not isinstance(source, str):
        raise RoundNotFoundError(f"'{source}' does not exist.")
    try:
        validate_repo_id(source)
    except InvalidRepoIdError as err:
        raise InvalidRepoIdError(
            f"'{source}' is neither an existing directory nor a repo id: {err}"
        ) from None
    return load_hub_round(source, revision or run_branch, token)


def restore_from_revision(
    pool: ActivePool,
    source: str | os.PathLike | RoundStore,
    revision: int | str | None = None,
    *,
    run_dir: str | os.PathLike,
    run_branch: str = DEFAULT_RUN_BRANCH,
    token: str | None = None,
) -> int | None:
    """Label ``pool`` as it was after a stored round, to start a new run from there.

    ``source``: see :func:`load_round`; ``revision``: a round number, ``round-NNN``, a branch
    or a commit (default: the latest round; on the Hub the head of ``run_branch``). Nothing
    happens (``None``) when ``run_dir`` already has records: the run then resumes from its
    own state. When ``run_dir`` has a label state but no record yet (a resumed run stopped
    in its first round), that state is loaded and rolled back to the revision's round
    first. Returns the revision's last round; pass ``start_from_labels=True`` to the loop so
    that it goes on from there.
    """
    files = RunDir(run_dir)
    if files.has_records():
        return None
    if isinstance(revision, str) and revision.strip().isdigit():
        revision = int(revision)
    ds = load_round(source, revision, token=token, run_branch=run_branch)
    rounds = np.asarray(ds["round"][:], dtype=np.int64) if "round" in ds.column_names else None
    if rounds is None or rounds.size == 0:
        raise DatasetMismatchError(
            f"The revision {revision!r} of '{source}' has no labelled rows to resume from."
        )
    last = int(rounds.max())
    if ActivePool.has_state(files.pool):
        pool.attach(files.pool)
        pool.rollback(after_round=last)
    rebuild_pool_state(pool, ds)
    log.info("Starting from %s of '%s' (%d labelled rows)", round_tag(last), source, len(ds))
    return last


def push_to_hub(
    run: RunInfo | str | os.PathLike,
    model_repo_id: str,
    *,
    model: Any = None,
    tokenizer: Any = None,
    model_dir: str | os.PathLike | None = None,
    dataset_repo_id: str | None = None,
    token: str | None = None,
    private: bool = True,
    sync_rounds: bool = True,
    pool: ActivePool | None = None,
    **store_kwargs: Any,
) -> PushResult:
    """Push a finished run: every round's revision (when ``sync_rounds``) and the final
    labelled set to ``dataset_repo_id``, and the model with its card to ``model_repo_id``.

    ``run``: a :class:`~energizer_hf.run.RunInfo` or a run directory; the model is ``model``
    (+ ``tokenizer``), or ``model_dir``, by default the run's ``final_model/``.
    """
    info = run if isinstance(run, RunInfo) else RunInfo.from_dir(run)
    if model is None and model_dir is None:
        model_dir = info.files.final_model
    store = HubRevisions(dataset_repo_id, token=token, private=private, run_dir=info.files.root, **store_kwargs)
    if dataset_repo_id and sync_rounds:
        store.sync()
    return store.push_final(info, model_repo_id, model=model, tokenizer=tokenizer, model_dir=model_dir, pool=pool)


def push_run(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    model_repo_id: str | None = None,
    private: bool = True,
    run_branch: str = DEFAULT_RUN_BRANCH,
    token: str | None = None,
    **store_kwargs: Any,
) -> dict[str, Any]:
    """Push a run directory: the round revisions missing on the Hub (one commit + tag each on
    ``run_branch``), the last round's labelled set with its card to ``main``, and, with
    ``model_repo_id``, the final model saved under ``<run_dir>/final_model`` with its card.

    Returns a summary (pushed rounds, commits, URLs). Idempotent: pushing again adds nothing.

    Raises:
        EnergizerError: not a run directory, no final model for ``model_repo_id``, ...
        RoundNotFoundError: the last recorded round has no local revision.
        HubSyncError: a Hub call failed (after retries where they help).
    """
    validate_repo_id(repo_id)
    if model_repo_id is not None:
        validate_repo_id(model_repo_id, "model_repo_id")
    from energizer_hf.runlock import RunLock

    files = RunDir(run_dir)
    if files.run_file.parent.is_dir():
        # one writer: the run must not be going on while it is pushed (re-entrant inside a run)
        with RunLock(files.lock, allow_read_only=True):
            return _push_run(files, repo_id, model_repo_id, private, run_branch, token, store_kwargs)
    return _push_run(files, repo_id, model_repo_id, private, run_branch, token, store_kwargs)


def _push_run(
    files: RunDir,
    repo_id: str,
    model_repo_id: str | None,
    private: bool,
    run_branch: str,
    token: str | None,
    store_kwargs: dict[str, Any],
) -> dict[str, Any]:
    from huggingface_hub import constants

    from energizer_hf.integrity import saves_final_model

    run = RunInfo.from_dir(files)
    if not run.records:
        raise EnergizerError(f"The run in '{run.files.root}' has no recorded round yet.")
    model_dir = run.files.final_model
    if model_repo_id is not None and not (model_dir / "config.json").is_file():
        if not saves_final_model(run.files):
            raise EnergizerError(
                f"The run in '{run.files.root}' was made with save_final_model: false, so it keeps no "
                "trained model: push without --model-repo-id, or run the same command again with "
                "--save-final-model (it refits the last round and saves the model), then push."
            )
        raise EnergizerError(
            f"The run directory '{run.files.root}' holds no trained model ('{model_dir}' is missing): "
            "it is saved when a run finishes. Run the same `energizer-hf run` command again (a "
            "finished run without its final model refits the last round and saves it), push "
            "without --model-repo-id, or push a model object from Python with "
            "HubRevisions.push_final(run, model_repo_id, model=...)."
        )
    store = HubRevisions(
        repo_id, run_branch=run_branch, private=private, token=token, run_dir=run.files.root, **store_kwargs
    )
    recorded = [int(r["round"]) for r in run.records]
    local = run.files.local_rounds()
    last = recorded[-1]
    if last not in local:
        raise RoundNotFoundError(
            f"The last recorded round ({round_tag(last)}) has no local revision under "
            f"'{run.files.revisions}' (it has: {fmt_rounds(local)}); runs made before "
            "revisions were kept cannot be pushed this way."
        )
    missing = sorted(set(recorded) - set(local))
    if missing:
        log.warning("No local revision of %s: not pushed.", fmt_rounds(missing))
    pushed = store.sync()
    summary: dict[str, Any] = {
        "repo_id": repo_id,
        "run_branch": run_branch,
        "pushed_rounds": sorted(pushed),
        "missing_rounds": missing,
        "last_round": last,
    }
    if model_repo_id is not None:
        result = store.push_final(run, model_repo_id, model_dir=model_dir, private=private)
        summary.update(
            dataset_commit=result.dataset_commit,
            dataset_url=result.dataset_url,
            model_repo_id=model_repo_id,
            model_commit=result.model_commit,
            model_url=result.model_url,
        )
    else:
        commit = store.push_labelled_set(round=last, private=private)
        summary.update(
            dataset_commit=commit,
            dataset_url=f"{constants.ENDPOINT}/datasets/{repo_id}/tree/{commit}",
        )
    return summary
