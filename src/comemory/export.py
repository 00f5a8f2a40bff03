"""Export a trained model for deployment: ONNX (for ONNX Runtime and other engines) or
TorchScript (for C++ / LibTorch).

    comemory export --checkpoint runs/cpu/checkpoint.pt --format onnx --out model.onnx

What is exported is ``FrameScorer``: the network and the patch errors of eq. 3.19 in one
graph. Inputs, float32 with batch 1: ``past`` (1, P, C, S, S) and ``target`` (1, C, S, S)
frames in [-1, 1], ``flow`` (1, 2, S, S), the flow F_t between the last two past frames.
Outputs: ``FrameScorer.OUTPUTS`` (the predicted frame and flow, PSNR, S_F(P~), S_I(P~),
feature distance, the motion, the two (1, S, S) patch-error maps and each row's motion and
flow error, (1, S)). The score of eq. 3.18 and the
threshold are a few numbers from the checkpoint's calibration, applied outside the graph
(``comemory detect --engine onnx`` does it). ONNX needs the ``export`` extra:
``pip install -e .[export]`` (onnx, onnxscript, onnxruntime).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from comemory import storage
from comemory.checkpoint import load_checkpoint, network_from_checkpoint
from comemory.config import Config
from comemory.errors import ComemoryError, ConfigError
from comemory.scoring import FrameScorer

INPUTS = ("past", "target", "flow")
FORMATS = ("onnx", "torchscript")


def example_inputs(config: Config, past_frames: int, seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (past, target, flow) of the shapes the exported graph takes."""
    size, channels = config.model.network_size, config.model.channels
    generator = torch.Generator().manual_seed(seed)
    past = torch.rand(1, past_frames, channels, size, size, generator=generator) * 2 - 1
    target = torch.rand(1, channels, size, size, generator=generator) * 2 - 1
    flow = torch.randn(1, 2, size, size, generator=generator)
    return past, target, flow


def export_model(checkpoint: str | Path, out: str | Path, fmt: str = "onnx") -> Path:
    """Write the checkpoint's FrameScorer to ``out`` as ``fmt`` (onnx or torchscript)."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {FORMATS}, got {fmt!r}")
    state = load_checkpoint(checkpoint)
    model, config, _ = network_from_checkpoint(state, checkpoint, "export")
    scorer = FrameScorer(model, config.score).eval()
    inputs = example_inputs(config, model.past_frames)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(scorer, inputs)
        with storage.atomic_open(out) as handle:
            torch.jit.save(traced, handle)
        return out
    _require_onnx()
    with torch.no_grad():
        program = torch.onnx.export(scorer, inputs, input_names=list(INPUTS),
                                    output_names=list(FrameScorer.OUTPUTS), dynamo=True)
    temporary = out.with_name(f".{out.name}.part")
    program.save(str(temporary))
    temporary.replace(out)  # atomic: a killed export leaves no half-written model
    return out


def onnx_engine(path: str | Path):
    """An engine for ``Detector`` that runs the exported ONNX graph with ONNX Runtime."""
    _require_onnx()
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise ComemoryError(f"{path}: exported model not found; write it with "
                            "`comemory export --format onnx`")
    options = onnxruntime.SessionOptions()
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    missing = set(FrameScorer.OUTPUTS) - {output.name for output in session.get_outputs()}
    if missing:  # exported by an older version (before the motion part, for one)
        raise ComemoryError(f"{path}: exported without the outputs {sorted(missing)} this "
                            "version reads; export it again with `comemory export`")

    def run(past: np.ndarray, target: np.ndarray, flow: np.ndarray) -> dict[str, np.ndarray]:
        outputs = session.run(list(FrameScorer.OUTPUTS),
                              {"past": past, "target": target, "flow": flow})
        return dict(zip(FrameScorer.OUTPUTS, outputs, strict=True))

    run.max_batch = 1  # the graph is exported with batch 1
    return run


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ComemoryError(f"ONNX export and the onnx engine need {error.name}: "
                            "pip install -e '.[export]' -c constraints.txt") from error
