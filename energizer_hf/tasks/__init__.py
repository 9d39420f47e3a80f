"""Tasks: what differs between text classification, multi-label classification and token
classification (NER). One module per task; see :mod:`energizer_hf.tasks.base`."""

from energizer_hf.tasks.base import TASK_NAMES, Task, get_task, infer_task, register_task
from energizer_hf.tasks.multi_label import (
    HFMultiLabelClassifier,
    MultiHotCollator,
    MultiLabelStore,
    MultiLabelTask,
    as_multi_hot,
)
from energizer_hf.tasks.text_classification import TextClassificationTask
from energizer_hf.tasks.token_classification import (
    HFTokenClassifier,
    RaggedTags,
    TagStore,
    TokenClassificationTask,
    TokenLabelCollator,
    entity_types,
    read_tags,
)

__all__ = [
    "TASK_NAMES",
    "HFMultiLabelClassifier",
    "HFTokenClassifier",
    "MultiHotCollator",
    "MultiLabelStore",
    "MultiLabelTask",
    "RaggedTags",
    "TagStore",
    "Task",
    "TextClassificationTask",
    "TokenClassificationTask",
    "TokenLabelCollator",
    "as_multi_hot",
    "entity_types",
    "get_task",
    "infer_task",
    "read_tags",
    "register_task",
]
