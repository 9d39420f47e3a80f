"""The seed API: ``Trainer(pl.Trainer).active_fit`` and ``ActiveDataModule``.

The seed face reaches every engine feature of the HF-native path, under the same names as
:class:`~energizer_hf.learner.RunConfig` and :class:`~energizer_hf.loop.LoopSettings`:
``max_rounds`` (``max_labelling_epochs`` is the seed API's name for it), stopping
criteria, the initial set's sampling, round revisions (local, and on the Hub with
``hub_repo_id``) and the final model under ``<run_dir>/final_model``.

>>> from energizer_hf import Trainer
>>> trainer = Trainer(max_labelling_epochs=2, query_size=10, max_epochs=1,
...                   enable_progress_bar=False)
>>> trainer.query_size, trainer.max_rounds
(10, 2)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from energizer_hf.data import TorchDataAdapter
from energizer_hf.errors import BudgetError, EnergizerError
from energizer_hf.fitting import LightningBackend
from energizer_hf.loop import ActiveLoop, LoopSettings
from energizer_hf.oracles.base import Oracle, SimulatedOracle
from energizer_hf.pool import ActivePool
from energizer_hf.query_strategies.base import Strategy
from energizer_hf.results import RoundResults
from energizer_hf.revisions.base import DEFAULT_RUN_BRANCH
from energizer_hf.run import RunDir
from energizer_hf.stopping import criteria_from_config

_UNSET: Any = object()

__all__ = ["ActiveDataModule", "Trainer"]


class ActiveDataModule(pl.LightningDataModule):
    """A pool built from a training DataLoader, plus fixed validation and test loaders.

    The training loader's dataset is the pool (a map-style dataset or a
    ``datasets.Dataset``); its batch size, collate function and workers are re-used for
    every round. Label an initial set with :meth:`label` before ``active_fit`` (otherwise
    the first round labels ``query_size`` random rows).

    Args:
        train_dataloader: the pool.
        val_dataloader: fixed validation data (optional).
        test_dataloader: fixed test data (optional).
        labels: the true label of every pool row, when known, for label statistics and the
            stratified initial set; for multi-label data an ``(N, L)`` multi-hot array (the
            pool then keeps the label sets, which ``mmc`` fits its cardinality model on).
        label_names: the names of the label ids (of the ``L`` labels of multi-hot
            ``labels``: default ``"0"`` ... ``"L-1"``), used in the records.
    """

    def __init__(
        self,
        train_dataloader: DataLoader,
        val_dataloader: DataLoader | None = None,
        test_dataloader: DataLoader | None = None,
        *,
        labels: np.ndarray | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(train_dataloader, DataLoader):
            raise EnergizerError(
                "ActiveDataModule takes the pool as a torch DataLoader (its dataset is the "
                f"pool), got {type(train_dataloader).__name__}."
            )
        self.adapter = TorchDataAdapter(train_dataloader, val_dataloader, test_dataloader)
        self.true_labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        store = None
        if self.true_labels is not None and self.true_labels.ndim == 2:  # multi-hot label sets
            from energizer_hf.tasks.multi_label import MultiLabelStore

            n, width = self.true_labels.shape
            if n != len(train_dataloader.dataset):
                raise EnergizerError(
                    f"labels has {n} rows for a pool of {len(train_dataloader.dataset)}: give one label set per row."
                )
            self.label_names = self.label_names or [str(i) for i in range(width)]
            if len(self.label_names) != width:
                raise EnergizerError(f"label_names has {len(self.label_names)} names for {width} label columns.")
            store = MultiLabelStore(self.label_names, n, allow_empty=True)
        self.pool = ActivePool(train_dataloader.dataset, label_store=store)

    def label(self, ids: Any, labels: Any = None, round: int = 0) -> None:
        """Mark pool ids as labelled (by default in round 0, the initial set)."""
        if labels is None and self.true_labels is not None:
            labels = self.true_labels[np.asarray(ids, dtype=np.int64)]
        self.pool.label(ids, labels, round=round)

    # LightningDataModule interface, for users who fit on the current labelled set.
    def train_dataloader(self) -> DataLoader:
        return self.adapter.train_loader(self.pool, seed=0)

    def val_dataloader(self) -> DataLoader | list:
        return self.adapter.val_loader(self.pool) or []

    def test_dataloader(self) -> DataLoader | list:
        return self.adapter.test_loader() or []

    @property
    def train_size(self) -> int:
        return self.pool.train_ids.size

    @property
    def pool_size(self) -> int:
        return self.pool.num_unlabelled


class Trainer(pl.Trainer):
    """A ``pl.Trainer`` that also runs active learning with :meth:`active_fit`.

    Args:
        max_labelling_epochs: the seed API's name of ``max_rounds``: number of query rounds
            (``-1``: until the budget, the stopping criteria or the pool end the run).
        max_rounds: number of query rounds (``None``: no limit), the name
            :class:`~energizer_hf.learner.RunConfig` and :class:`~energizer_hf.loop.LoopSettings`
            use; give it or ``max_labelling_epochs``, not both.
        query_size: examples labelled per round.
        test_after_labelling: test after each round's fit when test data is given.
        total_budget: stop once this many examples are labelled (initial set included);
            ``-1`` for no budget.
        reset_weights: reset the model to its initial weights before each round's fit.
        validation_perc: fraction of each round's labels held out for validation (when no
            validation loader is given).
        initial_size: size of the initial set when nothing is labelled yet (default
            ``query_size``).
        initial_strategy: ``"stratified"`` (the default: per class when the datamodule
            knows the true labels, random otherwise), ``"random"`` or a cold-start
            strategy name (``"cold_start_kmeans"``, ...; the model needs an ``embed`` hook).
        initial_ids: the initial labelled set as pool ids (replaces ``initial_size`` and
            ``initial_strategy``): start from the seed set of another tool or paper.
        stopping_criteria: :mod:`energizer_hf.stopping` criteria (objects, names or
            ``{name: ..., **params}``) asked before each query.
        seed: seeds each round's fit, the query and the splits.
        run_dir: where the label state and ``rounds.jsonl`` live; an existing run with the
            same configuration is resumed. Default: a new folder under
            ``default_root_dir/energizer_runs``.
        minority_class: the class whose test F1 (``test/minority_f1``, when the model logs
            ``test/f1/<class name>`` or ``test/f1_class_<id>``) and selected share are
            recorded; default: the rarest
            class of the datamodule's true labels.
        hub_repo_id / hub_branch / hub_private: push each round to a Hub dataset repository
            (as :class:`~energizer_hf.learner.RunConfig`); every round is kept under
            ``<run_dir>/revisions`` anyway.
        **kwargs: any ``pytorch_lightning.Trainer`` argument, used for every round's fit.
            Checkpointing and the logger are off unless you pass them. A logger gets each
            round's fit curves under ``round_NNN/`` and one point per round under ``al/``
            (step: the labelled count); your module trains exactly as written.
    """

    def __init__(
        self,
        max_labelling_epochs: int = 1,
        query_size: int = 2,
        test_after_labelling: bool = True,
        total_budget: int = -1,
        reset_weights: bool = True,
        validation_perc: float = 0.0,
        initial_size: int | None = None,
        seed: int = 0,
        run_dir: str | Path | None = None,
        progress: bool | None = None,
        minority_class: int | None = None,
        *,
        max_rounds: int | None = _UNSET,
        initial_strategy: str = "stratified",
        initial_ids: Any = None,
        stopping_criteria: Any = (),
        hub_repo_id: str | None = None,
        hub_branch: str = DEFAULT_RUN_BRANCH,
        hub_private: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("enable_checkpointing", False)
        kwargs.setdefault("logger", False)
        self._round_trainer_kwargs = dict(kwargs)
        super().__init__(**kwargs)
        if max_rounds is _UNSET:
            max_rounds = None if max_labelling_epochs is None or max_labelling_epochs < 0 else max_labelling_epochs
        elif max_labelling_epochs != 1:  # 1 is the default: only an explicit value conflicts
            raise BudgetError(
                "Give max_rounds or max_labelling_epochs (the seed API's name of the same "
                "number), not both."
            )
        criteria = stopping_criteria
        if isinstance(criteria, (str, dict)) or (
            isinstance(criteria, (list, tuple)) and any(isinstance(c, (str, dict)) for c in criteria)
        ):
            criteria = criteria_from_config(criteria)
        # Validated now, so a bad value fails at construction and not after a fit.
        self.settings = LoopSettings(
            query_size=query_size,
            max_rounds=max_rounds,
            total_budget=total_budget,
            initial_size=initial_size,
            initial_strategy=initial_strategy,
            initial_ids=initial_ids,
            validation_perc=validation_perc,
            test_after_labelling=test_after_labelling,
            reset_weights=reset_weights,
            seed=seed,
            stopping_criteria=criteria,
            minority_class=minority_class,
        )
        self.run_dir = Path(run_dir) if run_dir is not None else None
        from energizer_hf.utils import progress_enabled

        self.progress = progress_enabled(progress)  # default: only on a terminal
        self.hub_repo_id, self.hub_branch, self.hub_private = hub_repo_id, hub_branch, hub_private
        self.active_loop: ActiveLoop | None = None

    @property
    def max_rounds(self) -> int | None:
        return self.settings.max_rounds

    @property
    def max_labelling_epochs(self) -> int:
        """``max_rounds`` under the seed API's name (``-1``: no limit)."""
        return -1 if self.settings.max_rounds is None else self.settings.max_rounds

    @property
    def query_size(self) -> int:
        return self.settings.query_size

    @property
    def total_budget(self) -> int:
        return self.settings.total_budget

    def _default_run_dir(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(self.default_root_dir) / "energizer_runs"
        path = base / f"run-{stamp}"
        i = 1
        while path.exists():
            path = base / f"run-{stamp}-{i}"
            i += 1
        return path

    def active_fit(
        self,
        model: Strategy,
        train_dataloaders: DataLoader | None = None,
        val_dataloaders: DataLoader | None = None,
        test_dataloaders: DataLoader | None = None,
        datamodule: ActiveDataModule | None = None,
        *,
        oracle: Oracle | None = None,
        run_dir: str | Path | None = None,
        callbacks: list[Any] | None = None,
    ) -> RoundResults:
        """Run active learning: fit, test, query, label, record; repeat.

        Args:
            model: a :class:`~energizer_hf.query_strategies.Strategy` wrapping the
                ``LightningModule`` to train (``strategy.model`` is the trained one).
            train_dataloaders: the pool (ignored when ``datamodule`` is given).
            val_dataloaders: fixed validation data.
            test_dataloaders: fixed test data.
            datamodule: an :class:`ActiveDataModule`, e.g. with an initial labelled set.
            oracle: who labels; by default the dataset's own labels are used.
            run_dir: overrides the Trainer's ``run_dir``.
            callbacks: loop callbacks (objects with ``on_round_start(loop, round)`` /
                ``on_round_end(loop, record)``), round stores
                (:class:`~energizer_hf.revisions.RoundStore`; default: local revisions) and
                Lightning callbacks (given to every round's fit, after the Trainer's own).

        Returns:
            :class:`~energizer_hf.results.RoundResults`, one row per round.
        """
        if not isinstance(model, Strategy):
            raise EnergizerError(
                "active_fit takes a query strategy wrapping your model, e.g. "
                f"active_fit(model=EntropyStrategy(my_module), ...); got {type(model).__name__}."
            )
        if datamodule is None:
            if train_dataloaders is None:
                raise EnergizerError(
                    "active_fit needs the pool: pass train_dataloaders=... or datamodule=..."
                )
            datamodule = ActiveDataModule(train_dataloaders, val_dataloaders, test_dataloaders)
        elif not isinstance(datamodule, ActiveDataModule):
            raise EnergizerError(
                f"datamodule must be an energizer_hf.ActiveDataModule, got {type(datamodule).__name__}."
            )
        if model.model is None:
            raise EnergizerError(f"{type(model).__name__} wraps no model to train.")
        from energizer_hf.controls import RoundSeriesLogger, split_callbacks

        lightning_callbacks, loop_callbacks = split_callbacks(callbacks)
        round_kwargs = dict(self._round_trainer_kwargs)
        if lightning_callbacks:
            given = round_kwargs.get("callbacks") or []
            given = list(given) if isinstance(given, (list, tuple)) else [given]
            round_kwargs["callbacks"] = given + lightning_callbacks
        backend = LightningBackend(
            model.model,
            datamodule.adapter,
            round_kwargs,
            reset_weights=self.settings.reset_weights,
            seed=self.settings.seed,
            quiet=True,
        )
        if backend.round_loggers:  # one point per round at step = labelled count
            loop_callbacks.append(RoundSeriesLogger(backend.round_loggers))
        files = RunDir(run_dir if run_dir is not None else self.run_dir or self._default_run_dir())
        # imported here: the Hub client code is not needed to import the seed API
        from energizer_hf.revisions import ensure_round_stores, save_final_model, split_stores

        plain, stores = split_stores(loop_callbacks)
        stores = ensure_round_stores(
            stores, repo_id=self.hub_repo_id, run_branch=self.hub_branch, private=self.hub_private
        )
        self.active_loop = ActiveLoop(
            datamodule.pool,
            model,
            backend,
            oracle if oracle is not None else SimulatedOracle(datamodule.true_labels),
            self.settings,
            files.root,
            config={"api": "seed", "model_class": type(model.model).__qualname__},
            stratify_labels=datamodule.true_labels,
            label_names=getattr(datamodule, "label_names", None),
            callbacks=plain,
            stores=stores,
            progress=self.progress,
            # the model trained on the final labelled set, for `energizer-hf push`
            save_final_model=lambda: save_final_model(files.root, model.model),
        )
        results = self.active_loop.run()
        self.active_run_dir = files.root
        self.last_round_trainer = backend.last_trainer
        return results
