"""Query rounds as dataset revisions, locally and on the Hugging Face Hub.

A :class:`RoundStore` is a loop callback. After each round ``r`` it saves the labelled set
the round's model was trained on (every row labelled in rounds ``0..r``) as a
``datasets.Dataset``:

* always locally, as ``<run_dir>/revisions/round-NNN/`` (``save_to_disk`` into a temporary
  directory, then an atomic rename; never rewritten), with a dataset card ``README.md``;
* on the Hub when ``repo_id`` is given: one commit per round on the branch ``run_branch``
  (the Parquet data and the card together, in the layout of ``Dataset.push_to_hub``) and a
  tag ``round-NNN`` on that commit.

Hub calls are retried with exponential backoff; a final failure raises :class:`HubSyncError`
(the token is never part of its message) and leaves the local snapshot intact, and
:meth:`RoundStore.sync` later pushes only the rounds whose tag is missing.

Every :class:`~energizer_hf.learner.ActiveLearner` run gets a store (``RunConfig.hub_repo_id``
adds the Hub; :func:`ensure_round_stores`) and keeps its trained model under
``<run_dir>/final_model`` (:func:`save_final_model`). ``RunConfig.resume_from`` starts a new
run from a stored round (:func:`restore_from_revision`), and :func:`push_run` (``energizer-hf
push``) pushes a finished run directory. The token comes from ``HF_TOKEN`` or the stored login.

>>> round_tag(3)
'round-003'
>>> size_category(1500)
'1K<n<10K'
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import DatasetMismatchError, EnergizerError

__all__ = [
    "DEFAULT_RUN_BRANCH",
    "HubSyncError",
    "InvalidRepoIdError",
    "PushResult",
    "RoundNotFoundError",
    "RoundStore",
    "build_round_dataset",
    "ensure_round_stores",
    "is_run_complete",
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
    "validate_repo_id",
]

log = logging.getLogger(__name__)

DEFAULT_RUN_BRANCH = "energizer-run"
REVISIONS_DIR = "revisions"
FINAL_MODEL_DIR = "final_model"
CARD_FILE = "README.md"
DATA_FILE = "data/train-00000-of-00001.parquet"
META_KEY = "energizer_hf"
FORMAT_VERSION = 1
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "model_cards"
RESERVED_COLUMNS = ("pool_id", "label", "label_name", "round", "split", "label_source", "score")
_ROUND_RE = re.compile(r"^round-(\d{3,})$")
_HEX_RE = re.compile(r"^[0-9a-f]{7,40}$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9_]{6,}")


# ---------------------------------------------------------------------- errors
class HubSyncError(EnergizerError):
    """Pushing a round (or the final model) to the Hub failed, after retries where they help.

    The message never contains the token. ``status_code`` is the HTTP status of the last
    failure when there was one; ``round`` the round being pushed (``None`` otherwise).
    """

    def __init__(self, message: str, *, round: int | None = None, status_code: int | None = None):
        super().__init__(message)
        self.round = round
        self.status_code = status_code


class InvalidRepoIdError(EnergizerError):
    """A repository id or branch name that the Hub would refuse."""


class RoundNotFoundError(EnergizerError):
    """A revision (round tag, branch or commit) that does not exist; lists the existing ones."""


# ---------------------------------------------------------------------- small helpers
def round_tag(round: int) -> str:
    """The tag (and local directory name) of a round: ``round-003``."""
    if int(round) < 0:
        raise EnergizerError(f"round must be >= 0, got {round}.")
    return f"round-{int(round):03d}"


def _parse_round(name: str) -> int | None:
    m = _ROUND_RE.match(name)
    return int(m.group(1)) if m else None


_SIZE_CATEGORIES = [
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
    (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"),
    (10**12, "100B<n<1T"),
]


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    for bound, name in _SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1T"


def validate_repo_id(repo_id: str, what: str = "repo_id") -> str:
    """Check ``repo_id`` up front (``namespace/name``) with a clear error."""
    from huggingface_hub.utils import HFValidationError
    from huggingface_hub.utils import validate_repo_id as _validate

    if not isinstance(repo_id, str) or not repo_id:
        raise InvalidRepoIdError(
            f"{what} must be a non-empty string like 'user/name', got {repo_id!r}."
        )
    try:
        _validate(repo_id)
    except HFValidationError as err:
        raise InvalidRepoIdError(
            f"{what} {repo_id!r} is not a valid Hub repository id: {err} Use 'namespace/name' "
            "with letters, digits, '-', '_' and '.' only."
        ) from None
    if repo_id.count("/") != 1:
        raise InvalidRepoIdError(
            f"{what} {repo_id!r} needs a namespace: use 'user/name' or 'organization/name'."
        )
    return repo_id


def _validate_branch(branch: str) -> str:
    if (
        not isinstance(branch, str)
        or not _BRANCH_RE.match(branch)
        or ".." in branch
        or branch.endswith((".lock", "/", "."))
        or _ROUND_RE.match(branch)
    ):
        raise InvalidRepoIdError(
            f"run_branch {branch!r} is not a usable branch name: use letters, digits, '-', '_', "
            "'.', '/' (and not the name of a round tag)."
        )
    return branch


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _TOKEN_LIKE.sub("hf_***", text)


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _classify(err: BaseException) -> str:
    """``"retry"`` for server errors and dropped connections, ``"auth"``, or ``"fatal"``."""
    from huggingface_hub.errors import HfHubHTTPError

    status = _status(err)
    if isinstance(err, HfHubHTTPError):
        if status in (401, 403):
            return "auth"
        if status is None or status >= 500 or status in (408, 429):
            return "retry"
        return "fatal"
    if status in (401, 403):
        return "auth"
    if status is not None and (status >= 500 or status in (408, 429)):
        return "retry"
    if isinstance(err, (ConnectionError, TimeoutError)):
        return "retry"
    root = type(err).__module__.split(".")[0]
    if root in ("httpx", "httpx2", "httpcore", "requests", "urllib3"):
        return "retry"
    if isinstance(err, OSError) and status is None:
        return "retry"
    return "fatal"


def _front_matter(text: str) -> dict[str, Any]:
    """The YAML metadata block of a card (``{}`` when there is none)."""
    import yaml

    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, flags=re.S)
    if not m:
        return {}
    data = yaml.safe_load(m.group(1))
    return data if isinstance(data, dict) else {}


def _jsonable(obj: Any) -> Any:
    return json.loads(
        json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else repr(o))
    )


def _dataset_meta(ds: Any) -> dict[str, Any]:
    """The ``energizer_hf`` metadata stored in a round dataset's info description."""
    desc = getattr(getattr(ds, "info", None), "description", None) or ""
    try:
        data = json.loads(desc)
    except (TypeError, ValueError):
        return {}
    meta = data.get(META_KEY) if isinstance(data, dict) else None
    return meta if isinstance(meta, dict) else {}


def _set_dataset_meta(ds: Any, meta: Mapping[str, Any]) -> None:
    ds.info.description = json.dumps({META_KEY: _jsonable(dict(meta))}, sort_keys=True)


# ---------------------------------------------------------------------- templates
_BUILTIN_DATASET_CARD = """---
license: {{ license | y }}
pretty_name: {{ pretty_name | y }}
task_categories:
- text-classification
tags:
- active-learning
- energizer_hf
size_categories:
- {{ size_category | y }}
configs:
- config_name: default
  data_files:
  - split: train
    path: "data/train-*"
energizer_hf:
{{ meta_yaml | indent(2, true) }}
---

# {{ pretty_name }}

Labelled set after round {{ round }} ({{ num_rows }} rows) of an active-learning run.
Source dataset: {{ source_dataset }} (fingerprint `{{ pool_fingerprint }}`).
Strategy: {{ strategy }}; model: {{ model }}; seed: {{ seed }}; query size: {{ query_size }};
rounds: {{ max_rounds }}; budget: {{ total_budget }}; stopping reason: {{ stop_reason or "none yet" }}.

| Round | Labelled |{% for m in metric_names %} {{ m }} |{% endfor %}

|---|---|{% for m in metric_names %}---|{% endfor %}

{% for row in curve %}| {{ row.round }} | {{ row.num_labelled }} |{% for v in row.metrics %} {{ v }} |{% endfor %}

{% endfor %}
"""

