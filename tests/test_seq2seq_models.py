"""The Transformer encoder–decoder is its formulas (padding masked, causal, incremental = teacher-forced), and
decoding is what it says: greedy = a beam of 1, a wider beam scores no worse, EOS and the length cap kept."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from ptlab.errors import ConfigError
from ptlab.models.decoding import beam_search, decode, greedy
from ptlab.models.seq2seq import BOS, EOS, PAD, UNK, TransformerSeq2Seq, transformer_seq2seq

torch.set_num_threads(1)

SRC_VOCAB, TGT_VOCAB = 17, 13
SEEDS = (0, 1, 3)  # random models whose greedy rows end at various lengths
TOY_SEEDS = (0, 1, 2)  # toy models whose best targets leave greedy's path, some after a few tokens


def random_model(seed: int = 0, max_target_length: int = 16) -> TransformerSeq2Seq:
    """A randomly initialized model, weights N(0, 0.3²), leaning to EOS (the final LayerNorm's bias along EOS's
    embedding) so that its rows end at various lengths."""
    torch.manual_seed(seed)
    model = transformer_seq2seq(SRC_VOCAB, TGT_VOCAB, 12, max_target_length, n_head=2, n_embd=32, dropout=0.0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
        eos = model.tok_emb.weight[EOS]
        model.ln_f.bias.copy_(0.5 * eos / eos.dot(eos))
    return model.eval()


@functools.cache
def hesitant_model() -> TransformerSeq2Seq:
    """Trained for 14 steps to write each source token's parity (4 or 5) and EOS, over target tokens UNK, EOS, 4, 5:
    sure enough to prefer real answers to an EOS at once, unsure enough that the beam's best is often not greedy's."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 4, (32,), generator=g)
    src, tgt = torch.randint(4, SRC_VOCAB, (32, 3), generator=g), torch.full((32, 5), PAD)
    for i, n in enumerate(lengths.tolist()):
        src[i, n:] = PAD
        tgt[i, :n + 2] = torch.cat([torch.tensor([BOS]), 4 + src[i, :n] % 2, torch.tensor([EOS])])
    torch.manual_seed(0)
    model = transformer_seq2seq(SRC_VOCAB, 6, 12, 5, n_head=2, n_embd=32, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(14):
        loss = F.cross_entropy(model(src, lengths, tgt[:, :-1]).transpose(1, 2), tgt[:, 1:], ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


class ToyModel(torch.nn.Module):
    """A seq2seq model by the protocol alone, over target tokens UNK, EOS, 4, 5: the next token's logits a fixed
    random function of the source and the whole prefix (a hash carried in the cache), peaked enough that the best
    target often leaves greedy's path deep in the tree."""

    max_target_length = 6

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.table = 3.0 * torch.randn(997, 6, generator=torch.Generator().manual_seed(seed))

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        visible = torch.arange(src.shape[1]) < src_lengths[:, None]
        return {"hash": (src * visible).sum(1) % 997}

    def decode_step(self, memory: dict[str, torch.Tensor], tokens: torch.Tensor, cache: dict[str, torch.Tensor],
                    position: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prefix = ((cache["hash"] if cache else memory["hash"]) * 31 + tokens + 1) % 997
        return self.table[prefix], {"hash": prefix}


# the models the decoding tests run, each with the seed of its batch of sources
MODELS = {**{f"random{seed}": (functools.partial(random_model, seed), seed) for seed in SEEDS},
          "hesitant": (hesitant_model, 0),
          **{f"toy{seed}": (functools.partial(ToyModel, seed), 0) for seed in TOY_SEEDS}}


def padded_batch(lengths: list[int], width: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, SRC_VOCAB, (len(lengths), width), generator=g)
    for row, n in enumerate(lengths):
        src[row, n:] = PAD
    return src, torch.tensor(lengths)


def stepwise_logits(model: torch.nn.Module, src: torch.Tensor, lengths: torch.Tensor,
                    rows: torch.Tensor) -> torch.Tensor:
    """B × L × vocab: the model's logits before each token of ``rows``, fed to it one step at a time from BOS."""
    memory, cache, tokens, logits = model.encode(src, lengths), {}, torch.full_like(rows[:, 0], BOS), []
    for t in range(rows.shape[1]):
        step_logits, cache = model.decode_step(memory, tokens, cache, t)
        logits.append(step_logits)
        tokens = rows[:, t]
    return torch.stack(logits, 1)


def score(model: torch.nn.Module, src: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor,
          alpha: float) -> torch.Tensor:
    """log p(Y | x) / ((5 + |Y|) / 6)^α of each decoded row."""
    log_p = torch.log_softmax(stepwise_logits(model, src, lengths, rows), -1).gather(2, rows[..., None])[..., 0]
    real = rows != PAD
    return (log_p * real).sum(1) / ((5 + real.sum(1)) / 6) ** alpha


def test_padding_gets_no_cross_attention_and_changes_no_logit() -> None:
    model = random_model()
    src, lengths = padded_batch([9, 4, 1])
    tgt_in = torch.randint(4, TGT_VOCAB, (3, 6))
    memory = model.encode(src, lengths)
    cross = model.blocks[0].cross
    x = torch.randn(3, 6, 32)
    weights = cross.weights(x, memory["cross_k0"], memory["visible"])  # B × heads × T × S
    for row, n in enumerate(lengths.tolist()):
        assert torch.all(weights[row, :, :, n:] == 0) and torch.all(weights[row, :, :, :n] > 0)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 2, 6))
    # the fused kernel is the formula: softmax(Q Kᵀ / √d + M) V, heads concatenated and mixed
    heads = weights @ memory["cross_v0"]
    assert torch.allclose(cross(x, memory["cross_k0"], memory["cross_v0"], memory["visible"]),
                          cross.out(heads.transpose(1, 2).reshape(3, 6, 32)), atol=1e-5)

    other = src.clone()
    for row, n in enumerate(lengths.tolist()):
        other[row, n:] = torch.arange(4, 4 + 9 - n) % SRC_VOCAB  # whatever sits in the padding must not matter
    wider = torch.cat([other, torch.full((3, 3), 5)], 1)  # nor how much of it there is
    logits = model(src, lengths, tgt_in)
    assert torch.allclose(logits, model(other, lengths, tgt_in), atol=1e-5)
    assert torch.allclose(logits, model(wider, lengths, tgt_in), atol=1e-5)


def test_the_decoder_is_causal_and_its_output_is_the_target_embedding() -> None:
    model = random_model()
    assert model.head.weight is model.tok_emb.weight
    src, lengths = padded_batch([9, 5])
    tgt_in = torch.randint(4, TGT_VOCAB, (2, 10))
    changed = tgt_in.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % TGT_VOCAB  # change the future
    logits, logits_changed = model(src, lengths, tgt_in), model(src, lengths, changed)
    assert logits.shape == (2, 10, TGT_VOCAB)
    assert torch.allclose(logits[:, :6], logits_changed[:, :6], atol=1e-6)
    assert not torch.allclose(logits[:, 6:], logits_changed[:, 6:])


def test_incremental_decoding_equals_teacher_forcing_and_keeps_everything_batch_first() -> None:
    model = random_model()
    src, lengths = padded_batch([9, 2, 6])
    tgt_in = torch.cat([torch.full((3, 1), BOS), torch.randint(4, TGT_VOCAB, (3, 11))], 1)
    memory, cache, steps = model.encode(src, lengths), {}, []
    for t in range(tgt_in.shape[1]):
        step_logits, cache = model.decode_step(memory, tgt_in[:, t], cache, t)
        assert all(v.shape[0] == 3 for v in (*memory.values(), *cache.values()))
        steps.append(step_logits)
    assert torch.allclose(torch.stack(steps, 1), model(src, lengths, tgt_in), atol=1e-5)
    with pytest.raises(ValueError, match="position 16 is beyond max_target_length 16"):
        model.decode_step(memory, tgt_in[:, 0], cache, 16)


@pytest.mark.parametrize("name", MODELS)
def test_greedy_is_a_beam_of_one(name: str) -> None:
    build, seed = MODELS[name]
    model = build()
    src, lengths = padded_batch([9, 3, 1, 6, 7, 2], seed=seed)
    rows = greedy(model, src, lengths, 12)
    for alpha in (0.0, 1.0):
        assert torch.equal(beam_search(model, src, lengths, 12, beam=1, length_penalty=alpha), rows)
    assert torch.equal(decode(model, src, lengths, 12), rows)
    # each token is the argmax after the ones before it (PAD and BOS are never generated)
    logits = stepwise_logits(model, src, lengths, rows)
    logits[..., [PAD, BOS]] = -math.inf
    real = rows != PAD
    assert torch.equal(logits.argmax(-1)[real], rows[real])


def test_greedy_rows_end_at_various_lengths() -> None:
    """The models the decoding tests use do write EOS at different steps, so finishing is exercised."""
    lengths = set()
    for seed in SEEDS:
        rows = greedy(random_model(seed), *padded_batch([9, 3, 1, 6, 7, 2], seed=seed), 12)
        lengths |= set((rows != PAD).sum(1).tolist())
    assert len(lengths) >= 3


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_a_wider_beam_never_scores_below_greedy(alpha: float) -> None:
    improved = 0
    for build, seed in MODELS.values():
        model = build()
        src, lengths = padded_batch([9, 3, 1, 6, 7, 2], seed=seed)
        greedy_scores = score(model, src, lengths, greedy(model, src, lengths, 12), alpha)
        beam_scores = score(model, src, lengths, beam_search(model, src, lengths, 12, 4, alpha), alpha)
        assert torch.all(beam_scores >= greedy_scores - 1e-5)
        improved += int((beam_scores > greedy_scores + 1e-4).sum())
    assert improved > 0


@pytest.mark.parametrize("name", ["hesitant", *(f"toy{seed}" for seed in TOY_SEEDS)])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_beam_wide_enough_for_every_prefix_finds_the_best_target(name: str, alpha: float) -> None:
    """Target tokens UNK, EOS, 4, 5 and at most n of them (n = 4 or 5, the cap): (3ⁿ − 1) / 2 targets end in EOS,
    3ⁿ stop at the cap. A beam wider than the former holds every prefix and never has ``beam`` finished to stop
    early, so it must find the best of them all, by brute force."""
    model = MODELS[name][0]()
    n = model.max_target_length - 1
    beam = 2 ** math.ceil(math.log2((3 ** n - 1) // 2 + 1))
    src, lengths = padded_batch([9, 3, 1, 6, 7, 2])
    rows = beam_search(model, src, lengths, 10, beam, alpha)  # capped at n tokens
    assert rows.shape[1] <= n
    targets = [[*prefix, EOS] for m in range(n) for prefix in itertools.product((UNK, 4, 5), repeat=m)]
    targets += [list(prefix) for prefix in itertools.product((UNK, 4, 5), repeat=n)]
    every = torch.tensor([t + [PAD] * (n - len(t)) for t in targets])
    for i in range(len(lengths)):
        scores = score(model, src[i:i + 1].expand(len(every), -1), lengths[i:i + 1].expand(len(every)), every, alpha)
        assert F.pad(rows[i], (0, n - rows.shape[1])).tolist() == every[scores.argmax()].tolist()
    assert len(set(map(tuple, rows.tolist()))) > 1  # not the same answer for every source


def test_beam_search_decodes_each_item_as_if_alone() -> None:
    model = hesitant_model()
    src, lengths = padded_batch([9, 3, 1, 6, 7, 2])
    rows = beam_search(model, src, lengths, 12, 3, 1.0)
    for i in range(len(lengths)):
        alone = beam_search(model, src[i:i + 1, :lengths[i]], lengths[i:i + 1], 12, 3, 1.0)[0]
        assert rows[i, :len(alone)].tolist() == alone.tolist() and torch.all(rows[i, len(alone):] == PAD)


@pytest.mark.parametrize("beam", [1, 4])
def test_rows_end_with_eos_or_at_max_length_and_keep_to_the_positions(beam: int) -> None:
    src, lengths = padded_batch([9, 3, 1, 6, 7, 2])
    for seed, max_target_length, max_length, cap in [(0, 6, 100, 5), (2, 16, 4, 4), (0, 16, 100, 15)]:
        model = random_model(seed, max_target_length)  # decode_step refuses a position beyond the table
        rows = decode(model, src, lengths, max_length, beam=beam)
        assert rows.shape[1] <= cap
        for row in rows.tolist():
            n = sum(token != PAD for token in row)
            assert all(token not in (PAD, BOS) for token in row[:n]) and all(token == PAD for token in row[n:])
            assert EOS not in row[:n - 1] and (row[n - 1] == EOS or n == cap)
    with pytest.raises(ValueError, match="leaves no token to generate"):
        decode(random_model(0, 1), src, lengths, 10, beam=beam)


def test_it_learns_to_reverse_digits_and_decoding_writes_the_targets_back() -> None:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 6, (16,), generator=g)
    src, tgt = torch.full((16, 5), PAD), torch.full((16, 7), PAD)
    for i, n in enumerate(lengths.tolist()):
        digits = torch.randint(4, 14, (n,), generator=g)
        src[i, :n] = digits
        tgt[i, :n + 2] = torch.cat([torch.tensor([BOS]), digits.flip(0), torch.tensor([EOS])])
    torch.manual_seed(0)
    model = transformer_seq2seq(14, 14, 5, 7, dropout=0.0)  # the default size
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(120):
        loss = F.cross_entropy(model(src, lengths, tgt[:, :-1]).transpose(1, 2), tgt[:, 1:], ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    for beam in (1, 4):
        assert torch.equal(decode(model, src, lengths, 10, beam=beam), tgt[:, 1:])  # EOS, then PAD


def test_the_default_size_and_a_bad_head_count() -> None:
    model = transformer_seq2seq(40, 40, 32, 32)
    assert sum(p.numel() for p in model.parameters()) == 944_640
    with pytest.raises(ConfigError, match="model.n_embd: 10 is not divisible by model.n_head=4"):
        transformer_seq2seq(40, 40, 32, 32, n_embd=10)
