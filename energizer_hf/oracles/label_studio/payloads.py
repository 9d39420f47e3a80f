"""What a Label Studio task shows: the text (a sentence of words joined by single spaces),
its pool id and round, and the model's pre-annotation.

>>> word_list(["New York", "is", "big"]), shown_text(["New York", "is", "big"])
(['New York', 'is', 'big'], 'New York is big')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from energizer_hf.oracles.label_studio.annotations import choice_result, tags_to_spans

__all__ = ["choice_payloads", "is_words", "learner_predictions", "model_payloads", "shown_text", "word_list"]


def is_words(text: Any) -> bool:
    """A sentence given as its words (token classification), not as one string."""
    return isinstance(text, (list, tuple)) or (isinstance(text, np.ndarray) and text.ndim == 1)


def word_list(text: Any) -> list[str]:
    """The words of a sentence: its own (a word may hold a space: it stays one word, with
    one tag), or a shown text split at single spaces."""
    return [str(w) for w in text] if is_words(text) else str(text).split(" ")


def shown_text(text: Any) -> str:
    """The text people see: a sentence of words is joined by single spaces."""
    return " ".join(word_list(text)) if is_words(text) else str(text)


def _task(pool_id: int, round: int, text: str) -> dict[str, Any]:
    return {"data": {"text": text, "pool_id": int(pool_id), "round": int(round)}}


def choice_payloads(
    ids: np.ndarray, round: int, texts: Sequence[str], *, names: Sequence[str],
    preds: tuple[Any, Any] | None, model_version: str,
) -> list[dict[str, Any]]:
    """Tasks, with one predicted class (``preds``: labels or names, and scores) each."""
    payloads = []
    for j, (pool_id, text) in enumerate(zip(ids.tolist(), texts)):
        task = _task(pool_id, round, text)
        if preds is not None:
            label = preds[0][j]
            name = names[int(label)] if not isinstance(label, str) else label
            task["predictions"] = [
                {"model_version": model_version, "score": float(preds[1][j]), "result": choice_result(name)}
            ]
        payloads.append(task)
    return payloads


def model_payloads(
    ids: np.ndarray, round: int, texts: Sequence[str], words: Sequence[Sequence[str]], *,
    names: Sequence[str], task: str, predicted: Any, model_version: str,
) -> list[dict[str, Any]]:
    """Tasks with the run's model's pre-annotations: the labels whose probability reaches
    0.5 (multi-label), or the spans of the predicted word tags (ner)."""
    out = []
    for j, (pool_id, text) in enumerate(zip(ids.tolist(), texts)):
        payload = _task(pool_id, round, text)
        if task == "multi_label":
            p = np.asarray(predicted[j], dtype=np.float64)
            chosen = [names[i] for i in np.flatnonzero(p >= 0.5).tolist()]
            result, score = choice_result(chosen), float(np.mean(np.maximum(p, 1 - p)))
        else:
            tags, score = predicted[j]
            result = tags_to_spans(list(tags), names, words[j])
        payload["predictions"] = [{"model_version": model_version, "score": float(score), "result": result}]
        out.append(payload)
    return out


def learner_predictions(learner: Any, batch_size: int = 64) -> Callable[[np.ndarray], tuple[Any, Any]]:
    """``predictions=`` for :class:`LabelStudioOracle` from an ``ActiveLearner``'s current
    model: ``(argmax label, its probability)`` per pool id (the model of the round that
    queried them; the initial set gets the untrained model's guesses)."""

    def predict(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        cfg = learner.config
        model = learner.module.model
        device = next(model.parameters()).device
        rows = learner.pool.view(np.asarray(ids, dtype=np.int64))
        pair = cfg.text_pair_column
        labels, scores = [], []
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(ids), batch_size):
                batch = rows[start : start + batch_size]
                enc = learner.tokenizer(
                    batch[cfg.text_column], batch[pair] if pair else None, truncation=True,
                    max_length=cfg.max_length, padding=True, return_tensors="pt",
                ).to(device)
                with torch.no_grad():
                    probs = model(**enc).logits.float().softmax(-1)
                best = probs.max(-1)
                labels.append(best.indices.cpu().numpy())
                scores.append(best.values.cpu().numpy())
        finally:
            model.train(was_training)
        return np.concatenate(labels), np.concatenate(scores)

    return predict
