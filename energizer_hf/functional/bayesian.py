"""Uncertainty scores on Monte-Carlo samples of the predictive distribution.

All functions take ``probs`` of shape ``(N, T, C)``: class probabilities of N pool
examples under T stochastic forward passes (MC dropout, Gal & Ghahramani, 2016, or
members of an ensemble) over C classes. Scores are ``(N,)`` and higher means "more worth
labelling". Entropies are in nats.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import (
    ArrayLike,
    FunctionalInputError,
    as_probs,
    check_k,
    make_generator,
    trivial_selection,
)
from .primitives import entropy as _entropy

__all__ = [
    "bald",
    "batchbald_greedy",
    "expected_entropy",
    "mean_std",
    "predictive_entropy",
    "variation_ratios",
]

_EPS = 1e-12


def _mc(probs: ArrayLike) -> Tensor:
    return as_probs(probs, "probs (N, T, C)", 3)


def predictive_entropy(probs: ArrayLike) -> Tensor:
    """Entropy of the MC-averaged predictive distribution, ``H[1/T Σ_t p_t]``.

    Reference: Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with Image Data",
    ICML 2017 ("Max Entropy").

    Complexity: O(N · T · C).

    Args:
        probs: ``(N, T, C)`` MC probabilities.

    Returns:
        ``(N,)`` float32 scores in ``[0, log C]``.

    >>> import torch
    >>> round(predictive_entropy(torch.full((1, 3, 4), 0.25)).item(), 4)  # log(4)
    1.3863
    """
    p = _mc(probs)
    return _entropy(p.mean(1))


def expected_entropy(probs: ArrayLike) -> Tensor:
    """Mean entropy of the individual passes, ``1/T Σ_t H[p_t]`` (aleatoric part).

    Reference: Houlsby et al., "Bayesian Active Learning for Classification and
    Preference Learning", 2011 (second term of BALD).

    Complexity: O(N · T · C).

    Args:
        probs: ``(N, T, C)`` MC probabilities.

    Returns:
        ``(N,)`` float32 scores in ``[0, log C]``.

    >>> import torch
    >>> expected_entropy(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])).item()
    0.0
    """
    p = _mc(probs)
    return _entropy(p).mean(1)


def bald(probs: ArrayLike) -> Tensor:
    """BALD: mutual information between the label and the model parameters.

    ``I[y; ω] = H[E_ω p] − E_ω H[p]`` (predictive minus expected entropy), high when the
    passes are individually confident but disagree with each other (epistemic
    uncertainty), zero when every pass predicts the same distribution. Clamped at 0
    against round-off.

    Reference: Houlsby et al., 2011; Gal, Islam & Ghahramani, ICML 2017.

    Complexity: O(N · T · C).

    Args:
        probs: ``(N, T, C)`` MC probabilities.

    Returns:
        ``(N,)`` float32 scores in ``[0, log min(C, T)]``.

    >>> import torch
    >>> disagree = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> round(bald(disagree).item(), 4)  # log(2)
    0.6931
    """
    p = _mc(probs)
    return (_entropy(p.mean(1)) - _entropy(p).mean(1)).clamp_min(0.0)


def variation_ratios(probs: ArrayLike) -> Tensor:
    """Variation ratio ``1 − f_m / T``, with ``f_m`` the count of the modal argmax class.

    Reference: Freeman, "Elementary Applied Statistics", 1965; used for deep active
    learning by Gal, Islam & Ghahramani, ICML 2017.

    Complexity: O(N · T · C).

    Args:
        probs: ``(N, T, C)`` MC probabilities.

    Returns:
        ``(N,)`` float32 scores in ``[0, 1 − 1/C]``.

    >>> import torch
    >>> p = torch.tensor([[[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]])
    >>> variation_ratios(p).item()  # 3 of 4 passes vote class 0
    0.25
    """
    p = _mc(probs)
    n, t, c = p.shape
    votes = torch.zeros(n, c)
    votes.scatter_add_(1, p.argmax(-1), torch.ones(n, t))
    return 1.0 - votes.max(1).values / t


def mean_std(probs: ArrayLike) -> Tensor:
    """Mean over classes of the (population) standard deviation over passes.

    ``1/C Σ_c sqrt(E_t[p_tc²] − E_t[p_tc]²)``.

    Reference: Kampffmeyer et al., "Semantic Segmentation of Small Objects ...", CVPR-W
    2016; Kendall et al., "Bayesian SegNet", 2015.

    Complexity: O(N · T · C).

    Args:
        probs: ``(N, T, C)`` MC probabilities.

    Returns:
        ``(N,)`` float32 scores in ``[0, 0.5]``.

    >>> import torch
    >>> mean_std(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])).item()
    0.5
    """
    p = _mc(probs)
    return p.std(dim=1, correction=0).mean(-1)


def _sample_categorical(probs: Tensor, generator: torch.Generator) -> Tensor:
    """One draw per row of ``probs`` (rows sum to ~1) by inverse-CDF sampling."""
    cum = probs.double().cumsum(1)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=torch.float64) * cum[:, -1:]
    return (cum <= u).sum(1).clamp_max(probs.shape[1] - 1)


class _JointConfigs:
    """Joint label configurations of the current batch and the posterior over passes.

    Exact enumeration of the ``C**n`` configurations (weights = their joint
    probabilities) while ``C**n <= num_samples``; afterwards ``M ≈ num_samples``
    configurations sampled from the joint predictive, stratified over passes, with
    uniform weights. Sampled configurations are extended incrementally: configuration m
    keeps its pass ω_m, and the label of each new batch member is drawn from
    ``p_{ω_m}``, which is again a sample of the extended joint.
    """

    def __init__(self, t: int, c: int, num_samples: int, generator: torch.Generator) -> None:
        self.t, self.c, self.num_samples, self.gen = t, c, num_samples, generator
        self.members: list[Tensor] = []  # (T, C) log-probabilities of the batch members
        self.log_joint = torch.zeros(1, t, dtype=torch.float64)  # log p(config m | ω_t)
        self.omega: Tensor | None = None  # (M,) pass of each sampled configuration

    def add(self, log_p: Tensor) -> None:
        self.members.append(log_p)
        lp = log_p.double()
        if self.omega is None and self.c ** len(self.members) <= self.num_samples:
            self.log_joint = (
                (self.log_joint.unsqueeze(2) + lp.unsqueeze(0)).permute(0, 2, 1).reshape(-1, self.t)
            )
            return
        if self.omega is None:  # switch to sampling: draw every member so far.
            per_pass = max(1, self.num_samples // self.t)
            self.omega = torch.arange(self.t).repeat_interleave(per_pass)
            self.log_joint = torch.zeros(self.omega.numel(), self.t, dtype=torch.float64)
            todo = self.members
        else:
            todo = [log_p]
        for member in todo:
            y = _sample_categorical(member.exp()[self.omega], self.gen)  # (M,)
            self.log_joint += member.double()[:, y].T

    def posterior(self) -> tuple[Tensor, Tensor]:
        """``(post, weights)``: ``(M, T)`` rows p(ω | config m) and ``(M,)`` weights."""
        post = torch.softmax(self.log_joint, dim=1).float()
        m = post.shape[0]
        if self.omega is None:
            weights = torch.softmax(torch.logsumexp(self.log_joint, dim=1), dim=0).float()
        else:
            weights = torch.full((m,), 1.0 / m)
        return post, weights


def batchbald_greedy(
    probs: ArrayLike,
    k: int,
    *,
    num_samples: int = 1000,
    candidate_pool_size: int = 1000,
    labelled: ArrayLike | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
    chunk_size: int = 128,
    lazy: bool = True,
) -> Tensor:
    """Greedy BatchBALD: a batch that maximises the *joint* mutual information.

    Step ``j`` adds the candidate maximising ``I[y_c; ω | y_batch]
    = H[y_c | y_batch] − E_ω H[y_c | ω]``, which equals the gain in
    ``I[y_batch, y_c; ω]`` and so cannot reward copies of points already in the batch.
    The joint over the batch labels is enumerated exactly while ``C**|batch| <=
    num_samples`` and afterwards estimated from ``num_samples`` configurations sampled
    from the joint predictive (importance-weighted estimator of Kirsch et al., written as
    an expectation of posterior-over-passes entropies, which avoids underflow of long
    products). To stay tractable only the ``max(candidate_pool_size, k)`` candidates with
    the highest BALD score are considered (pre-filter), and candidates are evaluated
    lazily (Minoux's lazy greedy): the gain is submodular, so a candidate's previous gain
    (initially its BALD score) bounds its current one, and candidates are scored in
    chunks in decreasing order of that bound until no remaining bound can beat the best
    gain found. With sampled configurations the gains are noisy estimates, so the bound
    is approximate; ``lazy=False`` scores every candidate at every step.

    Reference: Kirsch, van Amersfoort & Gal, "BatchBALD: Efficient and Diverse Batch
    Acquisition for Deep Bayesian Active Learning", NeurIPS 2019.

    Complexity: O(N · T · C) for the BALD pre-filter plus, per step, O(M · k · T) to
    build the configurations and O(e · M · T · C) to score e candidates, where e = m
    (pre-filtered candidates) without laziness and usually one or two chunks with it;
    M configurations. Memory O(chunk_size · M · C + M · T + m · T · C).

    Args:
        probs: ``(N, T, C)`` MC probabilities.
        k: batch size.
        num_samples: number M of joint label configurations (exact below it).
        candidate_pool_size: size m of the BALD top-m pre-filter.
        labelled: boolean mask ``(N,)`` or indices of points that must not be selected.
        generator: random generator for the configuration sampling (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.
        chunk_size: candidates scored per block.
        lazy: use the lazy-greedy bound to skip candidates that cannot win.

    Returns:
        ``(min(k, n_candidates),)`` int64 indices into ``probs``, in selection order (all
        candidates, ascending, when ``k >= n_candidates``).

    >>> import torch
    >>> a = torch.tensor([[0.99, 0.01], [0.99, 0.01], [0.01, 0.99], [0.01, 0.99]])
    >>> b = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    >>> batchbald_greedy(torch.stack([a, a, b]), k=2)[1].item()  # not the duplicate of a
    2
    """
    p = _mc(probs)
    k = check_k(k)
    n, t, c = p.shape
    if num_samples < 1 or candidate_pool_size < 1 or chunk_size < 1:
        raise FunctionalInputError("num_samples, candidate_pool_size and chunk_size must be >= 1.")
    k, cand_mask, done = trivial_selection(k, labelled, n)
    if done is not None:
        return done
    candidates = cand_mask.nonzero().squeeze(1)
    gen = make_generator(generator, seed)

    scores = bald(p)
    m = min(max(candidate_pool_size, k), candidates.numel())
    top = torch.topk(scores[candidates], m, sorted=True).indices
    pool = candidates[top]  # (m,) BALD-ranked candidates
    pp = p[pool]  # (m, T, C)
    log_pp = pp.clamp_min(_EPS).log()
    cond_ent = _entropy(pp).mean(1)  # (m,)

    def gains(post: Tensor, weights: Tensor, idx: Tensor) -> Tensor:
        # p(y_c | config m) = Σ_t p(ω_t | config m) p_t(y_c): one (M, T) @ (T, b*C) matmul.
        block = pp[idx].permute(1, 0, 2).reshape(t, -1)
        pred = (post @ block).view(post.shape[0], idx.numel(), c)
        return weights @ _entropy(pred) - cond_ent[idx]

    # Upper bounds of the gains: I[y_c; ω | y_B] <= I[y_c; ω] = BALD and it only shrinks as
    # the batch grows (submodularity), so stale gains stay valid bounds (lazy greedy).
    bound = scores[pool].clone()
    chosen: list[int] = []
    available = torch.ones(m, dtype=torch.bool)
    joint = _JointConfigs(t, c, num_samples, gen)
    for _ in range(k):
        post, weights = joint.posterior()  # (M, T), (M,)
        order = torch.argsort(bound.masked_fill(~available, -float("inf")), descending=True)
        order = order[: int(available.sum())]
        best, best_gain = -1, -float("inf")
        for start in range(0, order.numel(), chunk_size):
            idx = order[start : start + chunk_size]
            if lazy and best_gain >= float(bound[idx[0]]):
                break
            g = gains(post, weights, idx)
            bound[idx] = g
            j = int(torch.argmax(g))
            if float(g[j]) > best_gain:
                best, best_gain = int(idx[j]), float(g[j])
        chosen.append(best)
        available[best] = False
        joint.add(log_pp[best])
    return pool[torch.tensor(chosen, dtype=torch.long)]
