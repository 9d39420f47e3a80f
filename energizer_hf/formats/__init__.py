"""Readers for task data formats: CoNLL token-tag files and multi-label columns.

- :mod:`~energizer_hf.formats.conll`: CoNLL files → ``datasets`` with ``tokens`` and
  ``ner_tags`` (``Sequence(ClassLabel)``), one tag set shared by every split.
- :mod:`~energizer_hf.formats.multilabel`: names joined by a separator, lists of names or
  ids, multi-hot rows → a multi-hot ``uint8`` matrix and the label names.
"""

from .conll import ConllSentences, check_token_columns, load_conll, read_conll, tag_names
from .multilabel import multilabel_column, read_label_names, to_multi_hot

__all__ = [
    "ConllSentences",
    "check_token_columns",
    "load_conll",
    "multilabel_column",
    "read_conll",
    "read_label_names",
    "tag_names",
    "to_multi_hot",
]
