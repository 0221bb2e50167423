"""``pixveil attack dataset``: Table I of privacy-preserving training data (accuracy, attack SSIM).

Registered on the ``pixveil attack`` group by :func:`register`.  Needs torch
(``[eval]`` extra) and scikit-image.  Exit codes: 0 done; 1 the job failed;
2 bad usage or a missing optional dependency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pixveil.cli_progress import ProgressBars
from pixveil.errors import MissingDependencyError, PixveilError

__all__ = ["register"]

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _error(message: object) -> None:
    err.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)


def dataset(
    data: Annotated[
        Path,
        typer.Option("--data", help="CIFAR-10 tarball (cifar10/{train,test}/<class>/*.jpg)."),
    ] = Path("../shared/data/cifar10.tar.gz"),
    schemes: Annotated[
        str,
        typer.Option(
            "--schemes",
            help="Comma-separated: plain, pixel-based, block-scramble, gan; a keyed scheme "
            "with ':per-image' (pixel-based:per-image) gets an independent key per image.",
        ),
    ] = "plain,pixel-based,block-scramble",
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="For the gan scheme: the `pixveil dataset train-transform` folder.",
            metavar="DIR",
        ),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder.")] = Path(
        "dataset-report"
    ),
    n_train: Annotated[
        int, typer.Option("--n-train", help="Classifier training images per class.")
    ] = 500,
    n_attack: Annotated[
        int, typer.Option("--n-attack", help="Attacker's plain/protected pairs per class.")
    ] = 200,
    n_test: Annotated[int, typer.Option("--n-test", help="Test images per class.")] = 100,
    clf_epochs: Annotated[int, typer.Option("--clf-epochs", help="Classifier epochs.")] = 10,
    attack_epochs: Annotated[
        int, typer.Option("--attack-epochs", help="Reconstruction attack epochs.")
    ] = 10,
    width: Annotated[int, typer.Option("--width", help="ResNet width (first stage).")] = 16,
    blocks: Annotated[
        int, typer.Option("--blocks", help="Basic blocks per stage (1: ResNet-8, 3: ResNet-20).")
    ] = 1,
    stages: Annotated[
        int,
        typer.Option(
            "--stages", help="ResNet stages (4 with --blocks 2 --width 64: ResNet-18, the paper's)."
        ),
    ] = 3,
    attacker_overlap: Annotated[
        bool,
        typer.Option(
            "--attacker-overlap",
            help="Attacker's images from the end of each training class, may overlap the "
            "classifier's (for --n-train 5000, the whole training set); never test images.",
        ),
    ] = False,
    block_size: Annotated[
        int, typer.Option("--block-size", help="Block size of block-scramble.")
    ] = 4,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads (0 = default).")] = 1,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    unpaired: Annotated[
        bool,
        typer.Option(
            "--unpaired/--no-unpaired",
            help="Also run the paper's unpaired GAN attack (GA SSIM column).",
        ),
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a classifier on protected CIFAR-10 and attack the protection (Table I layout).

    Per scheme: a ResNet trained from scratch on protected training images and
    tested on protected test images (same fresh key, or one per image with
    ':per-image'), U-Net reconstruction attacks trained on the attacker's own
    plain/protected pairs, and the paper's unpaired GAN attack (protected and
    plain halves of the attacker's images, never a pair), scored by SSIM on the
    test images. Writes OUTPUT/index.html, results.csv, results.json, config.json.
    """
    from pixveil.evaluate.spec import parse_list

    try:
        import torch  # noqa: F401
    except ImportError:
        _error(MissingDependencyError("torch", "eval"))
        raise typer.Exit(2) from None
    from pixveil.dataset.table1 import TableConfig, run_table, write_report

    try:
        cfg = TableConfig(
            data=data,
            schemes=tuple(parse_list(schemes)),
            n_train=n_train,
            n_attack=n_attack,
            n_test=n_test,
            clf_epochs=clf_epochs,
            attack_epochs=attack_epochs,
            width=width,
            blocks=blocks,
            stages=stages,
            block_size=block_size,
            seed=seed,
            threads=threads,
            device=device,
            gan_model=model,
            unpaired=unpaired,
            attacker_overlap=attacker_overlap,
        )
    except (ValueError, TypeError, PixveilError) as exc:
        _error(exc)
        raise typer.Exit(2) from None
    if not data.exists():
        _error(f"{data}: not found")
        raise typer.Exit(2)
    try:
        with ProgressBars(err, disable=quiet) as bars:
            result = run_table(cfg, progress=bars)
        written = write_report(result, output)
    except MissingDependencyError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    except (PixveilError, ValueError) as exc:
        _error(exc)
        raise typer.Exit(1) from None
    table = Table(
        title=f"Table I layout ({result.n_train} train, {result.n_attack} attacker, "
        f"{result.n_test} test images; {result.seconds:.0f} s)",
        title_justify="left",
    )
    cols = ("scheme", "GA SSIM", "attack SSIM", "U-Net SSIM", "SSIM protected", "accuracy")
    for col in (*cols, "plain acc."):
        table.add_column(col, justify="left" if col == "scheme" else "right")
    plain = result.plain_accuracy
    for r in result.rows:
        table.add_row(
            escape(r.scheme),
            "–" if r.ga_ssim is None else f"{r.ga_ssim:.3f}",
            f"{r.attack_ssim:.3f}",
            f"{r.unet_ssim:.3f}",
            f"{r.protected_ssim:.3f}",
            f"{r.accuracy:.1%}",
            "–" if plain is None else f"{plain:.1%}",
        )
    out.print(table)
    out.print(f"report: {escape(str(written['html']))}", soft_wrap=True)


def register(attack_app: typer.Typer) -> None:
    """Add ``dataset`` to the ``pixveil attack`` group."""
    attack_app.command("dataset")(dataset)
