"""A few validation pairs decoded after each validation, as a Markdown table in TensorBoard (``val/samples``):
source, reference and the model's hypothesis, so a run shows what its BLEU means."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer
    from ptlab.objectives.seq2seq import Seq2Seq


class TranslationSamples(Callback):
    def __init__(self, objective: Seq2Seq, n: int) -> None:
        self.objective, self.n = objective, n

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        from ptlab.data.translation import PairTokenizers

        tokenizers = PairTokenizers.from_json(trainer.run.data.tokenizer)
        src, src_lengths, _, tgt_out = next(iter(trainer.run.data.val.batches()))
        src, src_lengths, tgt_out = src[:self.n], src_lengths[:self.n], tgt_out[:self.n]
        with trainer.averaged_weights() as model, torch.no_grad():  # the weights validation judged
            was_training = model.training
            model.eval()
            hypotheses = self.objective.decode(model, src, src_lengths)
            model.train(was_training)
        rows = zip(tokenizers.source.decode_batch(src.tolist()), tokenizers.decode(tgt_out.tolist()),
                   tokenizers.decode(hypotheses.tolist()))
        table = ["| source | reference | hypothesis |", "|---|---|---|"]
        table += [f"| {_cell(s)} | {_cell(r)} | {_cell(h)} |" for s, r, h in rows]
        trainer.log_text("val/samples", "\n".join(table))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
