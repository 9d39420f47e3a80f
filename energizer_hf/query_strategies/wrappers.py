"""Wrappers that compose with another strategy (they hold it, they do not subclass it).

- :class:`RandomSubset`: run any strategy on a random sub-pool (seeded by
  ``(seed, round)``), e.g. to make BADGE, ProbCover or BatchBALD affordable on big pools.
- :class:`ClassBalanced`: take a scoring strategy's best rows per *predicted* class, in
  a requested class mix.

Both are registered (``random_subset``, ``class_balanced``) with ``entropy`` as the
default base, so ``ActiveLearner(strategy="random_subset")`` works. To choose the base
and its arguments from a config, bind them with :func:`configure_strategy`, which
returns a class that the learner (or anything calling ``cls(model)``) accepts::

    from energizer_hf.query_strategies import configure_strategy
    Strategy = configure_strategy("random_subset", base="badge", subpool_size=5000)
    ActiveLearner(..., strategy=Strategy)
    # nested: the base may itself be configured
    configure_strategy("class_balanced", base=configure_strategy("margin"), proportions="uniform")

The wrapped strategy shares the wrapper's model (the one the loop trains).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from energizer_hf.errors import EnergizerError
from energizer_hf.functional.primitives import allocate
from energizer_hf.query_strategies.base import AccumulatorStrategy, Strategy, trivial_query
from energizer_hf.query_strategies.registry import get_strategy_class, register_strategy
from energizer_hf.scoring import QueryContext

__all__ = ["ClassBalanced", "RandomSubset", "configure_strategy"]


def _resolve(base: str | type[Strategy] | Strategy) -> type[Strategy] | Strategy:
    if isinstance(base, str):
        return get_strategy_class(base)
    if isinstance(base, Strategy) or (isinstance(base, type) and issubclass(base, Strategy)):
        return base
    raise EnergizerError(
        f"base must be a strategy name, a Strategy subclass or instance, got {type(base).__name__}."
    )


def configure_strategy(strategy: str | type[Strategy], **kwargs: Any) -> type[Strategy]:
    """A subclass of ``strategy`` whose constructor has ``kwargs`` bound: ``cls(model)``
    then builds the configured strategy (what :class:`~energizer_hf.learner.ActiveLearner`
    calls). Class attributes (``requires_embeddings``, ``needs_mc_samples``) follow the
    configured base of a wrapper.

    >>> cls = configure_strategy("random_subset", base="margin", subpool_size=100)
    >>> cls.__name__
    'RandomSubset[base=margin,subpool_size=100]'
    """
    cls = _resolve(strategy)
    if not isinstance(cls, type):
        raise EnergizerError("configure_strategy takes a strategy name or class, not an instance.")
    bound = dict(kwargs)
    _check_strategy_args(cls, bound)

    def __init__(self: Any, model: Any = None, **more: Any) -> None:
        cls.__init__(self, model, **{**bound, **more})

    def show(v: Any) -> str:
        if isinstance(v, str):
            return v
        return getattr(v, "__name__", None) or repr(v)

    label = ",".join(f"{k}={show(v)}" for k, v in sorted(bound.items()))
    attrs: dict[str, Any] = {"__init__": __init__, "configured_kwargs": bound}
    base = bound.get("base")
    if base is not None and issubclass(cls, _Wrapper):
        attrs.update(cls.configured_flags(_resolve(base), bound))
    new = type(f"{cls.__name__}[{label}]", (cls,), attrs)
    new.__qualname__ = new.__name__
    new.__module__ = cls.__module__
    new.name = cls.name
    return new


def _check_strategy_args(cls: type[Strategy], kwargs: dict[str, Any]) -> None:
    """Refuse ``strategy_args`` the strategy does not take (a wrapper's leftovers are
    checked against its base), naming the closest accepted name.

    Raises:
        ConfigError: an unknown argument.
    """
    import inspect

    from energizer_hf.config_types import check_kwargs

    what = f"strategy_args of {getattr(cls, 'name', cls.__name__)}"
    if not issubclass(cls, _Wrapper):
        check_kwargs(cls, kwargs, what)
        return
    def named(fn: Any) -> list[str]:
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [n for n, p in inspect.signature(fn).parameters.items() if p.kind in kinds and n != "self"]

    def named_along_mro(klass: type) -> list[str]:  # an __init__ with **kwargs passes them up
        out: list[str] = []
        for k in klass.__mro__:
            init = vars(k).get("__init__")
            if init is None:
                continue
            out += named(init)
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
                break
        return out

    params = inspect.signature(cls.__init__).parameters
    own = named_along_mro(cls)
    leftovers = {k: v for k, v in kwargs.items() if k not in own}
    base = kwargs.get("base", params["base"].default if "base" in params else None)
    if not leftovers or not isinstance(base, (str, type)):
        return
    base_cls = _resolve(base)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(base_cls.__init__).parameters.values()):
        return  # a base that takes anything (itself a wrapper): it checks its own
    accepted = sorted(set(own + named(base_cls.__init__)) - {"model"})

    def both(**given: Any) -> None: ...

    both.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in accepted]
    )
    check_kwargs(both, leftovers, f"{what} (with base {getattr(base_cls, 'name', base)})")


class _SubPool:
    """A view of an :class:`~energizer_hf.pool.ActivePool` whose unlabelled ids are a subset."""

    def __init__(self, pool: Any, unlabelled: np.ndarray) -> None:
        self._pool = pool
        self._unlabelled = np.sort(np.asarray(unlabelled, dtype=np.int64))

    @property
    def unlabelled_ids(self) -> np.ndarray:
        return self._unlabelled

    @property
    def num_unlabelled(self) -> int:
        return int(self._unlabelled.size)

    def __len__(self) -> int:
        return len(self._pool)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class _Wrapper(Strategy):
    """Holds ``self.base``, built on the wrapper's own (deep-copied) model."""

    requires_embeddings: ClassVar[bool] = False
    needs_mc_samples: ClassVar[bool] = False

    def __init__(
        self, model: Any = None, base: str | type[Strategy] | Strategy = "entropy", **base_kwargs: Any
    ) -> None:
        resolved = _resolve(base)
        super().__init__(model)
        from energizer_hf.query_strategies.registry import check_strategy_task

        check_strategy_task(resolved if isinstance(resolved, type) else type(resolved), getattr(model, "task", None))
        if isinstance(resolved, Strategy):
            if base_kwargs:
                raise EnergizerError("base_kwargs are only used when base is a name or a class.")
            inner = resolved
            inner.model = self.model
        else:
            inner = _build_sharing(resolved, self.model, base_kwargs)
        # Not registered as a submodule: the model is already ours (no duplicate weights).
        object.__setattr__(self, "base", inner)
        self.requires_embeddings = bool(getattr(inner, "requires_embeddings", False))  # type: ignore[misc]
        self.needs_mc_samples = bool(getattr(inner, "needs_mc_samples", False))  # type: ignore[misc]

    @classmethod
    def configured_flags(cls, inner: Any, kwargs: dict[str, Any]) -> dict[str, bool]:
        """The engine-read flags of this wrapper configured with ``kwargs`` around ``inner``."""
        return {flag: bool(getattr(inner, flag, False)) for flag in ("requires_embeddings", "needs_mc_samples")}

    def on_round_start(self, loop: Any, round: int) -> None:
        self.base.on_round_start(loop, round)

    def on_round_end(self, loop: Any, record: dict[str, Any]) -> None:
        self.base.on_round_end(loop, record)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base={self.base!r})"


