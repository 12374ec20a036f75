"""Every registry and the built-in entries, by name → ``module:attribute``.

Built-ins are registered lazily so that ``ptlab list`` does not import torch;
the module is imported when an entry is first built.
"""

from ptlab.registry import Registry

MODELS = Registry("model", frozenset({"in_features", "num_classes", "in_channels", "image_size", "vocab_size",
                                      "block_size"}))
DATASETS = Registry("dataset", frozenset({"target_kind", "device", "seed", "trained_tokenizer"}))
OPTIMIZERS = Registry("optimizer", frozenset({"params"}))
SCHEDULERS = Registry("scheduler", frozenset({"optimizer", "total_steps", "steps_per_epoch"}))
OBJECTIVES = Registry("objective", frozenset({"data_kind"}))
METRICS = Registry("metric", frozenset({"num_classes", "data", "device"}))

REGISTRIES = {
    "models": MODELS,
    "datasets": DATASETS,
    "optimizers": OPTIMIZERS,
    "schedulers": SCHEDULERS,
    "objectives": OBJECTIVES,
    "metrics": METRICS,
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
    }),
    (METRICS, {
        "acc": "ptlab.objectives.metrics:accuracy",
        "f1": "ptlab.objectives.metrics:f1",
        "mse": "ptlab.objectives.metrics:mse",
        "mae": "ptlab.objectives.metrics:mae",
        "ppl": "ptlab.objectives.text:Perplexity",
        "fid": "ptlab.objectives.fid:fid",
    }),
]

for _registry, _entries in _BUILTINS:
    for _name, _target in _entries.items():
        _registry.register_lazy(_name, _target)
