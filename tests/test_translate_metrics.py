"""The seq2seq objective's pieces without a trained model: metrics against sacrebleu and by hand, the
dictionary baseline, tokenization with <eos>, and pair batches."""

from __future__ import annotations

import json

import pytest
import torch

from ptlab import catalog
from ptlab.data.loaders import Data
from ptlab.data.tokenizers import BOS, PAD
from ptlab.data.translation import EOS, PairTokenizers, pair_data, train_pair_tokenizers
from ptlab.errors import ConfigError
from ptlab.objectives.seq2seq import Decoded
from ptlab.objectives.translation_baselines import dice_dictionary, translate_word_by_word

HYPOTHESES = ["the cat sat on the mat .", "a dog barked at the postman", "it is raining , isn't it ?",
              "seventy-one apples", "Hello world!"]
REFERENCES = ["the cat sat on a mat .", "the dog barked at the mailman", "it's raining, isn't it?",
              "seventy-one apples", "Hallo Welt!"]


def text_metric(name: str):
    return catalog.build_metric(name, data=None)


def test_bleu_and_chrf_equal_sacrebleu_on_a_fixed_corpus() -> None:
    import sacrebleu

    for name, reference in (("bleu", sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score),
                            ("chrf", sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score)):
        metric = text_metric(name)
        metric.update_text(HYPOTHESES[:2], REFERENCES[:2])  # two updates: the corpus statistics add up
        metric.update_text(HYPOTHESES[2:], REFERENCES[2:])
        assert float(metric.compute()) == pytest.approx(reference, abs=1e-3), name
        assert 0 < reference < 100


def test_bleu_is_sacrebleus_13a_tokenization_not_whitespace() -> None:
    import sacrebleu

    hyp, ref = ["it is raining,isn't it?"], ["it is raining , isn't it ?"]  # 13a splits the punctuation off
    metric = text_metric("bleu")
    metric.update_text(hyp, ref)
    assert float(metric.compute()) == pytest.approx(sacrebleu.corpus_bleu(hyp, [ref]).score, abs=1e-3)
    assert float(metric.compute()) > 50


def test_rouge_stands_for_three_metrics_computed_by_hand() -> None:
    from ptlab.objectives.seq2seq import Seq2Seq

    assert Seq2Seq(metrics=["rouge", "exact"]).metrics == ["rouge1", "rouge2", "rougel", "exact"]
    scores = {}
    for name in ("rouge1", "rouge2", "rougel"):
        metric = text_metric(name)
        metric.update_text(["the cat sat"], ["the cat sat down"])
        scores[name] = float(metric.compute())
    # unigrams: 3 of 3 hypothesis, 3 of 4 reference → F1 = 2·1·0.75/1.75; bigrams 2/2 and 2/3 → 0.8; LCS = 3
    assert scores["rouge1"] == pytest.approx(6 / 7, abs=1e-4)
    assert scores["rouge2"] == pytest.approx(0.8, abs=1e-4)
    assert scores["rougel"] == pytest.approx(6 / 7, abs=1e-4)


def test_exact_match_reads_ids_up_to_eos_and_texts() -> None:
    metric = text_metric("exact")
    hypotheses = torch.tensor([[5, 6, EOS, PAD], [5, 7, EOS, PAD], [5, 6, 7, EOS]])
    references = torch.tensor([[5, 6, EOS], [5, 6, EOS], [5, 6, EOS]])  # narrower: padded to compare
    metric.update(Decoded(torch.zeros(3, 3, 8), hypotheses), references)
    assert float(metric.compute()) == pytest.approx(1 / 3)
    metric.update_text(["a b", "c"], ["a b", "c "])
    assert float(metric.compute()) == pytest.approx(2 / 5)


def test_perplexity_of_seq2seq_leaves_padding_out() -> None:
    metric = text_metric("ppl")
    logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens: ppl 4 on every real token
    logits[0, 2] = torch.tensor([100.0, -100, -100, -100])  # the padded position: confidently wrong if counted
    metric.update(Decoded(logits, torch.zeros(1, 1, dtype=torch.long)), torch.tensor([[1, 2, PAD]]))
    assert float(metric.compute()) == pytest.approx(4.0)


def test_dice_dictionary_by_hand() -> None:
    pairs = [("one cat", "un chat"), ("two cats", "deux chats"), ("one dog", "un chien"), ("two dogs", "deux chiens")]
    dictionary = dice_dictionary(pairs)
    # c(one)=2, c(un)=2, c(one, un)=2 → Dice 1; c(one, chat)=1, c(chat)=1 → 2/3
    assert dictionary["one"] == "un" and dictionary["two"] == "deux"
    assert dictionary["cat"] == "chat" and dictionary["dogs"] == "chiens"
    assert translate_word_by_word(dictionary, "one dogs zebra") == "un chiens zebra"  # unseen: copied


PAIRS = {"train": [("one two", "eins zwei"), ("two three", "zwei drei"), ("three", "drei"),
                   ("one three two", "eins drei zwei")],
         "val": [("two one", "zwei eins")], "test": [("three three three", "drei drei drei")]}


