"""Module-level helpers of :class:`~energizer_hf.learner.ActiveLearner`: the run directory
(clearing it, a read-only finished run), model and tokenizer identities, id and class checks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from energizer_hf.errors import LabelMismatchError
from energizer_hf.run import RunDir

if TYPE_CHECKING:
    from energizer_hf.run_config import RunConfig

# the messages keep the name of the module they came from
log = logging.getLogger("energizer_hf.learner")


def _tokenizer_identity(tokenizer: Any) -> str:
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    h.update(str(getattr(tokenizer, "name_or_path", "")).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # calling a tokenizer stores its truncation/padding settings in the backend: they
        # are not part of what it is, so a reused tokenizer object keeps its identity
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        h.update(json.dumps(state, sort_keys=True).encode())
    else:
        h.update(str(getattr(tokenizer, "vocab_size", "")).encode())
    return h.hexdigest()[:16]



@contextlib.contextmanager
def _hf_progress_bars(show: bool) -> Any:
    """transformers' own progress bars follow ``progress`` while the model loads."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled and not show:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled and not show:
            hf_logging.enable_progress_bar()



def clear_run_dir(files: RunDir) -> None:
    """Delete what a run directory holds (``overwrite``), its lock files excepted.

    Raises:
        RunDirError: the folder holds files but is not a run directory (no ``run.json``,
            ``rounds.jsonl`` or ``pool/``): nothing is deleted.
    """
    import shutil

    from energizer_hf.errors import RunDirError

    root = files.root
    if not root.is_dir():
        return
    keep = {files.lock.name, files.lock.name + ".json"}
    entries = [p for p in root.iterdir() if p.name not in keep]
    if not entries:
        return
    if not (files.run_file.exists() or files.rounds.exists() or files.pool.exists()):
        raise RunDirError(
            f"overwrite: '{root}' is not a run directory (it has no run.json, rounds.jsonl or pool/), "
            "so nothing was deleted: choose an empty or new run_dir."
        )
    _say(f"{root}: overwrite: deleting the previous run.")
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()



def _show_read_only(files: RunDir, config: RunConfig) -> Any:
    """A finished run on a read-only directory: its records, nothing written.

    Raises:
        RunDirError: the run is not finished, or ``config`` asks for more rounds or labels
            than it stopped at (it cannot go on without writing).
    """
    from energizer_hf.errors import RunDirError
    from energizer_hf.integrity import RunFiles, check_run_files
    from energizer_hf.results import RoundResults

    report = check_run_files(RunFiles.of(files))
    report.raise_for_errors()
    if not report.complete:
        raise RunDirError(
            f"run_dir '{files.root}' is read-only and its run is not finished: it cannot go on. "
            "Make it writable (e.g. chmod -R u+w), or copy it to a folder you can write to."
        )
    records = files.read_records()
    last = records[-1] if records else {}
    more_rounds = last.get("stop_reason") == "max_rounds" and (
        config.max_rounds is None or config.max_rounds > int(last.get("round", 0))
    )
    more_budget = last.get("stop_reason") == "budget_exhausted" and (
        config.total_budget == -1 or config.total_budget > int(last.get("num_labelled", 0))
    )
    if more_rounds or more_budget:
        raise RunDirError(
            f"run_dir '{files.root}' is read-only and this configuration extends its finished run "
            f"(max_rounds {config.max_rounds}, total_budget {config.total_budget}): it cannot go on. Make it "
            "writable (e.g. chmod -R u+w), or copy it to a folder you can write to."
        )
    _say(f"{files.root}: already complete ({len(records)} rounds recorded; read-only directory).")
    return RoundResults(records)



def _say(message: str) -> None:
    import sys

    log.info(message)
    print(f"energizer_hf: {message}", file=sys.stderr, flush=True)



def _yaml_dump(data: dict) -> str:
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False)



def _describe_model(model: Any) -> str:
    cfg = getattr(model, "config", model)
    to_dict = getattr(cfg, "to_dict", None)
    payload = json.dumps(to_dict() if callable(to_dict) else repr(cfg), sort_keys=True, default=str)
    return f"{type(model).__name__}:{hashlib.sha256(payload.encode()).hexdigest()[:12]}"



def _model_config(spec: Any, local_dir: Path | None) -> Any:
    """What tells a model's type: its local directory, its Hub config (``None`` when it
    cannot be fetched: ``from_pretrained`` reports that), or a config object."""
    if local_dir is not None:
        return local_dir
    if isinstance(spec, str):
        try:
            from transformers import AutoConfig

            return AutoConfig.from_pretrained(spec)
        except Exception:  # noqa: BLE001 - from_pretrained raises its own error later
            return None
    from transformers import PretrainedConfig

    return spec if isinstance(spec, PretrainedConfig) else None



def _check_pretrained_num_labels(model: Any, num_labels: int) -> None:
    """A fine-tuned classifier checkpoint with another number of classes is an error."""
    if not isinstance(model, str):
        return
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except Exception:  # noqa: BLE001 - let from_pretrained raise its own error later
        return
    archs = getattr(config, "architectures", None) or []
    if any("ForSequenceClassification" in a for a in archs) and config.num_labels != num_labels:
        raise LabelMismatchError(
            f"The checkpoint '{model}' is a classifier with num_labels={config.num_labels}, but the "
            f"data has {num_labels} classes: use a base model, or data with the same classes."
        )



def _check_ids_in_pool(ids: Sequence[int], size: int) -> None:
    """``initial_ids`` must be rows of the pool split.

    Raises:
        InvalidIdsError: ids at or beyond the pool's size.
    """
    from energizer_hf.errors import InvalidIdsError

    bad = [int(i) for i in ids if int(i) >= size]
    if bad:
        raise InvalidIdsError(
            f"initial_ids {bad[:10]} are not rows of the pool split ({size} rows, ids 0..{size - 1}): give row "
            "indices of the pool split."
        )



def _class_id(value: Any, names: Sequence[str]) -> int | None:
    """A class given by id or by name, as an id (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < len(names):
        return int(value)
    if isinstance(value, str) and value in names:
        return list(names).index(value)
    raise LabelMismatchError(
        f"minority_class={value!r} is neither a class id in [0, {len(names) - 1}] nor one of the class "
        f"names {list(names)}."
    )
