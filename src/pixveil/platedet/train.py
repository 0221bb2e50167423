"""Train and export the plate network (needs torch: ``pip install 'pixveil[gan]'``).

Training draws an endless, deterministic stream of synthetic scenes
(:class:`pixveil.platedet.synth.SceneSynth`) on the annotated street photos of the
training split, face photos and generated clutter; step ``k`` always sees samples
``k * batch .. (k + 1) * batch - 1`` of that stream, so a resumed run sees exactly the
data the uninterrupted run would have seen.  A checkpoint (model, optimiser, step,
configuration) is written to ``<out>/ckpt.pt`` every few minutes and at the end; the
same command with ``resume=True`` continues from it.  Progress goes to a callback and
to ``<out>/log.jsonl`` (one JSON object per logged step); the library never prints.

The first backbone stage (stride 2 and 4, ImageNet features) is frozen: it is most of
the compute of a training step on a CPU, and low-level ImageNet filters suit plates.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixveil.platedet.data import REGIONS, load_split, load_unannotated
from pixveil.platedet.decode import decode
from pixveil.platedet.evaluate import match
from pixveil.platedet.model import ALIGN, Exported, PlateNet, build_model
from pixveil.platedet.synth import FORMATS, Photo, SceneSynth, SynthConfig, quad_boxes
from pixveil.platedet.targets import make_targets

__all__ = ["TrainConfig", "export_onnx", "load_checkpoint", "train"]

log = logging.getLogger(__name__)

#: Offset of the validation stream's seed (never used for training samples).
VAL_SEED_OFFSET = 1_000_003


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything a training run depends on (written to ``<out>/config.json``).

    Parameters
    ----------
    out : str
        Run folder (checkpoint, log, config).
    plates_root : str or None
        The annotated photos (``.../plates`` with ``eu``/``us``); None trains on
        generated backgrounds only.
    train_regions : tuple of str
        Which photo folders are training backgrounds (``("eu",)`` leaves ``us`` unseen).
    faces_root : str or None
        A folder of face photos (``lfw/<Name>/*.jpg``); identities whose name starts
        with A-M are used (the rest stay unseen).
    holdout_formats : tuple of str
        Plate formats never drawn in training (for the held-out synthetic set).
    steps, batch, size : int
        Optimiser steps, samples per step, training crop side (multiple of 32).
    lr : float
        Peak learning rate (AdamW; linear warm-up over 100 steps, then cosine to 5 %).
    min_plate_width, max_plate_width : float
        Range of pasted plate widths in the training crops.
    threads : int
        torch intra-op threads (0 leaves torch's default).
    seed : int
        Seed of the synthetic stream and of the initialisation.
    checkpoint_minutes : float
        Time between checkpoints.
    pretrained : bool
        Start from the packaged ImageNet MobileNetV2 weights.
    init_weights : str or None
        A weights file written by :func:`export_onnx` (``plate_det.pt``) to start from
        instead (a new run, not a resume: optimiser and step start afresh).
    device : str
        ``"cpu"`` or ``"cuda"``.
    hard_negatives : str or None
        A file written by ``pixveil plates mine`` (:mod:`pixveil.platedet.mine`): false
        positives of an earlier model on the training photos and stream.
    p_hard : float
        Share of the crops of a photo with mined negatives placed around one of them.
    p_replay : float
        Share of each batch replayed from the mined synthetic samples.
    vanity_weight : float
        How much more often letters-only (``us_vanity``) plates are drawn than each
        other format.
    unannotated : str or None
        A reviewed list of real plates the photos' annotation leaves out
        (``bench/plate_unannotated.json``, :func:`pixveil.platedet.data.load_unannotated`):
        they become positives instead of background.
    """

    out: str
    plates_root: str | None = None
    train_regions: tuple[str, ...] = ("eu",)
    faces_root: str | None = None
    holdout_formats: tuple[str, ...] = ("square",)
    steps: int = 3000
    batch: int = 16
    size: int = 256
    lr: float = 2e-3
    min_plate_width: float = 18.0
    max_plate_width: float = 240.0
    threads: int = 1
    seed: int = 0
    checkpoint_minutes: float = 5.0
    pretrained: bool = True
    init_weights: str | None = None
    device: str = "cpu"
    width: int = 64
    hard_negatives: str | None = None
    p_hard: float = 0.35
    p_replay: float = 0.15
    vanity_weight: float = 1.0
    unannotated: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if any(r not in REGIONS for r in self.train_regions):
            raise ValueError(
                f"train_regions must be a subset of {REGIONS}, got {self.train_regions!r}"
            )
        if any(f not in FORMATS for f in self.holdout_formats):
            raise ValueError(
                f"holdout_formats must be a subset of {FORMATS}, got {self.holdout_formats!r}"
            )
        if set(self.holdout_formats) >= set(FORMATS):
            raise ValueError("holdout_formats must leave at least one format to train on")
        for name in ("steps", "batch", "size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.size % ALIGN:
            raise ValueError(f"size must be a multiple of {ALIGN}, got {self.size}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads!r}")
        for name in ("p_hard", "p_replay"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if not 0 < self.vanity_weight <= 20:
            raise ValueError(f"vanity_weight must be in (0, 20], got {self.vanity_weight!r}")
        if self.checkpoint_minutes <= 0:
            raise ValueError(f"checkpoint_minutes must be > 0, got {self.checkpoint_minutes!r}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kw: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names
        }
        return cls(**kw)


ProgressFn = Callable[[int, int, dict[str, float]], None]


# ----------------------------------------------------------------------------- data


def _faces(root: str | None, *, train: bool) -> list[Path]:
    if root is None or not Path(root).is_dir():
        return []
    out = []
    for d in sorted(Path(root).iterdir()):
        if d.is_dir() and (d.name[:1].upper() <= "M") == train:
            out.extend(sorted(d.glob("*.jpg"))[:2])
    return out


def _hard(cfg: TrainConfig) -> dict[str, Any]:
    if cfg.hard_negatives is None:
        return {}
    from pixveil.platedet.mine import load

    return load(cfg.hard_negatives)


def make_synth(
    cfg: TrainConfig, *, validation: bool = False, seed: int | None = None
) -> SceneSynth:
    """The training stream of ``cfg`` (or its validation stream: other seed, unseen faces).

    The validation stream draws the formats equally often and no mined negatives;
    ``seed`` overrides the training stream's seed (mined replay streams).
    """
    photos = []
    negatives = {} if validation else _hard(cfg).get("photos", {})
    others = load_unannotated(Path(cfg.unannotated)) if cfg.unannotated else None
    if cfg.plates_root is not None and Path(cfg.plates_root).is_dir():
        for p in load_split(Path(cfg.plates_root), cfg.train_regions, unannotated=others):
            neg = negatives.get(str(p.path), ())
            photos.append(
                Photo(p.path, p.box, tuple((b[0], b[1], b[2], b[3]) for b in neg), p.others)
            )
    formats = tuple(f for f in FORMATS if f not in cfg.holdout_formats)
    weights = None
    if cfg.vanity_weight != 1.0 and not validation and "us_vanity" in formats:
        weights = tuple(cfg.vanity_weight if f == "us_vanity" else 1.0 for f in formats)
    sc = SynthConfig(
        size=(cfg.size, cfg.size),
        min_plate_width=cfg.min_plate_width,
        max_plate_width=cfg.max_plate_width,
        formats=formats,
        format_weights=weights,
        p_hard=0.0 if validation else cfg.p_hard,
    )
    if seed is None:
        seed = cfg.seed + (VAL_SEED_OFFSET if validation else 0)
    return SceneSynth(
        sc, photos=photos, faces=_faces(cfg.faces_root, train=not validation), seed=seed
    )


def _batch(
    synth: SceneSynth,
    start: int,
    n: int,
    *,
    replay: tuple[SceneSynth, list[int], float] | None = None,
) -> tuple[torch.Tensor, ...]:
    """Samples ``start .. start + n - 1``; with ``replay = (stream, indices, share)``, a
    share of them (chosen by a generator seeded with ``start``) is replaced by mined
    samples of ``stream``, so a resumed run still sees the same batches."""
    imgs, heats, regs, weights = [], [], [], []
    pick = np.random.default_rng([7919, start]) if replay is not None else None
    for i in range(start, start + n):
        if replay is not None and pick is not None and replay[1] and pick.random() < replay[2]:
            s = replay[0].sample(replay[1][int(pick.integers(len(replay[1])))])
        else:
            s = synth.sample(i)
        h, w = s.image.shape[:2]
        heat, reg, wt = make_targets(s.quads, h, w)
        imgs.append(s.image.transpose(2, 0, 1))
        heats.append(heat)
        regs.append(reg)
        weights.append(wt)
    return (
        torch.from_numpy(np.stack(imgs)).float(),
        torch.from_numpy(np.stack(heats))[:, None],
        torch.from_numpy(np.stack(regs)),
        torch.from_numpy(np.stack(weights))[:, None],
    )


# ----------------------------------------------------------------------------- loss


def losses(
    pred: torch.Tensor, heat: torch.Tensor, reg: torch.Tensor, weight: torch.Tensor
) -> dict[str, torch.Tensor]:
    """CenterNet focal loss on the heatmap, weighted L1 on sizes and corners."""
    logit = pred[:, :1]
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = (heat >= 0.999).float()
    n_pos = pos.sum().clamp(min=1.0)
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos)).sum()
    focal = (pos_loss + neg_loss) / n_pos
    wsum = weight.sum().clamp(min=1.0)
    diff = (pred[:, 1:] - reg).abs() * weight
    size = diff[:, :2].sum() / wsum
    corners = diff[:, 2:].sum() / wsum
    return {"focal": focal, "size": size, "corners": corners, "total": focal + size + corners}


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < 100:
        return cfg.lr * (step + 1) / 100
    t = min(1.0, (step - 100) / max(1, cfg.steps - 100))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


