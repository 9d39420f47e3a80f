"""One call to score a pool: :func:`score_pool`.

Probabilities (or logits, embeddings) of a ``transformers`` classifier over a
``datasets.Dataset``, or the pool's top-``k`` rows under a query strategy, without building
the pieces by hand: the dataset is tokenized once (:func:`~energizer_hf.data.tokenize_dataset`),
batched by length with dynamic padding, and run by a
:class:`~energizer_hf.scoring.PoolScorer` (``inference_mode``, GPU autocast, running
top-k, several processes under ``torchrun`` / ``accelerate launch`` with an
``exchange_dir``). No training batch size is involved.

Example::

    from energizer_hf import score_pool
    probs = score_pool("my-finetuned-model", pool, text_column="text")            # (N, C)
    ids, scores = score_pool(model, pool, output="topk", k=100, strategy="margin")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import EnergizerError

__all__ = ["OUTPUTS", "score_pool"]

# output= -> the PoolScorer output it reads
OUTPUTS = {"probabilities": "probs", "logits": "logits", "embeddings": "embeddings", "topk": None}


def _as_module(model: Any) -> Any:
    """A :class:`~energizer_hf.model.HFSequenceClassifier` around ``model`` (a Hub id or
    directory, a ``transformers`` classifier), or ``model`` itself when it is a
    ``LightningModule`` already."""
    import pytorch_lightning as pl

    from energizer_hf.model import HFSequenceClassifier

    if isinstance(model, pl.LightningModule):
        return model
    if isinstance(model, (str, os.PathLike)):
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(str(model))
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "num_labels"):
        raise EnergizerError(
            f"score_pool takes a transformers sequence classifier (an object, a Hub id or a directory) or a "
            f"LightningModule; got {type(model).__name__}."
        )
    return HFSequenceClassifier(model, num_labels=config.num_labels, id2label=dict(config.id2label))


def _activation(module: Any) -> str:
    """``"sigmoid"`` for a multi-label classifier (one probability per label), else
    ``"softmax"``."""
    for m in (module, getattr(module, "model", None)):
        config = getattr(m, "config", None)
        if getattr(config, "problem_type", None) == "multi_label_classification":
            return "sigmoid"
    return "softmax"


def _inputs(module: Any, batch: Any) -> Any:
    """What the module's ``forward`` takes from a batch (its ``get_inputs_from_batch`` hook)."""
    hook = getattr(module, "get_inputs_from_batch", None)
    return hook(batch) if callable(hook) else batch


def _tokenizer_for(model: Any, module: Any, tokenizer: Any) -> Any:
    if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    from transformers import AutoTokenizer

    source = tokenizer
    if source is None:
        if isinstance(model, (str, os.PathLike)):
            source = model
        else:
            inner = getattr(module, "model", module)
            source = getattr(getattr(inner, "config", None), "_name_or_path", None)
    if not source:
        raise EnergizerError("score_pool needs a tokenizer: pass tokenizer= (an object, a Hub id or a directory).")
    return AutoTokenizer.from_pretrained(str(source))


