"""Lightning backend of the loop: a fresh ``pl.Trainer`` per fit, the same model throughout."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from energizer_hf.errors import EmptyPoolError, EnergizerError
from energizer_hf.pool import ActivePool
from energizer_hf.schedule import FitPlan, FitSchedule
from energizer_hf.utils import round_seed

__all__ = ["KeepBestWeights", "LightningBackend"]


class KeepBestWeights(pl.Callback):
    """Keep the weights of the best validation epoch in memory; restore them at fit end.

    Model selection without checkpoint files: cheap for the small models of AL rounds.
    Settings a module tunes on validation and names in ``selected_with_weights`` (e.g. a
    multi-label ``threshold``) are kept and restored with the weights they were tuned for.
    """

    def __init__(self, monitor: str = "val/f1_macro", mode: str = "max") -> None:
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_attrs: dict[str, object] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.best, self.best_state, self.best_attrs = None, None, {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        better = (
            self.best is None
            or (self.mode == "max" and value > self.best)
            or (self.mode == "min" and value < self.best)
        )
        if better:
            self.best = value
            self.best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            self.best_attrs = {a: getattr(pl_module, a) for a in getattr(pl_module, "selected_with_weights", ())}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)
            for name, value in self.best_attrs.items():
                setattr(pl_module, name, value)



@contextmanager
def _interrupt_as_keyboard_interrupt(trainer: pl.Trainer) -> Any:
    """Ctrl-C during a Lightning call stays a ``KeyboardInterrupt``.

    Lightning catches it, ignores SIGINT from then on and calls ``sys.exit(1)``: a run
    would end with status 1 and no word. Here the interruption is raised again (the
    command line turns it into one line and status 130) and the SIGINT handler restored.
    """
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    except SystemExit:
        if getattr(trainer, "interrupted", False):
            raise KeyboardInterrupt from None
        raise
    finally:
        if main and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)

@contextmanager
def _quiet_lightning(enabled: bool):
    """Silence Lightning's per-Trainer info lines and small-data warnings."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for msg in (
            ".*does not have many workers.*",
            ".*smaller than the logging interval.*",
            ".*persistent_workers.*",
            ".*`training_step` returned `None`.*",
            ".*but have no `val_dataloader`.*",
            ".*LeafSpec.*is deprecated.*",
        ):
            warnings.filterwarnings("ignore", message=msg)
        try:
            yield
        finally:
            for lg, lvl in zip(loggers, levels):
                lg.setLevel(lvl)


