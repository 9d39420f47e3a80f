"""Task-adaptive pre-training (TAPT): masked-LM training of the encoder on the pool's texts.

Gururangan et al. (2020, "Don't Stop Pretraining") continue the masked-language-model
objective of a pretrained encoder on the unlabelled texts of the task before fine-tuning;
in active learning the pool is exactly such text (Margatina et al., 2022, "On the
Importance of Effectively Adapting Pretrained Language Models for Active Learning"). With
``RunConfig.tapt_steps > 0`` the run adapts the encoder once, before round 0, and every
round starts from the adapted encoder with a fresh classification head (``reset_weights``
resets to that: adapted encoder + the same fresh head).

Training: ``tapt_steps`` AdamW steps on random batches of pool rows (tokenized with the
run's tokenizer and ``max_length``), 15% of the tokens masked as in BERT (80% ``[MASK]``,
10% random, 10% kept), linear warm-up then linear decay, gradient clipping at 1.0, its own
fixed seed (``tapt_args.seed``, default 0) so that one adapted encoder serves every seed of
an experiment.

A fresh masked-LM head: a checkpoint saved without its MLM head (a sentence-transformers
model such as all-MiniLM-L6-v2 is a bare ``BertModel``) gets a randomly initialised head
transform from ``AutoModelForMaskedLM`` (the output projection is tied to the word
embeddings, so it is pretrained). Gradients through a random head would first push the
encoder towards noise, so the head alone is trained first (encoder frozen) for
``head_warmup_steps`` steps (default: ``min(100, tapt_steps)`` when the head is new, 0
otherwise) at ``head_learning_rate``, as in linear-probing-then-fine-tuning (Kumar et al.,
2022). These steps come on top of ``tapt_steps``.

Cache. The adapted encoder (an ``AutoModel``: the encoder and its pooler, no head) is
saved in a directory loadable by ``AutoModelForSequenceClassification.from_pretrained``,
with a ``tapt.json`` holding its fingerprint: the pool's content fingerprint, the text
columns, the model's identity (config and weights files, or the parameters of an
instance), the tokenizer's identity, ``max_length`` and the TAPT settings. It lives

* in the run, ``<run_dir>/cache/tapt/`` (a resumed run reuses it), and
* in a shared cache, ``<cache_dir>/<key>/`` with ``key`` a hash of the fingerprint
  (``cache_dir``: ``tapt_args.cache_dir``, else ``$ENERGIZER_HF_TAPT_CACHE``, else
  ``~/.cache/energizer_hf/tapt``), so a later run on the same pool with the same model and
  settings reuses it without training (other seeds, strategies or query sizes);
* or, with ``tapt_args.path``, in that exact directory (e.g. to keep one adapted encoder
  per project).

Every stored encoder is checked against the fingerprint before use. One made for another
dataset, model, tokenizer, ``max_length`` or other settings is refused with a warning that
names what differs, and rebuilt in its place. Directories are written under a temporary
name and renamed when complete. On several processes rank 0 builds the encoder and the
other ranks wait for it to appear in the run's cache, then load it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import EnergizerError

__all__ = [
    "TAPTConfig",
    "TAPTError",
    "TAPTResult",
    "adapt_encoder",
    "adapted_model_spec",
    "default_cache_dir",
    "model_identity",
    "tapt_fingerprint",
    "train_masked_lm",
]

log = logging.getLogger(__name__)

META_FILE = "tapt.json"
ERROR_FILE = "tapt.error"
RUN_CACHE_NAME = "tapt"
FORMAT_VERSION = 1
#: how long other ranks wait for rank 0 to build the adapted encoder
WAIT_TIMEOUT_S = 6 * 3600.0
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


_ALIASES = {"lr": "learning_rate", "mlm_prob": "mlm_probability", "mask_probability": "mlm_probability",
            "bs": "batch_size", "warmup": "warmup_ratio", "cache": "cache_dir"}


class TAPTError(EnergizerError):
    """Bad task-adaptive pre-training settings, or a model/tokenizer TAPT cannot train."""


@dataclass
class TAPTConfig:
    """Settings of task-adaptive pre-training (``RunConfig.tapt_steps`` + ``tapt_args``).

    Example:
        >>> TAPTConfig.from_settings(300, {"mlm_probability": 0.2}).mlm_probability
        0.2
        >>> TAPTConfig.from_settings(300, {"lr": 1e-4})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        energizer_hf.selfsup.tapt.TAPTError: Unknown tapt_args key 'lr' (did you mean 'learning_rate'?)...
    """

    steps: int = field(default=0, metadata={"help": "Masked-LM optimizer steps (0: no TAPT)."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Fraction of tokens masked."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak AdamW learning rate."})
    batch_size: int = field(default=32, metadata={"help": "Rows per masked-LM batch."})
    warmup_ratio: float = field(default=0.06, metadata={"help": "Fraction of steps of linear warm-up."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    head_warmup_steps: int | None = field(
        default=None,
        metadata={"help": "Steps training only a freshly initialised MLM head first (None: min(100, steps) "
                  "when the head is new, else 0)."},
    )
    head_learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate of the head warm-up."})
    seed: int = field(default=0, metadata={"help": "Seed of TAPT (masking, order, new head)."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Shared cache root (default $ENERGIZER_HF_TAPT_CACHE or ~/.cache/energizer_hf/tapt)."}
    )
    path: str | None = field(
        default=None, metadata={"help": "Keep the adapted encoder in exactly this directory (instead of cache_dir)."}
    )

    #: fields that change where the encoder is kept, not what it is
    LOCATION_FIELDS = ("cache_dir", "path")

    def __post_init__(self) -> None:
        def positive_int(name: str, value: Any, minimum: int) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise TAPTError(f"tapt {name} must be an integer >= {minimum}, got {value!r}.")

        positive_int("steps", self.steps, 0)
        positive_int("batch_size", self.batch_size, 1)
        positive_int("seed", self.seed, 0)
        if self.head_warmup_steps is not None:
            positive_int("head_warmup_steps", self.head_warmup_steps, 0)
        for name in ("mlm_probability", "warmup_ratio"):
            value = getattr(self, name)
            low_ok = name == "warmup_ratio"
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                (0.0 <= value < 1.0) if low_ok else (0.0 < value < 1.0)
            ):
                bounds = "[0, 1)" if low_ok else "(0, 1)"
                raise TAPTError(f"tapt {name} must be a number in {bounds}, got {value!r}.")
        for name in ("learning_rate", "head_learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise TAPTError(f"tapt {name} must be a positive number, got {value!r}.")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise TAPTError(f"tapt weight_decay must be a number >= 0, got {self.weight_decay!r}.")

    @classmethod
    def from_settings(cls, steps: int, args: dict[str, Any] | None = None) -> TAPTConfig:
        """Build from ``RunConfig.tapt_steps`` and ``RunConfig.tapt_args``.

        Raises:
            TAPTError: an unknown key (the closest known one is named) or a bad value.
        """
        args = dict(args or {})
        if not isinstance(args, dict):
            raise TAPTError(f"tapt_args must be a mapping, got {type(args).__name__}.")
        known = [f.name for f in dataclasses.fields(cls) if f.name != "steps"]
        for key in args:
            if key == "steps":
                raise TAPTError("Give the number of TAPT steps as tapt_steps, not inside tapt_args.")
            if key not in known:
                close = [_ALIASES[key]] if key in _ALIASES else difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise TAPTError(f"Unknown tapt_args key '{key}'{hint}. Known keys: {', '.join(known)}.")
        return cls(steps=steps, **args)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the adapted encoder (not where it is kept)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.LOCATION_FIELDS}


@dataclass
class TAPTResult:
    """Where the adapted encoder is and how it got there.

    Attributes:
        path: the run's copy (``<run_dir>/cache/tapt``), loadable with ``from_pretrained``.
        source: ``"run"`` (reused from the run's cache), ``"path"`` (from ``tapt_args.path``),
            ``"shared"`` (from the shared cache) or ``"built"`` (trained now).
        meta: the content of ``tapt.json`` (fingerprint, losses, seconds).
    """

    path: Path
    source: str
    meta: dict[str, Any]


# ---------------------------------------------------------------------- fingerprints
def default_cache_dir() -> Path:
    """``$ENERGIZER_HF_TAPT_CACHE``, else ``~/.cache/energizer_hf/tapt``."""
    env = os.environ.get("ENERGIZER_HF_TAPT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "energizer_hf" / "tapt"


def model_identity(model: Any) -> str:
    """What the encoder starts from: a directory's config and weights files, a Hub id, a
    config's content, or an instance's parameters."""
    from transformers import PretrainedConfig, PreTrainedModel

    from energizer_hf.embeddings import encoder_fingerprint, module_fingerprint

    if isinstance(model, (str, os.PathLike)):
        where = "dir" if Path(model).is_dir() else "hub"
        return f"{where}:{Path(model).name if where == 'dir' else model}:{encoder_fingerprint(model, 0, 'tapt')}"
    if isinstance(model, PretrainedConfig):
        payload = json.dumps(model.to_dict(), sort_keys=True, default=str)
        return f"config:{type(model).__name__}:{hashlib.sha256(payload.encode()).hexdigest()[:16]}"
    if isinstance(model, PreTrainedModel):
        return f"instance:{type(model).__name__}:{module_fingerprint(model.base_model)}"
    raise TAPTError(
        "Task-adaptive pre-training needs a transformers model: a hub id or directory, a config or a "
        f"PreTrainedModel instance; got {type(model).__name__}."
    )


def tapt_fingerprint(
    *,
    pool_fingerprint: str,
    pool_rows: int,
    text_columns: list[str],
    model: str,
    tokenizer: str,
    max_length: int,
    config: TAPTConfig,
) -> dict[str, Any]:
    """Everything that decides the adapted encoder; stored in ``tapt.json`` and hashed for
    the shared cache's key.

    >>> fp = tapt_fingerprint(pool_fingerprint="ab", pool_rows=2, text_columns=["text"], model="m",
    ...                       tokenizer="t", max_length=64, config=TAPTConfig(steps=10))
    >>> sorted(fp)[:4]
    ['format', 'max_length', 'model', 'pool_fingerprint']
    """
    return {
        "format": FORMAT_VERSION,
        "pool_fingerprint": pool_fingerprint,
        "pool_rows": int(pool_rows),
        "text_columns": list(text_columns),
        "model": model,
        "tokenizer": tokenizer,
        "max_length": int(max_length),
        "settings": config.fingerprint(),
    }


def _key(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:20]


_WHAT = {
    "pool_fingerprint": "another dataset",
    "pool_rows": "another dataset",
    "text_columns": "other text columns",
    "model": "another model",
    "tokenizer": "another tokenizer",
    "max_length": "another max_length",
    "settings": "other TAPT settings",
    "format": "another format version",
}


def _read_meta(directory: Path) -> dict[str, Any] | None:
    """The ``tapt.json`` of a complete cache directory, else ``None``."""
    meta_path = directory / META_FILE
    if not meta_path.is_file() or not (directory / "config.json").is_file():
        return None
    if not any((directory / f).is_file() for f in _WEIGHT_FILES):
        return None
    try:
        return json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _differences(meta: dict[str, Any], fingerprint: dict[str, Any]) -> list[str]:
    saved = meta.get("fingerprint") or {}
    return [k for k in sorted(set(saved) | set(fingerprint)) if saved.get(k) != fingerprint.get(k)]


def _check(directory: Path, fingerprint: dict[str, Any], where: str, warn: bool = True) -> dict[str, Any] | None:
    """The meta of ``directory`` when it holds this fingerprint's encoder; a warning (and
    ``None``) when it holds another one."""
    meta = _read_meta(directory)
    if meta is None:
        return None
    diffs = _differences(meta, fingerprint)
    if not diffs:
        return meta
    if not warn:
        return None
    saved = meta.get("fingerprint") or {}
    reasons = sorted({_WHAT.get(d, d) for d in diffs})
    details = "; ".join(f"{d}: {saved.get(d)!r} here, {fingerprint.get(d)!r} wanted" for d in diffs)
    warnings.warn(
        f"The adapted encoder in {where} '{directory}' was built for {' and '.join(reasons)} "
        f"({details}); it is not used and is rebuilt for this run.",
        stacklevel=3,
    )
    return None


# ---------------------------------------------------------------------- files
def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # cache files are never modified in place: a hard link is safe
    except OSError:
        shutil.copy2(src, dst)


def _publish(source: Path, target: Path) -> None:
    """Put a copy of the complete directory ``source`` at ``target``, atomically replacing
    what is there (files are hard-linked when possible)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a cache entry is not
    try:
        for f in sorted(source.iterdir()):
            if f.is_file() and f.name != META_FILE:
                _link_or_copy(f, tmp / f.name)
        _link_or_copy(source / META_FILE, tmp / META_FILE)  # last: marks the copy complete
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _build_lock(store: Path):
    """One builder per cache entry across independent runs (e.g. seeds run in parallel):
    the others wait for the lock, then find the entry built. A lock left by a dead process
    on this host is taken over."""
    import socket

    lock = store.parent / f".{store.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    announced = False
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text() or "{}")
            except (OSError, json.JSONDecodeError):
                holder = {}
            stale = holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _pid_alive(holder["pid"])
            if stale:
                lock.unlink(missing_ok=True)
                continue
            if time.monotonic() > deadline:
                raise TAPTError(f"Waited {WAIT_TIMEOUT_S:.0f} s for another process building '{store}' ({lock}).") from None
            if not announced:
                log.info("Another process (%s) builds the adapted encoder %s; waiting.", holder, store)
                announced = True
            time.sleep(1.0)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


