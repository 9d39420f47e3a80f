"""Lightning backend of the loop: a fresh ``pl.Trainer`` per fit, the same model throughout."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from energizer_hf.errors import EmptyPoolError
from energizer_hf.pool import ActivePool
from energizer_hf.utils import round_seed

__all__ = ["KeepBestWeights", "LightningBackend"]


class KeepBestWeights(pl.Callback):
    """Keep the weights of the best validation epoch in memory; restore them at fit end.

    Model selection without checkpoint files: cheap for the small models of AL rounds.
    """

    def __init__(self, monitor: str = "val/f1_macro", mode: str = "max") -> None:
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.best, self.best_state = None, None

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

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)


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

    Args:
        model: the ``LightningModule`` to train (the strategy's ``model``).
        data: a data adapter (:class:`~energizer_hf.data.TorchDataAdapter` or
            :class:`~energizer_hf.data.HFDataAdapter`).
        trainer_kwargs: arguments of every per-round ``pl.Trainer``.
        reset_weights: restore the initial weights before each fit.
        seed: the run's seed (shuffling of training batches per round).
        callbacks_factory: returns fresh callbacks for each round's Trainer.
        quiet: silence Lightning's per-Trainer info logs.
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
    ) -> None:
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
        self._initial_state = copy.deepcopy(model.state_dict())
        self.last_trainer: pl.Trainer | None = None

    def _trainer(self) -> pl.Trainer:
        kwargs = dict(self.trainer_kwargs)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if self.callbacks_factory is not None:
            callbacks += self.callbacks_factory()
        with _quiet_lightning(self.quiet):
            trainer = pl.Trainer(callbacks=callbacks, **kwargs)
        self.last_trainer = trainer
        return trainer

    def fit(self, pool: ActivePool, round: int) -> dict[str, float]:
        if pool.train_ids.size == 0:
            raise EmptyPoolError(
                "There are no labelled training rows to fit on (all labelled rows went to "
                "validation?): lower validation_perc or label more rows."
            )
        if self.reset_weights:
            self.model.load_state_dict(self._initial_state)
        # from_pretrained models and a previous round's scoring leave modules in eval mode;
        # Lightning keeps module modes as they are, so dropout would silently stay off.
        self.model.train()
        train = self.data.train_loader(pool, seed=round_seed(self.seed, round))
        val = self.data.val_loader(pool)
        trainer = self._trainer()
        with _quiet_lightning(self.quiet):
            trainer.fit(self.model, train_dataloaders=train, val_dataloaders=val)
        out = {}
        for key, value in trainer.callback_metrics.items():
            if key.startswith("val") or key.startswith("train"):
                out[key] = _to_float(value)
        for cb in trainer.callbacks:
            if isinstance(cb, KeepBestWeights) and cb.best is not None:
                out[f"best_{cb.monitor}"] = cb.best
        out["epochs"] = int(trainer.current_epoch)
        return out

    def has_test_data(self) -> bool:
        return self.data.test_loader() is not None

    def test(self, round: int) -> dict[str, float]:
        loader = self.data.test_loader()
        trainer = self._trainer()
        with _quiet_lightning(self.quiet):
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
