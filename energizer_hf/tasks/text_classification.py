"""Single-label text classification: one class per row, a softmax head.

This is the task every run had before tasks existed, unchanged: label encoding stays in
:mod:`energizer_hf.learner` (``encode_labels``, ``encode_with_names``), the model is
:class:`~energizer_hf.model.HFSequenceClassifier`, labels live in the pool's
``label_state.npy`` (no extra store), and the metrics are accuracy and macro-F1.
"""

from __future__ import annotations

from energizer_hf.tasks.base import Task, register_task

__all__ = ["TextClassificationTask"]


@register_task
class TextClassificationTask(Task):
    """One class per text (or text pair)."""

    name = "text_classification"
    task_categories = ("text-classification",)
    task_ids = ("multi-class-classification",)
    label_studio_config = "single_label"
    monitor = "val/f1_macro"
    test_metric = "test/accuracy"