_BUILTIN_MODEL_CARD = """---
library_name: transformers
pipeline_tag: text-classification
license: {{ license | y }}
tags:
- active-learning
- energizer_hf
{% if dataset_repo_id %}
datasets:
- {{ dataset_repo_id | y }}
{% endif %}
{% if accuracy is not none %}
model-index:
- name: {{ model_name | y }}
  results:
  - task:
      type: text-classification
      name: Text Classification
    dataset:
      name: {{ dataset_name | y }}
      type: {{ dataset_type | y }}
      split: test
{% if dataset_revision %}
      revision: {{ dataset_revision | y }}
{% endif %}
    metrics:
    - type: accuracy
      value: {{ accuracy }}
      name: Accuracy
{% if f1 is not none %}
    - type: f1
      value: {{ f1 }}
      name: F1 (macro)
      args:
        average: macro
{% endif %}
{% endif %}
---

# {{ model_name }}

Trained by active learning ({{ strategy }}, {{ num_rounds }} rounds, {{ num_labelled }} labels).
{% if dataset_url %}Labelled data: [{{ dataset_repo_id }}@{{ dataset_revision }}]({{ dataset_url }}).{% endif %}

| Round | Labelled |{% for m in metric_names %} {{ m }} |{% endfor %}

|---|---|{% for m in metric_names %}---|{% endfor %}

{% for row in curve %}| {{ row.round }} | {{ row.num_labelled }} |{% for v in row.metrics %} {{ v }} |{% endfor %}

{% endfor %}
"""

_BUILTIN = {"dataset_card.md.j2": _BUILTIN_DATASET_CARD, "model_card.md.j2": _BUILTIN_MODEL_CARD}


def _yaml_scalar(value: Any) -> str:
    """A YAML-safe scalar (JSON is valid YAML)."""
    return json.dumps(_jsonable(value), ensure_ascii=False)


def _render(name: str, context: Mapping[str, Any], templates_dir: str | Path | None = None) -> str:
    try:
        import jinja2
    except ImportError as err:  # pragma: no cover - jinja2 ships with most HF installs
        raise EnergizerError("Rendering cards needs jinja2: pip install jinja2.") from err
    directory = Path(templates_dir) if templates_dir is not None else TEMPLATES_DIR
    path = directory / name
    source = path.read_text(encoding="utf-8") if path.is_file() else _BUILTIN[name]
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["y"] = _yaml_scalar
    env.filters["num"] = _fmt_num
    return env.from_string(source).render(**context)


def _fmt_num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


# ---------------------------------------------------------------------- loop introspection
def _records_of(loop: Any) -> list[dict[str, Any]]:
    records = list(getattr(loop, "records", None) or [])
    if not records and getattr(loop, "run_dir", None) is not None:
        from energizer_hf.utils import read_jsonl

        records = read_jsonl(Path(loop.run_dir) / "rounds.jsonl")
    return records


def _metric_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for rec in records:
        for key, value in rec.items():
            if key.startswith("test/") and isinstance(value, (int, float)) and key not in names:
                names.append(key)
    preferred = ["test/accuracy", "test/f1_macro"]
    return [n for n in preferred if n in names] + sorted(n for n in names if n not in preferred)


def _curve(
    records: Sequence[Mapping[str, Any]], metric_names: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        {
            "round": rec.get("round"),
            "num_labelled": rec.get("num_labelled"),
            "metrics": [_fmt_num(rec.get(m)) for m in metric_names],
            "values": {m: rec.get(m) for m in metric_names},
        }
        for rec in records
    ]


def _label_source(loop: Any) -> str:
    from energizer_hf.oracles.base import SimulatedOracle

    return "dataset" if isinstance(getattr(loop, "oracle", None), SimulatedOracle) else "annotator"


# Attributes every torch / Lightning module has: not strategy parameters.
_MODULE_ATTRS = {
    "training",
    "prepare_data_per_node",
    "allow_zero_length_dataloader_with_multiple_devices",
}


def _strategy_params(strategy: Any) -> dict[str, Any]:
    params = {}
    for key, value in sorted(vars(strategy).items()) if hasattr(strategy, "__dict__") else ():
        if (
            not key.startswith("_")
            and key not in _MODULE_ATTRS
            and isinstance(value, (bool, int, float, str))
        ):
            params[key] = value
    return params


class _quiet_datasets:
    """Silence ``datasets`` progress bars inside the block (restored afterwards)."""

    def __enter__(self) -> None:
        import datasets

        self._was = datasets.is_progress_bar_enabled()
        if self._was:
            datasets.disable_progress_bars()

    def __exit__(self, *exc: object) -> None:
        import datasets

        if self._was:
            datasets.enable_progress_bars()


def _settings_dict(loop: Any) -> dict[str, Any]:
    settings = getattr(loop, "settings", None)
    if settings is None:
        return {}
    return asdict(settings) if is_dataclass(settings) else dict(vars(settings))


def _source_name(loop: Any, override: str | None) -> str:
    if override:
        return override
    config = getattr(loop, "config", None) or {}
    if isinstance(config.get("dataset"), str) and config["dataset"]:
        return config["dataset"]
    info = getattr(getattr(loop.pool, "dataset", None), "info", None)
    for attr in ("dataset_name", "builder_name"):
        value = getattr(info, attr, None)
        if value:
            return str(value)
    return "in-memory dataset"


def _run_id(loop: Any) -> str | None:
    """Identity of a run: a hash of its ``run.json`` (configuration and creation time)."""
    import hashlib

    run_file = Path(getattr(loop, "run_dir", "") or "") / "run.json"
    if not run_file.is_file():
        return None
    return hashlib.sha256(run_file.read_bytes()).hexdigest()[:16]


def _message_run_id(message: str | None) -> str | None:
    m = re.search(r'"run_id": "([0-9a-f]+)"', message or "")
    return m.group(1) if m else None


