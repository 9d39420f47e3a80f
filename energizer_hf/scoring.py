"""Scoring the unlabelled pool: the running top-k, the pool scorer and the query context.

:class:`PoolScorer` runs a model over pool ids as fast as the model allows: batches are
built by token length (sorted, dynamic padding, batch size in examples or in tokens),
under ``torch.inference_mode`` and, on a GPU, autocast. It either keeps a running top-k
of per-example scores or writes per-example outputs (logits, probabilities, embeddings,
MC-dropout probabilities) in pool order. On several processes (``accelerate launch``,
``torchrun``, Lightning DDP) the length-sorted batches are dealt round-robin to the ranks,
so every id is scored exactly once, with no padding duplicates; results are exchanged
through files in a directory the ranks share, so a rank that fails is named (and the
others stop waiting after a timeout) instead of hanging a collective.

The running top-k keeps at most ``2 * k`` candidate scores in memory whatever the pool
size: new scores are appended to a buffer which is cut back to the best ``k`` whenever it
grows past ``2 * k`` (amortised O(N log k) for a pool of N rows). Ties are broken
deterministically in favour of the smaller pool id, so the same scores always give the
same query, whatever the batch order or the number of processes that produced them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from energizer_hf.distributed import distributed_rank_world
from energizer_hf.errors import EmptyPoolError, EnergizerError, InvalidScoresError
from energizer_hf.functional.primitives import select_topk
from energizer_hf.model_outputs import logits_from_output, mc_probabilities
from energizer_hf.utils import atomic_write_json

__all__ = [
    "BatchSource",
    "PoolScorer",
    "QueryContext",
    "RunningTopK",
    "ScoringError",
    "plan_by_length",
    "select_topk",
]

log = logging.getLogger(__name__)
OUTPUT_KINDS = ("logits", "probs", "embeddings", "mc_probs")


class RunningTopK:
    """Keep the ``k`` best (score, id) pairs of a stream of batches.

    >>> import numpy as np
    >>> acc = RunningTopK(2)
    >>> acc.update(np.array([0.1, 0.9, 0.5]), np.array([10, 11, 12]))
    >>> acc.update(np.array([0.9, 0.2]), np.array([3, 4]))
    >>> acc.ids().tolist()  # the tie at 0.9 goes to the smaller id first
    [3, 11]
    """

    def __init__(self, k: int) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}.")
        self.k = k
        self._scores: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._size = 0
        self.num_seen = 0

    def update(self, scores: np.ndarray | torch.Tensor, ids: np.ndarray | torch.Tensor) -> None:
        if isinstance(scores, torch.Tensor):
            scores = scores.detach().float().cpu().numpy()
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if scores.shape != ids.shape:
            raise ValueError(f"Got {scores.size} scores for {ids.size} ids.")
        self._scores.append(scores)
        self._ids.append(ids)
        self._size += scores.size
        self.num_seen += scores.size
        if self._size > 2 * self.k:
            self._compact()

    def _compact(self) -> None:
        s, i = select_topk(np.concatenate(self._scores), np.concatenate(self._ids), self.k)
        self._scores, self._ids, self._size = [s], [i], s.size

    def merge(self, other: RunningTopK) -> None:
        """Fold another accumulator in (e.g. one from another process)."""
        s, i = other.topk()
        self.update(s, i)

    def topk(self) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` of the best ``k`` seen so far, best first."""
        if not self._scores:
            return np.empty(0), np.empty(0, dtype=np.int64)
        self._compact()
        return self._scores[0], self._ids[0]

    def ids(self) -> np.ndarray:
        return self.topk()[1]

    def __len__(self) -> int:
        return min(self._size, self.k)



class ScoringError(EnergizerError):
    """Scoring failed on a rank, or a rank did not finish in time."""


