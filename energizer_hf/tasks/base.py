"""What differs by task, and how a run's task is named or inferred from its data.

Three tasks run through the same engine (pool ids, label state, loop, scorer, stores):

=========================  ==========================================  =====================
task                       labels                                       model head
=========================  ==========================================  =====================
``text_classification``    one class per row (``ClassLabel``, ints,     softmax
                           strings)
``multi_label``            a set of labels per row (lists of names or   a sigmoid per label
                           ids, ``;``-joined names, multi-hot)
``token_classification``   one BIO tag per word (``tokens`` +           a softmax per token
                           ``ner_tags`` as ``Sequence(ClassLabel)``,
                           or CoNLL files)
=========================  ==========================================  =====================

Each task is one module of this package (a :class:`Task` subclass) holding its label
store, model, collation, metrics and card metadata; :func:`infer_task` reads the task off
a dataset's features when that is unambiguous.
"""

from __future__ import annotations

from typing import Any, ClassVar

from energizer_hf.errors import UnknownTaskError

__all__ = ["TASK_NAMES", "Task", "get_task", "infer_task", "register_task"]

TASK_NAMES = ("text_classification", "multi_label", "token_classification")
_TASKS: dict[str, type[Task]] = {}
_ALIASES = {
    "classification": "text_classification",
    "single_label": "text_classification",
    "multilabel": "multi_label",
    "multi_label_classification": "multi_label",
    "ner": "token_classification",
    "token": "token_classification",
    "sequence_labelling": "token_classification",
}


class Task:
    """A task's fixed facts; its module adds the label store, the model and the collator.

    Class attributes:
        name: one of :data:`TASK_NAMES`.
        task_categories / task_ids: the Hub card metadata.
        label_studio_config: the key of the task's Label Studio config.
        monitor: the validation metric that selects the best weights (maximised).
        budget_units: the units ``budget_unit`` may take for this task.
        test_metric: the headline test metric of the round records.
    """

    name: ClassVar[str] = ""
    task_categories: ClassVar[tuple[str, ...]] = ()
    task_ids: ClassVar[tuple[str, ...]] = ()
    label_studio_config: ClassVar[str] = ""
    monitor: ClassVar[str] = "val/f1_macro"
    budget_units: ClassVar[tuple[str, ...]] = ("examples",)
    test_metric: ClassVar[str] = "test/accuracy"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def register_task(cls: type[Task]) -> type[Task]:
    _TASKS[cls.name] = cls
    return cls


def _normalise(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(key, key)


def get_task(name: str) -> type[Task]:
    """The task class named ``name`` (aliases: ``ner``, ``multilabel``, ...).

    Raises:
        UnknownTaskError: listing the known tasks.
    """
    import energizer_hf.tasks  # noqa: F401 - registers the three tasks

    key = _normalise(name)
    if key not in _TASKS:
        raise UnknownTaskError(
            f"Unknown task {name!r}: use one of {', '.join(TASK_NAMES)} (aliases: ner, multilabel)."
        )
    return _TASKS[key]


def _is_class_sequence(feature: Any) -> bool:
    inner = getattr(feature, "feature", None)
    return inner is not None and type(inner).__name__ == "ClassLabel"


def _is_list(feature: Any) -> bool:
    return type(feature).__name__ in ("Sequence", "List", "LargeList") or isinstance(feature, list)


def _is_string_list(feature: Any) -> bool:
    inner = getattr(feature, "feature", None)
    if isinstance(feature, list) and feature:
        inner = feature[0]
    return _is_list(feature) and getattr(inner, "dtype", None) in ("string", "large_string")


def infer_task(
    features: Any,
    *,
    text_column: str = "text",
    label_column: str = "label",
    tokens_column: str = "tokens",
) -> str:
    """The task a dataset's features say, when they say it unambiguously.

    * a list-of-words column (``tokens``) with a ``Sequence(ClassLabel)`` or list-of-int
      tags column (``ner_tags`` or ``label_column``) → ``token_classification``;
    * a text column with a ``Sequence(ClassLabel)`` or list label column →
      ``multi_label``;
    * a text column with a ``ClassLabel``, integer or string label → ``text_classification``
      (strings joined by a separator stay single-label: set ``task: multi_label``).

    Args:
        features: a ``datasets.Features`` mapping (``dataset.features``).
        text_column / label_column / tokens_column: the run's column names.

    Returns:
        A name of :data:`TASK_NAMES`.

    Raises:
        UnknownTaskError: nothing fits (the message says how to set ``task``).

    >>> import datasets
    >>> f = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
    ...     "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-x", "I-x"]))})
    >>> infer_task(f)
    'token_classification'
    """
    features = dict(features or {})
    tags = next((c for c in (label_column, "ner_tags", "tags") if c in features), None)
    has_tokens = tokens_column in features and _is_string_list(features[tokens_column])
    if has_tokens and tags is not None and _is_list(features[tags]) and tags != tokens_column:
        return "token_classification"
    label = features.get(label_column)
    if text_column in features and label is not None:
        if _is_class_sequence(label) or _is_list(label):
            return "multi_label"
        return "text_classification"
    if text_column in features and label is None:
        return "text_classification"  # labels come from an oracle; classes from label_names
    raise UnknownTaskError(
        f"Cannot tell the task from the columns {sorted(features)}: set task to one of "
        f"{', '.join(TASK_NAMES)} (and text_column / label_column / tokens_column)."
    )