# ---------------------------------------------------------------------- training
def _load_masked_lm(model: Any) -> tuple[Any, bool]:
    """The masked-LM model to train and whether its MLM head is newly initialised."""
    from transformers import AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel

    def no_mlm(err: Exception) -> TAPTError:
        return TAPTError(
            f"Task-adaptive pre-training needs a masked-LM encoder (BERT, RoBERTa, DeBERTa, ...), and "
            f"transformers has no masked-LM class for this model ({err}). Set tapt_steps to 0."
        )

    try:
        if isinstance(model, (str, os.PathLike)):
            mlm, info = AutoModelForMaskedLM.from_pretrained(str(model), output_loading_info=True)
            prefix = mlm.base_model_prefix
            fresh = any(not k.startswith(f"{prefix}.") for k in info.get("missing_keys", []))
            return mlm, fresh
        if isinstance(model, PretrainedConfig):
            return AutoModelForMaskedLM.from_config(copy.deepcopy(model)), False
        if isinstance(model, PreTrainedModel):
            mlm = AutoModelForMaskedLM.from_config(copy.deepcopy(model.config))
            _load_base(mlm.base_model, model.base_model.state_dict(), "the given model")
            return mlm, True
    except (ValueError, KeyError) as err:
        raise no_mlm(err) from None
    raise TAPTError(f"Cannot pre-train a {type(model).__name__}: give a hub id, directory, config or model.")


