"""Self-supervised help from the unlabelled pool (opt-in, one setting each).

- :mod:`~energizer_hf.selfsup.tapt`: task-adaptive pre-training, masked-LM training of the
  encoder on the pool's texts before round 0 (``RunConfig.tapt_steps``), cached by a
  fingerprint of the pool, the model, the tokenizer and the settings.
- :mod:`~energizer_hf.selfsup.self_training`: confident pseudo-labels from the current
  model added to each round's fit (``RunConfig.self_training``), kept apart from human
  labels.
"""

from .self_training import SelfTraining, SelfTrainingConfig, SelfTrainingError, pseudo_label_file
from .tapt import (
    TAPTConfig,
    TAPTError,
    TAPTResult,
    adapt_encoder,
    adapted_model_spec,
    default_cache_dir,
    model_identity,
    tapt_fingerprint,
    train_masked_lm,
)

__all__ = [
    "SelfTraining",
    "SelfTrainingConfig",
    "SelfTrainingError",
    "TAPTConfig",
    "TAPTError",
    "TAPTResult",
    "adapt_encoder",
    "adapted_model_spec",
    "default_cache_dir",
    "model_identity",
    "pseudo_label_file",
    "tapt_fingerprint",
    "train_masked_lm",
    "validate_settings",
]


def validate_settings(tapt_steps: int, tapt_args: dict | None, self_training: object) -> None:
    """Check the run's self-supervised settings early (named errors before any loading).

    >>> validate_settings(0, None, {"threshold": 0.8})
    >>> validate_settings(0, None, {"threshold": 0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    energizer_hf.selfsup.self_training.SelfTrainingError: self_training threshold must lie strictly between 0 and 1...
    """
    TAPTConfig.from_settings(tapt_steps, tapt_args)
    SelfTrainingConfig.from_setting(self_training)