def _build_sharing(cls: type[Strategy], model: Any, kwargs: dict[str, Any]) -> Strategy:
    """``cls(model, **kwargs)`` without a second deep copy of the model."""
    placeholder = torch.nn.Identity()
    inner = cls(placeholder, **kwargs)
    inner.model = model
    return inner


@register_strategy("random_subset", "subsample")
class RandomSubset(_Wrapper):
    """Score only a random sub-pool of ``subpool_size`` unlabelled rows with ``base``.

    A standard trick for large pools (e.g. Ash et al., 2020; Citovsky et al., 2021 use
    sub-sampling; Kirsch et al. 2019 for BatchBALD). The sub-pool is drawn uniformly,
    seeded by ``(seed, round)``; the labelled rows (used by coreset, CAL, ...) are
    unchanged. Needs whatever ``base`` needs. Time and memory: those of ``base`` with N
    replaced by ``min(N, subpool_size)``, plus O(N) to draw the sub-pool.

    Args:
        model: the model to train and query with.
        base: the wrapped strategy (name, class or instance; default ``entropy``).
        subpool_size: rows scored per query (>= 1).
        **base_kwargs: arguments of the base when given by name or class.

    >>> RandomSubset(model, base="badge", subpool_size=10_000).query(context, k=100)  # doctest: +SKIP
    """

    tasks: ClassVar[tuple[str, ...]] = ("text_classification", "multi_label", "token_classification")

    def __init__(
        self,
        model: Any = None,
        base: str | type[Strategy] | Strategy = "entropy",
        subpool_size: int = 10_000,
        **base_kwargs: Any,
    ) -> None:
        if isinstance(subpool_size, bool) or not isinstance(subpool_size, (int, np.integer)) or subpool_size < 1:
            raise EnergizerError(f"subpool_size must be a positive integer, got {subpool_size!r}.")
        super().__init__(model, base, **base_kwargs)
        self.subpool_size = int(subpool_size)

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        unl, done = trivial_query(context, k)
        if done is not None:
            return done
        size = max(self.subpool_size, int(k))
        if size >= unl.size:
            return np.asarray(self.base.query(context, k), dtype=np.int64)
        sub = context.rng(salt=0x5B5B).choice(unl, size=size, replace=False)
        view = dataclasses.replace(context, pool=_SubPool(context.pool, sub))
        view.timings = context.timings
        return np.asarray(self.base.query(view, k), dtype=np.int64)


