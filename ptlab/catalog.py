"""Every registry and the built-in entries, by name → ``module:attribute``; the tasks, read from their configs.

Built-ins are registered lazily so that ``ptlab list`` does not import torch;
the module is imported when an entry is first built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptlab.errors import ConfigError
from ptlab.registry import Registry

MODELS = Registry("model", frozenset({"in_features", "num_classes", "in_channels", "image_size", "vocab_size",
                                      "block_size", "num_users", "num_items", "source_vocab_size",
                                      "target_vocab_size", "max_source_length", "max_target_length"}))
DATASETS = Registry("dataset", frozenset({"target_kind", "device", "seed", "trained_tokenizer"}))
OPTIMIZERS = Registry("optimizer", frozenset({"params"}))
SCHEDULERS = Registry("scheduler", frozenset({"optimizer", "total_steps", "steps_per_epoch"}))
OBJECTIVES = Registry("objective", frozenset({"data_kind"}))
METRICS = Registry("metric", frozenset({"num_classes", "data", "device"}))
LOGGERS = Registry("logger", frozenset({"run_dir"}))

REGISTRIES = {
    "models": MODELS,
    "datasets": DATASETS,
    "optimizers": OPTIMIZERS,
    "schedulers": SCHEDULERS,
    "objectives": OBJECTIVES,
    "metrics": METRICS,
    "loggers": LOGGERS,
}

_BUILTINS = [
    (MODELS, {
        "linear_regression": "ptlab.models.linear:LinearRegression",
        "logistic_regression": "ptlab.models.linear:LogisticRegression",
        "simple_cnn": "ptlab.models.cnn:SimpleCNN",
        "resnet18": "ptlab.models.cnn:resnet18",
        "rnn": "ptlab.models.rnn:rnn",
        "transformer": "ptlab.models.transformer:transformer",
        "mlp_gan": "ptlab.models.gan:MLPGAN",
        "dcgan": "ptlab.models.gan:DCGAN",
        "mf": "ptlab.models.mf:MatrixFactorization",
        "neumf": "ptlab.models.neumf:NeuMF",
        "transformer_seq2seq": "ptlab.models.seq2seq:transformer_seq2seq",
        "rnn_seq2seq": "ptlab.models.rnn_seq2seq:rnn_seq2seq",
    }),
    (DATASETS, {
        "diabetes": "ptlab.data.tabular:diabetes",
        "breast_cancer": "ptlab.data.tabular:breast_cancer",
        "csv": "ptlab.data.tabular:csv_table",
        "digits": "ptlab.data.vision:digits",
        "mnist": "ptlab.data.vision:mnist",
        "fashion_mnist": "ptlab.data.vision:fashion_mnist",
        "cifar10": "ptlab.data.vision:cifar10",
        "imagefolder": "ptlab.data.vision:image_folder",
        "python_docs": "ptlab.data.text:python_docs",
        "textfile": "ptlab.data.text:textfile",
        "wikitext2": "ptlab.data.text:wikitext2",
        "imdb": "ptlab.data.text:imdb",
        "ag_news": "ptlab.data.text:ag_news",
        "csv_text": "ptlab.data.text:csv_text",
        "planted": "ptlab.data.interactions:planted",
        "movielens": "ptlab.data.interactions:movielens",
        "interactions_csv": "ptlab.data.interactions:interactions_csv",
        "number_words": "ptlab.data.translation:number_words",
        "parallel_text": "ptlab.data.translation:parallel_text",
        "tsv_pairs": "ptlab.data.translation:tsv_pairs",
        "pairs_csv": "ptlab.data.translation:pairs_csv",
    }),
    (OPTIMIZERS, {
        "sgd": "ptlab.optim:sgd",
        "adam": "ptlab.optim:adam",
        "adamw": "ptlab.optim:adamw",
    }),
    (SCHEDULERS, {
        "constant": "ptlab.optim:constant",
        "cosine": "ptlab.optim:cosine",
        "step": "ptlab.optim:step",
    }),
    (OBJECTIVES, {
        "regression": "ptlab.objectives.regression:Regression",
        "classification": "ptlab.objectives.classification:Classification",
        "text": "ptlab.objectives.text:Text",
        "adversarial": "ptlab.objectives.adversarial:Adversarial",
        "ranking": "ptlab.objectives.ranking:Ranking",
        "rating": "ptlab.objectives.rating:Rating",
        "seq2seq": "ptlab.objectives.seq2seq:Seq2Seq",
    }),
    (METRICS, {
        "acc": "ptlab.objectives.metrics:accuracy",
        "f1": "ptlab.objectives.metrics:f1",
        "mse": "ptlab.objectives.metrics:mse",
        "rmse": "ptlab.objectives.metrics:rmse",
        "mae": "ptlab.objectives.metrics:mae",
        "r2": "ptlab.objectives.metrics:r2",
        "ppl": "ptlab.objectives.text:Perplexity",
        "fid": "ptlab.objectives.fid:fid",
        "hr": "ptlab.objectives.ranking_metrics:hit_rate",
        "ndcg": "ptlab.objectives.ranking_metrics:ndcg",
        "recall": "ptlab.objectives.ranking_metrics:recall",
        "bleu": "ptlab.objectives.translation_metrics:bleu",
        "chrf": "ptlab.objectives.translation_metrics:chrf",
        "exact": "ptlab.objectives.translation_metrics:exact",
        "rouge1": "ptlab.objectives.translation_metrics:rouge1",
        "rouge2": "ptlab.objectives.translation_metrics:rouge2",
        "rougel": "ptlab.objectives.translation_metrics:rougel",
    }),
    (LOGGERS, {
        "tensorboard": "ptlab.logging.tensorboard:TensorBoardLogger",
        "csv": "ptlab.logging.csv_logger:CSVLogger",
        "mlflow": "ptlab.logging.mlflow_logger:MLflowLogger",
        "wandb": "ptlab.logging.wandb_logger:WandbLogger",
    }),
]

for _registry, _entries in _BUILTINS:
    for _name, _target in _entries.items():
        _registry.register_lazy(_name, _target)


def build_metric(name: str, **injected: Any) -> Any:
    """The metric ``name`` names in ``objective.metrics``: a registered name, or ``NAME@K`` for the top-K metric
    registered as ``NAME`` (``ndcg@10`` is ``ndcg`` with k=10)."""
    base, at, k = name.partition("@")
    node = {"name": base, "k": int(k)} if at and k.isdigit() and int(k) > 0 else {"name": name}
    return METRICS.build(node, "objective.metrics", **injected)


def tasks(config_dir: Path) -> list[tuple[str, str, str, str]]:
    """(name, description, default model, default data) of each ``task/*.yaml`` under ``config_dir``.

    Read as plain YAML, without Hydra: the description is the file's leading
    comment up to its first full stop, and model and data are the task's
    ``override /model:`` and ``override /data:`` choices (else train.yaml's).
    """
    root = _defaults_choices(_read_yaml(config_dir / "train.yaml")[1])
    rows = []
    for path in sorted((config_dir / "task").glob("*.yaml")):
        text, node = _read_yaml(path)
        choices = root | _defaults_choices(node)
        rows.append((path.stem, _leading_comment(text), choices.get("model", "-"), choices.get("data", "-")))
    return rows


def _read_yaml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text of a config file and its top-level mapping (empty if it holds none)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it ({err}); restore the file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]}); fix the file") from None
    return text, node if isinstance(node, dict) else {}


def _defaults_choices(node: dict[str, Any]) -> dict[str, str]:
    """``group → option`` from a defaults list: ``- override /model: simple_cnn`` gives ``model → simple_cnn``."""
    choices = {}
    for item in node.get("defaults") or []:
        if isinstance(item, dict):
            for key, option in item.items():
                group = str(key).removeprefix("override").strip().lstrip("/").partition("@")[0]
                choices[group] = "-" if option is None else str(option)
    return choices


def _leading_comment(text: str) -> str:
    """The comment lines that open a file, up to the first one that ends a sentence (Hydra's ``@package`` skipped)."""
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped or lines:
                break
            continue
        body = stripped.lstrip("#").strip()
        if body.startswith("@package"):
            continue
        if not body:
            if lines:
                break
            continue
        lines.append(body)
        if body.endswith("."):
            break
    return " ".join(lines)
