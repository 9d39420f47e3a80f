"""The oracle: each round's queried examples become Label Studio tasks, annotations become labels.

See :mod:`energizer_hf.oracles.label_studio` for the whole story.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.oracles.base import AwaitingAnnotations, OracleBase, Predict
from energizer_hf.oracles.label_studio.annotations import (
    ABANDONED,
    CONFLICT,
    DELETED,
    FROM_NAME,
    IGNORED,
    LABEL_CONFIGS,
    LABELLED,
    ORACLE_TASKS,
    PENDING,
    RESOLVED,
    SKIPPED,
    AnnotationChangedWarning,
    AnnotationRefusedWarning,
    LabelStudioAuthError,
    LabelStudioError,
    LabelStudioTimeoutError,
    LabelStudioUnknownLabelError,
    as_dicts,
    entity_types_of,
    make_label_config,
    parse_annotation,
    reason,
    unknown_names,
    vote,
    word_offsets,
)
from energizer_hf.oracles.label_studio.client import LabelStudioClient
from energizer_hf.oracles.label_studio.payloads import (
    choice_payloads,
    learner_predictions,
    model_payloads,
    shown_text,
    word_list,
)
from energizer_hf.retry import RetryError, call_with_retries
from energizer_hf.run import RunDir, RunInfo
from energizer_hf.utils import append_jsonl, atomic_write_json

__all__ = ["LabelStudioOracle", "learner_predictions"]

log = logging.getLogger(__name__)

TASKS_FILE = "tasks.json"
CONFLICTS_FILE = "conflicts.jsonl"
EVENTS_FILE = "events.jsonl"


class _ImportUnconfirmed(Exception):
    """The server answered an import without the ids of every task (looked up again)."""


# ---------------------------------------------------------------------- the oracle
class LabelStudioOracle(OracleBase):
    """Labels from people, through a Label Studio project.

    In a run (``ActiveLearner(oracle=...)``, ``Trainer.active_fit(oracle=...)``) the loop
    binds the oracle to the run (:meth:`bind`): the run directory, the class names, the
    pool's texts and the model's predictions come from the run, so none of them needs to
    be given here. Given anyway, they must agree with the run.

    Args:
        url: server URL (default: ``$LABEL_STUDIO_URL``).
        token: API token (default: ``$LABEL_STUDIO_API_KEY``); kept in memory only.
        project: ``None`` (the project recorded in the run directory, else a new one titled
            ``energizer-hf <run_dir name>``), a project id, or a title (reused when a
            project with that title exists, created otherwise).
        label_names: the class names, in label-id order (default: the run's).
        texts: ``texts(ids) -> list[str]``; or give ``dataset`` (+ ``text_column``)
            (default: the run's pool and text column).
        run_dir: the run directory; state goes to ``<run_dir>/label_studio/`` (default:
            the run's).
        wait: ``"block"`` (poll until the round is done) or ``"async"``.
        poll_interval: seconds between polls while blocking.
        timeout: seconds to block before :class:`LabelStudioTimeoutError` (``None``: no limit).
        skipped: ``"return"``: a skipped/cancelled task's id goes back to the pool (it may be
            queried again); ``"ignore"``: it is never asked again and never labelled.
        conflict: several annotations on one task: ``"first"`` (the earliest submitted),
            ``"majority"`` (the most frequent label; a tie is unresolved), ``"unanimous"``
            (all must agree). Unresolved tasks go back to the pool (``status: conflict``,
            never labelled); every disagreement is appended to
            ``label_studio/conflicts.jsonl`` (``resolved: null`` when unresolved). Votes
            are compared as the run stores labels: a class, a label *set* (the order of
            the choices does not matter) or the word-level BIO tags of the spans (spans
            covering the same words are the same vote, whatever their character offsets).
        annotations_per_task: submitted-or-skipped annotations needed before a task counts
            as resolved (use > 1 with ``conflict="majority"``/``"unanimous"``).
        predictions: the pre-annotations: ``"model"`` (the run's model: its most likely
            class and that probability), a callable ``predictions(ids) -> (labels,
            scores)``, or ``None`` for none.
        model_version: the pre-annotations' ``model_version`` (``{round}`` is formatted).
        task: the labelling task type (see :data:`LABEL_CONFIGS`): ``"single_label"``
            (one choice), ``"multi_label"`` (multiple choices; pre-annotations: the labels
            whose probability reaches 0.5) or ``"ner"`` (spans of entity types over the
            sentence's words, joined by spaces; read back as word-level BIO tags;
            pre-annotations: the spans of the model's predicted tags). Default: the run's
            task (single_label outside a run).
        max_retries / retry_backoff / retry_timeout: an unreachable server (or a 5xx) is
            retried with exponential backoff (``retry_backoff * 2**n``, at most 30 s) until
            ``max_retries`` attempts or ``retry_timeout`` seconds, then
            :class:`LabelStudioConnectionError`.
        progress: show a progress bar while blocking.

    Unknown names: an annotation that uses an entity type, class or label the project
    does not have (the labelling config was edited, or the annotation came through the
    API), or a single-label annotation submitted without a class, is *refused*: it is
    not a vote, and its task stays ``pending`` (never labelled, never resolved by the
    other annotations) until that annotation is corrected or deleted in Label Studio.
    Each refusal is a :class:`LabelStudioUnknownLabelError` naming the task id, the
    annotation id, the unknown names and the allowed ones: :meth:`refused` lists them,
    its message is warned once (:class:`AnnotationRefusedWarning`), logged in
    ``label_studio/events.jsonl`` (``event: refused``), kept in the task's ``tasks.json``
    entry (``refused``) and repeated in :class:`AwaitingAnnotations` /
    :class:`LabelStudioTimeoutError` while the round waits.

    Attributes:
        partial: one-shot: the next ``annotate`` call of an asynchronous oracle closes its
            round with what is annotated now; the rest goes back to the pool (``status:
            abandoned``; later annotations of those tasks are reported, not used). Set by
            ``learner.collect(partial=True)`` and ``energizer-hf annotate --partial``.
    """

    # The loop keeps each queried round in pending.json before asking: after a crash it
    # waits for the same tasks instead of fitting and querying again.
    keeps_round = True
    label_source = "annotator"

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        project: int | str | None = None,
        *,
        label_names: Sequence[str] | None = None,
        texts: Callable[[np.ndarray], Sequence[str]] | None = None,
        dataset: Any = None,
        text_column: str | None = None,
        run_dir: str | os.PathLike | None = None,
        wait: str = "block",
        poll_interval: float = 2.0,
        timeout: float | None = None,
        skipped: str = "return",
        conflict: str = "first",
        annotations_per_task: int = 1,
        predictions: Callable[[np.ndarray], tuple[Any, Any]] | str | None = "model",
        model_version: str = "energizer-hf-round-{round}",
        task: str | None = None,
        max_retries: int = 8,
        retry_backoff: float = 1.0,
        retry_timeout: float = 120.0,
        progress: bool = True,
        request_timeout: float = 60.0,
    ) -> None:
        self.url = (url or os.environ.get("LABEL_STUDIO_URL") or "").rstrip("/")
        self._token = token or os.environ.get("LABEL_STUDIO_API_KEY") or ""
        if not self.url:
            raise LabelStudioError(
                "No Label Studio URL: pass url=... or set LABEL_STUDIO_URL (e.g. http://localhost:8080)."
            )
        if not self._token:
            raise LabelStudioAuthError(
                "No Label Studio API token: pass token=... or set LABEL_STUDIO_API_KEY "
                "(Label Studio → Account & Settings → Access Token)."
            )
        if wait not in ("block", "async"):
            raise LabelStudioError(f"wait must be 'block' or 'async', got {wait!r}.")
        if skipped not in ("return", "ignore"):
            raise LabelStudioError(f"skipped must be 'return' or 'ignore', got {skipped!r}.")
        if conflict not in ("first", "majority", "unanimous"):
            raise LabelStudioError(
                f"conflict must be 'first', 'majority' or 'unanimous', got {conflict!r}."
            )
        if task is not None and task not in LABEL_CONFIGS:
            raise LabelStudioError(
                f"task must be one of {', '.join(sorted(LABEL_CONFIGS))}, got {task!r}."
            )
        if annotations_per_task < 1:
            raise LabelStudioError(f"annotations_per_task must be >= 1, got {annotations_per_task}.")
        if not (predictions is None or predictions == "model" or callable(predictions)):
            raise LabelStudioError(
                f"predictions must be 'model', a callable ids -> (labels, scores) or None, got {predictions!r}."
            )
        self.project_spec = project
        self._task_given = task is not None
        self.task = task or "single_label"
        self.label_names: list[str] | None = None
        self.label_config: str | None = None
        self._label_ids: dict[str, int] = {}
        if label_names is not None:
            self._set_label_names(label_names)
        self._texts = texts
        self.dataset = dataset
        self.text_column = text_column
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._predict: Predict | None = None
        self.wait = wait
        self.poll_interval = float(poll_interval)
        self.timeout = timeout
        self.skipped = skipped
        self.conflict = conflict
        self.annotations_per_task = int(annotations_per_task)
        self.predictions = predictions
        self.model_version = model_version
        self.max_retries = int(max_retries)
        self.retry_backoff = float(retry_backoff)
        self.retry_timeout = float(retry_timeout)
        self.progress = progress
        self.request_timeout = float(request_timeout)
        self.partial = False
        self._ls: LabelStudioClient | None = None
        self._state: dict[str, Any] | None = None
        self.project_id: int | None = None

    def __repr__(self) -> str:  # never the token
        return (
            f"LabelStudioOracle(url={self.url!r}, project={self.project_id or self.project_spec!r}, "
            f"wait={self.wait!r}, skipped={self.skipped!r}, conflict={self.conflict!r}, "
            f"run_dir={str(self.run_dir) if self.run_dir else None!r})"
        )

    # ------------------------------------------------------------------ the run
    def close_round(self) -> None:
        """Close the waiting round with what is annotated now, at the next ``annotate``
        (sets :attr:`partial`)."""
        self.partial = True

    def _set_label_names(self, names: Sequence[str]) -> None:
        self.label_config = make_label_config(names, self.task)
        self.label_names = [str(n) for n in names]
        # ner: tag names (O, B-X, I-X) -> ids; otherwise class / label names -> ids
        self._label_ids = {n: i for i, n in enumerate(self.label_names)}

    def bind(self, run: RunInfo, dataset: Any, predict: Predict | None) -> None:
        """Take the run directory, class names, texts and model predictions from the run.

        Raises:
            LabelStudioError: the oracle was given another run directory or other classes.
        """
        run_task = ORACLE_TASKS.get(str(run.config.get("task") or "text_classification"), "single_label")
        if self._task_given and self.task != run_task:
            raise LabelStudioError(
                f"The oracle was given task={self.task!r} but the run's task needs {run_task!r}: leave task out."
            )
        if not self._task_given and self.task != run_task:
            self.task = run_task
            if self.label_names is not None:
                self._set_label_names(self.label_names)
        if self.run_dir is None:
            self.run_dir = run.files.root
        elif self.run_dir.resolve() != run.files.root.resolve():
            raise LabelStudioError(
                f"The oracle was given run_dir='{self.run_dir}' but runs in '{run.files.root}': "
                "leave run_dir out (the run's directory is used)."
            )
        if self.label_names is None:
            if len(run.label_names) < 2:
                raise LabelStudioError(
                    "The run has no class names for the Label Studio project: give label_names "
                    "(to the learner, e.g. ActiveLearner(label_names=[...]), or to the oracle)."
                )
            self._set_label_names(run.label_names)
        elif run.label_names and list(run.label_names) != self.label_names:
            raise LabelStudioError(
                f"The oracle's label_names {self.label_names} differ from the run's classes "
                f"{list(run.label_names)}: leave label_names out (the run's are used)."
            )
        if self.text_column is None:
            tokens = run.config.get("tokens_column") if self.task == "ner" else None
            self.text_column = tokens or run.text_column or "text"
        if self._texts is None and self.dataset is None:
            self.dataset = dataset
        self._predict = predict

    @property
    def state_dir(self) -> Path:
        """``<run_dir>/label_studio``: the oracle's state (tasks, events, conflicts)."""
        if self.run_dir is None:
            raise LabelStudioError(
                "The oracle is not bound to a run directory: give run_dir=..., or use it in a "
                "run (ActiveLearner(oracle=...)), which binds it."
            )
        return RunDir(self.run_dir).label_studio

    def _names(self) -> list[str]:
        if self.label_names is None:
            raise LabelStudioError(
                "The oracle has no class names: give label_names=..., or use it in a run "
                "(ActiveLearner(oracle=...)), which binds the run's."
            )
        return self.label_names

    # ------------------------------------------------------------------ state file
    @property
    def tasks_file(self) -> Path:
        return self.state_dir / TASKS_FILE

    def _load_state(self) -> dict[str, Any]:
        if self._state is None:
            if self.tasks_file.exists():
                self._state = json.loads(self.tasks_file.read_text())
            else:
                self._state = {"version": 1, "project": None, "rounds": {}}
        return self._state

    def _save_state(self) -> None:
        state = self._load_state()
        state["settings"] = self.settings()
        atomic_write_json(self.tasks_file, state)

    def settings(self) -> dict[str, Any]:
        """The oracle's settings without URL or token (rebuilds it for ``annotate RUN_DIR``)."""
        return {
            "label_names": self.label_names,
            "text_column": self.text_column or "text",
            "skipped": self.skipped,
            "conflict": self.conflict,
            "annotations_per_task": self.annotations_per_task,
            "task": self.task,
            "wait": self.wait,
            "poll_interval": self.poll_interval,
        }

    def _event(self, kind: str, **info: Any) -> None:
        append_jsonl(self.state_dir / EVENTS_FILE, {"event": kind, "time": time.time(), **info})

    def round_state(self, round: int) -> dict[str, dict[str, Any]]:
        """``{pool_id (str): {task_id, status, label, ...}}`` of a round, as in tasks.json."""
        return self._load_state()["rounds"].get(str(round), {})

    # ------------------------------------------------------------------ the server
    @property
    def _server(self) -> LabelStudioClient:
        # built on first use, from the current retry settings
        if self._ls is None:
            self._ls = LabelStudioClient(
                self.url, self._token, max_retries=self.max_retries, retry_backoff=self.retry_backoff,
                retry_timeout=self.retry_timeout, request_timeout=self.request_timeout,
            )
        return self._ls

    @property
    def client(self) -> Any:
        """The ``label_studio_sdk`` client (imported on first use)."""
        return self._server.api

    def _call(self, what: str, fn: Callable[[], Any], *, retry: bool = True) -> Any:
        return self._server.call(what, fn, retry=retry)

    # ------------------------------------------------------------------ project
    def ensure_project(self) -> int:
        """The project id: the recorded one, the given id/title, or a new project."""
        if self.project_id is not None:
            return self.project_id
        state = self._load_state()
        spec = self.project_spec
        client = self.client
        pid: int | None = None
        if isinstance(spec, (int, np.integer)):
            pid = int(spec)
        elif spec is None and state.get("project") is not None:
            pid = int(state["project"])
        if pid is not None:
            project = self._call(f"read project {pid}", lambda: client.projects.get(id=pid))
            self._check_project_labels(project)
        else:
            title = spec if isinstance(spec, str) else f"energizer-hf {Path(self.run_dir or '.').resolve().name}"
            if len(title) < 3:
                title = f"energizer-hf {title}"
            found = [
                p for p in self._call("list projects", lambda: list(client.projects.list()))
                if getattr(p, "title", None) == title
            ]
            if found:
                pid = int(min(p.id for p in found))
                self._check_project_labels(
                    self._call(f"read project {pid}", lambda: client.projects.get(id=pid))
                )
            else:
                self._names()
                created = self._call(
                    f"create project {title!r}",
                    lambda: client.projects.create(title=title, label_config=self.label_config),
                )
                pid = int(created.id)
                log.info("Created Label Studio project %d (%s).", pid, title)
        if state.get("project") not in (None, pid):
            raise LabelStudioError(
                f"{self.tasks_file} belongs to Label Studio project {state['project']}, not {pid}: "
                "use the same project to resume, or a new run directory."
            )
        state["project"] = pid
        self.project_id = pid
        self._save_state()
        return pid

    def _check_project_labels(self, project: Any) -> None:
        try:
            labels = project.get_label_interface().get_control(FROM_NAME).labels
        except Exception:  # noqa: BLE001 - no such control, or an unparsable config
            labels = None
        expected = entity_types_of(self._names()) if self.task == "ner" else self._names()
        if labels is None or list(labels) != expected:
            kind = {"ner": "labels (spans)", "multi_label": "multiple-choice"}.get(self.task, "single-choice")
            raise LabelStudioError(
                f"Label Studio project {project.id} has no {kind} control "
                f"'{FROM_NAME}' with the names {expected} (found {labels}): use "
                "another project or let the oracle create one."
            )

    @property
    def project_url(self) -> str:
        return f"{self.url}/projects/{self.project_id}/data" if self.project_id else self.url

    # ------------------------------------------------------------------ reading tasks
    def _list_tasks(self) -> dict[tuple[int, int], Any]:
        """(round, pool_id) → task of the project (the lowest task id wins duplicates)."""
        pid = self.ensure_project()
        client = self.client
        tasks = self._call(
            f"list the tasks of project {pid}",
            lambda: list(client.tasks.list(project=pid, page_size=500)),
        )
        out: dict[tuple[int, int], Any] = {}
        for t in tasks:
            data = t.data or {}
            if "pool_id" not in data or "round" not in data:
                continue
            key = (int(data["round"]), int(data["pool_id"]))
            if key in out:
                log.warning("Two Label Studio tasks for pool id %d in round %d; using the first.", key[1], key[0])
                if t.id > out[key].id:
                    continue
            out[key] = t
        return out

    def _texts_of(self, ids: np.ndarray) -> list[str]:
        """The texts people see (a sentence of words joined by single spaces)."""
        return [shown_text(t) for t in self._raw_texts(ids)]

    def _raw_texts(self, ids: np.ndarray) -> list[Any]:
        """The texts (or lists of words) of ``ids``, as the dataset or ``texts`` gives them."""
        if self._texts is not None:
            texts = list(self._texts(ids))
        elif self.dataset is None:
            raise LabelStudioError("Give texts=callable(ids) or dataset=... (with text_column).")
        else:
            ds = self.dataset
            column = self.text_column or "text"
            if hasattr(ds, "select"):
                texts = list(ds.select(ids.tolist())[column])
            else:
                texts = [ds[int(i)][column] for i in ids]
        if len(texts) != len(ids):
            raise LabelStudioError(f"texts gave {len(texts)} texts for {len(ids)} ids.")
        return texts

    def _words(self, pool_id: int) -> tuple[list[int], list[int]]:
        """Start and end offsets of the words of a sentence, in the text people see (from
        the sentence's own words, so that one tag is read back per word)."""
        raw = self._raw_texts(np.asarray([pool_id], dtype=np.int64))[0]
        _, starts, ends = word_offsets(word_list(raw))
        return starts, ends

    def _task_payloads(self, ids: np.ndarray, round: int) -> list[dict[str, Any]]:
        raw = self._raw_texts(ids)
        texts = [shown_text(t) for t in raw]
        names = self._names()
        version = self.model_version.format(round=round)
        preds = None
        if self.predictions == "model" and self.task != "single_label":
            if self._predict is not None:  # label sets / word tags of the run's model
                return model_payloads(ids, round, texts, [word_list(t) for t in raw], names=names,
                                      task=self.task, predicted=self._predict(ids), model_version=version)
        elif self.predictions == "model":
            if self._predict is not None:  # the run's model: its best class and that probability
                probs = np.asarray(self._predict(ids), dtype=np.float64)
                preds = (probs.argmax(1), probs.max(1))
        elif self.predictions is not None:
            labels, scores = self.predictions(ids)
            preds = (np.asarray(labels).reshape(-1), np.asarray(scores, dtype=float).reshape(-1))
        return choice_payloads(ids, round, texts, names=names, preds=preds, model_version=version)

    # ------------------------------------------------------------------ importing
    def submit(self, ids: Sequence[int] | np.ndarray, *, round: int) -> dict[str, int]:
        """Make sure every id has a task in ``round``; import only the missing ones.

        Returns ``{pool_id: task_id}``. Safe to call again after a crash: existing tasks
        are found by ``data.pool_id`` + ``data.round``.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        pid = self.ensure_project()
        state = self._load_state()
        rstate = state["rounds"].setdefault(str(round), {})
        ignored = self._ignored_ids() if self.skipped == "ignore" else set()

        def import_missing() -> None:
            existing = self._list_tasks()
            changed = False
            for pool_id in ids.tolist():
                entry = rstate.get(str(pool_id))
                task = existing.get((round, pool_id))
                if task is not None and (entry is None or entry.get("task_id") != task.id):
                    rstate[str(pool_id)] = {"task_id": int(task.id), "status": PENDING, **(
                        {k: v for k, v in (entry or {}).items() if k not in ("task_id", "status")})}
                    changed = True
                elif task is None and entry is None and pool_id in ignored:
                    rstate[str(pool_id)] = {"task_id": None, "status": IGNORED, "label": -1,
                                            "reason": "skipped in an earlier round"}
                    changed = True
            missing = np.array(
                [i for i in ids.tolist() if (round, i) not in existing
                 and rstate.get(str(i), {}).get("task_id") is None
                 and rstate.get(str(i), {}).get("status") != IGNORED],
                dtype=np.int64,
            )
            if changed:
                self._save_state()
            if missing.size == 0:
                return
            payloads = self._task_payloads(missing, round)
            resp = self.client.projects.import_tasks(pid, request=payloads, return_task_ids=True)
            task_ids = list(getattr(resp, "task_ids", None) or [])
            if len(task_ids) != missing.size:  # the next attempt reads the tasks back
                raise _ImportUnconfirmed(f"{len(task_ids)} task ids for {missing.size} imported tasks")
            for pool_id, tid in zip(missing.tolist(), task_ids):
                rstate[str(pool_id)] = {"task_id": int(tid), "status": PENDING}
            self._save_state()
            self._event("import", round=round, pool_ids=missing.tolist(), task_ids=task_ids)

        def log_retry(err: BaseException, attempt: int, delay: float) -> None:
            # the import may or may not have been applied: the next attempt looks first
            log.warning("Importing tasks failed (%s); checking and retrying in %.1f s.", reason(err), delay)

        server = self._server
        try:
            call_with_retries(
                import_missing,
                server.policy(),
                retryable=lambda err: isinstance(err, _ImportUnconfirmed)
                or server.map_error(err, "import tasks") is None,
                catch=(*server.transient_types(), _ImportUnconfirmed),
                on_retry=log_retry,
            )
        except RetryError as failed:
            if isinstance(failed.error, _ImportUnconfirmed):
                raise LabelStudioError(
                    f"Label Studio at {self.url} did not confirm the import of round {round}'s tasks "
                    f"after {failed.attempts} attempts ({failed.error}); run again to retry."
                ) from None
            server.give_up(failed, "import tasks")
        return {int(k): v.get("task_id") for k, v in rstate.items() if int(k) in set(ids.tolist())}

    def _ignored_ids(self) -> set[int]:
        out: set[int] = set()
        for entries in self._load_state()["rounds"].values():
            out.update(int(k) for k, e in entries.items() if e.get("status") == IGNORED)
        return out

    # ------------------------------------------------------------------ resolving
    def _parse(self, ann: dict[str, Any], pool_id: int | None = None) -> tuple[bool, Any, str | None]:
        words = self._words(pool_id) if self.task == "ner" and pool_id is not None else None
        return parse_annotation(ann, self._label_ids, self.task, words)

    def _fingerprint(self, anns: list[dict[str, Any]], pool_id: int | None = None) -> list[list[Any]]:
        """What identifies the state of a task's annotations (an edit changes it); the same
        as :func:`~energizer_hf.oracles.label_studio.annotations.fingerprint` for one choice."""
        return sorted(
            [int(a["id"]), str(a.get("updated_at")), bool(a.get("was_cancelled")), self._parse(a, pool_id)[2]]
            for a in anns
        )

    def _render(self, label: Any) -> Any:
        """A label as people read it (votes, conflicts)."""
        names = self.label_names or []
        if self.task == "single_label":
            return names[int(label)]
        return [names[int(v)] for v in label]

    def _allowed(self) -> list[str]:
        """The names an annotation may use: entity types (ner), class / label names."""
        names = self._names()
        return entity_types_of(names) if self.task == "ner" else list(names)

    def _resolve(
        self, round: int, pool_id: int, task: Any
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The resolved entry of a task (``None`` while it waits for annotations) and the
        records of its refused annotations (:class:`LabelStudioUnknownLabelError`)."""
        anns = sorted(as_dicts(task.annotations), key=lambda a: int(a["id"]))
        parsed = [(a, *self._parse(a, pool_id)) for a in anns]
        cancelled = [p for p in parsed if p[1]]
        submitted = [p for p in parsed if not p[1] and p[2] is not None]
        allowed = self._allowed()
        refused = [
            LabelStudioUnknownLabelError.of(
                round=round, pool_id=pool_id, task_id=int(task.id), annotation_id=int(p[0]["id"]),
                unknown=unknown_names(p[0], allowed, self.task), allowed=allowed, task=self.task,
            ).record()
            for p in parsed if not p[1] and p[2] is None
        ]
        # a refused annotation keeps its task pending: the others never resolve it alone
        if refused or len(submitted) + len(cancelled) < self.annotations_per_task:
            return None, refused
        return self._decide(round, pool_id, task, anns, submitted), []

    def _decide(
        self, round: int, pool_id: int, task: Any, anns: list[dict[str, Any]], submitted: list[Any]
    ) -> dict[str, Any]:
        """The entry of a task with enough valid annotations: skipped, labelled or conflict."""
        entry: dict[str, Any] = {"task_id": int(task.id), "seen": self._fingerprint(anns, pool_id)}
        if not submitted:
            status = IGNORED if self.skipped == "ignore" else SKIPPED
            return {**entry, "status": status, "label": -1}
        votes = [p[2] for p in submitted]
        label = vote(votes, self.conflict)
        entry["votes"] = [self._render(v) for v in votes]
        if len(set(votes)) > 1:
            append_jsonl(
                self.state_dir / CONFLICTS_FILE,
                {
                    "round": round, "pool_id": pool_id, "task_id": int(task.id),
                    "votes": entry["votes"], "annotation_ids": [int(p[0]["id"]) for p in submitted],
                    "rule": self.conflict,
                    "resolved": None if label is None else self._render(label),
                },
            )
        if label is None:
            log.warning(
                "Task %s (pool id %d): annotations disagree (%s) and rule %r cannot resolve them; "
                "the example goes back to the pool.", task.id, pool_id, entry["votes"], self.conflict,
            )
            return {**entry, "status": CONFLICT, "label": -1}
        return {**entry, "status": LABELLED, "label": int(label) if self.task == "single_label" else list(label)}

    def sync(self, round: int | None = None) -> dict[str, int]:
        """Read the project once: resolve pending tasks, notice deletions and edits.

        Returns counts of statuses in ``round`` (all rounds when ``None``).
        """
        tasks = self._list_tasks()
        state = self._load_state()
        changed = False
        for rkey, entries in state["rounds"].items():
            r = int(rkey)
            for pkey, entry in entries.items():
                pool_id = int(pkey)
                task = tasks.get((r, pool_id))
                status = entry.get("status")
                if entry.get("task_id") is None:
                    continue
                if task is None:
                    if status == PENDING:
                        warnings.warn(
                            f"Label Studio task {entry['task_id']} (pool id {pool_id}, round {r}) "
                            "was deleted before it was annotated; the example goes back to the pool.",
                            AnnotationChangedWarning, stacklevel=2,
                        )
                        entry.update(status=DELETED, label=-1)
                        self._event("deleted", round=r, pool_id=pool_id, task_id=entry["task_id"])
                        changed = True
                    elif status in RESOLVED and status != DELETED and not entry.get("deleted_after_read"):
                        warnings.warn(
                            f"Label Studio task {entry['task_id']} (pool id {pool_id}, round {r}) "
                            f"was deleted after its label was read ({status}); the label is kept.",
                            AnnotationChangedWarning, stacklevel=2,
                        )
                        entry["deleted_after_read"] = True
                        self._event("deleted_after_read", round=r, pool_id=pool_id,
                                    task_id=entry["task_id"], status=status)
                        changed = True
                    continue
                if int(task.id) != entry["task_id"]:
                    entry["task_id"] = int(task.id)
                    changed = True
                if status == PENDING:
                    resolved, refused = self._resolve(r, pool_id, task)
                    if refused != entry.get("refused", []):
                        self._report_refused(r, pool_id, entry.get("refused", []), refused)
                        if refused:
                            entry["refused"] = refused
                        else:
                            entry.pop("refused", None)
                        changed = True
                    if resolved is not None:
                        entry.update(resolved)
                        changed = True
                elif status in (LABELLED, SKIPPED, IGNORED, CONFLICT, ABANDONED):
                    now = self._fingerprint(sorted(as_dicts(task.annotations), key=lambda a: int(a["id"])), pool_id)
                    if now != entry.get("seen") and now != entry.get("change_reported"):
                        warnings.warn(
                            f"Annotations of Label Studio task {task.id} (pool id {pool_id}, round "
                            f"{r}) changed after they were read ({status}, label "
                            f"{entry.get('label')}); the change is recorded in "
                            f"{self.state_dir / EVENTS_FILE}, not applied.",
                            AnnotationChangedWarning, stacklevel=2,
                        )
                        entry["change_reported"] = now
                        self._event("changed_after_read", round=r, pool_id=pool_id,
                                    task_id=int(task.id), before=entry.get("seen"), after=now)
                        changed = True
        if changed:
            self._save_state()
        scope = [state["rounds"].get(str(round), {})] if round is not None else state["rounds"].values()
        return dict(Counter(e.get("status") for entries in scope for e in entries.values()))

    def _report_refused(
        self, round: int, pool_id: int, before: list[dict[str, Any]], now: list[dict[str, Any]]
    ) -> None:
        """Warn and log each refusal once (a new one, or one whose names changed)."""
        for record in now:
            if record in before:
                continue
            warnings.warn(record["message"], AnnotationRefusedWarning, stacklevel=3)
            self._event("refused", round=round, pool_id=pool_id, **record)

    def refused(self, round: int | None = None) -> list[LabelStudioUnknownLabelError]:
        """The refused annotations of the tasks still pending in ``round`` (all rounds when
        ``None``), as of the last read of the project: one :class:`LabelStudioUnknownLabelError` each
        (nothing is raised)."""
        rounds = self._load_state()["rounds"]
        keys = [str(round)] if round is not None else sorted(rounds, key=int)
        out = []
        for rkey in keys:
            for pkey, entry in rounds.get(rkey, {}).items():
                if entry.get("status") != PENDING:
                    continue
                for rec in entry.get("refused", []):
                    out.append(LabelStudioUnknownLabelError(
                        rec["message"], round=int(rkey), pool_id=int(pkey), task_id=rec["task_id"],
                        annotation_id=rec["annotation_id"], unknown=rec["unknown"], allowed=rec["allowed"],
                    ))
        return out

    def _refused_note(self, ids: np.ndarray, round: int) -> str:
        """What the waiting round's message adds about refused annotations."""
        wanted = {int(i) for i in ids.tolist()}
        errors = [e for e in self.refused(round) if e.pool_id in wanted]
        if not errors:
            return ""
        more = f" (and {len(errors) - 1} more: oracle.refused(), {self.tasks_file})" if len(errors) > 1 else ""
        return f" {len(errors)} annotation(s) refused: {errors[0]}{more}"

    # ------------------------------------------------------------------ the Oracle protocol
    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            return np.empty(0, dtype=np.int64)
        self.submit(ids, round=round)
        total = int(ids.size)
        done = self._count_done(ids, round)
        partial, self.partial = self.partial, False  # one-shot
        if done < total and self.wait == "async" and partial:
            self._abandon(ids, round)
        elif done < total and self.wait == "async":
            note = self._refused_note(ids, round)
            waiting = AwaitingAnnotations(round, done, total, self.project_url)
            raise AwaitingAnnotations(round, done, total, self.project_url, f"{waiting}{note}" if note else "")
        if done < total:
            self._block(ids, round, done)
        return self.labels(ids, round=round)

    def _abandon(self, ids: np.ndarray, round: int) -> None:
        rstate = self.round_state(round)
        left = [i for i in ids.tolist() if rstate.get(str(i), {}).get("status") == PENDING]
        tasks = self._list_tasks()
        for i in left:
            task = tasks.get((round, i))
            anns = sorted(as_dicts(task.annotations), key=lambda a: int(a["id"])) if task else []
            rstate[str(i)].update(status=ABANDONED, label=-1, seen=self._fingerprint(anns, i))
        self._save_state()
        self._event("abandoned", round=round, pool_ids=left)
        log.warning(
            "Round %d closed with %d of %d tasks not annotated; they go back to the pool.",
            round, len(left), len(ids),
        )

    def _count_done(self, ids: np.ndarray, round: int) -> int:
        self.sync()
        rstate = self.round_state(round)
        return sum(rstate.get(str(i), {}).get("status") in RESOLVED for i in ids.tolist())

    def _block(self, ids: np.ndarray, round: int, done: int) -> None:
        total = int(ids.size)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=done, desc=f"Annotations (round {round})", unit="task")
        log.info("Waiting for %d annotations in %s", total - done, self.project_url)
        t0 = time.monotonic()
        try:
            while done < total:
                if self.timeout is not None and time.monotonic() - t0 > self.timeout:
                    raise LabelStudioTimeoutError(
                        f"Round {round}: only {done}/{total} tasks were annotated within "
                        f"{self.timeout:.0f} s in {self.project_url}. Nothing is lost: run again "
                        "(or `energizer-hf annotate RUN_DIR`) to keep waiting."
                        f"{self._refused_note(ids, round)}",
                        round, done, total, self.project_url,
                    )
                time.sleep(self.poll_interval)
                now = self._count_done(ids, round)
                if bar is not None and now != done:
                    bar.update(now - done)
                done = now
        finally:
            if bar is not None:
                bar.close()

    def labels(self, ids: Sequence[int] | np.ndarray, *, round: int) -> Any:
        """Label ids of ``ids`` in ``round`` from tasks.json (-1: not labelled); for
        multi-label and ner a list of label-id lists / word tag-id lists (``None``: not
        labelled)."""
        rstate = self.round_state(round)
        if self.task != "single_label":
            return [
                list(rstate[str(i)]["label"]) if rstate.get(str(i), {}).get("status") == LABELLED else None
                for i in np.asarray(ids).reshape(-1).tolist()
            ]
        return np.array(
            [int(rstate.get(str(i), {}).get("label", -1)) if rstate.get(str(i), {}).get("status") == LABELLED
             else -1 for i in np.asarray(ids).reshape(-1).tolist()],
            dtype=np.int64,
        )

    # ------------------------------------------------------------------ rebuilding
    @classmethod
    def from_run_dir(
        cls, run_dir: str | os.PathLike, *, url: str | None = None, token: str | None = None,
        **overrides: Any,
    ) -> LabelStudioOracle:
        """The oracle recorded in ``<run_dir>/label_studio/tasks.json`` (URL/token from the
        arguments or the environment)."""
        path = RunDir(run_dir).label_studio / TASKS_FILE
        if not path.exists():
            raise LabelStudioError(f"{path} does not exist: this run has no Label Studio tasks.")
        state = json.loads(path.read_text())
        kwargs = dict(state.get("settings") or {})
        kwargs.update(overrides)
        return cls(url=url, token=token, project=state.get("project"), run_dir=run_dir, **kwargs)
