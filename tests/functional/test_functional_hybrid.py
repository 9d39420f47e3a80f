"""Known-answer tests for energizer_hf.functional.hybrid."""

from __future__ import annotations

import math

import pytest
import torch

from energizer_hf.functional import (
    badge_gradient_embeddings,
    badge_select,
    cal_scores,
    cluster_margin,
    egl_scores,
    hac_clusters,
    iter_badge_gradient_embeddings,
    kmeans_pp_init,
)


def _random_probs(n, c, seed=0, temp=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, c, generator=g) * temp, dim=1)


def test_gradient_embeddings_are_the_last_layer_gradient():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 4, generator=g)
    w = torch.randn(3, 4, generator=g, requires_grad=True)
    probs = torch.softmax(h @ w.T, 1)
    emb = badge_gradient_embeddings(probs.detach(), h)
    for i in range(5):
        w.grad = None
        logits = h[i] @ w.T
        torch.nn.functional.cross_entropy(logits[None], logits.argmax()[None]).backward()
        torch.testing.assert_close(emb[i], -w.grad.flatten(), atol=1e-5, rtol=1e-5)
    chunks = torch.cat(list(iter_badge_gradient_embeddings(probs.detach(), h, chunk_size=2)))
    torch.testing.assert_close(chunks, emb)


def test_implicit_kmeanspp_matches_explicit_on_gradient_embeddings():
    probs = _random_probs(60, 4, seed=1)
    h = torch.randn(60, 5, generator=torch.Generator().manual_seed(2))
    explicit = kmeans_pp_init(badge_gradient_embeddings(probs, h), 8, first="max_norm", seed=3)
    implicit = badge_select(probs, h, 8, seed=3)
    assert implicit.tolist() == explicit.tolist()
    lab = implicit[:3]
    explicit = kmeans_pp_init(
        badge_gradient_embeddings(probs, h), 5, first="max_norm", labelled=lab, seed=4
    )
    assert badge_select(probs, h, 5, labelled=lab, seed=4).tolist() == explicit.tolist()


def test_badge_picks_uncertain_and_diverse_points():
    d = 25
    eye = torch.eye(d)
    # 0-3: moderately uncertain, four orthogonal directions ("diverse")
    diverse_p = torch.tensor([[0.5, 0.3, 0.2]]).repeat(4, 1)
    diverse_h = eye[0:4]
    # 4-9: the most uncertain points, but all the same example (duplicates)
    dup_p = torch.full((6, 3), 1.0 / 3)
    dup_h = eye[4].repeat(6, 1)
    # 10-29: confident predictions with very diverse embeddings
    conf_p = torch.nn.functional.one_hot(torch.arange(20) % 3, 3).float()
    conf_h = eye[5:25]
    probs = torch.cat([diverse_p, dup_p, conf_p])
    emb = torch.cat([diverse_h, dup_h, conf_h])
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1)
    assert set(torch.topk(entropy, 5).indices.tolist()) <= set(range(4, 10))  # uncertainty-only
    for seed in range(5):
        picked = set(badge_select(probs, emb, 5, seed=seed).tolist())
        assert len(picked & set(range(4, 10))) <= 1  # one duplicate at most
        assert len(picked & set(range(10, 30))) <= 1  # zero gradient: one at most
        assert len(picked & set(range(0, 4))) >= 3


def test_cluster_margin_spreads_picks_over_clusters():
    g = torch.Generator().manual_seed(3)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = torch.tensor([0] * 20 + [1] * 20 + [2] * 20)
    emb = centers[y] + 0.1 * torch.randn(60, 2, generator=g)
    margin = torch.full((60,), 0.9)
    margin[:10] = torch.linspace(0.0, 0.05, 10)  # the 10 lowest margins are all in cluster 0
    margin[20:23] = 0.2
    margin[40:43] = 0.25
    probs = torch.stack([(1 + margin) / 2, (1 - margin) / 2], 1)
    picked = cluster_margin(probs, emb, 6, n_clusters=3, margin_batch_size=16, seed=0)
    assert sorted(y[picked].tolist()) == [0, 0, 1, 1, 2, 2]
    assert set(torch.argsort(margin)[:6].tolist()) <= set(range(10))  # margin-only would not
    # precomputed clusters reused across rounds give the same answer
    clusters = hac_clusters(emb, n_clusters=3)
    again = cluster_margin(probs, None, 6, cluster_labels=clusters, margin_batch_size=16, seed=0)
    assert sorted(y[again].tolist()) == [0, 0, 1, 1, 2, 2]
    # every pick comes from the low-margin set
    assert set(picked.tolist()) <= set(torch.argsort(margin)[:16].tolist())


