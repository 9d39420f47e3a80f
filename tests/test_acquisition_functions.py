import math

import pytest
import torch

from energizer_hf import acquisition_functions as af

LOGITS = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [2.0, 2.0, -5.0], [3.0, 1.0, 0.0]])


def test_entropy_uniform_is_log_c_and_argmax_is_the_uniform_row():
    h = af.entropy(LOGITS)
    assert h[0].item() == pytest.approx(math.log(3), abs=1e-6)
    assert h.argmax().item() == 0


def test_margin_prefers_a_two_way_tie_over_a_confident_one():
    m = af.margin(LOGITS)
    # rows 0 and 2 are exact ties between the top two classes
    assert m[0].item() == pytest.approx(0.0, abs=1e-6) and m[2].item() == pytest.approx(0.0, abs=1e-6)
    assert m[1] < m[3] < m[2]


def test_least_confidence_and_ratio():
    lc = af.least_confidence(LOGITS)
    assert lc[0].item() == pytest.approx(2 / 3, abs=1e-6)
    assert lc.argmin().item() == 1
    r = af.ratio_of_confidence(LOGITS)
    assert r[2].item() == pytest.approx(1.0) and r[1].item() == pytest.approx(math.exp(-5), rel=1e-5)


def test_from_probs_variants_agree_with_logits_variants():
    probs = torch.softmax(LOGITS, -1)
    assert torch.allclose(af.entropy(LOGITS), af.entropy_from_probs(probs), atol=1e-6)
    assert torch.allclose(af.margin(LOGITS), af.margin_from_probs(probs), atol=1e-6)
    assert torch.allclose(af.ratio_of_confidence(LOGITS), af.ratio_of_confidence_from_probs(probs), atol=1e-6)


def test_stable_for_huge_logits():
    big = torch.tensor([[1e4, -1e4], [1e4, 1e4]])
    assert torch.isfinite(af.entropy(big)).all()
    assert torch.isfinite(af.ratio_of_confidence(big)).all()


def test_shape_errors():
    with pytest.raises(ValueError, match="batch, num_classes"):
        af.entropy(torch.zeros(3))
    with pytest.raises(ValueError, match="2 classes"):
        af.margin(torch.zeros(2, 1))
