"""Task-dependent fit defaults and class weights: multi-label weights positives and speeds up its head,
token classification weights tags by the square root of their inverse frequency.

Without them a sigmoid head fitted on a few hundred GoEmotions rows predicts the majority
label only (BENCHMARKS.md, issue 16); these tests check the defaults reach the fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from energizer_hf.functional import balanced_pos_weights
from energizer_hf.learner import ActiveLearner
from tests.conftest import learner_kwargs
from tests.test_tasks import ml_data, ml_tok, tiny  # noqa: F401  (fixtures)


def _fitted(tmp_path, ml_data, ml_tok, **overrides):  # noqa: F811
    learner = ActiveLearner(dataset=ml_data, model=tiny(ml_tok), tokenizer=ml_tok, strategy="random",
                            **learner_kwargs(tmp_path, label_column="labels", rounds=0, **overrides))
    learner.run()
    return learner, learner.strategy.model



def test_multilabel_default_weights_positives_and_speeds_up_the_head(tmp_path, ml_data, ml_tok):  # noqa: F811
    learner, module = _fitted(tmp_path, ml_data, ml_tok)
    assert learner.task.name == "multi_label"
    pool = learner.pool
    assert module.class_weights is not None, "multi-label fits weight positives by default"
    rows = pool.label_store.multi_hot(np.sort(pool.labelled_ids))
    expected = balanced_pos_weights(rows)
    # the weights come from the fit's rows: the labelled rows here (no validation rows held out)
    torch.testing.assert_close(module.class_weights, expected)
    assert module.head_learning_rate == pytest.approx(10 * module.learning_rate)


def test_multilabel_defaults_can_be_turned_off(tmp_path, ml_data, ml_tok):  # noqa: F811
    _, module = _fitted(tmp_path, ml_data, ml_tok, class_weights="none", head_learning_rate=1e-3)
    assert module.class_weights is None
    assert module.head_learning_rate == pytest.approx(1e-3) == pytest.approx(module.learning_rate)


def test_single_label_defaults_are_unchanged(tmp_path, demo_data, demo_tokenizer):
    learner = ActiveLearner(dataset=demo_data, model=tiny(demo_tokenizer), tokenizer=demo_tokenizer, strategy="random",
                            **learner_kwargs(tmp_path, rounds=0))
    learner.run()
    module = learner.strategy.model
    assert module.class_weights is None and module.head_learning_rate is None


@pytest.mark.parametrize("mode", ["balanced", "sqrt_balanced"])
def test_balanced_class_weights_for_ner_come_from_the_words_tags(tmp_path, mode):
    """``class_weights: balanced`` on a NER run weights each tag by its inverse frequency over
    the labelled words (it used to read the pool's unused single-label column and weigh nothing)."""
    from energizer_hf.demo import make_ner_dataset, train_wordpiece_tokenizer
    from energizer_hf.functional import balanced_class_weights

    data = make_ner_dataset(120, 30, seed=0)
    tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
    learner = ActiveLearner(dataset=data, model=tiny(tok), tokenizer=tok, strategy="token_entropy",
                            **learner_kwargs(tmp_path, rounds=0, class_weights=mode))
    learner.run()
    module = learner.strategy.model
    store = learner.pool.label_store
    ids = np.sort(learner.pool.labelled_ids)
    expected = balanced_class_weights(np.concatenate(store.word_tags(ids)), len(store.tag_names))
    expected = expected.sqrt() if mode == "sqrt_balanced" else expected
    torch.testing.assert_close(module.class_weights, expected)
    o = store.tag_names.index("O")
    assert module.class_weights[o] < 1 < module.class_weights.max()  # O is the majority tag


def test_ner_default_weights_tags_by_the_square_root_of_their_inverse_frequency(tmp_path):
    from energizer_hf.demo import make_ner_dataset, train_wordpiece_tokenizer
    from energizer_hf.functional import balanced_class_weights

    data = make_ner_dataset(120, 30, seed=0)
    tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
    learner = ActiveLearner(dataset=data, model=tiny(tok), tokenizer=tok, strategy="token_entropy",
                            **learner_kwargs(tmp_path, rounds=0))
    learner.run()
    store = learner.pool.label_store
    ids = np.sort(learner.pool.labelled_ids)
    expected = balanced_class_weights(np.concatenate(store.word_tags(ids)), len(store.tag_names)).sqrt()
    torch.testing.assert_close(learner.strategy.model.class_weights, expected)
    learner = ActiveLearner(dataset=data, model=tiny(tok), tokenizer=tok, strategy="token_entropy",
                            **learner_kwargs(tmp_path / "off", rounds=0, class_weights="none"))
    learner.run()
    assert learner.strategy.model.class_weights is None


@pytest.mark.parametrize("name", ["token_entropy", "token_entropy_mean", "token_least_confidence_max", "mnlp"])
def test_token_scores_count_first_subwords_only_whatever_the_padding(name):
    """A sentence's score must not depend on the batch it is scored in. The collator returns
    a transformers ``BatchEncoding`` (not a dict); the word mask was missed for it, so every
    position, padding included, was scored (sum favoured sentences batched with long ones)."""
    from energizer_hf.demo import build_tiny_bert, make_ner_dataset, train_wordpiece_tokenizer
    from energizer_hf.query_strategies import get_strategy_class
    from energizer_hf.tasks import HFTokenClassifier, TokenLabelCollator
    from energizer_hf.token_alignment import tokenize_and_align

    data = make_ner_dataset(40, 5, seed=0)
    tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
    rows = tokenize_and_align(data["train"], tok, tags_column=None, max_length=64, progress=False)
    torch.manual_seed(0)
    module = HFTokenClassifier(build_tiny_bert(len(tok), hidden=16, layers=1), num_labels=5).eval()
    strategy = get_strategy_class(name)(module)
    collate = TokenLabelCollator(tok)
    lengths = np.asarray(rows["length"][:])
    short, long = int(lengths.argmin()), int(lengths.argmax())
    assert lengths[long] > lengths[short] + 3
    feats = [{k: rows[i][k] for k in ("input_ids", "word_ids")} for i in (short, long)]
    alone, together = collate(feats[:1]), collate(feats)
    assert not isinstance(together, dict)  # a BatchEncoding: the case that was missed
    with torch.inference_mode():
        s_alone = strategy._check_scores(strategy.pool_step(alone, 0), 1)
        s_together = strategy._check_scores(strategy.pool_step(together, 0), 2)
        _, mask = strategy.pool_step(together, 0)
    torch.testing.assert_close(s_together[0], s_alone[0], rtol=1e-4, atol=1e-5)
    words = [max(w for w in f["word_ids"] if w is not None and w >= 0) + 1 for f in feats]
    assert mask.sum(1).tolist() == words  # one position per word
