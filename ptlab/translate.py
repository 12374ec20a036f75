"""Translations of new texts by a seq2seq checkpoint (task=translate), read exactly as training read its sources.

The checkpoint is all it needs: its source/target tokenizers, the model its config builds from its
``data_info``, and the weights validation judged (:func:`ptlab.engine.checkpoint.judged_weights`).
Each text is encoded by the source tokenizer (at most ``data.max_source_length`` tokens) and decoded
greedily or with a beam; a text the tokenizer cannot read — characters or words it never saw in
training, which it would read as ``<unk>`` — is refused with the unknown parts named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from ptlab.errors import ConfigError


def translate(ckpt: str | Path, texts: Sequence[str], beam: int = 1, length_penalty: float = 0.6,
              max_length: Optional[int] = None, device: str = "cpu") -> list[str]:
    """One translation per text of ``texts``, in order."""
    from ptlab import catalog
    from ptlab.data.tokenizers import UNK
    from ptlab.data.translation import PairTokenizers, source_ids
    from ptlab.engine.checkpoint import judged_weights, load_checkpoint
    from ptlab.engine.device import resolve_device
    from ptlab.models.decoding import decode

    payload = load_checkpoint(ckpt)
    config, info = payload["config"], payload.get("data_info", {})
    if "target_vocab_size" not in info or payload.get("tokenizer") is None:
        raise ConfigError(f"ckpt: {ckpt} is a {config.get('task')} checkpoint; ptlab translate needs one of "
                          "task=translate (a seq2seq model)")
    if not texts or not any(t.strip() for t in texts):
        raise ConfigError("text: nothing to translate; give text=\"...\" or input=FILE with one text a line")
    tokenizers = PairTokenizers.from_json(payload["tokenizer"])
    for number, text in enumerate(texts, 1):
        encoded = tokenizers.source.encode(text, add_special_tokens=False)
        unknown = [text[a:b] for i, (a, b) in zip(encoded.ids, encoded.offsets) if i == UNK]
        if unknown:
            where = f"line {number}" if len(texts) > 1 else "text"
            raise ConfigError(f"{where}: {', '.join(map(repr, dict.fromkeys(unknown)))} never occurred in the "
                              "training sources, so the model cannot read it; rephrase without it")
    target = resolve_device(device)
    model = catalog.MODELS.build(config["model"], "model", **info)
    model.load_state_dict(judged_weights(payload))
    model.to(target).eval()
    batch_size = int(config["data"].get("batch_size", 32))
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            ids, lengths = source_ids(tokenizers, texts[start:start + batch_size], info["max_source_length"])
            hypotheses = decode(model, torch.from_numpy(ids).to(target), torch.from_numpy(lengths),
                                max_length or model.max_target_length, beam=beam, length_penalty=length_penalty)
            out += tokenizers.decode(hypotheses.tolist())
    return out
