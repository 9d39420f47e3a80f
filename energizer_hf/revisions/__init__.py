"""Round revisions: each round's labelled set kept as a dataset revision, locally and on the Hub.

- :mod:`~energizer_hf.revisions.base`: the :class:`RoundStore` protocol (a storage
  backend is one class with ``on_round_end``, ``rounds`` and ``load``) and the errors;
- :mod:`~energizer_hf.revisions.local`: :class:`LocalRevisions` (``<run_dir>/revisions``,
  the store every run gets) and :func:`save_final_model`;
- :mod:`~energizer_hf.revisions.hub`: :class:`HubRevisions` (a commit and a tag
  ``round-NNN`` per round on a Hub dataset repository, the final push), on
  :mod:`~energizer_hf.revisions.hub_api` (ids checked, failures classified and scrubbed);
- :mod:`~energizer_hf.revisions.rounds`: a round as a ``datasets.Dataset``
  (:func:`build_round_dataset`) and back (:func:`rebuild_pool_state`);
- :mod:`~energizer_hf.revisions.cards`: dataset and model cards from the templates shipped
  in ``energizer_hf/revisions/templates``;
- :mod:`~energizer_hf.revisions.runs`: the stores of a run, :func:`load_round`,
  :func:`restore_from_revision` (``RunConfig.resume_from``), :func:`push_run`,
  :func:`push_to_hub`.

>>> round_tag(3)
'round-003'
"""

import importlib
from typing import TYPE_CHECKING, Any

from energizer_hf.run import round_tag

if TYPE_CHECKING:  # the names below, for type checkers and the API reference
    from energizer_hf.revisions.base import (
        DEFAULT_RUN_BRANCH,
        HubSyncError,
        InvalidRepoIdError,
        RoundNotFoundError,
        RoundStore,
    )
    from energizer_hf.revisions.cards import render_dataset_card, render_model_card, size_category
    from energizer_hf.revisions.hub import HubRevisions, PushResult
    from energizer_hf.revisions.hub_api import validate_repo_id
    from energizer_hf.revisions.local import LocalRevisions, save_final_model, write_revisions_index
    from energizer_hf.revisions.rounds import build_round_dataset, rebuild_pool_state
    from energizer_hf.revisions.runs import (
        ensure_round_stores,
        load_round,
        push_run,
        push_to_hub,
        restore_from_revision,
        split_stores,
    )
    from energizer_hf.revisions.sources import card_info

# Loaded on first use, so that `import energizer_hf` (and the loop, which needs only the
# protocol) does not import the Hub client: name -> submodule.
_LAZY = {
    "DEFAULT_RUN_BRANCH": "base",
    "HubSyncError": "base",
    "InvalidRepoIdError": "base",
    "RoundNotFoundError": "base",
    "RoundStore": "base",
    "render_dataset_card": "cards",
    "render_model_card": "cards",
    "size_category": "cards",
    "HubRevisions": "hub",
    "PushResult": "hub",
    "validate_repo_id": "hub_api",
    "LocalRevisions": "local",
    "save_final_model": "local",
    "write_revisions_index": "local",
    "card_info": "sources",
    "build_round_dataset": "rounds",
    "rebuild_pool_state": "rounds",
    "ensure_round_stores": "runs",
    "load_round": "runs",
    "push_run": "runs",
    "push_to_hub": "runs",
    "restore_from_revision": "runs",
    "split_stores": "runs",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DEFAULT_RUN_BRANCH",
    "HubRevisions",
    "HubSyncError",
    "InvalidRepoIdError",
    "LocalRevisions",
    "PushResult",
    "RoundNotFoundError",
    "RoundStore",
    "build_round_dataset",
    "card_info",
    "ensure_round_stores",
    "load_round",
    "push_run",
    "push_to_hub",
    "rebuild_pool_state",
    "render_dataset_card",
    "render_model_card",
    "restore_from_revision",
    "round_tag",
    "save_final_model",
    "size_category",
    "split_stores",
    "validate_repo_id",
    "write_revisions_index",
]
