"""Dataset and model cards of a run, from the templates shipped inside the package.

A card is Hub metadata (YAML, built with ``huggingface_hub.DatasetCardData`` /
``huggingface_hub.ModelCardData``, so the Hub reads it as it reads its own) followed by a Markdown
body rendered from a Jinja2 template: ``energizer_hf/revisions/templates/dataset_card.md.j2``
and ``model_card.md.j2`` (package data; ``templates/README.md`` lists their variables).
``templates_dir=`` points at a folder with your own templates of the same names (a missing
one falls back to the packaged one). Everything a card says comes from a
:class:`~energizer_hf.run.RunInfo`.

>>> size_category(1500)
'1K<n<10K'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import EnergizerError
from energizer_hf.metrics import is_per_class_key, per_class_table
from energizer_hf.revisions.rounds import jsonable
from energizer_hf.revisions.sources import task_metadata
from energizer_hf.run import META_KEY, RunInfo, front_matter, round_tag

__all__ = [
    "card_context",
    "curve",
    "dataset_card",
    "dataset_info",
    "hub_data_files",
    "front_matter",
    "metric_names",
    "model_card",
    "model_card_context",
    "render_dataset_card",
    "render_model_card",
    "size_category",
    "with_configs",
]

TEMPLATES = ("dataset_card.md.j2", "model_card.md.j2")

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


def _fmt_num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _maybe_float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return round(float(value), 6)
    return None


def metric_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The test metrics of the records, accuracy and macro F1 first; per-class metrics
    (``test/f1/<class>``) are left to :func:`per_class_rows`."""
    names: list[str] = []
    for rec in records:
        for key, value in rec.items():
            if (
                key.startswith("test/") and isinstance(value, (int, float)) and key not in names
                and not is_per_class_key(key)
            ):
                names.append(key)
    preferred = ["test/accuracy", "test/f1_macro"]
    return [n for n in preferred if n in names] + sorted(n for n in names if n not in preferred)


