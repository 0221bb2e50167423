"""Table I of the reference paper: per scheme, classification accuracy and attack SSIM.

``pixveil attack dataset`` runs this.  For each row (``plain`` = the identity,
a name of :data:`pixveil.dataset.SCHEMES`, or a keyed scheme's name followed by
``:per-image``), with one fresh key shared by every image, or with
``:per-image`` an independent fresh key per image, as ``pixveil dataset protect
--per-image-keys`` does (keys from :func:`pixveil.dataset.keys.new_key`,
discarded after the run):

1. **Classification** (the model owner): a ResNet trained from scratch on the
   protected training subset, tested on the protected test subset
   (:func:`pixveil.dataset.classify.train_classifier`; ``block-scramble`` gets
   Tanaka's adaptation network).
2. **Reconstruction attack** (the adversary): the U-Net of
   :func:`pixveil.evaluate.attacks.reconstruction_attack`, trained on plain /
   protected pairs of *other* training images (the attacker's own split,
   disjoint from both the classifier's training images and the test images),
   applied to the protected test images; the score is the mean SSIM between
   the originals and the reconstructions (:func:`pixveil.evaluate.metrics.ssim`).
3. **The paper's GA** (``unpaired=True``, the default):
   :func:`pixveil.evaluate.attacks.unpaired_reconstruction_attack` on the same
   attacker's split divided into two halves T1 and T2 (alternate images, so
   both hold every class): trained on the protected T1 and the plain T2,
   never a pair, against a discriminator (the paper's §II-B); column ``ga_ssim``.

The paired attackers have pairs protected with the same key as the targets (a
known-plaintext setting; with ``:per-image`` every pair has its own key, so
they learn the scheme, not a key), and are supervised (L1 + SSIM loss).
Two paired attackers per scheme: ``unet_ssim``, the plain U-Net, which knows nothing of
the scheme; and ``attack_ssim``, the scheme-aware one (the scheme is public,
Kerckhoffs): against ``block-scramble`` the U-Net gets the same block-wise
adaptation network in front as the classifier, against ``pixel-based`` a
per-pixel affine colour map (which can represent a shared key's flips and
channel orders exactly); for ``plain`` and ``gan`` both are the same (the paper's
attacker against its GAN transform is a plain U-Net too).  ``gan`` has no key:
its attacker's pairs are made with the same trained transform (it holds the
model, or a service that applies it), the known-plaintext setting again.

CIFAR-10 subsets are deterministic (smallest file names first): by default 500
training images per class for the classifier, the next 200 per class for the
attacker, and 100 test images per class.
"""

from __future__ import annotations

import html
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.dataset.data import LabeledImages, load_cifar10
from pixveil.dataset.keys import new_key
from pixveil.dataset.schemes import get_scheme
from pixveil.progress import ProgressCallback, ProgressEvent

__all__ = [
    "PER_IMAGE",
    "PLAIN",
    "SchemeRow",
    "TableConfig",
    "TableResult",
    "protect_images",
    "render_html",
    "run_table",
    "write_report",
]

#: The identity "scheme": plain images.
PLAIN = "plain"
#: Suffix of a row name whose images each get their own key (``pixel-based:per-image``).
PER_IMAGE = ":per-image"


def split_row(name: str) -> tuple[str, bool]:
    """A row name as (scheme name, per-image keys)."""
    if name.endswith(PER_IMAGE):
        return name[: -len(PER_IMAGE)], True
    return name, False


