"""``pixveil attack attribution``: can a GAN-fingerprint classifier attribute protected images?

Registered on the ``pixveil attack`` group by :func:`register`.  Needs the
``[gan]`` extra (torch) and ``[eval]`` (matplotlib, scikit-image); the
``dcgan-baseline`` source needs ``gan-face-generate``.  Exit codes: 0 done;
1 the job failed; 2 bad usage or a missing optional dependency.
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


def attribution(
    real: Annotated[
        Path, typer.Option("--real", help="LFW-layout folder <identity>/<images> (real faces).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder.")] = Path(
        "attribution-report"
    ),
    work: Annotated[
        Path | None,
        typer.Option(
            "--work",
            help="Cache of trained generators, reused between runs (default: OUTPUT/work).",
        ),
    ] = None,
    sources: Annotated[
        str,
        typer.Option(
            "--sources",
            help="Comma-separated: real, pixveil-g64:seedN, dcgan-baseline, vae:seedN.",
        ),
    ] = "real,pixveil-g64:seed0,pixveil-g64:seed1,dcgan-baseline,vae:seed0",
    methods: Annotated[
        str, typer.Option("--methods", "-m", help="Protection methods, comma-separated.")
    ] = "pixelate,blur,dp-pix,dp-blur,metric-pix",
    strengths: Annotated[
        list[str] | None,
        typer.Option(
            "--strengths",
            help="METHOD:PARAM=V1,V2,... (repeatable), e.g. dp-pix:epsilon=1,5,20.",
        ),
    ] = None,
    n_train: Annotated[int, typer.Option("--n-train", help="Training images per source.")] = 200,
    n_test: Annotated[int, typer.Option("--n-test", help="Test images per source.")] = 100,
    gan_epochs: Annotated[
        int, typer.Option("--gan-epochs", help="Epochs of pixveil's DCGANs (when not cached).")
    ] = 1,
    vae_steps: Annotated[
        int, typer.Option("--vae-steps", help="Steps of the VAE (when not cached).")
    ] = 200,
    clf_epochs: Annotated[
        int, typer.Option("--clf-epochs", help="Classifier epochs on clean images.")
    ] = 10,
    finetune_epochs: Annotated[
        int, typer.Option("--finetune-epochs", help="Fine-tuning epochs on protected images.")
    ] = 1,
    width: Annotated[int, typer.Option("--width", help="Classifier width (channels).")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads (0 = default).")] = 1,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Attribute images to their source (real or one of several GANs) after protection.

    Trains (or reuses from --work) the generators, trains a fingerprint classifier
    on clean images, then for each method and strength measures its accuracy on
    protected test images, before and after fine-tuning on protected training
    images. Writes OUTPUT/index.html, results.csv, results.json, config.json and
    two PNG figures.
    """
    from pixveil.evaluate.spec import parse_list

    try:
        import torch  # noqa: F401
    except ImportError:
        _error(MissingDependencyError("torch", "gan"))
        raise typer.Exit(2) from None
    from pixveil.evaluate.attribution import AttributionConfig, parse_strengths, run_attribution
    from pixveil.evaluate.attribution_report import write_report

    try:
        cfg = AttributionConfig(
            real=real,
            work=work if work is not None else output / "work",
            sources=tuple(parse_list(sources)),
            methods=tuple(parse_list(methods)),
            strengths=parse_strengths(strengths or []),
            n_train=n_train,
            n_test=n_test,
            gan_epochs=gan_epochs,
            vae_steps=vae_steps,
            clf_epochs=clf_epochs,
            finetune_epochs=finetune_epochs,
            width=width,
            seed=seed,
            threads=threads,
            device=device,
        )
    except (ValueError, TypeError) as exc:
        _error(exc)
        raise typer.Exit(2) from None
    if not real.is_dir():
        _error(f"{real}: not a folder")
        raise typer.Exit(2)
    try:
        with ProgressBars(err, disable=quiet) as bars:
            result = run_attribution(cfg, progress=bars)
        written = write_report(result, output)
    except (MissingDependencyError, FileNotFoundError) as exc:
        _error(exc)
        raise typer.Exit(2) from None
    except PixveilError as exc:
        _error(exc)
        raise typer.Exit(1) from None
    table = Table(
        title=f"Attribution accuracy ({len(cfg.sources)} sources, chance {result.chance:.1%}, "
        f"clean {result.clean_accuracy:.1%})",
        title_justify="left",
    )
    for col in ("condition", "SSIM", "clean-trained", "fine-tuned"):
        table.add_column(col, justify="left" if col == "condition" else "right")
    for c in result.conditions:
        fine = "–" if c.acc_finetuned is None else f"{c.acc_finetuned:.1%}"
        table.add_row(escape(c.label), f"{c.ssim:.3f}", f"{c.acc_clean:.1%}", fine)
    out.print(table)
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    out.print(f"report: {escape(str(written['html']))}", soft_wrap=True)


def register(attack_app: typer.Typer) -> None:
    """Add ``attribution`` to the ``pixveil attack`` group."""
    attack_app.command("attribution")(attribution)
