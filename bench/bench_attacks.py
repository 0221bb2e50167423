"""Attacks on protected faces: a trained CNN re-identifier and a U-Net reconstructor.

For each protection setting, every face crop of the data set is protected (the
whole crop is the face region: ``shape="box"``, ``margin=1.0``), then

* **CNN re-identification** (McPherson et al. 2016): a classifier is trained
  on the protected *training photos* of every identity and names the
  identity of the protected *test photos* (top-1 / top-5, against chance);
* **reconstruction**: a U-Net trained on (protected, original) training pairs
  reconstructs the protected test faces; the table gives the mean SSIM of the
  protected face and of its reconstruction against the original.

Data
----
* ``att``: AT&T faces (40 subjects x 10 photos, 92x112 grey, tightly cropped:
  the whole image is the face).  Per subject, a seeded choice of
  ``--train-per-identity`` photos (default 6) trains both attacks, the other
  photos (4) are the targets.
* ``lfw``: ``--identities`` LFW identities (seeded choice) among those with at
  least ``--photos-per-identity`` photos (default 10), their first photos; the face is the known centred box
  ``(65, 65, 185, 185)`` of the 250x250 deep-funneled images (no detector, so
  every photo is used and protected at the same place), split as above.

Randomised methods (``dp-pix``, ``dp-blur``) use a seeded generator here so
that the table can be reproduced; real use draws cryptographic noise.

Examples
--------
    python bench/bench_attacks.py --dataset att --out /tmp/attacks.md
    python bench/bench_attacks.py --dataset att --methods pixelate,dp-pix \\
        --epsilons 0.1,1 --epochs 30 --recon-epochs 15
    python bench/bench_attacks.py --dataset lfw --identities 40 --methods none,pixelate,blur

Needs ``pip install 'pixveil[eval]'`` (torch) and ``../shared/data`` (or ``--data``).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import SHARED_DATA, params_label, table_head
from pixveil.evaluate import Setting
from pixveil.evaluate.attacks import (
    DEFAULT_RECONSTRUCTION_EPOCHS,
    DEFAULT_REID_EPOCHS,
    cnn_reid_attack,
    reconstruction_attack,
)
from pixveil.evaluate.datasets import FaceDataset, load_dataset
from pixveil.protect import available_methods, get_method
from pixveil.types import Region

LFW_BOX = (65, 65, 185, 185)
ALL_METHODS = ("none", "blur", "pixelate", "mask", "dp-pix", "dp-blur")


@dataclass
class Split:
    """Face crops (N, H, W, 3) uint8 with identity labels, split into training and target photos."""

    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    description: str


def _split(
    faces: list[list[np.ndarray]], names: list[str], n_train: int, seed: int, what: str
) -> Split:
    """A seeded choice of ``n_train`` training photos per identity; the others are targets.

    (The evaluation harness holds out each identity's last ~20 % instead; this
    bench keeps its own split so that its figures stay comparable.)
    """
    rng = np.random.default_rng(seed)
    tr, trl, te, tel = [], [], [], []
    for label, photos in enumerate(faces):
        order = rng.permutation(len(photos))
        if len(photos) <= n_train:
            raise SystemExit(f"{names[label]} has {len(photos)} photos, need > {n_train}")
        for j, i in enumerate(order):
            if j < n_train:
                tr.append(photos[i])
                trl.append(label)
            else:
                te.append(photos[i])
                tel.append(label)
    return Split(
        np.stack(tr),
        np.asarray(trl),
        np.stack(te),
        np.asarray(tel),
        f"{what}: {len(faces)} identities, {len(tr)} training / {len(te)} target photos "
        f"({n_train} training photos per identity, split seed {seed})",
    )


def _by_identity(dataset: FaceDataset) -> dict[str, list[int]]:
    """The item indices of each identity, in the data set's order."""
    groups: dict[str, list[int]] = {}
    for i, identity in enumerate(dataset.labels):
        groups.setdefault(str(identity), []).append(i)
    return groups


def load_att(root: Path, n_train: int, seed: int) -> Split:
    dataset = load_dataset(root, layout="identities")  # s1..s40, photos 1..10
    groups = _by_identity(dataset)
    faces = [[dataset.load(i) for i in items] for items in groups.values()]
    return _split(faces, list(groups), n_train, seed, "AT&T, whole 92x112 image as the face")


def load_lfw(root: Path, identities: int, photos: int, n_train: int, seed: int) -> Split:
    dataset = load_dataset(root, layout="identities")  # every photo, in file order
    groups = _by_identity(dataset)
    eligible = sorted(name for name, items in groups.items() if len(items) >= photos)
    if len(eligible) < identities:
        raise SystemExit(f"only {len(eligible)} LFW identities with >= {photos} photos")
    chosen = sorted(np.random.default_rng(seed).choice(eligible, identities, replace=False))
    x0, y0, x1, y1 = LFW_BOX
    faces = [
        [dataset.load(i)[y0:y1, x0:x1].copy() for i in groups[name][:photos]] for name in chosen
    ]
    return _split(
        faces,
        list(chosen),
        n_train,
        seed,
        f"LFW, centred box {LFW_BOX} as the face (first {photos} photos of identities "
        f"with >= {photos})",
    )


