"""Self-training: confident pseudo-labels from the pool join each round's fit.

``RunConfig.self_training`` switches it on (``true`` for the defaults, or a mapping):

.. code-block:: yaml

    self_training:
      threshold: null       # probability of the predicted class, in (0, 1); null: no threshold
      top_k_per_class: 25   # at most this many pseudo-labels per predicted class; null: no cap
      mc_dropout: 0         # >= 2: confidence of the mean of that many MC-dropout passes

Why no threshold by default: fine-tuned on few labels, a model is under-confident. On
TREC-6 (all-MiniLM-L6-v2, 10 epochs at 1e-4, 2,000-row pool) the highest probability
of any unlabelled row was 0.77 after 125 labels, so the common threshold of 0.9 chose
nothing in any round, while the 50 most confident rows of each predicted class were all
correctly labelled. The class-balanced top-k adapts to the model's scale; add a threshold
for well-trained, confident models.

Timing, chosen so that no extra fit is needed: right after round ``r``'s fit (and test),
the fitted model makes one probabilities pass over the unlabelled pool (``mc_dropout``
passes with dropout on, if set), :func:`~energizer_hf.functional.select_pseudo_labels`
picks the rows, and they are written to ``<run_dir>/pseudo/round-{r+1:03d}.npz`` (pool
ids, predicted labels, confidences; atomic write) before the round is recorded. Round
``r + 1`` fits on its human labels plus those pseudo-labels, less any row a person labelled
in the meantime (a human label always wins). Round 0 has no pseudo-labels (no model yet);
the last round makes none (no later fit). The extra cost per round is that one inference
pass over the pool (``time_pseudo_label`` in the record) plus the longer fit.

Pseudo-labels are kept apart from human labels everywhere: they are never written to the
pool's label state (``pool/label_state.npy``), so they are not in the round revisions, the
dataset cards, ``num_labelled``/``label_distribution`` or the final labelled set; they only
reach the training batches, through :attr:`HFDataAdapter.extra_train_rows
<energizer_hf.data.HFDataAdapter>`. A resumed run that redoes round ``r + 1`` reads the same
file, so it trains on the same pseudo-labels.

Each round's record gets ``pseudo/num_rows`` (pseudo-labelled rows in this round's fit),
``pseudo/label_distribution`` and, in simulation (the dataset's own labels are the oracle),
``pseudo/accuracy_vs_oracle``: the fraction of those pseudo-labels equal to the true label.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import EnergizerError

__all__ = ["SelfTraining", "SelfTrainingConfig", "SelfTrainingError", "pseudo_label_file"]



class SelfTrainingError(EnergizerError):
    """Bad self-training settings (e.g. a threshold outside (0, 1))."""


@dataclass
class SelfTrainingConfig:
    """Settings of self-training (``RunConfig.self_training``).

    Example:
        >>> SelfTrainingConfig.from_setting(True)
        SelfTrainingConfig(threshold=None, top_k_per_class=25, mc_dropout=0)
        >>> SelfTrainingConfig.from_setting({"threshold": 1.5})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        energizer_hf.selfsup.self_training.SelfTrainingError: self_training threshold must lie strictly between 0 and 1...
    """

    threshold: float | None = field(
        default=None, metadata={"help": "Smallest probability of the predicted class, in (0, 1); None: no threshold."}
    )
    top_k_per_class: int | None = field(
        default=25, metadata={"help": "At most this many pseudo-labels per predicted class; None: no cap."}
    )
    mc_dropout: int = field(
        default=0, metadata={"help": "MC-dropout passes for the confidence (0: one deterministic pass; else >= 2)."}
    )

    def __post_init__(self) -> None:
        t = self.threshold
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 < float(t) < 1.0:
                raise SelfTrainingError(
                    f"self_training threshold must lie strictly between 0 and 1, got {t!r}: it is the "
                    "smallest probability of the predicted class that makes a pseudo-label (e.g. 0.9), "
                    "or null for none."
                )
            self.threshold = float(t)
        k = self.top_k_per_class
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise SelfTrainingError(
                f"self_training top_k_per_class must be a positive integer or null, got {k!r}."
            )
        if self.threshold is None and k is None:
            raise SelfTrainingError(
                "self_training needs a threshold, a top_k_per_class or both: with neither, every "
                "unlabelled row would be pseudo-labelled."
            )
        m = self.mc_dropout
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0 or m == 1:
            raise SelfTrainingError(
                f"self_training mc_dropout must be 0 (off) or a number of passes >= 2, got {m!r}."
            )

    @classmethod
    def from_setting(cls, value: Any) -> SelfTrainingConfig | None:
        """``None``/``False``: off; ``True``: the defaults; a mapping: those settings.

        Raises:
            SelfTrainingError: an unknown key (the closest known one is named) or a bad value.
        """
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, SelfTrainingConfig):
            return value
        if not isinstance(value, dict):
            raise SelfTrainingError(
                f"self_training must be true, false/null or a mapping of settings, got {type(value).__name__}."
            )
        known = [f.name for f in dataclasses.fields(cls)]
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise SelfTrainingError(
                    f"Unknown self_training key '{key}'{hint}. Known keys: {', '.join(known)}."
                )
        return cls(**value)


def pseudo_label_file(run_dir: str | Path, round: int) -> Path:
    """Where the pseudo-labels used by round ``round``'s fit are kept."""
    from energizer_hf.run import RunDir, round_tag

    return RunDir(run_dir).pseudo_labels / f"{round_tag(round)}.npz"


