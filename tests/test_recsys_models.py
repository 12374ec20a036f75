"""The recsys pieces are their formulas: MF and NeuMF scores, top-k metrics, EASE, popularity, the bias baseline."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ptlab.models import neumf as neumf_module
from ptlab.models.mf import MatrixFactorization
from ptlab.models.neumf import NeuMF
from ptlab.objectives.ranking_metrics import hit_rate, ndcg, recall
from ptlab.objectives.recsys_baselines import (
    bias_baseline, choose_ease_l2, ease, ease_weights, interaction_matrix, item_gram, popularity_scores,
)

torch.set_num_threads(1)

USERS, ITEMS = 7, 11
MODELS = {"mf": lambda: MatrixFactorization(USERS, ITEMS, dim=4, init_std=0.5),
          "neumf": lambda: NeuMF(USERS, ITEMS, dim=4, mlp_layers=[8, 4], dropout=0.5)}


@pytest.mark.parametrize("name", MODELS)
def test_scores_of_every_item_equal_the_scores_of_each_pair(name: str, monkeypatch) -> None:
    monkeypatch.setattr(neumf_module, "PAIRS_PER_CHUNK", 7)  # NeuMF: several chunks of items, one shorter
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    with torch.no_grad():
        for p in model.parameters():  # nonzero biases too, so that every term shows
            p.normal_()
    users = torch.tensor([0, 3, 3, 6])
    with torch.no_grad():
        every = model(users)
        pairs = model(users, torch.tensor([1, 0, 10, 5]))
        k_items = torch.randint(ITEMS, (4, 3))
        per_k = model(users, k_items)
    assert every.shape == (4, ITEMS) and pairs.shape == (4,) and per_k.shape == (4, 3)
    assert torch.allclose(pairs, every[torch.arange(4), torch.tensor([1, 0, 10, 5])], atol=1e-5)
    assert torch.allclose(per_k, every.gather(1, k_items), atol=1e-5)
    assert model.target_kinds == ("ranking", "rating")


def test_mf_is_global_plus_user_plus_item_bias_plus_a_dot_product() -> None:
    torch.manual_seed(0)
    model = MatrixFactorization(USERS, ITEMS, dim=3)
    with torch.no_grad():
        model.global_bias.fill_(3.5)
        model.user_bias.normal_()
        model.item_bias.normal_()
    u, i = 2, 9
    expected = (3.5 + model.user_bias[u] + model.item_bias[i]
                + model.user_factors.weight[u] @ model.item_factors.weight[i])
    assert torch.allclose(model(torch.tensor([u]), torch.tensor([i]))[0], expected)
    assert model.user_factors.weight.std().item() == pytest.approx(0.01, rel=0.5)


def test_bpr_never_moves_the_global_and_user_biases_of_mf() -> None:
    """In r̂ᵤᵢ − r̂ᵤⱼ, μ and bᵤ cancel: their gradient is exactly zero."""
    torch.manual_seed(0)
    model = MatrixFactorization(USERS, ITEMS, dim=4)
    users, pos, neg = torch.randint(USERS, (32,)), torch.randint(ITEMS, (32,)), torch.randint(ITEMS, (32,))
    loss = -F.logsigmoid(model(users, pos) - model(users, neg)).mean()
    loss.backward()
    assert model.global_bias.grad.item() == 0.0
    assert torch.count_nonzero(model.user_bias.grad) == 0
    assert torch.count_nonzero(model.item_bias.grad) > 0 and torch.count_nonzero(model.user_factors.weight.grad) > 0


def test_neumf_is_a_linear_layer_on_the_gmf_product_and_the_mlp_of_the_concatenation() -> None:
    torch.manual_seed(0)
    model = NeuMF(USERS, ITEMS, dim=4, mlp_layers=[6, 5]).eval()
    u, i = torch.tensor([1, 4]), torch.tensor([7, 2])
    gmf = model.gmf_users(u) * model.gmf_items(i)
    h = torch.cat([model.mlp_users(u), model.mlp_items(i)], -1)
    for linear in (model.mlp[0], model.mlp[3]):
        h = torch.relu(linear(h))
    expected = torch.cat([gmf, h], -1) @ model.head.weight[0] + model.head.bias
    assert torch.allclose(model(u, i), expected, atol=1e-6)
    assert [m.out_features for m in model.mlp if isinstance(m, torch.nn.Linear)] == [6, 5]
    assert model.head.in_features == 4 + 5


# --- ranking metrics ---------------------------------------------------------------------------

def test_ranking_metrics_match_a_hand_computation() -> None:
    """k = 3 over 6 items; a user's ranks are those of scores 6 > 5 > ... > 1."""
    scores = torch.tensor([[6.0, 5, 4, 3, 2, 1]]).repeat(4, 1)
    relevant = torch.zeros(4, 6, dtype=torch.bool)
    relevant[0, 2] = True  # ranked 3rd: HR 1, NDCG 1/log₂(4) = 0.5, recall 1
    relevant[1, [0, 3]] = True  # ranked 1st and 4th: HR 1, NDCG 1 / (1 + 1/log₂(3)), recall 1/2
    relevant[2, 4] = True  # ranked 5th: all 0
    # row 3 has no relevant item: skipped
    ndcg_1 = 1 / (1 + 1 / math.log2(3))  # = 0.6131
    expected = {"hr": (1 + 1 + 0) / 3, "ndcg": (0.5 + ndcg_1 + 0) / 3, "recall": (1 + 0.5 + 0) / 3}
    for name, build in {"hr": hit_rate, "ndcg": ndcg, "recall": recall}.items():
        metric = build(k=3)
        metric.update(scores, relevant)
        assert metric.compute().item() == pytest.approx(expected[name], abs=1e-6), name
    metric = ndcg(k=10)
    metric.update(scores[:1], relevant[:1])
    assert metric.compute().item() == pytest.approx(0.5)  # 3rd of 6 with k = 10 > N


