"""Round revisions in the run directory: ``<run_dir>/revisions/round-NNN/``.

:class:`LocalRevisions` is the :class:`~energizer_hf.revisions.base.RoundStore` every run
gets: after round ``r`` it saves the labelled set the round's model was trained on (rows
of rounds ``0..r``) with ``save_to_disk`` into a temporary directory, writes its dataset
card last, and renames the directory into place: a revision is complete once its card is
there, and it is never rewritten. :func:`save_final_model` keeps the trained model under
``<run_dir>/final_model``.

>>> store = LocalRevisions("runs/demo")
>>> store.rounds()
[]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from energizer_hf.errors import EnergizerError
from energizer_hf.pool import ActivePool
from energizer_hf.revisions.base import DEFAULT_RUN_BRANCH, RoundNotFoundError
from energizer_hf.revisions.cards import dataset_card
from energizer_hf.revisions.rounds import (
    build_round_dataset,
    dataset_meta,
    quiet_datasets,
    scores_of,
)
from energizer_hf.run import CARD_FILE, RunDir, RunInfo, parse_round_tag, round_tag

__all__ = ["LocalRevisions", "fmt_rounds", "load_local_round", "save_final_model"]


def fmt_rounds(rounds: Any) -> str:
    """``round-000, round-001`` (``none`` for no round)."""
    names = [round_tag(r) for r in rounds]
    return ", ".join(names) if names else "none"


class LocalRevisions:
    """Saves each round's labelled set, with its dataset card, under ``<run_dir>/revisions``.

    Args:
        run_dir: the run directory; ``None``: the run's (known at the first round).
        license / pretty_name / source_dataset: card fields (``None``: what the run says,
            ``RunInfo.card``; the license is ``"other"`` with a note when unknown).
        templates_dir: a folder with your own ``dataset_card.md.j2`` / ``model_card.md.j2``
            (the packaged templates otherwise).
        run_branch: recorded in each revision's metadata (the branch a Hub store pushes to).
    """

    repo_id: str | None = None  # a local store pushes nowhere

    def __init__(
        self,
        run_dir: str | os.PathLike | None = None,
        *,
        license: str | None = None,
        pretty_name: str | None = None,
        source_dataset: str | None = None,
        templates_dir: str | os.PathLike | None = None,
        run_branch: str = DEFAULT_RUN_BRANCH,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.license = license
        self.pretty_name = pretty_name
        self.source_dataset = source_dataset
        self.templates_dir = templates_dir
        self.run_branch = run_branch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_dir={str(self.run_dir) if self.run_dir else None!r})"

    # ------------------------------------------------------------------ RoundStore
    def on_round_end(self, run: RunInfo, pool: ActivePool, record: dict[str, Any]) -> None:
        """Save this round's revision, and those of earlier recorded rounds that are missing
        (a crash between a record and its revision leaves a gap)."""
        for rec in run.records:
            if int(rec["round"]) < int(record["round"]):
                self.snapshot(run, pool, int(rec["round"]))
        self.snapshot(run, pool, int(record["round"]))

    def rounds(self) -> list[int]:
        """Rounds with a complete local revision, ascending."""
        return self.files().local_rounds() if self.run_dir is not None else []

    def load(self, revision: int | str | None = None) -> Any:
        """A local revision (a round number, ``round-NNN``, ``None``: the latest)."""
        return load_local_round(self._root(), revision)

    # ------------------------------------------------------------------ revisions
    def _root(self, run_dir: str | os.PathLike | None = None) -> Path:
        root = Path(run_dir) if run_dir is not None else self.run_dir
        if root is None:
            raise EnergizerError(
                f"{type(self).__name__} does not know its run directory yet: give run_dir=..., "
                "or use it in a run (it takes the run's)."
            )
        return root

    def files(self, run_dir: str | os.PathLike | None = None) -> RunDir:
        """The run directory's files (``run_dir`` or the store's own)."""
        return RunDir.containing(self._root(run_dir))

    def snapshot(self, run: RunInfo, pool: ActivePool, round: int) -> Path:
        """Save round ``round``'s labelled set and card under ``revisions/`` (once)."""
        if self.run_dir is None:
            self.run_dir = run.files.root
        files = self.files()
        final = files.revision(round)
        if (final / CARD_FILE).exists():
            return final
        files.revisions.mkdir(parents=True, exist_ok=True)
        with quiet_datasets():
            path = self._write(run, pool, round, final)
        write_revisions_index(files)
        return path

    def _write(self, run: RunInfo, pool: ActivePool, round: int, final: Path) -> Path:
        label_column = run.config.get("label_column")
        meta = {
            "run_id": run.run_id,
            "label_source": run.label_source,
            "strategy": run.strategy,
            "seed": run.settings.get("seed"),
            "run_branch": self.run_branch,
            "label_names": list(run.label_names),
        }
        ds = build_round_dataset(
            pool,
            round,
            label_names=list(run.label_names) or None,
            label_source=run.label_source or "annotator",
            scores=scores_of(run.records),
            drop_columns=[label_column] if label_column else ["label"],
            metadata=meta,
        )
        card = dataset_card(
            run,
            round,
            ds,
            dataset_meta(ds),
            templates_dir=self.templates_dir,
            license=self.license,
            pretty_name=self.pretty_name,
            source_dataset=self.source_dataset,
            repo_id=self.repo_id,
            run_branch=self.run_branch,
        )
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            ds.save_to_disk(str(tmp))
            (tmp / CARD_FILE).write_text(card, encoding="utf-8")
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / CARD_FILE).exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final


