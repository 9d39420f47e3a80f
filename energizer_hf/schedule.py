"""The size-dependent fit schedule of the HF-native path.

An active-learning run fits on 25 labels in its first round and on hundreds or thousands
later: a fixed number of epochs is 2 optimizer steps per epoch at first (far too few for a
pretrained encoder to move its fresh head) and many more later. :class:`FitSchedule` sizes
each round's fit from the number of labelled rows instead:

* at least ``min_steps`` optimizer steps (whole epochs are added until they are reached),
  and at least ``max_epochs`` epochs once the labelled set is large;
* linear warm-up over ``warmup_ratio`` of those steps, then linear decay to 0 (in
  :class:`~energizer_hf.model.HFSequenceClassifier`);
* model selection on held-out labelled rows (``validation_perc > 0``) only when there are
  at least ``min_validation_size`` of them (``None``: ``max(20, 2 x classes)``): the best
  validation checkpoint is kept, evaluated about ``evals_per_fit`` times per fit. With
  fewer held-out rows the estimate is noise, so they are trained on and the fixed schedule
  runs to its end.

The values of :data:`DEFAULT_SCHEDULE` (and the learning rate and batch size of
:class:`~energizer_hf.learner.RunConfig`) were chosen by measurement on TREC-6, SST-2,
AG News and Banking77 (``benchmarks/finetune_defaults.py``; see "Training defaults" in the
docs). The schedule before it (a fixed 3 epochs) is ``FitSchedule(min_steps=0,
max_epochs=3, min_validation_size=1)``.

>>> plan = FitSchedule(min_steps=200, max_epochs=10).plan(num_train=25, batch_size=16)
>>> plan.steps_per_epoch, plan.max_epochs, plan.total_steps
(2, 100, 200)
>>> FitSchedule(min_steps=200, max_epochs=10).plan(num_train=1000, batch_size=16).max_epochs
10
>>> FitSchedule(min_steps=0, max_epochs=3).plan(num_train=25, batch_size=16).total_steps
6
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from energizer_hf.errors import BudgetError

__all__ = ["DEFAULT_SCHEDULE", "FitPlan", "FitSchedule"]


@dataclass(frozen=True)
class FitPlan:
    """One round's fit, sized by :meth:`FitSchedule.plan`.

    Attributes:
        num_train: rows trained on (held-out rows too small for selection included).
        num_validation: held-out rows used for model selection (0: none).
        batch_size: training batch size.
        steps_per_epoch: optimizer steps per epoch.
        max_epochs: epochs to run (whole epochs).
        total_steps: optimizer steps of the fit (``max_epochs * steps_per_epoch``).
        select_best: keep the best validation checkpoint.
        check_val_every_n_epoch: epochs between validation passes (when selecting).
        train_on_validation: the held-out rows were too few to select on and are trained on.
    """

    num_train: int
    num_validation: int
    batch_size: int
    steps_per_epoch: int
    max_epochs: int
    total_steps: int
    select_best: bool
    check_val_every_n_epoch: int
    train_on_validation: bool


@dataclass(frozen=True)
class FitSchedule:
    """Sizes a round's fit from the labelled-set size.

    Args:
        min_steps: at least this many optimizer steps per fit; epochs are added until they
            are reached. ``0``: exactly ``max_epochs`` epochs (the fixed schedule).
        max_epochs: epochs per fit when ``min_steps`` needs fewer.
        min_validation_size: held-out rows needed for model selection; ``None``:
            ``max(20, 2 * num_classes)``.
        evals_per_fit: about how many validation passes a fit makes when it selects.
    """

    min_steps: int = 200
    max_epochs: int = 10
    min_validation_size: int | None = None
    evals_per_fit: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.min_steps, int) or isinstance(self.min_steps, bool) or self.min_steps < 0:
            raise BudgetError(f"min_steps must be an integer >= 0, got {self.min_steps!r}.")
        if not isinstance(self.max_epochs, int) or isinstance(self.max_epochs, bool) or self.max_epochs <= 0:
            raise BudgetError(f"max_epochs must be a positive integer, got {self.max_epochs!r}.")
        if self.min_validation_size is not None and self.min_validation_size < 1:
            raise BudgetError(
                f"min_validation_size must be >= 1 (or None for max(20, 2 x classes)), got "
                f"{self.min_validation_size!r}."
            )
        if self.evals_per_fit < 1:
            raise BudgetError(f"evals_per_fit must be >= 1, got {self.evals_per_fit!r}.")

    def validation_threshold(self, num_classes: int | None) -> int:
        """Held-out rows needed to select on."""
        if self.min_validation_size is not None:
            return self.min_validation_size
        return max(20, 2 * int(num_classes or 0))

    def plan(
        self,
        num_train: int,
        batch_size: int,
        *,
        num_validation: int = 0,
        num_classes: int | None = None,
        accumulate_grad_batches: int = 1,
        trainable_validation: bool = True,
    ) -> FitPlan:
        """The fit for ``num_train`` training rows and ``num_validation`` held-out rows.

        Args:
            num_train: labelled training rows.
            batch_size: training batch size.
            num_validation: held-out labelled rows.
            num_classes: number of classes (for the default validation threshold).
            accumulate_grad_batches: batches per optimizer step.
            trainable_validation: the held-out rows are labelled pool rows that may be
                trained on when too few to select on (``False``: a separate validation
                split, too small to select on, is simply not used).

        Returns:
            The :class:`FitPlan`.
        """
        if num_train + (num_validation if trainable_validation else 0) <= 0:
            raise BudgetError("A fit needs at least one labelled row.")
        select = num_validation > 0 and num_validation >= self.validation_threshold(num_classes)
        train_on_val = num_validation > 0 and not select and trainable_validation
        n = num_train + (num_validation if train_on_val else 0)
        accumulate = max(int(accumulate_grad_batches), 1)
        steps_per_epoch = max(math.ceil(math.ceil(n / batch_size) / accumulate), 1)
        epochs = self.max_epochs
        if self.min_steps:
            epochs = max(epochs, math.ceil(self.min_steps / steps_per_epoch))
        every = 1
        if select:
            every = max(1, round(epochs / self.evals_per_fit))
            epochs = math.ceil(epochs / every) * every  # the last epoch is validated
        return FitPlan(
            num_train=n,
            num_validation=num_validation if select else 0,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            max_epochs=epochs,
            total_steps=epochs * steps_per_epoch,
            select_best=select,
            check_val_every_n_epoch=every,
            train_on_validation=train_on_val,
        )


DEFAULT_SCHEDULE = FitSchedule()