# ----------------------------------------------------------------------------- checkpoints


def _save(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str) -> tuple[PlateNet, dict[str, Any]]:
    """The network of a checkpoint (``ckpt.pt``) or weights file (``plate_det.pt``), in eval mode."""
    ck = torch.load(Path(path), map_location="cpu", weights_only=False)
    cfg = ck.get("config", {})
    net = build_model(pretrained=False, width=int(cfg.get("width", 64)))
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    net.load_state_dict(state)
    return net.eval(), ck


# ----------------------------------------------------------------------------- validation


@torch.no_grad()
def validate(
    net: PlateNet, synth: SceneSynth, *, n: int = 48, threshold: float = 0.3
) -> dict[str, float]:
    """Recall (box IoU >= 0.5 or >= 90 % covered) and false positives per image on ``n`` samples."""
    was_training = net.training
    net.eval()
    found = total = fps = 0
    for start in range(0, n, 8):
        imgs, *_ = _batch(synth, start, min(8, n - start))
        out = net(imgs)
        out = torch.cat([torch.sigmoid(out[:, :1]), out[:, 1:]], dim=1).numpy()
        for k in range(out.shape[0]):
            gt = synth.sample(start + k).quads
            quads, _ = decode(out[k], threshold=threshold)
            hit, fp = match(quad_boxes(quads), quad_boxes(gt))
            found += int(hit.sum())
            total += len(gt)
            fps += fp
    net.train(was_training)
    return {"val_recall": found / max(1, total), "val_fp_per_image": fps / n}


