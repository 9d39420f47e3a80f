"""Label Studio's side of the oracle, without a server: errors, labelling configs, annotations.

What an annotation means is decided here, as plain functions on annotation dicts: which
choice it carries (:func:`parse_annotation`), when a task's annotations changed
(:func:`~energizer_hf.oracles.label_studio.annotations.fingerprint`), which names it uses
that the project does not know (:func:`unknown_names`), and which label several annotations
resolve to under a conflict rule (:func:`vote`).

>>> vote([1, 1, 2], "majority"), vote([1, 2], "majority"), vote([2, 1], "first")
(1, None, 2)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from energizer_hf.errors import EnergizerError, UnknownLabelError
from energizer_hf.oracles.base import AwaitingAnnotations

__all__ = [
    "LABEL_CONFIGS",
    "AnnotationChangedWarning",
    "AnnotationRefusedWarning",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioTimeoutError",
    "LabelStudioUnknownLabelError",
    "fingerprint",
    "make_label_config",
    "parse_annotation",
    "spans_to_tags",
    "tags_to_spans",
    "unknown_names",
    "vote",
    "word_offsets",
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


class AnnotationRefusedWarning(UserWarning):
    """An annotation was refused (:class:`LabelStudioUnknownLabelError`); its text is the error's."""


class LabelStudioUnknownLabelError(LabelStudioError, UnknownLabelError):
    """A submitted annotation names an entity type, class or label that is not the run's
    (or, single-label, gives no class at all). Also an
    :class:`energizer_hf.errors.UnknownLabelError`.

    The oracle does not raise it (a person's slip must not stop the run): the annotation
    is *refused*. It does not count as a vote, and its task stays ``pending``, never
    labelled, until the annotation is corrected or deleted in Label Studio. The error is
    the report: :meth:`LabelStudioOracle.refused` returns one per refused annotation, its
    message is warned once (:class:`AnnotationRefusedWarning`), appended to
    ``label_studio/events.jsonl`` (``event: refused``), kept in the task's entry of
    ``tasks.json`` (``refused``) and repeated in the message of the waiting round
    (:class:`AwaitingAnnotations`, :class:`LabelStudioTimeoutError`).

    Attributes: ``round``, ``pool_id``, ``task_id``, ``annotation_id``, ``unknown`` (the
    names it used that are not allowed; empty: it gave none), ``allowed`` (the project's
    names).
    """

    def __init__(
        self, message: str, *, round: int = -1, pool_id: int = -1, task_id: int = -1,
        annotation_id: int = -1, unknown: Sequence[str] = (), allowed: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.round, self.pool_id, self.task_id, self.annotation_id = round, pool_id, task_id, annotation_id
        self.unknown, self.allowed = list(unknown), list(allowed)

    @classmethod
    def of(
        cls, *, round: int, pool_id: int, task_id: int, annotation_id: int, unknown: Sequence[str],
        allowed: Sequence[str], task: str = "single_label",
    ) -> LabelStudioUnknownLabelError:
        """The error of one annotation, with the message people read.

        >>> str(LabelStudioUnknownLabelError.of(round=1, pool_id=4, task_id=12, annotation_id=56,
        ...     unknown=["MISC"], allowed=["LOC", "PER"], task="ner"))  # doctest: +NORMALIZE_WHITESPACE
        "LabelStudioUnknownLabelError: Label Studio task 12 (pool id 4, round 1): annotation 56 uses the
        unknown entity type 'MISC'; allowed: LOC, PER. The annotation is refused (not counted)
        and the task stays pending until the annotation is corrected or deleted in Label Studio."
        """
        kind = {"ner": "entity type", "multi_label": "label"}.get(task, "class")
        if unknown:
            what = f"uses the unknown {kind}{'s' if len(unknown) > 1 else ''} " + ", ".join(
                repr(str(n)) for n in unknown
            )
        else:
            what = f"gives no {kind}"
        message = (
            f"LabelStudioUnknownLabelError: Label Studio task {task_id} (pool id {pool_id}, round {round}): "
            f"annotation {annotation_id} {what}; allowed: {', '.join(map(str, allowed))}. The "
            "annotation is refused (not counted) and the task stays pending until the annotation "
            "is corrected or deleted in Label Studio."
        )
        return cls(message, round=round, pool_id=pool_id, task_id=task_id, annotation_id=annotation_id,
                   unknown=unknown, allowed=allowed)

    def record(self) -> dict[str, Any]:
        """The error as kept in ``tasks.json`` and ``events.jsonl``."""
        return {"error": type(self).__name__, "task_id": self.task_id, "annotation_id": self.annotation_id,
                "unknown": self.unknown, "allowed": self.allowed, "message": str(self)}


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


def entity_types_of(tag_names: Sequence[str]) -> list[str]:
    """Entity types of BIO tag names, in order of first appearance."""
    out: list[str] = []
    for n in tag_names:
        if n != "O" and len(n) > 2 and n[2:] not in out:
            out.append(n[2:])
    return out


def _ner(tag_names: Sequence[str]) -> str:
    """Spans (``<Labels>`` on ``<Text>``, word granularity) over the entity types of the tags."""
    from xml.sax.saxutils import quoteattr

    labels = "".join(f"<Label value={quoteattr(t)}/>" for t in entity_types_of(tag_names))
    return (
        f'<View><Labels name="{FROM_NAME}" toName="{TO_NAME}">{labels}</Labels>'
        f'<Text name="{TO_NAME}" value="$text" granularity="word"/></View>'
    )


# task type -> config builder: one class (choices), a label set (multiple choices), BIO
# tags over words (spans of entity types)
LABEL_CONFIGS: dict[str, Callable[[Sequence[str]], str]] = {
    "single_label": _single_label,
    "multi_label": _multi_label,
    "ner": _ner,
}
#: the run's task -> the oracle's task type
ORACLE_TASKS = {"text_classification": "single_label", "multi_label": "multi_label", "token_classification": "ner"}


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


def choice_result(label: str | Sequence[str]) -> list[dict[str, Any]]:
    labels = [label] if isinstance(label, str) else list(label)
    return [
        {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": labels}}
    ]


def word_offsets(words: Sequence[str]) -> tuple[str, list[int], list[int]]:
    """The text people see for a sentence of words (joined by single spaces) and each
    word's ``[start, end)`` character offsets in it.

    >>> word_offsets(["EU", "rejects", "it"])
    ('EU rejects it', [0, 3, 11], [2, 10, 13])
    """
    starts, ends, pos = [], [], 0
    for w in words:
        starts.append(pos)
        pos += len(w)
        ends.append(pos)
        pos += 1
    return " ".join(words), starts, ends


def spans_to_tags(
    spans: Sequence[tuple[int, int, str]], starts: Sequence[int], ends: Sequence[int], tag_ids: Mapping[str, int]
) -> tuple[int, ...] | None:
    """Word-level BIO tag ids from character spans ``(start, end, type)``: a word belongs to
    a span when they overlap; the span's first word gets ``B-type``, the others ``I-type``.
    ``None`` when a span's type is not a known entity type. Overlapping spans: the later
    span's words keep the earlier span's tags (first come, first served).

    >>> spans_to_tags([(3, 10, "ORG")], [0, 3, 11], [2, 10, 13], {"O": 0, "B-ORG": 1, "I-ORG": 2})
    (0, 1, 0)
    """
    tags = [tag_ids["O"]] * len(starts)
    taken = [False] * len(starts)
    for start, end, etype in sorted(spans):
        if f"B-{etype}" not in tag_ids:
            return None
        words = [i for i, (a, b) in enumerate(zip(starts, ends)) if a < end and start < b and not taken[i]]
        for j, i in enumerate(words):
            tags[i] = tag_ids[f"{'B' if j == 0 else 'I'}-{etype}"]
            taken[i] = True
    return tuple(tags)


def tags_to_spans(
    tags: Sequence[int], tag_names: Sequence[str], words: Sequence[str]
) -> list[dict[str, Any]]:
    """Label Studio span results (pre-annotations) from predicted word tags."""
    from energizer_hf.functional.sequence import entity_spans

    text, starts, ends = word_offsets(words)
    out = []
    for etype, a, b in entity_spans([list(tags)], tag_names)[0]:
        out.append({
            "from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
            "value": {"start": starts[a], "end": ends[b - 1], "text": text[starts[a]:ends[b - 1]], "labels": [etype]},
        })
    return out



# ---------------------------------------------------------------------- annotations
def parse_annotation(
    ann: Mapping[str, Any],
    label_ids: Mapping[str, int],
    task: str = "single_label",
    words: tuple[Sequence[int], Sequence[int]] | None = None,
) -> tuple[bool, Any, str | None]:
    """``(cancelled, label or None, raw answer)`` of one annotation dict.

    The label is a label id (``single_label``), a sorted tuple of label ids
    (``multi_label``; an unknown name makes it ``None``) or a tuple of word tag ids
    (``ner``: ``words`` are the words' start and end offsets; no span means every word is
    ``O``; a span of an unknown type makes it ``None``).
    """
    if ann.get("was_cancelled"):
        return True, None, None
    if task == "ner":
        spans = []
        for region in ann.get("result") or []:
            if region.get("from_name") == FROM_NAME and region.get("type") == "labels":
                v = region.get("value") or {}
                for etype in v.get("labels") or []:
                    spans.append((int(v["start"]), int(v["end"]), str(etype)))
        starts, ends = words if words is not None else ([], [])
        tags = spans_to_tags(spans, starts, ends, label_ids)
        return False, tags, ";".join(f"{a}-{b}:{t}" for a, b, t in sorted(spans))
    for region in ann.get("result") or []:
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = (region.get("value") or {}).get("choices") or []
            if task == "multi_label":
                ids = [label_ids.get(str(c)) for c in choices]
                return False, (None if None in ids else tuple(sorted(ids))), ";".join(sorted(map(str, choices)))
            if choices:
                return False, label_ids.get(str(choices[0])), str(choices[0])
    if task == "multi_label":  # submitted with no choice: the empty label set
        return False, (), ""
    return False, None, None


def unknown_names(ann: Mapping[str, Any], allowed: Sequence[str], task: str = "single_label") -> list[str]:
    """The names a submitted annotation uses that are not ``allowed`` (entity types for
    ``ner``, class / label names otherwise), in order of first use.

    >>> region = {"from_name": "label", "type": "labels", "value": {"start": 0, "end": 2, "labels": ["MISC"]}}
    >>> unknown_names({"result": [region]}, ["LOC", "PER"], "ner")
    ['MISC']
    """
    kind = "labels" if task == "ner" else "choices"
    known = {str(n) for n in allowed}
    out: list[str] = []
    for region in ann.get("result") or []:
        if region.get("from_name") == FROM_NAME and region.get("type") == kind:
            for name in (region.get("value") or {}).get(kind) or []:
                if str(name) not in known and str(name) not in out:
                    out.append(str(name))
    return out


def fingerprint(
    anns: Sequence[Mapping[str, Any]], label_ids: Mapping[str, int], task: str = "single_label", words: Any = None
) -> list[list[Any]]:
    """What identifies the state of a task's annotations (an edit changes it)."""
    return sorted(
        [int(a["id"]), str(a.get("updated_at")), bool(a.get("was_cancelled")),
         parse_annotation(a, label_ids, task, words)[2]]
        for a in anns
    )


def vote(votes: Sequence[Any], rule: str) -> Any:
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