class BatchSource(Protocol):
    """Turns pool ids into batches: the data adapters implement it."""

    def plan(self, ids: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
        """Split ``ids`` into batches of ids (length-sorted where lengths are known)."""
        ...

    def collate(self, ids: np.ndarray) -> Any:
        """The model-ready batch of these ids (inputs only, no labels)."""
        ...


def plan_by_length(
    ids: np.ndarray,
    lengths: np.ndarray | None,
    batch_size: int,
    max_tokens: int | None = None,
) -> list[np.ndarray]:
    """Batches of ids sorted by length; with ``max_tokens``, each padded batch holds at most
    that many tokens (and at most ``batch_size`` rows)."""
    ids = np.asarray(ids, dtype=np.int64)
    if lengths is not None:
        order = np.argsort(lengths[ids], kind="stable")
        ids = ids[order]
        sorted_lengths = lengths[ids]
    if max_tokens is None or lengths is None:
        return [ids[i : i + batch_size] for i in range(0, ids.size, batch_size)]
    batches, start = [], 0
    n = ids.size
    while start < n:
        end = start + 1
        # lengths ascend, so the last row of a batch sets its padded length
        while end < n and end - start < batch_size and (end - start + 1) * sorted_lengths[end] <= max_tokens:
            end += 1
        batches.append(ids[start:end])
        start = end
    return batches


def _move(batch: Any, device: torch.device) -> Any:
    if device.type == "cpu":
        return batch
    from lightning_fabric.utilities.apply_func import move_data_to_device

    return move_data_to_device(batch, device)


class PoolScorer:
    """Score pool ids with a model, on one process or many.

    Args:
        source: a :class:`BatchSource` (the loop's data adapter).
        batch_size: rows per batch (> 0).
        max_tokens: optional cap on ``rows x padded length`` per batch.
        device: where to run; default CUDA when available, else CPU.
        precision: ``"auto"`` (bf16 autocast on a GPU that has it, else fp16 on GPU, fp32
            on CPU), ``"bf16"``, ``"fp16"`` or ``"fp32"``.
        exchange_dir: a directory all ranks share, for results and failure reports; needed
            on several processes (the loop gives ``<run_dir>/scoring``).
        timeout: seconds a rank waits for the others before naming the missing ones.
        progress: show a progress bar with examples per second on rank 0.
        num_classes: the expected logits width, checked on the first batch.
        collective: score on every rank of a distributed run (each rank its share, the
            results exchanged); ``False`` scores on this process alone (e.g. rank 0 asking
            the model for pre-annotations while the other ranks wait).
    """

    collective: bool = True

    def __init__(
        self,
        source: BatchSource,
        *,
        batch_size: int = 64,
        max_tokens: int | None = None,
        device: torch.device | str | None = None,
        precision: str = "auto",
        exchange_dir: str | Path | None = None,
        timeout: float = 600.0,
        progress: bool = False,
        num_classes: int | None = None,
        collective: bool = True,
    ) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise EnergizerError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if max_tokens is not None and max_tokens <= 0:
            raise EnergizerError(f"max_tokens must be positive (or None), got {max_tokens!r}.")
        if precision not in ("auto", "bf16", "fp16", "fp32"):
            raise EnergizerError(f"precision must be auto, bf16, fp16 or fp32; got {precision!r}.")
        self.source = source
        self.batch_size = int(batch_size)
        self.max_tokens = max_tokens
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.precision = precision
        self.exchange_dir = Path(exchange_dir) if exchange_dir is not None else None
        self.timeout = timeout
        self.progress = progress
        self.num_classes = num_classes
        self.collective = collective
        self._calls: dict[str, int] = {}

    # ------------------------------------------------------------------ plumbing
    def _rank_world(self) -> tuple[int, int]:
        return distributed_rank_world() if self.collective else (0, 1)

    def _autocast(self):
        if self.device.type != "cuda" or self.precision == "fp32":
            return contextlib.nullcontext()
        if self.precision == "fp16" or (self.precision == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cuda", dtype=torch.bfloat16)

    def _shard(self, ids: np.ndarray, rank: int, world: int) -> list[np.ndarray]:
        batches = self.source.plan(ids, self.batch_size, self.max_tokens)
        # round-robin over length-sorted batches: every rank gets short and long ones
        return batches[rank::world]

    def _call_dir(self, tag: str, world: int) -> Path | None:
        n = self._calls.get(tag, 0)
        self._calls[tag] = n + 1
        if self.exchange_dir is None:
            if world > 1:
                raise ScoringError(
                    "Scoring on several processes needs an exchange_dir that every rank shares "
                    "(the loop uses <run_dir>/scoring)."
                )
            return None
        return self.exchange_dir / f"{tag}-{n:03d}"

    def _bar(self, total: int, rank: int, desc: str):
        if not self.progress or rank != 0:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="ex", unit_scale=True, leave=False)

    def _check_logits(self, logits: Any, model: Any, rows: int) -> torch.Tensor:
        logits = logits_from_output(logits, model)
        if logits.shape[0] != rows or (self.num_classes is not None and logits.shape[1] != self.num_classes):
            raise InvalidScoresError(
                f"{type(model).__name__} returned logits of shape {tuple(logits.shape)} for a batch "
                f"of {rows} rows; expected ({rows}, {self.num_classes or 'num_classes'})."
            )
        return logits

    # ------------------------------------------------------------------ exchange
    @contextlib.contextmanager
    def _guard(self, call_dir: Path | None, rank: int, world: int, bar: Any):
        """Report a failure to the other ranks (then re-raise); always close the bar."""
        try:
            yield
        except BaseException as err:
            if call_dir is not None and world > 1:
                self._report(call_dir, rank, err)
            raise
        finally:
            if bar is not None:
                bar.close()

    def _report(self, call_dir: Path, rank: int, error: BaseException | None) -> None:
        call_dir.mkdir(parents=True, exist_ok=True)
        if error is None:
            atomic_write_json(call_dir / f"rank{rank}.done", {"rank": rank})
        else:
            atomic_write_json(
                call_dir / f"rank{rank}.error",
                {"rank": rank, "error": f"{type(error).__name__}: {error}"},
            )

    def _wait(self, call_dir: Path, world: int, marker: str = "done") -> None:
        deadline = time.monotonic() + self.timeout
        pending = set(range(world))
        delay = 0.005
        while pending:
            for r in sorted(pending):
                err = call_dir / f"rank{r}.error"
                if err.exists():
                    info = json.loads(err.read_text())
                    raise ScoringError(f"Scoring failed on rank {r}: {info['error']}")
                if (call_dir / f"rank{r}.{marker}").exists():
                    pending.discard(r)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ScoringError(
                    f"Rank(s) {sorted(pending)} did not finish scoring within {self.timeout:.0f} s "
                    "(crashed or hung?); the other ranks stopped waiting."
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    # ------------------------------------------------------------------ top-k
    def topk(
        self,
        step: Callable[[Any, int], torch.Tensor],
        ids: np.ndarray,
        k: int,
        *,
        check: Callable[[Any, int], torch.Tensor] | None = None,
        tag: str = "topk",
        desc: str = "Scoring pool",
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best ``(scores, ids)`` of ``step(batch, batch_idx)`` over ``ids``,
        identical on every rank."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            raise EmptyPoolError("There are no pool rows to score: the view has zero rows.")
        rank, world = self._rank_world()
        call_dir = self._call_dir(tag, world)
        acc = RunningTopK(min(k, ids.size))
        bar = self._bar(ids.size, rank, desc)
        with self._guard(call_dir, rank, world, bar), torch.inference_mode(), self._autocast():
            for batch_idx, batch_ids in enumerate(self._shard(ids, rank, world)):
                batch = _move(self.source.collate(batch_ids), self.device)
                scores = step(batch, batch_idx)
                if check is not None:
                    scores = check(scores, len(batch_ids))
                acc.update(scores, batch_ids)
                if bar is not None:
                    bar.update(len(batch_ids) * world)
        if world == 1:
            return acc.topk()
        assert call_dir is not None
        call_dir.mkdir(parents=True, exist_ok=True)
        s, i = acc.topk()
        np.savez(call_dir / f"rank{rank}.topk.npz", scores=s, ids=i)
        self._report(call_dir, rank, None)
        self._wait(call_dir, world)
        merged = RunningTopK(min(k, ids.size))
        for r in range(world):
            with np.load(call_dir / f"rank{r}.topk.npz") as data:
                merged.update(data["scores"], data["ids"])
        return merged.topk()

    # ------------------------------------------------------------------ outputs
    def outputs(
        self,
        forward: Callable[[Any], Any],
        ids: np.ndarray,
        what: Sequence[str] = ("probs",),
        *,
        model: Any = None,
        embed: Callable[[Any], torch.Tensor] | None = None,
        forward_with_embeddings: Callable[[Any], tuple[Any, torch.Tensor]] | None = None,
        num_mc_samples: int = 10,
        mc_replicate: bool = False,
        tag: str = "outputs",
        desc: str = "Pool outputs",
        who: str | None = None,
        activation: str = "softmax",
    ) -> dict[str, np.ndarray]:
        """Per-example outputs over ``ids``, returned in the order of ``ids``.

        ``what`` holds any of ``logits``, ``probs``, ``embeddings`` (needs ``embed``), and
        ``mc_probs`` (``num_mc_samples`` passes with dropout on; with ``mc_replicate`` the
        batch is repeated in memory and run once, faster on a GPU). Arrays are memory-mapped
        files under the exchange directory when there is one, in memory otherwise. ``who``
        (e.g. the strategy) is named in errors. ``activation`` turns logits into ``probs``:
        ``"softmax"`` (one class) or ``"sigmoid"`` (multi-label: one probability per label).
        """
        ids = np.asarray(ids, dtype=np.int64)
        unknown = set(what) - set(OUTPUT_KINDS)
        if unknown:
            raise EnergizerError(f"Unknown outputs {sorted(unknown)}; choose from {OUTPUT_KINDS}.")
        if ids.size == 0:
            raise EmptyPoolError("There are no pool rows to score: the view has zero rows.")
        if "embeddings" in what and embed is None and forward_with_embeddings is None:
            name = type(model).__name__ if model is not None else "the model"
            raise EnergizerError(
                f"Embeddings were requested but {name} has no `embed(inputs)` hook: define "
                "`embed` on the model to return (batch, dim) embeddings."
            )
        rank, world = self._rank_world()
        call_dir = self._call_dir(tag, world)
        position = {int(v): j for j, v in enumerate(ids.tolist())} if ids.size < 2_000_000 else None
        order = None if position is not None else np.argsort(ids, kind="stable")
        shards: dict[str, Any] = {}
        my_batches = self._shard(ids, rank, world)
        n_mine = int(sum(b.size for b in my_batches))
        my_positions = np.empty(n_mine, dtype=np.int64)
        filled = 0
        bar = self._bar(ids.size, rank, desc)

        def positions_of(batch_ids: np.ndarray) -> np.ndarray:
            if position is not None:
                return np.fromiter((position[int(v)] for v in batch_ids), dtype=np.int64, count=batch_ids.size)
            return order[np.searchsorted(ids[order], batch_ids)]

        def store(name: str, values: torch.Tensor, start: int) -> None:
            arr = values.detach().float().cpu().numpy()
            if name not in shards:
                shape = (n_mine if world > 1 else ids.size, *arr.shape[1:])
                if call_dir is not None:
                    call_dir.mkdir(parents=True, exist_ok=True)
                    path = call_dir / (f"rank{rank}.{name}.npy" if world > 1 else f"{name}.npy")
                    shards[name] = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
                else:
                    shards[name] = np.empty(shape, dtype=np.float32)
            if world > 1:
                shards[name][start : start + arr.shape[0]] = arr
            else:
                shards[name][my_positions[start : start + arr.shape[0]]] = arr

        with self._guard(call_dir, rank, world, bar), torch.inference_mode(), self._autocast():
            for batch_ids in my_batches:
                batch = _move(self.source.collate(batch_ids), self.device)
                my_positions[filled : filled + batch_ids.size] = positions_of(batch_ids)
                need_logits = "logits" in what or "probs" in what
                emb = None
                if need_logits or "embeddings" in what:
                    if "embeddings" in what and forward_with_embeddings is not None:
                        out, emb = forward_with_embeddings(batch)
                    else:
                        out = forward(batch) if need_logits else None
                        if "embeddings" in what:
                            emb = embed(batch)
                    if out is not None and need_logits:
                        logits = self._check_logits(out, model, batch_ids.size)
                        if "logits" in what:
                            store("logits", logits, filled)
                        if "probs" in what:
                            act = torch.sigmoid if activation == "sigmoid" else (lambda x: torch.softmax(x, -1))
                            store("probs", act(logits.float()), filled)
                    if emb is not None:
                        store("embeddings", emb, filled)
                if "mc_probs" in what:
                    store("mc_probs", self._mc_probs(forward, batch, batch_ids.size, model, num_mc_samples, mc_replicate, who), filled)
                filled += batch_ids.size
                if bar is not None:
                    bar.update(batch_ids.size * world)
        for arr in shards.values():
            if isinstance(arr, np.memmap):
                arr.flush()
        if world == 1:
            return {name: shards[name] for name in what}
        assert call_dir is not None
        call_dir.mkdir(parents=True, exist_ok=True)  # a rank with no rows created nothing yet
        np.save(call_dir / f"rank{rank}.positions.npy", my_positions)
        self._report(call_dir, rank, None)
        self._wait(call_dir, world)
        if rank == 0:
            for name in what:
                first = np.load(call_dir / f"rank0.{name}.npy", mmap_mode="r")
                full = np.lib.format.open_memmap(
                    call_dir / f"{name}.npy", mode="w+", dtype=np.float32, shape=(ids.size, *first.shape[1:])
                )
                for r in range(world):
                    pos = np.load(call_dir / f"rank{r}.positions.npy")
                    if pos.size:  # fewer batches than ranks: some ranks scored nothing
                        full[pos] = np.load(call_dir / f"rank{r}.{name}.npy", mmap_mode="r")
                full.flush()
                del full
            atomic_write_json(call_dir / "rank0.assembled", {"outputs": list(what)})
        else:
            self._wait(call_dir, 1, marker="assembled")
        return {name: np.load(call_dir / f"{name}.npy", mmap_mode="r") for name in what}

    def _mc_probs(
        self, forward: Callable[[Any], Any], batch: Any, rows: int, model: Any, passes: int, replicate: bool,
        who: str | None,
    ) -> torch.Tensor:
        return mc_probabilities(
            forward, batch, model, passes, rows=rows, replicate=replicate,
            to_logits=lambda out, n: self._check_logits(out, model, n), who=who or "Scoring",
        )

    def local(self) -> PoolScorer:
        """A copy that scores on this process alone, in memory (see ``collective``)."""
        other = copy.copy(self)
        other.collective, other.exchange_dir = False, None
        other._calls = {}
        return other

    def cleanup(self, keep: Sequence[str] = (), before_round: int | None = None) -> None:
        """Remove exchange files of earlier calls (rank 0 only).

        With ``before_round``, only the calls of earlier rounds (tags ``rNNNN-...`` with
        ``NNNN < before_round``) go: the other ranks may already be writing this round's
        files, since nothing synchronises the ranks before a query starts.
        """
        if self.exchange_dir is None or not self.exchange_dir.exists():
            return
        rank, _ = self._rank_world()
        if rank != 0:
            return
        for child in self.exchange_dir.iterdir():
            if child.name in keep:
                continue
            if before_round is not None:
                head = child.name.split("-", 1)[0]
                if not (len(head) == 5 and head[0] == "r" and head[1:].isdigit() and int(head[1:]) < before_round):
                    continue
            shutil.rmtree(child, ignore_errors=True)


@dataclass
class QueryContext:
    """Everything a strategy may use to choose ids, and nothing it should not see.

    Attributes:
        pool: the :class:`~energizer_hf.pool.ActivePool`.
        round: the current round (the queried ids will be labelled as ``round + 1``).
        seed: the run's seed; strategies derive their randomness from ``(seed, round)``.
        scorer: the :class:`PoolScorer` that runs models over pool ids (inputs only:
            labels are never passed to the model).
        timings: strategies add the seconds they spend (``score``, ``select``).
        extras: JSON-able facts a strategy reports about its query (e.g. the sub-pool
            size of :class:`~energizer_hf.query_strategies.AnchorAL`); the loop writes them
            to the round record as ``query_info``.
        run_dir: the run directory, where strategies may keep persistent state (e.g.
            the ANN index); ``None`` outside a loop.
        scores: acquisition scores of chosen ids that the strategy reported
            (:meth:`report_scores`); the loop records them as ``queried_scores`` and the
            round datasets as ``score``.
    """

    pool: Any
    round: int
    seed: int
    scorer: PoolScorer | None = None
    progress: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    scores: dict[int, float] = field(default_factory=dict)

    def report_scores(self, ids: Any, scores: Any) -> None:
        """Keep the acquisition ``scores`` of pool ``ids`` (same length)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if ids.size == values.size:
            self.scores.update(zip(ids.tolist(), values.tolist()))

    def scores_of(self, ids: Any) -> list[float | None] | None:
        """The reported scores of ``ids`` (``None`` for an id without one); ``None`` when
        the strategy reported none of them."""
        out = [self.scores.get(int(i)) for i in np.asarray(ids, dtype=np.int64).tolist()]
        return out if any(v is not None for v in out) else None

    @property
    def device(self) -> torch.device:
        return self.scorer.device if self.scorer is not None else torch.device("cpu")

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator that depends only on the seed, the round and ``salt``."""
        return np.random.default_rng([self.seed, self.round, salt])

    def add_time(self, key: str, start: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - start)

    def require_scorer(self, who: str) -> PoolScorer:
        if self.scorer is None:
            raise EnergizerError(f"{who} needs a pool scorer in its query context.")
        return self.scorer

