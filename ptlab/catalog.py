"""Every registry and the built-in entries, by name → ``module:attribute``.

Built-ins are registered lazily so that ``ptlab list`` does not import torch;
the module is imported when an entry is first built.
"""

from ptlab.registry import Registry

MODELS = Registry("model", frozenset({"in_features", "num_classes", "in_channels", "image_size"}))
DATASETS = Registry("dataset", frozenset({"target_kind", "device", "seed"}))
OPTIMIZERS = Registry("optimizer", frozenset({"params"}))
SCHEDULERS = Registry("scheduler", frozenset({"optimizer", "total_steps", "steps_per_epoch"}))
OBJECTIVES = Registry("objective", frozenset())
METRICS = Registry("metric", frozenset({"num_classes"}))

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
    }),
    (METRICS, {
        "acc": "ptlab.objectives.metrics:accuracy",
        "f1": "ptlab.objectives.metrics:f1",
        "mse": "ptlab.objectives.metrics:mse",
        "mae": "ptlab.objectives.metrics:mae",
    }),
]

for _registry, _entries in _BUILTINS:
    for _name, _target in _entries.items():
        _registry.register_lazy(_name, _target)
