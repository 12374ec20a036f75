"""A text classifier's class scores for new texts, the texts read exactly as training read them.

The checkpoint is all it needs: its tokenizer, the model its config builds from its ``data_info``, and
the class names its ``data_state`` keeps. Each text goes through the function training used
(:func:`ptlab.data.text.padded_ids`: ``<bos>`` and at most ``data.max_length − 1`` tokens); the texts
are read ``data.batch_size`` at a time, each batch padded to its longest text (the LSTM packs the
padding away and the Transformer masks it, so it changes no score).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ptlab.errors import ConfigError


def classify(payload: dict[str, Any], texts: list[str], device: str = "cpu") -> Tensor:
    """The logits [len(texts), K], on the CPU, of the text classifier checkpoint ``payload`` (as
    :func:`ptlab.engine.checkpoint.load_checkpoint` returns it)."""
    from ptlab import catalog
    from ptlab.data.text import padded_ids
    from ptlab.data.tokenizers import load_tokenizer
    from ptlab.engine.checkpoint import judged_weights
    from ptlab.engine.device import resolve_device

    config, info = payload["config"], payload["data_info"]
    target = resolve_device(device)
    model = catalog.MODELS.build(config["model"], "model", **info)
    try:
        model.load_state_dict(judged_weights(payload))
    except RuntimeError as err:
        raise ConfigError(f"ckpt: weights do not fit the model the saved config builds "
                          f"({str(err).splitlines()[0]})") from None
    model.to(target).eval()
    tokenizer = load_tokenizer(payload["tokenizer"])
    batch_size = int(config["data"].get("batch_size", 32))
    logits = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            ids, lengths = padded_ids(tokenizer, texts[start:start + batch_size], info["block_size"])  # = max_length
            logits.append(model(torch.from_numpy(ids).to(target), torch.from_numpy(lengths)).float().cpu())
    return torch.cat(logits)


def class_names(ckpt: str | Path, payload: dict[str, Any]) -> list[str]:
    """The training labels in id order: kept in the checkpoint, or for one written before checkpoints kept them,
    learned again from the training data its config names."""
    from ptlab.api import rebuild

    kept = payload.get("data_state", {}).get("classes")
    return list(kept) if kept is not None else list(rebuild(ckpt, device="cpu")[1].data.info["classes"])