# ----------------------------------------------------------------------------- training


def _freeze_stem(net: PlateNet) -> None:
    for p in net.stages[0].parameters():
        p.requires_grad_(False)


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: ProgressFn | None = None,
    log_every: int = 10,
) -> Path:
    """Train (or resume) a run; returns the checkpoint path.

    Parameters
    ----------
    cfg : TrainConfig
    resume : bool
        Continue from ``<out>/ckpt.pt``.  Its configuration wins, except ``steps``,
        ``threads`` and ``checkpoint_minutes``, which come from ``cfg``: a new ``steps``
        stretches or shortens the cosine schedule from the current step on.
    progress : callable, optional
        Called as ``progress(step, total_steps, metrics)`` every ``log_every`` steps
        and after each validation.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    ck: dict[str, Any] | None = None
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = TrainConfig.from_json(ck["config"])
        cfg = dataclasses.replace(
            saved,
            steps=cfg.steps,
            threads=cfg.threads,
            checkpoint_minutes=cfg.checkpoint_minutes,
            out=cfg.out,
        )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    (out / "config.json").write_text(json.dumps(cfg.to_json(), indent=1) + "\n")

    if ck is not None:
        net = build_model(pretrained=False, width=cfg.width)
        net.load_state_dict(ck["model"])
    elif cfg.init_weights:
        net, _ = load_checkpoint(cfg.init_weights)
    else:
        net = build_model(pretrained=cfg.pretrained, width=cfg.width)
    net = net.to(cfg.device)
    _freeze_stem(net)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    step = 0
    if ck is not None:
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["step"])
        log.info("resumed %s at step %d", ckpt_path, step)

    synth = make_synth(cfg)
    val_synth = make_synth(cfg, validation=True)
    replay: tuple[SceneSynth, list[int], float] | None = None
    mined = _hard(cfg).get("synthetic", {})
    if mined.get("indices") and cfg.p_replay > 0:
        replay = (
            # the stream the samples were mined from: no negatives, equal formats
            make_synth(
                dataclasses.replace(cfg, hard_negatives=None, vanity_weight=1.0),
                seed=int(mined["seed"]),
            ),
            [int(i) for i in mined["indices"]],
            cfg.p_replay,
        )
    net.train()
    net.stages[0].eval()  # frozen: keep its batch-norm statistics
    last_ckpt = time.monotonic()
    t0 = time.monotonic()
    running: dict[str, float] = {}
    logf = (out / "log.jsonl").open("a")

    def checkpoint(extra: dict[str, float] | None = None) -> None:
        state = {
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "step": step,
            "config": cfg.to_json(),
            "metrics": extra or {},
        }
        _save(ckpt_path, state)

    try:
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, cfg)
            imgs, heat, reg, wt = (
                t.to(cfg.device) for t in _batch(synth, step * cfg.batch, cfg.batch, replay=replay)
            )
            pred = net(imgs)
            parts = losses(pred, heat, reg, wt)
            opt.zero_grad(set_to_none=True)
            parts["total"].backward()
            nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            step += 1
            for k, v in parts.items():
                running[k] = running.get(k, 0.0) + float(v.detach())
            if step % log_every == 0 or step == cfg.steps:
                n = log_every if step % log_every == 0 else step % log_every
                metrics = {k: v / n for k, v in running.items()}
                metrics["lr"] = _lr_at(step - 1, cfg)
                metrics["s_per_step"] = (time.monotonic() - t0) / n
                t0 = time.monotonic()
                running = {}
                logf.write(json.dumps({"step": step, **metrics}) + "\n")
                logf.flush()
                if progress is not None:
                    progress(step, cfg.steps, metrics)
            if time.monotonic() - last_ckpt > 60 * cfg.checkpoint_minutes or step == cfg.steps:
                val = validate(net, val_synth)
                net.stages[0].eval()
                checkpoint(val)
                last_ckpt = time.monotonic()
                logf.write(json.dumps({"step": step, **val}) + "\n")
                logf.flush()
                if progress is not None:
                    progress(step, cfg.steps, val)
                t0 = time.monotonic()
    finally:
        logf.close()
    return ckpt_path


# ----------------------------------------------------------------------------- export


def export_onnx(
    ckpt: Path | str, to: Path | str, *, stem: str = "plate_det", card: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Export a checkpoint to ``<to>/<stem>.onnx`` plus a float16 weights file ``<stem>.pt``.

    The ONNX model takes ``image``: ``(1, 3, H, W)`` float32 RGB in ``[0, 255]`` (H, W
    multiples of 32) and returns ``maps``: ``(1, 11, H/4, W/4)`` (heatmap after the
    sigmoid, then the regression channels).  ``<stem>.pt`` holds the weights in float16
    and the training configuration: ``TrainConfig(init_weights=...)`` continues from it.
    A JSON card (``<stem>.json``) records the source checkpoint, step, configuration
    and whatever ``card`` adds.
    """
    import hashlib
    import warnings

    net, ck = load_checkpoint(ckpt)
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    onnx_path = to / f"{stem}.onnx"
    tmp = to / f"{stem}.tmp.onnx"
    example = torch.zeros(1, 3, 256, 320)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Exported(net).eval(),
            (example,),
            str(tmp),
            input_names=["image"],
            output_names=["maps"],
            dynamic_axes={"image": {2: "H", 3: "W"}, "maps": {2: "h", 3: "w"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, onnx_path)
    pt_path = to / f"{stem}.pt"
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    _save(pt_path, {"model": half, "config": ck.get("config", {}), "step": ck.get("step", 0)})
    info = {
        "format": {
            "input": "image: (1, 3, H, W) float32 RGB 0-255, H and W multiples of 32",
            "output": "maps: (1, 11, H/4, W/4): heatmap (sigmoid), log(w/32), log(h/32), "
            "4 corners (x/w, y/h) relative to the cell centre, clockwise from top-left",
            "stride": 4,
        },
        "training": {
            "step": int(ck.get("step", 0)),
            "config": ck.get("config", {}),
            "validation_at_checkpoint": ck.get("metrics", {}),
        },
        "files": {
            "onnx": {
                "name": onnx_path.name,
                "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
            },
            "weights": {
                "name": pt_path.name,
                "sha256": hashlib.sha256(pt_path.read_bytes()).hexdigest(),
            },
        },
        **(card or {}),
    }
    card_path = to / f"{stem}.json"
    card_path.write_text(json.dumps(info, indent=1) + "\n")
    return {"onnx": onnx_path, "weights": pt_path, "card": card_path}
