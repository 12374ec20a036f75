"""The commands that read a checkpoint: ``eval``, ``generate``, ``recommend``, ``predict``, ``translate``, ``export``.

Each parses its ``key=value`` arguments (:func:`key_values`), calls the function of
ptlab that does the work and prints or writes the result; a bad argument is a
PtlabError (one line, exit code 2, at the boundary in ptlab.cli).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ptlab.errors import PtlabError


def eval_command(args: list[str]) -> int:
    from ptlab.api import evaluate
    from ptlab.logging.console import print_metrics_table
    from ptlab.atomic import write_json

    options = {"ckpt": None, "split": "test", "device": None, "out": None}
    overrides = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise PtlabError(f"{arg!r}: expected key=value, e.g. ckpt=outputs/cnn/RUN/checkpoints/best.pt")
        if key in options:
            options[key] = value
        else:
            overrides.append(arg)
    if not options["ckpt"]:
        raise PtlabError("ckpt: required; pass ckpt=RUN_DIR/checkpoints/best.pt")
    metrics = evaluate(options["ckpt"], options["split"], overrides, options["device"])
    ckpt = Path(options["ckpt"]).expanduser()
    out = Path(options["out"]) if options["out"] else ckpt.parent.parent / f"eval_{options['split']}.json"
    write_json(out, metrics)
    print_metrics_table(metrics, title=f"{options['split']} metrics")
    print(f"written to {out}")
    return 0


def generate_command(args: list[str]) -> int:
    """``ptlab generate ckpt=PATH [n=64] [out=grid.png] [seed=0] [device=cpu]``: a sample grid from a GAN."""
    from ptlab.generation import generate_images
    from ptlab.logging.samples import save_grid

    if _is_text_checkpoint(args):
        return generate_text_command(args)
    options = key_values(args, {"ckpt": None, "n": "64", "out": "grid.png", "seed": "0", "device": "cpu"})
    if not options["ckpt"]:
        raise PtlabError("ckpt: required; pass ckpt=RUN_DIR/checkpoints/best.pt")
    n, seed = int_option(options, "n", minimum=1), int_option(options, "seed")
    images = generate_images(options["ckpt"], n=n, seed=seed, device=options["device"])
    save_grid(images, Path(options["out"]))
    print(f"{n} samples (seed {seed}) written to {options['out']}")
    return 0


def _is_text_checkpoint(args: list[str]) -> bool:
    """Whether ``ckpt=`` names the checkpoint of a run on text (it carries a tokenizer)."""
    from ptlab.engine.checkpoint import load_checkpoint

    ckpt = next((a.partition("=")[2] for a in args if a.startswith("ckpt=")), "")
    return bool(ckpt) and load_checkpoint(ckpt).get("tokenizer") is not None


def generate_text_command(args: list[str]) -> int:
    """``ptlab generate ckpt=PATH [prompt=…] [max_new_tokens=200] [temperature=1.0] [top_k=K] [seed=0]``: text."""
    from ptlab.generation import generate_text

    options = key_values(args, {"ckpt": None, "prompt": "", "max_new_tokens": "200", "temperature": "1.0",
                                 "top_k": "null", "seed": "0", "device": "cpu"})
    try:
        temperature = float(options["temperature"])
    except ValueError:
        raise PtlabError(f"temperature: expected a number, got {options['temperature']!r}") from None
    if not temperature >= 0:
        raise PtlabError(f"temperature: {temperature} is out of range; use a value ≥ 0 (0: the most likely token)")
    top_k = None if options["top_k"] == "null" else int_option(options, "top_k", minimum=1)
    text, unknown = generate_text(options["ckpt"], options["prompt"], int_option(options, "max_new_tokens", minimum=1),
                                  temperature, top_k, int_option(options, "seed"), options["device"])
    if unknown:
        print(f"ptlab: note: prompt: {', '.join(map(repr, unknown))} not in the vocabulary; read as <unk>",
              file=sys.stderr)
    print(text)
    return 0


def recommend_command(args: list[str]) -> int:
    """``ptlab recommend ckpt=PATH user=ID [k=10] [format=table|json] [device=cpu]``: top-k items for a user."""
    import json

    from ptlab.recommend import recommend

    options = key_values(args, {"ckpt": None, "user": None, "k": "10", "format": "table", "device": "cpu"})
    for key in ("ckpt", "user"):
        if not options[key]:
            raise PtlabError(f"{key}: required; e.g. ptlab recommend ckpt=RUN_DIR/checkpoints/best.pt user=42")
    if options["format"] not in ("table", "json"):
        raise PtlabError(f"format: {options['format']!r} is not a format; use format=table or format=json")
    picks = recommend(options["ckpt"], options["user"], int_option(options, "k", minimum=1), options["device"])
    if options["format"] == "json":
        print(json.dumps([{"rank": p.rank, "item": p.item, "title": p.title, "score": round(p.score, 6)}
                          for p in picks], ensure_ascii=False))
        return 0
    from rich.table import Table
    from rich.text import Text

    from ptlab.logging.console import console

    titled = any(p.title for p in picks)  # the planted data and most CSVs have none
    table = Table(title=f"top {len(picks)} for user {options['user']}", title_justify="left")
    for column in ("rank", "item", *(("title",) if titled else ()), "score"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for p in picks:
        table.add_row(str(p.rank), Text(p.item), *((Text(p.title),) if titled else ()), f"{p.score:.4f}")
    console().print(table)
    return 0


def predict_command(args: list[str]) -> int:
    """``ptlab predict ckpt=PATH input=FILE out=FILE [column=NAME] [device=cpu]``: the input with predictions added."""
    from ptlab.atomic import write_text
    from ptlab.predict import check_out, predict

    options = key_values(args, {"ckpt": None, "input": None, "out": None, "column": None, "device": "cpu"})
    for key in ("ckpt", "input", "out"):
        if not options[key]:
            raise PtlabError(f"{key}: required; e.g. ptlab predict ckpt=RUN_DIR/checkpoints/best.pt input=new.csv "
                             "out=predictions.csv")
    check_out(options["input"], options["out"])
    predictions = predict(options["ckpt"], options["input"], options["device"], options["column"])
    out = Path(options["out"]).expanduser()
    write_text(out, predictions.to_csv())
    print(f"{len(predictions.rows)} predictions written to {out}")
    return 0


def translate_command(args: list[str]) -> int:
    """``ptlab translate ckpt=PATH text=TEXT | input=FILE [beam=1] [length_penalty=0.6] [device=cpu]``: one
    translation a line (a blank input line stays blank)."""
    from ptlab.data.files import read_text_file
    from ptlab.translate import translate

    options = key_values(args, {"ckpt": None, "text": None, "input": None, "beam": "1", "length_penalty": "0.6",
                                 "max_length": "null", "device": "cpu"})
    if not options["ckpt"]:
        raise PtlabError("ckpt: required; e.g. ptlab translate ckpt=RUN_DIR/checkpoints/best.pt text=\"forty-two\"")
    if (options["text"] is None) == (options["input"] is None):
        raise PtlabError("text: give either text=\"...\" or input=FILE (one text a line)")
    if options["input"] is not None:
        texts = read_text_file(Path(options["input"]).expanduser(), "input").splitlines()
    else:
        texts = [options["text"]]
    try:
        length_penalty = float(options["length_penalty"])
    except ValueError:
        raise PtlabError(f"length_penalty: expected a number, got {options['length_penalty']!r}") from None
    if not length_penalty >= 0:
        raise PtlabError(f"length_penalty: {length_penalty} is out of range; use a value ≥ 0")
    max_length = None if options["max_length"] == "null" else int_option(options, "max_length", minimum=1)
    filled = [t for t in texts if t.strip()]
    translations = iter(translate(options["ckpt"], filled, int_option(options, "beam", minimum=1), length_penalty,
                                  max_length, options["device"]))
    for text in texts:
        print(next(translations) if text.strip() else "")
    return 0


def export_command(args: list[str]) -> int:
    """``ptlab export ckpt=PATH format=pt2|onnx [out=FILE]``: the model as a program, export.json beside it."""
    from ptlab.export import export_checkpoint

    options = key_values(args, {"ckpt": None, "format": None, "out": None})
    for key in ("ckpt", "format"):
        if not options[key]:
            raise PtlabError(f"{key}: required; e.g. ptlab export ckpt=RUN_DIR/checkpoints/best.pt format=onnx")
    exported = export_checkpoint(options["ckpt"], options["format"], options["out"])
    manifest, check = exported.manifest, exported.manifest["check"]
    print(f"{manifest['exported']} ({manifest['model']}) exported to {exported.path}")
    for role, specs in (("input", manifest["inputs"]), ("output", manifest["outputs"])):
        for spec in specs:
            print(f"  {role:<6} {spec['name']:<8} {spec['dtype']:<8} [{', '.join(map(str, spec['shape']))}]")
    runner = "onnxruntime" if manifest["format"] == "onnx" else "torch.export.load"
    lengths = f" (lengths {' and '.join(map(str, check['sequence_lengths']))})" if "sequence_lengths" in check else ""
    print(f"  {runner} vs eager PyTorch: max |difference| {check['max_abs_diff']:.3g} at batch sizes "
          f"{' and '.join(map(str, check['batch_sizes']))}{lengths} (bound {check['bound']:.3g})")
    print(f"  {', '.join(['export.json', *(['tokenizer.json'] if 'tokenizer' in manifest else [])])} written beside it")
    return 0


def key_values(args: list[str], defaults: dict[str, str | None]) -> dict[str, str | None]:
    """``defaults`` updated from ``key=value`` arguments; any other argument is an error naming the keys."""
    options = dict(defaults)
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in options:
            raise PtlabError(f"{arg!r}: expected one of {', '.join(f'{k}=…' for k in options)}")
        options[key] = value
    return options


def int_option(options: dict, key: str, minimum: int | None = None) -> int:
    """``options[key]`` as an integer of at least ``minimum``."""
    try:
        value = int(options[key])
    except ValueError:
        raise PtlabError(f"{key}: expected an integer, got {options[key]!r}") from None
    if minimum is not None and value < minimum:
        raise PtlabError(f"{key}: {value} is out of range; use a value ≥ {minimum}")
    return value
