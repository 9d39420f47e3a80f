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
- :mod:`~energizer_hf.functional.diversity`: k-means, HAC, k-center, BERT-KM, TypiClust,
  ProbCover.
- :mod:`~energizer_hf.functional.hybrid`: BADGE, Cluster-Margin, CAL, EGL.
- :mod:`~energizer_hf.functional.neighbours`: exact chunked kNN and radius search.
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
    hac_clusters,
    kcenter_greedy,
    kmeans,
    kmeans_closest_to_centers,
    kmeans_pp_init,
    probcover,
    typiclust,
)
from .hybrid import (
    badge_gradient_embeddings,
    badge_select,
    cal_scores,
    cluster_margin,
    egl_scores,
    iter_badge_gradient_embeddings,
)
from .neighbours import knn, min_distances, radius_neighbors
from .pseudo_labels import PseudoLabels, pseudo_label_confidence, select_pseudo_labels

__all__ = [
    "FunctionalInputError",
    "InvalidProbabilitiesError",
    "KMeansResult",
    "NonFiniteInputError",
    "PseudoLabels",
    "ShapeError",
    "TooManyClustersError",
    "badge_gradient_embeddings",
    "badge_select",
    "bald",
    "batchbald_greedy",
    "bertkm_select",
    "cal_scores",
    "cluster_margin",
    "egl_scores",
    "estimate_probcover_delta",
    "expected_entropy",
    "hac_clusters",
    "iter_badge_gradient_embeddings",
    "kcenter_greedy",
    "kmeans",
    "kmeans_closest_to_centers",
    "kmeans_pp_init",
    "knn",
    "mean_std",
    "min_distances",
    "predictive_entropy",
    "probcover",
    "pseudo_label_confidence",
    "radius_neighbors",
    "select_pseudo_labels",
    "typiclust",
    "variation_ratios",
]
