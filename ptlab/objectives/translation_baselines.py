"""Two translations that need no training, scored on the run's own test split beside the model.

- Copy: the source is its own translation. Where source and target share words (names,
  numbers, a summary's sentences lifted from the article) it is not zero; a model that
  does not beat it has learnt little.
- Dictionary: word by word, each source word replaced by the target word it is most
  associated with in the training pairs, by the Dice coefficient of their co-occurrence

      Dice(s, t) = 2·c(s, t) / (c(s) + c(t)),

  c(s, t) the number of training pairs holding s in the source and t in the target,
  c(s) and c(t) the pairs holding each. Words are split on whitespace; a word never seen
  in training is copied. It gets word choice right and order and agreement wrong — the
  gap to it is what the model learnt about structure.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ptlab.data.loaders import Data


def dice_dictionary(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each training source word → its target word of highest Dice coefficient (ties: the more frequent word, then
    the first in sorted order, so the dictionary is the same on every run)."""
    source_count, target_count, both = Counter(), Counter(), Counter()
    for source, target in pairs:
        s_words, t_words = set(source.split()), set(target.split())
        source_count.update(s_words)
        target_count.update(t_words)
        both.update((s, t) for s in s_words for t in t_words)
    best: dict[str, tuple[float, int, str]] = {}
    for (s, t), count in both.items():
        key = (2 * count / (source_count[s] + target_count[t]), target_count[t], t)
        if s not in best or key[:2] > best[s][:2] or (key[:2] == best[s][:2] and t < best[s][2]):
            best[s] = key
    return {s: t for s, (_, _, t) in best.items()}


def translate_word_by_word(dictionary: dict[str, str], source: str) -> str:
    return " ".join(dictionary.get(word, word) for word in source.split())


def scores(data: Data, metric_names: Sequence[str]) -> dict[str, float]:
    """``test/METRIC_copy`` and ``test/METRIC_dictionary`` for each text metric, against the references as the
    model's metrics read them (the target ids of the test split, decoded); {} when the splits are not held whole
    (trainer.limit_*_batches)."""
    from ptlab import catalog
    from ptlab.data.translation import PairTokenizers

    train, test = data.train, data.test
    if not hasattr(train, "sources") or not hasattr(test, "sources"):
        return {}
    tokenizers = PairTokenizers.from_json(data.tokenizer)
    training_targets = tokenizers.decode(train.tgt[:, 1:].tolist())
    dictionary = dice_dictionary(list(zip(train.sources, training_targets)))
    rows = test.order().tolist()  # this rank's test pairs, in their stored order
    references = tokenizers.decode(test.tgt[rows, 1:].tolist())
    sources = [test.sources[i] for i in rows]
    hypotheses = {"copy": sources, "dictionary": [translate_word_by_word(dictionary, s) for s in sources]}
    out = {}
    for name, texts in hypotheses.items():
        for metric_name in metric_names:
            metric = catalog.build_metric(metric_name, data=data)
            metric.update_text(texts, references)
            out[f"test/{metric_name}_{name}"] = float(metric.compute())
    return out
