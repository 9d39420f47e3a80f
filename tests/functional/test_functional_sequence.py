"""energizer_hf.functional.sequence: BIO repair, spans and metrics checked against seqeval,
and known answers for the token-level acquisition scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from seqeval.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

from energizer_hf.errors import EnergizerError, InvalidTagsError, UnknownLabelError
from energizer_hf.functional import (
    FunctionalInputError,
    InvalidProbabilitiesError,
    NonFiniteInputError,
    ShapeError,
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

TYPES = ["LOC", "MISC", "PER"]
NAMES = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]


def random_tags(rng, n_sentences=200, max_len=12, p_o=0.5):
    """Random tag sequences, invalid I- tags included (as a model's argmax gives them)."""
    out = []
    for _ in range(n_sentences):
        n = int(rng.integers(1, max_len + 1))
        tags = [
            "O" if rng.random() < p_o else f"{rng.choice(['B', 'I'])}-{rng.choice(TYPES)}"
            for _ in range(n)
        ]
        out.append(tags)
    return out


def perturb(rng, gold, rate=0.15):
    """A noisy copy of ``gold``: some tags replaced by random ones."""
    out = []
    for sentence in gold:
        s = list(sentence)
        for i in range(len(s)):
            if rng.random() < rate:
                s[i] = str(rng.choice(NAMES))
        out.append(s)
    return out


def seqeval_scores(gold, pred, strict):
    kw = {"mode": "strict", "scheme": IOB2} if strict else {}
    report = classification_report(gold, pred, output_dict=True, zero_division=0, **kw)
    per_type = {
        k: v for k, v in report.items() if k not in ("micro avg", "macro avg", "weighted avg")
    }
    return {
        "precision": precision_score(gold, pred, zero_division=0, **kw),
        "recall": recall_score(gold, pred, zero_division=0, **kw),
        "f1": f1_score(gold, pred, zero_division=0, **kw),
        "macro_f1": f1_score(gold, pred, average="macro", zero_division=0, **kw),
        "per_type": per_type,
    }


def assert_matches_seqeval(gold, pred, mode):
    ours = entity_scores(gold, pred, mode=mode)
    ref = seqeval_scores(gold, pred, strict=mode == "strict")
    for key in ("precision", "recall", "f1", "macro_f1"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key
    assert set(ours["per_type"]) == set(ref["per_type"])
    for t, v in ref["per_type"].items():
        mine = ours["per_type"][t]
        assert mine["precision"] == pytest.approx(v["precision"], abs=1e-12)
        assert mine["recall"] == pytest.approx(v["recall"], abs=1e-12)
        assert mine["f1"] == pytest.approx(v["f1-score"], abs=1e-12)
        assert mine["support"] == v["support"]
    assert token_accuracy(gold, pred) == pytest.approx(accuracy_score(gold, pred), abs=1e-12)
    return ours


def seqeval_spans(tags, strict):
    if strict:
        ents = Entities(tags, IOB2).entities
        return [sorted((e.tag, e.start, e.end) for e in sent) for sent in ents]
    return [sorted((t, s, e + 1) for t, s, e in get_entities(sent)) for sent in tags]


# ---------------------------------------------------------------------------- spans
@pytest.mark.parametrize("mode", ["lenient", "strict"])
def test_spans_match_seqeval_on_random_tags(mode):
    tags = random_tags(np.random.default_rng(1), n_sentences=300)
    ours = [sorted(s) for s in entity_spans(tags, mode=mode)]
    assert ours == seqeval_spans(tags, strict=mode == "strict")


def test_span_known_answers():
    tags = [["B-A", "I-B", "I-A"], ["I-A", "I-A", "O", "B-A", "B-A", "I-A"]]
    assert entity_spans(tags) == [
        [("A", 0, 1), ("B", 1, 2), ("A", 2, 3)],
        [("A", 0, 2), ("A", 3, 4), ("A", 4, 6)],
    ]
    assert entity_spans(tags, mode="strict") == [[("A", 0, 1)], [("A", 3, 4), ("A", 4, 6)]]
    # a run never crosses a sentence boundary
    assert entity_spans([["B-A"], ["I-A"]], mode="strict") == [[("A", 0, 1)], []]
    assert entity_spans([[], ["O"]]) == [[], []]


# ---------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("mode", ["lenient", "strict"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_seqeval_on_random_tags(mode, seed):
    rng = np.random.default_rng(seed)
    gold = random_tags(rng, p_o=0.6)
    pred = perturb(rng, gold, rate=0.3)
    ours = assert_matches_seqeval(gold, pred, mode)
    assert 0 < ours["f1"] < 1


def test_scores_known_answer():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-LOC", "B-PER"]]
    s = entity_scores(gold, pred)
    # gold: PER(0,2) LOC(3,4) | LOC(0,1); pred: PER(0,2) LOC(3,5) | LOC(0,1) PER(1,2)
    assert (s["num_gold"], s["num_pred"], s["num_correct"]) == (3, 4, 2)
    assert s["precision"] == 0.5 and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert s["per_type"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    assert s["per_type"]["LOC"]["recall"] == 0.5
    assert token_accuracy(gold, pred) == pytest.approx(5 / 7)


def test_no_entities_scores_zero_without_error():
    s = entity_scores([["O", "O"]], [["O", "O"]])
    assert (s["precision"], s["recall"], s["f1"], s["macro_f1"], s["per_type"]) == (
        0.0,
        0.0,
        0.0,
        0.0,
        {},
    )
    assert token_accuracy([["O", "O"]], [["O", "O"]]) == 1.0


def test_ids_arrays_and_strings_agree():
    rng = np.random.default_rng(3)
    gold = random_tags(rng, n_sentences=50)
    pred = perturb(rng, gold)
    index = {n: i for i, n in enumerate(NAMES)}
    gold_ids = [[index[t] for t in s] for s in gold]
    pred_ids = [[index[t] for t in s] for s in pred]
    ref = entity_scores(gold, pred)
    assert entity_scores(gold_ids, pred_ids, NAMES) == ref
    # padded (B, T) arrays with -100 between "words" (non-first sub-words) and at the end
    width = 2 * max(len(s) for s in gold) + 3
    g = np.full((len(gold), width), -100)
    p = rng.integers(0, len(NAMES), size=g.shape)  # garbage where gold is ignored
    for i, (gs, ps) in enumerate(zip(gold_ids, pred_ids)):
        cols = 1 + 2 * np.arange(len(gs))
        g[i, cols], p[i, cols] = gs, ps
    assert entity_scores(g, p, NAMES) == ref
    assert entity_scores(torch.from_numpy(g), torch.from_numpy(p), NAMES) == ref
    assert token_accuracy(g, p, NAMES) == pytest.approx(token_accuracy(gold, pred))
    assert entity_spans(g, NAMES) == entity_spans(gold)


def test_matches_seqeval_on_wnut17(shared_data):
    path = shared_data / "wnut17" / "test.conll"
    if not path.exists():
        pytest.skip(f"{path} is not present")
    gold, sentence = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if sentence:
                gold.append(sentence)
            sentence = []
        else:
            sentence.append(line.split("\t")[-1])
    if sentence:
        gold.append(sentence)
    assert len(gold) == 1287
    rng = np.random.default_rng(0)
    types = sorted({t[2:] for s in gold for t in s if t != "O"})
    names = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    pred = [[str(rng.choice(names)) if rng.random() < 0.05 else t for t in s] for s in gold]
    for mode in ("lenient", "strict"):
        ours = assert_matches_seqeval(gold, pred, mode)
        assert ours["num_gold"] > 1000
    assert entity_scores(gold, gold)["f1"] == 1.0


def test_length_and_sentence_mismatches_are_named():
    with pytest.raises(ShapeError, match="Sentence 1 has 2 gold tags and 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ShapeError, match="sentences"):
        entity_scores([["O"]], [["O"], ["O"]])
    with pytest.raises(ShapeError, match="same shape"):
        entity_scores(np.zeros((2, 3), int), np.zeros((2, 4), int), NAMES)


# ---------------------------------------------------------------------------- BIO repair
def test_repair_known_answers_all_forms():
    tags = [["O", "I-PER", "I-PER", "I-LOC", "O"], ["I-LOC", "B-PER", "I-PER"]]
    fixed = [["O", "B-PER", "I-PER", "B-LOC", "O"], ["B-LOC", "B-PER", "I-PER"]]
    assert repair_bio(tags) == fixed
    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    index = {n: i for i, n in enumerate(names)}
    ids = [[index[t] for t in s] for s in tags]
    assert repair_bio(ids, names) == [[index[t] for t in s] for s in fixed]
    # ragged ids with ignored entries: they stay where they were
    assert repair_bio([[-100, 2, -100, 2]], names) == [[-100, 1, -100, 2]]
    arr = np.array([[0, 4, -100, 4, 2], [2, -100, -100, -100, -100]])
    out = repair_bio(arr, names)
    np.testing.assert_array_equal(out, [[0, 3, -100, 4, 1], [1, -100, -100, -100, -100]])
    assert isinstance(repair_bio(torch.from_numpy(arr), names), torch.Tensor)
    # after repair there is nothing left to repair, and spans are those of the lenient mode
    assert bio_violations(repair_bio(tags)).shape == (0, 2)
    assert entity_spans(repair_bio(tags), mode="strict") == entity_spans(tags)


@pytest.mark.parametrize("seed", [0, 1])
def test_repair_then_strict_equals_lenient_on_random_tags(seed):
    tags = random_tags(np.random.default_rng(seed))
    assert entity_spans(repair_bio(tags), mode="strict") == entity_spans(tags, mode="lenient")
    assert seqeval_spans(repair_bio(tags), strict=True) == seqeval_spans(tags, strict=False)


def test_strict_repair_refuses_with_location():
    with pytest.raises(InvalidTagsError, match="Sentence 1, position 2") as info:
        repair_bio([["B-A", "I-A"], ["O", "B-A", "I-B", "I-B"]], strict=True)
    assert (info.value.sentence, info.value.position) == (1, 2)
    assert isinstance(info.value, EnergizerError)
    assert repair_bio([["B-A", "I-A"]], strict=True) == [["B-A", "I-A"]]
    assert bio_violations([["B-A", "I-A"], ["O", "B-A", "I-B", "I-B"]]).tolist() == [[1, 2]]


def test_malformed_tags_are_refused_with_location():
    with pytest.raises(InvalidTagsError, match="Sentence 1, position 0: Tag 'E-PER'") as info:
        entity_spans([["O"], ["E-PER"]])
    assert (info.value.sentence, info.value.position) == (1, 0)
    for bad in ("PER", "B-", "b-PER", "B_PER", ""):
        with pytest.raises(InvalidTagsError):
            repair_bio([["O", bad]])
    with pytest.raises(InvalidTagsError, match="not among the tag names"):
        repair_bio([[2]], names=["O", "B-X", "I-Y"])
    with pytest.raises(InvalidTagsError, match="In `names`"):
        entity_spans([[0]], names=["O", "S-X"])


def test_bad_ids_and_inputs_are_named():
    with pytest.raises(UnknownLabelError, match=r"Tag id 9 \(sentence 0, position 1\)"):
        entity_spans([[0, 9]], NAMES)
    with pytest.raises(UnknownLabelError):
        entity_spans(np.array([[0, -5]]), NAMES)
    with pytest.raises(FunctionalInputError, match="names"):
        entity_spans([[0, 1]])
    with pytest.raises(FunctionalInputError):
        entity_spans("B-PER")
    with pytest.raises(FunctionalInputError, match="mode"):
        entity_spans([["O"]], mode="loose")
    with pytest.raises(FunctionalInputError, match="mix"):
        entity_spans([["O", 1]], NAMES)
    with pytest.raises(FunctionalInputError, match="all tag names"):
        entity_spans([[1, "O"]], NAMES)


# ---------------------------------------------------------------------------- acquisition
def test_token_scores_known_answers():
    # sentence 0: a uniform token and a certain token; sentence 1: one uniform token + padding
    probs = torch.tensor(
        [
            [[0.5, 0.5], [1.0, 0.0], [0.2, 0.8]],
            [[0.5, 0.5], [float("nan"), 0.0], [0.0, 0.0]],
        ]
    )
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    log2 = math.log(2)
    ent = {r: token_entropy(probs, mask, r, from_probs=True) for r in ("sum", "mean", "max")}
    torch.testing.assert_close(ent["sum"], torch.tensor([log2, log2]))
    torch.testing.assert_close(ent["mean"], torch.tensor([log2 / 2, log2]))
    torch.testing.assert_close(ent["max"], torch.tensor([log2, log2]))
    lc = token_least_confidence(probs, mask, "mean", from_probs=True)
    torch.testing.assert_close(lc, torch.tensor([0.25, 0.5]))
    torch.testing.assert_close(mnlp(probs, mask, from_probs=True), torch.tensor([log2 / 2, log2]))


def test_logits_and_probs_agree_and_padding_never_counts():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, 5, generator=g) * 3
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 1, 5])[:, None]
    probs = torch.softmax(logits, -1)
    for fn in (token_entropy, token_least_confidence):
        for r in ("sum", "mean", "max"):
            torch.testing.assert_close(fn(logits, mask, r), fn(probs, mask, r, from_probs=True))
    torch.testing.assert_close(mnlp(logits, mask), mnlp(probs, mask, from_probs=True))
    # changing padded positions (even to NaN) changes nothing
    garbage = logits.clone()
    garbage[~mask] = float("nan")
    for r in ("sum", "mean", "max"):
        torch.testing.assert_close(token_entropy(garbage, mask, r), token_entropy(logits, mask, r))
    torch.testing.assert_close(mnlp(garbage, mask), mnlp(logits, mask))
    # per-sentence values equal the per-token definitions over the kept tokens
    ent = per_token_entropy(logits)
    lc = per_token_least_confidence(logits)
    for b in range(4):
        m = mask[b]
        assert token_entropy(logits, mask, "sum")[b].item() == pytest.approx(
            ent[b][m].sum().item(), rel=1e-5
        )
        assert token_least_confidence(logits, mask, "max")[b].item() == pytest.approx(
            lc[b][m].max().item(), rel=1e-5
        )
        best = torch.log_softmax(logits[b][m], -1).max(-1).values
        assert mnlp(logits, mask)[b].item() == pytest.approx(-best.mean().item(), rel=1e-5)


def test_sum_favours_long_sentences_mean_does_not():
    # a long sentence of moderately uncertain tokens vs a short very uncertain one
    long = torch.tensor([[0.8, 0.2]] * 10)
    short = torch.tensor([[0.5, 0.5]] + [[1.0, 0.0]] * 9)
    probs = torch.stack([long, short])
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0] = True
    mask[1, 0] = True
    s = token_entropy(probs, mask, "sum", from_probs=True)
    m = token_entropy(probs, mask, "mean", from_probs=True)
    assert s[0] > s[1] and m[1] > m[0]
    assert mnlp(probs, mask, from_probs=True)[1] > mnlp(probs, mask, from_probs=True)[0]


