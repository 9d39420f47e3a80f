"""Lightning controls on the HF-native path: trainer arguments, loggers, callbacks, a fit bar.

* :func:`check_trainer_kwargs` validates ``pl.Trainer`` arguments given to
  :class:`~energizer_hf.learner.ActiveLearner` (``trainer_kwargs`` or keyword arguments):
  unknown names (with the closest ``pl.Trainer`` argument) and arguments the loop owns
  raise :class:`~energizer_hf.errors.TrainerArgumentError`.
* :func:`build_from_spec` turns YAML specs (``logger: csv``, ``{class_path: ..., init_args:
  ...}``) into Lightning loggers and callbacks.
* :class:`RoundPrefixLogger` wraps a user's logger for the per-round Trainers: each round's
  fit curves go under ``round_NNN/`` (e.g. ``round_003/train/loss``); its test metrics are
  not logged at the test Trainer's step 0 but by :class:`RoundSeriesLogger`, a loop callback
  that logs one point per round under ``al/`` (``al/test/accuracy``, ``al/num_labelled``,
  ...) with the labelled count as step: one series per metric, monotone in the step.
* :class:`FitProgressBar`: a tqdm bar per fit (epoch, step, loss) under the rounds bar.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import Logger

from energizer_hf.errors import TrainerArgumentError

__all__ = [
    "FitProgressBar",
    "RoundPrefixLogger",
    "RoundSeriesLogger",
    "build_from_spec",
    "check_trainer_kwargs",
    "split_callbacks",
    "trainer_argument_names",
    "wrap_loggers",
]

# pl.Trainer arguments the loop sets itself, and what to use instead.
LOOP_OWNED = {
    "max_epochs": "set RunConfig.max_epochs (with min_steps, the fit schedule sizes each round's epochs)",
    "min_epochs": "the fit schedule sizes each round's epochs: set RunConfig.max_epochs / min_steps",
    "max_steps": "the fit schedule sizes each round's steps: set RunConfig.min_steps / max_epochs",
    "min_steps": "set RunConfig.min_steps (a floor on the optimizer steps of every fit)",
    "check_val_every_n_epoch": "the fit schedule validates about 10 times per fit when it selects",
    "num_sanity_val_steps": "the loop runs no sanity validation",
}
# pl.Trainer arguments that are RunConfig fields: given in both places they must agree.
CONFIG_FIELDS = {
    "accelerator": "accelerator",
    "devices": "devices",
    "precision": "precision",
    "strategy": "lightning_strategy",
}
# Trainer arguments that do not change what a run computes (left out of the run's identity).
NON_SEMANTIC_TRAINER_KWARGS = {
    "logger", "callbacks", "enable_progress_bar", "enable_model_summary", "default_root_dir",
    "log_every_n_steps", "profiler", "enable_checkpointing", "barebones",
}
_SHORT_LOGGERS = {
    "csv": "pytorch_lightning.loggers.CSVLogger",
    "tensorboard": "pytorch_lightning.loggers.TensorBoardLogger",
    "wandb": "pytorch_lightning.loggers.WandbLogger",
    "mlflow": "pytorch_lightning.loggers.MLFlowLogger",
}


def trainer_argument_names() -> list[str]:
    """The keyword arguments of ``pl.Trainer``."""
    params = inspect.signature(pl.Trainer.__init__).parameters
    return [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest of ``candidates`` to ``name`` (difflib), or ``None``."""
    hits = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return hits[0] if hits else None