@dataclass(frozen=True)
class TableConfig:
    """Options of :func:`run_table` (the CPU defaults; the paper's scale is far larger)."""

    data: Path
    schemes: tuple[str, ...] = (PLAIN, "pixel-based", "block-scramble")
    n_train: int = 500
    n_attack: int = 200
    n_test: int = 100
    clf_epochs: int = 10
    attack_epochs: int = 10
    width: int = 16
    blocks: int = 1
    #: ResNet stages (``stages=4, blocks=2, width=64``: ResNet-18)
    stages: int = 3
    block_size: int = 4
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    #: the ``train-transform`` folder (or ``.onnx``) of the ``gan`` scheme
    gan_model: Path | None = None
    #: also run the paper's unpaired GA (column ``ga_ssim``)
    unpaired: bool = True
    #: take the attacker's images from the *end* of each class of the training
    #: split, which may overlap the classifier's (needed for ``n_train=5000``, the
    #: whole training set); never the test images
    attacker_overlap: bool = False

    def __post_init__(self) -> None:
        if not self.schemes:
            raise ValueError("give at least one scheme")
        if len(set(self.schemes)) != len(self.schemes):
            raise ValueError(f"a scheme is given twice: {', '.join(self.schemes)}")
        for name in self.schemes:
            base, per_image = split_row(name)
            if base == PLAIN:
                if per_image:
                    raise ValueError("plain images take no key: no 'plain:per-image'")
                continue
            scheme = self.scheme(name)  # unknown names and bad parameters fail here
            if per_image and not scheme.keyed:
                raise ValueError(f"scheme {base} takes no key: no '{name}'")
        for opt in (
            "n_train",
            "n_attack",
            "n_test",
            "clf_epochs",
            "attack_epochs",
            "block_size",
            "stages",
        ):
            value = getattr(self, opt)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{opt} must be a positive integer, got {value!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")

    def scheme(self, name: str) -> Any:
        """The scheme of row ``name`` (``:per-image`` ignored)."""
        name, _ = split_row(name)
        params: dict[str, Any] = {}
        if name == "block-scramble":
            params = {"block_size": self.block_size}
        elif name == "gan":
            if self.gan_model is None:
                raise ValueError("scheme gan needs the trained transform (--model DIR)")
            params = {"model": self.gan_model}
        return get_scheme(name, **params)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"] = str(self.data)
        d["gan_model"] = None if self.gan_model is None else str(self.gan_model)
        return d


@dataclass(frozen=True)
class SchemeRow:
    """One row of Table I."""

    scheme: str
    accuracy: float
    train_accuracy: float
    attack_ssim: float
    unet_ssim: float
    protected_ssim: float
    classifier_seconds: float
    attack_seconds: float
    #: the paper's unpaired GA (None when not run)
    ga_ssim: float | None = None
    ga_seconds: float | None = None


@dataclass
class TableResult:
    """What :func:`run_table` measured."""

    config: TableConfig
    rows: list[SchemeRow]
    n_train: int
    n_attack: int
    n_test: int
    seconds: float
    #: scheme -> (original, protected, reconstructed) of the first test images
    examples: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def plain_accuracy(self) -> float | None:
        return next((r.accuracy for r in self.rows if r.scheme == PLAIN), None)

    def table_rows(self) -> list[dict[str, Any]]:
        plain = self.plain_accuracy
        return [
            {
                "scheme": r.scheme,
                "ga_ssim": r.ga_ssim,
                "attack_ssim": r.attack_ssim,
                "unet_ssim": r.unet_ssim,
                "protected_ssim": r.protected_ssim,
                "accuracy": r.accuracy,
                "plain_accuracy": plain,
                "train_accuracy": r.train_accuracy,
                "classifier_seconds": r.classifier_seconds,
                "attack_seconds": r.attack_seconds,
                "ga_seconds": r.ga_seconds,
            }
            for r in self.rows
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "n_train": self.n_train,
            "n_attack": self.n_attack,
            "n_test": self.n_test,
            "seconds": self.seconds,
            "plain_accuracy": self.plain_accuracy,
            "rows": self.table_rows(),
        }


def protect_images(
    images: np.ndarray, scheme: Any, key: bytes | None, *, per_image: bool = False
) -> np.ndarray:
    """Every image of an (N, H, W, 3) batch protected with ``scheme`` and one shared ``key``.

    With ``per_image=True`` (``key`` is then ignored) every image gets its own
    fresh key from :func:`~pixveil.dataset.keys.new_key`, dropped at once.
    """
    if scheme is None:
        return images.copy()
    if per_image:
        return np.stack([scheme.encrypt(im, new_key()) for im in images])
    return np.asarray(scheme.encrypt_batch(images, key))


def _split(data: LabeledImages, first: int) -> tuple[LabeledImages, LabeledImages]:
    """The first ``first`` images of each class, and the rest."""
    seen: dict[int, int] = {}
    head = np.zeros(len(data), bool)
    for i, label in enumerate(data.labels):
        head[i] = seen.get(int(label), 0) < first
        seen[int(label)] = seen.get(int(label), 0) + 1

    def take(mask: np.ndarray) -> LabeledImages:
        ids = tuple(i for i, m in zip(data.ids, mask, strict=True) if m)
        return LabeledImages(data.images[mask], data.labels[mask], data.classes, ids)

    return take(head), take(~head)


def _reverse(data: LabeledImages) -> LabeledImages:
    return LabeledImages(data.images[::-1], data.labels[::-1], data.classes, data.ids[::-1])


def run_table(
    config: TableConfig,
    *,
    train: LabeledImages | None = None,
    test: LabeledImages | None = None,
    progress: ProgressCallback | None = None,
) -> TableResult:
    """Measure every scheme of ``config`` (see the module notes).

    ``train`` (classifier's and attacker's images, ``n_train + n_attack`` per
    class) and ``test`` may be given instead of reading ``config.data``.
    """
    from pixveil.dataset.classify import train_classifier
    from pixveil.evaluate.attacks import reconstruction_attack, unpaired_reconstruction_attack
    from pixveil.evaluate.attacks._common import import_torch

    torch = import_torch()
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    start = time.perf_counter()
    try:
        if train is None:
            limit = None if config.attacker_overlap else config.n_train + config.n_attack
            train = load_cifar10(config.data, split="train", limit_per_class=limit)
        if test is None:
            test = load_cifar10(config.data, split="test", limit_per_class=config.n_test)
        if config.attacker_overlap:
            clf, _ = _split(train, config.n_train)
            attacker, _ = _split(_reverse(train), config.n_attack)
        else:
            clf, attacker = _split(train, config.n_train)
        if len(attacker) == 0:
            raise ValueError("no image left for the attacker's split (raise n_attack or the data)")
        rows: list[SchemeRow] = []
        examples: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        total = len(config.schemes)
        for k, name in enumerate(config.schemes):
            if progress is not None:
                progress(ProgressEvent("table", k, total, f"{name}: protecting"))
            base, per_image = split_row(name)
            scheme = None if base == PLAIN else config.scheme(name)
            key = new_key()
            x_clf = protect_images(clf.images, scheme, key, per_image=per_image)
            x_att = protect_images(attacker.images, scheme, key, per_image=per_image)
            x_test = protect_images(test.images, scheme, key, per_image=per_image)
            del key
            result = train_classifier(
                x_clf,
                clf.labels,
                x_test,
                test.labels,
                n_classes=len(train.classes),
                adaptation_block=config.block_size if base == "block-scramble" else None,
                epochs=config.clf_epochs,
                width=config.width,
                blocks=config.blocks,
                stages=config.stages,
                seed=config.seed,
                device=config.device,
                progress=progress,
            )
            common: dict[str, Any] = {
                "epochs": config.attack_epochs,
                "image_size": test.images.shape[1],
                "seed": config.seed,
                "batch_size": 32,
                "flip": False,
                "progress": progress,
            }
            pairs = (attacker.images, x_att, test.images, x_test)
            # the scheme-aware front (the paper's Fig. 4(a)/(b) for its GA)
            block = config.block_size if base == "block-scramble" else None
            affine = base == "pixel-based"
            unet = reconstruction_attack(*pairs, **common)
            attack = unet
            if block is not None or affine:
                attack = reconstruction_attack(
                    *pairs, block_size=block, pixel_affine=affine, **common
                )
            ga = None
            if config.unpaired:
                # T1 (protected) and T2 (plain): alternate images of the attacker's
                # split, every class in both; never an image with its own original
                ga = unpaired_reconstruction_attack(
                    x_att[0::2],
                    attacker.images[1::2],
                    test.images,
                    x_test,
                    epochs=config.attack_epochs,
                    image_size=test.images.shape[1],
                    seed=config.seed,
                    batch_size=32,
                    block_size=block,
                    pixel_affine=affine,
                    progress=progress,
                )
            rows.append(
                SchemeRow(
                    scheme=name,
                    accuracy=result.accuracy,
                    train_accuracy=result.train_accuracy,
                    attack_ssim=attack.ssim_reconstructed,
                    unet_ssim=unet.ssim_reconstructed,
                    protected_ssim=attack.ssim_protected,
                    classifier_seconds=result.train_seconds,
                    attack_seconds=unet.train_seconds
                    + (attack.train_seconds if attack is not unet else 0.0),
                    ga_ssim=None if ga is None else ga.ssim_reconstructed,
                    ga_seconds=None if ga is None else ga.train_seconds,
                )
            )
            examples[name] = (test.images[:8], x_test[:8], attack.reconstructions[:8])
            if progress is not None:
                progress(
                    ProgressEvent(
                        "table",
                        k + 1,
                        total,
                        f"{name}: accuracy {result.accuracy:.1%}, "
                        f"attack SSIM {attack.ssim_reconstructed:.3f}"
                        + ("" if ga is None else f", GA SSIM {ga.ssim_reconstructed:.3f}"),
                    )
                )
    finally:
        torch.set_num_threads(old_threads)
    return TableResult(
        config=config,
        rows=rows,
        n_train=len(clf),
        n_attack=len(attacker),
        n_test=len(test),
        seconds=time.perf_counter() - start,
        examples=examples,
    )


def environment() -> dict[str, Any]:
    """CPUs and load, for the report."""
    try:
        load: list[float] | None = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {"cpus": os.cpu_count(), "load_average": load}


#: The paper's Table I (CIFAR-10 accuracy with ResNet-18, 200 epochs; GA SSIM on
#: STL-10): scheme -> (GA SSIM, accuracy), for the report's comparison column.
PAPER_TABLE_I: dict[str, tuple[float | None, float]] = {
    PLAIN: (None, 0.9505),
    "pixel-based": (0.2688, 0.9129),
    "pixel-based" + PER_IMAGE: (0.1527, 0.9114),
    "block-scramble": (0.7152, 0.8896),
    "gan": (0.0956, 0.9073),
}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def render_html(result: TableResult, env: dict[str, Any]) -> str:
    """The report page (self-contained; example images embedded as PNG)."""
    from pixveil.evaluate.report import _img_tag, format_value

    cfg = result.config
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = env.get("load_average")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>pixveil privacy-preserving training data</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:right}.l{text-align:left}img{image-rendering:pixelated}</style>",
        "</head><body>",
        "<h1>Privacy-preserving training data (Table I layout)</h1>",
        f"<p>{created} · {env.get('cpus')} CPUs"
        + (f", load average {load[0]:.1f}" if load else "")
        + f" · run time {result.seconds:.0f} s</p>",
        f"<p>CIFAR-10 subset: {result.n_train} training images for the classifier, "
        f"{result.n_attack} for the attacker (disjoint), {result.n_test} test images. "
        f"Classifier: ResNet (width {cfg.width}, {cfg.blocks} block(s) per stage), "
        f"{cfg.clf_epochs} epochs, trained from scratch on the protected training images and "
        f"tested on protected test images with the same key. Attack: U-Net trained on "
        f"{result.n_attack} plain/protected pairs for {cfg.attack_epochs} epochs; SSIM between "
        "original and reconstruction on the test images (higher = more recovered). "
        "<i>attack SSIM</i>: the scheme-aware attacker (a block-wise adaptation network "
        "against block-scramble, a per-pixel affine colour map against pixel-based); "
        "<i>U-Net SSIM</i>: the plain U-Net. "
        "<i>GA SSIM</i>: the reference paper's unpaired GAN attack (a U-Net, with the same "
        "scheme-aware front, trained against a discriminator on the protected half of the "
        "attacker's images and the plain other half, never a pair). "
        "One fresh shared key per scheme (<i>:per-image</i>: an independent fresh key per "
        "image), discarded after the run.</p>",
        "<h2>Table</h2><table><tr><th class='l'>scheme</th><th>GA SSIM (unpaired)</th>"
        "<th>attack SSIM</th>"
        "<th>U-Net SSIM</th><th>SSIM protected</th><th>accuracy</th><th>plain accuracy</th>"
        "<th>paper GA SSIM</th><th>paper accuracy</th></tr>",
    ]
    for row in result.table_rows():
        paper = PAPER_TABLE_I.get(row["scheme"], (None, None))
        parts.append(
            f"<tr><td class='l'>{html.escape(row['scheme'])}</td>"
            f"<td>{format_value(row['ga_ssim'])}</td>"
            f"<td>{format_value(row['attack_ssim'])}</td>"
            f"<td>{format_value(row['unet_ssim'])}</td>"
            f"<td>{format_value(row['protected_ssim'])}</td>"
            f"<td>{_pct(row['accuracy'])}</td><td>{_pct(row['plain_accuracy'])}</td>"
            f"<td>{format_value(paper[0])}</td><td>{_pct(paper[1])}</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        "<p>The paper's figures: ResNet-18, 200 epochs on the full lossless CIFAR-10; GA SSIM "
        "on STL-10 with a GAN-trained U-Net. Ours: a small ResNet, a few epochs, a JPEG copy "
        "of CIFAR-10 and a subset: compare the ordering, not the values.</p>"
    )
    parts.append("<h2>Examples</h2><p>Per scheme: original, protected, reconstructed.</p>")
    parts.append("<table>")
    for name, (orig, prot, rec) in result.examples.items():
        for label, imgs in (("original", orig), ("protected", prot), ("reconstructed", rec)):
            cells = "".join(
                f"<td>{_img_tag(im, alt=f'{name} {label}', width=64)}</td>" for im in imgs
            )
            parts.append(f"<tr><td class='l'>{html.escape(name)}: {label}</td>{cells}</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(result: TableResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json``, ``config.json`` and ``index.html``.

    Raises
    ------
    OutputError
        If the folder or a file cannot be written.
    """
    from pixveil.evaluate.report import ReportFolder, csv_bytes, json_bytes

    folder = ReportFolder(out_dir)
    env = environment()
    folder.write("csv", "results.csv", csv_bytes(result.table_rows()))
    folder.write("json", "results.json", json_bytes(result.to_dict()))
    folder.write(
        "config", "config.json", json_bytes({"config": result.config.to_dict(), "environment": env})
    )
    folder.write("html", "index.html", render_html(result, env).encode("utf-8"))
    return folder.written