def curve(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """The learning curve: one row per record (formatted ``metrics`` and raw ``values``)."""
    return [
        {
            "round": rec.get("round"),
            "num_labelled": rec.get("num_labelled"),
            "metrics": [_fmt_num(rec.get(m)) for m in names],
            "values": {m: rec.get(m) for m in names},
        }
        for rec in records
    ]


def per_class_rows(
    record: Mapping[str, Any], label_names: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """The per-class test metrics of one record as one compact table: ``(header, rows)``,
    a row per class in label order, a column per metric."""
    header, rows = per_class_table(record, label_names)
    return header, rows


def dataset_info(ds: Any) -> dict[str, Any] | None:
    """The ``dataset_info`` block of a round dataset's card: its features (in the Hub's
    YAML form) and its one split with ``num_examples``; ``None`` for an object without
    ``datasets`` features."""
    features = getattr(ds, "features", None)
    to_yaml = getattr(features, "_to_yaml_list", None)
    if not callable(to_yaml):
        return None
    info: dict[str, Any] = {"features": to_yaml(), "splits": [{"name": "train", "num_examples": len(ds)}]}
    size = getattr(ds, "data", None)
    nbytes = getattr(size, "nbytes", None)
    if isinstance(nbytes, int):
        info["splits"][0]["num_bytes"] = nbytes
    return info


# The layout of a round on the Hub (HubRevisions commits a Parquet file there); a local
# revision is a save_to_disk folder, which datasets.load_from_disk reads.
def hub_data_files() -> list[dict[str, Any]]:
    """The ``configs`` of a round's card on the Hub (``data/train-*``)."""
    return [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]


def with_configs(card: str, configs: list[dict[str, Any]] | None) -> str:
    """``card`` with its metadata's ``configs`` replaced (``None``: removed)."""
    from huggingface_hub import DatasetCard

    parsed = DatasetCard(card)
    if configs is None:
        parsed.data.pop("configs", None)
    else:
        parsed.data.configs = configs
    return str(parsed)


# ---------------------------------------------------------------------- templates
def _template(name: str, templates_dir: str | Path | None) -> str:
    if templates_dir is not None and (Path(templates_dir) / name).is_file():
        return (Path(templates_dir) / name).read_text(encoding="utf-8")
    return resources.files("energizer_hf.revisions").joinpath("templates", name).read_text(encoding="utf-8")


def _yaml_scalar(value: Any) -> str:
    """A YAML-safe scalar (JSON is valid YAML)."""
    return json.dumps(jsonable(value), ensure_ascii=False)


def _render_body(name: str, context: Mapping[str, Any], templates_dir: str | Path | None) -> str:
    try:
        import jinja2
    except ImportError as err:  # pragma: no cover - jinja2 ships with most HF installs
        raise EnergizerError("Rendering cards needs jinja2: pip install jinja2.") from err
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["y"] = _yaml_scalar
    env.filters["num"] = _fmt_num
    return env.from_string(_template(name, templates_dir)).render(**context)


def _card(metadata: Any, body: str) -> str:
    # a template that writes its own metadata block (the format before 0.2) is used as is
    if body.lstrip().startswith("---"):
        return body
    return f"---\n{metadata.to_yaml()}\n---\n\n{body}"


def render_dataset_card(
    context: Mapping[str, Any],
    templates_dir: str | Path | None = None,
    configs: list[dict[str, Any]] | None = None,
) -> str:
    """A round's dataset card: metadata from ``context`` (see :func:`card_context`) as
    :class:`huggingface_hub.DatasetCardData`, body from ``dataset_card.md.j2``.

    ``configs``: the card's ``configs`` (what ``datasets.load_dataset`` reads); ``None``
    (a local revision, a ``save_to_disk`` folder read by ``datasets.load_from_disk``):
    none. :class:`~energizer_hf.revisions.hub.HubRevisions` gives :func:`hub_data_files`.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    extra: dict[str, Any] = {META_KEY: jsonable(dict(context["meta"]))}
    if context.get("dataset_info"):
        extra["dataset_info"] = jsonable(context["dataset_info"])
    data = DatasetCardData(
        license=context["license"],
        language=context.get("language") or None,
        pretty_name=context["pretty_name"],
        task_categories=list(context.get("task_categories") or ["text-classification"]),
        task_ids=list(context.get("task_ids") or []) or None,
        tags=["active-learning", "energizer_hf"],
        size_categories=[context["size_category"]],
        source_datasets=list(context.get("source_datasets") or []) or None,
        configs=configs,
        **extra,
    )
    return str(DatasetCard(_card(data, _render_body("dataset_card.md.j2", context, templates_dir))))


def render_model_card(context: Mapping[str, Any], templates_dir: str | Path | None = None) -> str:
    """The final model's card: metadata (with a ``model-index`` of the final test metrics
    on the dataset and split they were measured on, ``context["eval"]``; none when that is
    unknown) as :class:`huggingface_hub.ModelCardData`, body from ``model_card.md.j2``."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = []
    evaluated = context.get("eval") or {}
    task = task_metadata(context.get("task") or "text_classification")
    if evaluated.get("type") and evaluated.get("name"):
        common = {
            "task_type": task["pipeline_tag"],
            "task_name": task["task_name"],
            "dataset_type": evaluated["type"],
            "dataset_name": evaluated["name"],
            "dataset_config": evaluated.get("config"),
            "dataset_split": evaluated.get("split"),
            "dataset_revision": evaluated.get("revision"),
        }
        if context.get("accuracy") is not None:
            results.append(
                EvalResult(metric_type="accuracy", metric_value=context["accuracy"], metric_name="Accuracy", **common)
            )
        if context.get("f1") is not None:
            results.append(
                EvalResult(
                    metric_type="f1", metric_value=context["f1"], metric_name="F1 (macro)",
                    metric_args={"average": "macro"}, **common,
                )
            )
    repo = context.get("dataset_repo_id")
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=task["pipeline_tag"],
        license=context["license"],
        language=context.get("language") or None,
        tags=["active-learning", "energizer_hf"],
        base_model=context.get("base_model") or None,
        datasets=[repo] if repo else None,
        model_name=context["model_name"],
        eval_results=results or None,
    )
    return str(ModelCard(_card(data, _render_body("model_card.md.j2", context, templates_dir))))


