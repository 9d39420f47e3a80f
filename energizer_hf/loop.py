"""The round loop: one engine behind both the seed API and the HF-native entry point.

Each round ``r``: fit on the labelled training rows (validation rows for early stopping
and model selection), test, query ``k`` ids with the strategy, have the oracle label them
(they become round ``r + 1``), and append a record to ``<run_dir>/rounds.jsonl``.

Crash safety: the label state is replaced atomically by every ``label`` call and each
record is appended with an fsync. On resume, the last complete record says how far the run
got; labels of any later round (queried but not recorded) are rolled back and that round
is redone. With the same seed it makes the same query again, so the final labelled set is
the same as an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from energizer_hf.distributed import broadcast_from_rank0 as _broadcast
from energizer_hf.distributed import env_rank  # noqa: F401 - energizer_hf.loop's name
from energizer_hf.errors import (
    BudgetError,
    EnergizerError,
    InvalidIdsError,
)
from energizer_hf.loop_mixins import (
    MinorityClassMixin,
    PendingRoundMixin,
    RunDirMixin,
    TokenBudgetMixin,
)
from energizer_hf.loop_support import (  # noqa: F401 - re-exported: energizer_hf.loop's names
    BUDGET_UNITS,
    INITIAL_STRATEGIES,
    _awaiting_record,
    _diff_keys,
    _jsonable,
    _say,
    check_initial_ids,
    cold_start_class,
    round_float,
)
from energizer_hf.metrics import display_metrics
from energizer_hf.oracles.base import (
    AWAITING_ANNOTATIONS,
    AwaitingAnnotations,
    Oracle,
    Predict,
    as_oracle,
)
from energizer_hf.pool import ActivePool, split_validation, warn_pool_exhausted
from energizer_hf.query_strategies.base import Strategy
from energizer_hf.results import RoundResults
from energizer_hf.revisions.base import RoundStore
from energizer_hf.run import RunDir, RunInfo
from energizer_hf.scoring import QueryContext
from energizer_hf.stopping import StopState, check_stopping, validate_criteria
from energizer_hf.utils import (  # noqa: F401 - round_seed: energizer_hf.loop's name
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    round_seed,
    seed_everything,
)

__all__ = ["ActiveLoop", "Backend", "LoopSettings", "check_initial_ids", "cold_start_class"]

log = logging.getLogger(__name__)


@dataclass
class LoopSettings:
    """How many rounds, how many labels, how to split them.

    Attributes:
        query_size: ids labelled per round (> 0).
        max_rounds: number of query rounds; the run makes ``max_rounds + 1`` records (the
            last one fits and tests on the final labelled set). ``None``: until the budget
            or the pool runs out.
        total_budget: stop once this many rows are labelled (initial set included);
            ``-1`` for no budget.
        initial_size: size of the initial labelled set when the pool has none (``None``:
            ``query_size``).
        initial_strategy: ``"stratified"`` (the default: per class, from the pool's true
            labels, when they are known, i.e. in a simulation; random otherwise),
            ``"random"``, or the name of a cold-start strategy (``"cold_start_kmeans"``,
            ``"cold_start_typiclust"``, ... on the untrained model's embeddings).
        initial_ids: the initial labelled set as pool ids (it replaces ``initial_size``
            and ``initial_strategy``); used when the pool has no labels yet.
        validation_perc: fraction of each round's new labels held out for validation.
        test_after_labelling: test after each fit when test data exist.
        reset_weights: reset the model to its initial weights before each fit.
        seed: seeds training, querying and splitting, per round.
        stopping_criteria: :mod:`energizer_hf.stopping` criteria asked before each query;
            the first that fires ends the run and names its ``stop_reason``. With
            criteria, ``max_rounds`` and ``total_budget`` may both be left out.
        minority_class: the class id whose test F1 (``test/minority_f1``) and share of
            each round's selection (``queried_minority_share``) are recorded; ``None``:
            the rarest class of the pool's true labels when they are known (simulation).
        budget_unit: what ``query_size``, ``initial_size`` and ``total_budget`` count:
            ``"examples"`` (rows, sentences) or ``"tokens"`` (words of the sentences, for
            token classification: the pool's ``label_store`` gives each row's cost). A
            round then labels the strategy's ids in its order while they fit the round's
            tokens (a sentence that does not fit is passed over for the next).
    """

    query_size: int
    max_rounds: int | None = None
    total_budget: int = -1
    initial_size: int | None = None
    initial_strategy: str = "stratified"
    initial_ids: Sequence[int] | None = None
    validation_perc: float = 0.0
    test_after_labelling: bool = True
    reset_weights: bool = True
    seed: int = 0
    stopping_criteria: Sequence[Any] = ()
    minority_class: int | None = None
    budget_unit: str = "examples"

    def __post_init__(self) -> None:
        self.stopping_criteria = validate_criteria(self.stopping_criteria)
        if self.budget_unit not in BUDGET_UNITS:
            raise BudgetError(
                f"budget_unit must be one of {', '.join(BUDGET_UNITS)}, got {self.budget_unit!r}."
            )
        if not isinstance(self.query_size, (int, np.integer)) or self.query_size <= 0:
            raise BudgetError(
                f"query_size must be a positive integer, got {self.query_size!r}: it is the "
                "number of examples labelled per round."
            )
        if self.max_rounds is not None and self.max_rounds < 0:
            raise BudgetError(f"max_rounds must be >= 0 (or None), got {self.max_rounds}.")
        if self.total_budget is None:
            self.total_budget = -1
        if self.total_budget == 0 or self.total_budget < -1:
            raise BudgetError(
                f"total_budget must be a positive number of labels or -1 for none, got "
                f"{self.total_budget}."
            )
        if self.max_rounds is None and self.total_budget == -1 and not self.stopping_criteria:
            raise BudgetError(
                "Give max_rounds (number of query rounds) or total_budget (number of labels), "
                "otherwise the run would label the whole pool."
            )
        if self.initial_size is not None and self.initial_size < 0:
            raise BudgetError(f"initial_size must be >= 0, got {self.initial_size}.")
        if not 0.0 <= self.validation_perc < 1.0:
            raise BudgetError(
                f"validation_perc must be in [0, 1), got {self.validation_perc}: it is the "
                "fraction of new labels held out for validation."
            )
        if self.initial_strategy not in INITIAL_STRATEGIES and cold_start_class(self.initial_strategy) is None:
            from energizer_hf.query_strategies.registry import available_strategies

            cold = [n for n in available_strategies() if cold_start_class(n) is not None]
            raise BudgetError(
                f"initial_strategy must be 'stratified' (per class when the true labels are "
                f"known), 'random' or a cold-start strategy ({', '.join(cold)}), got "
                f"{self.initial_strategy!r}."
            )
        if self.initial_ids is not None:
            self.initial_ids = check_initial_ids(self.initial_ids)


class Backend(Protocol):
    """What the loop needs from a trainer: fit, test, and batches of the pool."""

    def fit(self, pool: ActivePool, round: int) -> dict[str, float]: ...

    def test(self, round: int) -> dict[str, float]: ...

    def has_test_data(self) -> bool: ...

    def make_scorer(self, exchange_dir: Path | None, progress: bool = False) -> Any: ...

    def save_model_state(self, path: Path) -> None: ...

    def load_model_state(self, path: Path) -> None: ...


def _maybe_fault(point: str, round: int) -> None:
    """Test hook: ``ENERGIZER_HF_FAULT=after_label:2`` kills the process at that point."""
    spec = os.environ.get("ENERGIZER_HF_FAULT")
    if spec and spec == f"{point}:{round}":
        os._exit(77)


class ActiveLoop(RunDirMixin, TokenBudgetMixin, MinorityClassMixin, PendingRoundMixin):
    """Runs labelling rounds until the budget, the rounds or the pool run out.

    Args:
        pool: the active pool; its state is attached to ``<run_dir>/pool``.
        strategy: a :class:`~energizer_hf.query_strategies.Strategy`.
        backend: fits, tests and batches the pool (see :class:`Backend`).
        oracle: gives labels to queried ids (see :mod:`energizer_hf.oracles.base`); it is
            bound to the run (:meth:`~energizer_hf.oracles.base.OracleBase.bind`) before the
            first round.
        settings: the :class:`LoopSettings`.
        run_dir: where the label state and ``rounds.jsonl`` live (the files are named by
            :class:`~energizer_hf.run.RunDir`); an existing run directory with the same
            configuration is resumed.
        config: a JSON-serialisable description of the run, compared on resume.
        config_defaults: the default value of each ``config`` key: a key that a run
            directory made by an earlier version lacks is accepted when this run has its
            default (a setting added later, left as it was).
        label_names: names of label ids, used in the records' label distributions.
        stratify_labels: true labels of the pool (a simulation): for a stratified initial
            set and the minority class.
        callbacks: objects with optional ``on_round_start(loop, round)`` and
            ``on_round_end(loop, record)`` methods.
        stores: :class:`~energizer_hf.revisions.RoundStore` backends; the writing process
            calls ``store.on_round_end(run_info, pool, record)`` after each round's record.
        progress: show a progress bar over rounds.
        start_from_labels: when the run directory has no records but the pool has labels
            (rebuilt from a stored revision), continue from the pool's last round instead
            of keeping only the initial set.
        self_training: a :class:`~energizer_hf.selfsup.SelfTraining` step: pseudo-labels
            given to each fit (``before_fit``) and chosen after it (``after_fit``).
        save_final_model: called (by the writing process) once the run is complete, to keep
            the model trained on the final labelled set under ``final_model/``; a resumed
            complete run whose final model is missing refits its last round and calls it.
            ``None``: the run keeps no final model.

    The run holds the run directory's lock (:class:`~energizer_hf.runlock.RunLock`) from
    start to end and checks the directory (:func:`~energizer_hf.integrity.check_run_files`,
    with the safe repairs) before it reads the label state.
        card: what the cards say of the data and model (``RunInfo.card``: license,
            language, base model, source and evaluation datasets).
    """

    def __init__(
        self,
        pool: ActivePool,
        strategy: Any,
        backend: Backend,
        oracle: Oracle,
        settings: LoopSettings,
        run_dir: str | Path,
        *,
        config: dict[str, Any] | None = None,
        config_defaults: dict[str, Any] | None = None,
        label_names: Sequence[str] | None = None,
        stratify_labels: np.ndarray | None = None,
        callbacks: Sequence[Any] = (),
        stores: Sequence[RoundStore] = (),
        progress: bool = True,
        start_from_labels: bool = False,
        self_training: Any = None,
        save_final_model: Callable[[], Any] | None = None,
        card: dict[str, Any] | None = None,
    ) -> None:
        self.pool = pool
        self.card = dict(card or {})
        self.strategy = strategy
        self.backend = backend
        self.oracle = as_oracle(oracle)
        self.settings = settings
        self.files = RunDir(run_dir)
        self.run_dir = self.files.root
        self.config = dict(config or {})
        self.config_defaults = dict(config_defaults or {})
        self.label_names = list(label_names) if label_names is not None else None
        self.stratify_labels = stratify_labels
        self.callbacks = list(callbacks)
        self.stores = list(stores)
        self.progress = progress
        self.start_from_labels = start_from_labels
        self.self_training = self_training
        self.save_final_model = save_final_model
        self.is_writer = env_rank() == 0
        self.records: list[dict[str, Any]] = []
        self._round = 0
        self._round_tokens = 0

    # ------------------------------------------------------------------ the run as a record
    @property
    def initial_strategy(self) -> str:
        """How the initial set is drawn: ``"stratified"`` needs the true labels (a
        simulation); without them it is ``"random"``."""
        if self.settings.initial_ids is not None:
            return "initial_ids"
        name = self.settings.initial_strategy
        if name == "stratified" and self.stratify_labels is not None:
            return "stratified"
        cold = cold_start_class(name)
        return cold.name if cold is not None else "random"

    def identity(self) -> dict[str, Any]:
        """What the run is: settings and configuration (as ``run.json`` keeps them), the
        strategy and its parameters, who labels, which data, the classes."""
        strategy = self.strategy
        dataset = self.config.get("dataset")
        full = _jsonable(self._full_config())
        return {
            "settings": full["settings"],
            "config": full.get("run", {}),
            "strategy": self._strategy_name(),
            "strategy_class": type(strategy).__qualname__,
            "strategy_params": strategy.get_params() if isinstance(strategy, Strategy) else {},
            "label_source": self.oracle.label_source,
            "pool_fingerprint": self.pool.fingerprint,
            "pool_rows": len(self.pool),
            "source_dataset": self.card.get("source")
            or (dataset if isinstance(dataset, str) and dataset else (self.pool.source_name or "in-memory dataset")),
            "text_column": self.config.get("text_column"),
            "label_names": tuple(self.label_names or ()),
            "card": dict(self.card),
        }

    def run_info(self) -> RunInfo:
        """The run as it stands: a frozen :class:`~energizer_hf.run.RunInfo`."""
        return RunInfo.from_loop(self)

    def _strategy_name(self) -> str:
        return self.strategy.name if isinstance(self.strategy, Strategy) else type(self.strategy).__name__

    # ------------------------------------------------------------------ run directory
    def _full_config(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        settings["initial_strategy"] = self.initial_strategy
        return {
            # criteria by their repr (their parameters); left out when there are none
            "settings": {
                k: ([repr(c) for c in v] if k == "stopping_criteria" else v)
                for k, v in settings.items()
                if not (k == "stopping_criteria" and not v)
            },
            "strategy": self._strategy_name(),
            "strategy_class": type(self.strategy).__qualname__,
            "pool_fingerprint": self.pool.fingerprint,
            "pool_rows": len(self.pool),
            **({"run": self.config} if self.config else {}),
        }

    def _added_later_at_default(self, key: str, saved: dict[str, Any], config: dict[str, Any]) -> bool:
        """``key`` (``settings.x`` or ``run.x``) is missing from a run directory made by an
        earlier version, and this run keeps the setting's default (what that version did)."""
        section, _, name = key.partition(".")
        if not name or "." in name or name in (saved.get(section) or {}):
            return False
        value = (config.get(section) or {}).get(name)
        if section == "settings":
            fields = {f.name: f for f in dataclasses.fields(LoopSettings)}
            if name not in fields or fields[name].default is dataclasses.MISSING:
                return False
            return value == _jsonable(fields[name].default)
        return section == "run" and name in self.config_defaults and value == _jsonable(self.config_defaults[name])

    # ------------------------------------------------------------------ main loop
    def run(self) -> RoundResults:
        """Run (or resume) the rounds under the run directory's lock; returns the records.

        Raises:
            RunLockedError: another process runs on this directory (named in the message).
            RunIntegrityError: the directory's files disagree (what and how to repair).
        """
        from energizer_hf.runlock import RunLock

        with RunLock(self.files.lock):
            return self._run()

    def _run(self) -> RoundResults:
        self._check_integrity()
        records = self.files.read_records()
        self._prepare_run_dir(has_records=bool(records))
        s = self.settings
        self.records = records
        if self.records and self.records[-1].get("stop_reason") and not self._extends_finished_run():
            if not self._needs_final_model():
                self._write_missing_revisions()
                last = self.records[-1]
                _say(
                    f"{self.run_dir}: already complete ({len(self.records)} rounds recorded, "
                    f"stopped: {last['stop_reason']}); nothing to do."
                )
                return RoundResults(self.records, label_names=self.label_names)
            self._redo_last_round()
        start_round = self._resume()
        if records:  # recorded rounds before this session (a finished run may be extended)
            total = f" of {s.max_rounds}" if s.max_rounds is not None else ""
            _say(
                f"{self.run_dir}: resuming at round {start_round}{total} "
                f"({len(self.records)} round(s) recorded)."
            )
        self.oracle.bind(self.run_info(), self.pool.dataset, self._predictor(local=True))
        if self.pool.num_labelled == 0:
            try:
                self._label_initial()
            except AwaitingAnnotations as wait:  # an asynchronous oracle: people are labelling
                self.records.append(_awaiting_record(start_round, wait, np.empty(0, dtype=np.int64)))
                return RoundResults(self.records, label_names=self.label_names)
        if s.total_budget != -1 and s.total_budget < self._spent():
            raise BudgetError(
                f"total_budget ({s.total_budget} {s.budget_unit}) is smaller than the initial labelled "
                f"set ({self._spent()} {s.budget_unit}): raise the budget or label fewer examples first."
            )

        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            total = s.max_rounds + 1 if s.max_rounds is not None else None
            bar = tqdm(total=total, initial=start_round, desc="AL rounds", unit="round")
        round = start_round
        try:
            while True:
                record = self._run_round(round)
                if record.get("stop_reason") == AWAITING_ANNOTATIONS:
                    self.records.append(record)  # in memory only: the round is not complete
                    break
                if self.is_writer:
                    append_jsonl(self.files.rounds, record)
                    if not self.records:
                        self._confirm_run_file()
                self.records.append(record)
                _maybe_fault("after_record", round)
                self._call("on_round_end", record)
                if self.is_writer and self.stores:
                    info = self.run_info()
                    for store in self.stores:
                        store.on_round_end(info, self.pool, record)
                if bar is not None:
                    bar.update(1)
                    shown = display_metrics(record, "test/")  # per-class metrics stay out
                    bar.set_postfix({"labelled": record["num_labelled"], **shown})
                if record["stop_reason"]:
                    if self.is_writer:
                        # the run is over: the scorer's exchange files (pool outputs of the
                        # last query, possibly large) are not needed to resume or extend it
                        shutil.rmtree(self.files.scoring, ignore_errors=True)
                        if self.save_final_model is not None:
                            _maybe_fault("before_final_model", round)
                            self.save_final_model()
                    break
                round += 1
        finally:
            if bar is not None:
                bar.close()
        return RoundResults(self.records, label_names=self.label_names)

    def _needs_final_model(self) -> bool:
        """A complete run that keeps a final model but has none (stopped before saving it)."""
        if self.save_final_model is None:
            return False
        files = self.files
        return not (files.final_model / "config.json").is_file() and not files.final_state_dict.is_file()

    def _redo_last_round(self) -> None:
        """Drop the final record so the last round is fitted again and the final model
        saved (the record made no query: the labelled set does not change)."""
        last = self.records[-1]
        self.records = self.records[:-1]
        if self.is_writer:
            lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records)
            atomic_write_bytes(self.files.rounds, lines.encode())
        _say(
            f"{self.run_dir}: the run is complete but its final model is missing (it was stopped "
            f"before saving it): round {last['round']} is fitted again to write it."
        )

    def _write_missing_revisions(self) -> None:
        """A complete run stopped between its last record and that round's revision: write
        the missing revisions now (each store writes the rounds it lacks)."""
        if not (self.is_writer and self.stores and self.records):
            return
        recorded = {int(r["round"]) for r in self.records}
        if recorded <= set(self.files.local_rounds()):
            return
        info = self.run_info()
        for store in self.stores:
            store.on_round_end(info, self.pool, self.records[-1])

    def _extends_finished_run(self) -> bool:
        """A run that stopped on its rounds or budget, resumed with more of either: drop its
        final record (which made no query) so that round is redone with a query."""
        last = self.records[-1]
        s = self.settings
        more_rounds = last["stop_reason"] == "max_rounds" and (s.max_rounds is None or s.max_rounds > last["round"])
        more_budget = last["stop_reason"] == "budget_exhausted" and (
            s.total_budget == -1 or s.total_budget > last["num_labelled"]
        )
        if not (more_rounds or more_budget) or self.pool.num_unlabelled == 0:
            return False
        self.records = self.records[:-1]
        if self.is_writer:
            lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records)
            atomic_write_bytes(self.files.rounds, lines.encode())
        log.info("Extending the run in %s from round %d.", self.run_dir, last["round"])
        return True

    def _resume(self) -> int:
        """Roll back unrecorded labels; return the round to run next."""
        if not self.records and self.start_from_labels and self.pool.num_labelled:
            # The label state was rebuilt from a stored revision (labels of rounds
            # 0..R): continue with round R, which fits on them and queries round R + 1.
            return self.pool.last_round
        if not self.records:
            # Labels beyond the initial set cannot exist without a record.
            dropped = self.pool.rollback(after_round=0)
            if dropped.size:
                log.warning("Dropped %d labels of an unrecorded round.", dropped.size)
            return 0
        last = int(self.records[-1]["round"])
        dropped = self.pool.rollback(after_round=last + 1)
        if dropped.size:
            log.warning(
                "Resuming after round %d: dropped %d labels of round %d, which was not recorded "
                "as complete; it is redone.",
                last,
                dropped.size,
                last + 2,
            )
        if not self.settings.reset_weights and self.files.model_state.exists():
            self.backend.load_model_state(self.files.model_state)
        return last + 1

    def _label_initial(self) -> None:
        """Label the initial set (round 0): ``initial_ids``, a cold-start strategy's
        choice, or a (stratified) random sample. Chosen once: a resumed run finds it in the
        label state, and round 0's record lists it (``initial_ids``)."""
        s = self.settings
        if s.initial_ids is not None:
            ids = self.pool.check_ids(s.initial_ids)
            self._label(np.sort(ids), round=0)
            return
        size = s.query_size if s.initial_size is None else s.initial_size
        if size == 0:
            raise BudgetError(
                "The pool has no labelled rows and initial_size is 0: label an initial set "
                "(e.g. datamodule.label(ids)), give initial_ids or set initial_size > 0."
            )
        if s.budget_unit == "tokens":  # random sentences while they fit `size` tokens
            self._check_token_budget(size)
            order = np.random.default_rng(round_seed(s.seed, -1)).permutation(self.pool.unlabelled_ids)
            self._label(np.sort(self._fit_tokens(order, size)), round=0)
            return
        cold = cold_start_class(s.initial_strategy)
        if cold is not None:
            ids = self._cold_start(cold, size)
        else:
            labels = self.stratify_labels if self.initial_strategy == "stratified" else None
            ids = self.pool.sample_initial(size, seed=round_seed(s.seed, -1), labels=labels)
        self._label(ids, round=0)

    def _cold_start(self, cls: type, size: int) -> np.ndarray:
        """The initial set chosen by a cold-start strategy on the untrained model (a
        collective call on several processes, like a query)."""
        if size > self.pool.num_unlabelled:
            raise BudgetError(
                f"Asked for an initial set of {size} but only {self.pool.num_unlabelled} rows are unlabelled."
            )
        model = self.strategy.model if isinstance(self.strategy, Strategy) else None
        strategy = cls(model)
        # its own exchange folder: round 0's query must not meet this call's files
        scorer = self.backend.make_scorer(self.files.scoring / "initial", progress=self.progress)
        ctx = QueryContext(pool=self.pool, round=0, seed=self.settings.seed, scorer=scorer,
                           progress=self.progress, run_dir=self.run_dir)
        ids = np.asarray(_broadcast(strategy.query(ctx, size)), dtype=np.int64)
        del strategy
        return np.sort(self.pool.check_ids(ids))

    def _label(self, ids: np.ndarray, round: int) -> np.ndarray:
        """Ask the oracle, split validation, write the labels; returns the labelled ids."""
        # Rank 0 asks the oracle (a person must not be asked twice); all ranks agree.
        ids, labels = _broadcast((ids, self.oracle.annotate(ids, round=round) if self.is_writer else None))
        store = self.pool.label_store
        if labels is not None and store is not None:  # tags / label sets: the task's store
            given = store.given(labels, ids.size)
            ids, labels = ids[given], store.subset(labels, given)
        elif labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != ids.shape:
                raise InvalidIdsError(
                    f"The oracle returned {labels.size} labels for {ids.size} ids."
                )
            given = labels >= 0  # -1: skipped by the annotator, stays unlabelled
            ids, labels = ids[given], labels[given]
        rng = np.random.default_rng([self.settings.seed, round, 0xA1])
        stratify = labels if store is None else None
        val = split_validation(ids, stratify, self.settings.validation_perc, rng)
        self.pool.label(ids, labels, round=round, validation=val)
        return ids

    def _predictor(self, *, local: bool) -> Predict | None:
        """``ids -> (len(ids), C)`` probabilities of the strategy's model, through the
        backend's scorer: on every rank (``local=False``, a collective call) or on this
        process alone (``local=True``: what the oracle may ask on rank 0)."""
        strategy = self.strategy
        if not isinstance(strategy, Strategy) or strategy.model is None:
            return None

        def predict(ids: np.ndarray) -> np.ndarray:
            if local:
                scorer = self.backend.make_scorer(None, progress=False).local()
            else:
                scorer = self.backend.make_scorer(self.files.scoring, progress=False)
            words = getattr(self.pool.label_store, "predict", None)
            if callable(words):  # token classification: word tags and their probability
                return words(strategy, scorer.local(), np.asarray(ids, dtype=np.int64))
            ctx = QueryContext(pool=self.pool, round=self._round, seed=self.settings.seed, scorer=scorer)
            return np.asarray(strategy.pool_outputs(ctx, ("probs",), ids=np.asarray(ids, dtype=np.int64))["probs"])

        return predict

    def _run_round(self, round: int) -> dict[str, Any]:
        s = self.settings
        pool = self.pool
        self._round = round
        t_round = time.perf_counter()
        self._call("on_round_start", round)
        pending = self._read_pending(round)
        if pending is not None:  # fitted and queried before; its annotations were awaited
            return self._finish_pending(pending, round, t_round)
        record: dict[str, Any] = {
            "round": round,
            "strategy": self._strategy_name(),
            "num_labelled": pool.num_labelled,
            "num_train": int(pool.train_ids.size),
            "num_validation": int(pool.validation_ids.size),
            "label_distribution": self._named(pool.label_distribution()),
        }
        if round == 0:  # the initial set, chosen once (resumes read it from the label state)
            record["initial_ids"] = pool.ids_of_round(0).tolist()
        for key, value in self._describe(pool.labelled_ids).items():
            record[f"num_labelled_{key}"] = value
        seed_everything(round_seed(s.seed, round))
        if self.self_training is not None:  # pseudo-labels chosen after the previous fit
            record.update(self.self_training.before_fit(self, round))
        t = time.perf_counter()
        fit_metrics = self.backend.fit(pool, round)
        record["time_fit"] = time.perf_counter() - t
        record.update(fit_metrics)
        _maybe_fault("after_fit", round)
        if not s.reset_weights and self.is_writer:
            self.backend.save_model_state(self.files.model_state)

        record["time_test"] = 0.0
        if s.test_after_labelling and self.backend.has_test_data():
            t = time.perf_counter()
            record.update(self.backend.test(round))
            record["time_test"] = time.perf_counter() - t
            minority = self._minority_class()
            if minority is not None:
                for key in self._minority_keys(minority):
                    if key in record:
                        record["test/minority_f1"] = record[key]
                        break

        stop_reason, k = self._next_query_size(round)
        queried = np.empty(0, dtype=np.int64)
        timings: dict[str, float] = {}
        if stop_reason is None and self.self_training is not None:
            # with the model just fitted, before the query: the next round's pseudo-labels
            record.update(self.self_training.after_fit(self, round))
        if stop_reason is None:
            scorer = self.backend.make_scorer(self.files.scoring, progress=self.progress)
            scorer.cleanup(before_round=round)  # exchange files of earlier rounds
            ctx = QueryContext(
                pool=pool, round=round, seed=s.seed, scorer=scorer, progress=self.progress, run_dir=self.run_dir
            )
            t = time.perf_counter()
            queried = np.asarray(_broadcast(self.strategy.query(ctx, k)), dtype=np.int64)
            timings = dict(ctx.timings)
            record["time_query"] = time.perf_counter() - t
            record["query_timings"] = {key: round_float(v) for key, v in timings.items()}
            if ctx.extras:
                record["query_info"] = ctx.extras
            self._check_query(queried, k)
            if s.budget_unit == "tokens":  # the strategy's order, while it fits the round's tokens
                queried = self._fit_tokens(queried, self._round_tokens)
            scores = ctx.scores_of(queried)
            if scores is not None:
                record["queried_scores"] = scores
            t = time.perf_counter()
            if self.oracle.keeps_round:  # people label: never re-query
                self._write_pending(record, queried, round, timings, t_round)
            try:
                labelled = self._label(queried, round=round + 1)
            except AwaitingAnnotations as wait:
                return self._save_pending(record, queried, round, timings, wait, t_round)
            record["time_label"] = time.perf_counter() - t
            _maybe_fault("after_label", round)
            record["num_skipped"] = int(queried.size - labelled.size)
            record["queried_label_distribution"] = self._named(pool.label_distribution(labelled))
            for key, value in self._describe(labelled).items():
                record[f"queried_{key}"] = value
            self._minority_share(record, labelled)
        record["time_score"] = timings.get("score", 0.0)
        record["num_queried"] = int(queried.size)
        record["queried_ids"] = queried.tolist()
        record["stop_reason"] = stop_reason
        record["time_round"] = time.perf_counter() - t_round
        return record

    def _next_query_size(self, round: int) -> tuple[str | None, int]:
        s = self.settings
        if s.max_rounds is not None and round >= s.max_rounds:
            return "max_rounds", 0
        left = self.pool.num_unlabelled
        if left == 0:
            return "pool_exhausted", 0
        k = s.query_size
        if s.total_budget != -1:
            budget_left = s.total_budget - self._spent()
            if budget_left <= 0:
                return "budget_exhausted", 0
            k = min(k, budget_left)
        if s.budget_unit == "tokens":
            costs = np.sort(self._costs()[self.pool.unlabelled_ids])
            if k < int(costs[0]):
                if k < s.query_size:  # the total budget is what is too small
                    return "budget_exhausted", 0
                self._check_token_budget(k)
            self._round_tokens = k
            # ask the strategy for as many sentences as could fit (the shortest ones)
            k = int(np.searchsorted(np.cumsum(costs), k, side="right"))
        if s.stopping_criteria:
            state = StopState(
                round=round,
                num_labelled=int(self.pool.num_labelled),
                pool=self.pool,
                records=list(self.records),
                seed=int(s.seed),
                predict=self._predictor(local=False),
            )
            reason = check_stopping(s.stopping_criteria, state)
            if reason is not None:
                return reason, 0
        if k > left:
            warn_pool_exhausted(k, left)
            k = left
        return None, k

    def _check_query(self, ids: np.ndarray, k: int) -> None:
        name = type(self.strategy).__name__
        try:
            self.pool.check_ids(ids)
        except InvalidIdsError as err:
            raise InvalidIdsError(f"{name} returned invalid ids: {err}") from None
        if ids.size != k:
            raise EnergizerError(
                f"{name} returned {ids.size} ids but {k} were requested; a query must return "
                "exactly min(k, unlabelled) ids."
            )

    def _call(self, hook: str, arg: Any) -> None:
        for obj in (self.strategy, *self.callbacks):
            fn = getattr(obj, hook, None)
            if callable(fn):
                fn(self, arg)
