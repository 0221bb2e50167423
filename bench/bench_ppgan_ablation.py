"""Why the GAN transform is not the hardest to reconstruct at CPU scale: an ablation table.

The reference paper (Sirichotedumrong & Kiya, Table I) reports the lowest GA SSIM
for its GAN transform; at our CPU scale it is not.  Each variant below is one
``pixveil dataset train-transform`` run from the *same* h_theta and preliminary
protection (the baseline's first two stages, copied), the same seed and the same
number of CycleGAN epochs, followed by one ``pixveil attack dataset --schemes gan``
run (classifier accuracy, the paired attackers and the paper's unpaired GA).  This
script prints the table from those folders; ``--commands`` prints the commands
that make them (each train-transform stage is minutes of CPU: run them in the
background, they resume)::

    python bench/bench_ppgan_ablation.py --commands           # what to run
    python bench/bench_ppgan_ablation.py --runs runs           # the table

Variants (folder suffix: what changes against the baseline ``ppgan``):

* ``-e5`` snapshots: every variant stopped after 5 CycleGAN epochs (the
  baseline's copy is taken from its running 15-epoch training), so all rows
  share the number of updates;
* ``ppgan`` (15 epochs): the default transform, i.e. the baseline trained 3x
  longer;
* ``ppgan-nocap``: ``--perceptual-margin inf``, the paper's uncapped loss;
* ``ppgan-imagenet``: ``--features imagenet``, phi from ImageNet weights
  (MobileNetV2) instead of h_theta, the nearest to the paper's VGG16.
* ``ppgan-imagenet-nocap``: both, the nearest we have to the paper's loss.
* ``ppgan-nocap`` and ``ppgan-imagenet-nocap`` (15 epochs): the uncapped variants
  trained as long as the default (resumed from their 5-epoch folders).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import table_head, table_row

#: suffix -> (label, extra train-transform options)
VARIANTS: dict[str, tuple[str, str]] = {
    "ppgan-e5": ("baseline (h_θ features, capped L_p), 5 epochs", ""),
    "ppgan-nocap-e5": ("cap off (`--perceptual-margin inf`), 5 epochs", "--perceptual-margin inf"),
    "ppgan-imagenet-e5": ("ImageNet φ (`--features imagenet`), 5 epochs", "--features imagenet"),
    "ppgan-imagenet-nocap-e5": (
        "ImageNet φ and cap off (the paper's loss), 5 epochs",
        "--features imagenet --perceptual-margin inf",
    ),
    "ppgan": ("baseline, 15 epochs (the default)", ""),
    "ppgan-nocap": ("cap off, 15 epochs", "--perceptual-margin inf"),
    "ppgan-imagenet-nocap": (
        "ImageNet φ and cap off, 15 epochs",
        "--features imagenet --perceptual-margin inf",
    ),
}

DATA = "../shared/data/cifar10.tar.gz"


def commands(runs: str) -> list[str]:
    out = [
        f"pixveil dataset train-transform --data {DATA} -o {runs}/ppgan/   # baseline, 15 epochs"
    ]
    for name in ("ppgan-nocap-e5", "ppgan-imagenet-e5", "ppgan-imagenet-nocap-e5"):
        extra = VARIANTS[name][1]
        out += [
            f"mkdir {runs}/{name} && cp {runs}/ppgan/classifier.pt {runs}/ppgan/preliminary.npz "
            f"{runs}/{name}/   # the baseline's h_theta and preliminary images",
            f"pixveil dataset train-transform --data {DATA} -o {runs}/{name}/ --epochs 5 {extra}",
        ]
    for name in ("ppgan-nocap", "ppgan-imagenet-nocap"):
        out.append(
            f"cp -r {runs}/{name}-e5 {runs}/{name} && pixveil dataset train-transform "
            f"--data {DATA} -o {runs}/{name}/ --epochs 15 {VARIANTS[name][1]}   # resumes"
        )
    out.append(
        f"# {runs}/ppgan-e5: a copy of {runs}/ppgan taken when its state.json says epochs_done 5 "
        f"(or the baseline trained with --epochs 5 into it: the same updates), then "
        f"`pixveil dataset train-transform --data {DATA} -o {runs}/ppgan-e5/ --epochs 5` exports it"
    )
    for name in VARIANTS:
        out.append(
            f"pixveil attack dataset --data {DATA} --schemes gan --model {runs}/{name}/ "
            f"-o {runs}/table1-{name}/"
        )
    return out


def row(runs: Path, name: str) -> list[object] | None:
    results = runs / f"table1-{name}" / "results.json"
    info = runs / name / "transform.json"
    if not results.is_file() or not info.is_file():
        return None
    doc = json.loads(results.read_text())
    gan = next(r for r in doc["rows"] if r["scheme"] == "gan")
    t = json.loads(info.read_text())
    margin = t.get("perceptual_margin_used")
    return [
        VARIANTS[name][0],
        t["epochs_done"],
        "–" if margin is None else ("∞" if margin == float("inf") else f"{margin:.3g}"),
        f"{gan['protected_ssim']:.3f}",
        "–" if gan["ga_ssim"] is None else f"{gan['ga_ssim']:.3f}",
        f"{gan['attack_ssim']:.3f}",
        f"{100 * gan['accuracy']:.1f} %",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="runs", help="folder holding the run folders")
    ap.add_argument("--commands", action="store_true", help="print the commands, not the table")
    args = ap.parse_args()
    if args.commands:
        print("\n".join(commands(args.runs)))
        return
    runs = Path(args.runs)
    lines = table_head(
        [
            "transform",
            "CycleGAN epochs",
            "L_p cap",
            "SSIM protected",
            "GA SSIM (unpaired)",
            "attack SSIM (paired)",
            "accuracy",
        ],
        right=5,
    )
    missing = []
    for name in VARIANTS:
        cells = row(runs, name)
        if cells is None:
            missing.append(name)
        else:
            lines.append(table_row(cells))
    print("\n".join(lines))
    if missing:
        print(f"\nnot measured yet: {', '.join(missing)}")


if __name__ == "__main__":
    main()
