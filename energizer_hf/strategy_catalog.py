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
                         'surprisal embeddings.',
          'tasks': ['text_classification']},
 'anchoral': {'family': 'sub-pool',
              'aliases': ['anchor_al'],
              'description': 'AnchorAL: a class-balanced sub-pool around per-class anchors (see '
                             'the module docstring).',
              'tasks': ['text_classification']},
 'badge': {'family': 'hybrid',
           'aliases': [],
           'description': 'BADGE: k-means++ seeding on last-layer gradient embeddings (Ash et al., '
                          '"Deep Batch Active Learning by Divers…',
           'tasks': ['text_classification']},
 'bald': {'family': 'bayesian',
          'aliases': [],
          'description': 'BALD: mutual information between predictions and weights (Houlsby et '
                         'al., 2011).',
          'tasks': ['text_classification']},
 'batchbald': {'family': 'hybrid',
               'aliases': ['batch_bald'],
               'description': 'Greedy BatchBALD: the batch of maximal joint mutual information '
                              'with the weights (Kirsch, van Amersfoort & Ga…',
               'tasks': ['text_classification']},
 'binary_entropy': {'family': 'multi-label',
                    'aliases': ['mean_binary_entropy'],
                    'description': 'Mean binary entropy over labels. Time O(N·L); memory O(k).',
                    'tasks': ['multi_label']},
 'cal': {'family': 'hybrid',
         'aliases': ['contrastive'],
         'description': 'CAL: contrastive examples, whose prediction diverges from their labelled '
                        'neighbours\' (Margatina et al., "Acti…',
         'tasks': ['text_classification']},
 'cardinality_random': {'family': 'multi-label',
                        'aliases': ['cardinality_stratified_random'],
                        'description': 'Random, stratified by predicted label cardinality (same '
                                       'expected mix as random, less variance in it). Scores…',
                        'tasks': ['multi_label']},
 'class_balanced': {'family': 'wrapper',
                    'aliases': ['balanced'],
                    'description': "A scoring strategy's best rows, per predicted class, in a "
                                   'requested class mix.',
                    'tasks': ['text_classification']},
 'cluster_margin': {'family': 'hybrid',
                    'aliases': [],
                    'description': 'Cluster-Margin: round-robin over HAC clusters of the '
                                   'lowest-margin rows (Citovsky et al., "Batch Active Learn…',
                    'tasks': ['text_classification']},
 'cold_start_kmeans': {'family': 'cold start',
                       'aliases': ['cold_start_bertkm'],
                       'description': 'Cold start with BERT-KM on pretrained embeddings (Yuan et '
                                      'al., EMNLP 2020). O(n_iter · N · k · d).',
                       'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'cold_start_probcover': {'family': 'cold start',
                          'aliases': [],
                          'description': 'Cold start with ProbCover on pretrained embeddings '
                                         '(Yehuda et al., NeurIPS 2022). O(N² · d) time.',
                          'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'cold_start_random': {'family': 'cold start',
                       'aliases': ['cold_start'],
                       'description': 'Cold start, uniform random (stratified when ``labels=`` are '
                                      'given). O(N); no model.',
                       'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'cold_start_typiclust': {'family': 'cold start',
                          'aliases': [],
                          'description': 'Cold start with TypiClust on pretrained embeddings '
                                         '(Hacohen et al., ICML 2022).',
                          'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'coreset': {'family': 'diversity',
             'aliases': ['core_set', 'k_center_greedy', 'kcenter'],
             'description': 'Core-Set: greedy k-center on embeddings (Sener & Savarese, ICLR '
                            '2018).',
             'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'dal': {'family': 'hybrid',
         'aliases': ['discriminative'],
         'description': 'Discriminative Active Learning: pick the rows a labelled-vs-unlabelled '
                        'discriminator is most sure are unlabel…',
         'tasks': ['text_classification']},
 'egl': {'family': 'hybrid',
         'aliases': ['expected_gradient_length'],
         'description': 'Expected gradient length of the last linear layer, in closed form '
                        '(Settles, Craven & Ray, NeurIPS 2008; Huang…',
         'tasks': ['text_classification']},
 'entropy': {'family': 'uncertainty',
             'aliases': ['max_entropy'],
             'description': 'Maximum entropy of the predictive distribution (Shannon, 1948; '
                            'Settles, 2009).',
             'tasks': ['text_classification']},
 'expected_entropy': {'family': 'bayesian',
                      'aliases': [],
                      'description': 'Mean entropy of the individual MC passes (the aleatoric term '
                                     'of BALD; Houlsby et al., 2011). Needs MC samples…',
                      'tasks': ['text_classification']},
 'kmeans': {'family': 'diversity',
            'aliases': ['bert_km', 'bertkm'],
            'description': 'BERT-KM: k-means (k clusters) on the unlabelled embeddings, then the '
                           'row nearest each centroid (Yuan, Lin & B…',
            'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'least_confidence': {'family': 'uncertainty',
                      'aliases': ['least_confident'],
                      'description': 'Least confidence, ``1 - max p`` (Lewis & Gale, 1994). Needs '
                                     'logits; O(N·C).',
                      'tasks': ['text_classification']},
 'margin': {'family': 'uncertainty',
            'aliases': ['breaking_ties', 'smallest_margin'],
            'description': 'Breaking ties: the smallest gap between the two most likely classes.',
            'tasks': ['text_classification']},
 'max_margin': {'family': 'multi-label',
                'aliases': ['multilabel_max_margin'],
                'description': 'One minus the separation margin at ``threshold`` (Li & Guo, 2013). '
                               'O(N·L log L).',
                'tasks': ['multi_label']},
 'mc_entropy': {'family': 'bayesian',
                'aliases': ['predictive_entropy'],
                'description': 'Entropy of the MC-averaged prediction (Gal et al., 2017). Needs MC '
                               'samples.',
                'tasks': ['text_classification']},
 'mean_std': {'family': 'bayesian',
              'aliases': [],
              'description': 'Mean over classes of the std of the passes (Kampffmeyer et al., '
                             '2016). Needs MC samples.',
              'tasks': ['text_classification']},
 'mmc': {'family': 'multi-label',
         'aliases': [],
         'description': 'MMC (Yang et al., KDD 2009): expected number of wrong label decisions '
                        'under the most confident label vector;…',
         'tasks': ['multi_label']},
 'mnlp': {'family': 'token classification',
          'aliases': [],
          'description': 'Maximum normalised log-probability (Shen et al., ICLR 2018): the '
                         'sentences whose best tag path has the lowest…',
          'tasks': ['token_classification']},
 'multilabel_least_confidence': {'family': 'multi-label',
                                 'aliases': ['multilabel_least_confident'],
                                 'description': '``min(p, 1 - p)`` per label, the largest '
                                                '(``reduction="max"``) or the mean.',
                                 'tasks': ['multi_label']},
 'probcover': {'family': 'diversity',
               'aliases': ['prob_cover'],
               'description': 'ProbCover: greedy max coverage by δ-balls (Yehuda et al., NeurIPS '
                              '2022). Low budget.',
               'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'random': {'family': 'baseline',
            'aliases': [],
            'description': 'Uniformly random unlabelled ids, seeded by ``(seed, round)``; never '
                           'runs the model.',
            'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'random_subset': {'family': 'wrapper',
                   'aliases': ['subsample'],
                   'description': 'Score only a random sub-pool of ``subpool_size`` unlabelled '
                                  'rows with ``base``.',
                   'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'ratio_of_confidence': {'family': 'uncertainty',
                         'aliases': ['ratio'],
                         'description': 'Ratio of the two most likely class probabilities, ``p2 / '
                                        'p1``. Needs logits; O(N·C).',
                         'tasks': ['text_classification']},
 'seals': {'family': 'sub-pool',
           'aliases': [],
           'description': 'SEALS: run ``base`` on the nearest unlabelled neighbours of the '
                          'labelled set.',
           'tasks': ['text_classification']},
 'token_entropy': {'family': 'token classification',
                   'aliases': ['token_entropy_sum', 'total_token_entropy'],
                   'description': "Token entropy summed over the sentence's words (Settles & "
                                  'Craven, EMNLP 2008).',
                   'tasks': ['token_classification']},
 'token_entropy_max': {'family': 'token classification',
                       'aliases': [],
                       'description': 'The largest token entropy of the sentence.',
                       'tasks': ['token_classification']},
 'token_entropy_mean': {'family': 'token classification',
                        'aliases': [],
                        'description': "Token entropy averaged over the sentence's words "
                                       '(length-normalised).',
                        'tasks': ['token_classification']},
 'token_least_confidence': {'family': 'token classification',
                            'aliases': ['token_least_confidence_sum'],
                            'description': '``1 - max_c p_c`` per word, summed (``reduction`` '
                                           'sum/mean/max). Time O(N·T·C).',
                            'tasks': ['token_classification']},
 'token_least_confidence_max': {'family': 'token classification',
                                'aliases': [],
                                'description': 'The least confident word of the sentence.',
                                'tasks': ['token_classification']},
 'token_least_confidence_mean': {'family': 'token classification',
                                 'aliases': [],
                                 'description': 'Token least confidence averaged over the '
                                                "sentence's words.",
                                 'tasks': ['token_classification']},
 'typiclust': {'family': 'diversity',
               'aliases': ['tpc_rp'],
               'description': 'TypiClust: the most typical row of each least-covered k-means '
                              'cluster (Hacohen, Dekel & Weinshall, ICML 2022)…',
               'tasks': ['text_classification', 'multi_label', 'token_classification']},
 'variation_ratios': {'family': 'bayesian',
                      'aliases': [],
                      'description': 'Variation ratios, ``1 - mode frequency`` over passes '
                                     '(Freeman, 1965). Needs MC samples.',
                      'tasks': ['text_classification']}}


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

