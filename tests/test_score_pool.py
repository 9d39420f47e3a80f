"""score_pool: probabilities, embeddings and a strategy's top-k of a pool in one call."""

import numpy as np
import pytest
import torch

import energizer_hf
from energizer_hf import EnergizerError, UnknownStrategyError, score_pool


@pytest.fixture(scope="module")
def classifier(tiny_bert_config):
    from transformers import AutoModelForSequenceClassification

    names = {i: f"c{i}" for i in range(5)}
    config = tiny_bert_config.__class__.from_dict(
        {**tiny_bert_config.to_dict(), "id2label": names, "label2id": {v: k for k, v in names.items()}}
    )
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config).eval()


def _reference_probs(model, tok, texts):
    with torch.inference_mode():
        rows = []
        for text in texts:  # one row at a time: no padding at all
            enc = tok(text, truncation=True, max_length=128, return_tensors="pt")
            enc.pop("token_type_ids", None)
            rows.append(model(**enc).logits.softmax(-1)[0])
    return torch.stack(rows).numpy()


def test_probabilities_of_every_row_in_order(classifier, demo_data, demo_tokenizer):
    pool = demo_data["train"].select(range(60))
    probs = score_pool(classifier, pool, tokenizer=demo_tokenizer, batch_size=16)
    assert probs.shape == (60, 5)
    assert not classifier.training  # the model's mode is left as it was
    np.testing.assert_allclose(probs, _reference_probs(classifier, demo_tokenizer, pool["text"][:]), atol=1e-5)
    # a subset, in the order asked
    some = score_pool(classifier, pool, tokenizer=demo_tokenizer, ids=[7, 3, 50], output="logits")
    np.testing.assert_allclose(torch.tensor(some).softmax(-1).numpy(), probs[[7, 3, 50]], atol=1e-5)
    emb = score_pool(classifier, pool, tokenizer=demo_tokenizer, output="embeddings")
    assert emb.shape == (60, classifier.config.hidden_size)


def test_a_multi_label_model_gets_one_sigmoid_probability_per_label(classifier, demo_data, demo_tokenizer):
    import copy

    model = copy.deepcopy(classifier)
    model.config.problem_type = "multi_label_classification"
    pool = demo_data["train"].select(range(20))
    probs = score_pool(model, pool, tokenizer=demo_tokenizer)
    logits = score_pool(model, pool, tokenizer=demo_tokenizer, output="logits")
    np.testing.assert_allclose(probs, torch.tensor(logits).sigmoid().numpy(), atol=1e-6)
    assert not np.allclose(probs.sum(1), 1.0)  # not a softmax over the labels


def test_topk_of_a_strategy(classifier, demo_data, demo_tokenizer):
    pool = demo_data["train"].select(range(80))
    probs = score_pool(classifier, pool, tokenizer=demo_tokenizer)
    ids, scores = score_pool(classifier, pool, tokenizer=demo_tokenizer, output="topk", k=10, strategy="margin")
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin_score = -(top2[:, 1] - top2[:, 0])  # smallest margin first
    expected = np.lexsort((np.arange(80), -margin_score))[:10]
    assert ids.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, margin_score[ids], atol=1e-5)
    # a strategy without per-row scores (k-center) still returns k distinct rows
    chosen, none = score_pool(classifier, pool, tokenizer=demo_tokenizer, output="topk", k=5, strategy="kcenter",
                              ids=np.arange(40))
    assert len(set(chosen.tolist())) == 5 and chosen.max() < 40 and none is None


def test_from_a_saved_directory_with_its_tokenizer(tmp_path, classifier, demo_data, demo_tokenizer):
    classifier.save_pretrained(tmp_path / "m")
    demo_tokenizer.save_pretrained(tmp_path / "m")
    pool = demo_data["train"].select(range(20))
    probs = score_pool(str(tmp_path / "m"), pool)
    np.testing.assert_allclose(probs, score_pool(classifier, pool, tokenizer=demo_tokenizer), atol=1e-5)


def test_named_errors(classifier, demo_data, demo_tokenizer):
    pool = demo_data["train"].select(range(10))
    with pytest.raises(EnergizerError, match="needs k"):
        score_pool(classifier, pool, tokenizer=demo_tokenizer, output="topk")
    with pytest.raises(EnergizerError, match="no column 'sentence'"):
        score_pool(classifier, pool, tokenizer=demo_tokenizer, text_column="sentence")
    with pytest.raises(UnknownStrategyError):
        score_pool(classifier, pool, tokenizer=demo_tokenizer, output="topk", k=2, strategy="entropyy")
    assert "score_pool" in energizer_hf.__all__ and energizer_hf.score_pool is score_pool