def test_non_candidates_are_neither_retrieved_nor_counted_as_relevant() -> None:
    inf = float("inf")
    scores = torch.tensor([[-inf, 0.5, 0.2, -inf],  # 2 candidates, k = 3: top 3 includes a −inf item
                           [0.9, -inf, 0.1, 0.3]])
    relevant = torch.tensor([[True, False, True, True],  # items 0 and 3 are not candidates: |relevant| = 1
                             [False, True, False, False]])  # only relevant item is not a candidate: skipped
    expected = {hit_rate: 1.0, ndcg: 1 / math.log2(3), recall: 1.0}  # item 2 ranked 2nd
    for build, value in expected.items():
        metric = build(k=3)
        metric.update(scores, relevant)
        assert metric.compute().item() == pytest.approx(value)
        assert metric.users.item() == 1


@pytest.mark.parametrize("k", [1, 5, 10])
def test_ranking_metrics_agree_with_torchmetrics_retrieval_metrics_over_several_batches(k: int) -> None:
    from torchmetrics.retrieval import RetrievalHitRate, RetrievalNormalizedDCG, RetrievalRecall

    generator = torch.Generator().manual_seed(k)
    scores = torch.randn(60, 40, generator=generator)
    relevant = torch.rand(60, 40, generator=generator) < 0.12  # ~5 relevant items a row, some rows none
    relevant[:3] = False
    rows = torch.arange(60)[:, None].expand(-1, 40)
    pairs = {hit_rate: RetrievalHitRate, ndcg: RetrievalNormalizedDCG, recall: RetrievalRecall}
    for ours_builder, reference_class in pairs.items():
        ours = ours_builder(k=k)
        for part in torch.arange(60).split(25):  # batches of users; the states add up
            ours.update(scores[part], relevant[part])
        reference = reference_class(top_k=k, empty_target_action="skip")
        reference.update(scores.flatten(), relevant.flatten(), indexes=rows.flatten())
        assert ours.compute().item() == pytest.approx(reference.compute().item(), abs=1e-6), reference_class


# --- closed-form baselines ---------------------------------------------------------------------

