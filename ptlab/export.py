"""``ptlab export``: a checkpoint's model as a program that runs without ptlab — ``.pt2`` (torch.export) or ONNX.

The model is rebuilt from the checkpoint's saved config, as ``ptlab eval`` does, on the CPU
in eval mode, and traced by ``torch.export`` with a dynamic batch dimension — and, for
text, a dynamic sequence dimension up to the context the model was trained on, where the
model allows one (an LSTM is unrolled over its fixed window). A GAN exports its generator:
noise z in, images out. The program takes what the model takes in training, the first
tensors of a batch (features, images, token ids and lengths, user ids), already
preprocessed as the data pipeline does; what each input is (:mod:`ptlab.export_inputs`) and
the data's ``info`` (classes, the target's mean and std, the vocabulary size) go into
``export.json`` beside the file, and a text model's tokenizer into ``tokenizer.json``.

Nothing is written before the exported program has been run — loaded back from the very
bytes that are written (``torch.export.load``, an onnxruntime session) — on a sample (the
first test batch; seeded noise for a GAN) and on one shorter row of it, and compared with
eager PyTorch:

    max |exported(x) − model(x)|  ≤  tolerance · max(1, max |model(x)|),

tolerance 1e-5 for pt2 and 1e-4 for ONNX. The difference measured is recorded.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from ptlab.atomic import write_atomic, write_json, write_text
from ptlab.errors import ConfigError
from ptlab.export_inputs import SEQUENCE, Signature, shorter_sample, signature

if TYPE_CHECKING:
    from torch.export import ExportedProgram

FORMATS = {"pt2": ".pt2", "onnx": ".onnx"}
TOLERANCE = {"pt2": 1e-5, "onnx": 1e-4}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
MANIFEST, TOKENIZER = "export.json", "tokenizer.json"


@dataclass
class Exported:
    """Where the program was written, and what ``export.json`` beside it says."""

    path: Path
    manifest: dict[str, Any]


def export_checkpoint(ckpt: str | Path, fmt: str, out: str | Path | None = None) -> Exported:
    """Export the model of ``ckpt`` as ``fmt`` ("pt2" or "onnx") to ``out`` (default: RUN_DIR/export/FMT/model.FMT),
    with ``export.json`` (and ``tokenizer.json`` for text) beside it; refuse to replace any of them."""
    from ptlab.api import rebuild

    check_format(fmt)
    ckpt = Path(ckpt).expanduser()
    path = output_path(ckpt, fmt, out)
    payload, run = rebuild(ckpt, device="cpu")
    tokenizer = payload.get("tokenizer")
    check_free(path, with_tokenizer=tokenizer is not None)
    sig = signature(run)
    program, dynamic_sequence = trace(sig, run.data.info.get("block_size"))
    samples = [sig.sample, shorter_sample(sig, dynamic_sequence)]
    axes = axis_names(program, sig)
    if fmt == "pt2":
        data, opset = to_pt2(program), None
        loaded = load_pt2(data)
    else:
        data, opset = to_onnx(program, sig, axes)
        loaded = load_onnx(data)
    difference, bound = check_against_eager(sig, samples, loaded, TOLERANCE[fmt], fmt)
    manifest = describe(fmt, path, ckpt, payload, run.data.info, sig, program, axes, opset)
    manifest["check"] = {"sample": sig.description, "batch_sizes": [len(s[0]) for s in samples],
                         "max_abs_diff": difference, "bound": bound}
    if SEQUENCE in sig.inputs:
        manifest["check"]["sequence_lengths"] = [s[sig.inputs.index(SEQUENCE)].shape[1] for s in samples]
    try:
        write_atomic(path, lambda f: f.write(data))
        if tokenizer is not None:
            write_text(path.parent / TOKENIZER, tokenizer)
        write_json(path.parent / MANIFEST, manifest)  # last: a folder with export.json holds a complete export
    except OSError as err:
        raise ConfigError(f"out: cannot write {path} ({err.strerror or err}); pass out= in a folder you can write") from None
    return Exported(path, manifest)


def check_format(fmt: str) -> None:
    """An unknown format, or ONNX without its packages, is a one-line error."""
    from ptlab.registry import did_you_mean

    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} is not an export format. {did_you_mean(fmt, FORMATS)}"
                          "Use format=pt2 (torch.export) or format=onnx")
    if fmt == "onnx":
        missing = [name for name in ONNX_PACKAGES if not _installed(name)]
        if missing:
            raise ConfigError(f"format: onnx needs {', '.join(ONNX_PACKAGES)} ({', '.join(missing)} not installed); "
                              "pip install 'ptlab[export]'")


def _installed(module: str) -> bool:
    """Whether ``import module`` can find the package (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules, or one without a spec
        return False


def output_path(ckpt: Path, fmt: str, out: str | Path | None) -> Path:
    """``out``, which must end in the format's suffix; by default ``RUN_DIR/export/FMT/model.SUFFIX``."""
    suffix = FORMATS[fmt]
    if out is None or out == "":
        run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
        return run_dir / "export" / fmt / f"model{suffix}"
    path = Path(out).expanduser()
    if path.suffix != suffix:
        raise ConfigError(f"out: {out} does not end in {suffix}, the suffix of format={fmt}; "
                          f"e.g. out={path.with_suffix(suffix) if path.suffix else path / f'model{suffix}'}")
    return path


def check_free(path: Path, with_tokenizer: bool) -> None:
    """Refuse a folder that is not one, or one that already holds a file the export would write."""
    folder = path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"out: {existing} is a file, not a folder; pass out=FOLDER/{path.name}")
    names = [path.name, MANIFEST, *([TOKENIZER] if with_tokenizer else [])]
    taken = [folder / name for name in names if (folder / name).exists()]
    if taken:
        raise ConfigError(f"out: {taken[0]} exists (an earlier export?); pass out=OTHER_FOLDER/{path.name}, "
                          f"or remove it to export again")