def check_trainer_kwargs(kwargs: dict[str, Any], config: Any = None, defaults: Any = None) -> dict[str, Any]:
    """Validate ``pl.Trainer`` arguments for the loop's per-round Trainers.

    Args:
        kwargs: the arguments.
        config: the run's :class:`~energizer_hf.learner.RunConfig` (conflicts with its
            fields are checked when given).
        defaults: a default ``RunConfig``: a field at its default value yields to the
            trainer argument.

    Returns:
        The arguments, with ``accelerator``/``devices``/``precision``/``strategy`` moved
        out (they are RunConfig fields: the caller applies them).

    Raises:
        TrainerArgumentError: an unknown argument (naming the closest ``pl.Trainer``
            argument), an argument the loop sets, a RunConfig field given twice with two
            values, or ``limit_train_batches=0``.
    """
    names = trainer_argument_names()
    out = dict(kwargs)
    for key in list(out):
        if key not in names:
            hint = closest(key, names)
            raise TrainerArgumentError(
                f"trainer_kwargs has {key!r}, which is not a pytorch_lightning.Trainer argument"
                + (f": did you mean {hint!r}?" if hint else ".")
            )
        if key in LOOP_OWNED:
            raise TrainerArgumentError(
                f"trainer_kwargs sets {key!r}, which the active-learning loop controls: {LOOP_OWNED[key]}."
            )
    ltb = out.get("limit_train_batches")
    if ltb is not None and not isinstance(ltb, bool) and float(ltb) == 0:
        raise TrainerArgumentError(
            "trainer_kwargs has limit_train_batches=0: every round would fit on nothing. Remove "
            "it (or give a fraction / a number of batches > 0)."
        )
    if config is not None:
        for key, field in CONFIG_FIELDS.items():
            if key not in out:
                continue
            mine = getattr(config, field)
            default = getattr(defaults, field) if defaults is not None else None
            if mine != default and str(mine) != str(out[key]):
                raise TrainerArgumentError(
                    f"{key} is given twice: RunConfig.{field}={mine!r} and trainer_kwargs {key}="
                    f"{out[key]!r}. Give it once."
                )
    return out


def build_from_spec(spec: Any, save_dir: str | Path | None = None) -> Any:
    """A Lightning object from a YAML-friendly spec, or the object itself.

    ``"csv"``, ``"tensorboard"``, ``"wandb"``, ``"mlflow"``: that Lightning logger (saving
    under ``save_dir``); ``{"class_path": "pkg.mod.Class", "init_args": {...}}``: that class
    built with those arguments; a list: each item; anything else is returned as is.

    Raises:
        TrainerArgumentError: an unknown short name or a class path that cannot be imported.
    """
    if isinstance(spec, list):
        return [build_from_spec(s, save_dir) for s in spec]
    if isinstance(spec, str):
        path = _SHORT_LOGGERS.get(spec.lower())
        if path is None:
            raise TrainerArgumentError(
                f"Unknown logger {spec!r}: use one of {', '.join(sorted(_SHORT_LOGGERS))}, or "
                "{class_path: ..., init_args: {...}}."
            )
        cls = _import(path)
        kwargs: dict[str, Any] = {}
        if "save_dir" in inspect.signature(cls.__init__).parameters and save_dir is not None:
            kwargs["save_dir"] = str(save_dir)
        return cls(**kwargs)
    if isinstance(spec, dict) and "class_path" in spec:
        extra = sorted(set(spec) - {"class_path", "init_args"})
        if extra:
            raise TrainerArgumentError(f"A class spec takes class_path and init_args only, got {extra}.")
        return _import(spec["class_path"])(**dict(spec.get("init_args") or {}))
    return spec


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise TrainerArgumentError(f"Cannot import {path!r}: {err}") from err


def split_callbacks(callbacks: Sequence[Any] | None) -> tuple[list[pl.Callback], list[Any]]:
    """Split ``callbacks`` into Lightning callbacks (given to every fit's Trainer) and loop
    callbacks (every other object: the loop calls its ``on_round_start`` /
    ``on_round_end`` when it has them); a Lightning callback with a loop hook is both."""
    lightning, loop = [], []
    for cb in callbacks or ():
        if isinstance(cb, pl.Callback):
            lightning.append(cb)
            if callable(getattr(cb, "on_round_end", None)) or callable(getattr(cb, "on_round_start", None)):
                loop.append(cb)
        else:
            loop.append(cb)
    return lightning, loop