def _mlm_head(mlm: Any) -> Any:
    """The MLM head as one position-wise module (BERT's ``cls``, RoBERTa's ``lm_head``, ...),
    or ``None`` when the model is not laid out as base model + one head."""
    others = [m for name, m in mlm.named_children() if name != mlm.base_model_prefix]
    if len(others) != 1 or not hasattr(mlm, mlm.base_model_prefix):
        return None
    return others[0]


def _load_base(target: Any, state: dict[str, Any], what: str) -> None:
    """Load the encoder weights ``state`` into ``target`` (extra pooler weights may be
    absent on one side)."""
    result = target.load_state_dict(state, strict=False)
    own = set(target.state_dict())
    loaded = own - set(result.missing_keys)
    if not loaded or len(loaded) < len(own) // 2:
        raise TAPTError(
            f"The adapted encoder's weights do not fit {what} ({len(loaded)} of {len(own)} tensors "
            "matched): this architecture is not supported by task-adaptive pre-training."
        )


def _device(accelerator: str) -> Any:
    import torch

    if torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda"):
        return torch.device("cuda")
    return torch.device("cpu")


def train_masked_lm(
    model: Any,
    tokenizer: Any,
    tokenized: Any,
    config: TAPTConfig,
    *,
    device: Any = "cpu",
    progress: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Continue masked-LM training of ``model``'s encoder on the rows of ``tokenized``.

    Args:
        model: hub id or directory, ``PretrainedConfig`` or ``PreTrainedModel``.
        tokenizer: the run's tokenizer (needs a mask token).
        tokenized: a tokenized ``datasets.Dataset`` with an ``input_ids`` column (and
            ``token_type_ids`` for pairs), as made by :func:`energizer_hf.data.tokenize_dataset`.
        config: the :class:`TAPTConfig`.
        device: where to train (bf16 autocast on CUDA).
        progress: show a progress bar.

    Returns:
        ``(encoder, stats)``: the adapted ``AutoModel`` (encoder and pooler, no head) on the
        CPU, and ``{"steps", "head_warmup_steps", "fresh_mlm_head", "loss_start",
        "loss_end", "seconds"}`` (losses: mean masked-LM loss of the first and last 10% of
        the main steps).
    """
    import torch
    from transformers import (
        AutoModel,
        DataCollatorForLanguageModeling,
        PretrainedConfig,
        PreTrainedModel,
    )

    from energizer_hf.utils import seed_everything

    if getattr(tokenizer, "mask_token", None) is None:
        raise TAPTError(
            f"The tokenizer {type(tokenizer).__name__} has no mask token: masked-LM pre-training needs one."
        )
    if len(tokenized) == 0:
        raise TAPTError("The pool has no rows to pre-train on.")
    start = time.perf_counter()
    seed_everything(config.seed)
    mlm, fresh_head = _load_masked_lm(model)
    if len(tokenizer) > mlm.config.vocab_size:
        raise TAPTError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocabulary has "
            f"{mlm.config.vocab_size}: use the model's own tokenizer."
        )
    device = torch.device(device)
    mlm.to(device)
    mlm.train()
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability, seed=config.seed)
    columns = [c for c in ("input_ids", "token_type_ids") if c in tokenized.column_names]
    rng = np.random.default_rng([config.seed, 0x7A97])
    n = len(tokenized)
    order = rng.permutation(n)
    cursor = 0

    def next_batch() -> dict[str, Any]:
        nonlocal order, cursor
        take = []
        while len(take) < min(config.batch_size, n):
            if cursor >= n:
                order, cursor = rng.permutation(n), 0
            step = min(config.batch_size - len(take), n - cursor)
            take.extend(order[cursor : cursor + step].tolist())
            cursor += step
        rows = tokenized[take]
        feats = [{c: rows[c][j] for c in columns} for j in range(len(take))]
        return {k: v.to(device) for k, v in collator(feats).items()}

    def autocast() -> Any:
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    bar = None
    head_steps = config.head_warmup_steps
    if head_steps is None:
        head_steps = min(100, config.steps) if fresh_head else 0
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=head_steps + config.steps, desc="TAPT (masked LM)", unit="step")

    head_module = _mlm_head(mlm)
    if head_module is not None:  # check once that the shortcut gives the model's own loss
        probe = next_batch()
        mlm.eval()  # no dropout: the two losses must be comparable
        with torch.no_grad():
            try:
                full = mlm(**probe).loss
                labels = probe.pop("labels")
                hidden = mlm.base_model(**probe).last_hidden_state
                part = torch.nn.functional.cross_entropy(
                    head_module(hidden[labels != -100]).float(), labels[labels != -100]
                )
                same = bool(torch.allclose(full.float(), part, rtol=1e-3, atol=1e-4))
            except (TypeError, RuntimeError, ValueError):
                same = False
        mlm.train()
        if not same:
            head_module = None
        # the probe does not change the batches or the masks of training
        rng = np.random.default_rng([config.seed, 0x7A97])
        order, cursor = rng.permutation(n), 0
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability, seed=config.seed)

    def mlm_loss(batch: dict[str, Any]) -> Any:
        where = batch["labels"] != -100
        if not bool(where.any()):  # nothing masked in this batch (very short rows)
            return None
        if head_module is None:
            return mlm(**batch).loss
        # the vocabulary projection is the costly part: apply the (position-wise) head to
        # the ~15% masked positions only, the same loss for a fraction of the compute
        labels = batch.pop("labels")
        hidden = mlm.base_model(**batch).last_hidden_state
        logits = head_module(hidden[where])
        return torch.nn.functional.cross_entropy(logits.float(), labels[where])

    def run_steps(optimizer: Any, scheduler: Any, steps: int, params: list[Any]) -> list[float]:
        losses = []
        for _ in range(steps):
            batch = next_batch()
            with autocast():
                loss = mlm_loss(batch)
            if loss is not None:  # None: nothing was masked, a step without an update
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
            if scheduler is not None:
                scheduler.step()
            if bar is not None:
                bar.update(1)
                if losses:
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
        return losses

    try:
        prefix = f"{mlm.base_model_prefix}."
        if head_steps:
            # warm up a new head with the encoder frozen (the tied output embedding included)
            head = [p for name, p in mlm.named_parameters() if not name.startswith(prefix)]
            body = [p for name, p in mlm.named_parameters() if name.startswith(prefix)]
            for p in body:
                p.requires_grad_(False)
            run_steps(torch.optim.AdamW(head, lr=config.head_learning_rate, weight_decay=0.0), None, head_steps, head)
            for p in body:
                p.requires_grad_(True)
        params = [p for p in mlm.parameters() if p.requires_grad]
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        named = list(mlm.named_parameters())
        groups = [
            {"params": [p for nm, p in named if not any(nd in nm for nd in no_decay)], "weight_decay": config.weight_decay},
            {"params": [p for nm, p in named if any(nd in nm for nd in no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
        total = max(config.steps, 1)
        warmup = int(config.warmup_ratio * total)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(warmup, 1)
            return max(0.0, (total - step) / max(total - warmup, 1))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        losses = run_steps(optimizer, scheduler, config.steps, params)
    finally:
        if bar is not None:
            bar.close()
    mlm.to("cpu")
    mlm.eval()
    # The saved encoder is the model's base class (with the pooler a classifier uses; the
    # masked-LM model has none): start from the original weights, then put in the adapted
    # encoder.
    if isinstance(model, (str, os.PathLike)):
        encoder = AutoModel.from_pretrained(str(model))
    elif isinstance(model, PretrainedConfig):
        encoder = AutoModel.from_config(copy.deepcopy(model))
    else:
        assert isinstance(model, PreTrainedModel)
        encoder = AutoModel.from_config(copy.deepcopy(model.config))
        _load_base(encoder, model.base_model.state_dict(), "the given model's encoder")
    _load_base(encoder, mlm.base_model.state_dict(), f"{type(encoder).__name__}")
    tenth = max(1, len(losses) // 10)
    stats = {
        "steps": int(config.steps),
        "head_warmup_steps": int(head_steps),
        "fresh_mlm_head": bool(fresh_head),
        "loss_start": float(np.mean(losses[:tenth])) if losses else None,
        "loss_end": float(np.mean(losses[-tenth:])) if losses else None,
        "seconds": round(time.perf_counter() - start, 3),
        "device": str(device),
    }
    for value in (stats["loss_start"], stats["loss_end"]):
        if value is not None and not math.isfinite(value):
            raise TAPTError(
                "Masked-LM pre-training diverged (non-finite loss): lower tapt_args.learning_rate."
            )
    return encoder, stats


# ---------------------------------------------------------------------- the run's step
def adapt_encoder(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    config: TAPTConfig,
    *,
    run_cache: str | os.PathLike,
    tokenizer_identity: str,
    text_column: str = "text",
    text_pair_column: str | None = None,
    max_length: int = 128,
    accelerator: str = "auto",
    progress: bool = False,
    rank: int | None = None,
) -> TAPTResult:
    """The adapted encoder for this pool, model and settings: reused from a cache when one
    holds it, else trained (on rank 0) and cached.

    Args:
        model: the run's model (hub id or directory, config or instance).
        tokenizer: the run's tokenizer.
        dataset: the pool (``datasets.Dataset`` with the text column(s)).
        config: the :class:`TAPTConfig` (``steps > 0``).
        run_cache: the run's cache directory (``<run_dir>/cache``).
        tokenizer_identity: a fingerprint of the tokenizer.
        text_column / text_pair_column / max_length: as in the run.
        accelerator: ``auto``/``gpu`` trains on CUDA when available.
        progress: show a progress bar while training.
        rank: this process's rank (default: from the launcher's environment).

    Returns:
        The :class:`TAPTResult`; ``result.path`` is the run's copy.
    """
    from energizer_hf.distributed import env_rank
    from energizer_hf.utils import dataset_fingerprint

    if config.steps <= 0:
        raise TAPTError("adapt_encoder needs tapt steps > 0.")
    rank = env_rank() if rank is None else rank
    columns = [text_column] + ([text_pair_column] if text_pair_column else [])
    fingerprint = tapt_fingerprint(
        pool_fingerprint=dataset_fingerprint(dataset),
        pool_rows=len(dataset),
        text_columns=columns,
        model=model_identity(model),
        tokenizer=tokenizer_identity,
        max_length=max_length,
        config=config,
    )
    key = _key(fingerprint)
    run_cache = Path(run_cache)
    run_copy = run_cache / RUN_CACHE_NAME
    if config.path:
        store, store_kind = Path(config.path).expanduser(), "tapt_args.path"
    else:
        root = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
        store, store_kind = root / key, "the shared cache"

    if rank != 0:
        return _wait_for_rank0(run_copy, fingerprint)

    meta = _check(run_copy, fingerprint, "the run's cache")
    if meta is not None:
        log.info("Task-adaptive pre-training: reusing the run's adapted encoder in %s.", run_copy)
        return TAPTResult(run_copy, "run", meta)
    (run_cache / ERROR_FILE).unlink(missing_ok=True)
    meta = _check(store, fingerprint, store_kind)
    if meta is not None:
        log.info("Task-adaptive pre-training: reusing the adapted encoder in %s.", store)
        _publish(store, run_copy)
        return TAPTResult(run_copy, "path" if config.path else "shared", meta)

    with _build_lock(store):
        meta = _check(store, fingerprint, store_kind, warn=False)  # built by another run meanwhile?
        if meta is not None:
            _publish(store, run_copy)
            return TAPTResult(run_copy, "path" if config.path else "shared", meta)
        meta, stats = _build(
            model, tokenizer, dataset, config, run_cache=run_cache, run_copy=run_copy, key=key,
            fingerprint=fingerprint, text_column=text_column, text_pair_column=text_pair_column,
            max_length=max_length, accelerator=accelerator, progress=progress,
        )
        try:
            _publish(run_copy, store)
        except OSError as err:  # a read-only or full shared cache must not fail the run
            warnings.warn(f"Could not store the adapted encoder in {store_kind} '{store}': {err}.", stacklevel=2)
    log.info(
        "Task-adaptive pre-training done in %.1f s (masked-LM loss %.3f -> %.3f); cached in %s.",
        stats["seconds"], stats["loss_start"] or float("nan"), stats["loss_end"] or float("nan"), store,
    )
    return TAPTResult(run_copy, "built", meta)


def _build(
    model: Any, tokenizer: Any, dataset: Any, config: TAPTConfig, *, run_cache: Path, run_copy: Path,
    key: str, fingerprint: dict[str, Any], text_column: str, text_pair_column: str | None,
    max_length: int, accelerator: str, progress: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train, save into the run's cache; on failure leave a marker for the other ranks."""
    from energizer_hf.data import tokenize_dataset
    from energizer_hf.utils import atomic_write_json

    try:
        run_cache.mkdir(parents=True, exist_ok=True)
        tokenized = tokenize_dataset(
            dataset,
            tokenizer,
            text_column,
            text_pair_column=text_pair_column,
            max_length=max_length,
            cache_file=str(run_cache / f"tapt-tokens-{key}.arrow"),
            progress=progress,
        )
        log.info("Task-adaptive pre-training: %d masked-LM steps on %d pool rows.", config.steps, len(dataset))
        encoder, stats = train_masked_lm(
            model, tokenizer, tokenized, config, device=_device(accelerator), progress=progress
        )
        build = Path(tempfile.mkdtemp(prefix=".tapt-build.", dir=run_cache))
        try:
            encoder.save_pretrained(str(build))
            meta = {"fingerprint": fingerprint, "key": key, "created": time.time(), **stats}
            atomic_write_json(build / META_FILE, meta)
            _publish(build, run_copy)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    except BaseException as err:
        atomic_write_json(run_cache / ERROR_FILE, {"error": f"{type(err).__name__}: {err}"})
        raise
    return meta, stats


