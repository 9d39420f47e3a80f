"""Pure, stateless maths of the active-learning strategy zoo.

Every function takes tensors (numpy arrays are converted with ``torch.as_tensor``),
computes in float32 on the CPU (tensors on other devices are copied), holds no state,
does no I/O, and is deterministic given an explicit ``generator`` or ``seed``. Nothing
materialises an ``(N, N)`` matrix over the pool. Labelled examples are given as a
boolean mask of shape ``(N,)`` or an index array and are never selected; selectors return
``min(k, n_candidates)`` distinct int64 indices (all candidates, ascending, when
``k >= n_candidates``). Bad inputs raise subclasses of :class:`FunctionalInputError`
(itself a ``ValueError``).

- :mod:`~energizer_hf.functional.bayesian`: scores on MC-dropout samples, BatchBALD.
- :mod:`~energizer_hf.functional.diversity`: k-means, k-center, BERT-KM, TypiClust,
  ProbCover; :mod:`~energizer_hf.functional.hac`: average-linkage HAC.
- :mod:`~energizer_hf.functional.hybrid`: BADGE, Cluster-Margin, CAL, EGL.
- :mod:`~energizer_hf.functional.multilabel`: multi-label acquisition on sigmoid
  probabilities, iterative stratification, metrics, threshold tuning.
- :mod:`~energizer_hf.functional.neighbours`: exact chunked kNN and radius search.
- :mod:`~energizer_hf.functional.stream`: per-item stream decisions under a sliding-window
  budget rate (fixed / variable / randomized variable uncertainty, split, novelty- and
  density-weighted uncertainty, random); pure numpy, with explicit state in and out.
- :mod:`~energizer_hf.functional.sequence`: BIO tags, entity spans and entity-level
  metrics, token-level acquisition for sentences (token entropy, least confidence, MNLP).
- :mod:`~energizer_hf.functional.primitives`: the tie-broken top-k, the entropy and the
  largest-remainder allocation every strategy, sampler and stopping criterion shares.
- :mod:`~energizer_hf.functional.training`: class weights of the loss.
- :mod:`~energizer_hf.functional.pseudo_labels`: confident pseudo-labels for self-training.
"""

from ._validation import (
    FunctionalInputError,
    InvalidProbabilitiesError,
    NonFiniteInputError,
    ShapeError,
    TooManyClustersError,
)
from .bayesian import (
    bald,
    batchbald_greedy,
    expected_entropy,
    mean_std,
    predictive_entropy,
    variation_ratios,
)
from .diversity import (
    KMeansResult,
    bertkm_select,
    estimate_probcover_delta,
    kcenter_greedy,
    kmeans,
    kmeans_closest_to_centers,
    kmeans_pp_init,
    probcover,
    typiclust,
)
from .hac import hac_clusters
from .hybrid import (
    badge_gradient_embeddings,
    badge_select,
    cal_scores,
    cluster_margin,
    egl_scores,
    iter_badge_gradient_embeddings,
)
from .multilabel import (
    cardinality_stratified_random,
    decide_labels,
    hamming_loss,
    iterative_stratification,
    mean_binary_entropy,
    mmc_scores,
    multilabel_f1,
    multilabel_least_confidence,
    multilabel_max_margin,
    multilabel_scores,
    predict_cardinality,
    stratified_initial_set,
    subset_accuracy,
    tune_threshold,
)
from .neighbours import knn, min_distances, radius_neighbors
from .primitives import allocate, entropy, select_topk
from .pseudo_labels import PseudoLabels, pseudo_label_confidence, select_pseudo_labels
from .sequence import (
    bio_violations,
    entity_scores,
    entity_spans,
    mnlp,
    per_token_entropy,
    per_token_least_confidence,
    reduce_tokens,
    repair_bio,
    token_accuracy,
    token_entropy,
    token_least_confidence,
)
from .stream import (
    StreamDecisions,
    StreamState,
    budget_capacity,
    density_weighted_decisions,
    estimated_spending,
    fixed_uncertainty_decisions,
    initial_stream_state,
    local_density,
    novelty,
    novelty_weighted_decisions,
    random_decisions,
    randomized_variable_uncertainty_decisions,
    sliding_window_counts,
    split_decisions,
    variable_uncertainty_decisions,
    window_spending,
)
from .stream_quantile import quantile_uncertainty_decisions
from .training import balanced_class_weights, balanced_pos_weights

__all__ = [
    "FunctionalInputError",
    "InvalidProbabilitiesError",
    "KMeansResult",
    "NonFiniteInputError",
    "PseudoLabels",
    "ShapeError",
    "StreamDecisions",
    "StreamState",
    "TooManyClustersError",
    "allocate",
    "badge_gradient_embeddings",
    "badge_select",
    "balanced_class_weights",
    "balanced_pos_weights",
    "bald",
    "batchbald_greedy",
    "bertkm_select",
    "bio_violations",
    "budget_capacity",
    "cal_scores",
    "cardinality_stratified_random",
    "cluster_margin",
    "decide_labels",
    "density_weighted_decisions",
    "egl_scores",
    "entity_scores",
    "entity_spans",
    "entropy",
    "estimate_probcover_delta",
    "estimated_spending",
    "expected_entropy",
    "fixed_uncertainty_decisions",
    "hac_clusters",
    "hamming_loss",
    "initial_stream_state",
    "iter_badge_gradient_embeddings",
    "iterative_stratification",
    "kcenter_greedy",
    "kmeans",
    "kmeans_closest_to_centers",
    "kmeans_pp_init",
    "knn",
    "local_density",
    "mean_binary_entropy",
    "mean_std",
    "min_distances",
    "mmc_scores",
    "mnlp",
    "multilabel_f1",
    "multilabel_least_confidence",
    "multilabel_max_margin",
    "multilabel_scores",
    "novelty",
    "novelty_weighted_decisions",
    "per_token_entropy",
    "per_token_least_confidence",
    "predict_cardinality",
    "predictive_entropy",
    "probcover",
    "pseudo_label_confidence",
    "quantile_uncertainty_decisions",
    "radius_neighbors",
    "random_decisions",
    "randomized_variable_uncertainty_decisions",
    "reduce_tokens",
    "repair_bio",
    "select_pseudo_labels",
    "select_topk",
    "sliding_window_counts",
    "split_decisions",
    "stratified_initial_set",
    "subset_accuracy",
    "token_accuracy",
    "token_entropy",
    "token_least_confidence",
    "tune_threshold",
    "typiclust",
    "variable_uncertainty_decisions",
    "variation_ratios",
    "window_spending",
]
