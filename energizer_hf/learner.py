"""The HF-native entry point: a ``datasets`` dataset, a model name, a strategy name.

>>> from energizer_hf.learner import RunConfig
>>> RunConfig(dataset="ag_news", model="bert-base-uncased", strategy="margin").query_size
25
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from energizer_hf.errors import (
    ColumnNotFoundError,
    EmptyPoolError,
    EnergizerError,
)
from energizer_hf.learner_data import (  # noqa: F401 - re-exported: energizer_hf.learner's names
    _CONLL_EXTS,
    _FILE_BUILDERS,
    _check_local_file,
    _encode_named,
    _file_kwargs,
    check_split_labelled,
    datasets_value,
    encode_labels,
    encode_with_names,
    load_data,
)
from energizer_hf.learner_helpers import (  # noqa: F401 - re-exported: energizer_hf.learner's names
    _check_ids_in_pool,
    _check_pretrained_num_labels,
    _class_id,
    _describe_model,
    _hf_progress_bars,
    _model_config,
    _say,
    _show_read_only,
    _tokenizer_identity,
    _yaml_dump,
    clear_run_dir,
)
from energizer_hf.learner_tasks import TaskReadersMixin
from energizer_hf.run import LEGACY_CONFIG_NAMES, RunDir, RunInfo, check_one_name_each
from energizer_hf.run_config import (  # noqa: F401 - re-exported: energizer_hf.learner's names
    _NON_SEMANTIC,
    _UNSET,
    EXECUTION_FIELDS,
    EXTENT_FIELDS,
    OLD_FIT_DEFAULTS,
    RunConfig,
    _is_plain,
    _semantic_defaults,
    _Unset,
)

if TYPE_CHECKING:  # imported where used: `import energizer_hf.learner` (RunConfig, the CLI)
    # must not load torch or Lightning
    from energizer_hf.loop import ActiveLoop
    from energizer_hf.oracles.base import Oracle
    from energizer_hf.query_strategies.base import Strategy
    from energizer_hf.results import RoundResults
    from energizer_hf.revisions import HubRevisions, PushResult

__all__ = ["ActiveLearner", "RunConfig", "check_split_labelled", "encode_labels", "encode_with_names", "load_data"]

log = logging.getLogger(__name__)


class ActiveLearner(TaskReadersMixin):
    """Run active learning on a ``datasets`` dataset with a ``transformers`` model.

    Everything in :class:`RunConfig` can be given as keyword overrides; objects (a loaded
    dataset, a model instance or config, a tokenizer, an oracle, ``evaluate`` metrics)
    are passed directly. Any other ``pytorch_lightning.Trainer`` argument is a keyword
    argument too (``logger=CSVLogger(...)``, ``accumulate_grad_batches=2``,
    ``gradient_clip_val=1.0``, ``deterministic=True``, ...): it goes to
    ``trainer_kwargs`` and every round's fit. ``peft`` takes a ``peft`` config object
    (``LoraConfig(...)``) as well as a mapping; ``model`` takes a ``peft.PeftModel``.

    Args:
        config: a :class:`RunConfig` (default: all defaults).
        dataset / model / tokenizer / strategy: objects or names (see :class:`RunConfig`).
        oracle: who labels (default: the dataset's labels, a simulation).
        metrics: ``evaluate`` modules computed on the test set.
        callbacks: Lightning callbacks (given to every fit's Trainer) and loop callbacks
            (objects with ``on_round_start(loop, round)`` / ``on_round_end(loop, record)``).
        **overrides: RunConfig fields and ``pl.Trainer`` arguments.

    Raises:
        TrainerArgumentError: a keyword that is neither (with the closest name), or a
            Trainer argument the loop sets itself (``max_steps``, ...).

    Example:
        >>> learner = ActiveLearner(dataset=my_dataset_dict, model="prajjwal1/bert-tiny",
        ...                         strategy="entropy", query_size=25, rounds=5)  # doctest: +SKIP
        >>> results = learner.run()  # doctest: +SKIP
        >>> results.to_pandas()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        dataset: Any = None,
        model: Any = None,
        tokenizer: Any = None,
        strategy: str | type[Strategy] | None = None,
        oracle: Oracle | None = None,
        metrics: list[Any] | None = None,
        callbacks: list[Any] | None = None,
        **overrides: Any,
    ) -> None:
        from energizer_hf.controls import closest, split_callbacks, trainer_argument_names
        from energizer_hf.query_strategies.base import Strategy
        from energizer_hf.query_strategies.registry import get_strategy_class

        config = config or RunConfig()
        check_one_name_each(overrides)
        fields = {f.name for f in dataclasses.fields(RunConfig)} | set(LEGACY_CONFIG_NAMES)
        trainer_names = set(trainer_argument_names())
        extra_trainer: dict[str, Any] = {}
        for key in list(overrides):
            if key in fields:
                continue
            if key in trainer_names:
                extra_trainer[key] = overrides.pop(key)
                continue
            from energizer_hf.errors import TrainerArgumentError

            hint = closest(key, sorted(fields | trainer_names))
            raise TrainerArgumentError(
                f"ActiveLearner got an unknown argument {key!r}: it is neither a RunConfig field nor a "
                "pytorch_lightning.Trainer argument" + (f"; did you mean {hint!r}?" if hint else ".")
            )
        self._peft = None
        peft_value = overrides.get("peft")
        if peft_value is not None and not isinstance(peft_value, dict):
            self._peft = overrides.pop("peft")  # a peft.PeftConfig object
        if extra_trainer:
            merged = dict(overrides.get("trainer_kwargs") or config.trainer_kwargs or {})
            twice = sorted(set(merged) & set(extra_trainer))
            if twice:
                from energizer_hf.errors import TrainerArgumentError

                raise TrainerArgumentError(
                    f"{', '.join(twice)} given twice: as keyword argument and in trainer_kwargs. Give it once."
                )
            overrides["trainer_kwargs"] = {**merged, **extra_trainer}
        lightning_callbacks, callbacks = split_callbacks(callbacks)
        self.lightning_callbacks = lightning_callbacks
        if isinstance(dataset, (str, os.PathLike)):
            overrides["dataset"] = str(dataset)
            dataset = None
        if isinstance(model, (str, os.PathLike)):
            overrides["model"] = str(model)
            model = None
        if isinstance(tokenizer, (str, os.PathLike)):
            overrides["tokenizer"] = str(tokenizer)
            tokenizer = None
        strategy_class = None
        if isinstance(strategy, str):
            overrides["strategy"] = strategy
        elif isinstance(strategy, type) and issubclass(strategy, Strategy):
            strategy_class = strategy
            overrides["strategy"] = getattr(strategy, "name", strategy.__name__)
        elif strategy is not None:
            raise EnergizerError(
                f"strategy must be a registered name or a Strategy subclass, got {type(strategy).__name__}."
            )
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        if strategy_class is None and self.config.strategy_args:
            from energizer_hf.query_strategies.wrappers import configure_strategy

            strategy_class = configure_strategy(self.config.strategy, **dict(self.config.strategy_args))
        self.strategy_class = strategy_class or get_strategy_class(self.config.strategy)
        self._dataset = dataset
        self._model = model
        self._tokenizer = tokenizer
        self.oracle = oracle
        self.metrics = metrics
        self.callbacks = callbacks
        self.loop: ActiveLoop | None = None
        self._checked: tuple[Any, tuple[Any, Any, Any]] | None = None  # _preflight()

    # ------------------------------------------------------------------ set-up
    def _preflight(self) -> tuple[Any, tuple[Any, Any, Any]]:
        """The checks before any work (the machine can run these settings, the model and
        tokenizer exist, the data loads and is valid), done once: ``(model_dir, splits)``.
        ``run`` calls it before ``overwrite`` clears the run directory, so a mistake never
        costs the previous run."""
        if self._checked is not None:
            return self._checked
        from energizer_hf.checks import check_model_source, check_tokenizer_files
        from energizer_hf.config_types import check_runtime

        cfg = self.config
        user_kwargs = cfg.trainer_kwargs or {}
        check_runtime(
            user_kwargs.get("precision", cfg.precision),
            user_kwargs.get("accelerator", cfg.accelerator),
            user_kwargs.get("devices", cfg.devices),
        )
        model_dir = check_model_source(cfg.model) if self._model is None else None
        if cfg.tokenizer:
            check_model_source(cfg.tokenizer, "tokenizer")
        elif self._tokenizer is None and model_dir is not None:
            check_tokenizer_files(model_dir)
        self._checked = (model_dir, self._splits())
        return self._checked

    def _splits(self) -> tuple[Any, Any, Any]:
        """``(pool, test, validation)`` splits (test and validation may be ``None``)."""
        import datasets

        cfg = self.config
        data = self._dataset
        if data is None:
            data = load_data(cfg.dataset, cfg.dataset_config, cfg.data_files, encoding=cfg.encoding)
        val_ds = None
        if isinstance(data, datasets.Dataset):
            pool_ds, test_ds = data, None
        elif isinstance(data, (datasets.DatasetDict, dict)):
            if cfg.train_split not in data:
                raise EnergizerError(
                    f"The dataset has no split '{cfg.train_split}' (splits: {', '.join(data)}): set train_split."
                )
            pool_ds = data[cfg.train_split]
            test_ds = data.get(cfg.test_split) if cfg.test_split else None
            if cfg.test_split and test_ds is None:
                log.warning(
                    "No '%s' split (splits: %s): rounds are not tested.", cfg.test_split, ", ".join(data)
                )
            val_ds = self._validation_split(data)
        else:
            raise EnergizerError(
                f"dataset must be a datasets.Dataset or DatasetDict, got {type(data).__name__}."
            )
        if len(pool_ds) == 0:
            raise EmptyPoolError(f"The pool split '{cfg.train_split}' has no rows.")
        if test_ds is not None and len(test_ds) == 0:
            raise EmptyPoolError(
                f"The test split '{cfg.test_split}' has no rows: give a non-empty test split or set test_split to ''."
            )
        needed = [cfg.text_column] + ([cfg.text_pair_column] if cfg.text_pair_column else [])
        from energizer_hf.errors import UnknownTaskError

        try:
            task_name = self._resolve_task(pool_ds).name
        except UnknownTaskError:
            if cfg.text_column in pool_ds.column_names or cfg.tokens_column in pool_ds.column_names:
                raise
            task_name = "text_classification"  # no text at all: the column check below names it
        ner = task_name == "token_classification"
        if ner:
            needed = [cfg.tokens_column]
        if task_name != "text_classification" and val_ds is not None:
            log.info("The '%s' split is not used for validation in %s runs (validation_perc is).",
                     cfg.validation_split, task_name)
            val_ds = None
        for name, ds in (("pool", pool_ds), ("test", test_ds), ("validation", val_ds)):
            if ds is None:
                continue
            cols = ds.column_names
            label = self._tags_column(ds) if ner else cfg.label_column
            want = needed + ([label] if (name != "pool" or self.oracle is None) else [])
            missing = [c for c in want if c not in cols]
            if missing:
                raise ColumnNotFoundError(
                    f"The {name} split has no column {', '.join(repr(m) for m in missing)}; its columns "
                    f"are: {', '.join(cols)}. Set text_column / label_column accordingly."
                )
        if task_name != "text_classification":  # the task's readers check list labels and tags
            return pool_ds, test_ds, val_ds
        # unlabelled evaluation splits (a GLUE-style test split with -1) first, with a hint
        for split, ds in ((cfg.test_split, test_ds), (cfg.validation_split, val_ds)):
            if ds is not None:
                check_split_labelled(ds[cfg.label_column][:], split, ds.features.get(cfg.label_column))
        pool_ds = self._checked_split(pool_ds, f"the pool split '{cfg.train_split}'", labels=self.oracle is None)
        if test_ds is not None:
            test_ds = self._checked_split(test_ds, f"the test split '{cfg.test_split}'", labels=True)
        if val_ds is not None:
            val_ds = self._checked_split(val_ds, f"the validation split '{cfg.validation_split}'", labels=True)
        return pool_ds, test_ds, val_ds

    def _validation_split(self, data: Any) -> Any:
        """The dataset's own validation split, when it is used (see ``validation_split``)."""
        cfg = self.config
        name = cfg.validation_split
        if not name or name not in data or name == cfg.train_split:
            return None
        if name == cfg.test_split:
            log.info("The '%s' split is the test split: it is not used for validation too.", name)
            return None
        if cfg.validation_perc > 0:
            log.info(
                "validation_perc=%s holds out labelled rows for validation: the dataset's '%s' split is not "
                "used (set validation_perc: 0 to validate on it).", cfg.validation_perc, name,
            )
            return None
        if len(data[name]) == 0:
            return None
        return data[name]

    def _checked_split(self, ds: Any, where: str, *, labels: bool) -> Any:
        """Missing texts/labels refused or dropped (``on_missing``), label values that
        cannot be classes refused, integral float labels (an integer column with NaN read
        by pandas) cast to integers."""
        from energizer_hf.checks import check_label_values, check_missing

        cfg = self.config
        names = [cfg.text_column] + ([cfg.text_pair_column] if cfg.text_pair_column else [])
        has_labels = labels and cfg.label_column in ds.column_names
        if has_labels:
            names.append(cfg.label_column)
        table = ds.with_format("arrow")[:]
        report = check_missing({n: table.column(n) for n in names}, on_missing=cfg.on_missing, where=where)
        if report.keep is not None:
            ds = ds.select(report.keep)
            table = ds.with_format("arrow")[:]
        if has_labels:
            check_label_values(table.column(cfg.label_column), where=where, column=cfg.label_column)
            import pyarrow as pa

            if pa.types.is_floating(table.column(cfg.label_column).type):
                ds = ds.cast_column(cfg.label_column, datasets_value("int64"))
        return ds


    def setup(self) -> ActiveLoop:
        """Load data, model and tokenizer, tokenize (cached), and build the loop."""
        from transformers import AutoTokenizer

        from energizer_hf.checks import check_vocab_fits
        from energizer_hf.controls import NON_SEMANTIC_TRAINER_KWARGS
        from energizer_hf.data import HFDataAdapter
        from energizer_hf.fitting import LightningBackend
        from energizer_hf.loop import ActiveLoop, LoopSettings
        from energizer_hf.oracles.base import SimulatedOracle
        from energizer_hf.pool import ActivePool
        from energizer_hf.revisions import ensure_round_stores, restore_from_revision, split_stores
        from energizer_hf.stopping import criteria_from_config
        from energizer_hf.utils import progress_enabled, seed_everything

        cfg = self.config
        files = RunDir(cfg.run_dir)
        progress = progress_enabled(cfg.progress)
        model_dir, (pool_ds, test_ds, val_ds) = self._preflight()


        # labels: the task's (text classification keeps its label encoding in _text_labels)
        task = self.task = self._resolve_task(pool_ds)
        label_store = None
        val_labels = None
        if task.name == "text_classification":
            names, pool_labels, test_labels, val_labels = self._text_labels(pool_ds, test_ds, val_ds)
        else:
            if cfg.tapt_steps or cfg.self_training:
                from energizer_hf.errors import ConfigError

                raise ConfigError(
                    f"tapt_steps and self_training serve text classification only, not {task.name}: "
                    "leave them out for this task."
                )
            names, pool_labels, test_labels, label_store = self._task_labels(task, pool_ds, test_ds)
        if cfg.initial_ids is not None:
            _check_ids_in_pool(cfg.initial_ids, len(pool_ds))
        self.label_names = names
        id2label = dict(enumerate(names))

        # tokenizer and model
        tokenizer = self._tokenizer
        if tokenizer is None:
            source = cfg.tokenizer or cfg.model
            if not source:
                raise EnergizerError("Give a tokenizer (object or name) or a model name to load one from.")
            tokenizer = AutoTokenizer.from_pretrained(source)
        self.tokenizer = tokenizer
        model_spec = self._model if self._model is not None else cfg.model
        if model_spec is None:
            raise EnergizerError("No model given: set `model` to a hub id or a local directory.")
        head_source = _model_config(model_spec, model_dir) if task.name == "text_classification" else None
        if task.name == "text_classification":
            _check_pretrained_num_labels(model_spec, len(names))
        if head_source is not None:  # a model type without a sequence-classification head
            from energizer_hf.checks import check_sequence_classification

            check_sequence_classification(head_source, source=model_spec if isinstance(model_spec, str) else None)
        # ---- task-adaptive pre-training (energizer_hf.selfsup.tapt): the run starts from
        # the adapted encoder; its head is still fresh, as without TAPT
        self.tapt = None
        if cfg.tapt_steps:
            from energizer_hf.selfsup.tapt import TAPTConfig, adapt_encoder, adapted_model_spec

            self.tapt = adapt_encoder(
                model_spec, tokenizer, pool_ds, TAPTConfig.from_settings(cfg.tapt_steps, cfg.tapt_args),
                run_cache=files.cache, tokenizer_identity=_tokenizer_identity(tokenizer),
                text_column=cfg.text_column, text_pair_column=cfg.text_pair_column,
                max_length=cfg.max_length, accelerator=cfg.accelerator, progress=progress,
            )
            model_spec = adapted_model_spec(model_spec, self.tapt.path)
        # ----
        seed_everything(cfg.seed)
        module_class, task_kwargs = self._module_class(task)
        module = module_class(
            model_spec,
            num_labels=len(names),
            id2label=id2label,
            learning_rate=cfg.learning_rate,
            head_learning_rate=cfg.task_head_learning_rate(task.name),
            weight_decay=cfg.weight_decay,
            warmup_ratio=cfg.warmup_ratio,
            metrics=self.metrics,
            peft=self._peft if self._peft is not None else cfg.peft,
            gradient_checkpointing=cfg.gradient_checkpointing,
            freeze_embeddings=cfg.freeze_embeddings,
            **task_kwargs,
        )
        check_vocab_fits(tokenizer, module.model)

        trainer_kwargs = self._trainer_kwargs(files)
        devices = trainer_kwargs.get("devices", 1)
        single_process = devices in (1, "1", [0]) and trainer_kwargs.get("num_nodes", 1) == 1

        # tokenization, cached next to the run
        pool = ActivePool(pool_ds, label_store=label_store)
        tok_id = _tokenizer_identity(tokenizer)
        cache_dir = files.cache
        cache_dir.mkdir(parents=True, exist_ok=True)
        tokenized = self._tokenize(pool_ds, tokenizer, cache_dir / f"pool-v2-{pool.fingerprint}-{tok_id}-{cfg.max_length}.arrow")
        from energizer_hf.data import column_as_numpy

        lengths = column_as_numpy(tokenized, "length").astype(np.int64)
        test, test_lengths = None, None
        if test_ds is not None:
            from energizer_hf.utils import dataset_fingerprint

            test_tok = self._tokenize(
                test_ds, tokenizer, cache_dir / f"test-v2-{dataset_fingerprint(test_ds)}-{tok_id}-{cfg.max_length}.arrow"
            )
            test = (test_tok, test_labels)
            test_lengths = column_as_numpy(test_tok, "length").astype(np.int64)
        validation, val_lengths = None, None
        if val_ds is not None:
            from energizer_hf.utils import dataset_fingerprint

            val_tok = self._tokenize(
                val_ds, tokenizer, cache_dir / f"val-v2-{dataset_fingerprint(val_ds)}-{tok_id}-{cfg.max_length}.arrow"
            )
            validation = (val_tok, val_labels)
            val_lengths = column_as_numpy(val_tok, "length").astype(np.int64)
        model_columns = [c for c in tokenized.column_names if c not in ("length", "num_words")]
        adapter = HFDataAdapter(
            tokenized,
            self._collator(task, tokenizer),
            batch_size=cfg.batch_size,
            eval_batch_size=cfg.eval_batch_size,
            test=test,
            lengths=lengths,
            model_columns=model_columns,
            num_workers=cfg.num_workers,
            # custom batch samplers are single-process: Lightning cannot shard them
            group_by_length=cfg.group_by_length and single_process,
            test_lengths=test_lengths if single_process else None,
            validation=validation,
            validation_lengths=val_lengths if single_process else None,
        )

        # strategy, oracle, backend, loop
        strategy = self.strategy_class(module)
        oracle = self.oracle if self.oracle is not None else SimulatedOracle(pool_labels)
        if pool_labels is None and self.oracle is None:
            raise EnergizerError("The pool has no labels to simulate an oracle with: pass oracle=...")

        backend = LightningBackend(
            strategy.model,
            adapter,
            trainer_kwargs,
            reset_weights=cfg.reset_weights,
            seed=cfg.seed,
            quiet=True,
            pool_max_tokens=cfg.pool_max_tokens,
            scoring_precision=cfg.scoring_precision,
            num_classes=len(names),
            monitor=task.monitor,
            schedule=cfg.fit_schedule(),
            early_stopping_patience=cfg.early_stopping_patience,
            class_weights=cfg.task_class_weights(task.name),
            fit_progress=progress and not trainer_kwargs.get("enable_progress_bar", False),
        )
        settings = LoopSettings(
            query_size=cfg.query_size,
            max_rounds=cfg.max_rounds,
            total_budget=cfg.total_budget,
            initial_size=cfg.initial_size,
            initial_strategy=cfg.initial_strategy,
            initial_ids=cfg.initial_ids,
            validation_perc=cfg.validation_perc,
            test_after_labelling=test is not None,
            reset_weights=cfg.reset_weights,
            seed=cfg.seed,
            stopping_criteria=criteria_from_config(cfg.stopping_criteria),
            minority_class=_class_id(cfg.minority_class, names) if task.name == "text_classification" else None,
            budget_unit=cfg.budget_unit,
        )
        needs_predictions = [type(c).__name__ for c in settings.stopping_criteria or () if c.needs_predictions]
        if needs_predictions and task.name != "text_classification":
            from energizer_hf.stopping import InvalidStoppingCriterionError

            raise InvalidStoppingCriterionError(
                f"{', '.join(needs_predictions)} compare(s) predicted classes, one per row: they serve "
                f"text classification, not {task.name}. Stop {task.name} runs on the budget or max_rounds."
            )
        if cfg.budget_unit not in task.budget_units:
            from energizer_hf.errors import BudgetError

            raise BudgetError(
                f"budget_unit '{cfg.budget_unit}' does not apply to {task.name} (use one of "
                f"{', '.join(task.budget_units)}); tokens are counted for token classification."
            )
        semantic = {k: v for k, v in cfg.to_dict().items() if k not in _NON_SEMANTIC}
        semantic["model"] = cfg.model if self._model is None else _describe_model(self._model)
        semantic["tokenizer"] = tok_id
        semantic["task"] = task.name
        semantic["trainer_kwargs"] = {
            k: v for k, v in (semantic.get("trainer_kwargs") or {}).items() if k not in NON_SEMANTIC_TRAINER_KWARGS
        } or None
        if self._peft is not None:
            semantic["peft"] = json.loads(json.dumps(self._peft.to_dict(), default=str))
        if cfg.resume_from:  # a no-op once run_dir has records of its own
            restore_from_revision(
                pool, cfg.resume_from, cfg.resume_revision, run_dir=files.root, run_branch=cfg.hub_branch
            )
        loop_callbacks = list(self.callbacks)
        if backend.round_loggers:
            from energizer_hf.controls import RoundSeriesLogger

            loop_callbacks.append(RoundSeriesLogger(backend.round_loggers))
        callbacks, stores = split_stores(loop_callbacks)
        stores = ensure_round_stores(
            stores, repo_id=cfg.hub_repo_id, run_branch=cfg.hub_branch, private=cfg.hub_private
        )
        # ---- self-training (energizer_hf.selfsup.self_training): pseudo-labels reach the
        # fits through the data adapter only, never the label state
        from energizer_hf.selfsup.self_training import SelfTraining, SelfTrainingConfig

        st_config = SelfTrainingConfig.from_setting(cfg.self_training)
        self_training = None
        if st_config is not None:
            self_training = SelfTraining(
                st_config, adapter, strategy.model, label_names=names,
                true_labels=pool_labels if self.oracle is None else None,
            )
        # options that are off stay out of run.json (run dirs made before them still resume);
        # where the adapted encoder is cached does not change what the run computes
        semantic.pop("self_training")
        if st_config is not None:
            semantic["self_training"] = dataclasses.asdict(st_config)  # `true` == `{}`
        semantic.pop("tapt_args")
        if semantic.pop("tapt_steps"):
            from energizer_hf.selfsup.tapt import TAPTConfig

            semantic["tapt"] = TAPTConfig.from_settings(cfg.tapt_steps, cfg.tapt_args).fingerprint()
        # ----
        self.loop = ActiveLoop(
            pool,
            strategy,
            backend,
            oracle,
            settings,
            files.root,
            config=semantic,
            config_defaults=_semantic_defaults(),
            label_names=names,
            stratify_labels=pool_labels if task.name != "token_classification" else None,
            callbacks=callbacks,
            stores=stores,
            progress=progress,
            start_from_labels=bool(cfg.resume_from),
            self_training=self_training,
            save_final_model=self._save_final_model if cfg.save_final_model else None,
            card=self._card_info(pool_ds, test is not None),
        )
        self.module = strategy.model
        self.strategy = strategy
        self.pool = pool
        return self.loop

    def _card_info(self, pool_ds: Any, has_test: bool) -> dict[str, Any]:
        """What the cards say of the data and the model (``RunInfo.card``)."""
        from energizer_hf.revisions import card_info

        cfg = self.config
        return card_info(
            dataset=cfg.dataset if self._dataset is None else None,
            dataset_config=cfg.dataset_config,
            data_files=cfg.data_files if self._dataset is None else None,
            pool=pool_ds,
            train_split=cfg.train_split,
            test_split=cfg.test_split,
            has_test=has_test,
            model=self._model if self._model is not None else cfg.model,
            license=cfg.card_license,
            language=cfg.card_language,
            task=self.task.name if getattr(self, "task", None) is not None else "text_classification",
        )

    def _trainer_kwargs(self, files: RunDir) -> dict[str, Any]:
        """The per-round ``pl.Trainer`` arguments: the loop's, RunConfig's, then
        ``trainer_kwargs`` (validated; logger/callback specs built) and the Lightning
        callbacks given to ``callbacks``."""
        import torch

        from energizer_hf.controls import build_from_spec, check_trainer_kwargs

        cfg = self.config
        user = check_trainer_kwargs(dict(cfg.trainer_kwargs or {}), cfg, RunConfig())
        accelerator = user.pop("accelerator", cfg.accelerator)
        if accelerator == "auto" and not torch.cuda.is_available():
            accelerator = "cpu"
        kwargs: dict[str, Any] = {
            "accelerator": accelerator,
            "devices": user.pop("devices", cfg.devices),
            "strategy": user.pop("strategy", cfg.lightning_strategy),
            "precision": user.pop("precision", cfg.precision),
            "enable_checkpointing": False,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
        }
        logs = files.logs
        if "logger" in user:
            user["logger"] = build_from_spec(user["logger"], save_dir=logs)
        callbacks = list(build_from_spec(list(user.pop("callbacks", None) or [])))
        kwargs.update(user)
        kwargs["callbacks"] = callbacks + list(self.lightning_callbacks)
        if kwargs.get("logger") not in (None, False) and "default_root_dir" not in kwargs:
            kwargs["default_root_dir"] = str(logs)
        return kwargs


    def run(self) -> RoundResults:
        """Run (or resume) the rounds and return their results.

        The run holds its directory's lock from set-up to the final model; the directory is
        checked (and safely repaired) first. A finished run is shown from a read-only
        directory without writing anything.

        Raises:
            RunLockedError: another process runs on ``run_dir`` (it is named).
            RunDirError: ``run_dir`` is a file, or cannot be written (and the run is not
                finished), or ``overwrite`` names a folder that is not a run directory.
            RunIntegrityError: the run directory's files disagree (what and how to repair).
        """
        from energizer_hf.checks import check_run_dir
        from energizer_hf.runlock import RunLock
        from energizer_hf.utils import atomic_write_bytes

        files = RunDir(self.config.run_dir)
        check_run_dir(files.root, write=False)
        with RunLock(files.lock, allow_read_only=True) as lock:
            if lock.read_only:
                return _show_read_only(files, self.config)
            writer = lock.rank == 0  # the other ranks of a multi-process job only read
            if self.config.overwrite and self.loop is None and writer:
                self._preflight()  # a wrong setting or bad data fails before anything is deleted
                clear_run_dir(files)
            from energizer_hf.utils import progress_enabled

            with _hf_progress_bars(progress_enabled(self.config.progress)):  # "Loading weights"
                loop = self.loop or self.setup()
            if writer:  # `energizer-hf annotate RUN_DIR` and `check` read it, even after a crash
                # (never `overwrite: true`: rebuilding the run from it must not wipe it)
                kept = {**self.config.to_dict(), "overwrite": False}
                atomic_write_bytes(files.config_yaml, _yaml_dump(kept).encode())
            return loop.run()

    def _save_final_model(self) -> None:
        """Keep the model trained on the final labelled set (``final_model/``)."""
        from energizer_hf.revisions import save_final_model

        save_final_model(
            RunDir(self.config.run_dir).root, self.module.model, self.tokenizer, run=self.loop.run_info()
        )

    def run_info(self) -> RunInfo:
        """The run as it stands (:class:`~energizer_hf.run.RunInfo`): cards, pushes and
        people's tools take it."""
        return self.loop.run_info() if self.loop is not None else RunInfo.from_dir(self.config.run_dir)

    def push_to_hub(
        self,
        model_repo_id: str,
        *,
        dataset_repo_id: str | None = None,
        store: HubRevisions | None = None,
        **push_kwargs: Any,
    ) -> PushResult:
        """Push the final labelled set and the trained model (with its card) after ``run()``.

        ``store``: the :class:`~energizer_hf.revisions.HubRevisions` that pushed the rounds
        (default: a new one for ``dataset_repo_id``, or ``hub_repo_id``). ``push_kwargs``: see
        :meth:`~energizer_hf.revisions.HubRevisions.push_final`.
        """
        if self.loop is None:
            raise EnergizerError("push_to_hub pushes a finished run: call run() first.")
        if store is None:
            store = HubRevisions(dataset_repo_id or self.config.hub_repo_id, run_dir=self.loop.files.root,
                                 run_branch=self.config.hub_branch, private=self.config.hub_private)
        return store.push_final(
            self.run_info(), model_repo_id, model=self.module.model, tokenizer=self.tokenizer,
            pool=self.pool, dataset_repo_id=dataset_repo_id, **push_kwargs,
        )

    def collect(self, partial: bool = False) -> RoundResults:
        """Continue a run that stopped with ``stop_reason == "awaiting_annotations"``.

        An asynchronous oracle (``LabelStudioOracle(wait="async")``) ends the run after it
        imported a round's tasks; ``collect()`` reads the annotations given since, labels
        them and goes on with the loop (it stops again at the next round's import, or
        again at once when the round is not fully annotated yet). ``partial=True`` closes
        the waiting round with what is annotated now (the rest goes back to the pool).
        """
        from energizer_hf.oracles.base import OracleBase

        if partial and isinstance(self.oracle, OracleBase):
            self.oracle.close_round()  # one-shot: used by the first round it asks for
        return self.run()
