"""Export a trained conditional face generator (:mod:`pixveil.gan.cond_train`) to ONNX.

Writes next to each other:

``gan_face_cond_generator.onnx``  (image, mask, heat, z) -> face (N, 3, R, R) in [-1, 1]
``gan_face_cond_encoder.onnx``    (image, mask) -> mu (N, nz): the face's latent projection
``gan_face_cond.json``            kind, geometry, latent size, training summary, SHA-256s

Weights are stored as float16 (the runtime converts them back to float32 when
it loads a graph), every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixveil.gan.cond_geometry import CONTEXT, NZ, RES, SIGMA
from pixveil.gan.cond_models import CondEncoder, CondGenerator
from pixveil.gan.cond_prior import TRUNCATION, fit_prior
from pixveil.gan.cond_train import load_weights
from pixveil.gan.export import _fp16_storage, _onnx_graph, file_sha256
from pixveil.io import atomic_write_bytes, atomic_write_text

__all__ = ["CARD_NAME", "export_cond"]

CARD_NAME = "gan_face_cond.json"
#: Grey-level spread of the context, 2nd percentile over 2,000 augmented training
#: crops of the shipped pack (the 5th: 27.8, the median: 51.9).
MIN_CONTEXT_STD = 23.6


class _Mu(nn.Module):
    def __init__(self, e: CondEncoder) -> None:
        super().__init__()
        self.e = e

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.e(image, mask)[0]


def export_cond(
    run: Path | str,
    to: Path | str,
    *,
    pack: Path | str | None = None,
    prior_samples: int = 12000,
    summary: dict[str, Any] | None = None,
) -> Path:
    """Export run folder ``run`` (``g_ema.pt``, ``e.pt``, ``state.json``) into ``to``; returns the card.

    The context prior (:mod:`pixveil.gan.cond_prior`) is taken from
    ``run/prior.npz``, or fitted on ``pack`` first (and saved there).
    """
    run, to = Path(run), Path(to)
    prior_file = run / "prior.npz"
    prior_stats: dict[str, float] = {}
    if not prior_file.is_file():
        if pack is None:
            raise FileNotFoundError(f"{prior_file}: no context prior (give the training pack)")
        prior, prior_stats = fit_prior(run, pack, samples=prior_samples)
        atomic_write_bytes(prior_file, prior.to_bytes())
        atomic_write_text(run / "prior.json", json.dumps(prior_stats, indent=1) + "\n")
    elif (run / "prior.json").is_file():
        prior_stats = json.loads((run / "prior.json").read_text())
    g, e = CondGenerator(), CondEncoder()
    load_weights(g, run / "g_ema.pt")
    load_weights(e, run / "e.pt")
    state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
    to.mkdir(parents=True, exist_ok=True)
    files = {
        "generator": to / "gan_face_cond_generator.onnx",
        "encoder": to / "gan_face_cond_encoder.onnx",
        "prior": to / "gan_face_cond_prior.npz",
    }
    atomic_write_bytes(files["prior"], prior_file.read_bytes())
    img, mask = torch.zeros(1, 3, RES, RES), torch.zeros(1, 1, RES, RES)
    heat, z = torch.zeros(1, 5, RES, RES), torch.zeros(1, NZ)
    gg = _onnx_graph(g, (img, mask, heat, z), ["image", "mask", "heat", "z"], "face")
    atomic_write_bytes(files["generator"], _fp16_storage(gg))
    eg = _onnx_graph(_Mu(e), (img, mask), ["image", "mask"], "mu")
    atomic_write_bytes(files["encoder"], _fp16_storage(eg))
    card = {
        "kind": "conditional",
        "res": RES,
        "context": CONTEXT,
        "sigma": SIGMA,
        "nz": NZ,
        "clip": 3.0,
        "truncation": TRUNCATION,
        # 2nd percentile of the grey-level spread of the training contexts
        # (augmented LFW crops): flatter scenes get the brightness gain of gan-face
        "min_context_std": MIN_CONTEXT_STD,
        "prior": prior_stats,
        "training": {
            "steps": state.get("step"),
            "seconds": state.get("seconds"),
            "faces": state.get("faces"),
            "losses": state.get("losses"),
            **(summary or {}),
        },
        "files": {k: {"name": p.name, "sha256": file_sha256(p)} for k, p in files.items()},
    }
    return atomic_write_text(to / CARD_NAME, json.dumps(card, indent=1) + "\n")
