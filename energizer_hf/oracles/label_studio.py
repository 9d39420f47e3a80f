"""People as the oracle: each round's queried examples become Label Studio tasks.

``LabelStudioOracle`` creates (or reuses) a Label Studio project whose labelling
configuration is generated from the class names, imports the queried pool ids as tasks
(``data: {text, pool_id, round}``, with the model's prediction as a pre-annotation when a
``predictions`` callable is given), and reads the finished annotations back as label ids.

* ``wait="block"``: ``annotate`` polls until every task of the round is resolved (or
  ``timeout`` seconds pass: :class:`LabelStudioTimeoutError`, nothing is lost).
* ``wait="async"``: ``annotate`` imports the tasks and, unless they are all resolved
  already, raises :class:`AwaitingAnnotations`; the loop stops with the stop reason
  ``awaiting_annotations`` and ``learner.collect()`` / ``energizer-hf annotate RUN_DIR``
  picks the round up later.

The run directory keeps ``label_studio/tasks.json`` (written atomically): for every round,
pool id → task id and status. Tasks are matched on ``data.pool_id`` + ``data.round``,
never on the Label Studio task id alone (the server reuses ids after deletions), so a
resumed run neither imports a task twice nor loses an annotation.

The API token comes from the ``token`` argument or ``LABEL_STUDIO_API_KEY``; it is never
written to a file, a log line, an error message or the ``repr``.
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

from energizer_hf.errors import EnergizerError
from energizer_hf.oracles.base import AWAITING_ANNOTATIONS, AwaitingAnnotations, OracleBase, Predict
from energizer_hf.retry import RetryError, RetryPolicy, call_with_retries
from energizer_hf.run import RunDir, RunInfo
from energizer_hf.utils import append_jsonl, atomic_write_json

__all__ = [
    "AWAITING_ANNOTATIONS",
    "AnnotationChangedWarning",
    "AwaitingAnnotations",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioOracle",
    "LabelStudioTimeoutError",
    "learner_predictions",
    "make_label_config",
]

log = logging.getLogger(__name__)

TASKS_FILE = "tasks.json"
CONFLICTS_FILE = "conflicts.jsonl"
EVENTS_FILE = "events.jsonl"
FROM_NAME = "label"
TO_NAME = "text"

# statuses of a task in tasks.json
PENDING = "pending"
LABELLED = "labelled"
SKIPPED = "skipped"  # every annotation was cancelled: the id goes back to the pool
IGNORED = "ignored"  # skipped with skipped="ignore": never asked again, never labelled
CONFLICT = "conflict"  # annotations disagree and the rule could not resolve them
DELETED = "deleted"  # the task was deleted in Label Studio before it was resolved
ABANDONED = "abandoned"  # not annotated when the round was closed with partial=True
RESOLVED = {LABELLED, SKIPPED, IGNORED, CONFLICT, DELETED, ABANDONED}


# ---------------------------------------------------------------------- errors
class LabelStudioError(EnergizerError):
    """Label Studio answered with an error, or its state does not fit the run."""


class LabelStudioAuthError(LabelStudioError):
    """The API token was refused (401/403). The message never contains the token."""


class LabelStudioConnectionError(LabelStudioError):
    """The server could not be reached, even after retries with backoff."""


class LabelStudioTimeoutError(LabelStudioError, AwaitingAnnotations):
    """``timeout`` passed before every task of the round was resolved.

    Nothing is lost: the loop keeps the queried round (``pending.json``) before this error
    propagates, and running again goes on waiting for the same tasks.
    """

    reraise = True

    def __init__(self, message: str, round: int = -1, done: int = 0, total: int = 0, where: str = "") -> None:
        AwaitingAnnotations.__init__(self, round, done, total, where, message)


class _ImportUnconfirmed(Exception):
    """The server answered an import without the ids of every task (looked up again)."""


class AnnotationChangedWarning(UserWarning):
    """An annotation was edited (or a task deleted) after its label was read."""


# ---------------------------------------------------------------------- labelling configs
def _single_label(label_names: Sequence[str]) -> str:
    return _choices(label_names, "single")


def _multi_label(label_names: Sequence[str]) -> str:
    return _choices(label_names, "multiple")


def _choices(label_names: Sequence[str], mode: str) -> str:
    from xml.sax.saxutils import quoteattr

    choices = "".join(f"<Choice value={quoteattr(str(n))}/>" for n in label_names)
    return (
        f'<View><Text name="{TO_NAME}" value="$text"/>'
        f'<Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="{mode}" showInline="true">'
        f"{choices}</Choices></View>"
    )


# task type -> config builder; token classification (<Labels> over <Text>) goes here too.
LABEL_CONFIGS: dict[str, Callable[[Sequence[str]], str]] = {
    "single_label": _single_label,
    "multi_label": _multi_label,
}


def make_label_config(label_names: Sequence[str], task: str = "single_label") -> str:
    """The Label Studio labelling config (XML) for ``task`` over ``label_names``.

    >>> make_label_config(["neg", "pos"])  # doctest: +NORMALIZE_WHITESPACE
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text"
    choice="single" showInline="true"><Choice value="neg"/><Choice value="pos"/></Choices></View>'
    """
    if task not in LABEL_CONFIGS:
        raise LabelStudioError(
            f"No labelling config for task {task!r}; known: {', '.join(sorted(LABEL_CONFIGS))}."
        )
    names = [str(n) for n in label_names]
    if len(names) < 2 or len(set(names)) != len(names):
        raise LabelStudioError(f"label_names must be at least 2 distinct names, got {names}.")
    return LABEL_CONFIGS[task](names)


def _choice_result(label: str) -> list[dict[str, Any]]:
    return [
        {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [label]}}
    ]


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
            (all must agree). Unresolved tasks go back to the pool; every disagreement is
            appended to ``label_studio/conflicts.jsonl``.
        annotations_per_task: submitted-or-skipped annotations needed before a task counts
            as resolved (use > 1 with ``conflict="majority"``/``"unanimous"``).
        predictions: the pre-annotations: ``"model"`` (the run's model: its most likely
            class and that probability), a callable ``predictions(ids) -> (labels,
            scores)``, or ``None`` for none.
        model_version: the pre-annotations' ``model_version`` (``{round}`` is formatted).
        task: the labelling task type (see :data:`LABEL_CONFIGS`); only ``"single_label"``
            annotations are read back for now.
        max_retries / retry_backoff / retry_timeout: an unreachable server (or a 5xx) is
            retried with exponential backoff (``retry_backoff * 2**n``, at most 30 s) until
            ``max_retries`` attempts or ``retry_timeout`` seconds, then
            :class:`LabelStudioConnectionError`.
        progress: show a progress bar while blocking.

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
        task: str = "single_label",
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
        if task != "single_label":
            raise LabelStudioError(
                f"Only task='single_label' annotations can be read back for now, got {task!r}."
            )
        if annotations_per_task < 1:
            raise LabelStudioError(f"annotations_per_task must be >= 1, got {annotations_per_task}.")
        if not (predictions is None or predictions == "model" or callable(predictions)):
            raise LabelStudioError(
                f"predictions must be 'model', a callable ids -> (labels, scores) or None, got {predictions!r}."
            )
        self.project_spec = project
        self.task = task
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
        self._client = None
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
        self._label_ids = {n: i for i, n in enumerate(self.label_names)}

    def bind(self, run: RunInfo, dataset: Any, predict: Predict | None) -> None:
        """Take the run directory, class names, texts and model predictions from the run.

        Raises:
            LabelStudioError: the oracle was given another run directory or other classes.
        """
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
            self.text_column = run.text_column or "text"
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

    # ------------------------------------------------------------------ client + retries
    def _sdk(self):
        try:
            import httpx
            from label_studio_sdk import LabelStudio
            from label_studio_sdk.core.api_error import ApiError
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise LabelStudioError(
                "LabelStudioOracle needs label-studio-sdk: pip install 'energizer_hf[labelstudio]'."
            ) from err
        return LabelStudio, ApiError, httpx

    @property
    def client(self):
        if self._client is None:
            LabelStudio, _, _ = self._sdk()
            self._client = LabelStudio(
                base_url=self.url, api_key=self._token, timeout=self.request_timeout
            )
        return self._client

    def _policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.max_retries, backoff=self.retry_backoff, max_backoff=30.0,
            deadline=self.retry_timeout,
        )

    def _call(self, what: str, fn: Callable[[], Any], *, retry: bool = True) -> Any:
        """Run ``fn`` with retries on connection errors and 5xx; map errors to ours."""
        _, ApiError, httpx = self._sdk()

        def log_retry(err: BaseException, attempt: int, delay: float) -> None:
            log.warning(
                "Label Studio at %s: %s while trying to %s; retrying in %.1f s (%d/%d).",
                self.url, _reason(err), what, delay, attempt, self.max_retries,
            )

        try:
            return call_with_retries(
                fn,
                self._policy() if retry else RetryPolicy(attempts=1),
                retryable=lambda err: self._map_error(err, what) is None,
                catch=(ApiError, httpx.TransportError),
                on_retry=log_retry,
            )
        except RetryError as failed:
            return self._give_up(failed, what, retry)

    def _give_up(self, failed: RetryError, what: str, retry: bool = True) -> Any:
        """Raise the named error of a call that failed for good."""
        mapped = self._map_error(failed.error, what)
        if mapped is not None:
            raise mapped from None
        if not retry:
            raise failed.error
        raise LabelStudioConnectionError(
            f"Could not reach Label Studio at {self.url} to {what} ({_reason(failed.error)}) after "
            f"{failed.attempts} attempts in {failed.elapsed:.0f} s. Is the server running? Nothing is "
            "lost: run again (or `energizer-hf annotate RUN_DIR`) once it is back."
        ) from None

    def _map_error(self, err: BaseException, what: str) -> LabelStudioError | None:
        """Our error for a final failure, ``None`` for a transient one (retry it)."""
        _, ApiError, httpx = self._sdk()
        if isinstance(err, httpx.TransportError):
            return None
        status = getattr(err, "status_code", None)
        if status in (401, 403):
            return LabelStudioAuthError(
                f"Label Studio at {self.url} refused the API token ({status}) while trying "
                f"to {what}: check LABEL_STUDIO_API_KEY (Account & Settings → Access Token)."
            )
        if status is None or status >= 500 or status in (408, 429):
            return None
        return LabelStudioError(
            f"Label Studio at {self.url} answered {status} while trying to {what}: "
            f"{_detail(getattr(err, 'body', None))}"
        )

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
        if labels is None or list(labels) != self._names():
            raise LabelStudioError(
                f"Label Studio project {project.id} has no single-choice control "
                f"'{FROM_NAME}' with the classes {self.label_names} (found {labels}): use "
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
        return [str(t) for t in texts]

    def _task_payloads(self, ids: np.ndarray, round: int) -> list[dict[str, Any]]:
        texts = self._texts_of(ids)
        names = self._names()
        preds = None
        if self.predictions == "model":
            if self._predict is not None:  # the run's model: its best class and that probability
                probs = np.asarray(self._predict(ids), dtype=np.float64)
                preds = (probs.argmax(1), probs.max(1))
        elif self.predictions is not None:
            labels, scores = self.predictions(ids)
            preds = (np.asarray(labels).reshape(-1), np.asarray(scores, dtype=float).reshape(-1))
        payloads = []
        for j, (pool_id, text) in enumerate(zip(ids.tolist(), texts)):
            task: dict[str, Any] = {"data": {"text": text, "pool_id": int(pool_id), "round": int(round)}}
            if preds is not None:
                label = preds[0][j]
                name = names[int(label)] if not isinstance(label, str) else label
                task["predictions"] = [
                    {
                        "model_version": self.model_version.format(round=round),
                        "score": float(preds[1][j]),
                        "result": _choice_result(name),
                    }
                ]
            payloads.append(task)
        return payloads

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
            log.warning("Importing tasks failed (%s); checking and retrying in %.1f s.", _reason(err), delay)

        _, ApiError, httpx = self._sdk()
        try:
            call_with_retries(
                import_missing,
                self._policy(),
                retryable=lambda err: isinstance(err, _ImportUnconfirmed)
                or self._map_error(err, "import tasks") is None,
                catch=(ApiError, httpx.TransportError, _ImportUnconfirmed),
                on_retry=log_retry,
            )
        except RetryError as failed:
            if isinstance(failed.error, _ImportUnconfirmed):
                raise LabelStudioError(
                    f"Label Studio at {self.url} did not confirm the import of round {round}'s tasks "
                    f"after {failed.attempts} attempts ({failed.error}); run again to retry."
                ) from None
            self._give_up(failed, "import tasks")
        return {int(k): v.get("task_id") for k, v in rstate.items() if int(k) in set(ids.tolist())}

    def _ignored_ids(self) -> set[int]:
        out: set[int] = set()
        for entries in self._load_state()["rounds"].values():
            out.update(int(k) for k, e in entries.items() if e.get("status") == IGNORED)
        return out

    # ------------------------------------------------------------------ resolving
    def _parse(self, ann: dict[str, Any]) -> tuple[bool, int | None, str | None]:
        """(cancelled, label id or None, raw choice) of one annotation dict."""
        if ann.get("was_cancelled"):
            return True, None, None
        for region in ann.get("result") or []:
            if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
                choices = (region.get("value") or {}).get("choices") or []
                if choices:
                    return False, self._label_ids.get(str(choices[0])), str(choices[0])
        return False, None, None

    def _fingerprint(self, anns: list[dict[str, Any]]) -> list[list[Any]]:
        return sorted(
            [int(a["id"]), str(a.get("updated_at")), bool(a.get("was_cancelled")),
             self._parse(a)[2]]
            for a in anns
        )

    def _resolve(self, round: int, pool_id: int, task: Any) -> dict[str, Any] | None:
        """The resolved entry of a task, or ``None`` while it waits for annotations."""
        anns = sorted(_as_dicts(task.annotations), key=lambda a: int(a["id"]))
        parsed = [(a, *self._parse(a)) for a in anns]
        cancelled = [p for p in parsed if p[1]]
        submitted = [p for p in parsed if not p[1] and p[2] is not None]
        invalid = [p for p in parsed if not p[1] and p[2] is None]
        if invalid:
            log.warning(
                "Task %s (pool id %d): %d annotation(s) without a known class (%s); not counted.",
                task.id, pool_id, len(invalid), [p[3] for p in invalid],
            )
        if len(submitted) + len(cancelled) < self.annotations_per_task:
            return None
        entry: dict[str, Any] = {"task_id": int(task.id), "seen": self._fingerprint(anns)}
        if not submitted:
            status = IGNORED if self.skipped == "ignore" else SKIPPED
            return {**entry, "status": status, "label": -1}
        votes = [p[2] for p in submitted]
        counts = Counter(votes)
        label: int | None
        if self.conflict == "first":
            label = votes[0]
        elif self.conflict == "majority":
            top = counts.most_common()
            label = top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else None
        else:  # unanimous
            label = votes[0] if len(counts) == 1 else None
        entry["votes"] = [self.label_names[v] for v in votes]
        if len(counts) > 1:
            append_jsonl(
                self.state_dir / CONFLICTS_FILE,
                {
                    "round": round, "pool_id": pool_id, "task_id": int(task.id),
                    "votes": entry["votes"], "annotation_ids": [int(p[0]["id"]) for p in submitted],
                    "rule": self.conflict,
                    "resolved": None if label is None else self.label_names[label],
                },
            )
        if label is None:
            log.warning(
                "Task %s (pool id %d): annotations disagree (%s) and rule %r cannot resolve them; "
                "the example goes back to the pool.", task.id, pool_id, entry["votes"], self.conflict,
            )
            return {**entry, "status": CONFLICT, "label": -1}
        return {**entry, "status": LABELLED, "label": int(label)}

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
                    resolved = self._resolve(r, pool_id, task)
                    if resolved is not None:
                        entry.update(resolved)
                        changed = True
                elif status in (LABELLED, SKIPPED, IGNORED, CONFLICT, ABANDONED):
                    now = self._fingerprint(sorted(_as_dicts(task.annotations), key=lambda a: int(a["id"])))
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
            raise AwaitingAnnotations(round, done, total, self.project_url)
        if done < total:
            self._block(ids, round, done)
        return self.labels(ids, round=round)

    def _abandon(self, ids: np.ndarray, round: int) -> None:
        rstate = self.round_state(round)
        left = [i for i in ids.tolist() if rstate.get(str(i), {}).get("status") == PENDING]
        tasks = self._list_tasks()
        for i in left:
            task = tasks.get((round, i))
            anns = sorted(_as_dicts(task.annotations), key=lambda a: int(a["id"])) if task else []
            rstate[str(i)].update(status=ABANDONED, label=-1, seen=self._fingerprint(anns))
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
                        "(or `energizer-hf annotate RUN_DIR`) to keep waiting.",
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

    def labels(self, ids: Sequence[int] | np.ndarray, *, round: int) -> np.ndarray:
        """Label ids of ``ids`` in ``round`` from tasks.json (-1: not labelled)."""
        rstate = self.round_state(round)
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


def learner_predictions(learner: Any, batch_size: int = 64) -> Callable[[np.ndarray], tuple[Any, Any]]:
    """``predictions=`` for :class:`LabelStudioOracle` from an ``ActiveLearner``'s current
    model: ``(argmax label, its probability)`` per pool id (the model of the round that
    queried them; the initial set gets the untrained model's guesses)."""

    def predict(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        cfg = learner.config
        model = learner.module.model
        device = next(model.parameters()).device
        rows = learner.pool.view(np.asarray(ids, dtype=np.int64))
        pair = cfg.text_pair_column
        labels, scores = [], []
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(ids), batch_size):
                batch = rows[start : start + batch_size]
                enc = learner.tokenizer(
                    batch[cfg.text_column], batch[pair] if pair else None, truncation=True,
                    max_length=cfg.max_length, padding=True, return_tensors="pt",
                ).to(device)
                with torch.no_grad():
                    probs = model(**enc).logits.float().softmax(-1)
                best = probs.max(-1)
                labels.append(best.indices.cpu().numpy())
                scores.append(best.values.cpu().numpy())
        finally:
            model.train(was_training)
        return np.concatenate(labels), np.concatenate(scores)

    return predict


def _reason(err: BaseException) -> str:
    status = getattr(err, "status_code", None)
    return f"HTTP {status}" if status is not None else type(err).__name__


def _as_dicts(anns: Any) -> list[dict[str, Any]]:
    out = []
    for a in anns or []:
        if isinstance(a, dict):
            out.append(a)
        elif hasattr(a, "model_dump"):
            out.append(a.model_dump(mode="json"))
        else:
            out.append(dict(a))
    return out


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("validation_errors", "detail", "message"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]