def trace(sig: Signature, max_length: int | None) -> tuple[ExportedProgram, bool]:
    """(``torch.export`` of ``sig.module`` with a dynamic batch, whether its sequence dimension is dynamic too).

    The sequence dimension (at most ``max_length``) is tried dynamic first; a model that
    fixes it (an LSTM unrolled over its training window) is traced again with it fixed.
    """
    import torch.export
    from torch._dynamo.exc import UserError
    from torch.export import Dim

    batch = Dim("batch")
    sequence = Dim("seq", max=max_length) if SEQUENCE in sig.inputs else None

    def shapes(seq: Any) -> tuple[dict[int, Any], ...]:
        return tuple({0: batch, **({1: seq} if name == SEQUENCE and seq is not None else {})} for name in sig.inputs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's notes on the model's internals are not the user's to act on
        try:
            try:
                return torch.export.export(sig.module, sig.sample, dynamic_shapes=shapes(sequence)), sequence is not None
            except UserError as err:
                if sequence is None or "(seq)" not in str(err):
                    raise
                return torch.export.export(sig.module, sig.sample, dynamic_shapes=shapes(None)), False
        except Exception as err:  # torch.export raises many types, each with pages of explanation
            raise ConfigError(f"ckpt: torch.export cannot trace the {sig.part} ({type(sig.module).__name__}) with a "
                              f"dynamic batch ({type(err).__name__}: {first_line(err)}); what a model must avoid: "
                              "docs/export.md#what-does-not-export") from None


def first_line(err: BaseException) -> str:
    return next((line.strip() for line in str(err).splitlines() if line.strip()), "")


def to_pt2(program: ExportedProgram) -> bytes:
    import torch.export

    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def load_pt2(data: bytes) -> Callable[..., torch.Tensor]:
    """The program in ``data`` as a callable, loaded the way a deployer loads the file."""
    import torch.export

    return torch.export.load(io.BytesIO(data)).module()


def to_onnx(program: ExportedProgram, sig: Signature, axes: dict[str, str]) -> tuple[bytes, int]:
    """(the ONNX model of ``program``, its opset): the dynamo exporter, inputs and outputs named as ``sig``, dynamic
    dimensions named as ``axes`` ("batch", "seq")."""
    import torch.onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            onnx_program = torch.onnx.export(program, (), input_names=list(sig.inputs), output_names=[sig.output],
                                             dynamo=True, verbose=False)
        except Exception as err:
            raise ConfigError(f"format: torch.onnx cannot convert the {sig.part} ({type(sig.module).__name__}): "
                              f"{type(err).__name__}: {first_line(err)}; format=pt2 may still work") from None
    proto = onnx_program.model_proto
    symbol = re.compile("|".join(rf"\b{re.escape(s)}\b" for s in axes)) if axes else None
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if symbol is not None and dim.dim_param:
                dim.dim_param = symbol.sub(lambda m: axes[m.group(0)], dim.dim_param)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return proto.SerializeToString(), opset


def load_onnx(data: bytes) -> Callable[..., torch.Tensor]:
    """An onnxruntime (CPU) session of ``data`` as a callable on tensors."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {n: x.contiguous().numpy() for n, x in zip(names, inputs)})[0])

    return run


def check_against_eager(sig: Signature, samples: list[tuple[torch.Tensor, ...]],
                        exported: Callable[..., torch.Tensor], tolerance: float, fmt: str) -> tuple[float, float]:
    """(max |exported − eager| over ``samples``, the bound it must keep); beyond the bound, an error."""
    difference, scale = 0.0, 1.0
    with torch.no_grad():
        for sample in samples:
            expected, got = sig.module(*sample).float(), exported(*sample).float()
            if got.shape != expected.shape:
                raise ConfigError(f"format: the {fmt} program gives shape {list(got.shape)} where the model gives "
                                  f"{list(expected.shape)} at input shapes {[list(x.shape) for x in sample]}; "
                                  "nothing was written")
            difference = max(difference, (got - expected).abs().max().item())
            scale = max(scale, expected.abs().max().item())
    bound = tolerance * scale
    if not difference <= bound:
        raise ConfigError(f"format: the {fmt} program differs from the model by {difference:.3g} (more than "
                          f"{bound:.3g}) on {sig.description}; nothing was written")
    return difference, bound


def axis_names(program: ExportedProgram, sig: Signature) -> dict[str, str]:
    """torch.export's symbol of each dynamic input dimension (``s23``) → its name: "batch", or "seq" for text."""
    nodes = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    names = {}
    for node, name in zip(nodes, sig.inputs):
        for axis, size in enumerate(node.meta["val"].shape):
            if isinstance(size, torch.SymInt):
                names[str(size)] = "batch" if axis == 0 else "seq"
    return names


def tensor_spec(name: str, value: torch.Tensor, axes: dict[str, str]) -> dict[str, Any]:
    """``{"name", "shape", "dtype"}`` with each dynamic dimension as its name."""
    shape = [int(d) if not isinstance(d, torch.SymInt) else re.sub(r"\bs\d+\b", lambda m: axes.get(m.group(0), m.group(0)),
                                                                    str(d)) for d in value.shape]
    return {"name": name, "shape": shape, "dtype": str(value.dtype).removeprefix("torch.")}


def describe(fmt: str, path: Path, ckpt: Path, payload: dict[str, Any], info: dict[str, Any], sig: Signature,
             program: ExportedProgram, axes: dict[str, str], opset: int | None) -> dict[str, Any]:
    """What a deployer needs to call the program: export.json without the check."""
    from ptlab import __version__

    nodes = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    outputs = next(n for n in program.graph.nodes if n.op == "output").args[0]
    ranges = {axes[str(s)]: {"min": int(r.lower), "max": None if str(r.upper) == "int_oo" else int(r.upper)}
              for s, r in program.range_constraints.items() if str(s) in axes}
    config = payload["config"]
    manifest: dict[str, Any] = {
        "file": path.name, "format": fmt, "checkpoint": str(ckpt.resolve()), "task": config.get("task"),
        "model": config["model"].get("name", config["model"].get("_target_")), "exported": sig.part,
        "inputs": [tensor_spec(name, node.meta["val"], axes) | {"meaning": sig.meanings[name]}
                   for name, node in zip(sig.inputs, nodes)],
        "outputs": [tensor_spec(sig.output, outputs[0].meta["val"], axes) | {"meaning": sig.meanings[sig.output]}],
        "dynamic": ranges, "opset": opset, "torch_version": torch.__version__, "ptlab_version": __version__,
        "data_info": {k: v for k, v in info.items() if isinstance(v, (bool, int, float, str, list))},
    }
    if fmt == "onnx":
        import onnx
        import onnxruntime

        manifest |= {"onnx_version": onnx.__version__, "onnxruntime_version": onnxruntime.__version__}
    if payload.get("tokenizer") is not None:
        from ptlab.data.tokenizers import SPECIAL_TOKENS

        manifest |= {"tokenizer": TOKENIZER, "special_tokens": {token: i for i, token in enumerate(SPECIAL_TOKENS)}}
    return manifest
