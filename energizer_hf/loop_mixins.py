"""Cohesive method groups of :class:`~energizer_hf.loop.ActiveLoop`, as mixins it inherits:
the run directory, budgets counted in tokens, the minority-class records, rounds awaiting annotations."""

from __future__ import annotations

import json
import logging
import shutil
import time
from typing import Any

import numpy as np

from energizer_hf.errors import BudgetError, ConfigMismatchError, DatasetMismatchError
from energizer_hf.loop_support import _awaiting_record, _diff_keys, _jsonable
from energizer_hf.metrics import per_class_key
from energizer_hf.oracles.base import AwaitingAnnotations
from energizer_hf.utils import atomic_write_json

# the messages keep the name of the module they came from
log = logging.getLogger("energizer_hf.loop")


class RunDirMixin:
    """The run directory: ``run.json`` compared with the run (written when there is none),
    what a run that recorded no round left, the integrity check before the state is read."""

    def _prepare_run_dir(self, has_records: bool) -> None:
        """Compare the run with ``run.json`` (write it when there is none) and attach the
        pool's label state.

        ``run.json`` stays *provisional* until the first round is recorded: a run that
        fails before (a bad learning rate, out of memory at the first fit) does not lock
        its configuration; the next run with a corrected one starts afresh."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = _jsonable(self._full_config())
        saved = self.files.read_run_file()
        provisional = bool(saved.get("provisional")) and not has_records
        if provisional and self.is_writer and _diff_keys(saved.get("config", {}), config):
            log.warning(
                "The run in '%s' was started with another configuration but recorded no "
                "round: it starts afresh with this one.", self.run_dir,
            )
            self._discard_unrecorded_state()
            saved = {}
        if saved:
            saved_config = saved.get("config", {})
            saved_fp = saved_config.get("pool_fingerprint")
            if saved_fp != config["pool_fingerprint"] or saved_config.get("pool_rows") != len(self.pool):
                raise DatasetMismatchError(
                    f"The run directory '{self.run_dir}' was made for another dataset (fingerprint "
                    f"{saved_fp}, {saved_config.get('pool_rows')} rows); this dataset has fingerprint "
                    f"{config['pool_fingerprint']} and {len(self.pool)} rows (an edited label or text "
                    "changes it). Resume with the same dataset, use a new run directory, or start "
                    "this one anew (overwrite: true / --overwrite)."
                )
            # how far to go may change between sessions: more rounds or a larger budget
            # extend a run; everything else must match
            diffs = [
                d for d in _diff_keys(saved_config, config)
                if d not in ("settings.max_rounds", "settings.total_budget")
                and not self._added_later_at_default(d, saved_config, config)
            ]
            if diffs:
                raise ConfigMismatchError(
                    f"The run directory '{self.run_dir}' belongs to a run with another "
                    f"experiment configuration (differs in: {', '.join(diffs) or 'unknown fields'}). "
                    "Resume with the same one (settings that only change how it runs, such as "
                    "batch sizes, precision, devices or progress, may change), use a new run "
                    "directory, or start this one anew (overwrite: true / --overwrite)."
                )
        elif self.is_writer:
            info = _jsonable({k: v for k, v in self.identity().items() if k not in config and k != "config"})
            info["final_model"] = self.save_final_model is not None
            atomic_write_json(
                self.files.run_file,
                {"config": config, "created": time.time(), "info": info, "provisional": True},
            )
        # On several processes only rank 0 writes the label state and the records; the
        # others keep the same state in memory (queries and labels are broadcast from 0).
        self.pool.read_only = not self.is_writer
        self.pool.attach(self.files.pool)

    def _discard_unrecorded_state(self) -> None:
        """Remove what a run that recorded no round left (label state, pending round,
        model state, exchange files, ``run.json``)."""
        for path in (self.files.pending, self.files.model_state, self.files.run_file):
            path.unlink(missing_ok=True)
        for folder in (self.files.pool, self.files.scoring):
            shutil.rmtree(folder, ignore_errors=True)

    def _confirm_run_file(self) -> None:
        """The first round is recorded: ``run.json`` is no longer provisional."""
        saved = self.files.read_run_file()
        if saved.get("provisional"):
            saved.pop("provisional")
            atomic_write_json(self.files.run_file, saved)

    def _check_integrity(self) -> None:
        """Check the run directory (and make the safe repairs) before the label state is
        read; refuse an inconsistent one with what is wrong and how to repair it."""
        from energizer_hf.integrity import RunFiles, check_run_files

        if not self.is_writer or not self.run_dir.is_dir():
            return
        report = check_run_files(
            RunFiles.of(self.files, final_model=self.save_final_model is not None), repair=True
        )
        for problem in report.repaired:
            log.warning("Repaired %s: %s", problem.code, problem.message)
        report.raise_for_errors()


class TokenBudgetMixin:
    """Budgets in tokens (``budget_unit: tokens``): what each row costs and what was spent."""

    def _costs(self) -> np.ndarray:
        costs = getattr(self.pool.label_store, "costs", None)
        if costs is None:
            raise BudgetError(
                "budget_unit 'tokens' needs a task whose rows have a token count (token "
                "classification); count this task's budget in examples."
            )
        return np.asarray(costs, dtype=np.int64)

    def _spent(self) -> int:
        """Labels spent so far, in the budget's unit."""
        if self.settings.budget_unit == "tokens":
            return int(self._costs()[self.pool.labelled_ids].sum())
        return int(self.pool.num_labelled)

    def _check_token_budget(self, tokens: int) -> None:
        costs = self._costs()[self.pool.unlabelled_ids]
        if costs.size and tokens < int(costs.min()):
            from energizer_hf.errors import TokenBudgetError

            raise TokenBudgetError(
                f"A budget of {tokens} tokens is smaller than the shortest unlabelled sentence "
                f"({int(costs.min())} tokens): raise query_size / initial_size (counted in tokens "
                "with budget_unit: tokens)."
            )

    def _fit_tokens(self, ordered: np.ndarray, tokens: int) -> np.ndarray:
        """The ids of ``ordered`` taken in order while their tokens fit in ``tokens`` (an
        id that does not fit is passed over for the next ones)."""
        ordered = np.asarray(ordered, dtype=np.int64)
        costs = self._costs()[ordered]
        keep = np.zeros(ordered.size, dtype=bool)
        left = int(tokens)
        for j, c in enumerate(costs.tolist()):
            if c <= left:
                keep[j] = True
                left -= c
                if left == 0:
                    break
        return ordered[keep]

    def _describe(self, ids: np.ndarray) -> dict[str, int]:
        describe = getattr(self.pool.label_store, "describe", None)
        return describe(np.asarray(ids, dtype=np.int64)) if callable(describe) else {}


