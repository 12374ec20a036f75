"""Sampling from trained generative checkpoints: images from a GAN, text from a language model."""

from __future__ import annotations

from pathlib import Path

import torch

from ptlab import catalog
from ptlab.engine.checkpoint import judged_weights, load_checkpoint
from ptlab.engine.device import resolve_device
from ptlab.errors import ConfigError


def generate_images(ckpt: str | Path, n: int = 64, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """``n`` images in [-1, 1] from a GAN checkpoint; the same seed gives the same images."""
    payload = load_checkpoint(ckpt)
    config = payload["config"]
    model = catalog.MODELS.build(config["model"], "model", **payload.get("data_info", {}))
    if not hasattr(model, "sample"):
        raise ConfigError(f"ckpt: {ckpt} is a {config['task']} checkpoint; image generation needs a GAN (task=gan)")
    target = resolve_device(device)
    model.load_state_dict(judged_weights(payload))
    model.to(target).eval()
    return model.sample(n, torch.Generator(target).manual_seed(seed))


def generate_text(ckpt: str | Path, prompt: str = "", max_new_tokens: int = 200, temperature: float = 1.0,
                  top_k: int | None = None, seed: int = 0, device: str = "cpu") -> tuple[str, list[str]]:
    """(``prompt`` and the text a language-model checkpoint writes after it, the parts of the prompt it read as
    ``<unk>``). The prompt begins a document; the same seed gives the same text."""
    from ptlab.data.tokenizers import BOS, UNK, load_tokenizer
    from ptlab.models.sampling import sample

    payload = load_checkpoint(ckpt)
    config, info = payload["config"], payload.get("data_info", {})
    if payload.get("tokenizer") is None or "num_classes" in info or "target_vocab_size" in info:
        raise ConfigError(f"ckpt: {ckpt} is a {config['task']} checkpoint on data={config['data'].get('name')}; text "
                          "generation needs a language model (task=rnn or task=transformer on unlabelled text)")
    tokenizer = load_tokenizer(payload["tokenizer"])
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    unknown = [prompt[a:b] for i, (a, b) in zip(prompt_ids.ids, prompt_ids.offsets) if i == UNK]
    target = resolve_device(device)
    model = catalog.MODELS.build(config["model"], "model", **info)
    model.load_state_dict(judged_weights(payload))
    model.to(target).eval()
    context = torch.tensor([BOS, *prompt_ids.ids], device=target)
    ids = sample(model, context, max_new_tokens, temperature, top_k, torch.Generator(target).manual_seed(seed))
    return tokenizer.decode(ids.tolist()), unknown
