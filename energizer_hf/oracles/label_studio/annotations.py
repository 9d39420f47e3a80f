"""Label Studio's side of the oracle, without a server: errors, labelling configs, annotations.

What an annotation means is decided here, as plain functions on annotation dicts: which
choice it carries (:func:`parse_annotation`), when a task's annotations changed
(:func:`fingerprint`), and which label several annotations resolve to under a conflict
rule (:func:`vote`).

>>> vote([1, 1, 2], "majority"), vote([1, 2], "majority"), vote([2, 1], "first")
(1, None, 2)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from energizer_hf.errors import EnergizerError
from energizer_hf.oracles.base import AwaitingAnnotations

__all__ = [
    "LABEL_CONFIGS",
    "AnnotationChangedWarning",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioTimeoutError",
    "fingerprint",
    "make_label_config",
    "parse_annotation",
    "vote",
]

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


def choice_result(label: str) -> list[dict[str, Any]]:
    return [
        {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [label]}}
    ]



# ---------------------------------------------------------------------- annotations
def parse_annotation(ann: Mapping[str, Any], label_ids: Mapping[str, int]) -> tuple[bool, int | None, str | None]:
    """``(cancelled, label id or None, raw choice)`` of one annotation dict."""
    if ann.get("was_cancelled"):
        return True, None, None
    for region in ann.get("result") or []:
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = (region.get("value") or {}).get("choices") or []
            if choices:
                return False, label_ids.get(str(choices[0])), str(choices[0])
    return False, None, None


def fingerprint(anns: Sequence[Mapping[str, Any]], label_ids: Mapping[str, int]) -> list[list[Any]]:
    """What identifies the state of a task's annotations (an edit changes it)."""
    return sorted(
        [int(a["id"]), str(a.get("updated_at")), bool(a.get("was_cancelled")), parse_annotation(a, label_ids)[2]]
        for a in anns
    )


def vote(votes: Sequence[int], rule: str) -> int | None:
    """The label of several submitted annotations (in submission order) under ``rule``:
    ``"first"``, ``"majority"`` (a tie is unresolved) or ``"unanimous"``; ``None`` when
    the rule cannot resolve them."""
    counts = Counter(votes)
    if rule == "first":
        return votes[0]
    if rule == "majority":
        top = counts.most_common()
        return top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else None
    return votes[0] if len(counts) == 1 else None


def reason(err: BaseException) -> str:
    status = getattr(err, "status_code", None)
    return f"HTTP {status}" if status is not None else type(err).__name__


def as_dicts(anns: Any) -> list[dict[str, Any]]:
    out = []
    for a in anns or []:
        if isinstance(a, dict):
            out.append(a)
        elif hasattr(a, "model_dump"):
            out.append(a.model_dump(mode="json"))
        else:
            out.append(dict(a))
    return out


def detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("validation_errors", "detail", "message"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]