def _scores_of(records: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Acquisition scores of queried ids, when the records carry them (``queried_scores``)."""
    scores: dict[int, float] = {}
    for rec in records:
        ids, values = rec.get("queried_ids"), rec.get("queried_scores")
        if ids and values and len(ids) == len(values):
            scores.update({int(i): float(v) for i, v in zip(ids, values) if v is not None})
    return scores


# ---------------------------------------------------------------------- building a round
def build_round_dataset(
    pool: Any,
    round: int,
    *,
    label_names: Sequence[str] | None = None,
    label_source: str = "dataset",
    scores: Mapping[int, float] | None = None,
    drop_columns: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """The labelled subset of ``pool`` as it was after round ``round`` (rows of rounds ``0..round``).

    Columns: ``pool_id``, the input columns of ``pool.dataset`` (selected with
    ``Dataset.select``; ``drop_columns`` and reserved names left out), ``label`` (a
    ``ClassLabel`` when ``label_names`` are known), ``label_name``, ``round``, ``split``
    (``train``/``validation``), ``label_source`` and ``score`` (``None`` when unknown).
    ``metadata`` is stored, with the pool fingerprint, in the dataset's info.
    """
    import datasets

    from energizer_hf.pool import VALIDATION, _is_hf_dataset

    state = pool.state
    rounds = np.asarray(state["round"])
    ids = np.flatnonzero((rounds >= 0) & (rounds <= round)).astype(np.int64)
    labels = np.asarray(state["label"])[ids].astype(np.int64)
    names = list(label_names) if label_names is not None else None
    scores = scores or {}
    label_feature: Any = datasets.Value("int64")
    if names is not None and len(names) > 0 and (labels < len(names)).all():
        label_feature = datasets.ClassLabel(names=names)
    head = datasets.Dataset.from_dict(
        {"pool_id": ids.tolist()}, features=datasets.Features({"pool_id": datasets.Value("int64")})
    )
    tail = datasets.Dataset.from_dict(
        {
            "label": labels.tolist(),
            "label_name": [
                names[v]
                if names is not None and 0 <= v < len(names)
                else (None if v < 0 else str(v))
                for v in labels.tolist()
            ],
            "round": rounds[ids].astype(np.int64).tolist(),
            "split": np.where(
                np.asarray(state["split"])[ids] == VALIDATION, "validation", "train"
            ).tolist(),
            "label_source": [label_source] * len(ids),
            "score": [scores.get(int(i)) for i in ids.tolist()],
        },
        features=datasets.Features(
            {
                "label": label_feature,
                "label_name": datasets.Value("string"),
                "round": datasets.Value("int64"),
                "split": datasets.Value("string"),
                "label_source": datasets.Value("string"),
                "score": datasets.Value("float64"),
            }
        ),
    )
    parts = [head]
    if _is_hf_dataset(pool.dataset):
        skip = set(RESERVED_COLUMNS) | set(drop_columns)
        inputs = [c for c in pool.dataset.column_names if c not in skip]
        if inputs:
            parts.append(pool.dataset.select(ids).select_columns(inputs))
    parts.append(tail)
    ds = datasets.concatenate_datasets(parts, axis=1) if len(parts) > 1 else head
    meta = {
        "format": FORMAT_VERSION,
        "round": int(round),
        "tag": round_tag(round),
        "num_rows": len(ids),
        "pool_fingerprint": getattr(pool, "fingerprint", None),
        "pool_rows": len(pool),
        **dict(metadata or {}),
    }
    _set_dataset_meta(ds, meta)
    return ds


def _dataset_card_context(
    loop: Any,
    round: int,
    ds: Any,
    meta: Mapping[str, Any],
    *,
    license: str,
    pretty_name: str | None,
    source_dataset: str | None,
    repo_id: str | None,
    run_branch: str,
) -> dict[str, Any]:
    records = [r for r in _records_of(loop) if int(r.get("round", -1)) <= round]
    metric_names = _metric_names(records)
    settings = _settings_dict(loop)
    config = getattr(loop, "config", None) or {}
    names = list(getattr(loop, "label_names", None) or [])
    dist_names = list(names)
    for rec in records:
        for key in rec.get("label_distribution") or {}:
            if key not in dist_names:
                dist_names.append(key)
    this = records[-1] if records else {}
    strategy = getattr(loop, "strategy", None)
    meta_yaml = _yaml_block(meta)
    return {
        "license": license,
        "pretty_name": pretty_name or f"Active-learning labels, {round_tag(round)}",
        "size_category": size_category(len(ds)),
        "meta_yaml": meta_yaml,
        "meta": dict(meta),
        "round": round,
        "tag": round_tag(round),
        "run_branch": run_branch,
        "repo_id": repo_id,
        "num_rows": len(ds),
        "num_new": int(np.count_nonzero(np.asarray(ds["round"][:]) == round)) if len(ds) else 0,
        "columns": list(ds.column_names),
        "source_dataset": _source_name(loop, source_dataset),
        "pool_fingerprint": meta.get("pool_fingerprint"),
        "pool_rows": meta.get("pool_rows"),
        "strategy": getattr(strategy, "name", type(strategy).__name__),
        "strategy_class": type(strategy).__qualname__,
        "strategy_params": _strategy_params(strategy),
        "model": config.get("model") or "unknown",
        "seed": settings.get("seed"),
        "query_size": settings.get("query_size"),
        "initial_size": settings.get("initial_size"),
        "max_rounds": settings.get("max_rounds"),
        "total_budget": settings.get("total_budget"),
        "settings": settings,
        "config": {
            k: v for k, v in sorted(config.items()) if isinstance(v, (bool, int, float, str))
        },
        "label_names": names,
        "label_source": meta.get("label_source"),
        "distribution_names": dist_names,
        "distribution": [
            {
                "round": rec.get("round"),
                "num_labelled": rec.get("num_labelled"),
                "counts": [
                    int((rec.get("label_distribution") or {}).get(n, 0)) for n in dist_names
                ],
            }
            for rec in records
        ],
        "metric_names": metric_names,
        "curve": _curve(records, metric_names),
        "stop_reason": this.get("stop_reason"),
    }


def _yaml_block(data: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(_jsonable(dict(data)), sort_keys=False, allow_unicode=True).rstrip("\n")


def render_dataset_card(context: Mapping[str, Any], templates_dir: str | Path | None = None) -> str:
    """Render ``model_cards/dataset_card.md.j2`` (or the built-in fallback) with ``context``."""
    return _render("dataset_card.md.j2", context, templates_dir)


def render_model_card(context: Mapping[str, Any], templates_dir: str | Path | None = None) -> str:
    """Render ``model_cards/model_card.md.j2`` (or the built-in fallback) with ``context``."""
    return _render("model_card.md.j2", context, templates_dir)


# ---------------------------------------------------------------------- results
@dataclass
class PushResult:
    """What :meth:`RoundStore.push_final` pushed."""

    model_repo_id: str
    model_commit: str
    model_url: str
    dataset_repo_id: str | None = None
    dataset_commit: str | None = None
    dataset_url: str | None = None


# ---------------------------------------------------------------------- the store
class RoundStore:
    """Saves each round's labelled set as a revision, locally and optionally on the Hub.

    Args:
        repo_id: Hub dataset repository (``namespace/name``); ``None``: local revisions only.
        run_branch: branch that gets one commit per round (tags ``round-NNN`` point at them).
        private: create the repository as private (only when it does not exist yet).
        token: Hub token; ``None`` uses ``HF_TOKEN`` or the stored login.
        retries: extra attempts after a retryable failure (server errors, dropped
            connections); authentication and validation errors are not retried.
        backoff: first wait in seconds, doubled after every failed attempt (up to ``max_backoff``).
        on_error: ``"raise"`` (a :class:`HubSyncError` stops the run after the round's record
            and local snapshot are saved) or ``"warn"`` (warn and go on; the next round, or
            :meth:`sync`, pushes the missing rounds).
        license / pretty_name / source_dataset: card fields.
        templates_dir: where ``dataset_card.md.j2`` and ``model_card.md.j2`` are looked up
            (default: the repository's ``model_cards/``; built-in templates otherwise).
        run_dir: where snapshots go when the loop is not known (defaults to ``loop.run_dir``).

    Example:
        >>> store = RoundStore(repo_id=None)
        >>> store.run_branch
        'energizer-run'
    """

    def __init__(
        self,
        repo_id: str | None = None,
        *,
        run_branch: str = DEFAULT_RUN_BRANCH,
        private: bool = True,
        token: str | None = None,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        on_error: str = "raise",
        license: str = "other",
        pretty_name: str | None = None,
        source_dataset: str | None = None,
        templates_dir: str | Path | None = None,
        run_dir: str | Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repo_id = validate_repo_id(repo_id) if repo_id is not None else None
        self.run_branch = _validate_branch(run_branch)
        if retries < 0:
            raise EnergizerError(f"retries must be >= 0, got {retries}.")
        if on_error not in ("raise", "warn"):
            raise EnergizerError(f"on_error must be 'raise' or 'warn', got {on_error!r}.")
        self.private = private
        self.token = token
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.on_error = on_error
        self.license = license
        self.pretty_name = pretty_name
        self.source_dataset = source_dataset
        self.templates_dir = templates_dir
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._sleep = sleep
        self.pushed: dict[int, str] = {}  # round -> commit sha pushed by this store

    def __repr__(self) -> str:  # never show the token
        return f"RoundStore(repo_id={self.repo_id!r}, run_branch={self.run_branch!r})"

    # ------------------------------------------------------------------ loop callback
    def on_round_end(self, loop: Any, record: Mapping[str, Any]) -> None:
        # Earlier recorded rounds too: a crash between a record and its snapshot leaves a gap.
        for rec in _records_of(loop):
            if int(rec["round"]) < int(record["round"]):
                self.snapshot(loop, int(rec["round"]))
        self.snapshot(loop, int(record["round"]))
        if self.repo_id is None:
            return
        try:
            self.sync(loop)
        except HubSyncError as err:
            if self.on_error == "raise":
                raise
            warnings.warn(f"{err} The run goes on; missing rounds are pushed later.", stacklevel=2)

    # ------------------------------------------------------------------ local snapshots
    def revisions_dir(self, loop_or_run_dir: Any = None) -> Path:
        if loop_or_run_dir is None:
            if self.run_dir is None:
                raise EnergizerError("Give a loop or a run directory (or RoundStore(run_dir=...)).")
            return self.run_dir / REVISIONS_DIR
        if isinstance(loop_or_run_dir, (str, os.PathLike)):
            path = Path(loop_or_run_dir)
            return path if path.name == REVISIONS_DIR else path / REVISIONS_DIR
        return Path(loop_or_run_dir.run_dir) / REVISIONS_DIR

    def local_rounds(self, loop_or_run_dir: Any = None) -> list[int]:
        """Rounds with a complete local snapshot, ascending."""
        directory = self.revisions_dir(loop_or_run_dir)
        if not directory.is_dir():
            return []
        rounds = [
            r
            for p in directory.iterdir()
            if p.is_dir() and (r := _parse_round(p.name)) is not None and (p / CARD_FILE).exists()
        ]
        return sorted(rounds)

    def snapshot(self, loop: Any, round: int) -> Path:
        """Save round ``round``'s labelled set and card under ``<run_dir>/revisions`` (once)."""
        directory = self.revisions_dir(loop)
        final = directory / round_tag(round)
        if (final / CARD_FILE).exists():
            return final
        directory.mkdir(parents=True, exist_ok=True)
        with _quiet_datasets():
            return self._write_snapshot(loop, round, directory, final)

    def _write_snapshot(self, loop: Any, round: int, directory: Path, final: Path) -> Path:
        label_column = (getattr(loop, "config", None) or {}).get("label_column")
        label_source = _label_source(loop)
        settings = _settings_dict(loop)
        strategy = getattr(loop, "strategy", None)
        records = _records_of(loop)
        meta = {
            "run_id": _run_id(loop),
            "label_source": label_source,
            "strategy": getattr(strategy, "name", type(strategy).__name__),
            "seed": settings.get("seed"),
            "run_branch": self.run_branch,
            "label_names": list(getattr(loop, "label_names", None) or []),
        }
        ds = build_round_dataset(
            loop.pool,
            round,
            label_names=getattr(loop, "label_names", None),
            label_source=label_source,
            scores=_scores_of(records),
            drop_columns=[label_column] if label_column else ["label"],
            metadata=meta,
        )
        context = _dataset_card_context(
            loop,
            round,
            ds,
            _dataset_meta(ds),
            license=self.license,
            pretty_name=self.pretty_name,
            source_dataset=self.source_dataset,
            repo_id=self.repo_id,
            run_branch=self.run_branch,
        )
        card = render_dataset_card(context, self.templates_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=directory))
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

    # ------------------------------------------------------------------ Hub
    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(token=self.token)

    def _secrets(self) -> list[str | None]:
        found: list[str | None] = [self.token, os.environ.get("HF_TOKEN")]
        try:
            from huggingface_hub import get_token

            found.append(get_token())
        except Exception:  # noqa: BLE001 - only used to scrub messages
            pass
        return found

    def _error(
        self, what: str, err: BaseException, attempts: int, round: int | None, local: Path | None
    ) -> HubSyncError:
        status = _status(err)
        kind = _classify(err)
        detail = _scrub(f"{type(err).__name__}: {err}", self._secrets())
        msg = f"Could not {what} for '{self.repo_id}' after {attempts} attempt(s) ({detail})."
        if kind == "auth":
            msg += (
                " The Hub refused the credentials: check token=..., HF_TOKEN or `hf auth login`, "
                "and that the token may write to this namespace."
            )
        if local is not None:
            msg += (
                f" The local snapshot '{local}' is intact; call RoundStore.sync(run_dir) to push "
                "the missing rounds later."
            )
        return HubSyncError(msg, round=round, status_code=status)

    def _call(
        self,
        what: str,
        fn: Callable[[], Any],
        *,
        round: int | None = None,
        local: Path | None = None,
        ok_status: Sequence[int] = (),
    ) -> Any:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except Exception as err:  # noqa: BLE001 - classified below
                if _status(err) in ok_status:
                    return None
                if _classify(err) != "retry" or attempt == self.retries:
                    raise self._error(what, err, attempt + 1, round, local) from (
                        None if self._leaks(err) else err
                    )
                log.warning(
                    "Hub call '%s' failed (%s); retrying in %.2fs", what, type(err).__name__, delay
                )
                self._sleep(min(delay, self.max_backoff))
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _leaks(self, err: BaseException) -> bool:
        text = f"{err!r} {err}"
        return any(s and s in text for s in self._secrets())

    def _refs(self, api: Any, local: Path | None = None) -> Any:
        """The repository's refs, ``None`` when it does not exist."""
        from huggingface_hub.errors import RepositoryNotFoundError

        def list_refs() -> Any:
            try:
                return api.list_repo_refs(self.repo_id, repo_type="dataset")
            except RepositoryNotFoundError:
                return None

        return self._call("list the refs", list_refs, local=local)

    def remote_tags(self) -> dict[str, str]:
        """``round-*`` tags of the repository (name -> commit); ``{}`` when it does not exist."""
        if self.repo_id is None:
            return {}
        refs = self._refs(self._api())
        if refs is None:
            return {}
        return {t.name: t.target_commit for t in refs.tags if _parse_round(t.name) is not None}

    def sync(
        self, loop_or_run_dir: Any = None, *, rounds: Iterable[int] | None = None
    ) -> dict[int, str]:
        """Push every round whose ``round-NNN`` tag is missing on the Hub; returns round -> commit.

        With a loop, missing local snapshots of recorded rounds are made first. Rounds are
        pushed in order; already tagged rounds are skipped, and a round whose commit landed
        but whose tag did not is tagged without a second commit.
        """
        if loop_or_run_dir is not None and not isinstance(loop_or_run_dir, (str, os.PathLike)):
            for rec in _records_of(loop_or_run_dir):
                self.snapshot(loop_or_run_dir, int(rec["round"]))
        local = self.local_rounds(loop_or_run_dir)
        if rounds is not None:
            wanted = {int(r) for r in rounds}
            missing_local = sorted(wanted - set(local))
            if missing_local:
                raise RoundNotFoundError(
                    f"No local snapshot of round(s) {missing_local} in "
                    f"'{self.revisions_dir(loop_or_run_dir)}' (it has: {_fmt_rounds(local)})."
                )
            local = [r for r in local if r in wanted]
        if self.repo_id is None or not local:
            return {}
        directory = self.revisions_dir(loop_or_run_dir)
        api = self._api()
        first_local = directory / round_tag(local[0])
        refs = self._refs(api, first_local)
        if refs is None:
            self._call(
                "create the dataset repository",
                lambda: api.create_repo(
                    self.repo_id, repo_type="dataset", private=self.private, exist_ok=True
                ),
                local=first_local,
            )
            refs = self._call(
                "list the refs",
                lambda: api.list_repo_refs(self.repo_id, repo_type="dataset"),
                local=first_local,
            )
        tags = {t.name: t.target_commit for t in refs.tags}
        has_branch = self.run_branch in {b.name for b in refs.branches}
        self._check_same_run(
            api, directory, [r for r in local if round_tag(r) in tags], tags, has_branch
        )
        todo = [r for r in local if round_tag(r) not in tags]
        if not todo:
            return {}
        if not has_branch:
            self._call(
                f"create the branch '{self.run_branch}'",
                lambda: api.create_branch(
                    self.repo_id, branch=self.run_branch, repo_type="dataset", exist_ok=True
                ),
                local=first_local,
            )
        pushed: dict[int, str] = {}
        with _quiet_datasets():
            for r in todo:
                pushed[r] = self._push_round(api, r, directory / round_tag(r))
        self.pushed.update(pushed)
        return pushed

    def _check_same_run(
        self,
        api: Any,
        directory: Path,
        rounds: list[int],
        tags: Mapping[str, str],
        has_branch: bool,
    ) -> None:
        """Tags of ``rounds`` already exist: they must be this run's commits on ``run_branch``."""
        if not rounds:
            return
        local = directory / round_tag(rounds[0])
        commits = self._branch_commits(api, local, rounds[0]) if has_branch else []
        by_sha = {c.commit_id: c for c in commits}
        for r in rounds:
            tag = round_tag(r)
            commit = by_sha.get(tags[tag])
            mine = _front_matter((directory / tag / CARD_FILE).read_text(encoding="utf-8")).get(
                META_KEY, {}
            )
            theirs = _message_run_id(getattr(commit, "message", None))
            ours = mine.get("run_id") if isinstance(mine, dict) else None
            if commit is None or (ours and theirs and ours != theirs):
                raise HubSyncError(
                    f"'{self.repo_id}' already has a tag {tag} that was not made by this run "
                    f"(on branch '{self.run_branch}'): push this run to another repo_id or "
                    "run_branch, or delete the old tags.",
                    round=r,
                )

    def _branch_commits(self, api: Any, local: Path, round: int) -> list[Any]:
        return self._call(
            f"list the commits of '{self.run_branch}'",
            lambda: api.list_repo_commits(
                self.repo_id, repo_type="dataset", revision=self.run_branch
            ),
            round=round,
            local=local,
        )

    def _push_round(self, api: Any, round: int, local: Path) -> str:
        tag = round_tag(round)
        prefix = f"energizer_hf {tag}:"
        commits = self._branch_commits(api, local, round)
        sha = next((c.commit_id for c in commits if c.title.startswith(prefix)), None)
        if sha is None:
            sha = self._commit_round(
                api, round, local, prefix, commits[0].commit_id if commits else None
            )
        self._call(
            f"tag {tag}",
            lambda: api.create_tag(
                self.repo_id,
                tag=tag,
                revision=sha,
                tag_message=f"energizer_hf labelled set after round {round}",
                repo_type="dataset",
                exist_ok=True,
            ),
            round=round,
            local=local,
            ok_status=(409,),
        )
        log.info("Pushed %s of %s as %s", tag, self.repo_id, sha)
        return sha

    def _commit_round(
        self, api: Any, round: int, local: Path, prefix: str, head: str | None
    ) -> str:
        import datasets
        from huggingface_hub import CommitOperationAdd

        ds = datasets.load_from_disk(str(local))
        card = (local / CARD_FILE).read_bytes()
        meta = _dataset_meta(ds)
        title = f"{prefix} {len(ds)} labelled rows"
        description = json.dumps({META_KEY: meta}, sort_keys=True)
        delay = self.backoff
        with tempfile.TemporaryDirectory(prefix="energizer_hf_push_") as tmp:
            parquet = Path(tmp) / "train.parquet"
            ds.to_parquet(str(parquet))
            for attempt in range(self.retries + 1):
                ops = [
                    CommitOperationAdd(path_in_repo=DATA_FILE, path_or_fileobj=str(parquet)),
                    CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card),
                ]
                try:
                    info = api.create_commit(
                        self.repo_id,
                        operations=ops,
                        commit_message=title,
                        commit_description=description,
                        revision=self.run_branch,
                        repo_type="dataset",
                        parent_commit=head,
                    )
                    return info.oid
                except Exception as err:  # noqa: BLE001 - classified below
                    retryable = _classify(err) == "retry" or _status(err) == 412
                    if not retryable or attempt == self.retries:
                        raise self._error(
                            f"commit {round_tag(round)}", err, attempt + 1, round, local
                        ) from (None if self._leaks(err) else err)
                    log.warning(
                        "Commit of %s failed (%s); retrying", round_tag(round), type(err).__name__
                    )
                    self._sleep(min(delay, self.max_backoff))
                    delay *= 2
                    # The commit may have landed with its answer lost, or the branch moved.
                    commits = self._branch_commits(api, local, round)
                    landed = next(
                        (c.commit_id for c in commits if c.title.startswith(prefix)), None
                    )
                    if landed is not None:
                        return landed
                    head = commits[0].commit_id if commits else None
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ final push
    def push_final(
        self,
        learner_or_loop: Any,
        model_repo_id: str,
        *,
        model: Any = None,
        tokenizer: Any = None,
        dataset_repo_id: str | None = None,
        private: bool | None = None,
        base_model: str | None = None,
        commit_message: str | None = None,
        model_dir: str | os.PathLike | None = None,
    ) -> PushResult:
        """Push the final labelled set (main branch of the dataset repo) and the final model.

        ``learner_or_loop``: an :class:`~energizer_hf.learner.ActiveLearner` after ``run()``
        (model and tokenizer are taken from it) or an ``ActiveLoop`` with ``model=`` and
        ``tokenizer=``. ``model_dir``: upload a ``save_pretrained`` directory (e.g. a run's
        ``final_model/``) instead of a model object. The model card links the dataset commit
        of the final labelled set.
        """
        from huggingface_hub import CommitOperationAdd, constants

        validate_repo_id(model_repo_id, "model_repo_id")
        dataset_repo_id = validate_repo_id(dataset_repo_id) if dataset_repo_id else self.repo_id
        loop = getattr(learner_or_loop, "loop", None) or learner_or_loop
        if model_dir is not None:
            model_dir = Path(model_dir)
            if not (model_dir / "config.json").is_file():
                raise EnergizerError(
                    f"'{model_dir}' holds no saved model (no config.json): give the directory "
                    "of a model saved with save_pretrained."
                )
        else:
            if model is None:
                module = getattr(learner_or_loop, "module", None)
                model = getattr(module, "model", None)
            if tokenizer is None:
                tokenizer = getattr(learner_or_loop, "tokenizer", None)
            if model is None or not hasattr(model, "save_pretrained"):
                raise EnergizerError(
                    "push_final needs a transformers model: pass an ActiveLearner, model= or "
                    "model_dir=."
                )
        records = _records_of(loop)
        if not records:
            raise EnergizerError("The run has no recorded round yet: run it before push_final.")
        last = int(records[-1]["round"])
        private = self.private if private is None else private
        api = self._api()

        dataset_commit = dataset_url = None
        if dataset_repo_id:
            snap = self.snapshot(loop, last)
            store = self if dataset_repo_id == self.repo_id else self._clone(dataset_repo_id)
            self._call(
                "create the dataset repository",
                lambda: api.create_repo(
                    dataset_repo_id, repo_type="dataset", private=private, exist_ok=True
                ),
                local=snap,
            )
            dataset_commit = store._push_main(api, last, snap)
            dataset_url = f"{constants.ENDPOINT}/datasets/{dataset_repo_id}/tree/{dataset_commit}"

        metric_names = _metric_names(records)
        final = records[-1]
        context = {
            "license": self.license,
            "model_name": model_repo_id.split("/")[-1],
            "repo_id": model_repo_id,
            "base_model": base_model,
            "dataset_repo_id": dataset_repo_id,
            "dataset_name": f"{dataset_repo_id or 'labelled set'} ({round_tag(last)})",
            "dataset_type": dataset_repo_id or "energizer_hf",
            "dataset_revision": dataset_commit,
            "dataset_url": dataset_url,
            "accuracy": _maybe_float(final.get("test/accuracy")),
            "f1": _maybe_float(final.get("test/f1_macro")),
            "metric_names": metric_names,
            "curve": _curve(records, metric_names),
            "strategy": final.get("strategy") or getattr(loop.strategy, "name", "unknown"),
            "num_rounds": len(records),
            "num_labelled": final.get("num_labelled"),
            "label_names": list(getattr(loop, "label_names", None) or []),
            "settings": _settings_dict(loop),
            "seed": _settings_dict(loop).get("seed"),
            "query_size": _settings_dict(loop).get("query_size"),
            "stop_reason": final.get("stop_reason"),
            "pool_fingerprint": getattr(loop.pool, "fingerprint", None),
            "source_dataset": _source_name(loop, self.source_dataset),
        }
        card = render_model_card(context, self.templates_dir)
        self._call(
            "create the model repository",
            lambda: api.create_repo(
                model_repo_id, repo_type="model", private=private, exist_ok=True
            ),
        )
        with tempfile.TemporaryDirectory(prefix="energizer_hf_model_") as tmp:
            if model_dir is not None:
                shutil.copytree(
                    model_dir, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*")
                )
            else:
                model.save_pretrained(tmp)
                if tokenizer is not None:
                    tokenizer.save_pretrained(tmp)
            Path(tmp, CARD_FILE).write_text(card, encoding="utf-8")
            ops = [
                CommitOperationAdd(path_in_repo=str(p.relative_to(tmp)), path_or_fileobj=str(p))
                for p in sorted(Path(tmp).rglob("*"))
                if p.is_file()
            ]
            message = (
                commit_message
                or f"energizer_hf final model ({round_tag(last)}, {final.get('num_labelled')} labels)"
            )
            info = self._commit_once(
                api, model_repo_id, "model", ops, message, what="push the final model"
            )
        return PushResult(
            model_repo_id=model_repo_id,
            model_commit=info,
            model_url=f"{constants.ENDPOINT}/{model_repo_id}/tree/{info}",
            dataset_repo_id=dataset_repo_id,
            dataset_commit=dataset_commit,
            dataset_url=dataset_url,
        )

    def _clone(self, repo_id: str) -> RoundStore:
        other = RoundStore.__new__(RoundStore)
        other.__dict__.update(self.__dict__)
        other.repo_id = repo_id
        other.pushed = {}
        return other

    def _commit_once(
        self,
        api: Any,
        repo_id: str,
        repo_type: str,
        ops: list[Any],
        message: str,
        *,
        what: str,
        description: str | None = None,
    ) -> str:
        """Commit to main, retrying only when the commit did not land (checked by title)."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return api.create_commit(
                    repo_id,
                    operations=ops,
                    commit_message=message,
                    commit_description=description,
                    repo_type=repo_type,
                ).oid
            except Exception as err:  # noqa: BLE001 - classified below
                if _classify(err) != "retry" or attempt == self.retries:
                    raise self._error(what, err, attempt + 1, None, None) from (
                        None if self._leaks(err) else err
                    )
                self._sleep(min(delay, self.max_backoff))
                delay *= 2
                commits = self._call(
                    "list commits", lambda: api.list_repo_commits(repo_id, repo_type=repo_type)
                )
                if commits and commits[0].title == message:
                    return commits[0].commit_id
        raise AssertionError("unreachable")  # pragma: no cover

    def _push_main(self, api: Any, round: int, local: Path) -> str:
        import datasets
        from huggingface_hub import CommitOperationAdd

        ds = datasets.load_from_disk(str(local))
        message = f"energizer_hf final labelled set ({round_tag(round)}, {len(ds)} rows)"
        meta = _front_matter((local / CARD_FILE).read_text(encoding="utf-8")).get(META_KEY) or {}
        run_id = meta.get("run_id") if isinstance(meta, dict) else None
        head = self._call(
            "list the commits of main",
            lambda: api.list_repo_commits(self.repo_id, repo_type="dataset"),
            local=local,
        )
        if (
            head
            and head[0].title == message
            and run_id
            and _message_run_id(getattr(head[0], "message", None)) == run_id
        ):
            log.info("The final labelled set of this run is already on main of %s", self.repo_id)
            return head[0].commit_id
        with tempfile.TemporaryDirectory(prefix="energizer_hf_push_") as tmp:
            parquet = Path(tmp) / "train.parquet"
            ds.to_parquet(str(parquet))
            ops = [
                CommitOperationAdd(path_in_repo=DATA_FILE, path_or_fileobj=str(parquet)),
                CommitOperationAdd(
                    path_in_repo=CARD_FILE, path_or_fileobj=(local / CARD_FILE).read_bytes()
                ),
            ]
            return self._commit_once(
                api,
                self.repo_id,
                "dataset",
                ops,
                message,
                what="push the final labelled set",
                description=json.dumps({META_KEY: meta}, sort_keys=True) if meta else None,
            )

    def push_labelled_set(
        self, loop_or_run_dir: Any, round: int | None = None, *, private: bool | None = None
    ) -> str:
        """Push round ``round``'s labelled set (default: the last local snapshot) and its card
        to ``main`` of ``repo_id`` (created when missing); returns the commit sha.

        A second push of the same run's set is a no-op (it returns the existing commit).
        """
        if self.repo_id is None:
            raise EnergizerError("push_labelled_set needs a RoundStore with a repo_id.")
        if round is None:
            local = self.local_rounds(loop_or_run_dir)
            if not local:
                raise RoundNotFoundError(
                    f"No round snapshot in '{self.revisions_dir(loop_or_run_dir)}'."
                )
            round = local[-1]
        snap = self.revisions_dir(loop_or_run_dir) / round_tag(round)
        if not (snap / CARD_FILE).exists():
            if isinstance(loop_or_run_dir, (str, os.PathLike)):
                raise RoundNotFoundError(
                    f"No local snapshot of {round_tag(round)} in '{snap.parent}' (it has: "
                    f"{_fmt_rounds(self.local_rounds(loop_or_run_dir))})."
                )
            snap = self.snapshot(loop_or_run_dir, round)
        api = self._api()
        private = self.private if private is None else private
        self._call(
            "create the dataset repository",
            lambda: api.create_repo(
                self.repo_id, repo_type="dataset", private=private, exist_ok=True
            ),
            local=snap,
        )
        with _quiet_datasets():
            return self._push_main(api, round, snap)


def _maybe_float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return round(float(value), 6)
    return None


def _fmt_rounds(rounds: Iterable[int]) -> str:
    names = [round_tag(r) for r in rounds]
    return ", ".join(names) if names else "none"


# ---------------------------------------------------------------------- loading and resuming
def load_round(
    repo_or_dir: str | os.PathLike,
    revision: int | str | None = None,
    *,
    token: str | None = None,
    run_branch: str = DEFAULT_RUN_BRANCH,
) -> Any:
    """Load a stored round as a ``datasets.Dataset``.

    ``repo_or_dir``: a run directory (or its ``revisions/``) or a Hub dataset repo id.
    ``revision``: a round number, a ``round-NNN`` tag, a branch or a commit sha; ``None`` is
    the latest round (local) or the head of ``run_branch`` (Hub). The returned dataset
    carries the round's metadata (pool fingerprint, ...) for :func:`rebuild_pool_state`.

    Raises:
        RoundNotFoundError: the revision does not exist; the message lists the ``round-*`` refs.
    """
    if isinstance(revision, (int, np.integer)):
        revision = round_tag(int(revision))
    path = Path(repo_or_dir)
    if path.exists():
        return _load_local(path, revision)
    if not isinstance(repo_or_dir, str):
        raise RoundNotFoundError(f"'{repo_or_dir}' does not exist.")
    try:
        validate_repo_id(repo_or_dir)
    except InvalidRepoIdError as err:
        raise InvalidRepoIdError(
            f"'{repo_or_dir}' is neither an existing directory nor a repo id: {err}"
        ) from None
    return _load_hub(repo_or_dir, revision or run_branch, token)


def _load_local(path: Path, revision: str | None) -> Any:
    import datasets

    directory = path if path.name == REVISIONS_DIR else path / REVISIONS_DIR
    if (path / "state.json").exists():  # a round directory itself
        return datasets.load_from_disk(str(path))
    rounds = RoundStore(run_dir=directory.parent).local_rounds(directory.parent)
    if revision is None:
        if not rounds:
            raise RoundNotFoundError(f"No round snapshot in '{directory}'.")
        revision = round_tag(rounds[-1])
    target = directory / revision
    if _parse_round(revision) is None or not (target / CARD_FILE).exists():
        raise RoundNotFoundError(
            f"No revision {revision!r} in '{directory}'. Existing revisions: {_fmt_rounds(rounds)}."
        )
    return datasets.load_from_disk(str(target))


def _load_hub(repo_id: str, revision: str, token: str | None) -> Any:
    import datasets
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    api = HfApi(token=token)
    secrets = [token, os.environ.get("HF_TOKEN")]
    try:
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
    except RepositoryNotFoundError:
        raise RoundNotFoundError(
            f"The dataset repository '{repo_id}' does not exist (or the token cannot see it)."
        ) from None
    except HfHubHTTPError as err:
        raise HubSyncError(
            f"Could not list the refs of '{repo_id}': {_scrub(str(err), secrets)}",
            status_code=_status(err),
        ) from None
    names = {r.name for r in (*refs.tags, *refs.branches)}
    rounds = sorted(n for n in names if n.startswith("round-"))
    known = revision in names
    if not known and _HEX_RE.match(revision):
        known = api.revision_exists(repo_id, revision, repo_type="dataset")
    if not known:
        branches = sorted(b.name for b in refs.branches)
        raise RoundNotFoundError(
            f"No revision {revision!r} in the dataset repository '{repo_id}'. Existing round-* "
            f"refs: {', '.join(rounds) or 'none'} (branches: {', '.join(branches)})."
        )
    ds = datasets.load_dataset(repo_id, revision=revision, split="train", token=token)
    try:
        card = Path(
            hf_hub_download(repo_id, CARD_FILE, repo_type="dataset", revision=revision, token=token)
        ).read_text(encoding="utf-8")
        meta = _front_matter(card).get(META_KEY) or {}
    except Exception as err:  # noqa: BLE001 - the data loaded; metadata is optional
        log.warning("No card metadata for %s@%s: %s", repo_id, revision, type(err).__name__)
        meta = {}
    if isinstance(meta, dict) and meta:
        _set_dataset_meta(ds, meta)
    return ds


def rebuild_pool_state(
    pool: Any,
    revision_dataset: Any,
    *,
    fingerprint: str | None = None,
    check_rows: int = 32,
) -> np.ndarray:
    """Label ``pool`` from a stored round (its ``pool_id``, ``label``, ``round``, ``split``).

    The round's pool fingerprint (from the dataset's metadata, or ``fingerprint=``) must match
    ``pool.fingerprint``, and up to ``check_rows`` rows of the stored input columns must equal
    the pool's. Labels the pool already has must agree with the revision; the others are
    added round by round. Returns the labelled pool ids (ascending).

    Raises:
        DatasetMismatchError: another dataset (fingerprint, size or content), or conflicting labels.
    """
    meta = _dataset_meta(revision_dataset)
    stored = fingerprint or meta.get("pool_fingerprint")
    if not stored:
        raise DatasetMismatchError(
            "The revision carries no pool fingerprint (load it with energizer_hf.hub.load_round, "
            "or pass fingerprint=...), so it cannot be checked against this pool."
        )
    if stored != pool.fingerprint:
        raise DatasetMismatchError(
            f"The revision was made from another dataset (fingerprint {stored}; this pool has "
            f"{pool.fingerprint}). Resume with the dataset the run was made with."
        )
    cols = revision_dataset.column_names
    missing = [c for c in ("pool_id", "label", "round") if c not in cols]
    if missing:
        raise DatasetMismatchError(
            f"The revision has no column(s) {missing}; it is not a round snapshot."
        )
    ids = np.asarray(revision_dataset["pool_id"][:], dtype=np.int64)
    labels = np.asarray(revision_dataset["label"][:], dtype=np.int64)
    rounds = np.asarray(revision_dataset["round"][:], dtype=np.int64)
    val = (
        np.asarray(revision_dataset["split"][:]) == "validation"
        if "split" in cols
        else np.zeros(len(ids), dtype=bool)
    )
    if ids.size and (ids.min() < 0 or ids.max() >= len(pool)):
        raise DatasetMismatchError(
            f"The revision has pool ids outside [0, {len(pool)}): it belongs to another dataset."
        )
    _check_rows(pool, revision_dataset, ids, check_rows)
    state = pool.state
    have = np.asarray(state["round"])[ids] >= 0
    extra = np.setdiff1d(pool.labelled_ids, ids)
    conflict = have & (
        (np.asarray(state["label"])[ids] != labels) | (np.asarray(state["round"])[ids] != rounds)
    )
    if extra.size or conflict.any():
        raise DatasetMismatchError(
            f"The pool already has labels that differ from the revision ({int(extra.size)} ids not in "
            f"it, {int(conflict.sum())} with another label or round): start from an unlabelled pool "
            "(a new run directory)."
        )
    todo = ~have
    for r in np.unique(rounds[todo]):
        sel = todo & (rounds == r)
        pool.label(ids[sel], labels[sel], round=int(r), validation=val[sel])
    return np.sort(ids)


def _check_rows(pool: Any, ds: Any, ids: np.ndarray, n: int) -> None:
    from energizer_hf.pool import _is_hf_dataset

    if not ids.size or n <= 0 or not _is_hf_dataset(pool.dataset):
        return
    common = [
        c for c in ds.column_names if c not in RESERVED_COLUMNS and c in pool.dataset.column_names
    ]
    if not common:
        return
    pos = np.unique(np.linspace(0, ids.size - 1, num=min(n, ids.size)).astype(np.int64))
    mine = pool.dataset.select(ids[pos].tolist()).select_columns(common)[:]
    theirs = ds.select(pos.tolist()).select_columns(common)[:]
    if mine != theirs:
        raise DatasetMismatchError(
            "The revision's rows do not match the pool's rows with the same pool ids: it was made "
            "from another dataset (or another order of it)."
        )


# ---------------------------------------------------------------------- one-call helper
def push_to_hub(
    learner: Any,
    model_repo_id: str,
    *,
    dataset_repo_id: str | None = None,
    token: str | None = None,
    private: bool = True,
    sync_rounds: bool = True,
    **store_kwargs: Any,
) -> PushResult:
    """Push a finished run: every round's revision (when ``sync_rounds``) and the final
    labelled set to ``dataset_repo_id``, and the model with its card to ``model_repo_id``."""
    store = RoundStore(dataset_repo_id, token=token, private=private, **store_kwargs)
    loop = getattr(learner, "loop", None) or learner
    if dataset_repo_id and sync_rounds:
        store.sync(loop)
    return store.push_final(learner, model_repo_id)


# ---------------------------------------------------------------------- learner and CLI glue
def ensure_round_stores(
    callbacks: Iterable[Any],
    *,
    repo_id: str | None = None,
    run_branch: str = DEFAULT_RUN_BRANCH,
    private: bool = True,
    on_error: str = "warn",
) -> list[Any]:
    """``callbacks`` plus the :class:`RoundStore` every learner run gets.

    With ``repo_id``, a store pushing to it (unless one is already there; Hub failures warn
    and the missing rounds are pushed by the next round or ``energizer-hf push``); otherwise
    a local-only store, unless the callbacks already hold a :class:`RoundStore`. Either way
    every round is kept under ``<run_dir>/revisions``. The token comes from ``HF_TOKEN`` or
    the stored login, never from a configuration.
    """
    out = list(callbacks)
    stores = [c for c in out if isinstance(c, RoundStore)]
    if repo_id and not any(s.repo_id == repo_id for s in stores):
        out.append(RoundStore(repo_id, run_branch=run_branch, private=private, on_error=on_error))
    elif not stores:
        out.append(RoundStore(run_branch=run_branch))
    return out


def _has_records(run_dir: str | os.PathLike) -> bool:
    from energizer_hf.utils import read_jsonl

    return bool(read_jsonl(Path(run_dir) / "rounds.jsonl"))


def is_run_complete(run_dir: str | os.PathLike) -> bool:
    """Whether the run in ``run_dir`` has a last record with a stopping reason."""
    from energizer_hf.utils import read_jsonl

    records = read_jsonl(Path(run_dir) / "rounds.jsonl")
    return bool(records and records[-1].get("stop_reason"))


def restore_from_revision(
    pool: Any,
    source: str | os.PathLike,
    revision: int | str | None = None,
    *,
    run_dir: str | os.PathLike,
    run_branch: str = DEFAULT_RUN_BRANCH,
    token: str | None = None,
) -> int | None:
    """Label ``pool`` as it was after a stored round, to start a new run from there.

    ``source``: a run directory, its ``revisions/``, a round directory, or a Hub dataset repo
    id; ``revision``: a round number, ``round-NNN``, a branch or a commit (default: the
    latest round; on the Hub the head of ``run_branch``). Nothing happens (``None``) when
    ``run_dir`` already has records: the run then resumes from its own state. When
    ``run_dir`` has a label state but no record yet (a resumed run stopped in its first
    round), that state is loaded and rolled back to the revision's round first. Returns the
    revision's last round; pass ``start_from_labels=True`` to the loop so that it goes on
    from there.
    """
    if _has_records(run_dir):
        return None
    if isinstance(revision, str) and revision.strip().isdigit():
        revision = int(revision)
    ds = load_round(source, revision, token=token, run_branch=run_branch)
    rounds = np.asarray(ds["round"][:], dtype=np.int64) if "round" in ds.column_names else None
    if rounds is None or rounds.size == 0:
        raise DatasetMismatchError(
            f"The revision {revision!r} of '{source}' has no labelled rows to resume from."
        )
    last = int(rounds.max())
    state_dir = Path(run_dir) / "pool"
    if (state_dir / "label_state.npy").exists():
        pool.attach(state_dir)
        pool.rollback(after_round=last)
    rebuild_pool_state(pool, ds)
    log.info("Starting from %s of '%s' (%d labelled rows)", round_tag(last), source, len(ds))
    return last


def save_final_model(run_dir: str | os.PathLike, model: Any, tokenizer: Any = None) -> Path:
    """Save the trained model (and tokenizer) under ``<run_dir>/final_model`` (replaced whole)."""
    run_dir = Path(run_dir)
    final = run_dir / FINAL_MODEL_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{FINAL_MODEL_DIR}.", dir=run_dir))
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(str(tmp))
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(str(tmp))
        if final.exists():
            old = final.with_name(f".{FINAL_MODEL_DIR}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


class _RunView:
    """A run read back from its directory: what the cards and pushes need, without the data."""

    def __init__(self, run_dir: str | os.PathLike):
        from types import SimpleNamespace

        from energizer_hf.utils import read_jsonl

        self.run_dir = Path(run_dir)
        run_file = self.run_dir / "run.json"
        if not run_file.is_file():
            raise EnergizerError(
                f"'{run_dir}' is not a run directory (it has no run.json): give the run_dir of "
                "an `energizer-hf run` or ActiveLearner run."
            )
        saved = json.loads(run_file.read_text(encoding="utf-8")).get("config") or {}
        self.records = read_jsonl(self.run_dir / "rounds.jsonl")
        if not self.records:
            raise EnergizerError(f"The run in '{run_dir}' has no recorded round yet.")
        self.settings = SimpleNamespace(**(saved.get("settings") or {}))
        self.config = dict(saved.get("run") or {})
        self.strategy = SimpleNamespace(name=saved.get("strategy") or "unknown")
        self.pool = SimpleNamespace(fingerprint=saved.get("pool_fingerprint"), dataset=None)
        self.oracle = None
        self.label_names = list(self.config.get("label_names") or [])
        last = self.run_dir / REVISIONS_DIR / round_tag(int(self.records[-1]["round"]))
        if (last / CARD_FILE).is_file():
            meta = _front_matter((last / CARD_FILE).read_text(encoding="utf-8")).get(META_KEY)
            if isinstance(meta, dict) and meta.get("label_names"):
                self.label_names = list(meta["label_names"])


def push_run(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    model_repo_id: str | None = None,
    private: bool = True,
    run_branch: str = DEFAULT_RUN_BRANCH,
    token: str | None = None,
    **store_kwargs: Any,
) -> dict[str, Any]:
    """Push a run directory: the round revisions missing on the Hub (one commit + tag each on
    ``run_branch``), the last round's labelled set with its card to ``main``, and, with
    ``model_repo_id``, the final model saved under ``<run_dir>/final_model`` with its card.

    Returns a summary (pushed rounds, commits, URLs). Idempotent: pushing again adds nothing.

    Raises:
        EnergizerError: not a run directory, no final model for ``model_repo_id``, ...
        RoundNotFoundError: the last recorded round has no local revision.
        HubSyncError: a Hub call failed (after retries where they help).
    """
    from huggingface_hub import constants

    validate_repo_id(repo_id)
    if model_repo_id is not None:
        validate_repo_id(model_repo_id, "model_repo_id")
    view = _RunView(run_dir)
    run_dir = view.run_dir
    model_dir = run_dir / FINAL_MODEL_DIR
    if model_repo_id is not None and not (model_dir / "config.json").is_file():
        raise EnergizerError(
            f"The run directory '{run_dir}' holds no trained model ('{model_dir}' is missing): "
            "it is saved when a run finishes (energizer-hf run / ActiveLearner.run()). Finish the "
            "run, push without --model-repo-id, or push a model object from Python with "
            "RoundStore.push_final(learner, model_repo_id)."
        )
    store = RoundStore(repo_id, run_branch=run_branch, private=private, token=token, **store_kwargs)
    recorded = [int(r["round"]) for r in view.records]
    local = store.local_rounds(run_dir)
    last = recorded[-1]
    if last not in local:
        raise RoundNotFoundError(
            f"The last recorded round ({round_tag(last)}) has no local revision under "
            f"'{store.revisions_dir(run_dir)}' (it has: {_fmt_rounds(local)}); runs made before "
            "revisions were kept cannot be pushed this way."
        )
    missing = sorted(set(recorded) - set(local))
    if missing:
        log.warning("No local revision of %s: not pushed.", _fmt_rounds(missing))
    pushed = store.sync(run_dir)
    summary: dict[str, Any] = {
        "repo_id": repo_id,
        "run_branch": run_branch,
        "pushed_rounds": sorted(pushed),
        "missing_rounds": missing,
        "last_round": last,
    }
    if model_repo_id is not None:
        result = store.push_final(view, model_repo_id, model_dir=model_dir, private=private)
        summary.update(
            dataset_commit=result.dataset_commit,
            dataset_url=result.dataset_url,
            model_repo_id=model_repo_id,
            model_commit=result.model_commit,
            model_url=result.model_url,
        )
    else:
        commit = store.push_labelled_set(run_dir, last, private=private)
        summary.update(
            dataset_commit=commit,
            dataset_url=f"{constants.ENDPOINT}/datasets/{repo_id}/tree/{commit}",
        )
    return summary