@register_strategy("class_balanced", "balanced")
class ClassBalanced(_Wrapper):
    """A scoring strategy's best rows, per predicted class, in a requested class mix.

    The base (an :class:`~energizer_hf.query_strategies.AccumulatorStrategy`, default
    ``entropy``) scores every unlabelled row; the model's predicted class (argmax of the
    probabilities) assigns each row to a class. ``k`` is split by ``proportions``
    (largest remainders, ties to the smaller class id); each class gets its best-scored
    rows; a class with too few predicted rows leaves its share to the best remaining
    rows of any class. Cf. class-balanced selection, e.g. Aggarwal et al., "Active
    Learning for Imbalanced Datasets", WACV 2020; Ertekin et al., CIKM 2007.

    Needs the base's outputs and the probabilities (two passes over the unlabelled
    pool). Time O(N · C + N log N), memory O(N).

    Args:
        model: the model to train and query with.
        base: a scoring strategy (name, class or instance).
        proportions: ``"uniform"`` (default), ``"inverse_labelled"`` (favour classes that
            are rare in the labelled set), a mapping ``{class_id: weight}`` or a sequence
            of per-class weights (normalised; zero weight = never that class).
        **base_kwargs: arguments of the base when given by name or class.

    >>> ClassBalanced(model, base="margin", proportions={0: 0.5, 1: 0.5}).query(context, 10)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any = None,
        base: str | type[Strategy] | Strategy = "entropy",
        proportions: str | Mapping[int, float] | Sequence[float] = "uniform",
        **base_kwargs: Any,
    ) -> None:
        super().__init__(model, base, **base_kwargs)
        if not isinstance(self.base, AccumulatorStrategy):
            raise EnergizerError(
                f"ClassBalanced needs a scoring strategy (AccumulatorStrategy) as base, got "
                f"{type(self.base).__name__}: use e.g. 'entropy', 'margin' or 'bald'."
            )
        if isinstance(proportions, str):
            if proportions not in ("uniform", "inverse_labelled"):
                raise EnergizerError(
                    f"proportions must be 'uniform', 'inverse_labelled', a mapping or a sequence, got {proportions!r}."
                )
        else:
            values = list(proportions.values()) if isinstance(proportions, Mapping) else list(proportions)
            if not values or any(not np.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
                raise EnergizerError(
                    f"proportions must be non-negative, finite and not all zero, got {proportions!r}."
                )
            if isinstance(proportions, Mapping) and any(int(c) < 0 for c in proportions):
                raise EnergizerError("class ids in proportions must be >= 0.")
        self.proportions = proportions

    def class_weights(self, context: QueryContext, num_classes: int) -> np.ndarray:
        p = self.proportions
        if p == "uniform":
            w = np.ones(num_classes)
        elif p == "inverse_labelled":
            labels = np.asarray(context.pool.labels)
            counts = np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes]
            w = 1.0 / (counts + 1.0)
        elif isinstance(p, Mapping):
            w = np.zeros(num_classes)
            for c, v in p.items():
                if int(c) >= num_classes:
                    raise EnergizerError(f"proportions name class {c} but the model has {num_classes} classes.")
                w[int(c)] = float(v)
        else:
            if len(p) != num_classes:
                raise EnergizerError(f"proportions has {len(p)} entries but the model has {num_classes} classes.")
            w = np.asarray(p, dtype=np.float64)
        return w / w.sum()

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        unl, done = trivial_query(context, k)
        if done is not None:
            return done
        scorer = context.require_scorer(type(self).__name__)
        base = self.base
        model = base.model
        model.to(scorer.device)
        was_training = model.training
        model.eval()
        try:
            scores, ranked = scorer.topk(
                lambda batch, batch_idx: base.pool_step(batch, batch_idx),
                unl,
                unl.size,
                check=base._check_scores,
                tag=f"r{context.round:04d}-balanced",
            )
        finally:
            if was_training:
                model.train()
        ranked = np.asarray(ranked, dtype=np.int64)  # best first
        probs = np.asarray(self.pool_outputs(context, ("probs",), ids=ranked)["probs"])
        if not np.isfinite(probs).all():
            raise EnergizerError("ClassBalanced: the model produced NaN/inf probabilities.")
        pred = probs.argmax(1)
        return balanced_pick(ranked, pred, self.class_weights(context, probs.shape[1]), int(k))


def quotas(weights: np.ndarray, k: int) -> np.ndarray:
    """Split ``k`` by normalised ``weights`` with largest remainders (ties to the smaller index)."""
    return allocate(np.asarray(weights, dtype=np.float64) * k, k)


def balanced_pick(ranked: np.ndarray, pred: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` ids from ``ranked`` (best first) following the per-class ``weights`` of the
    predicted classes ``pred``; shortfalls are filled by the best remaining ids."""
    q = quotas(weights, k)
    taken = np.zeros(ranked.size, dtype=bool)
    for c in range(q.size):
        if q[c] == 0:
            continue
        pos = np.flatnonzero(pred == c)[: q[c]]
        taken[pos] = True
    chosen_pos = np.flatnonzero(taken)
    short = k - chosen_pos.size
    if short > 0:
        allowed = weights[np.clip(pred, 0, weights.size - 1)] > 0
        fill = np.flatnonzero(~taken & allowed)[:short]
        if fill.size < short:
            fill = np.concatenate([fill, np.flatnonzero(~taken & ~allowed)[: short - fill.size]])
        chosen_pos = np.sort(np.concatenate([chosen_pos, fill]))
    return np.asarray(ranked[chosen_pos], dtype=np.int64)