def build(splits=PAIRS, **overrides) -> Data:
    options = dict(source_tokenizer="word", target_tokenizer="char", source_vocab_size=100, target_vocab_size=100,
                   shared_vocabulary=False, max_source_length=8, max_target_length=40, batch_size=2,
                   trained_tokenizer=None, target_kind="seq2seq", device=torch.device("cpu"), seed=0)
    return pair_data("test_pairs", splits, **{**options, **overrides})


def test_targets_are_bos_tokens_eos_and_decode_back() -> None:
    data = build()
    tokenizers = PairTokenizers.from_json(data.tokenizer)
    assert tokenizers.source.token_to_id("<eos>") == EOS == tokenizers.target.token_to_id("<eos>")
    src, src_lengths, tgt_in, tgt_out = next(iter(data.test.batches()))
    assert tgt_in[0, 0] == BOS and tgt_out[0, -1] == EOS and torch.equal(tgt_in[0, 1:], tgt_out[0, :-1])
    assert tokenizers.decode(tgt_out.tolist()) == ["drei drei drei"]
    assert src_lengths.tolist() == [3] and src.shape == (1, 3)
    assert json.loads(data.tokenizer).keys() == {"source", "target"}
    rebuilt = build(trained_tokenizer=data.tokenizer, splits={**PAIRS, "train": PAIRS["train"][:1]})
    assert rebuilt.tokenizer == data.tokenizer  # a checkpoint's tokenizers, not new ones


def test_a_batch_is_cut_to_its_longest_pair_and_every_pair_is_served_once() -> None:
    data = build()
    seen = []
    for src, src_lengths, tgt_in, tgt_out in data.train.batches(epoch=1):
        assert src.shape[1] == int(src_lengths.max())
        assert (tgt_out == EOS).sum() == len(src)  # one <eos> per row, none cut off
        seen += src.tolist()
    assert len(seen) == 4


def test_too_long_training_pairs_are_left_out_and_eval_pairs_cut() -> None:
    data = build(max_source_length=2, max_target_length=11)  # "eins drei zwei" is 14 chars + <bos>, <eos>
    assert data.train.num_samples == 3  # "one three two" left out
    src, src_lengths, _, tgt_out = next(iter(data.test.batches()))
    assert src.shape[1] == 2 and tgt_out.shape[1] == 10 and tgt_out[0, -1] == EOS


def test_data_for_another_objective_is_refused() -> None:
    with pytest.raises(ConfigError, match="objective=seq2seq"):
        build(target_kind="classification")


def test_a_shared_vocabulary_is_one_tokenizer_for_both_sides() -> None:
    tokenizers = train_pair_tokenizers(PAIRS["train"], "word", "char", 100, 100, shared=True)
    assert tokenizers.source is tokenizers.target
    assert tokenizers.source.token_to_id("eins") is not None and tokenizers.source.token_to_id("one") is not None


def test_a_long_source_is_cut_without_touching_a_short_target() -> None:
    data = build(max_source_length=2)  # the test source has 3 words, its target fits
    src, src_lengths, _, tgt_out = next(iter(data.test.batches()))
    assert src_lengths.tolist() == [2] and tgt_out.shape[1] == len("drei drei drei") + 1


def test_parallel_text_and_tsv_files_feed_the_task_and_carve_missing_splits(tmp_path) -> None:
    import ptlab

    english = [f"a dog number {i}" for i in range(40)]
    german = [f"ein Hund Nummer {i}" for i in range(40)]
    (tmp_path / "train.en").write_text("\n".join(english) + "\n")
    (tmp_path / "train.de").write_text("\n".join(german) + "\n")
    (tmp_path / "val.en").write_text("a dog\n")
    (tmp_path / "val.de").write_text("ein Hund\n")
    run = ptlab.build(ptlab.compose(["task=translate", "data=parallel_text", f"data.root={tmp_path}",
                                     "data.source=en", "data.target=de", "data.source_vocab_size=300",
                                     "data.target_vocab_size=300", "data.test_fraction=0.25"]))
    sizes = {split: getattr(run.data, split).num_samples for split in ("train", "val", "test")}
    assert sizes == {"train": 30, "val": 1, "test": 10}  # val from its files, test carved out of train
    tokenizers = PairTokenizers.from_json(run.data.tokenizer)
    assert tokenizers.decode(next(iter(run.data.val.batches()))[3].tolist()) == ["ein Hund"]  # bpe: exact text
    tsv = tmp_path / "deu.txt"
    tsv.write_text("".join(f"{e}\t{g}\tCC-BY 2.0 (France) Attribution: tatoeba.org\n" for e, g in zip(english, german)))
    run = ptlab.build(ptlab.compose(["task=translate", "data=tsv_pairs", f"data.train_path={tsv}",
                                     "data.val_fraction=0.1", "data.test_fraction=0.1"]))
    assert run.data.train.num_samples == 32 and run.data.test.sources[0] in english