def test_confident_sentences_score_lowest():
    logits = torch.zeros(3, 4, 3)
    logits[0, :, 0] = 20.0  # confident everywhere
    logits[1, 0, 0] = 20.0  # confident on one token only
    for fn in (token_entropy, token_least_confidence):
        for r in ("sum", "mean", "max"):
            s = fn(logits, None, r)
            assert s[0] < s[1] < s[2] or (r == "max" and s[0] < s[1] == s[2]), (fn, r)
    s = mnlp(logits)
    assert s[0] < s[1] < s[2] and s[0] >= 0
    assert s[2].item() == pytest.approx(math.log(3), rel=1e-5)


def test_reduce_tokens_empty_rows_and_errors():
    scores = np.array([[1.0, -2.0], [5.0, 5.0]])
    mask = np.array([[True, True], [False, False]])
    torch.testing.assert_close(reduce_tokens(scores, mask, "max"), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(
        reduce_tokens(scores, mask, "mean", empty=-1.0), torch.tensor([-0.5, -1.0])
    )
    torch.testing.assert_close(reduce_tokens(scores), torch.tensor([-1.0, 10.0]))
    with pytest.raises(FunctionalInputError, match="reduction"):
        reduce_tokens(scores, mask, "median")
    with pytest.raises(ShapeError, match="mask"):
        reduce_tokens(scores, np.ones((2, 3)))
    with pytest.raises(ShapeError):
        reduce_tokens(np.ones(3))
    with pytest.raises(NonFiniteInputError):
        reduce_tokens(np.array([[np.nan]]), np.array([[1]]))
    assert reduce_tokens(np.array([[np.nan]]), np.array([[0]])).item() == 0.0


def test_acquisition_input_errors():
    with pytest.raises(ShapeError):
        token_entropy(torch.zeros(2, 3))
    with pytest.raises(ShapeError, match="mask"):
        token_entropy(torch.zeros(2, 3, 4), torch.ones(2, 4))
    with pytest.raises(InvalidProbabilitiesError):
        token_entropy(torch.full((1, 2, 2), 0.9), from_probs=True)
    with pytest.raises(InvalidProbabilitiesError):  # logits passed as probs
        mnlp(torch.tensor([[[2.0, -1.0]]]), from_probs=True)
    with pytest.raises(NonFiniteInputError):
        mnlp(torch.tensor([[[float("inf"), 0.0]]]))