def _wait_for_rank0(run_copy: Path, fingerprint: dict[str, Any]) -> TAPTResult:
    """Ranks > 0: wait until rank 0 has put this fingerprint's encoder in the run's cache."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    error_file = run_copy.parent / ERROR_FILE
    delay = 0.05
    while True:
        meta = _read_meta(run_copy)
        if meta is not None and not _differences(meta, fingerprint):
            return TAPTResult(run_copy, "run", meta)
        if error_file.exists():
            try:
                info = json.loads(error_file.read_text())
            except (OSError, json.JSONDecodeError):
                info = {}
            if info:
                raise TAPTError(f"Task-adaptive pre-training failed on rank 0: {info.get('error')}")
        if time.monotonic() > deadline:
            raise TAPTError(
                f"Rank 0 did not finish task-adaptive pre-training within {WAIT_TIMEOUT_S:.0f} s "
                f"(nothing in {run_copy})."
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def adapted_model_spec(model: Any, adapted: str | os.PathLike) -> Any:
    """What the run builds its classifier from after TAPT: the adapted directory for a hub
    id, a directory or a config (``from_pretrained`` then adds a fresh head); for a model
    instance, a copy of it with the adapted encoder weights (its own head kept)."""
    from transformers import AutoModel, PreTrainedModel

    if isinstance(model, PreTrainedModel):
        clone = copy.deepcopy(model)
        encoder = AutoModel.from_pretrained(str(adapted))
        _load_base(clone.base_model, encoder.state_dict(), type(clone).__name__)
        return clone
    return str(adapted)