def test_cluster_margin_visits_smallest_clusters_first():
    y = torch.tensor([0] * 20 + [1] * 20 + [2] * 20)
    margin = torch.full((60,), 0.9)
    margin[:10] = 0.01  # 10 low-margin points in cluster 0
    margin[20:22] = 0.2  # 2 in cluster 1
    margin[40:44] = 0.25  # 4 in cluster 2
    probs = torch.stack([(1 + margin) / 2, (1 - margin) / 2], 1)
    for seed in range(3):
        picked = cluster_margin(probs, None, 4, cluster_labels=y, margin_batch_size=16, seed=seed)
        # order of visits: cluster 1 (2 points), cluster 2 (4), cluster 0 (10), cluster 1
        assert y[picked].tolist() == [1, 2, 0, 1]


def test_cal_ranks_disagreeing_candidate_highest():
    g = torch.Generator().manual_seed(4)
    emb_lab = torch.randn(30, 4, generator=g)
    probs_lab = torch.tensor([[0.8, 0.1, 0.1]]).repeat(30, 1)
    emb_pool = emb_lab[:5] + 0.01
    probs_pool = torch.tensor([[0.8, 0.1, 0.1]]).repeat(5, 1)
    probs_pool[3] = torch.tensor([0.1, 0.1, 0.8])  # disagrees with its neighbours
    probs_pool[1] = torch.tensor([0.6, 0.2, 0.2])  # mildly different
    scores = cal_scores(probs_pool, emb_pool, probs_lab, emb_lab, n_neighbors=10)
    assert torch.argsort(scores, descending=True)[:2].tolist() == [3, 1]
    kl = (probs_lab[0] * (probs_lab[0] / probs_pool[3]).log()).sum()
    assert scores[3].item() == pytest.approx(kl.item(), rel=1e-5)
    assert scores[0].item() == pytest.approx(0.0, abs=1e-6)


def test_cal_uses_only_the_nearest_labelled_neighbours_and_gold_labels():
    emb_lab = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
    probs_lab = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]])
    probs_pool = torch.tensor([[0.1, 0.9], [0.1, 0.9]])
    emb_pool = torch.tensor([[0.05], [10.05]])  # first sits among class-0 predictions
    s = cal_scores(probs_pool, emb_pool, probs_lab, emb_lab, n_neighbors=2)
    assert s[0] > 1.0 and s[1].item() == pytest.approx(0.0, abs=1e-6)
    s = cal_scores(
        probs_pool, emb_pool, None, emb_lab, torch.tensor([0, 0, 1, 1]), 2, target="labels"
    )
    assert s[0].item() == pytest.approx(-math.log(0.1), rel=1e-5)
    assert s[1].item() == pytest.approx(-math.log(0.9), rel=1e-5)
    with pytest.raises(ValueError):
        cal_scores(probs_pool, emb_pool, None, emb_lab)


def test_egl_zero_for_confident_one_hot_and_matches_autograd():
    h = torch.randn(6, 4, generator=torch.Generator().manual_seed(5))
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).float()
    torch.testing.assert_close(egl_scores(one_hot, h), torch.zeros(6))
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(6), requires_grad=True)
    probs = torch.softmax(h @ w.T, 1).detach()
    expected = torch.zeros(6)
    for i in range(6):
        for c in range(3):
            w.grad = None
            torch.nn.functional.cross_entropy((h[i] @ w.T)[None], torch.tensor([c])).backward()
            expected[i] += probs[i, c] * w.grad.norm()
    torch.testing.assert_close(egl_scores(probs, h), expected, atol=1e-5, rtol=1e-5)
    with_bias = egl_scores(probs, h, include_bias=True)
    assert bool((with_bias > egl_scores(probs, h)).all())
