"""The RNN encoder–decoder with attention: read the source both ways, write the target one token at a time.

The encoder reads the source x₁ … x_S with a bidirectional LSTM/GRU (to each
sequence's real end: ``pack_padded_sequence`` skips the padding) and projects
the two directions into one annotation per position:

    hⱼ = W_h [→hⱼ; ←hⱼ]

The decoder starts from the encoder's final states, one layer at a time,
s₀ = tanh(W_s [→h_S; ←h₁]) (an LSTM's cell likewise, without the tanh:
c₀ = W_k [→c_S; ←c₁]). At each step i it scores every source position,
turns the scores into weights and reads the context:

    Bahdanau (additive):        eᵢⱼ = vᵀ tanh(W s_{i−1} + U hⱼ)
    Luong (general):            eᵢⱼ = sᵢᵀ W hⱼ
    αᵢⱼ = softmax_j(eᵢⱼ),  eᵢⱼ = −∞ where j is padding (so αᵢⱼ = 0 there)
    cᵢ = Σⱼ αᵢⱼ hⱼ

Bahdanau et al. (2015) attend from the previous state and feed the context
into the recurrence; the output reads the state, the context and the last
token (their "deep output", linear, without the maxout):

    sᵢ = RNN(s_{i−1}, [E y_{i−1}; cᵢ]),      logits_i = W_o [sᵢ; cᵢ; E y_{i−1}]

Luong et al. (2015) attend from the current state and combine it with the
context into an attentional vector h̃ᵢ; we keep their "input feeding", which
gives h̃_{i−1} to the next step (h̃₀ = 0):

    sᵢ = RNN(s_{i−1}, [E y_{i−1}; h̃_{i−1}]),   h̃ᵢ = tanh(W_c [cᵢ; sᵢ]),   logits_i = W_o h̃ᵢ

With several layers, s is the top layer's state. Both decoders are recurrent
in a way a single RNN call over the target cannot express (the context or h̃
enters the input), so training with teacher forcing runs the same step as
decoding, over t = 0 … T−1; that is why incremental decoding equals it.

Token ids: PAD = 0, UNK = 1, BOS = 2, EOS = 3; the decoder's first input is BOS.

The seq2seq protocol (shared with the Transformer seq2seq and the decoding
module): ``forward(src, src_lengths, tgt_in)`` gives B × T × vocab logits;
``encode(src, src_lengths)`` gives the memory and ``decode_step(memory,
tokens, cache, position)`` the next token's logits and the new cache, every
tensor of both batch-first, so beam search reorders them all with
``index_select(0, idx)``; ``max_target_length`` caps decoding.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ptlab.config import PositiveInt, Probability
from ptlab.models import serves
from ptlab.models.rnn import CELLS

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class Encoder(nn.Module):
    """Embedding → bidirectional LSTM/GRU over the real tokens → hⱼ = W_h [→hⱼ; ←hⱼ]; and s₀ from the ends."""

    def __init__(self, vocab_size: int, cell: str, embedding_dim: int, hidden_size: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.rnn = CELLS[cell](embedding_dim, hidden_size, num_layers, batch_first=True, bidirectional=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.annotate = nn.Linear(2 * hidden_size, hidden_size)  # W_h
        self.init_h = nn.Linear(2 * hidden_size, hidden_size)  # W_s
        self.init_c = nn.Linear(2 * hidden_size, hidden_size) if cell == "lstm" else None  # W_k

    def forward(self, src: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        B, S = src.shape
        visible = torch.arange(S, device=src.device) < src_lengths.to(src.device)[:, None]  # B × S
        packed = pack_padded_sequence(self.drop(self.embedding(src)), src_lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, state = self.rnn(packed)
        both, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # B × S × 2H, zeros at padding
        h = self.annotate(both) * visible.unsqueeze(-1)  # hⱼ, B × S × H (0 at padding)
        memory = {"outputs": h, "visible": visible}
        finals = state if isinstance(state, tuple) else (state,)  # LSTM: (h_n, c_n); GRU: h_n
        for name, final, project in zip(("h0", "c0"), finals, (self.init_h, self.init_c)):
            # layers·2 × B × H → B × layers × 2H: [forward final; backward final] of each layer
            final = final.view(self.num_layers, 2, B, self.hidden_size).permute(2, 0, 1, 3).flatten(2)
            memory[name] = torch.tanh(project(final)) if name == "h0" else project(final)  # B × layers × H
        return memory


class Attention(nn.Module):
    """αᵢⱼ = softmax_j(eᵢⱼ) over the real positions, cᵢ = Σⱼ αᵢⱼ hⱼ; eᵢⱼ additive or general."""

    def __init__(self, kind: str, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        self.key = nn.Linear(hidden_size, hidden_size, bias=kind == "bahdanau")  # U (Bahdanau) or W (Luong)
        if kind == "bahdanau":
            self.query = nn.Linear(hidden_size, hidden_size, bias=False)  # W
            self.v = nn.Linear(hidden_size, 1, bias=False)  # v

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, visible: Tensor) -> tuple[Tensor, Tensor]:
        """``query`` B × H (s_{i−1} or sᵢ); ``keys`` B × S × H (U hⱼ or W hⱼ, from ``self.key`` once per
        source); ``values`` B × S × H (hⱼ); ``visible`` B × S. Returns cᵢ (B × H) and αᵢ (B × S)."""
        if self.kind == "bahdanau":
            scores = self.v(torch.tanh(self.query(query).unsqueeze(1) + keys)).squeeze(-1)  # vᵀ tanh(W s + U h)
        else:
            scores = torch.einsum("bh,bsh->bs", query, keys)  # sᵀ (W h)
        alpha = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)  # exactly 0 at padding
        return torch.einsum("bs,bsh->bh", alpha, values), alpha


class RNNSeq2Seq(nn.Module):
    """Bidirectional encoder, attention, and a decoder that writes one token per step (see the module's formulas)."""

    def __init__(self, source_vocab_size: int, target_vocab_size: int, max_source_length: int,
                 max_target_length: int, cell: str, embedding_dim: int, hidden_size: int, num_layers: int,
                 attention: str, dropout: float) -> None:
        super().__init__()
        self.max_source_length = max_source_length  # no limit an RNN needs; kept alongside the target's
        self.max_target_length = max_target_length  # decoding stops here, as for the Transformer
        self.cell, self.attention_kind = cell, attention
        self.encoder = Encoder(source_vocab_size, cell, embedding_dim, hidden_size, num_layers, dropout)
        self.embedding = nn.Embedding(target_vocab_size, embedding_dim, padding_idx=PAD)  # E
        # the input beside E y_{i−1}: the context cᵢ (Bahdanau) or the attentional vector h̃_{i−1} (Luong)
        self.rnn = CELLS[cell](embedding_dim + hidden_size, hidden_size, num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.attend = Attention(attention, hidden_size)
        self.drop = nn.Dropout(dropout)
        if attention == "luong":
            self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)  # W_c
            self.head = nn.Linear(hidden_size, target_vocab_size)  # W_o h̃ᵢ
        else:
            self.head = nn.Linear(2 * hidden_size + embedding_dim, target_vocab_size)  # W_o [sᵢ; cᵢ; E y_{i−1}]

    def encode(self, src: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        """The memory, all batch-first: ``outputs`` hⱼ and ``keys`` (U hⱼ or W hⱼ), B × S × H; ``visible``
        B × S (True at real tokens); ``h0`` (and an LSTM's ``c0``) B × layers × H."""
        memory = self.encoder(src, src_lengths)
        memory["keys"] = self.attend.key(memory["outputs"])  # once per source, not once per step
        return memory

    def decode_step(self, memory: dict[str, Tensor], tokens: Tensor, cache: dict[str, Tensor],
                    position: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Feed ``tokens`` (B ids; BOS at position 0, where ``cache`` is {}) and return the next token's
        logits (B × vocab) and the new cache: ``h`` (and ``c``) B × layers × H, Luong's ``feed`` h̃ᵢ B × H.
        An RNN carries all it needs in its state, so ``position`` is not read."""
        logits, cache, _ = self._step(memory, tokens, cache)
        return logits, cache

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: B × T × vocab logits of the token after each of ``tgt_in`` (BOS y₁ … y_{T−1})."""
        return self._teacher_forced(src, src_lengths, tgt_in)[0]

    def attention_weights(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """αᵢⱼ under teacher forcing: B × T × S, each row sums to 1 over the source's real tokens."""
        return self._teacher_forced(src, src_lengths, tgt_in)[1]

    def _teacher_forced(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        memory, cache = self.encode(src, src_lengths), {}
        logits, alphas = [], []
        for t in range(tgt_in.shape[1]):  # the context (or h̃) enters the next input: one step at a time
            step_logits, cache, alpha = self._step(memory, tgt_in[:, t], cache)
            logits.append(step_logits)
            alphas.append(alpha)
        return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)

    def _step(self, memory: dict[str, Tensor], tokens: Tensor,
              cache: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        h = cache["h"] if cache else memory["h0"]  # B × layers × H: s_{i−1} of every layer
        c = (cache["c"] if cache else memory["c0"]) if self.cell == "lstm" else None
        y = self.drop(self.embedding(tokens))  # E y_{i−1}, B × embedding_dim
        if self.attention_kind == "bahdanau":
            context, alpha = self._attend(memory, h[:, -1])  # from s_{i−1}, the top layer's previous state
            extra = context
        else:
            extra = cache["feed"] if cache else y.new_zeros(y.shape[0], h.shape[-1])  # h̃_{i−1}, h̃₀ = 0
        state = h.transpose(0, 1).contiguous()  # the layers × B × H torch's RNNs want
        if c is not None:
            state = (state, c.transpose(0, 1).contiguous())
        out, state = self.rnn(torch.cat([y, extra], dim=-1).unsqueeze(1), state)
        s = out[:, 0]  # sᵢ, the top layer, B × H
        new_h, new_c = state if isinstance(state, tuple) else (state, None)
        new_cache = {"h": new_h.transpose(0, 1)}  # back to batch-first
        if new_c is not None:
            new_cache["c"] = new_c.transpose(0, 1)
        if self.attention_kind == "bahdanau":
            logits = self.head(self.drop(torch.cat([s, context, y], dim=-1)))
        else:
            context, alpha = self._attend(memory, s)  # from sᵢ, the current state
            feed = torch.tanh(self.combine(torch.cat([context, s], dim=-1)))  # h̃ᵢ
            new_cache["feed"] = feed
            logits = self.head(self.drop(feed))
        return logits, new_cache, alpha

    def _attend(self, memory: dict[str, Tensor], query: Tensor) -> tuple[Tensor, Tensor]:
        return self.attend(query, memory["keys"], memory["outputs"], memory["visible"])


@serves("seq2seq")
def rnn_seq2seq(
    source_vocab_size: int, target_vocab_size: int, max_source_length: int, max_target_length: int,
    cell: Literal["gru", "lstm"] = "gru", embedding_dim: PositiveInt = 128, hidden_size: PositiveInt = 256,
    num_layers: PositiveInt = 1, attention: Literal["bahdanau", "luong"] = "bahdanau", dropout: Probability = 0.1,
) -> nn.Module:
    """RNN encoder–decoder with Bahdanau (additive) or Luong (general) attention, for translation."""
    return RNNSeq2Seq(source_vocab_size, target_vocab_size, max_source_length, max_target_length, cell,
                      embedding_dim, hidden_size, num_layers, attention, dropout)
