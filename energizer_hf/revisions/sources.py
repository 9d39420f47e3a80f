"""What the cards say about the data and the model of a run (``RunInfo.card``).

A run's cards name the data it came from (a Hub dataset id, local files, a directory), the
dataset and split its test metrics were measured on, the license, the language and the
pretrained model it started from. :func:`card_info` works them out once, when the run is
set up, from what the user gave (a Hub name, files, a ``datasets`` object and its
``info``); what cannot be known is left out rather than guessed.

>>> card_info(dataset="ag_news", test_split="test", model="bert-base-uncased")["eval"]
{'type': 'ag_news', 'name': 'ag_news', 'split': 'test'}
>>> card_info(data_files={"train": "a.csv", "test": "b.csv"}, test_split="test")["source"]
'local CSV files: a.csv (train), b.csv (test)'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TASK_METADATA", "card_info", "hub_model_id", "task_metadata"]

# Hub metadata per task: task_categories / task_ids of the dataset card, pipeline_tag and
# the model-index task of the model card. Other tasks add their entry here.
TASK_METADATA: dict[str, dict[str, Any]] = {
    "text_classification": {
        "task_categories": ["text-classification"],
        "task_ids": ["multi-class-classification"],
        "pipeline_tag": "text-classification",
        "task_name": "Text Classification",
    },
    "multi_label": {
        "task_categories": ["text-classification"],
        "task_ids": ["multi-label-classification"],
        "pipeline_tag": "text-classification",
        "task_name": "Text Classification",
    },
    "token_classification": {
        "task_categories": ["token-classification"],
        "task_ids": ["named-entity-recognition"],
        "pipeline_tag": "token-classification",
        "task_name": "Token Classification",
    },
}
_TASK_ALIASES = {"single_label": "text_classification"}

_FORMATS = {".csv": "CSV", ".tsv": "TSV", ".json": "JSON", ".jsonl": "JSON Lines", ".parquet": "Parquet"}
_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def task_metadata(task: str = "text_classification") -> dict[str, Any]:
    """The Hub metadata of a task (see :data:`TASK_METADATA`); unknown tasks get the
    text-classification entry."""
    task = _TASK_ALIASES.get(task, task)
    return dict(TASK_METADATA.get(task, TASK_METADATA["text_classification"]))


def _is_local(spec: str) -> bool:
    """A path rather than a Hub id (``owner/name`` has at most one slash)."""
    return os.path.exists(spec) or spec.startswith((".", "/", "~")) or spec.count("/") > 1


def hub_model_id(model: Any) -> str | None:
    """The Hub id a model comes from: the name itself, or the ``_name_or_path`` a local
    directory's ``config.json`` records when it is a Hub id; ``None`` when unknown."""
    if not isinstance(model, (str, os.PathLike)):
        name = getattr(getattr(model, "config", model), "_name_or_path", None)
        return name if isinstance(name, str) and name and not _is_local(name) else None
    spec = str(model)
    if not _is_local(spec):
        return spec
    config = Path(spec) / "config.json"
    if config.is_file():
        try:
            name = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path")
        except (OSError, ValueError):
            return None
        if isinstance(name, str) and name and not _is_local(name):
            return name
    return None


def _files_of(ds: Any) -> list[str]:
    """The data files a ``datasets`` split was built from, when its info records them."""
    checksums = getattr(getattr(ds, "info", None), "download_checksums", None) or {}
    return [str(k) for k in checksums if isinstance(k, str) and Path(k).suffix.lower() in _FORMATS]


def _describe_files(files: Mapping[str, str]) -> str:
    kinds = {_FORMATS.get(Path(f).suffix.lower(), "data") for f in files.values()}
    kind = kinds.pop() if len(kinds) == 1 else "data"
    listed = ", ".join(f"{Path(f).name} ({split})" for split, f in files.items())
    return f"local {kind} file{'s' if len(files) > 1 else ''}: {listed}"


def card_info(
    *,
    dataset: Any = None,
    dataset_config: str | None = None,
    data_files: Mapping[str, str] | None = None,
    pool: Any = None,
    train_split: str = "train",
    test_split: str | None = None,
    has_test: bool = True,
    model: Any = None,
    license: str | None = None,
    language: Sequence[str] | str | None = None,
    task: str = "text_classification",
) -> dict[str, Any]:
    """The card facts of a run (``RunInfo.card``), leaving out what is unknown.

    Args:
        dataset: what the user named (a Hub id, a local file or directory), or ``None``
            for a ``datasets`` object (then ``pool``'s info is read).
        dataset_config / data_files: the Hub configuration, or split -> local file.
        pool: the pool split (a ``datasets.Dataset``): its license and source files.
        train_split / test_split / has_test: the splits; ``has_test`` is whether the test
            split exists (test metrics are measured on it).
        model: the model id, directory or object (for ``base_model``).
        license / language: given by the user (``card_license``, ``card_language``).
        task: the task (:data:`TASK_METADATA`).

    Returns:
        A mapping with ``source`` and ``task`` (always), and ``source_datasets``, ``eval``, ``license``,
        ``license_note``, ``language``, ``base_model``, ``task_ids`` when known.
    """
    task = _TASK_ALIASES.get(task, task)
    out: dict[str, Any] = {"task": task, "task_ids": task_metadata(task)["task_ids"]}
    hub_id = None
    eval_ds: dict[str, Any] | None = None
    if data_files:
        out["source"] = _describe_files(data_files)
        test_file = data_files.get(test_split) if test_split else None
        if test_file:
            eval_ds = {"type": _BUILDERS.get(Path(test_file).suffix.lower(), "local"), "name": Path(test_file).name}
    elif isinstance(dataset, (str, os.PathLike)) and str(dataset):
        spec = str(dataset)
        path = Path(spec)
        if path.is_file():
            out["source"] = _describe_files({train_split: spec})
        elif path.is_dir():
            out["source"] = f"local dataset directory {path.name}"
        else:
            hub_id = spec
            out["source"] = spec + (f" ({dataset_config})" if dataset_config else "")
            eval_ds = {"type": spec, "name": spec}
            if dataset_config:
                eval_ds["config"] = dataset_config
    else:
        files = _files_of(pool)
        info = getattr(pool, "info", None)
        name = getattr(info, "dataset_name", None)
        if files:
            out["source"] = _describe_files({train_split: files[0]})
        elif name:
            out["source"] = str(name)
            eval_ds = {"type": str(name), "name": str(name)}
        else:
            out["source"] = "a datasets object given in Python (no name or files recorded)"
    if eval_ds is not None and test_split and has_test:
        eval_ds["split"] = test_split
        out["eval"] = eval_ds
    if hub_id:
        out["source_datasets"] = [f"extended|{hub_id}"]
    license = license or getattr(getattr(pool, "info", None), "license", None) or None
    if license:
        out["license"] = str(license)
    else:
        out["license"] = "other"
        out["license_note"] = (
            "The license of the source data is not known to energizer_hf: check it before sharing, and "
            "set card_license (e.g. apache-2.0, cc-by-4.0)."
        )
    if language:
        out["language"] = [language] if isinstance(language, str) else list(language)
    base = hub_model_id(model) if model is not None else None
    if base:
        out["base_model"] = base
    return out
