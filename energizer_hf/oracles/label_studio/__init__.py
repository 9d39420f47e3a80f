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

An annotation that uses a name the project does not know (an entity type, class or label)
is refused with a :class:`LabelStudioUnknownLabelError` in the oracle's report
(:meth:`LabelStudioOracle.refused`, ``events.jsonl``, the waiting round's message) and its
task stays pending; conflicting annotations are resolved by the ``conflict`` rule, the
same for classes, label sets and spans (compared as word-level BIO tags).

The API token comes from the ``token`` argument or ``LABEL_STUDIO_API_KEY``; it is never
written to a file, a log line, an error message or the ``repr``.
"""

from energizer_hf.oracles.base import AWAITING_ANNOTATIONS, AwaitingAnnotations
from energizer_hf.oracles.label_studio.annotations import (
    LABEL_CONFIGS,
    AnnotationChangedWarning,
    AnnotationRefusedWarning,
    LabelStudioAuthError,
    LabelStudioConnectionError,
    LabelStudioError,
    LabelStudioTimeoutError,
    LabelStudioUnknownLabelError,
    make_label_config,
)
from energizer_hf.oracles.label_studio.oracle import LabelStudioOracle, learner_predictions
from energizer_hf.oracles.label_studio.stream import LabelStudioStreamOracle

__all__ = [
    "AWAITING_ANNOTATIONS",
    "LABEL_CONFIGS",
    "AnnotationChangedWarning",
    "AnnotationRefusedWarning",
    "AwaitingAnnotations",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioOracle",
    "LabelStudioStreamOracle",
    "LabelStudioTimeoutError",
    "LabelStudioUnknownLabelError",
    "learner_predictions",
    "make_label_config",
]