class MinorityClassMixin:
    """The minority class of the round records (its test F1 key, its share of a query)."""

    def _minority_class(self) -> int | None:
        """The configured minority class, else the rarest class of the true pool labels."""
        if self.settings.minority_class is not None:
            return int(self.settings.minority_class)
        if self.stratify_labels is None or np.ndim(self.stratify_labels) != 1:
            return None
        labels = np.asarray(self.stratify_labels, dtype=np.int64)
        labels = labels[labels >= 0]
        if labels.size == 0:
            return None
        counts = np.bincount(labels)
        present = np.flatnonzero(counts)
        return int(present[np.argmin(counts[present])])

    def _minority_keys(self, minority: int) -> list[str]:
        """Where the minority class's test F1 is: ``test/f1/<name>`` (HFSequenceClassifier),
        ``test/f1_class_<id>`` (models written for earlier versions)."""
        keys = [f"test/f1_class_{minority}"]
        names = self.label_names
        name = names[minority] if names is not None and 0 <= minority < len(names) else str(minority)
        return [per_class_key("test/", "f1", name), *keys]

    def _minority_share(self, record: dict[str, Any], labelled: np.ndarray) -> None:
        minority = self._minority_class()
        if minority is None or self.pool.label_store is not None:
            return
        labels = self.pool.labels[np.asarray(labelled, dtype=np.int64)]
        record["minority_class"] = self._named({minority: 0}).popitem()[0]
        record["queried_minority_share"] = float((labels == minority).mean()) if labels.size else 0.0

    def _named(self, dist: dict[int, int]) -> dict[str, int]:
        names = self.label_names
        return {
            (names[k] if names is not None and 0 <= k < len(names) else str(k)): v
            for k, v in dist.items()
        }


class PendingRoundMixin:
    """A round fitted and queried that awaits annotations: kept in ``pending.json`` and
    finished when the labels come."""

    def _save_pending(
        self, record: dict[str, Any], queried: np.ndarray, round: int, timings: dict[str, float],
        wait: AwaitingAnnotations, t_round: float,
    ) -> dict[str, Any]:
        """Keep the fitted-and-queried round in ``pending.json``; return an awaiting record."""
        self._write_pending(record, queried, round, timings, t_round)
        return _awaiting_record(round, wait, queried, record)

    def _write_pending(
        self, record: dict[str, Any], queried: np.ndarray, round: int, timings: dict[str, float],
        t_round: float,
    ) -> None:
        path = self.files.pending
        if self.is_writer and not (path.exists() and self._read_pending(round) is not None):
            record = dict(record, time_score=timings.get("score", 0.0),
                          time_round=time.perf_counter() - t_round)
            atomic_write_json(path, {"round": round, "record": _jsonable(record),
                                     "queried_ids": queried.tolist(), "created": time.time()})

    def _read_pending(self, round: int) -> dict[str, Any] | None:
        path = self.files.pending
        if not path.exists():
            return None
        pending = json.loads(path.read_text())
        if int(pending["round"]) == round:
            return pending
        if self.is_writer:  # left over from a round that was recorded since
            path.unlink(missing_ok=True)
        return None

    def _finish_pending(self, pending: dict[str, Any], round: int, t_round: float) -> dict[str, Any]:
        record = dict(pending["record"])
        queried = np.asarray(pending["queried_ids"], dtype=np.int64)
        t = time.perf_counter()
        try:
            labelled = self._label(queried, round=round + 1)
        except AwaitingAnnotations as wait:
            return _awaiting_record(round, wait, queried, record)
        record["time_label"] = time.perf_counter() - t
        record["time_awaiting"] = time.time() - float(pending["created"])
        record["num_skipped"] = int(queried.size - labelled.size)
        record["queried_label_distribution"] = self._named(self.pool.label_distribution(labelled))
        self._minority_share(record, labelled)
        record["num_queried"] = int(queried.size)
        record["queried_ids"] = queried.tolist()
        record["stop_reason"] = None
        record["time_round"] = float(record.get("time_round", 0.0)) + time.perf_counter() - t_round
        return record
