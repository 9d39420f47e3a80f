"""The HF-native stream entry point: items arrive, each is sent for labelling or let go.

:class:`StreamLearner` reads a stream (a ``datasets.Dataset`` replayed in a seeded order,
a ``datasets.IterableDataset`` such as ``load_dataset(..., streaming=True)``, or any
iterable of rows) in mini-batches, scores each mini-batch with the current model through
the pool's :class:`~energizer_hf.scoring.PoolScorer`, lets a stream strategy
(:mod:`energizer_hf.stream.strategies`) decide item by item under a budget rate, sends the
chosen items to a stream oracle and retrains, from the initial weights, on every label
received so far each ``retrain_every`` new labels (or ``retrain_seconds``).

**Decisions while a retrain runs.** A retrain runs in a background thread on a copy of the
model; the stream goes on deciding with the model in use (and the strategy's own state),
so training never stops the stream. The new weights replace the model in use at a
mini-batch boundary: with ``retrain_lag = k`` items, at the first boundary at least ``k``
items after the retrain started (the stream waits there if training is not done: the
swap position, hence every decision, is reproducible); with ``retrain_lag = None``, at the
first boundary after training ends (the stream never waits; the position is recorded).
Every decision line names the model round it used.

**State.** Everything lives in the run directory (file names from
:class:`~energizer_hf.run.RunDir`): ``run.json``, ``rounds.jsonl`` (one record per retrain),
``revisions/round-NNN`` (the labelled set of each retrain, pushable to the Hub like pool
rounds), and ``stream/``: the decision log, the items sent, the labels received, the
checkpoint (position, source, strategy and learner state, written atomically after each
mini-batch) and each round's weights (``stream/models/round-NNN.pt``). A killed run resumes
at the checkpoint: the model of the recorded round is loaded, a retrain that was running
is redone on the same labels, and the same decisions follow.

The configuration and the results are in :mod:`energizer_hf.stream_config`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import (
    ColumnNotFoundError,
    EnergizerError,
    LabelMismatchError,
    StreamInputError,
    StreamTooShortError,
)
from energizer_hf.learner import encode_labels, encode_with_names, load_data
from energizer_hf.pool import ActivePool
from energizer_hf.revisions import ensure_round_stores, save_final_model, split_stores
from energizer_hf.revisions.rounds import jsonable as _jsonable
from energizer_hf.revisions.rounds import quiet_datasets
from energizer_hf.run import RunDir, RunInfo
from energizer_hf.stream import (
    ReplaySource,
    StreamSource,
    StreamStore,
    as_stream_source,
    make_stream_strategy,
)
from energizer_hf.stream.oracles import ColumnOracle, SentItem, StreamOracle, label_id
from energizer_hf.stream.strategies import StreamStrategy
from energizer_hf.stream_config import _NON_SEMANTIC, StreamConfig, StreamResults
from energizer_hf.utils import atomic_write_bytes, atomic_write_json, round_seed, seed_everything

__all__ = ["StreamConfig", "StreamLearner", "StreamResults"]

log = logging.getLogger(__name__)

class _Retrain:
    """One retrain running in a background thread."""

    def __init__(self, round: int, position: int, num_labels: int, target: Any) -> None:
        self.round, self.position, self.num_labels = round, position, num_labels
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.started = time.time()
        self._target = target
        self.thread = threading.Thread(target=self._run, name=f"energizer-retrain-{round}", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._target()
        except BaseException as err:  # noqa: BLE001 - re-raised in the stream's thread
            self.error = err

    def start(self) -> _Retrain:
        self.thread.start()
        return self

    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self) -> dict[str, Any]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _maybe_fault(point: str, value: int) -> None:
    """Test hook: ``ENERGIZER_HF_FAULT=stream_commit:3`` kills the process after batch 3."""
    spec = os.environ.get("ENERGIZER_HF_FAULT")
    if spec and spec == f"{point}:{value}":
        os._exit(77)


class StreamLearner:
    """Stream-based active learning with a ``transformers`` model (see the module docstring).

    Everything in :class:`StreamConfig` can be given as keyword overrides; objects are
    passed directly.

    Args:
        config: a :class:`StreamConfig` (default: all defaults).
        stream: a ``datasets.Dataset`` (replayed in a seeded order), a
            ``datasets.IterableDataset``, a :class:`~energizer_hf.stream.StreamSource`, a list of
            rows or a function returning a fresh iterator (default: loaded from the config).
        test: a ``datasets.Dataset`` to test each retrained model on (default: the config's
            ``test_split`` of the loaded data).
        model / tokenizer: objects or names (see :class:`StreamConfig`).
        strategy: a stream strategy name or a :class:`~energizer_hf.stream.StreamStrategy`.
        oracle: a :class:`~energizer_hf.stream.oracles.StreamOracle` (default: the stream's
            own label column, a simulation).
        callbacks: round stores (:class:`~energizer_hf.revisions.HubRevisions`, ...).
        **overrides: StreamConfig fields.

    Example:
        >>> learner = StreamLearner(stream=ag_news["train"], test=ag_news["test"],  # doctest: +SKIP
        ...                         model="prajjwal1/bert-tiny", budget_rate=0.05, retrain_every=50)
        >>> results = learner.run()  # doctest: +SKIP
        >>> learner.plot()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: StreamConfig | None = None,
        *,
        stream: Any = None,
        test: Any = None,
        model: Any = None,
        tokenizer: Any = None,
        strategy: str | StreamStrategy | None = None,
        oracle: StreamOracle | None = None,
        callbacks: Sequence[Any] | None = None,
        **overrides: Any,
    ) -> None:
        config = config or StreamConfig()
        fields = {f.name for f in dataclasses.fields(StreamConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise EnergizerError(f"StreamLearner got unknown arguments {unknown}: they are not StreamConfig fields.")
        for name, value in (("model", model), ("tokenizer", tokenizer)):
            if isinstance(value, (str, os.PathLike)):
                overrides[name] = str(value)
        self._model = None if isinstance(model, (str, os.PathLike)) else model
        self._tokenizer = None if isinstance(tokenizer, (str, os.PathLike)) else tokenizer
        self._strategy = None
        if isinstance(strategy, str):
            overrides["strategy"] = strategy
        elif isinstance(strategy, StreamStrategy):
            self._strategy = strategy
            overrides["strategy"] = strategy.name
        elif strategy is not None:
            raise StreamInputError(
                f"strategy must be a stream strategy name or a StreamStrategy, got {type(strategy).__name__}."
            )
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        self._stream = stream
        self._test = test
        self.oracle = oracle
        self.callbacks = list(callbacks or [])
        self.files = RunDir(self.config.run_dir)
        self.records: list[dict[str, Any]] = []
        self._ready = False
        # seconds spent in this session: `swap` (waiting for a retrain at a swap), `score`,
        # `decide` (deciding, committing, sending, polling), `stream` (the whole loop),
        # `longest_batch`; `items` decided
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ set-up
    def _data(self) -> tuple[Any, Any]:
        """The stream and the test split, from the objects given or the configuration."""
        cfg = self.config
        stream, test = self._stream, self._test
        if stream is not None:
            return stream, test
        if cfg.streaming:
            import datasets

            if cfg.data_files:
                builder = _builder_of(cfg.data_files)
                loaded = datasets.load_dataset(builder, data_files=dict(cfg.data_files), streaming=True)
            elif cfg.dataset:
                loaded = datasets.load_dataset(cfg.dataset, cfg.dataset_config, streaming=True)
            else:
                raise EnergizerError("No stream given: set `dataset` or `data_files`, or pass stream=...")
            if cfg.split not in loaded:
                raise EnergizerError(f"The dataset has no split '{cfg.split}' (splits: {', '.join(loaded)}).")
            stream = loaded[cfg.split]
            if test is None and cfg.test_split and cfg.test_split in loaded:
                # the test split is finite and read whole; only the stream is streamed
                test = load_data(cfg.dataset, cfg.dataset_config, cfg.data_files)[cfg.test_split]
            return stream, test
        data = load_data(cfg.dataset, cfg.dataset_config, cfg.data_files)
        if cfg.split not in data:
            raise EnergizerError(f"The dataset has no split '{cfg.split}' (splits: {', '.join(data)}): set split.")
        if test is None and cfg.test_split:
            test = data.get(cfg.test_split)
        return data[cfg.split], test

    def setup(self) -> StreamLearner:
        """Load data, model and tokenizer; open (or resume) the run directory."""
        import torch
        from transformers import AutoTokenizer, DataCollatorWithPadding

        from energizer_hf.fitting import LightningBackend
        from energizer_hf.learner import ActiveLearner
        from energizer_hf.model import HFSequenceClassifier

        cfg = self.config
        files = self.files
        files.root.mkdir(parents=True, exist_ok=True)
        stream, test = self._data()
        replay_kwargs = {"seed": cfg.seed, "shuffle": cfg.shuffle} if _is_dataset(stream) else {}
        self.source: StreamSource = as_stream_source(
            stream, text_column=cfg.text_column, id_column=cfg.id_column, **replay_kwargs
        )
        self.label_names = self._label_names(stream, test)
        num_classes = len(self.label_names)
        self.strategy = self._strategy if self._strategy is not None else self._make_strategy(num_classes)
        # tokenizer and models: the one in use (scoring) and the one retrained in the background
        tokenizer = self._tokenizer
        if tokenizer is None:
            name = cfg.tokenizer or cfg.model
            if not name:
                raise EnergizerError("Give a tokenizer (object or name) or a model name to load one from.")
            tokenizer = AutoTokenizer.from_pretrained(name)
        self.tokenizer = tokenizer
        self.collator = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        spec = self._model if self._model is not None else cfg.model
        if spec is None:
            raise EnergizerError("No model given: set `model` to a hub id or a local directory.")
        seed_everything(cfg.seed)
        self.module = HFSequenceClassifier(
            spec, num_labels=num_classes, id2label=dict(enumerate(self.label_names)),
            learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio,
        )
        self._trainee = copy.deepcopy(self.module)
        run_cfg = cfg.run_config()
        trainer_kwargs = ActiveLearner(run_cfg)._trainer_kwargs(files)
        self.backend = LightningBackend(
            self._trainee, None, trainer_kwargs, reset_weights=True, seed=cfg.seed, quiet=True,
            scoring_precision=cfg.scoring_precision, num_classes=num_classes, schedule=run_cfg.fit_schedule(),
        )
        self.device = self.backend.scoring_device()
        self.module.to(self.device).eval()
        self._test_data = self._tokenized_test(test)
        self.oracle = self.oracle if self.oracle is not None else self._default_oracle()
        if not isinstance(self.oracle, StreamOracle):
            raise StreamInputError(
                f"oracle must have label_source, bind, send, poll and finish (a StreamOracle), got "
                f"{type(self.oracle).__name__}."
            )
        callbacks, stores = split_stores(self.callbacks)
        self.stores = ensure_round_stores(stores, repo_id=cfg.hub_repo_id, run_branch=cfg.hub_branch,
                                          private=cfg.hub_private)
        self._open_run(torch)
        self._ready = True
        return self

    def _make_strategy(self, num_classes: int) -> StreamStrategy:
        """The configured strategy; the variable-uncertainty family gets the score's maximum
        (``log C`` for entropy) unless ``strategy_args`` gives one."""
        import inspect

        from energizer_hf.stream import get_stream_strategy_class

        cfg = self.config
        params = dict(cfg.strategy_args or {})
        params.setdefault("window", cfg.window)
        params.setdefault("seed", cfg.seed)
        cls = get_stream_strategy_class(cfg.strategy)
        takes_max = any("max_score" in inspect.signature(k.__init__).parameters
                        for k in cls.__mro__ if "__init__" in vars(k))
        if takes_max and cfg.score == "entropy":
            params.setdefault("max_score", math.log(num_classes))
        return make_stream_strategy(cfg.strategy, cfg.budget_rate, **params)

    def _label_names(self, stream: Any, test: Any) -> list[str]:
        cfg = self.config
        names = None
        for data in (stream, test):
            feature = (getattr(data, "features", None) or {}).get(cfg.label_column) if data is not None else None
            if feature is not None and not hasattr(feature, "names") and not hasattr(feature, "dtype"):
                raise StreamInputError(  # a Sequence/list feature: several labels per item
                    f"The label column '{cfg.label_column}' holds several labels per item ({feature}): "
                    "stream-based AL serves one label per item (text classification); run multi-label "
                    "and token-classification tasks with ActiveLearner (pool-based)."
                )
            if getattr(feature, "names", None):
                names = list(feature.names)
                break
        if names is None and test is not None and cfg.label_column in getattr(test, "column_names", []):
            names = encode_labels(test[cfg.label_column][:])[0]
        if cfg.label_names:
            if names is not None and list(cfg.label_names) != names:
                raise LabelMismatchError(f"label_names {cfg.label_names} do not match the classes in the data {names}.")
            names = [str(n) for n in cfg.label_names]
        if not names or len(names) < 2:
            raise LabelMismatchError(
                "The stream's classes are unknown: give label_names (a stream is never read whole to find "
                "them), or a stream / test split whose label column is a ClassLabel."
            )
        return names

    def _tokenized_test(self, test: Any) -> tuple[Any, np.ndarray, np.ndarray] | None:
        from energizer_hf.data import column_as_numpy, tokenize_dataset
        from energizer_hf.learner import _tokenizer_identity
        from energizer_hf.utils import dataset_fingerprint

        cfg = self.config
        if test is None:
            return None
        missing = [c for c in (cfg.text_column, cfg.label_column) if c not in test.column_names]
        if missing:
            raise ColumnNotFoundError(
                f"The test split has no column {', '.join(map(repr, missing))}; its columns are "
                f"{', '.join(test.column_names)}. Set text_column / label_column."
            )
        labels = encode_with_names(test[cfg.label_column][:], self.label_names, test.features.get(cfg.label_column))
        self.files.cache.mkdir(parents=True, exist_ok=True)
        name = f"stream-test-{dataset_fingerprint(test)}-{_tokenizer_identity(self.tokenizer)}-{cfg.max_length}.arrow"
        tokenized = tokenize_dataset(test, self.tokenizer, cfg.text_column, max_length=cfg.max_length,
                                     cache_file=str(self.files.cache / name), progress=False)
        return tokenized, labels, column_as_numpy(tokenized, "length").astype(np.int64)

    def _default_oracle(self) -> StreamOracle:
        if self.config.oracle == "label_studio":
            raise StreamInputError(
                "oracle: label_studio needs the oracle object: pass oracle=LabelStudioStreamOracle(...) "
                "(energizer_hf.oracles.label_studio), or run `energizer-hf stream`, which builds it from "
                "the label_studio settings."
            )
        return ColumnOracle(self.config.label_column, self.label_names)

    # ------------------------------------------------------------------ the run directory
    def _semantic(self) -> dict[str, Any]:
        out = {k: v for k, v in self.config.to_dict().items() if k not in _NON_SEMANTIC}
        out["model"] = self.config.model if self._model is None else type(self._model).__name__
        out["strategy"] = self.strategy.state_dict()["params"] | {"name": self.strategy.name}
        out["source"] = self.source.kind
        out["label_names"] = list(self.label_names)
        return out

    def identity(self) -> dict[str, Any]:
        """What the run is, as :class:`~energizer_hf.run.RunInfo` reads it."""
        cfg = self.config
        replay = self.source if isinstance(self.source, ReplaySource) else None
        return {
            "settings": self._settings(),
            "config": {k: v for k, v in cfg.to_dict().items() if k != "label_studio"},
            "strategy": self.strategy.name,
            "strategy_class": type(self.strategy).__qualname__,
            "strategy_params": self.strategy.params(),
            "label_source": self.oracle.label_source,
            "pool_fingerprint": replay.fingerprint() if replay is not None else None,
            "pool_rows": len(replay) if replay is not None else None,
            "source_dataset": cfg.dataset or "in-memory stream",
            "text_column": cfg.text_column,
            "label_names": tuple(self.label_names),
        }

    def _settings(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "mode": "stream", "seed": cfg.seed, "budget_rate": cfg.budget_rate, "window": cfg.window,
            "retrain_every": cfg.retrain_every, "retrain_seconds": cfg.retrain_seconds,
            "retrain_lag": cfg.retrain_lag, "stream_batch_size": cfg.stream_batch_size, "score": cfg.score,
        }

    def run_info(self) -> RunInfo:
        """The run as it stands (cards, pushes)."""
        return RunInfo.from_loop(self)

    def _open_run(self, torch: Any) -> None:
        files = self.files
        self.store = StreamStore(files, config=self._semantic(), keep_rows=not isinstance(self.source, ReplaySource))
        if not files.run_file.exists():
            ident = self.identity()
            config = {
                "settings": ident["settings"], "strategy": ident["strategy"],
                "strategy_class": ident["strategy_class"], "pool_fingerprint": ident["pool_fingerprint"],
                "pool_rows": ident["pool_rows"], "run": _jsonable(ident["config"]),
            }
            info = _jsonable({k: ident[k] for k in ("strategy_params", "label_source", "source_dataset",
                                                     "text_column", "label_names")})
            atomic_write_json(files.run_file, {"config": config, "created": time.time(), "info": info})
        self.records = files.read_records()
        ckpt = self.store.checkpoint
        self.state: dict[str, Any] = {
            "round": -1, "next_round": 0, "labels_at_trigger": 0, "inflight": None, "finished": None,
        }
        if ckpt is not None:
            self.source.load_state_dict(ckpt.source)
            self.strategy.load_state_dict(ckpt.strategy)
            self.state.update(ckpt.learner)
        recorded = {int(r["round"]) for r in self.records}
        inflight = self.state.get("inflight")
        if inflight is not None and int(inflight["round"]) in recorded:
            # swapped and recorded, but no mini-batch was committed after the swap
            self.state.update(round=int(inflight["round"]), inflight=None)
        if self.state["round"] >= 0:
            self._load_weights(int(self.state["round"]), torch)
        self._retrain: _Retrain | None = None
        self._last_trigger_time = time.time()

    def _load_weights(self, round: int, torch: Any) -> None:
        path = self.files.stream_model(round)
        self.module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.module.to(self.device).eval()

    # ------------------------------------------------------------------ labels
    def _rows_of(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The columns of sent items (``sent.jsonl`` rows, or the replayed dataset's rows)."""
        if isinstance(self.source, ReplaySource):
            ids = [int(r["id"]) for r in records]
            if not ids:
                return []
            cols = self.source.dataset[ids]
            return [{k: v[j] for k, v in cols.items()} for j in range(len(ids))]
        return [dict(r.get("row") or {}) for r in records]

    def _resend_pending(self) -> None:
        pending = set(self.store.pending_ids())
        if not pending:
            return
        recs = [r for r in self.store.sent_records() if r["id"] in pending]
        rows = self._rows_of(recs)
        self.oracle.send([SentItem(id=r["id"], position=int(r["position"]), row=row) for r, row in zip(recs, rows)])

    def _intake(self, pairs: Sequence[tuple[Any, int]]) -> None:
        if pairs:
            ids = [i for i, _ in pairs]
            labels = [int(y) for _, y in pairs]
            self.store.record_labels(ids, labels)

    def _usable_labels(self) -> list[tuple[Any, int]]:
        """Labels received (skips left out), in the order they came back."""
        return [(i, int(y)) for i, y in self.store.labels().items() if int(y) >= 0]

    # ------------------------------------------------------------------ retraining
    def _maybe_trigger(self) -> None:
        if self._retrain is not None or self.state.get("inflight") is not None:
            return
        cfg = self.config
        have = len(self._usable_labels())
        new = have - int(self.state["labels_at_trigger"])
        due = new >= cfg.retrain_every
        if not due and cfg.retrain_seconds is not None and new > 0:
            due = time.time() - self._last_trigger_time >= float(cfg.retrain_seconds)
        if due:
            self._start_retrain(int(self.state["next_round"]), self.store.position, have)

    def _start_retrain(self, round: int, position: int, num_labels: int) -> None:
        import torch

        self.state.update(inflight={"round": round, "position": position, "num_labels": num_labels},
                          labels_at_trigger=num_labels, next_round=round + 1)
        self._last_trigger_time = time.time()
        pool = self._labelled_pool(num_labels, round)
        self._retrain = _Retrain(round, position, num_labels, lambda: self._fit(pool, round, torch)).start()

    def _labelled_pool(self, num_labels: int, round: int) -> ActivePool:
        """The first ``num_labels`` labels as an :class:`~energizer_hf.pool.ActivePool` over the
        labelled items only (each labelled in the round that first trained on it)."""
        import datasets

        labelled = self._usable_labels()[:num_labels]
        ids = [i for i, _ in labelled]
        by_id = {r["id"]: r for r in self.store.sent_records() if r["id"] in set(ids)}
        recs = [by_id[i] for i in ids]
        rows = self._rows_of(recs)
        if isinstance(self.source, ReplaySource):
            with quiet_datasets():
                ds = self.source.dataset.select([int(i) for i in ids])
                ds = ds.add_column("stream_id", [int(i) for i in ids])
        else:
            columns = {name: [row.get(name) for row in rows] for name in (rows[0] if rows else {})}
            columns["stream_id"] = [str(i) if isinstance(i, str) else int(i) for i in ids]
            ds = datasets.Dataset.from_dict(columns)
        pool = ActivePool(ds)
        labels = np.asarray([y for _, y in labelled], dtype=np.int64)
        bounds = [int(r["num_labelled"]) for r in sorted(self.records, key=lambda r: int(r["round"]))
                  if int(r["round"]) < round]
        start = 0
        for r, end in enumerate([*bounds, num_labels]):
            if end > start:
                idx = np.arange(start, end)
                pool.label(idx, labels[idx], round=r if r < len(bounds) else round)
            start = max(start, end)
        return pool

    def _fit(self, pool: ActivePool, round: int, torch: Any) -> dict[str, Any]:
        """Train (in the background thread) and keep the weights; returns the record's fields."""
        from energizer_hf.data import HFDataAdapter, column_as_numpy, tokenize_dataset
        from energizer_hf.learner import _tokenizer_identity

        cfg = self.config
        files = self.files
        record: dict[str, Any] = {}
        path = files.stream_model(round)
        t0 = time.perf_counter()
        if not path.exists():  # a resumed run loads a recorded round's weights, never retrains it
            name = f"stream-round-{round:03d}-{pool.fingerprint}-{_tokenizer_identity(self.tokenizer)}.arrow"
            tokenized = tokenize_dataset(pool.dataset, self.tokenizer, cfg.text_column, max_length=cfg.max_length,
                                         cache_file=str(files.cache / name), progress=False)
            lengths = column_as_numpy(tokenized, "length").astype(np.int64)
            test = self._test_data
            self.backend.data = HFDataAdapter(
                tokenized, self.collator, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
                test=None if test is None else (test[0], test[1]), lengths=lengths,
                model_columns=[c for c in tokenized.column_names if c != "length"],
                group_by_length=True, test_lengths=None if test is None else test[2],
            )
            seed_everything(round_seed(cfg.seed, round))
            record.update(self.backend.fit(pool, round))
            record["time_fit"] = time.perf_counter() - t0
            if test is not None:
                t1 = time.perf_counter()
                record.update(self.backend.test(round))
                record["time_test"] = time.perf_counter() - t1
            import io

            buf = io.BytesIO()
            torch.save(self._trainee.state_dict(), buf)
            files.stream_models.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(files.stream_model(round), buf.getvalue())
            atomic_write_json(path.with_suffix(".json"), _jsonable(record))
        else:
            meta = path.with_suffix(".json")
            if meta.exists():
                record.update(json.loads(meta.read_text()))
        record["num_train"] = int(pool.train_ids.size)
        record["label_distribution"] = {self.label_names[k]: v for k, v in pool.label_distribution().items()}
        return {"record": record, "pool": pool}

    def _maybe_swap(self, position: int, *, final: bool = False) -> None:
        """Put a finished retrain's model in use at this mini-batch boundary (see the module docstring)."""
        import torch

        inflight = self.state.get("inflight")
        if inflight is None:
            return
        if self._retrain is None:  # resumed with a retrain in flight: redo it on the same labels
            r, p, n = int(inflight["round"]), int(inflight["position"]), int(inflight["num_labels"])
            pool = self._labelled_pool(n, r)
            self._retrain = _Retrain(r, p, n, lambda: self._fit(pool, r, torch)).start()
        lag = self.config.retrain_lag
        if not final:
            if lag is not None and position < int(inflight["position"]) + lag:
                return
            if lag is None and not self._retrain.done():
                return
        t_wait = time.perf_counter()
        out = self._retrain.join()
        waited = time.perf_counter() - t_wait
        round = self._retrain.round
        self._load_weights(round, torch)
        record = {
            "round": round,
            "strategy": self.strategy.name,
            "num_labelled": self._retrain.num_labels,
            "trigger_position": self._retrain.position,
            "swap_position": int(position),
            "num_sent": self.store.num_sent,
            **out["record"],
            "time_stream_waited": waited,
            "stop_reason": None,
        }
        self.records.append(_jsonable(record))
        from energizer_hf.utils import append_jsonl

        append_jsonl(self.files.rounds, self.records[-1])
        info = self.run_info()
        for store in self.stores:
            store.on_round_end(info, out["pool"], self.records[-1])
        self.state.update(round=round, inflight=None)
        self._retrain = None
        self.last_record = self.records[-1]

    # ------------------------------------------------------------------ scoring
    def _score(self, batch: Any) -> dict[str, np.ndarray]:
        from energizer_hf.scoring import PoolScorer
        from energizer_hf.stream.batches import TokenizedRows

        cfg = self.config
        rows = TokenizedRows(batch.texts, self.tokenizer, self.collator, cfg.max_length)
        scorer = PoolScorer(rows, batch_size=cfg.eval_batch_size, device=self.device, precision=cfg.scoring_precision,
                            num_classes=len(self.label_names), collective=False)
        module = self.module
        what = ("probs", "embeddings") if self.strategy.requires_embeddings else ("probs",)
        out = scorer.outputs(lambda b: module(b), np.arange(len(batch)), what, model=module,
                             forward_with_embeddings=module.logits_and_embeddings,
                             embed=module.embed, tag="stream", who=self.strategy.name)
        probs = np.asarray(out["probs"], dtype=np.float64)
        return {"probs": probs, "scores": _uncertainty(probs, cfg.score),
                "embeddings": np.asarray(out["embeddings"]) if "embeddings" in out else None}

    # ------------------------------------------------------------------ the run
    def run(self) -> StreamResults:
        """Run (or resume) the stream; returns its :class:`StreamResults`.

        The run holds its directory's lock (:class:`~energizer_hf.runlock.RunLock`) from
        set-up to the end: a second process on the same ``run_dir`` is refused with
        :class:`~energizer_hf.errors.RunLockedError` naming the holder.
        """
        from energizer_hf.runlock import RunLock

        self.files.root.mkdir(parents=True, exist_ok=True)
        with RunLock(self.files.lock):
            return self._run()

    def _run(self) -> StreamResults:
        if not self._ready:
            self.setup()
        cfg = self.config
        if self.state.get("finished"):
            log.info("The stream in %s is finished; returning its results.", self.files.root)
            return self._results(self.state["finished"])
        self.oracle.bind(self.run_info(), self.label_names)
        self._resend_pending()
        self._intake(self.oracle.poll())
        self._maybe_trigger()
        bar = self._bar()
        stop_reason = "stream_end"
        truth_known = True
        clock = time.perf_counter
        t_run = clock()
        try:
            for batch in self.source.batches(cfg.stream_batch_size):
                start = int(batch.positions[0])
                if cfg.max_items is not None and start >= cfg.max_items:
                    stop_reason = "max_items"
                    break
                t0 = clock()
                self._maybe_swap(start)
                t1 = clock()
                n = len(batch)
                scored = self._score(batch) if self.strategy.requires_scores else None
                t2 = clock()
                mask = self.strategy.decide(
                    None if scored is None else scored["scores"],
                    None if scored is None else scored["embeddings"],
                    num_items=n,
                )
                preds = None if scored is None else scored["probs"].argmax(1)
                truth = self._truth(batch) if truth_known else None
                truth_known = truth is not None
                to_send = self.store.commit(
                    batch, self.strategy.last, source_state=self.source.state_dict(),
                    strategy_state=self.strategy.state_dict(), extra={"round": int(self.state["round"])},
                    item_extra={"pred": [None] * n if preds is None else preds.tolist(),
                                **({"truth": truth} if truth is not None else {})},
                    learner_state=self._learner_state(),
                )
                _maybe_fault("stream_commit", self.store.checkpoint.batches)
                if to_send:
                    chosen = np.flatnonzero(mask)
                    # pre-annotations only from a trained model (round >= 0), never the initial weights
                    trained = preds is not None and int(self.state["round"]) >= 0
                    self.oracle.send([
                        SentItem(id=batch.ids[j], position=int(batch.positions[j]), row=batch.row(int(j)),
                                 prediction=int(preds[j]) if trained else None,
                                 confidence=float(scored["probs"][j].max()) if trained else None)
                        for j in chosen
                    ])
                self._intake(self.oracle.poll())
                self._maybe_trigger()
                t3 = clock()
                self._time(items=n, swap=t1 - t0, score=t2 - t1, decide=t3 - t2, longest_batch=t3 - t0)
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix(self._progress(), refresh=False)
        finally:
            if bar is not None:
                bar.close()
            self._time(stream=clock() - t_run)
        return self._finish(stop_reason)

    def _time(self, **amounts: float) -> None:
        for key, value in amounts.items():
            if key == "longest_batch":
                self.timings[key] = max(self.timings.get(key, 0.0), value)
            else:
                self.timings[key] = self.timings.get(key, 0.0) + value

    def _finish(self, stop_reason: str) -> StreamResults:
        cfg = self.config
        self._intake(self.oracle.finish(cfg.final_wait))
        position = self.store.position
        self._maybe_swap(position, final=True)
        have = len(self._usable_labels())
        if not self.records:
            raise StreamTooShortError(
                f"The stream ended after {position} items with {have} labels, before the first retrain "
                f"(retrain_every={cfg.retrain_every}): lower retrain_every, raise budget_rate, or give a "
                "longer stream. The decisions so far are kept in the run directory."
            )
        if have > int(self.records[-1]["num_labelled"]):  # a last model on every label
            self._start_retrain(int(self.state["next_round"]), position, have)
            self._maybe_swap(position, final=True)
        self.state["finished"] = stop_reason
        self._write_state()
        if self.records:
            save_final_model(self.files.root, self.module.model, self.tokenizer)
        self.plot()
        return self._results(stop_reason)

    def _write_state(self) -> None:
        """The learner state after the last mini-batch (the stream's end), atomically."""
        path = self.files.stream_checkpoint
        raw = json.loads(path.read_text()) if path.exists() else None
        if raw is not None:
            raw["learner"] = self._learner_state()
            atomic_write_json(path, raw)

    def _learner_state(self) -> dict[str, Any]:
        return {k: self.state.get(k) for k in ("round", "next_round", "labels_at_trigger", "inflight", "finished")}

    def _truth(self, batch: Any) -> list[int | None] | None:
        """The stream's own labels of a mini-batch (a simulation), for the prequential accuracy."""
        values = batch.columns.get(self.config.label_column)
        if values is None:
            return None
        out: list[int | None] = []
        for v in values:
            try:
                out.append(None if v is None else label_id(v, self.label_names))
            except LabelMismatchError:
                out.append(None)
        return out

    def _results(self, stop_reason: str | None) -> StreamResults:
        return StreamResults(
            records=list(self.records), num_seen=self.store.position, num_sent=self.store.num_sent,
            num_labelled=len(self._usable_labels()), stop_reason=stop_reason, run_dir=self.files.root,
        )

    # ------------------------------------------------------------------ progress and plot
    def _bar(self) -> Any:
        if not self.config.progress:
            return None
        from tqdm.auto import tqdm

        total = len(self.source) if isinstance(self.source, ReplaySource) else None
        if self.config.max_items is not None:
            total = min(total or self.config.max_items, self.config.max_items)
        return tqdm(total=total, initial=self.store.position, desc="Stream", unit="item")

    def _progress(self) -> dict[str, Any]:
        acc = None
        for rec in reversed(self.records):
            if "test/accuracy" in rec:
                acc = rec["test/accuracy"]
                break
        return {"labelled": self.store.num_labelled, "rate": f"{self.strategy.window_spending:.3f}",
                "round": self.state["round"], "acc": "-" if acc is None else f"{acc:.3f}"}

    def progress(self) -> dict[str, Any]:
        """Items seen, sent, labelled, the current labelled rate (over the budget window) and
        the last test accuracy."""
        acc = StreamResults(self.records, 0, 0, 0, None, self.files.root).last_accuracy
        return {"seen": self.store.position, "sent": self.store.num_sent, "labelled": self.store.num_labelled,
                "rate": self.strategy.window_spending, "round": self.state["round"], "accuracy": acc}

    def plot(self, path: str | os.PathLike | None = None) -> Path:
        """Plot accuracy and labels spent over the stream (default: ``stream/stream.png``)."""
        from energizer_hf.stream.plot import plot_stream

        if not self._ready:
            self.setup()
        pos, sent, correct = [], [], []
        for rec in self.store.iter_decisions():
            pos.append(rec["position"])
            sent.append(rec["label"])
            pred, truth = rec.get("pred"), rec.get("truth")
            correct.append(np.nan if pred is None or truth is None else float(pred == truth))
        return plot_stream(
            path or self.files.stream_plot, positions=np.asarray(pos), sent=np.asarray(sent, dtype=bool),
            correct=np.asarray(correct, dtype=np.float64), rounds=self.records, budget_rate=self.config.budget_rate,
            window=min(self.config.window, 500), title=f"{self.strategy.name} at rate {self.config.budget_rate:g}",
        )

    def labelled_dataset(self) -> Any:
        """The labelled items as a ``datasets.Dataset`` (``stream_id``, their columns, ``label``)."""
        if not self._ready:
            self.setup()
        labelled = self._usable_labels()
        pool = self._labelled_pool(len(labelled), int(self.state["next_round"]))
        ds = pool.dataset
        with quiet_datasets():
            if self.config.label_column in ds.column_names:
                ds = ds.remove_columns(self.config.label_column)
            return ds.add_column(self.config.label_column, [y for _, y in labelled])


def _uncertainty(probs: np.ndarray, kind: str) -> np.ndarray:
    """Per-item uncertainty of ``(n, C)`` probabilities: least confidence (in [0, 1]), entropy
    (nats, in [0, log C]) or ``1 - (p1 - p2)`` (margin, in [0, 1]); higher = more informative."""
    import torch

    from energizer_hf.acquisition_functions import (
        entropy_from_probs,
        least_confidence_from_probs,
        margin_from_probs,
    )

    t = torch.as_tensor(probs, dtype=torch.float32)
    if kind == "entropy":
        return entropy_from_probs(t).double().numpy()
    if kind == "margin":
        return (1.0 + margin_from_probs(t)).double().numpy()
    return least_confidence_from_probs(t).double().numpy()


def _is_dataset(obj: Any) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, datasets.Dataset)


def _builder_of(data_files: dict[str, Any]) -> str:
    from energizer_hf.learner import _FILE_BUILDERS

    exts = set()
    for value in data_files.values():
        for f in [value] if isinstance(value, (str, os.PathLike)) else list(value):
            exts.add(Path(f).suffix.lower())
    if len(exts) != 1 or next(iter(exts)) not in _FILE_BUILDERS:
        raise EnergizerError(f"data_files must all be CSV, JSON(L) or parquet files of one kind, got {sorted(exts)}.")
    return _FILE_BUILDERS[next(iter(exts))]

