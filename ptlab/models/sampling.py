"""Sampling text from a language model, one token at a time.

Given the tokens so far, the model gives logits z for the next one; the next
token is drawn from

    p(k) = softmax(z / temperature)_k,   restricted to the top_k largest z (if set)

and appended, and the model is asked again. Lower temperatures sharpen the
distribution (temperature 0: always the most likely token); top_k cuts off the
long tail of unlikely tokens.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


@torch.no_grad()
def sample(model: nn.Module, context: Tensor, max_new_tokens: int, temperature: float = 1.0,
           top_k: Optional[int] = None, generator: Optional[torch.Generator] = None) -> Tensor:
    """``context`` (1-D token ids) followed by ``max_new_tokens`` sampled ones.

    The model sees at most its ``block_size`` latest tokens, the context it was
    trained on. The same model, context and generator state give the same tokens.
    """
    ids = context.unsqueeze(0)
    for _ in range(max_new_tokens):
        logits = model(ids[:, -model.block_size:])[0, -1].float()
        if temperature == 0:
            next_id = logits.argmax().view(1)
        else:
            logits = logits / temperature
            if top_k is not None and top_k < len(logits):
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            next_id = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
        ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    return ids[0]
