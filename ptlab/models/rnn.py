"""Recurrent networks: a state h_t carried along the sequence, one token at a time.

An embedding turns token ids into vectors x_t; the recurrent layer updates its
state from each one. The LSTM of the book keeps a cell c_t behind gates:

    i, f, o = σ(W_{i,f,o} [h_{t−1}, x_t] + b),   g = tanh(W_g [h_{t−1}, x_t] + b_g)
    c_t = f ⊙ c_{t−1} + i ⊙ g,                    h_t = o ⊙ tanh(c_t)

(a GRU merges c and h with two gates). Layers stack: the h_t of one layer is
the x_t of the next.

``RNNLanguageModel`` predicts the next token from every h_t; its output layer
reuses the embedding matrix (weight tying), after a linear map from the hidden
size down to the embedding size. ``RNNClassifier`` reads each text to its real
end (``pack_padded_sequence`` skips the padding), optionally in both
directions, and classifies the final states. ``rnn`` builds the one the data
asks for.
"""

from __future__ import annotations

from typing import Literal, Optional

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from ptlab.config import PositiveInt, Probability
from ptlab.errors import ConfigError
from ptlab.models import serves

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNLanguageModel(nn.Module):
    """p(x_{t+1} | x_≤t) = softmax(E · P h_t): embedding E → LSTM/GRU → projection P → Eᵀ (tied)."""

    def __init__(self, vocab_size: int, block_size: int, cell: str, embedding_dim: int, hidden_size: int,
                 num_layers: int, dropout: float, tie_weights: bool) -> None:
        super().__init__()
        self.block_size = block_size  # the context it was trained on; generation keeps to it
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = CELLS[cell](embedding_dim, hidden_size, num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        out_dim = embedding_dim if tie_weights else hidden_size
        self.project = nn.Linear(hidden_size, out_dim) if out_dim != hidden_size else nn.Identity()
        self.head = nn.Linear(out_dim, vocab_size)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def forward(self, ids: Tensor) -> Tensor:
        h, _ = self.rnn(self.drop(self.embedding(ids)))  # B × T × hidden: h_t for every t, state from zero
        return self.head(self.project(self.drop(h)))  # B × T × vocab logits of the next token


class RNNClassifier(nn.Module):
    """Embedding → (bidirectional) LSTM/GRU over the real tokens → final states → linear head."""

    def __init__(self, vocab_size: int, num_classes: int, cell: str, embedding_dim: int, hidden_size: int,
                 num_layers: int, dropout: float, bidirectional: bool) -> None:
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = CELLS[cell](embedding_dim, hidden_size, num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.directions * hidden_size, num_classes)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        packed = pack_padded_sequence(self.drop(self.embedding(ids)), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n); GRU: h_n
        last = h_n[-self.directions:]  # the top layer's final state, per direction: dirs × B × hidden
        return self.head(self.drop(last.transpose(0, 1).flatten(1)))  # B × classes logits


@serves("language_model", "text_classification")
def rnn(
    vocab_size: int, block_size: int, num_classes: Optional[int] = None, cell: Literal["lstm", "gru"] = "lstm",
    embedding_dim: PositiveInt = 64, hidden_size: PositiveInt = 256, num_layers: PositiveInt = 2,
    dropout: Probability = 0.0, bidirectional: bool = False, tie_weights: bool = True,
) -> nn.Module:
    """LSTM or GRU: a language model, or a text classifier when the data has classes."""
    if num_classes is None:
        if bidirectional:
            raise ConfigError("model.bidirectional: a language model must not read the tokens it predicts; "
                              "bidirectional=true is for classification data (data=imdb, ag_news, csv_text)")
        return RNNLanguageModel(vocab_size, block_size, cell, embedding_dim, hidden_size, num_layers, dropout,
                                tie_weights)
    return RNNClassifier(vocab_size, num_classes, cell, embedding_dim, hidden_size, num_layers, dropout,
                         bidirectional)
