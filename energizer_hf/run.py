"""A run as a type: :class:`RunDir` (its files) and :class:`RunInfo` (what it is).

:class:`RunDir` is the only code that names the files of a run directory; every other
module asks it for a path. :class:`RunInfo` is a frozen record of a run (configuration,
strategy and its parameters, who labels, which dataset, class names, rounds), built from a
live loop (:meth:`RunInfo.from_loop`) or read back from a directory
(:meth:`RunInfo.from_dir`). Cards, pushes, resumes, stopping criteria, Label Studio and the
command line take a ``RunInfo`` or a ``RunDir``, never a loop.

>>> files = RunDir("runs/demo")
>>> files.rounds.as_posix(), files.revision(3).as_posix()
('runs/demo/rounds.jsonl', 'runs/demo/revisions/round-003')
>>> [name for name, _, _ in RunDir.table()][:3]
['run_file', 'rounds', 'config_yaml']
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from energizer_hf.errors import EnergizerError
from energizer_hf.utils import read_jsonl

__all__ = [
    "LEGACY_CONFIG_NAMES",
    "POOL_META_FILE",
    "POOL_STATE_FILE",
    "RunDir",
    "RunInfo",
    "check_one_name_each",
    "front_matter",
    "parse_round_tag",
    "round_tag",
]

POOL_STATE_FILE = "label_state.npy"
POOL_META_FILE = "pool.json"
META_KEY = "energizer_hf"  # the block of a revision card's metadata that energizer_hf writes
CARD_FILE = "README.md"

# Configuration names that were renamed: old name -> the one name every face uses now.
LEGACY_CONFIG_NAMES = {"rounds": "max_rounds", "stopping": "stopping_criteria"}


def check_one_name_each(settings: Mapping[str, Any]) -> None:
    """Raise when a setting is given under its old and its new name at once.

    >>> check_one_name_each({"rounds": 3})
    >>> check_one_name_each({"rounds": 3, "max_rounds": 4})
    Traceback (most recent call last):
    ...
    energizer_hf.errors.EnergizerError: Give each setting once: rounds (= max_rounds) appear under both names.
    """
    both = sorted(old for old, new in LEGACY_CONFIG_NAMES.items() if old in settings and new in settings)
    if both:
        raise EnergizerError(
            f"Give each setting once: {', '.join(f'{o} (= {LEGACY_CONFIG_NAMES[o]})' for o in both)} "
            "appear under both names."
        )

# name -> (path relative to the run directory, what it holds). The docs' run-directory
# table is generated from this mapping (tests/test_run.py checks that they agree).
_FILES: dict[str, tuple[str, str]] = {
    "run_file": ("run.json", "the run's configuration (compared on resume) and identity"),
    "rounds": ("rounds.jsonl", "one record per complete round, appended with an fsync"),
    "config_yaml": ("config.yaml", "the `RunConfig` of an HF-native run (`energizer-hf annotate` rebuilds the run from it)"),
    "pool": ("pool/", "the pool's label state"),
    "label_state": (f"pool/{POOL_STATE_FILE}", "round, split and label of every pool id, replaced atomically"),
    "pool_meta": (f"pool/{POOL_META_FILE}", "the dataset fingerprint the label state belongs to"),
    "pending": ("pending.json", "a fitted-and-queried round waiting for people's labels"),
    "model_state": ("model_state.pt", "the model between rounds when `reset_weights` is off"),
    "cache": ("cache/", "the tokenized pool and test split, reused on resume"),
    "scoring": ("scoring/", "the scorer's exchange files between ranks (removed when the run ends)"),
    "revisions": ("revisions/", "each round's labelled set, `round-NNN/` with its dataset card"),
    "final_model": ("final_model/", "the model trained on the final labelled set (and its tokenizer)"),
    "final_state_dict": ("final_model/state_dict.pt", "the final model's weights, when it is not a `transformers` model"),
    "ann": ("ann/", "pool embeddings and the ANN index of SEALS / AnchorAL"),
    "label_studio": ("label_studio/", "Label Studio tasks, events and conflicts of the run"),
    "logs": ("logs/", "output of the loggers named in `trainer_kwargs` (CSV, TensorBoard)"),
    "lock": (".lock", "held by the process that runs the loop"),
    "pseudo_labels": ("pseudo/", "self-training's pseudo-labels per round (`round-NNN.npz`), never part of the label state"),
    "stream": ("stream/", "the state of a stream run (`StreamLearner`, `energizer-hf stream`)"),
    "stream_config": ("stream/stream.json", "the stream's configuration, compared on resume"),
    "stream_checkpoint": (
        "stream/checkpoint.json",
        "the last committed mini-batch: position, source, strategy and learner state (and the "
        "`strategy-NNNNNNNN.npz` arrays it names), replaced atomically",
    ),
    "stream_decisions": ("stream/decisions.jsonl", "one line per arriving item: sent or let go, score, threshold, model round"),
    "stream_sent": ("stream/sent.jsonl", "the items sent for labelling (with their columns)"),
    "stream_labels": ("stream/labels.jsonl", "the labels received, in the order they came back"),
    "stream_models": ("stream/models/", "the weights of each retrained round (`round-NNN.pt`), reloaded on resume"),
    "stream_plot": ("stream/stream.png", "accuracy and labels spent over the stream"),
}

_ROUND_RE = re.compile(r"^round-(\d{3,})$")


def round_tag(round: int) -> str:
    """The tag (and revision directory name) of a round: ``round-003``."""
    if int(round) < 0:
        raise EnergizerError(f"round must be >= 0, got {round}.")
    return f"round-{int(round):03d}"


def parse_round_tag(name: str) -> int | None:
    """The round of a ``round-NNN`` name, ``None`` for any other name."""
    m = _ROUND_RE.match(name)
    return int(m.group(1)) if m else None


def front_matter(text: str) -> dict[str, Any]:
    """The YAML metadata block of a card (``{}`` when there is none)."""
    import yaml

    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, flags=re.S)
    if not m:
        return {}
    data = yaml.safe_load(m.group(1))
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True, init=False)
class RunDir:
    """The files of one run directory (see :meth:`table`).

    Args:
        root: the run directory.
    """

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    @classmethod
    def containing(cls, path: str | os.PathLike) -> RunDir:
        """The run directory of ``path``: the directory itself, or the parent of its ``revisions/``."""
        path = Path(path)
        return cls(path.parent) if path.name == _FILES["revisions"][0].rstrip("/") else cls(path)

    @classmethod
    def table(cls) -> list[tuple[str, str, str]]:
        """``(attribute, relative path, what it holds)`` of every file of a run directory."""
        return [(name, path, what) for name, (path, what) in _FILES.items()]

    @classmethod
    def markdown_table(cls) -> str:
        """The run-directory table of ``docs/architecture.md`` (kept equal by a test)."""
        rows = [f"| `{path}` | `{name}` | {what} |" for name, path, what in cls.table()]
        return "\n".join(["| path | `RunDir` attribute | what |", "|---|---|---|", *rows])

    def _path(self, name: str) -> Path:
        return self.root / _FILES[name][0].rstrip("/")

    # one property per file of the table
    run_file = property(lambda self: self._path("run_file"), doc="``run.json``")
    rounds = property(lambda self: self._path("rounds"), doc="``rounds.jsonl``")
    config_yaml = property(lambda self: self._path("config_yaml"), doc="``config.yaml``")
    pool = property(lambda self: self._path("pool"), doc="``pool/``")
    label_state = property(lambda self: self._path("label_state"), doc="``pool/label_state.npy``")
    pool_meta = property(lambda self: self._path("pool_meta"), doc="``pool/pool.json``")
    pending = property(lambda self: self._path("pending"), doc="``pending.json``")
    model_state = property(lambda self: self._path("model_state"), doc="``model_state.pt``")
    cache = property(lambda self: self._path("cache"), doc="``cache/``")
    scoring = property(lambda self: self._path("scoring"), doc="``scoring/``")
    revisions = property(lambda self: self._path("revisions"), doc="``revisions/``")
    final_model = property(lambda self: self._path("final_model"), doc="``final_model/``")
    final_state_dict = property(lambda self: self._path("final_state_dict"), doc="``final_model/state_dict.pt``")
    ann = property(lambda self: self._path("ann"), doc="``ann/``")
    label_studio = property(lambda self: self._path("label_studio"), doc="``label_studio/``")
    lock = property(lambda self: self._path("lock"), doc="``.lock``")
    logs = property(lambda self: self._path("logs"), doc="``logs/``")
    pseudo_labels = property(lambda self: self._path("pseudo_labels"), doc="``pseudo/``")
    stream = property(lambda self: self._path("stream"), doc="``stream/``")
    stream_config = property(lambda self: self._path("stream_config"), doc="``stream/stream.json``")
    stream_checkpoint = property(lambda self: self._path("stream_checkpoint"), doc="``stream/checkpoint.json``")
    stream_decisions = property(lambda self: self._path("stream_decisions"), doc="``stream/decisions.jsonl``")
    stream_sent = property(lambda self: self._path("stream_sent"), doc="``stream/sent.jsonl``")
    stream_labels = property(lambda self: self._path("stream_labels"), doc="``stream/labels.jsonl``")
    stream_models = property(lambda self: self._path("stream_models"), doc="``stream/models/``")
    stream_plot = property(lambda self: self._path("stream_plot"), doc="``stream/stream.png``")

    def stream_model(self, round: int) -> Path:
        """``stream/models/round-NNN.pt``: the weights of a stream's retrained round."""
        return self.stream_models / f"{round_tag(round)}.pt"

    def revision(self, round: int) -> Path:
        """``revisions/round-NNN``: the local revision of ``round``."""
        return self.revisions / round_tag(round)

    def revision_card(self, round: int) -> Path:
        """The dataset card of the local revision of ``round``."""
        return self.revision(round) / CARD_FILE

    def local_rounds(self) -> list[int]:
        """Rounds with a complete local revision (card written last), ascending."""
        if not self.revisions.is_dir():
            return []
        found = []
        for p in self.revisions.iterdir():
            r = parse_round_tag(p.name)
            if r is not None and p.is_dir() and (p / CARD_FILE).exists():
                found.append(r)
        return sorted(found)

    # ------------------------------------------------------------------ reading
    def read_records(self) -> list[dict[str, Any]]:
        """The complete rounds' records (a torn last line is ignored)."""
        return read_jsonl(self.rounds)

    def has_records(self) -> bool:
        return bool(self.read_records())

    def is_complete(self) -> bool:
        """Whether the last record has a stopping reason."""
        records = self.read_records()
        return bool(records and records[-1].get("stop_reason"))

    def read_run_file(self) -> dict[str, Any]:
        """``run.json`` (``{}`` when there is none), legacy configuration names updated."""
        if not self.run_file.is_file():
            return {}
        data = json.loads(self.run_file.read_text(encoding="utf-8"))
        run = (data.get("config") or {}).get("run")
        if isinstance(run, dict):
            for old, new in LEGACY_CONFIG_NAMES.items():
                if old in run and new not in run:
                    run[new] = run.pop(old)
        return data

    def run_id(self) -> str | None:
        """Identity of the run: a hash of its ``run.json`` (configuration and creation time)."""
        if not self.run_file.is_file():
            return None
        return hashlib.sha256(self.run_file.read_bytes()).hexdigest()[:16]


