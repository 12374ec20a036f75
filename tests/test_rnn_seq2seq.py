"""The RNN encoder–decoder keeps the seq2seq protocol: padding unseen, causal, incremental = teacher-forced,
batch-first state for beam reordering, and it learns a small task that greedy decoding then reproduces."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from ptlab.models.rnn_seq2seq import BOS, EOS, PAD, Attention, RNNSeq2Seq, rnn_seq2seq

torch.set_num_threads(1)

SRC_VOCAB, TGT_VOCAB = 17, 19
# (cell, attention, num_layers): both cells, both attentions, one and two layers
CONFIGS = [("gru", "bahdanau", 1), ("lstm", "luong", 2), ("gru", "luong", 2), ("lstm", "bahdanau", 1)]
IDS = [f"{cell}-{attention}-{layers}" for cell, attention, layers in CONFIGS]


def small(cell: str, attention: str, num_layers: int, dropout: float = 0.3) -> RNNSeq2Seq:
    torch.manual_seed(0)
    model = rnn_seq2seq(SRC_VOCAB, TGT_VOCAB, max_source_length=7, max_target_length=6, cell=cell,
                        embedding_dim=6, hidden_size=8, num_layers=num_layers, attention=attention,
                        dropout=dropout)
    return model.eval()  # dropout > 0 above: eval() must switch it off for the comparisons below


def batch(B: int = 3, S: int = 7, T: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([S, 4, 2][:B])
    src = torch.randint(4, SRC_VOCAB, (B, S), generator=g)
    src[torch.arange(S) >= lengths[:, None]] = PAD
    tgt_in = torch.randint(4, TGT_VOCAB, (B, T), generator=g)
    tgt_in[:, 0] = BOS
    return src, lengths, tgt_in


@pytest.mark.parametrize("kind", ["bahdanau", "luong"])
def test_attention_is_the_softmax_of_its_scores_over_real_positions_weighting_the_annotations(kind: str) -> None:
    torch.manual_seed(0)
    attn = Attention(kind, 8)
    s, h = torch.randn(3, 8), torch.randn(3, 7, 8)  # a decoder state per sequence, annotations hⱼ
    visible = torch.arange(7) < torch.tensor([7, 4, 2])[:, None]
    e = torch.empty(3, 7)
    for b in range(3):
        for j in range(7):
            if kind == "bahdanau":  # vᵀ tanh(W s + U hⱼ)
                e[b, j] = attn.v.weight[0] @ torch.tanh(attn.query.weight @ s[b] + attn.key.weight @ h[b, j]
                                                         + attn.key.bias)
            else:  # sᵀ W hⱼ
                e[b, j] = s[b] @ attn.key.weight @ h[b, j]
    alpha = torch.softmax(e.masked_fill(~visible, float("-inf")), dim=-1)
    context, got_alpha = attn(s, attn.key(h), h, visible)
    assert torch.allclose(got_alpha, alpha, atol=1e-6)
    assert torch.allclose(context, torch.einsum("bj,bjh->bh", alpha, h), atol=1e-6)  # cᵢ = Σⱼ αᵢⱼ hⱼ


@pytest.mark.parametrize(("cell", "attention", "num_layers"), CONFIGS, ids=IDS)
def test_padded_source_positions_change_no_logit_and_get_zero_attention(cell, attention, num_layers) -> None:
    model = small(cell, attention, num_layers)
    src, lengths, tgt_in = batch()
    changed = src.clone()
    padding = torch.arange(src.shape[1]) >= lengths[:, None]
    changed[padding] = torch.randint(4, SRC_VOCAB, (int(padding.sum()),))  # real-looking tokens in the padding
    assert not torch.equal(changed, src)
    with torch.no_grad():
        logits, logits_changed = model(src, lengths, tgt_in), model(changed, lengths, tgt_in)
        alpha = model.attention_weights(changed, lengths, tgt_in)  # B × T × S
    assert logits.shape == (3, 5, TGT_VOCAB)
    assert torch.equal(logits, logits_changed)
    assert torch.all(alpha[padding[:, None, :].expand_as(alpha)] == 0)  # exactly 0, not just small
    assert torch.all(alpha[~padding[:, None, :].expand_as(alpha)] > 0)
    assert torch.allclose(alpha.sum(-1), torch.ones(3, 5))
    # the real source tokens do matter
    other = src.clone()
    other[1, 0] = (other[1, 0] + 1 - 4) % (SRC_VOCAB - 4) + 4
    with torch.no_grad():
        assert not torch.allclose(model(other, lengths, tgt_in)[1], logits[1])


@pytest.mark.parametrize(("cell", "attention", "num_layers"), CONFIGS, ids=IDS)
def test_logits_at_t_do_not_depend_on_later_target_tokens(cell, attention, num_layers) -> None:
    model = small(cell, attention, num_layers)
    src, lengths, tgt_in = batch()
    changed = tgt_in.clone()
    changed[:, 3:] = (changed[:, 3:] + 1 - 4) % (TGT_VOCAB - 4) + 4  # change the future
    with torch.no_grad():
        logits, logits_changed = model(src, lengths, tgt_in), model(src, lengths, changed)
    assert torch.allclose(logits[:, :3], logits_changed[:, :3], atol=1e-6)
    assert not torch.allclose(logits[:, 3:], logits_changed[:, 3:])


@pytest.mark.parametrize(("cell", "attention", "num_layers"), CONFIGS, ids=IDS)
def test_incremental_decode_step_equals_the_teacher_forced_forward(cell, attention, num_layers) -> None:
    model = small(cell, attention, num_layers)
    src, lengths, tgt_in = batch()
    with torch.no_grad():
        full = model(src, lengths, tgt_in)
        memory, cache, steps = model.encode(src, lengths), {}, []
        for position in range(tgt_in.shape[1]):
            step_logits, cache = model.decode_step(memory, tgt_in[:, position], cache, position)
            steps.append(step_logits)
    assert torch.allclose(torch.stack(steps, dim=1), full, atol=1e-5)
    with torch.no_grad():  # and the cache is what carries the past: starting over from {} forgets it
        assert not torch.allclose(model.decode_step(memory, tgt_in[:, -1], {}, 0)[0], steps[-1], atol=1e-3)


@pytest.mark.parametrize(("cell", "attention", "num_layers"), CONFIGS, ids=IDS)
def test_memory_and_cache_are_batch_first_so_beams_reorder_with_index_select(cell, attention, num_layers) -> None:
    model = small(cell, attention, num_layers)
    B, S = 3, 7  # differ from layers (1, 2), hidden (8), embedding (6): a misplaced batch dim shows
    src, lengths, tgt_in = batch(B, S)
    expected = {"outputs", "keys", "visible", "h0"} | ({"c0"} if cell == "lstm" else set())
    with torch.no_grad():
        memory = model.encode(src, lengths)
        _, cache = model.decode_step(memory, tgt_in[:, 0], {}, 0)
        logits, next_cache = model.decode_step(memory, tgt_in[:, 1], cache, 1)
    assert set(memory) == expected
    assert set(cache) == {"h"} | ({"c"} if cell == "lstm" else set()) | ({"feed"} if attention == "luong" else set())
    assert memory["visible"].dtype == torch.bool and memory["visible"].shape == (B, S)
    for name in ("h0", "c0") if cell == "lstm" else ("h0",):
        assert memory[name].shape == (B, num_layers, 8), name
    for name, tensor in {**memory, **cache}.items():
        assert tensor.shape[0] == B, name
    # what beam search does: pick and repeat rows of everything; the step must follow the rows
    idx = torch.tensor([2, 0, 0])
    with torch.no_grad():
        reordered = model.decode_step({k: v.index_select(0, idx) for k, v in memory.items()},
                                      tgt_in[:, 1].index_select(0, idx),
                                      {k: v.index_select(0, idx) for k, v in cache.items()}, 1)
    assert torch.allclose(reordered[0], logits.index_select(0, idx), atol=1e-6)
    for name, tensor in next_cache.items():
        assert torch.allclose(reordered[1][name], tensor.index_select(0, idx), atol=1e-6), name


def reverse_task(n: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[list[int]]]:
    """n sequences of 3–5 digits (ids 4–13); the target is the source reversed, then EOS."""
    g = torch.Generator().manual_seed(0)
    seqs = [(torch.randint(4, 14, (int(torch.randint(3, 6, (1,), generator=g)),), generator=g)).tolist()
            for _ in range(n)]
    src = torch.full((n, 5), PAD)
    tgt_in = torch.full((n, 6), PAD)
    tgt_out = torch.full((n, 6), PAD)
    for i, seq in enumerate(seqs):
        src[i, :len(seq)] = torch.tensor(seq)
        target = seq[::-1]
        tgt_in[i, :len(seq) + 1] = torch.tensor([BOS, *target])
        tgt_out[i, :len(seq) + 1] = torch.tensor([*target, EOS])
    return src, torch.tensor([len(s) for s in seqs]), tgt_in, tgt_out, [s[::-1] for s in seqs]


def greedy(model: RNNSeq2Seq, src: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """argmax of decode_step, from BOS until EOS (or max_target_length tokens)."""
    B = src.shape[0]
    memory, cache = model.encode(src, lengths), {}
    tokens = torch.full((B,), BOS)
    out, done = [[] for _ in range(B)], torch.zeros(B, dtype=torch.bool)
    for position in range(model.max_target_length):
        logits, cache = model.decode_step(memory, tokens, cache, position)
        tokens = logits.argmax(-1)
        for i in range(B):
            if not done[i] and tokens[i] != EOS:
                out[i].append(int(tokens[i]))
        done |= tokens == EOS
        if done.all():
            break
    return out


@pytest.mark.parametrize(("cell", "attention"), [("gru", "bahdanau"), ("lstm", "luong")])
def test_it_overfits_a_tiny_reverse_task_and_greedy_decoding_reproduces_it(cell, attention) -> None:
    start = time.perf_counter()
    torch.manual_seed(0)
    src, lengths, tgt_in, tgt_out, targets = reverse_task()
    model = rnn_seq2seq(14, 14, 5, 6, cell=cell, embedding_dim=16, hidden_size=32, attention=attention,
                        dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        assert greedy(model.eval(), src, lengths) != targets  # untrained, it does not know the task
    model.train()
    for _ in range(400):
        loss = F.cross_entropy(model(src, lengths, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05
    with torch.no_grad():
        assert greedy(model.eval(), src, lengths) == targets
    assert time.perf_counter() - start < 8
