"""The registered strategies as data, for ``energizer-hf strategies`` and quick argument
checks without importing torch. A copy of
:func:`energizer_hf.query_strategies.registry.strategy_catalog` (``tests/test_cli.py``
keeps them equal and prints the new value when a strategy is added or changed).
"""

from __future__ import annotations

__all__ = ["CATALOG", "resolve"]

CATALOG: dict[str, dict[str, object]] = {'alps': {'family': 'cold start',
          'aliases': [],
          'description': 'ALPS (Yuan, Lin & Boyd-Graber, EMNLP 2020): k-means on masked-LM '
                         'surprisal embeddings.'},
 'anchoral': {'family': 'sub-pool',
              'aliases': ['anchor_al'],
              'description': 'AnchorAL: a class-balanced sub-pool around per-class anchors (see '
                             'the module docstring).'},
 'badge': {'family': 'hybrid',
           'aliases': [],
           'description': 'BADGE: k-means++ seeding on last-layer gradient embeddings (Ash et al., '
                          '"Deep Batch Active Learning by Divers…'},
 'bald': {'family': 'bayesian',
          'aliases': [],
          'description': 'BALD: mutual information between predictions and weights (Houlsby et '
                         'al., 2011).'},
 'batchbald': {'family': 'hybrid',
               'aliases': ['batch_bald'],
               'description': 'Greedy BatchBALD: the batch of maximal joint mutual information '
                              'with the weights (Kirsch, van Amersfoort & Ga…'},
 'cal': {'family': 'hybrid',
         'aliases': ['contrastive'],
         'description': 'CAL: contrastive examples, whose prediction diverges from their labelled '
                        'neighbours\' (Margatina et al., "Acti…'},
 'class_balanced': {'family': 'wrapper',
                    'aliases': ['balanced'],
                    'description': "A scoring strategy's best rows, per predicted class, in a "
                                   'requested class mix.'},
 'cluster_margin': {'family': 'hybrid',
                    'aliases': [],
                    'description': 'Cluster-Margin: round-robin over HAC clusters of the '
                                   'lowest-margin rows (Citovsky et al., "Batch Active Learn…'},
 'cold_start_kmeans': {'family': 'cold start',
                       'aliases': ['cold_start_bertkm'],
                       'description': 'Cold start with BERT-KM on pretrained embeddings (Yuan et '
                                      'al., EMNLP 2020). O(n_iter · N · k · d).'},
 'cold_start_probcover': {'family': 'cold start',
                          'aliases': [],
                          'description': 'Cold start with ProbCover on pretrained embeddings '
                                         '(Yehuda et al., NeurIPS 2022). O(N² · d) time.'},
 'cold_start_random': {'family': 'cold start',
                       'aliases': ['cold_start'],
                       'description': 'Cold start, uniform random (stratified when ``labels=`` are '
                                      'given). O(N); no model.'},
 'cold_start_typiclust': {'family': 'cold start',
                          'aliases': [],
                          'description': 'Cold start with TypiClust on pretrained embeddings '
                                         '(Hacohen et al., ICML 2022).'},
 'coreset': {'family': 'diversity',
             'aliases': ['core_set', 'k_center_greedy', 'kcenter'],
             'description': 'Core-Set: greedy k-center on embeddings (Sener & Savarese, ICLR '
                            '2018).'},
 'dal': {'family': 'hybrid',
         'aliases': ['discriminative'],
         'description': 'Discriminative Active Learning: pick the rows a labelled-vs-unlabelled '
                        'discriminator is most sure are unlabel…'},
 'egl': {'family': 'hybrid',
         'aliases': ['expected_gradient_length'],
         'description': 'Expected gradient length of the last linear layer, in closed form '
                        '(Settles, Craven & Ray, NeurIPS 2008; Huang…'},
 'entropy': {'family': 'uncertainty',
             'aliases': ['max_entropy'],
             'description': 'Maximum entropy of the predictive distribution (Shannon, 1948; '
                            'Settles, 2009).'},
 'expected_entropy': {'family': 'bayesian',
                      'aliases': [],
                      'description': 'Mean entropy of the individual MC passes (the aleatoric term '
                                     'of BALD; Houlsby et al., 2011). Needs MC samples…'},
 'kmeans': {'family': 'diversity',
            'aliases': ['bert_km', 'bertkm'],
            'description': 'BERT-KM: k-means (k clusters) on the unlabelled embeddings, then the '
                           'row nearest each centroid (Yuan, Lin & B…'},
 'least_confidence': {'family': 'uncertainty',
                      'aliases': ['least_confident'],
                      'description': 'Least confidence, ``1 - max p`` (Lewis & Gale, 1994). Needs '
                                     'logits; O(N·C).'},
 'margin': {'family': 'uncertainty',
            'aliases': ['breaking_ties', 'smallest_margin'],
            'description': 'Breaking ties: the smallest gap between the two most likely classes.'},
 'mc_entropy': {'family': 'bayesian',
                'aliases': ['predictive_entropy'],
                'description': 'Entropy of the MC-averaged prediction (Gal et al., 2017). Needs MC '
                               'samples.'},
 'mean_std': {'family': 'bayesian',
              'aliases': [],
              'description': 'Mean over classes of the std of the passes (Kampffmeyer et al., '
                             '2016). Needs MC samples.'},
 'probcover': {'family': 'diversity',
               'aliases': ['prob_cover'],
               'description': 'ProbCover: greedy max coverage by δ-balls (Yehuda et al., NeurIPS '
                              '2022). Low budget.'},
 'random': {'family': 'baseline',
            'aliases': [],
            'description': 'Uniformly random unlabelled ids, seeded by ``(seed, round)``; never '
                           'runs the model.'},
 'random_subset': {'family': 'wrapper',
                   'aliases': ['subsample'],
                   'description': 'Score only a random sub-pool of ``subpool_size`` unlabelled '
                                  'rows with ``base``.'},
 'ratio_of_confidence': {'family': 'uncertainty',
                         'aliases': ['ratio'],
                         'description': 'Ratio of the two most likely class probabilities, ``p2 / '
                                        'p1``. Needs logits; O(N·C).'},
 'seals': {'family': 'sub-pool',
           'aliases': [],
           'description': 'SEALS: run ``base`` on the nearest unlabelled neighbours of the '
                          'labelled set.'},
 'typiclust': {'family': 'diversity',
               'aliases': ['tpc_rp'],
               'description': 'TypiClust: the most typical row of each least-covered k-means '
                              'cluster (Hacohen, Dekel & Weinshall, ICML 2022)…'},
 'variation_ratios': {'family': 'bayesian',
                      'aliases': [],
                      'description': 'Variation ratios, ``1 - mode frequency`` over passes '
                                     '(Freeman, 1965). Needs MC samples.'}}


def resolve(name: str) -> str | None:
    """The strategy name of ``name`` (a name or an alias), ``None`` when unknown.

    >>> resolve("max-entropy"), resolve("nope")
    ('entropy', None)
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    for strategy, entry in CATALOG.items():
        if key == strategy or key in entry["aliases"]:  # type: ignore[operator]
            return strategy
    return None