class LightningBackend:
    """Fits and tests a ``LightningModule`` with a new ``pl.Trainer`` each round.

    A new Trainer per fit restarts epochs and optimisers cleanly; the model object is the
    same throughout, reset to its initial weights before each fit when ``reset_weights``.

    With a ``schedule`` (the HF-native path) each fit is sized from the labelled set
    (:class:`~energizer_hf.schedule.FitSchedule`: epochs, validation cadence, model
    selection); without one (the seed API) the Trainer arguments are used as given. User
    loggers in ``trainer_kwargs`` are wrapped so that each round's fit curves go under
    ``round_NNN/`` (:class:`~energizer_hf.controls.RoundPrefixLogger`).

    Args:
        model: the ``LightningModule`` to train (the strategy's ``model``).
        data: a data adapter (:class:`~energizer_hf.data.TorchDataAdapter` or
            :class:`~energizer_hf.data.HFDataAdapter`).
        trainer_kwargs: arguments of every per-round ``pl.Trainer``.
        reset_weights: restore the initial weights before each fit.
        seed: the run's seed (shuffling of training batches per round).
        callbacks_factory: returns fresh callbacks for each round's Trainer.
        quiet: silence Lightning's per-Trainer info logs.
        schedule: sizes each fit from the labelled set (``None``: the Trainer arguments).
        early_stopping_patience: with a schedule that selects on validation data, stop
            after this many validation passes without gain (0: off).
        monitor: the validation metric of model selection (maximised).
        class_weights: ``"balanced"`` (inverse class frequency of each fit's training
            rows; the tags of their words for token classification; per-label positive
            weights for multi-label), ``"sqrt_balanced"`` (the square root of those), a list
            of per-class weights, or ``None``: the loss weights of a module
            with a ``class_weights`` attribute.
        fit_progress: show a progress bar per fit.
    """

    def __init__(
        self,
        model: pl.LightningModule,
        data: Any,
        trainer_kwargs: dict[str, Any],
        *,
        reset_weights: bool = True,
        seed: int = 0,
        callbacks_factory: Callable[[], list[pl.Callback]] | None = None,
        quiet: bool = False,
        pool_batch_size: int | None = None,
        pool_max_tokens: int | None = None,
        scoring_precision: str = "auto",
        scoring_timeout: float = 600.0,
        num_classes: int | None = None,
        schedule: FitSchedule | None = None,
        early_stopping_patience: int = 0,
        monitor: str = "val/f1_macro",
        class_weights: str | list[float] | None = None,
        fit_progress: bool = False,
    ) -> None:
        from energizer_hf.controls import wrap_loggers

        self.model = model
        self.data = data
        self.trainer_kwargs = dict(trainer_kwargs)
        self.reset_weights = reset_weights
        self.seed = seed
        self.callbacks_factory = callbacks_factory
        self.quiet = quiet
        self.pool_batch_size = pool_batch_size
        self.pool_max_tokens = pool_max_tokens
        self.scoring_precision = scoring_precision
        self.scoring_timeout = scoring_timeout
        self.num_classes = num_classes
        self.schedule = schedule
        self.early_stopping_patience = early_stopping_patience
        self.monitor = monitor
        self.class_weights = class_weights
        self.fit_progress = fit_progress
        self.round_loggers = wrap_loggers(self.trainer_kwargs.get("logger"))
        if self.round_loggers:
            self.trainer_kwargs["logger"] = list(self.round_loggers)
        self._initial_state = copy.deepcopy(model.state_dict())
        self.last_trainer: pl.Trainer | None = None
        self.last_plan: FitPlan | None = None

    def _trainer(
        self, overrides: dict[str, Any] | None = None, extra_callbacks: list[pl.Callback] | None = None
    ) -> pl.Trainer:
        kwargs = dict(self.trainer_kwargs)
        kwargs.update(overrides or {})
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if self.callbacks_factory is not None:
            callbacks += self.callbacks_factory()
        callbacks += list(extra_callbacks or [])
        with _quiet_lightning(self.quiet):
            trainer = pl.Trainer(callbacks=callbacks, **kwargs)
        self.last_trainer = trainer
        return trainer

    def _set_phase(self, round: int, phase: str) -> None:
        for lg in self.round_loggers:
            lg.round, lg.phase = round, phase

    def plan(self, pool: ActivePool) -> FitPlan | None:
        """The schedule's plan for a fit on the pool's labelled rows (``None``: no schedule)."""
        if self.schedule is None:
            return None
        accumulate = self.trainer_kwargs.get("accumulate_grad_batches", 1)
        # a dataset's own validation split (HFDataAdapter.validation) is never trained on
        own_split = getattr(self.data, "validation", None) is not None
        count = getattr(self.data, "num_validation", None)
        return self.schedule.plan(
            int(pool.train_ids.size),
            int(getattr(self.data, "batch_size", 1)),
            num_validation=int(count(pool)) if callable(count) else int(pool.validation_ids.size),
            num_classes=self.num_classes,
            accumulate_grad_batches=accumulate if isinstance(accumulate, int) else 1,
            trainable_validation=not own_split,
        )

    def _apply_class_weights(self, labels: np.ndarray, multi_hot: bool = False) -> None:
        if self.class_weights is None or not hasattr(self.model, "class_weights"):
            return
        if multi_hot:  # one sigmoid per label: "balanced" is each label's negatives / positives
            n = labels.shape[1]
            if isinstance(self.class_weights, str):
                from energizer_hf.functional import balanced_pos_weights

                weights = balanced_pos_weights(labels)
                self.model.class_weights = weights.sqrt() if self.class_weights == "sqrt_balanced" else weights
                return
        else:
            n = int(self.num_classes or (labels.max() + 1 if labels.size else 0))
        if isinstance(self.class_weights, str):
            from energizer_hf.functional import balanced_class_weights

            weights = balanced_class_weights(labels, n)
            if self.class_weights == "sqrt_balanced":  # tempered: the square root of the balanced weights
                weights = weights.sqrt()
        else:
            weights = torch.as_tensor(self.class_weights, dtype=torch.float32)
            if weights.numel() != n:
                raise EnergizerError(
                    f"class_weights has {weights.numel()} weights but the data has {n} classes."
                )
        self.model.class_weights = weights

    def fit(self, pool: ActivePool, round: int) -> dict[str, float]:
        plan = self.plan(pool)
        self.last_plan = plan
        train_on_val = plan is not None and plan.train_on_validation
        if pool.train_ids.size == 0 and not train_on_val:
            raise EmptyPoolError(
                "There are no labelled training rows to fit on (all labelled rows went to "
                "validation?): lower validation_perc or label more rows."
            )
        if self.reset_weights:
            self.model.load_state_dict(self._initial_state)
        # from_pretrained models and a previous round's scoring leave modules in eval mode;
        # Lightning keeps module modes as they are, so dropout would silently stay off.
        self.model.train()
        seed = round_seed(self.seed, round)
        overrides: dict[str, Any] = {}
        extra: list[pl.Callback] = []
        if train_on_val:  # too few held-out rows to select on: train on them
            ids = np.concatenate([pool.train_ids, pool.validation_ids])
            train, val = self.data.train_loader(pool, seed=seed, ids=ids), None
        else:
            ids = pool.train_ids
            train, val = self.data.train_loader(pool, seed=seed), self.data.val_loader(pool)
        if plan is not None:
            overrides = {"max_epochs": plan.max_epochs, "check_val_every_n_epoch": plan.check_val_every_n_epoch}
            if plan.select_best:
                extra.append(KeepBestWeights(self.monitor, "max"))
                if self.early_stopping_patience > 0:
                    from pytorch_lightning.callbacks import EarlyStopping

                    extra.append(EarlyStopping(self.monitor, mode="max", patience=self.early_stopping_patience))
        if self.fit_progress:
            from energizer_hf.controls import FitProgressBar

            extra.append(FitProgressBar(round))
        if self.class_weights is not None:
            store = getattr(pool, "label_store", None)
            rows = store.rows(ids) if store is not None and hasattr(store, "rows") else None
            multi_hot = isinstance(rows, np.ndarray) and rows.ndim == 2  # a multi-label store
            if store is not None and hasattr(store, "word_tags"):  # token classification: the words' tags
                tags = store.word_tags(np.sort(ids))
                labels = np.concatenate(tags) if tags else np.zeros(0, np.int64)
            else:
                labels = rows if multi_hot else pool.labels[ids]
            self._apply_class_weights(labels, multi_hot=multi_hot)
        self._set_phase(round, "fit")
        trainer = self._trainer(overrides, extra)
        with _quiet_lightning(self.quiet), _interrupt_as_keyboard_interrupt(trainer):
            trainer.fit(self.model, train_dataloaders=train, val_dataloaders=val)
        out = {}
        for key, value in trainer.callback_metrics.items():
            if key.startswith("val") or key.startswith("train"):
                out[key] = _to_float(value)
        for cb in trainer.callbacks:
            if isinstance(cb, KeepBestWeights) and cb.best is not None:
                out[f"best_{cb.monitor}"] = cb.best
        out["epochs"] = int(trainer.current_epoch)
        out["steps"] = int(trainer.global_step)
        return out

    def has_test_data(self) -> bool:
        return self.data.test_loader() is not None

    def test(self, round: int) -> dict[str, float]:
        loader = self.data.test_loader()
        self._set_phase(round, "test")
        trainer = self._trainer()
        with _quiet_lightning(self.quiet), _interrupt_as_keyboard_interrupt(trainer):
            results = trainer.test(self.model, dataloaders=loader, verbose=False)
        out: dict[str, float] = {}
        for res in results:
            for key, value in res.items():
                out[key if key.startswith("test") else f"test/{key}"] = _to_float(value)
        return out

    def make_scorer(self, exchange_dir: Path | None, progress: bool = False) -> Any:
        """The pool scorer for this backend's data, device and precision."""
        from energizer_hf.scoring import PoolScorer

        return PoolScorer(
            self.data,
            batch_size=self.pool_batch_size or self.data.pool_batch_size,
            max_tokens=self.pool_max_tokens,
            device=self.scoring_device(),
            precision=self.scoring_precision,
            exchange_dir=exchange_dir,
            progress=progress,
            timeout=self.scoring_timeout,
            num_classes=self.num_classes,
        )

    def scoring_device(self) -> torch.device:
        accelerator = str(self.trainer_kwargs.get("accelerator", "auto"))
        if torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda"):
            return torch.device("cuda")
        return torch.device("cpu")

    def save_model_state(self, path: Path) -> None:
        import io

        from energizer_hf.utils import atomic_write_bytes

        buf = io.BytesIO()
        torch.save(self.model.state_dict(), buf)
        atomic_write_bytes(path, buf.getvalue())

    def load_model_state(self, path: Path) -> None:
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu().item())
    return float(value)