class RunSource(Protocol):
    """What :meth:`RunInfo.from_loop` reads of a loop (an :class:`~energizer_hf.loop.ActiveLoop`)."""

    files: RunDir
    records: Sequence[Mapping[str, Any]]

    def identity(self) -> dict[str, Any]:
        """The :class:`RunInfo` fields that say what the run is: ``settings`` and ``config``
        as ``run.json`` keeps them, the strategy and its parameters, who labels, which data."""
        ...


@dataclass(frozen=True)
class RunInfo:
    """A frozen record of a run: everything cards, pushes and people need to know about it.

    Attributes:
        files: the run directory.
        settings: the loop settings (query size, rounds, budget, seed, ...).
        config: the face's description of the run (the ``RunConfig`` fields of an
            HF-native run, ``{"api": "seed", ...}`` for the seed API).
        strategy / strategy_class: the strategy's registered name and class.
        strategy_params: the arguments the strategy was built with.
        label_source: ``"dataset"`` (labels revealed from the data) or ``"annotator"``.
        pool_fingerprint / pool_rows: the identity of the pool.
        source_dataset: a name for the pool's dataset.
        text_column: the text column people read, when the pool has one.
        label_names: the class names, in label-id order.
        records: the complete rounds' records.
        run_id: a hash of ``run.json``.
        card: what the cards say of the data and the model beyond the run itself:
            ``license``, ``language``, ``base_model``, ``source_datasets``, ``source``
            (a description of the data: a Hub id, local files), ``eval`` (the dataset and
            split the test metrics were measured on: ``type``, ``name``, ``config``,
            ``split``), ``task_ids``; missing keys are unknown.
    """

    files: RunDir
    settings: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    strategy: str = "unknown"
    strategy_class: str = ""
    strategy_params: dict[str, Any] = field(default_factory=dict)
    label_source: str | None = None
    pool_fingerprint: str | None = None
    pool_rows: int | None = None
    source_dataset: str = "in-memory dataset"
    text_column: str | None = None
    label_names: tuple[str, ...] = ()
    records: tuple[dict[str, Any], ...] = ()
    run_id: str | None = None
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def last_round(self) -> int | None:
        """The round of the last record, ``None`` before the first one."""
        return int(self.records[-1]["round"]) if self.records else None

    def up_to(self, round: int) -> RunInfo:
        """The same run with the records of rounds ``<= round`` only."""
        return replace(self, records=tuple(r for r in self.records if int(r.get("round", -1)) <= round))

    @classmethod
    def from_loop(cls, loop: RunSource) -> RunInfo:
        """The run a loop is making, as it stands (its records so far)."""
        return cls(
            files=loop.files,
            records=tuple(dict(r) for r in loop.records),
            run_id=loop.files.run_id(),
            **loop.identity(),
        )

    @classmethod
    def from_dir(cls, run_dir: str | os.PathLike | RunDir) -> RunInfo:
        """A run read back from its directory (no data, no model).

        Raises:
            EnergizerError: the directory has no ``run.json``.
        """
        files = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        saved = files.read_run_file()
        if not saved:
            raise EnergizerError(
                f"'{files.root}' is not a run directory (it has no run.json): give the run_dir of "
                "an `energizer-hf run`, ActiveLearner or Trainer.active_fit run."
            )
        config = saved.get("config") or {}
        run = dict(config.get("run") or {})
        info = dict(saved.get("info") or {})
        records = tuple(files.read_records())
        if not info and records:  # a run made before run.json kept its identity block
            last = files.revision_card(int(records[-1]["round"]))
            meta = front_matter(last.read_text(encoding="utf-8")).get(META_KEY) if last.is_file() else None
            if isinstance(meta, dict):
                info = {"label_names": meta.get("label_names"), "label_source": meta.get("label_source")}
        dataset = run.get("dataset")
        return cls(
            files=files,
            settings=dict(config.get("settings") or {}),
            config=run,
            strategy=str(config.get("strategy") or "unknown"),
            strategy_class=str(config.get("strategy_class") or ""),
            strategy_params=dict(info.get("strategy_params") or {}),
            label_source=info.get("label_source"),
            pool_fingerprint=config.get("pool_fingerprint"),
            pool_rows=config.get("pool_rows"),
            source_dataset=str(info.get("source_dataset") or (dataset if isinstance(dataset, str) and dataset else "in-memory dataset")),
            text_column=info.get("text_column", run.get("text_column")),
            label_names=tuple(info.get("label_names") or run.get("label_names") or ()),
            records=records,
            run_id=files.run_id(),
            card=dict(info.get("card") or {}),
        )