def score_pool(
    model: Any,
    dataset: Any,
    *,
    text_column: str = "text",
    text_pair_column: str | None = None,
    tokenizer: Any = None,
    output: str = "probabilities",
    k: int | None = None,
    strategy: Any = "entropy",
    ids: Any = None,
    batch_size: int = 64,
    max_length: int = 128,
    max_tokens: int | None = None,
    device: str | None = None,
    precision: str = "auto",
    exchange_dir: str | os.PathLike | None = None,
    cache_file: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Any:
    """Score the rows of ``dataset`` with ``model`` in one call.

    Args:
        model: a ``transformers`` sequence classifier, its Hub id or directory, or a
            ``LightningModule`` such as :class:`~energizer_hf.model.HFSequenceClassifier`.
        dataset: a ``datasets.Dataset`` with ``text_column`` (row ``i`` is pool id ``i``).
        text_column / text_pair_column: the text (and the second text of pairs).
        tokenizer: an object, a Hub id or a directory (default: the model's).
        output: ``"probabilities"`` ``(N, C)``, ``"logits"`` ``(N, C)``, ``"embeddings"``
            ``(N, d)`` (mean-pooled last hidden states), in the order of ``ids``; or
            ``"topk"``: the ``k`` best rows under ``strategy``.
        k: rows to return with ``output="topk"``.
        strategy: a registered strategy name (``"entropy"``, ``"margin"``, ``"badge"``,
            ...), a :class:`~energizer_hf.query_strategies.Strategy` subclass, for
            ``"topk"``. Uncertainty strategies run on ``model`` itself; other strategies
            are built on a copy of it.
        ids: the rows to score (default: all of them).
        batch_size: rows per batch (length-sorted, padded per batch).
        max_length: truncate texts to this many tokens.
        max_tokens: cap ``rows x padded length`` per batch (GPU memory).
        device / precision: where and how to run (default: CUDA when there is one, with
            bf16/fp16 autocast; see :class:`~energizer_hf.scoring.PoolScorer`).
        exchange_dir: a folder every process shares, to score on several processes
            (``torchrun`` / ``accelerate launch``); the results are the same on every rank.
        cache_file: keep the tokenized dataset there (reused by later calls).
        seed: the seed of strategies that draw at random.
        progress: show progress bars.

    Returns:
        A NumPy array for ``"probabilities"``, ``"logits"`` and ``"embeddings"``;
        ``(ids, scores)`` for ``"topk"`` (best first; ``scores`` is ``None`` for a strategy
        that selects without per-row scores).

    Raises:
        EnergizerError: an unknown ``output``, ``"topk"`` without ``k``, a missing column,
            a model that is not a classifier.
        UnknownStrategyError: an unknown strategy name.

    >>> score_pool(None, None, output="histogram")
    Traceback (most recent call last):
    ...
    energizer_hf.errors.EnergizerError: output must be one of probabilities, logits, embeddings, topk; got 'histogram'.
    """
    if output not in OUTPUTS:
        raise EnergizerError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}.")
    if output == "topk" and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0):
        raise EnergizerError(f'output="topk" needs k, a positive number of rows; got k={k!r}.')
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        raise EnergizerError(f"dataset must be a datasets.Dataset (one split), got {type(dataset).__name__}.")
    for column in (text_column, text_pair_column):
        if column and column not in dataset.column_names:
            raise EnergizerError(
                f"The dataset has no column {column!r}; its columns are {', '.join(dataset.column_names)}: "
                "set text_column."
            )
    from transformers import DataCollatorWithPadding

    from energizer_hf.data import HFDataAdapter, column_as_numpy, tokenize_dataset
    from energizer_hf.pool import ActivePool
    from energizer_hf.scoring import PoolScorer, QueryContext

    module = _as_module(model)
    tok = _tokenizer_for(model, module, tokenizer)
    tokenized = tokenize_dataset(
        dataset, tok, text_column, text_pair_column=text_pair_column, max_length=max_length,
        cache_file=str(cache_file) if cache_file is not None else None, progress=progress,
    )
    lengths = column_as_numpy(tokenized, "length").astype(np.int64)
    source = HFDataAdapter(
        tokenized, DataCollatorWithPadding(tok, return_tensors="pt"), batch_size=batch_size,
        eval_batch_size=batch_size, lengths=lengths,
        model_columns=[c for c in tokenized.column_names if c != "length"],
    )
    scorer = PoolScorer(
        source, batch_size=batch_size, max_tokens=max_tokens, device=device, precision=precision,
        exchange_dir=Path(exchange_dir) if exchange_dir is not None else None, progress=progress,
    )
    pool = ActivePool(dataset)
    rows = np.arange(len(dataset), dtype=np.int64) if ids is None else pool.check_ids(ids)
    # restored at the end: the wrapper's and the user's model's own (a new wrapper is in train mode)
    modes = [(m, m.training) for m in (module, getattr(module, "model", None)) if m is not None]
    module.to(scorer.device)
    module.eval()
    try:
        if output != "topk":
            embed = getattr(module, "embed", None)
            both = getattr(module, "logits_and_embeddings", None)
            return scorer.outputs(
                lambda batch: module(_inputs(module, batch)), rows, (OUTPUTS[output],), model=module,
                embed=embed if callable(embed) else None,
                forward_with_embeddings=both if callable(both) else None,
                tag="score_pool", who="score_pool", activation=_activation(module),
            )[OUTPUTS[output]]
        return _topk(module, pool, rows, int(k), strategy, scorer, QueryContext, seed, progress)
    finally:
        for m, mode in modes:
            m.train(mode)


def _topk(module: Any, pool: Any, rows: np.ndarray, k: int, strategy: Any, scorer: Any, context_cls: Any,
          seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray | None]:
    from energizer_hf.model_outputs import logits_from_output
    from energizer_hf.query_strategies.base import Strategy
    from energizer_hf.query_strategies.registry import get_strategy_class
    from energizer_hf.query_strategies.uncertainty import UncertaintyStrategy

    cls = get_strategy_class(strategy) if isinstance(strategy, str) else strategy
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise EnergizerError(
            f"strategy must be a registered strategy name or a Strategy subclass, got {type(strategy).__name__}."
        )
    if issubclass(cls, UncertaintyStrategy):  # a per-row score of the logits: no copy of the model
        fn = cls.acquisition_fn

        def step(batch: Any, batch_idx: int) -> Any:
            return fn(logits_from_output(module(_inputs(module, batch)), module))

        scores, ids = scorer.topk(step, rows, k, tag="score_pool-topk")
        return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    if rows.size != len(pool):  # the strategy chooses among the unlabelled rows
        others = np.setdiff1d(np.arange(len(pool), dtype=np.int64), rows, assume_unique=True)
        pool.label(others, np.zeros(others.size, dtype=np.int64), round=0)
    ctx = context_cls(pool=pool, round=0, seed=seed, scorer=scorer, progress=progress)
    chosen = np.asarray(cls(module).query(ctx, min(k, rows.size)), dtype=np.int64)
    scores = ctx.scores_of(chosen)
    return chosen, None if scores is None else np.asarray(scores, dtype=np.float64)
