"""A ``LightningModule`` around any ``AutoModelForSequenceClassification``."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.nn import functional as F

from energizer_hf.errors import EnergizerError, LabelMismatchError, PeftConfigError
from energizer_hf.metrics import as_metrics, per_class_key

__all__ = ["HFSequenceClassifier", "apply_peft", "check_peft_task_type", "load_sequence_classifier"]


def load_sequence_classifier(
    model: Any,
    num_labels: int,
    id2label: dict[int, str] | None = None,
    *,
    noun: str = "classes",
) -> Any:
    """Build a ``transformers`` sequence classifier from a hub id, a directory, a config or
    an instance, with ``num_labels`` and the label names set (``noun`` names them in errors:
    ``"labels"`` for multi-label).

    Raises:
        LabelMismatchError: an instance or config with another ``num_labels``, or a saved
            classifier whose head has another size.
    """
    from transformers import AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

    id2label = id2label or {i: str(i) for i in range(num_labels)}
    label2id = {v: k for k, v in id2label.items()}
    if _is_peft_model(model):
        check_peft_task_type(getattr(model, "peft_config", {}))
        base = model.get_base_model()
        have = base.config.num_labels
        if have != num_labels:
            raise LabelMismatchError(
                f"The PEFT model's base {type(base).__name__} has num_labels={have} but the data has "
                f"{num_labels} {noun}: build the base model with num_labels={num_labels}."
            )
        base.config.id2label, base.config.label2id = dict(id2label), dict(label2id)
        return model
    if isinstance(model, PreTrainedModel):
        have = model.config.num_labels
        if have != num_labels:
            raise LabelMismatchError(
                f"{type(model).__name__} has num_labels={have} but the data has {num_labels} "
                f"{noun} ({', '.join(list(id2label.values())[:10])}): build the model with "
                f"num_labels={num_labels}, or pass a model name/config so energizer_hf builds it."
            )
        model.config.id2label, model.config.label2id = dict(id2label), dict(label2id)
        return model
    if isinstance(model, PretrainedConfig):
        config = copy.deepcopy(model)  # never mutate the caller's config
        if getattr(config, "_num_labels_set_explicitly", False) and config.num_labels != num_labels:
            raise LabelMismatchError(
                f"The model config has num_labels={config.num_labels} but the data has "
                f"{num_labels} {noun}."
            )
        config.num_labels = num_labels
        config.id2label, config.label2id = dict(id2label), dict(label2id)
        return AutoModelForSequenceClassification.from_config(config)
    if isinstance(model, str):
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                model, num_labels=num_labels, id2label=id2label, label2id=label2id
            )
        except RuntimeError as err:  # a saved classifier whose head has another size
            if "mismatch" not in str(err).lower():
                raise
            raise head_mismatch_error(model, num_labels, noun) from err
    raise EnergizerError(
        "model must be a hub id or local directory (str), a transformers config or a "
        f"PreTrainedModel instance; got {type(model).__name__}."
    )


def head_mismatch_error(model: str, num_labels: int, noun: str) -> LabelMismatchError:
    """The error for a saved classifier (``model``: hub id or directory) whose head does not
    have ``num_labels`` outputs (``transformers`` refuses to load it)."""
    try:
        from transformers import AutoConfig

        have: Any = AutoConfig.from_pretrained(model).num_labels
    except Exception:  # noqa: BLE001 - the message only loses the head's size
        have = "another number of"
    return LabelMismatchError(
        f"{model} is a classifier with a head of {have} outputs but the data has {num_labels} {noun}: "
        "start from its base model (a checkpoint without the classification head), or save a model "
        f"built with num_labels={num_labels}."
    )


def _is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # peft is optional
        return False
    return isinstance(model, PeftModel)


def check_peft_task_type(configs: Any, expected: str = "SEQ_CLS") -> None:
    """A PEFT config (or a PeftModel's ``peft_config`` mapping) must be for sequence
    classification (``expected``: ``TOKEN_CLS`` for token classification).

    Raises:
        PeftConfigError: a task type other than ``expected``.
    """
    items = configs.items() if isinstance(configs, dict) else [("default", configs)]
    for name, cfg in items:
        task = getattr(cfg, "task_type", None)
        task = getattr(task, "value", task)
        if task is not None and str(task) != expected:
            raise PeftConfigError(
                f"The PEFT adapter '{name}' has task_type={task!s}, but this run fine-tunes a "
                f"{'token' if expected == 'TOKEN_CLS' else 'sequence'} classifier: use "
                f"task_type='{expected}' (peft.TaskType.{expected}), so the classification head "
                "is trained and saved with the adapter."
            )


def apply_peft(model: Any, peft_config: Any, task_type: str = "SEQ_CLS") -> Any:
    """Wrap a ``transformers`` classifier in a PEFT adapter from a ``peft`` config object or
    a mapping such as ``{"peft_type": "LORA", "r": 8, "lora_alpha": 16}``.

    The task type defaults to ``SEQ_CLS``; another one is an error.

    Raises:
        PeftConfigError: peft is not installed, the mapping is not a PEFT config, or the
            task type is not ``SEQ_CLS``.
    """
    try:
        import peft
    except ImportError as err:  # pragma: no cover - peft is in the extras
        raise PeftConfigError("PEFT adapters need the peft package: pip install peft.") from err
    if isinstance(peft_config, dict):
        data = dict(peft_config)
        data.setdefault("task_type", task_type)
        if "peft_type" not in data:
            raise PeftConfigError(
                "A peft mapping needs peft_type (e.g. LORA, IA3, PREFIX_TUNING); got keys "
                f"{sorted(data)}."
            )
        data["peft_type"] = str(data["peft_type"]).upper()
        try:
            peft_config = peft.get_peft_config(data)
        except (KeyError, TypeError, ValueError) as err:
            raise PeftConfigError(f"Cannot build a PEFT config from {data}: {err}") from err
    if not isinstance(peft_config, peft.PeftConfig):
        raise PeftConfigError(
            f"peft must be a peft.PeftConfig (e.g. LoraConfig(...)) or a mapping, got "
            f"{type(peft_config).__name__}."
        )
    if getattr(peft_config, "task_type", None) is None:
        peft_config.task_type = getattr(peft.TaskType, task_type)
    check_peft_task_type(peft_config, task_type)
    return peft.get_peft_model(model, peft_config)


class HFSequenceClassifier(pl.LightningModule):
    """Fine-tune a ``transformers`` sequence classifier with Lightning.

    AdamW (the fused kernel where the device has one) with linear warm-up and decay,
    cross-entropy loss (optionally class-weighted), accuracy and macro-F1 from torchmetrics
    on validation and test, per-class F1 on test (``test/f1/<class name>``), and the user's
    metrics (see :mod:`energizer_hf.metrics`) on validation and test. Only parameters that
    require gradients are optimised (PEFT adapters, frozen embeddings).

    Args:
        model: hub id, local directory, ``PretrainedConfig``, ``PreTrainedModel`` or a
            ``peft.PeftModel`` for sequence classification.
        num_labels: number of classes.
        id2label: label names (set on the model's config).
        learning_rate: peak learning rate of AdamW.
        head_learning_rate: peak learning rate of the classification head (the parameters
            outside the model's ``base_model``); ``None``: ``learning_rate``.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        warmup_ratio: fraction of the training steps spent warming up linearly.
        metrics: user metrics computed on validation and test: ``evaluate`` modules,
            callables ``fn(y_true, y_pred, **kw)`` (``sklearn.metrics.f1_score``), or either
            paired with keyword arguments, ``(f1, {"average": "macro"})``.
        peft: a ``peft`` config (or mapping) to wrap the model in an adapter (LoRA, ...).
        gradient_checkpointing: recompute activations in the backward pass (less memory).
        freeze_embeddings: do not train the word-embedding matrix.

    Example:
        >>> from transformers import BertConfig
        >>> cfg = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
        ...                  num_attention_heads=2, intermediate_size=16)
        >>> clf = HFSequenceClassifier(cfg, num_labels=3)
        >>> clf.num_labels
        3
    """

    #: the task this module serves (strategies that cannot serve it refuse it)
    task: str = "text_classification"
    #: the PEFT task type of its adapters
    peft_task_type: str = "SEQ_CLS"
    #: how probabilities are read from the logits (``softmax``; ``sigmoid`` for multi-label)
    output_activation: str = "softmax"

    def __init__(
        self,
        model: Any,
        num_labels: int,
        id2label: dict[int, str] | None = None,
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        metrics: Sequence[Any] | None = None,
        *,
        head_learning_rate: float | None = None,
        peft: Any = None,
        gradient_checkpointing: bool = False,
        freeze_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if num_labels < 2:
            raise LabelMismatchError(
                f"Classification needs at least 2 classes, the data has {num_labels}."
            )
        self.model = self.load_model(model, num_labels, id2label)
        if freeze_embeddings:
            self.model.get_input_embeddings().weight.requires_grad_(False)
        if peft is not None:
            if _is_peft_model(self.model):
                raise PeftConfigError("The model is a PeftModel already: do not give a peft config too.")
            self.model = apply_peft(self.model, peft, self.peft_task_type)
        if gradient_checkpointing:
            if hasattr(self.model, "activation_checkpointing_enable"):  # transformers >= 5.x
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # class weights of the loss (None: unweighted); set per fit by the backend
        self.class_weights: Tensor | None = None
        self.num_labels = num_labels
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.user_metrics = as_metrics(metrics)
        config = getattr(_base_model(self.model), "config", None)
        names = getattr(config, "id2label", None) or {}
        self.label_names = [str(names.get(i, i)) for i in range(num_labels)]
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        def collection(prefix: str) -> MetricCollection:
            return MetricCollection(
                {
                    "accuracy": MulticlassAccuracy(num_classes=num_labels, average="micro"),
                    "f1_macro": MulticlassF1Score(num_classes=num_labels, average="macro"),
                },
                prefix=prefix,
            )

        self.val_metrics = collection("val/")
        self.test_metrics = collection("test/")
        # per-class F1 on test: `test/f1/<class name>` (the loop derives test/minority_f1)
        self.test_f1_per_class = MulticlassF1Score(num_classes=num_labels, average="none")
        self._forward_args = _forward_args(self.model)
        # predictions and references of the current validation / test pass (user metrics)
        self._outputs: dict[str, tuple[list[Tensor], list[Tensor]]] = {"val/": ([], []), "test/": ([], [])}

    def load_model(self, model: Any, num_labels: int, id2label: dict[int, str] | None) -> Any:
        """The ``transformers`` model with its head (hook: a task's module overrides it)."""
        return load_sequence_classifier(model, num_labels, id2label)

    # ------------------------------------------------------------------ forward
    def get_inputs_from_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The model inputs of a batch (drops labels and anything forward does not take)."""
        return {k: v for k, v in batch.items() if k in self._forward_args and k != "labels"}

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model(**self.get_inputs_from_batch(batch)).logits

    def logits_and_embeddings(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Logits and mean-pooled last hidden states from one forward pass."""
        out = self.model(**self.get_inputs_from_batch(batch), output_hidden_states=True)
        hidden = out.hidden_states[-1]
        mask = batch.get("attention_mask")
        if mask is None:
            return out.logits, hidden.mean(1)
        mask = mask.unsqueeze(-1).to(hidden.dtype)
        return out.logits, (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean-pooled last hidden states, ``(batch, hidden)``: the embeddings hook."""
        return self.logits_and_embeddings(batch)[1]

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch)
        weight = None if self.class_weights is None else self.class_weights.to(logits.device, logits.dtype)
        loss = F.cross_entropy(logits, batch["labels"], weight=weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self(batch)
        loss = F.cross_entropy(logits, batch["labels"])
        self.val_metrics.update(logits, batch["labels"])
        self.log("val/loss", loss, batch_size=logits.shape[0])
        self._keep_outputs("val/", logits, batch["labels"])

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()
        self._log_user_metrics("val/")

    def _keep_outputs(self, prefix: str, logits: Tensor, labels: Tensor) -> None:
        if self.user_metrics:
            preds, refs = self._outputs[prefix]
            preds.append(logits.argmax(-1).cpu())
            refs.append(labels.cpu())

    def _log_user_metrics(self, prefix: str) -> None:
        preds, refs = self._outputs[prefix]
        self._outputs[prefix] = ([], [])
        if not (self.user_metrics and preds):
            return
        y_pred, y_true = torch.cat(preds).numpy(), torch.cat(refs).numpy()
        for metric in self.user_metrics:
            values = metric.compute(y_true, y_pred, prefix=prefix, label_names=self.label_names)
            if values:
                self.log_dict(values)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self(batch)
        loss = F.cross_entropy(logits, batch["labels"])
        self.test_metrics.update(logits, batch["labels"])
        self.test_f1_per_class.update(logits, batch["labels"])
        self.log("test/loss", loss, batch_size=logits.shape[0])
        self._keep_outputs("test/", logits, batch["labels"])

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        per_class = self.test_f1_per_class.compute()
        self.log_dict({per_class_key("test/", "f1", name): v for name, v in zip(self.label_names, per_class)})
        self.test_f1_per_class.reset()
        self._log_user_metrics("test/")

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        trainable = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        head = _head_parameter_ids(self.model) if self.head_learning_rate is not None else set()
        params = []
        for is_head in (False, True):
            lr = self.head_learning_rate if is_head else self.learning_rate
            for decay in (True, False):
                group = [
                    p for n, p in trainable
                    if (id(p) in head) == is_head and (not any(nd in n for nd in no_decay)) == decay
                ]
                if group:
                    params.append({"params": group, "weight_decay": self.weight_decay if decay else 0.0, "lr": lr})
        optimizer = _adamw(params, self.learning_rate)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = int(self.warmup_ratio * total)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(warmup, 1)
            return max(0.0, (total - step) / max(total - warmup, 1))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _base_model(model: Any) -> Any:
    """The ``transformers`` model under a PEFT wrapper (the model itself otherwise)."""
    return model.get_base_model() if _is_peft_model(model) else model


def _forward_args(model: Any) -> set[str]:
    """Inputs the model's forward takes; a PEFT wrapper (``**kwargs``) passes on its base
    model's."""
    params = inspect.signature(model.forward).parameters
    names = set(params)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()) and _is_peft_model(model):
        names |= set(inspect.signature(model.get_base_model().forward).parameters)
    return names


def _head_parameter_ids(model: Any) -> set[int]:
    """Ids of the parameters of a ``transformers`` model outside its ``base_model`` (the
    task head); empty when the model has no separate base model (e.g. PEFT wrappers)."""
    base = getattr(model, "base_model", None)
    if base is None or base is model or _is_peft_model(model):
        return set()
    body = {id(p) for p in base.parameters()}
    return {id(p) for p in model.parameters() if id(p) not in body}


def _adamw(params: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """AdamW with the fused kernel when every parameter's device supports it (CPU and CUDA
    floating point): about 2x faster steps on CPU than the per-tensor loop; the same
    update."""
    tensors = [p for g in params for p in g["params"]]
    if tensors and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors):
        try:
            return torch.optim.AdamW(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):  # an older torch or an unsupported dtype
            pass
    return torch.optim.AdamW(params, lr=lr)