def write_revisions_index(files: RunDir) -> Path | None:
    """Write ``revisions/README.md``: a card that lists every local round as a
    configuration (``round-NNN``, the latest as the default), so that
    ``datasets.load_dataset("<run_dir>/revisions", "round-002")`` loads a round. Replaced
    atomically; ``None`` when there is no round yet."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from energizer_hf.utils import atomic_write_bytes

    rounds = files.local_rounds()
    if not rounds:
        return None
    configs = [
        {
            "config_name": round_tag(r),
            "data_files": [{"split": "train", "path": f"{round_tag(r)}/data-*.arrow"}],
            **({"default": True} if r == rounds[-1] else {}),
        }
        for r in rounds
    ]
    data = DatasetCardData(
        pretty_name=f"Active-learning rounds of {files.root.name}",
        tags=["active-learning", "energizer_hf"],
        configs=configs,
    )
    body = (
        f"# Rounds of the active-learning run `{files.root.name}`\n\n"
        "Each configuration is the labelled set after one round (its own card is in the round's folder):\n\n"
        "```python\nimport datasets\n"
        f"ds = datasets.load_dataset(\"{files.revisions.as_posix()}\", \"{round_tag(rounds[-1])}\", split=\"train\")\n```\n"
    )
    path = files.revisions / CARD_FILE
    atomic_write_bytes(path, str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")).encode("utf-8"))
    return path


def load_local_round(path: str | os.PathLike, revision: int | str | None = None) -> Any:
    """A local revision as a ``datasets.Dataset``.

    ``path``: a run directory, its ``revisions/`` or a round directory; ``revision``: a
    round number or ``round-NNN`` (``None``: the latest).

    Raises:
        RoundNotFoundError: no such revision; the message lists the existing ones.
    """
    import datasets

    path = Path(path)
    if (path / "state.json").exists():  # a round directory itself
        return datasets.load_from_disk(str(path))
    files = RunDir.containing(path)
    rounds = files.local_rounds()
    if isinstance(revision, int):
        revision = round_tag(revision)
    if revision is None:
        if not rounds:
            raise RoundNotFoundError(f"No round snapshot in '{files.revisions}'.")
        revision = round_tag(rounds[-1])
    round = parse_round_tag(revision)
    if round is None or round not in rounds:
        raise RoundNotFoundError(
            f"No revision {revision!r} in '{files.revisions}'. Existing revisions: {fmt_rounds(rounds)}."
        )
    return datasets.load_from_disk(str(files.revision(round)))


def save_final_model(
    run_dir: str | os.PathLike,
    model: Any,
    tokenizer: Any = None,
    *,
    run: RunInfo | None = None,
    templates_dir: str | os.PathLike | None = None,
) -> Path:
    """Keep the trained model (and tokenizer) under ``<run_dir>/final_model`` (replaced whole).

    A ``transformers`` model is saved with ``save_pretrained``; any other ``torch`` module
    as its ``state_dict`` (``final_model/state_dict.pt``). With ``run`` (a
    :class:`~energizer_hf.run.RunInfo` with records), the folder gets its model card
    (``README.md``), as a Hub model repository would.
    """
    files = RunDir(run_dir)
    final = files.final_model
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=files.root))
    try:
        if hasattr(model, "save_pretrained"):
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                model.save_pretrained(str(tmp))
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
        else:
            import torch

            torch.save(model.state_dict(), tmp / files.final_state_dict.name)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(str(tmp))
        if run is not None and run.records:
            from energizer_hf.revisions.cards import model_card

            card = model_card(run, templates_dir=templates_dir, model_path=str(final))
            (tmp / CARD_FILE).write_text(card, encoding="utf-8")
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
