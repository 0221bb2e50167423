"""Export a trained face GAN to ONNX for torch-free inference.

Writes three graphs and a JSON card next to them:

``gan_face_<size>_generator.onnx``      z (N, nz) -> image (N, 3, S, S) in [-1, 1]
``gan_face_<size>_encoder.onnx``        image (N, 3, S, S) in [-1, 1] -> z (N, nz)
``gan_face_<size>_critic.onnx``         image -> discriminator features (N, C, 4, 4),
                                        the perceptual space of the quality-path refinement
``gan_face_<size>.json``                sizes, canonical landmarks, training summary, SHA-256s

Weights are stored as float16 to halve the package size; the runtime converts
them back to float32 when it loads the graph (see ``pixveil.protect.gan``).
Every file is written atomically (:mod:`pixveil.io.files`): a graph is exported
to a private temporary folder and converted in memory, so no half-written model
is ever left in ``to``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from pixveil.io import atomic_write_bytes, atomic_write_text

from .models import Discriminator, Encoder, Generator, recalibrate_bn

__all__ = ["CANONICAL_LANDMARKS_64", "export", "export_onnx", "file_sha256"]

# Mean CenterFace landmarks (left eye, right eye, nose, left and right mouth
# corner) of 479 training faces, in the coordinates of the 64x64 training crop,
# made left-right symmetric (training uses horizontal flips), and the mean
# CenterFace box in the same coordinates.  Measured with
# ``pixveil.gan.data.CROP_BOX_LFW``; re-measure if the crop changes.
CANONICAL_LANDMARKS_64 = [[20.3, 22.7], [43.7, 22.7], [32.0, 36.4], [22.2, 47.2], [41.8, 47.2]]
CANONICAL_BOX_64 = [5.7, -3.6, 58.3, 65.3]


class _Features(nn.Module):
    def __init__(self, d: Discriminator) -> None:
        super().__init__()
        self.d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.d.features(x)


def _fp16_storage(graph: bytes) -> bytes:
    """The serialised ONNX ``graph`` with its float32 initialisers stored as float16."""
    model = onnx.load_from_string(graph)
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), init.name))
    # float16 initialisers feeding float32 ops: record the intent for the loader
    meta = model.metadata_props.add()
    meta.key, meta.value = "pixveil.weights", "float16-storage"
    return bytes(model.SerializeToString())


def _onnx_graph(
    module: nn.Module,
    examples: tuple[torch.Tensor, ...],
    in_names: list[str],
    out_name: str,
) -> bytes:
    """``module`` exported to ONNX (opset 17, batch axis of every tensor dynamic), serialised.

    The exporter writes a file (its documented target), in a private temporary
    folder that is removed afterwards.  The caller puts ``module`` in eval mode.
    """
    module.eval()
    with tempfile.TemporaryDirectory(prefix="pixveil-export-") as folder:
        graph = Path(folder) / "graph.onnx"
        # The TorchScript exporter handles these plain conv nets exactly and needs no
        # extra package (the dynamo exporter needs onnxscript); silence its deprecation note.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                examples,
                str(graph),
                input_names=in_names,
                output_names=[out_name],
                dynamic_axes={**{n: {0: "N"} for n in in_names}, out_name: {0: "N"}},
                opset_version=17,
                dynamo=False,
            )
        return graph.read_bytes()


def export_onnx(
    module: nn.Module, example: torch.Tensor, path: Path | str, in_name: str, out_name: str
) -> Path:
    """Export ``module`` (in eval mode) to the ONNX file ``path``, weights stored as float16.

    Parameters
    ----------
    module : torch.nn.Module
        A plain convolutional network taking one tensor and returning one.
    example : Tensor
        An input of the right shape; its first axis is exported as dynamic (``"N"``).
    path : path
        The ``.onnx`` file, written atomically.
    in_name, out_name : str
        Names of the graph's input and output.

    Returns
    -------
    Path
        ``path``.
    """
    graph = _onnx_graph(module, (example,), [in_name], out_name)
    return atomic_write_bytes(path, _fp16_storage(graph))


def file_sha256(path: Path | str) -> str:
    """The SHA-256 of the file at ``path``, as 64 hex digits (as the model cards record it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export(run: Path | str, to: Path | str, *, summary: dict[str, Any] | None = None) -> Path:
    """Export the checkpoint of training run ``run`` into folder ``to``; returns the JSON card."""
    run, to = Path(run), Path(to)
    ck = torch.load(run / "ckpt.pt", map_location="cpu", weights_only=False)
    cfg = ck["config"]
    size, nz = int(cfg["size"]), int(cfg["nz"])
    G = Generator(nz, int(cfg["ngf"]), size)
    D = Discriminator(int(cfg["ndf"]), size)
    E = Encoder(nz, int(cfg["ndf"]), size)
    averaged = "G_ema" in ck and float(cfg.get("ema_decay", 0.0)) > 0
    if averaged:
        # the generator the encoder was trained against: averaged weights with
        # batch-norm statistics re-estimated the same way as in training
        G.load_state_dict(ck["G_ema"])
        recalibrate_bn(G, nz, "cpu")
    else:
        G.load_state_dict(ck["G"])
    D.load_state_dict(ck["D"])
    E.load_state_dict(ck["E"])
    to.mkdir(parents=True, exist_ok=True)
    stem = f"gan_face_{size}"
    files = {
        "generator": to / f"{stem}_generator.onnx",
        "encoder": to / f"{stem}_encoder.onnx",
        "critic": to / f"{stem}_critic.onnx",
    }
    img = torch.zeros(1, 3, size, size)
    export_onnx(G, torch.zeros(1, nz), files["generator"], "z", "image")
    export_onnx(E, img, files["encoder"], "image", "z")
    export_onnx(_Features(D), img, files["critic"], "image", "features")
    scale = size / 64.0
    card = {
        "size": size,
        "nz": nz,
        "clip": 3.0,
        "canonical_landmarks": [[x * scale, y * scale] for x, y in CANONICAL_LANDMARKS_64],
        "canonical_box": [v * scale for v in CANONICAL_BOX_64],
        "training": {
            "config": cfg,
            "gan_steps": ck["state"]["gan_steps"],
            "epochs": ck["state"]["epoch"],
            "encoder_steps": ck["state"]["enc_steps"],
            "averaged_generator": averaged,
            **(summary or {}),
        },
        "files": {k: {"name": p.name, "sha256": file_sha256(p)} for k, p in files.items()},
    }
    return atomic_write_text(to / f"{stem}.json", json.dumps(card, indent=1) + "\n")
