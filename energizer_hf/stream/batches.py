"""One mini-batch of stream texts as a :class:`~energizer_hf.scoring.BatchSource`.

The stream scores each arriving mini-batch with the same :class:`~energizer_hf.scoring.PoolScorer`
as the pool (length-sorted batches, dynamic padding, ``inference_mode``, GPU autocast): this
adapter tokenizes the mini-batch once and hands the scorer local ids ``0..n-1``.

>>> from transformers import BertTokenizerFast  # doctest: +SKIP
>>> rows = TokenizedRows(["a b c", "a"], tokenizer, collator, max_length=16)  # doctest: +SKIP
>>> [b.tolist() for b in rows.plan(np.arange(2), batch_size=8)]  # doctest: +SKIP
[[1, 0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from energizer_hf.errors import StreamInputError
from energizer_hf.scoring import plan_by_length

__all__ = ["TokenizedRows"]


class TokenizedRows:
    """The texts of one mini-batch, tokenized, addressed by local ids ``0..n-1``.

    Args:
        texts: the mini-batch's texts, in arrival order.
        tokenizer: a ``transformers`` tokenizer.
        collator: pads a list of feature dicts (``DataCollatorWithPadding``).
        max_length: truncate to this many tokens.
        text_pairs: second texts of pairs (or ``None``).

    Raises:
        StreamInputError: a text that is not a string.
    """

    def __init__(
        self,
        texts: Sequence[Any],
        tokenizer: Any,
        collator: Callable[[list[dict[str, Any]]], Any],
        max_length: int,
        text_pairs: Sequence[Any] | None = None,
    ) -> None:
        bad = [j for j, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise StreamInputError(
                f"Stream texts must be strings; item {bad[0]} of the mini-batch is "
                f"{type(texts[bad[0]]).__name__} {texts[bad[0]]!r}: drop or fill such rows."
            )
        args = (list(texts), list(text_pairs)) if text_pairs is not None else (list(texts),)
        enc = tokenizer(*args, truncation=True, max_length=max_length, return_attention_mask=False)
        self.input_ids = enc["input_ids"]
        self.token_type_ids = enc.get("token_type_ids") if text_pairs is not None else None
        self.lengths = np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))
        self.collator = collator

    def __len__(self) -> int:
        return int(self.lengths.size)

    def plan(self, ids: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
        return plan_by_length(ids, self.lengths, batch_size, max_tokens)

    def collate(self, ids: np.ndarray) -> Any:
        rows = []
        for i in np.asarray(ids).tolist():
            row = {"input_ids": self.input_ids[i]}
            if self.token_type_ids is not None:
                row["token_type_ids"] = self.token_type_ids[i]
            rows.append(row)
        return self.collator(rows)