def test_interaction_matrix_and_popularity_are_the_training_counts() -> None:
    users, items = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([1, 3, 1, 0, 1, 3])
    x = interaction_matrix(users, items, num_users=4, num_items=5)
    assert x.dtype == torch.float32 and x.shape == (4, 5)
    assert x.tolist() == [[0, 1, 0, 1, 0], [0, 1, 0, 0, 0], [1, 1, 0, 1, 0], [0, 0, 0, 0, 0]]
    assert popularity_scores(x).tolist() == [1, 3, 0, 2, 0]


def test_ease_is_the_ridge_regression_of_each_item_on_the_others() -> None:
    """min ‖X − XB‖² + λ‖B‖² with diag(B) = 0 splits into one ridge regression per column j of X on the others."""
    torch.manual_seed(0)
    x = (torch.rand(30, 6) < 0.4).float()
    l2 = 2.5
    b = ease_weights(item_gram(x), l2)
    assert torch.count_nonzero(b.diagonal()) == 0
    xd = x.double()
    for j in range(6):
        others = [i for i in range(6) if i != j]
        a = xd[:, others]
        direct = torch.linalg.solve(a.T @ a + l2 * torch.eye(5, dtype=a.dtype), a.T @ xd[:, j])
        assert torch.allclose(b[others, j], direct, atol=1e-10)
    assert torch.allclose(ease(x, l2), (xd @ b).float())


def test_the_ease_l2_chosen_is_the_best_of_the_grid_on_validation() -> None:
    """Two groups of users, each with its own block of items; one held-out item per user."""
    torch.manual_seed(0)
    users, items = 40, 12
    own_block = (torch.arange(users)[:, None] < 20) == (torch.arange(items) < 6)
    taste = torch.rand(users, items) * torch.where(own_block, 1.0, 0.15)
    x = (torch.rand(users, items) < taste).float()
    held_out = torch.multinomial(x + 1e-6, 1).squeeze(1)
    x[torch.arange(users), held_out] = 0
    val_users = torch.arange(users)
    relevant = F.one_hot(held_out, items).bool()
    candidates = x == 0
    grid = (0.01, 5.0, 50.0, 5000.0)
    values = []
    for l2 in grid:
        metric = ndcg(k=3)
        metric.update(ease(x, l2).masked_fill(~candidates, float("-inf")), relevant)
        values.append(metric.compute().item())
    assert len(set(values)) > 1  # the grid matters on this case
    assert choose_ease_l2(x, val_users, relevant, candidates, ndcg(k=3), grid) == grid[values.index(max(values))]


def test_bias_baseline_recovers_planted_biases_and_damps_them() -> None:
    torch.manual_seed(0)
    n_users, n_items, mu = 6, 5, 3.5
    b_u, b_i = torch.randn(n_users), torch.randn(n_items)
    b_u, b_i = b_u - b_u.mean(), b_i - b_i.mean()  # centred, so μ is the mean rating
    users = torch.arange(n_users).repeat_interleave(n_items)  # every user rates every item, no noise
    items = torch.arange(n_items).repeat(n_users)
    ratings = mu + b_u[users] + b_i[items]
    fit = bias_baseline(users, items, ratings, n_users + 1, n_items, damping=0.0)  # user 6 rated nothing
    assert fit.mu == pytest.approx(mu)
    assert torch.allclose(fit.user_bias[:n_users], b_u, atol=1e-6) and fit.user_bias[n_users] == 0
    assert torch.allclose(fit.item_bias, b_i, atol=1e-6)
    assert torch.allclose(fit(users, items), ratings, atol=1e-5)
    assert torch.allclose(fit(torch.tensor([n_users]), torch.tensor([2])), mu + b_i[2:3], atol=1e-6)
    damped = bias_baseline(users, items, ratings, n_users, n_items, damping=5.0)
    # bᵢ = n_users·bᵢ / (n_users + 5); then bᵤ = n_items·bᵤ / (n_items + 5), since Σᵢ bᵢ = 0
    assert torch.allclose(damped.item_bias, b_i * n_users / (n_users + 5), atol=1e-6)
    assert torch.allclose(damped.user_bias, b_u * n_items / (n_items + 5), atol=1e-6)