# ---------------------------------------------------------------------- contexts
def card_context(
    run: RunInfo,
    round: int,
    ds: Any,
    meta: Mapping[str, Any],
    *,
    license: str | None = None,
    pretty_name: str | None = None,
    source_dataset: str | None = None,
    repo_id: str | None = None,
    run_branch: str = "energizer-run",
    language: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The variables of a round's dataset card (``templates/README.md`` lists them).

    ``license`` / ``language`` / ``source_dataset``: override what the run says
    (``RunInfo.card``); the license is ``"other"`` with a note when nobody says.
    """
    import yaml

    records = run.up_to(round).records
    names = metric_names(records)
    settings = dict(run.settings)
    label_names = list(run.label_names)
    dist_names = list(label_names)
    for rec in records:
        for key in rec.get("label_distribution") or {}:
            if key not in dist_names:
                dist_names.append(key)
    this = records[-1] if records else {}
    card = dict(run.card)
    task_name = meta.get("task") or card.get("task") or run.config.get("task") or "text_classification"
    task = task_metadata(task_name)
    header, rows = per_class_rows(this, label_names)
    return {
        "license": license or card.get("license") or "other",
        "license_note": None if license else card.get("license_note", _UNKNOWN_LICENSE if not card.get("license") else None),
        "language": list(language or card.get("language") or []),
        "task_categories": task["task_categories"],
        "task_ids": list(meta.get("task_ids") or card.get("task_ids") or task["task_ids"]),
        "source_datasets": list(card.get("source_datasets") or []),
        "dataset_info": dataset_info(ds),
        "per_class_header": header,
        "per_class": rows,
        "pretty_name": pretty_name or f"Active-learning labels, {round_tag(round)}",
        "size_category": size_category(len(ds)),
        "meta_yaml": yaml.safe_dump(jsonable(dict(meta)), sort_keys=False, allow_unicode=True).rstrip("\n"),
        "meta": dict(meta),
        "round": round,
        "tag": round_tag(round),
        "run_branch": run_branch,
        "repo_id": repo_id,
        "num_rows": len(ds),
        "num_new": int(np.count_nonzero(np.asarray(ds["round"][:]) == round)) if len(ds) else 0,
        "columns": list(ds.column_names),
        "source_dataset": source_dataset or run.source_dataset,
        "pool_fingerprint": meta.get("pool_fingerprint"),
        "pool_rows": meta.get("pool_rows"),
        "strategy": run.strategy,
        "strategy_class": run.strategy_class,
        "strategy_params": dict(run.strategy_params),
        "model": run.config.get("model") or "unknown",
        "seed": settings.get("seed"),
        "query_size": settings.get("query_size"),
        "initial_size": settings.get("initial_size"),
        "max_rounds": settings.get("max_rounds"),
        "total_budget": settings.get("total_budget"),
        "settings": settings,
        "config": {k: v for k, v in sorted(run.config.items()) if isinstance(v, (bool, int, float, str))},
        "label_names": label_names,
        "task": task_name,
        "entity_types": list(meta.get("entity_types") or []),
        "label_source": meta.get("label_source"),
        "distribution_names": dist_names,
        "distribution": [
            {
                "round": rec.get("round"),
                "num_labelled": rec.get("num_labelled"),
                "counts": [int((rec.get("label_distribution") or {}).get(n, 0)) for n in dist_names],
            }
            for rec in records
        ],
        "metric_names": names,
        "curve": curve(records, names),
        "stop_reason": this.get("stop_reason"),
    }


def model_card_context(
    run: RunInfo,
    model_repo_id: str | None = None,
    *,
    license: str | None = None,
    base_model: str | None = None,
    dataset_repo_id: str | None = None,
    dataset_commit: str | None = None,
    dataset_url: str | None = None,
    source_dataset: str | None = None,
    language: Sequence[str] | None = None,
    model_path: str | None = None,
) -> dict[str, Any]:
    """The variables of the final model's card (``templates/README.md`` lists them).

    ``model_repo_id``: the model's Hub repository (``None``: the card of the run's
    ``final_model/`` folder, loaded from ``model_path``). ``license`` / ``base_model`` /
    ``language`` / ``source_dataset``: override what the run says (``RunInfo.card``).
    The ``model-index`` names the dataset and split the test metrics were measured on
    (``RunInfo.card["eval"]``), never the labelled set the model was trained on.
    """
    records = run.records
    if not records:
        raise EnergizerError("The run has no recorded round yet: run it before pushing its model.")
    last = int(records[-1]["round"])
    names = metric_names(records)
    final = records[-1]
    settings = dict(run.settings)
    card = dict(run.card)
    header, rows = per_class_rows(final, list(run.label_names))
    evaluated = dict(card.get("eval") or {})
    load_from = model_repo_id or model_path or str(run.files.final_model)
    return {
        "license": license or card.get("license") or "other",
        "license_note": None if license else card.get("license_note", _UNKNOWN_LICENSE if not card.get("license") else None),
        "language": list(language or card.get("language") or []),
        "model_name": (model_repo_id or run.files.root.name).split("/")[-1],
        "repo_id": load_from,
        "base_model": base_model or card.get("base_model"),
        "eval": evaluated,
        "per_class_header": header,
        "per_class": rows,
        "dataset_repo_id": dataset_repo_id,
        "dataset_name": f"{dataset_repo_id or 'labelled set'} ({round_tag(last)})",
        "dataset_type": dataset_repo_id or "energizer_hf",
        "dataset_revision": dataset_commit,
        "dataset_url": dataset_url,
        "task": card.get("task") or run.config.get("task") or "text_classification",
        "accuracy": _maybe_float(final.get("test/accuracy")),
        "f1": _maybe_float(final.get("test/f1_macro")),
        "metric_names": names,
        "curve": curve(records, names),
        "strategy": final.get("strategy") or run.strategy,
        "num_rounds": len(records),
        "num_labelled": final.get("num_labelled"),
        "label_names": list(run.label_names),
        "settings": settings,
        "seed": settings.get("seed"),
        "query_size": settings.get("query_size"),
        "stop_reason": final.get("stop_reason"),
        "pool_fingerprint": run.pool_fingerprint,
        "source_dataset": source_dataset or run.source_dataset,
    }


_UNKNOWN_LICENSE = (
    "The license of the source data is not known to energizer_hf: check it before sharing, and give "
    "card_license (e.g. apache-2.0, cc-by-4.0)."
)


def dataset_card(
    run: RunInfo,
    round: int,
    ds: Any,
    meta: Mapping[str, Any],
    *,
    templates_dir: str | Path | None = None,
    configs: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> str:
    """A round's rendered dataset card (``kwargs``: see :func:`card_context`;
    ``configs``: see :func:`render_dataset_card`)."""
    return render_dataset_card(card_context(run, round, ds, meta, **kwargs), templates_dir, configs)


def model_card(
    run: RunInfo, model_repo_id: str | None = None, *, templates_dir: str | Path | None = None, **kwargs: Any
) -> str:
    """The final model's rendered card (``kwargs``: see :func:`model_card_context`)."""
    return render_model_card(model_card_context(run, model_repo_id, **kwargs), templates_dir)
