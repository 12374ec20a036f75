"""The Transformer: token and position embeddings, then blocks of self-attention and an MLP.

Self-attention lets every position read every other one. For each head, with
queries Q, keys K and values V (each T × d, linear maps of the input):

    Attention(Q, K, V) = softmax(Q Kᵀ / √d + M) V

where the mask M is 0 where a query may look and −∞ where it may not: the
future in a language model (M[i, j] = −∞ for j > i, "causal"), padding in a
classifier. Heads run side by side and their outputs are concatenated and
mixed by one more linear map. A block is pre-LayerNorm, as in GPT-2:

    x ← x + Attention(LayerNorm(x))
    x ← x + MLP(LayerNorm(x)),   MLP(x) = W₂ GELU(W₁ x)

``GPT`` (a decoder: causal, predicts the next token at every position, its
output layer shares the token embedding's weights) models language;
``TransformerClassifier`` (an encoder: sees the whole text, ignores padding,
pools the positions into one vector) classifies texts. ``transformer`` builds
the one the data asks for.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptlab.config import PositiveInt, Probability
from ptlab.errors import ConfigError
from ptlab.models import serves


class SelfAttention(nn.Module):
    """Multi-head self-attention: softmax(Q Kᵀ / √d + M) V per head, heads concatenated and mixed."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, causal: bool) -> None:
        super().__init__()
        self.n_head, self.causal, self.dropout = n_head, causal, dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd)  # Q, K and V of every head, in one matrix product
        self.out = nn.Linear(n_embd, n_embd)  # mixes the concatenated heads

    def forward(self, x: Tensor, visible: Optional[Tensor] = None) -> Tensor:
        """``x``: B × T × C. ``visible``: B × T, True at real tokens (keys a query may attend to)."""
        B, T, C = x.shape
        d = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, d).transpose(1, 2) for t in (q, k, v))  # B × heads × T × d
        # softmax(q kᵀ / √d + M) v in one fused kernel; M comes from `is_causal` or the boolean mask.
        mask = None if visible is None else visible[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """x ← x + Attention(LN(x));  x ← x + MLP(LN(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, causal: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = SelfAttention(n_embd, n_head, dropout, causal)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, visible: Optional[Tensor] = None) -> Tensor:
        x = x + self.drop(self.attn(self.ln_1(x), visible))
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Token + learned position embeddings, ``n_layer`` blocks, a final LayerNorm: B × T ids → B × T × C."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, dropout: float,
                 causal: bool) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ConfigError(f"model.n_embd: {n_embd} is not divisible by model.n_head={n_head}; "
                              "each head gets n_embd / n_head dimensions")
        self.block_size = block_size
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, causal) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.apply(_init_weights)
        for block in self.blocks:  # GPT-2: scale the residual branches' last layers by 1/√(2·n_layer)
            for layer in (block.attn.out, block.mlp[2]):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, ids: Tensor, visible: Optional[Tensor] = None) -> Tensor:
        T = ids.shape[1]
        if T > self.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size {self.block_size}")
        x = self.drop(self.tok_emb(ids) + self.pos_emb(torch.arange(T, device=ids.device)))
        for block in self.blocks:
            x = block(x, visible)
        return self.ln_f(x)


class GPT(nn.Module):
    """Decoder-only language model: p(x_{t+1} | x_≤t) = softmax(Encoder(x)_t · Eᵀ), E the token embedding."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
                 dropout: float) -> None:
        super().__init__()
        self.block_size = block_size
        self.transformer = Encoder(vocab_size, block_size, n_layer, n_head, n_embd, dropout, causal=True)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.head.weight = self.transformer.tok_emb.weight  # weight tying: one matrix reads and writes tokens

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(self.transformer(ids))  # B × T × vocab logits of the next token


class TransformerClassifier(nn.Module):
    """Encoder over the whole text (padding masked out), pooled into one vector, then a linear head."""

    def __init__(self, vocab_size: int, block_size: int, num_classes: int, n_layer: int, n_head: int, n_embd: int,
                 dropout: float, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.transformer = Encoder(vocab_size, block_size, n_layer, n_head, n_embd, dropout, causal=False)
        self.head = nn.Linear(n_embd, num_classes)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        visible = torch.arange(ids.shape[1], device=ids.device) < lengths.to(ids.device)[:, None]  # B × T
        h = self.transformer(ids, visible)
        if self.pooling == "cls":
            pooled = h[:, 0]  # the <bos> every text starts with plays BERT's [CLS]
        else:  # mean over the real tokens
            pooled = (h * visible.unsqueeze(-1)).sum(1) / visible.sum(1, keepdim=True)
        return self.head(pooled)  # B × classes logits


@serves("language_model", "text_classification")
def transformer(
    vocab_size: int, block_size: int, num_classes: Optional[int] = None, n_layer: PositiveInt = 4,
    n_head: PositiveInt = 4, n_embd: PositiveInt = 128, dropout: Probability = 0.0,
    pooling: Literal["mean", "cls"] = "mean",
) -> nn.Module:
    """Transformer: a GPT language model, or an encoder classifier when the data has classes."""
    if num_classes is None:
        return GPT(vocab_size, block_size, n_layer, n_head, n_embd, dropout)
    return TransformerClassifier(vocab_size, block_size, num_classes, n_layer, n_head, n_embd, dropout, pooling)


def _init_weights(module: nn.Module) -> None:
    """GPT-2's initialization: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
