"""What ``ptlab export`` traces: the module, the names and meaning of its inputs and output, and sample inputs.

The inputs are what the model is called with in training — the first tensors of a batch,
``model(*batch[:-1])`` — named by the objective's target kind; a GAN's part is its
generator, called with noise. The samples are the first test batch (seeded noise for a
GAN) and one row of it, shorter when the sequence dimension is dynamic, so that the check
runs the program at a second batch size (and length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ptlab.errors import ConfigError

if TYPE_CHECKING:
    from ptlab.api import Run

SEQUENCE = "ids"  # the input whose dimension 1 is a text's length

FEATURES = ("the model's input as ptlab's data pipeline gives it, after its preprocessing (standardized features; "
            "images in [0, 1] standardized by the training split's channel mean and std), which is not in the program")
CLASS_LOGITS = "one logit per class, in the order of data_info.classes if given (one logit: binary, p = σ(logit))"
# target kind → ({input name: meaning}, (output name, meaning))
CALLS: dict[str, tuple[dict[str, str], tuple[str, str]]] = {
    "classification": ({"x": FEATURES}, ("logits", CLASS_LOGITS)),
    "regression": ({"x": FEATURES}, ("prediction", "the target, standardized when data_info has target_mean and "
                                                   "target_std: y = prediction × target_std + target_mean")),
    "language_model": ({"ids": "token ids (tokenizer.json, add_special_tokens=False), a document starting with <bos>"},
                       ("logits", "logits of the next token at every position")),
    "text_classification": ({"ids": "token ids (tokenizer.json), <bos> first, rows padded with <pad>",
                             "lengths": "the number of real tokens of each row, <bos> included"},
                            ("logits", CLASS_LOGITS)),
    "rating": ({"users": "user indices (0-based, as the training data numbered them)", "items": "item indices"},
               ("rating", "the predicted rating")),
    "ranking": ({"users": "user indices (0-based, as the training data numbered them)"},
                ("scores", "a score for every item index; higher ranks first")),
    "generation": ({"z": "noise z ~ N(0, I), one row of latent_dim values per image"},
                   ("images", "images in [-1, 1], batch × channels × height × width")),
}


@dataclass
class Signature:
    """The module to export and how it is called."""

    module: nn.Module
    part: str  # "model", or "generator" for a GAN
    kind: str  # the objective's target kind
    inputs: tuple[str, ...]
    output: str
    meanings: dict[str, str]  # input and output names → what they hold
    sample: tuple[Tensor, ...]
    description: str  # of the sample, for export.json and messages


def signature(run: Run) -> Signature:
    """The module of ``run`` (its weights loaded, in eval mode) that export traces, with a sample batch."""
    kind = run.objective.target_kind
    if kind not in CALLS:
        raise ConfigError(f"ckpt: ptlab cannot export a model trained for {kind} targets; export supports "
                          f"{', '.join(CALLS)}")
    inputs, (output, meaning) = CALLS[kind]
    meanings = {**inputs, output: meaning}
    model = run.model.eval()
    batch = first_test_batch(run)
    if kind == "generation":
        z = model.noise(len(batch[0]), torch.Generator().manual_seed(0))
        return Signature(model.generator.eval(), "generator", kind, tuple(inputs), output, meanings, (z,),
                         f"{len(z)} noise vectors z ~ N(0, I) (torch.Generator seed 0)")
    refuse_unexportable(model)
    sample = tuple(batch[: len(inputs)])
    return Signature(model, "model", kind, tuple(inputs), output, meanings, sample,
                     f"the first test batch ({len(sample[0])} rows)")


def first_test_batch(run: Run) -> tuple[Tensor, ...]:
    try:
        return tuple(next(iter(run.data.test.batches())))
    except StopIteration:
        raise ConfigError("data: the checkpoint's test split is empty; export runs the program on its first batch "
                          "(give data.test_path or a larger data.test_fraction)") from None


def shorter_sample(sig: Signature, dynamic_sequence: bool) -> tuple[Tensor, ...]:
    """The first row of the sample; with a dynamic sequence dimension also shorter: a text cut to its own length,
    a language model's window to its first half."""
    row = tuple(x[:1] for x in sig.sample)
    if not dynamic_sequence:
        return row
    if sig.kind == "text_classification":
        ids, lengths = row
        return ids[:, : int(lengths[0])], lengths
    (ids,) = row
    return (ids[:, : max(1, ids.shape[1] // 2)],)


def refuse_unexportable(model: nn.Module) -> None:
    """A model ``torch.export`` cannot trace, named with the reason and what to export instead."""
    from ptlab.models.rnn import RNNClassifier

    if isinstance(model, RNNClassifier):
        raise ConfigError("ckpt: an RNN text classifier cannot be exported: pack_padded_sequence, which reads each "
                          "text to its real end, has shapes that depend on the lengths, which torch.export cannot "
                          "trace; train task=transformer on the same data to export a text classifier")
