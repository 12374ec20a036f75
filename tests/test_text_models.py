"""The sequence models are their formulas: attention, causality, tying, padding; sampling and perplexity."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ptlab.errors import ConfigError
from ptlab.models.rnn import RNNClassifier, RNNLanguageModel, rnn
from ptlab.models.sampling import sample
from ptlab.models.transformer import GPT, SelfAttention, TransformerClassifier, transformer
from ptlab.objectives.text import Perplexity

VOCAB = 23


@pytest.mark.parametrize("causal", [True, False])
def test_attention_is_softmax_of_scaled_scores_plus_mask_times_values(causal: bool) -> None:
    torch.manual_seed(0)
    attn = SelfAttention(n_embd=12, n_head=3, dropout=0.0, causal=causal).eval()
    x = torch.randn(2, 5, 12)
    visible = None if causal else torch.tensor([[True] * 5, [True, True, True, False, False]])
    B, T, C, H, d = 2, 5, 12, 3, 4
    q, k, v = (t.view(B, T, H, d).transpose(1, 2) for t in attn.qkv(x).split(C, dim=2))
    mask = torch.zeros(B, 1, T, T)
    if causal:
        mask = mask.masked_fill(torch.ones(T, T).triu(1).bool(), -math.inf)  # no looking ahead
    else:
        mask = mask.masked_fill(~visible[:, None, None, :], -math.inf)  # no looking at padding
    heads = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d) + mask, dim=-1) @ v
    expected = attn.out(heads.transpose(1, 2).reshape(B, T, C))
    assert torch.allclose(attn(x, visible), expected, atol=1e-5)


@pytest.mark.parametrize("build", [lambda: transformer(VOCAB, 16, n_layer=2, n_head=2, n_embd=16),
                                   lambda: rnn(VOCAB, 16, embedding_dim=8, hidden_size=16)], ids=["gpt", "lstm"])
def test_language_models_are_causal_and_tie_their_output_to_the_embedding(build) -> None:
    torch.manual_seed(0)
    model = build().eval()
    assert isinstance(model, (GPT, RNNLanguageModel))
    embedding = model.transformer.tok_emb if isinstance(model, GPT) else model.embedding
    assert model.head.weight is embedding.weight
    ids = torch.randint(0, VOCAB, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % VOCAB  # change the future
    logits, logits_changed = model(ids), model(changed)
    assert logits.shape == (2, 10, VOCAB)
    assert torch.allclose(logits[:, :6], logits_changed[:, :6], atol=1e-6)
    assert not torch.allclose(logits[:, 6:], logits_changed[:, 6:])


@pytest.mark.parametrize("build", [
    lambda: transformer(VOCAB, 16, num_classes=3, n_layer=2, n_head=2, n_embd=16, pooling="mean"),
    lambda: transformer(VOCAB, 16, num_classes=3, n_layer=2, n_head=2, n_embd=16, pooling="cls"),
    lambda: rnn(VOCAB, 16, num_classes=3, embedding_dim=8, hidden_size=16, bidirectional=True),
    lambda: rnn(VOCAB, 16, num_classes=3, cell="gru", embedding_dim=8, hidden_size=16, num_layers=1),
], ids=["transformer-mean", "transformer-cls", "bilstm", "gru"])
def test_classifiers_ignore_padding(build) -> None:
    torch.manual_seed(0)
    model = build().eval()
    assert isinstance(model, (TransformerClassifier, RNNClassifier))
    ids = torch.randint(3, VOCAB, (3, 8))
    lengths = torch.tensor([8, 5, 2])
    padded = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], 1)
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
        padded[row, n:] = (torch.arange(12 - n) * 7) % VOCAB  # whatever sits in the padding must not matter
    logits = model(ids, lengths)
    assert logits.shape == (3, 3) and torch.allclose(logits, model(padded, lengths), atol=1e-5)


def test_a_bidirectional_language_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="model.bidirectional: a language model must not read the tokens it predicts"):
        rnn(VOCAB, 16, bidirectional=True)
    with pytest.raises(ConfigError, match="model.n_embd: 10 is not divisible by model.n_head=4"):
        transformer(VOCAB, 16, n_embd=10)


def test_sampling_is_reproducible_per_seed_and_greedy_at_temperature_zero() -> None:
    torch.manual_seed(0)
    model = transformer(VOCAB, 8, n_layer=1, n_head=2, n_embd=16).eval()
    context = torch.tensor([2, 5, 7])

    def draw(seed: int, **kwargs) -> list[int]:
        return sample(model, context, 20, generator=torch.Generator().manual_seed(seed), **kwargs).tolist()

    assert draw(1) == draw(1) and draw(1) != draw(2)
    assert draw(1)[:3] == [2, 5, 7] and len(draw(1)) == 23
    greedy = draw(1, temperature=0.0)
    assert greedy == draw(2, temperature=0.0) == draw(3, top_k=1)
    ids = torch.tensor(greedy)
    for t in range(3, len(ids)):  # each new token is the argmax given the last block_size tokens
        assert ids[t] == model(ids[max(0, t - 8):t][None])[0, -1].argmax()


def test_perplexity_is_exp_of_the_mean_token_cross_entropy_over_all_updates() -> None:
    torch.manual_seed(0)
    metric = Perplexity()
    logits, target = torch.randn(50, VOCAB), torch.randint(0, VOCAB, (50,))
    metric.update(logits[:10], target[:10])
    metric.update(logits[10:], target[10:])
    assert torch.allclose(metric.compute(), F.cross_entropy(logits, target).exp())
