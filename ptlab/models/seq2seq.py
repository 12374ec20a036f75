"""The Transformer encoder–decoder (Vaswani et al., 2017): read the source whole, write the target one token at a time.

The encoder is :class:`ptlab.models.transformer.Encoder` over the source ids,
not causal, its keys masked at padding, so every real position reads every
other real one and nothing reads the padding. The decoder's blocks are the
encoder's with one more sublayer between the two, cross-attention, where the
target reads the source; pre-LayerNorm, as everywhere in ptlab:

    x ← x + SelfAttention_causal(LN(x))
    x ← x + CrossAttention(LN(x), m)
    x ← x + MLP(LN(x))

with m the encoder's output. Cross-attention takes its queries from the
decoder and its keys and values from the encoder, per head:

    CrossAttention(x, m) = softmax(Q Kᵀ / √d + M) V,   Q = x W_Q,  K = m W_K,  V = m W_V

where M[i, j] = −∞ when source position j is padding (0 otherwise), so the
padding gets weight exactly 0. The decoder's input is token + learned position
embeddings of BOS y₁ … y_{T−1}; a final LayerNorm, then the target embedding E
again as the output layer (tied):

    p(y_{t+1} | y_≤t, x) = softmax(Decoder(y_≤t, Encoder(x))_t · Eᵀ)

Token ids: PAD = 0, UNK = 1, BOS = 2, EOS = 3; the decoder's first input is BOS.

The seq2seq protocol (shared with :mod:`ptlab.models.rnn_seq2seq` and used by
:mod:`ptlab.models.decoding`): ``forward(src, src_lengths, tgt_in)`` gives B × T ×
vocab logits under teacher forcing; ``encode(src, src_lengths)`` gives the memory,
here each decoder layer's cross-attention keys and values computed once per source,
and ``decode_step(memory, tokens, cache, position)`` the next token's logits and
the new cache, here each layer's self-attention keys and values of the steps so
far (a KV cache). Every tensor of both is batch-first, so beam search reorders them
all with ``index_select(0, idx)``; ``max_target_length`` caps decoding.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptlab.config import PositiveInt, Probability
from ptlab.models import serves
from ptlab.models.transformer import Encoder, SelfAttention, _init_weights

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class CachedSelfAttention(SelfAttention):
    """Causal self-attention that can also run one position at a time over the keys and values of the past."""

    def step(self, x: Tensor, past: Optional[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        """``x``: B × 1 × C, the newest position; ``past``: its predecessors' (K, V), each B × heads × t × d, or
        None at the first position. Returns the output (B × 1 × C) and the (K, V) of all t + 1 positions."""
        B, _, C = x.shape
        d = C // self.n_head
        q, k, v = (t.view(B, 1, self.n_head, d).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        # the newest query may look at every key so far: causality needs no mask when the future is not there yet
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, 1, C)), k, v


class CrossAttention(nn.Module):
    """softmax(Q Kᵀ / √d + M) V per head: Q from the decoder, K and V from the encoder, M = −∞ at source padding."""

    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.query = nn.Linear(n_embd, n_embd)  # W_Q of every head
        self.key_value = nn.Linear(n_embd, 2 * n_embd)  # W_K and W_V of every head, in one matrix product
        self.out = nn.Linear(n_embd, n_embd)  # mixes the concatenated heads

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """K and V of the encoder's output ``memory`` (B × S × C), each B × heads × S × d: once per source."""
        B, S, C = memory.shape
        k, v = self.key_value(memory).split(C, dim=2)
        return tuple(t.view(B, S, self.n_head, C // self.n_head).transpose(1, 2) for t in (k, v))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, visible: Tensor) -> Tensor:
        """``x``: B × T × C decoder states; ``k``, ``v`` from :meth:`keys_values`; ``visible``: B × S, True at real
        source tokens. Returns B × T × C."""
        B, T, C = x.shape
        q = self._queries(x)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, C))

    def weights(self, x: Tensor, k: Tensor, visible: Tensor) -> Tensor:
        """The attention weights softmax(Q Kᵀ / √d + M), B × heads × T × S (each row sums to 1 over the source's
        real tokens): what :meth:`forward` averages V with, written out, for inspection."""
        q = self._queries(x)
        M = torch.zeros(visible.shape, dtype=q.dtype, device=q.device).masked_fill(~visible, -math.inf)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) + M[:, None, None, :], dim=-1)

    def _queries(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        return self.query(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # B × heads × T × d


class DecoderBlock(nn.Module):
    """x ← x + SelfAttn_causal(LN(x));  x ← x + CrossAttn(LN(x), memory);  x ← x + MLP(LN(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CachedSelfAttention(n_embd, n_head, dropout, causal=True)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.cross = CrossAttention(n_embd, n_head, dropout)
        self.ln_3 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, k: Tensor, v: Tensor, visible: Tensor) -> Tensor:
        """All target positions at once (teacher forcing): ``x`` B × T × C."""
        x = x + self.drop(self.attn(self.ln_1(x)))
        return self._cross_and_mlp(x, k, v, visible)

    def step(self, x: Tensor, k: Tensor, v: Tensor, visible: Tensor,
             past: Optional[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        """The newest position only (``x`` B × 1 × C), given the self-attention (K, V) of the ones before it;
        returns its output and the (K, V) of all positions so far."""
        y, self_k, self_v = self.attn.step(self.ln_1(x), past)
        return self._cross_and_mlp(x + self.drop(y), k, v, visible), self_k, self_v

    def _cross_and_mlp(self, x: Tensor, k: Tensor, v: Tensor, visible: Tensor) -> Tensor:
        x = x + self.drop(self.cross(self.ln_2(x), k, v, visible))
        return x + self.mlp(self.ln_3(x))


class TransformerSeq2Seq(nn.Module):
    """Encoder over the source, decoder blocks over the target reading it, output tied to the target embedding."""

    def __init__(self, source_vocab_size: int, target_vocab_size: int, max_source_length: int,
                 max_target_length: int, encoder_layers: int, decoder_layers: int, n_head: int, n_embd: int,
                 dropout: float) -> None:
        super().__init__()
        self.max_source_length = max_source_length  # the encoder's positions
        self.max_target_length = max_target_length  # the decoder's positions; decoding stops here
        self.encoder = Encoder(source_vocab_size, max_source_length, encoder_layers, n_head, n_embd, dropout,
                               causal=False)  # checks n_embd % n_head
        self.tok_emb = nn.Embedding(target_vocab_size, n_embd)  # E
        self.pos_emb = nn.Embedding(max_target_length, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(DecoderBlock(n_embd, n_head, dropout) for _ in range(decoder_layers))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, target_vocab_size, bias=False)
        for module in (self.tok_emb, self.pos_emb, self.blocks):
            module.apply(_init_weights)
        for block in self.blocks:  # GPT-2's residual scaling, 1/√(number of residual branches): three per block
            for layer in (block.attn.out, block.cross.out, block.mlp[2]):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(3 * decoder_layers))
        self.head.weight = self.tok_emb.weight  # weight tying: one matrix reads and writes target tokens

    def encode(self, src: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        """The memory, all batch-first: ``visible`` B × S (True at real source tokens) and, for each decoder layer
        i, the cross-attention keys ``cross_k{i}`` and values ``cross_v{i}``, B × heads × S × d. Every source has
        at least one real token (the data makes an empty one ``<unk>``): a row of padding alone has nothing to read."""
        visible = torch.arange(src.shape[1], device=src.device) < src_lengths.to(src.device)[:, None]
        m = self.encoder(src, visible)  # B × S × C; padded positions' rows are never read (their keys are masked)
        memory = {"visible": visible}
        for i, block in enumerate(self.blocks):
            memory[f"cross_k{i}"], memory[f"cross_v{i}"] = block.cross.keys_values(m)
        return memory

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: B × T × vocab logits of the token after each of ``tgt_in`` (BOS y₁ … y_{T−1})."""
        T = tgt_in.shape[1]
        if T > self.max_target_length:
            raise ValueError(f"target of {T} tokens is longer than max_target_length {self.max_target_length}")
        memory = self.encode(src, src_lengths)
        x = self.drop(self.tok_emb(tgt_in) + self.pos_emb(torch.arange(T, device=tgt_in.device)))
        for i, block in enumerate(self.blocks):
            x = block(x, memory[f"cross_k{i}"], memory[f"cross_v{i}"], memory["visible"])
        return self.head(self.ln_f(x))

    def decode_step(self, memory: dict[str, Tensor], tokens: Tensor, cache: dict[str, Tensor],
                    position: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Feed ``tokens`` (B ids, the target's token at ``position``; BOS at 0, where ``cache`` is {}) and return
        the next token's logits (B × vocab) and the new cache: each layer's self-attention keys ``self_k{i}`` and
        values ``self_v{i}`` of positions 0 … ``position``, B × heads × (position + 1) × d."""
        if position >= self.max_target_length:
            raise ValueError(f"position {position} is beyond max_target_length {self.max_target_length}")
        x = self.drop(self.tok_emb(tokens) + self.pos_emb.weight[position]).unsqueeze(1)  # B × 1 × C
        new_cache = {}
        for i, block in enumerate(self.blocks):
            past = (cache[f"self_k{i}"], cache[f"self_v{i}"]) if cache else None
            x, new_cache[f"self_k{i}"], new_cache[f"self_v{i}"] = block.step(
                x, memory[f"cross_k{i}"], memory[f"cross_v{i}"], memory["visible"], past)
        return self.head(self.ln_f(x[:, 0])), new_cache


@serves("seq2seq")
def transformer_seq2seq(source_vocab_size: int, target_vocab_size: int, max_source_length: int, max_target_length: int,
                        encoder_layers: PositiveInt = 2, decoder_layers: PositiveInt = 2, n_head: PositiveInt = 4,
                        n_embd: PositiveInt = 128, dropout: Probability = 0.1) -> nn.Module:
    """Transformer encoder–decoder (pre-LayerNorm) with cross-attention, for translation and summarization."""
    return TransformerSeq2Seq(source_vocab_size, target_vocab_size, max_source_length, max_target_length,
                              encoder_layers, decoder_layers, n_head, n_embd, dropout)