class SelfTraining:
    """The loop's self-training step (see the module docstring).

    Args:
        config: the :class:`SelfTrainingConfig`.
        data: the run's :class:`~energizer_hf.data.HFDataAdapter` (its
            ``extra_train_rows`` carry the pseudo-labels into the fit).
        model: the model being trained (the strategy's ``model``).
        label_names: class names for the records.
        true_labels: the pool's true labels when the oracle is simulated, for
            ``pseudo/accuracy_vs_oracle``; ``None`` otherwise.
    """

    def __init__(
        self,
        config: SelfTrainingConfig,
        data: Any,
        model: Any,
        *,
        label_names: list[str] | None = None,
        true_labels: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.model = model
        self.label_names = label_names
        self.true_labels = None if true_labels is None else np.asarray(true_labels, dtype=np.int64)

    # ------------------------------------------------------------------ before the fit
    def before_fit(self, loop: Any, round: int) -> dict[str, Any]:
        """Give this round's fit its pseudo-labels; return the record's ``pseudo/`` fields."""
        from energizer_hf.distributed import broadcast_from_rank0

        path = pseudo_label_file(loop.run_dir, round)
        stored = None
        if loop.is_writer and path.exists():
            with np.load(path) as f:
                stored = (f["ids"].astype(np.int64), f["labels"].astype(np.int64))
        stored = broadcast_from_rank0(stored)
        if stored is None:
            ids = labels = np.empty(0, dtype=np.int64)
        else:
            ids, labels = stored
            keep = ~np.asarray(loop.pool.labelled_mask)[ids]  # a human label wins
            ids, labels = ids[keep], labels[keep]
        self.data.extra_train_rows = (ids, labels) if ids.size else None
        counts = np.bincount(labels, minlength=len(self.label_names or [])) if ids.size else np.zeros(0, int)
        out: dict[str, Any] = {
            "pseudo/num_rows": int(ids.size),
            "pseudo/label_distribution": {
                self._name(c): int(n) for c, n in enumerate(counts.tolist()) if n
            },
        }
        if self.true_labels is not None and ids.size:
            out["pseudo/accuracy_vs_oracle"] = float((self.true_labels[ids] == labels).mean())
        return out

    def _name(self, c: int) -> str:
        names = self.label_names
        return names[c] if names is not None and 0 <= c < len(names) else str(c)

    # ------------------------------------------------------------------ after the fit
    def after_fit(self, loop: Any, round: int) -> dict[str, Any]:
        """Choose the pseudo-labels of round ``round + 1`` with the model just fitted and
        store them; return the record's timing field."""
        import torch

        from energizer_hf.functional.pseudo_labels import select_pseudo_labels
        from energizer_hf.utils import atomic_write_bytes

        start = time.perf_counter()
        cfg = self.config
        candidates = np.asarray(loop.pool.unlabelled_ids, dtype=np.int64)
        ids = labels = np.empty(0, dtype=np.int64)
        confidence = np.empty(0, dtype=np.float32)
        if candidates.size:
            scorer = loop.backend.make_scorer(loop.files.scoring, progress=loop.progress)
            model = self.model
            hook = getattr(model, "get_inputs_from_batch", None)
            was_training = model.training
            model.to(scorer.device)
            model.eval()
            what = "mc_probs" if cfg.mc_dropout else "probs"
            try:
                out = scorer.outputs(
                    (lambda batch: model(hook(batch))) if callable(hook) else model,
                    candidates,
                    (what,),
                    model=model,
                    num_mc_samples=max(cfg.mc_dropout, 2),
                    tag=f"r{round:04d}-pseudo",
                    desc="Pseudo-labels",
                )[what]
            finally:
                if was_training:
                    model.train()
            chosen = select_pseudo_labels(
                torch.as_tensor(np.asarray(out)), cfg.threshold, cfg.top_k_per_class
            )
            positions = chosen.positions.numpy()
            ids = candidates[positions]
            labels = chosen.labels.numpy().astype(np.int64)
            confidence = chosen.confidence.numpy().astype(np.float32)
        if loop.is_writer:
            buf = io.BytesIO()
            np.savez(
                buf,
                ids=ids,
                labels=labels,
                confidence=confidence,
                from_round=np.int64(round),
                settings=np.array(json.dumps(dataclasses.asdict(cfg), sort_keys=True)),
            )
            atomic_write_bytes(pseudo_label_file(loop.run_dir, round + 1), buf.getvalue())
        return {"time_pseudo_label": time.perf_counter() - start}