# ---------------------------------------------------------------------- loggers
class RoundPrefixLogger(Logger):
    """A user's logger seen by the per-round Trainers.

    During a round's fit, metrics go to the wrapped logger as ``round_NNN/<name>`` at the
    fit's own step; metrics of the test Trainer are dropped (the round's record carries
    them, logged by :class:`RoundSeriesLogger`). Hyper-parameters are logged once;
    ``finalize`` between rounds only saves (call :meth:`close` at the end).
    """

    def __init__(self, logger: Logger) -> None:
        super().__init__()
        self.inner = logger
        self.round = 0
        self.phase = "fit"
        self._hparams_logged = False

    @property
    def name(self) -> str | None:
        return self.inner.name

    @property
    def version(self) -> Any:
        return self.inner.version

    @property
    def save_dir(self) -> str | None:
        return self.inner.save_dir

    @property
    def log_dir(self) -> str | None:
        return getattr(self.inner, "log_dir", None)

    @property
    def root_dir(self) -> str | None:
        return getattr(self.inner, "root_dir", None)

    @property
    def experiment(self) -> Any:
        return self.inner.experiment

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.phase != "fit":
            return
        prefix = f"round_{self.round:03d}/"
        self.inner.log_metrics({prefix + k: v for k, v in metrics.items()}, step=step)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if not self._hparams_logged:
            self._hparams_logged = True
            self.inner.log_hyperparams(params, *args, **kwargs)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        pass

    def save(self) -> None:
        self.inner.save()

    def finalize(self, status: str) -> None:  # a Trainer ended: the run has not
        self.inner.save()

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self.inner.after_save_checkpoint(checkpoint_callback)

    def close(self, status: str = "success") -> None:
        self.inner.finalize(status)


def wrap_loggers(logger: Any) -> list[RoundPrefixLogger]:
    """The round wrappers of a ``logger`` Trainer argument (a logger, a list, bool/None)."""
    if logger is None or isinstance(logger, bool):
        return []
    loggers = list(logger) if isinstance(logger, (list, tuple)) else [logger]
    out = []
    for lg in loggers:
        if isinstance(lg, RoundPrefixLogger):
            out.append(lg)
        elif isinstance(lg, Logger):
            out.append(RoundPrefixLogger(lg))
        else:
            raise TrainerArgumentError(
                f"logger must be a pytorch_lightning Logger (or a list of them), got {type(lg).__name__}."
            )
    return out


class RoundSeriesLogger:
    """A loop callback: one point per round in every wrapped logger, under ``al/``.

    Every numeric field of the round record (``test/accuracy``, ``num_labelled``,
    ``time_fit``, ...) becomes ``al/<field>`` logged at ``step = num_labelled`` (monotone:
    labels only accumulate). With W&B the ``al/*`` series also get ``al/num_labelled`` as
    their x-axis.
    """

    def __init__(self, loggers: Sequence[RoundPrefixLogger]) -> None:
        self.loggers = list(loggers)
        self._defined = False

    def on_round_end(self, loop: Any, record: dict[str, Any]) -> None:
        if not getattr(loop, "is_writer", True):
            return
        metrics = {
            f"al/{k}": float(v)
            for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        step = int(record.get("num_labelled", record.get("round", 0)))
        for lg in self.loggers:
            if not self._defined:
                define = getattr(getattr(lg.inner, "experiment", None), "define_metric", None)
                if callable(define) and type(lg.inner).__name__ == "WandbLogger":
                    define("al/*", step_metric="al/num_labelled")
            lg.inner.log_metrics(metrics, step=step)
            lg.inner.save()
        self._defined = True


# ---------------------------------------------------------------------- progress
class FitProgressBar(pl.Callback):
    """A tqdm bar over one fit's optimizer steps (epoch, step, loss), under the rounds bar."""

    def __init__(self, round: int = 0, position: int = 1) -> None:
        self.round = round
        self.position = position
        self.bar: Any = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from tqdm.auto import tqdm

        total = int(trainer.estimated_stepping_batches)
        self.bar = tqdm(
            total=total if total > 0 and math.isfinite(total) else None, position=self.position,
            leave=False, desc=f"fit round {self.round}", unit="step", dynamic_ncols=True,
        )

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.bar is None:
            return
        self.bar.n = int(trainer.global_step)
        loss = trainer.callback_metrics.get("train/loss")
        post = {"epoch": f"{trainer.current_epoch + 1}/{trainer.max_epochs}"}
        if loss is not None:
            post["loss"] = f"{float(loss):.4f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
