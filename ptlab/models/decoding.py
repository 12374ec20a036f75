"""Decoding a seq2seq model: the most likely target, one token at a time (greedy) or with a beam.

The model gives p(y_t | y_<t, x), one step at a time from its memory of the
source and a cache of the steps so far (the protocol below). Greedy decoding
takes the most likely token at every step, until EOS:

    y_t = argmax_y p(y | y_<t, x)

Beam search keeps the ``beam`` best prefixes by log p(y_≤t | x) = Σ_s log p(y_s | y_<s, x),
extends each by every token and keeps the best ``beam`` of those. A prefix that
ends with EOS is finished; the finished are ranked by GNMT's length-normalized
score (Wu et al., 2016), so long translations are not punished for their length:

    score(Y) = log p(Y | x) / lp(Y),   lp(Y) = ((5 + |Y|) / 6)^α

(|Y| counts the generated tokens with the EOS; α = ``length_penalty``, α = 0 ranks
by log p itself). Beam search with a beam of 1 is greedy decoding.

The seq2seq protocol (:class:`Seq2SeqModel`; :mod:`ptlab.models.seq2seq` and
:mod:`ptlab.models.rnn_seq2seq` follow it): ``encode(src, src_lengths)`` gives
the memory, ``decode_step(memory, tokens, cache, position)`` the next token's
logits and the new cache; every tensor of both is batch-first, so a beam's
hypotheses are reordered with ``index_select(0, idx)`` on every entry.

Rows come back as the generated tokens after BOS, up to and including the first
EOS, then PAD, as long as the batch's longest row. ``max_length`` counts the
generated tokens (the EOS too) and is capped by ``model.max_target_length − 1``:
the data's ``max_target_length`` counts a target's BOS and EOS, so BOS plus the
generated tokens fit the positions the model has (and the lengths it was
trained on). PAD and BOS are never generated: no target holds them.

The model decodes in the mode it is in: call ``model.eval()`` first, or dropout
makes the search random.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

PAD, BOS, EOS = 0, 2, 3
NEVER = (PAD, BOS)  # never generated
SYNC_EVERY = 4  # steps between two checks (host syncs) whether every row has finished


class Seq2SeqModel(Protocol):
    """What decoding asks of a model (see the module's docstring)."""

    max_target_length: int

    def encode(self, src: Tensor, src_lengths: Tensor) -> dict[str, Tensor]: ...

    def decode_step(self, memory: dict[str, Tensor], tokens: Tensor, cache: dict[str, Tensor],
                    position: int) -> tuple[Tensor, dict[str, Tensor]]: ...


def decode(model: Seq2SeqModel, src: Tensor, src_lengths: Tensor, max_length: int, beam: int = 1,
           length_penalty: float = 1.0) -> Tensor:
    """B × L target ids of ``src`` (B × S ids, ``src_lengths`` B): :func:`greedy` at ``beam`` 1, else
    :func:`beam_search`."""
    if beam < 1:
        raise ValueError(f"beam: {beam}; give 1 (greedy) or more hypotheses")
    if beam == 1:
        return greedy(model, src, src_lengths, max_length)
    return beam_search(model, src, src_lengths, max_length, beam, length_penalty)


@torch.no_grad()
def greedy(model: Seq2SeqModel, src: Tensor, src_lengths: Tensor, max_length: int) -> Tensor:
    """y_t = argmax_y p(y | y_<t, x) until EOS or ``max_length`` tokens: B × L ids, PAD after each row's EOS."""
    steps = _steps(model, max_length)
    memory, cache = model.encode(src, src_lengths), {}
    B, never = src.shape[0], torch.tensor(NEVER, device=src.device)  # made once: a copy to the device may sync
    rows = src.new_full((B, steps), PAD)
    tokens = src.new_full((B,), BOS)
    finished = torch.zeros(B, dtype=torch.bool, device=src.device)
    for t in range(steps):
        logits, cache = model.decode_step(memory, tokens, cache, t)
        tokens = _selectable(logits, never).argmax(dim=-1).masked_fill(finished, PAD)  # a finished row writes PAD
        rows[:, t] = tokens
        finished |= tokens == EOS
        if t % SYNC_EVERY == SYNC_EVERY - 1 and bool(finished.all()):
            break
    return _trimmed(rows)


@torch.no_grad()
def beam_search(model: Seq2SeqModel, src: Tensor, src_lengths: Tensor, max_length: int, beam: int,
                length_penalty: float) -> Tensor:
    """The best finished hypothesis of a beam search by log p(Y | x) / lp(Y): B × L ids, PAD after each row's EOS.

    The B × ``beam`` hypotheses run as one batch (the memory repeated ``beam`` times
    per item); log-probabilities add up in float32. Each step, every live
    hypothesis proposes its 2·beam best tokens and the best 2·beam proposals of
    each item are ranked: one ending in EOS among the first ``beam`` is finished
    (kept with its score; ranked below, it would not have been in the beam), the
    best ``beam`` not ending in EOS are the next live ones. An item is done when
    it has ``beam`` finished hypotheses all scoring at least the best live one's
    log p / lp at its current length. With α = 0 that is exact: a live hypothesis
    only loses log-probability as it grows. With α > 0 a longer one could still
    rise (lp grows), so this is the usual heuristic (Hugging Face's
    ``early_stopping=False``), and it is what makes a beam of 1 exactly greedy
    decoding. At ``max_length`` the live hypotheses of the items not done compete
    with the finished ones as they are.
    """
    steps = _steps(model, max_length)
    if beam < 1:
        raise ValueError(f"beam: {beam}; give 1 (greedy) or more hypotheses")
    B, k, device = src.shape[0], beam, src.device
    never = torch.tensor(NEVER, device=device)  # made once: a copy to the device may sync
    memory = {name: t.repeat_interleave(k, dim=0) for name, t in model.encode(src, src_lengths).items()}
    cache: dict[str, Tensor] = {}
    tokens = src.new_full((B * k,), BOS)
    scores = torch.full((B, k), -torch.inf, device=device)  # log p of each live prefix
    scores[:, 0] = 0.0  # at first the k copies of BOS are one hypothesis
    history = src.new_full((B, k, steps), PAD)  # the live prefixes
    best = src.new_full((B, k, steps), PAD)  # the finished hypotheses, best first
    best_scores = torch.full((B, k), -torch.inf, device=device)  # their log p / lp
    done = torch.zeros(B, dtype=torch.bool, device=device)
    rank = torch.arange(2 * k, device=device)
    first_of_item = torch.arange(B, device=device)[:, None] * k  # flat index of each item's hypothesis 0
    for t in range(steps):
        logits, cache = model.decode_step(memory, tokens, cache, t)
        lp = ((5 + t + 1) / 6) ** length_penalty  # every hypothesis of this step has t + 1 tokens
        n = min(2 * k, logits.shape[-1])
        # each hypothesis's n best tokens (a stable sort: ties go to the lower id, as in argmax), ...
        proposed = _selectable(logits, never).sort(dim=-1, descending=True, stable=True).indices[:, :n]  # B·k × n
        log_probs = torch.log_softmax(logits.float(), dim=-1).index_fill(1, never, -torch.inf)
        totals = scores.view(-1, 1) + log_probs.gather(1, proposed)  # log p of each extended prefix
        # ... then each item's 2k best of its k·n; one EOS per hypothesis at most, so ≥ k of them do not end
        totals, order = totals.view(B, k * n).sort(dim=-1, descending=True, stable=True)
        totals, order = totals[:, :2 * k], order[:, :2 * k]  # B × 2k
        origin = order // n  # the live hypothesis each extends
        token = proposed.reshape(B, k * n).gather(1, order)
        ends = token == EOS

        finishing = ends[:, :k] & torch.isfinite(totals[:, :k]) & ~done[:, None]
        finished_scores = torch.where(finishing, totals[:, :k] / lp, -torch.inf)
        finished = history.gather(1, origin[:, :k, None].expand(-1, -1, steps))
        finished[:, :, t] = EOS
        best_scores, pick = torch.cat([best_scores, finished_scores], 1).sort(dim=-1, descending=True, stable=True)
        best_scores, pick = best_scores[:, :k], pick[:, :k]
        best = torch.cat([best, finished], 1).gather(1, pick[:, :, None].expand(-1, -1, steps))

        keep = torch.where(ends, rank + 2 * k, rank).argsort(dim=-1)[:, :k]  # the best k that do not end, in order
        scores, origin = totals.gather(1, keep), origin.gather(1, keep)
        history = history.gather(1, origin[:, :, None].expand(-1, -1, steps))
        history[:, :, t] = token.gather(1, keep)
        tokens = history[:, :, t].reshape(-1)
        cache = {name: c.index_select(0, (first_of_item + origin).view(-1)) for name, c in cache.items()}
        done |= best_scores[:, -1] >= scores[:, 0] / lp
        if t % SYNC_EVERY == SYNC_EVERY - 1 and bool(done.all()):
            break
    live_scores = torch.where(done[:, None], -torch.inf, scores / lp)  # the live have t + 1 tokens, no EOS
    choice = torch.cat([best_scores, live_scores], 1).argmax(dim=-1)  # the first best: a finished one on a tie
    rows = torch.cat([best, history], 1)[torch.arange(B, device=device), choice]
    return _trimmed(rows)


def _steps(model: Seq2SeqModel, max_length: int) -> int:
    """How many tokens to generate at most: ``max_length``, capped by the model's positions after BOS."""
    steps = min(max_length, model.max_target_length - 1)
    if steps < 1:
        raise ValueError(f"max_length: {max_length} with max_target_length {model.max_target_length} leaves no "
                         "token to generate")
    return steps


def _selectable(logits: Tensor, never: Tensor) -> Tensor:
    """The logits in float32, −∞ at the tokens ``never`` generated (PAD, BOS)."""
    return logits.float().index_fill(1, never, -torch.inf)


def _trimmed(rows: Tensor) -> Tensor:
    """``rows`` cut to the longest one (PAD after each row's EOS, and PAD is never generated before it)."""
    length = int((rows != PAD).sum(dim=1).max()) if rows.shape[0] else 0
    return rows[:, :length]