def settings(
    methods: list[str], epsilons: list[float], dp_m: int, dp_block_size: int
) -> list[Setting]:
    out: list[Setting] = []
    for name in methods:
        if name == "pixelate":
            out += [Setting("pixelate"), Setting("pixelate", {"block_size": 16}, "block_size", 16)]
        elif name in ("dp-pix", "dp-blur"):
            out += [
                Setting(name, {"epsilon": e, "m": dp_m, "block_size": dp_block_size}, "epsilon", e)
                for e in epsilons
            ]
            out.append(Setting(name))  # pixveil's defaults (epsilon 1, m 16, 8 blocks)
        else:
            out.append(Setting(name))
    return out


def protector(setting: Setting, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function protecting a batch of crops, each crop entirely (box shape, no margin)."""
    if setting.is_baseline:
        return lambda batch: batch.copy()
    method = get_method(setting.method, shape="box", margin=1.0, **setting.params)
    rng = np.random.default_rng(seed) if method.randomized else None

    def run(batch: np.ndarray) -> np.ndarray:
        h, w = batch.shape[1:3]
        region = [Region((0.0, 0.0, float(w), float(h)), "face")]
        return np.stack([method.apply(img, region, rng=rng) for img in batch])

    return run


def _fmt_psnr(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("att", "lfw"), default="att")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument(
        "--methods",
        default=",".join(ALL_METHODS),
        help=f"comma-separated, from {', '.join(ALL_METHODS)} (default: all)",
    )
    parser.add_argument("--epsilons", default="0.1,0.5,1,5", help="epsilons of dp-pix and dp-blur")
    parser.add_argument(
        "--dp-m",
        type=int,
        default=1,
        help="m of dp-pix and dp-blur in the epsilon sweep (a row with pixveil's defaults "
        "follows it)",
    )
    parser.add_argument(
        "--dp-block-size", type=int, default=16, help="cell side (pixels) of dp-pix and dp-blur"
    )
    parser.add_argument("--epochs", type=int, default=DEFAULT_REID_EPOCHS, help="CNN epochs")
    parser.add_argument(
        "--recon-epochs",
        type=int,
        default=10,
        help="reconstruction epochs (0: skip the reconstruction attack); default 10, half "
        f"the library's {DEFAULT_RECONSTRUCTION_EPOCHS}, to keep a full run near 10 minutes",
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--identities", type=int, default=40, help="LFW identities")
    parser.add_argument(
        "--photos-per-identity",
        type=int,
        default=10,
        help="LFW: photos used per identity (identities with fewer are not eligible)",
    )
    parser.add_argument("--train-per-identity", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="split, DP noise and training")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("-v", "--verbose", action="store_true", help="per-epoch progress")
    args = parser.parse_args(argv)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = set(ALL_METHODS) | set(available_methods())
    for m in methods:
        if m not in known:
            parser.error(f"unknown method {m!r}; choose from {sorted(known)}")
    epsilons = [float(e) for e in args.epsilons.split(",") if e.strip()]
    grid = settings(methods, epsilons, args.dp_m, args.dp_block_size)
    for s in grid:  # validate every setting before the long part
        protector(s, args.seed)

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.dataset == "att":
        root = args.data / "att_faces"
        if not root.is_dir():
            print(f"AT&T faces not found at {root}", file=sys.stderr)
            return 2
        split = load_att(root, args.train_per_identity, args.seed)
    else:
        root = args.data / "lfw"
        if not root.is_dir():
            print(f"LFW not found at {root}", file=sys.stderr)
            return 2
        split = load_lfw(
            root, args.identities, args.photos_per_identity, args.train_per_identity, args.seed
        )

    progress = (
        (lambda event: print(event.message, file=sys.stderr, flush=True)) if args.verbose else None
    )
    t_all = time.perf_counter()
    lines = [
        f"# `python bench/bench_attacks.py {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        f"# {split.description}",
        f"# input {args.image_size}x{args.image_size}, CNN {args.epochs} epochs, "
        f"reconstruction {args.recon_epochs} epochs, torch threads {torch.get_num_threads()}",
        "",
        *table_head(
            [
                "method", "params", "CNN top-1", "CNN top-5", "chance top-1 / top-5",
                "SSIM protected", "SSIM reconstructed", "PSNR protected", "PSNR reconstructed",
                "seconds",
            ]
        ),
    ]  # fmt: skip
    print("\n".join(lines), flush=True)
    for setting in grid:
        t0 = time.perf_counter()
        protect = protector(setting, args.seed)
        train_p, test_p = protect(split.train), protect(split.test)
        reid = cnn_reid_attack(
            train_p,
            split.train_labels,
            test_p,
            split.test_labels,
            epochs=args.epochs,
            image_size=args.image_size,
            seed=args.seed,
            progress=progress,
        )
        if args.recon_epochs > 0:
            rec = reconstruction_attack(
                split.train,
                train_p,
                split.test,
                test_p,
                epochs=args.recon_epochs,
                image_size=args.image_size,
                seed=args.seed,
                progress=progress,
            )
            recon = (
                f"{rec.ssim_protected:.3f} | {rec.ssim_reconstructed:.3f} | "
                f"{_fmt_psnr(rec.psnr_protected)} | {_fmt_psnr(rec.psnr_reconstructed)}"
            )
        else:
            recon = "- | - | - | -"
        label = params_label(setting.params)
        line = (
            f"| {setting.method} | {label} | {reid.top1:.1%} | {reid.top5:.1%} | "
            f"{reid.chance_top1:.1%} / {reid.chance_top5:.1%} | {recon} | "
            f"{time.perf_counter() - t0:.0f} |"
        )
        lines.append(line)
        print(line, flush=True)
    footer = f"# total {time.perf_counter() - t_all:.0f} s"
    lines.append(footer)
    print(footer)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
