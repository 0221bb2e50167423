"""``pixveil gan``: train, export and sample the face GAN behind ``gan-face``.

Training and export need the ``[gan]`` extra (torch); ``sample`` runs on the
exported ONNX model only.  Training reports its progress through a callback
(:mod:`pixveil.progress`), shown here as one bar per epoch and one for the
encoder.  Exit codes: 0 done; 1 the job failed; 2 bad usage or a missing
optional dependency.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape

from pixveil.cli_progress import ProgressBars
from pixveil.errors import MissingDependencyError, PixveilError

__all__ = ["app"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train (resumable), export to ONNX and sample the face GAN used by gan-face.",
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _error(message: object) -> None:
    """One error line; the message (paths, user data) is never read as markup."""
    err.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("torch", "gan") from exc


def _torch_or_exit() -> None:
    """Exit with status 2 and a one-line error when the ``[gan]`` extra is missing."""
    try:
        _need_torch()
    except MissingDependencyError as exc:
        _error(exc)
        raise typer.Exit(2) from exc


def _training_bars(quiet: bool) -> ProgressBars:
    """One bar per GAN epoch and one for the encoder, with the latest losses."""
    return ProgressBars(
        err,
        disable=quiet,
        key=lambda e: f"{e.stage}:{e.message}",  # a new epoch is a new bar
        label=lambda e: e.message,
        detail=lambda e: " ".join(f"{k}={v:.3f}" for k, v in e.metrics.items()),
    )


@app.command()
def train(
    data: Annotated[
        Path, typer.Option("--data", help="Folder of <identity>/<images> (LFW layout).")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder (checkpoints, samples, log).")
    ],
    size: Annotated[int, typer.Option("--size", help="Image size (64).")] = 64,
    epochs: Annotated[int, typer.Option("--epochs", help="GAN epochs.")] = 22,
    encoder_steps: Annotated[
        int, typer.Option("--encoder-steps", help="Encoder steps after the GAN.")
    ] = 1200,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 64,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads (0 = default).")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train the DCGAN and its encoder; run the same command again to resume.

    Identities held out by pixveil.gan.data.is_held_out are never used.
    """
    try:
        _need_torch()
        if size != 64:
            raise typer.BadParameter("only --size 64 is implemented", param_hint="--size")
        from pixveil.gan.train import TrainConfig
        from pixveil.gan.train import train as run_train

        cfg = TrainConfig(
            data=str(data),
            out=str(out_dir),
            size=size,
            epochs=epochs,
            encoder_steps=encoder_steps,
            batch=batch,
            threads=threads,
            device=device,
            seed=seed,
        )
        with _training_bars(quiet) as bars:
            ckpt = run_train(cfg, progress=bars)
    except MissingDependencyError as exc:
        _error(exc)
        raise typer.Exit(2) from exc
    except FileNotFoundError as exc:
        _error(exc)
        raise typer.Exit(2) from exc
    out.print(f"checkpoint: {ckpt}; samples in {out_dir / 'samples'}", markup=False)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Training run folder (with ckpt.pt).")],
    to: Annotated[Path, typer.Option("--to", help="Folder for the ONNX files and model card.")],
) -> None:
    """Export generator, encoder and critic to ONNX (float16 storage) with a JSON card."""
    try:
        _need_torch()
        if not (run / "ckpt.pt").is_file():
            _error(f"{run}: no ckpt.pt (train first)")
            raise typer.Exit(2)
        from pixveil.gan.export import export as run_export

        card = run_export(run, to)
    except MissingDependencyError as exc:
        _error(exc)
        raise typer.Exit(2) from exc
    total = sum(p.stat().st_size for p in to.glob("gan_face_*"))
    out.print(f"wrote {card} ({total / 1e6:.1f} MB in all)", markup=False)


@app.command()
def sample(
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG grid to write.")],
    n: Annotated[int, typer.Option("-n", help="Number of faces.")] = 64,
    model: Annotated[
        Path | None, typer.Option("--model", help="Exported model folder (default: shipped).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write a grid of random faces from an exported model (no torch needed)."""
    from PIL import Image

    from pixveil.gan.runtime import load_face_gan

    if not 1 <= n <= 1024:
        _error("-n must be in [1, 1024]")
        raise typer.Exit(2)
    try:
        gan = load_face_gan(str(model) if model else None)
    except PixveilError as exc:
        _error(exc)
        raise typer.Exit(2) from exc
    z = np.random.default_rng(seed).standard_normal((n, gan.nz)).astype(np.float32)
    faces = gan.generate(z)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    s = gan.size
    grid = np.full((rows * (s + 2) + 2, cols * (s + 2) + 2, 3), 255, np.uint8)
    for i, f in enumerate(faces):
        r, c = divmod(i, cols)
        grid[2 + r * (s + 2) : 2 + r * (s + 2) + s, 2 + c * (s + 2) : 2 + c * (s + 2) + s] = f
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(output)
    out.print(f"wrote {output}", markup=False)


@app.command()
def pack(
    data: Annotated[
        Path, typer.Option("--data", help="Folder of <identity>/<images> (LFW layout).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .npz pack to write.")],
    per_identity: Annotated[
        int, typer.Option("--per-identity", help="At most this many photos per identity.")
    ] = 6,
    quality: Annotated[int, typer.Option("--quality", help="JPEG quality of the crops.")] = 88,
) -> None:
    """Build the conditional generator's training pack (context crops, landmarks, face ellipses).

    Every photo of the training identities goes through pixveil's face detector, as at
    run time; held-out identities (pixveil.gan.data.is_held_out) are never packed.
    """
    from pixveil.gan.cond_pack import build_pack

    if not data.is_dir():
        _error(f"{data}: not a folder")
        raise typer.Exit(2)
    n = build_pack(data, output, per_identity=per_identity, quality=quality)
    out.print(f"{n} faces -> {output} ({output.stat().st_size / 1e6:.1f} MB)", markup=False)


@app.command("train-cond")
def train_cond(
    pack_file: Annotated[Path, typer.Option("--pack", help="Pack from `pixveil gan pack`.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder (checkpoints, preview, state).")
    ],
    minutes: Annotated[float, typer.Option("--minutes", help="Wall-clock budget.")] = 60.0,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 32,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    every: Annotated[float, typer.Option("--every", help="Seconds between checkpoints.")] = 60.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train the conditional 128-px face generator for a time budget; run again to resume."""
    _torch_or_exit()
    from pixveil.gan.cond_train import train as run_train

    if not pack_file.is_file():
        _error(f"{pack_file}: no such pack (build one with `pixveil gan pack`)")
        raise typer.Exit(2)
    state = run_train(
        pack_file, out_dir, minutes=minutes, batch=batch, device=device, every=every, seed=seed
    )
    out.print(f"step {state['step']}; checkpoints and preview.jpg in {out_dir}", markup=False)


@app.command("export-cond")
def export_cond(
    run: Annotated[Path, typer.Argument(help="Run folder of train-cond (g_ema.pt, e.pt).")],
    to: Annotated[Path, typer.Option("--to", help="Folder for the ONNX files and model card.")],
    pack_file: Annotated[
        Path | None,
        typer.Option("--pack", help="Training pack, to fit the context prior if the run has none."),
    ] = None,
    prior_samples: Annotated[
        int, typer.Option("--prior-samples", help="Augmented crops the context prior is fitted on.")
    ] = 12000,
) -> None:
    """Export the conditional generator, its encoder and context prior (ONNX, float16) with a card."""
    _torch_or_exit()
    if not (run / "g_ema.pt").is_file() or not (run / "e.pt").is_file():
        _error(f"{run}: no g_ema.pt / e.pt (train first)")
        raise typer.Exit(2)
    from pixveil.gan.cond_export import export_cond as run_export

    try:
        card = run_export(run, to, pack=pack_file, prior_samples=prior_samples)
    except FileNotFoundError as exc:
        _error(exc)
        raise typer.Exit(2) from exc
    total = sum(p.stat().st_size for p in to.glob("gan_face_cond*"))
    out.print(f"wrote {card} ({total / 1e6:.1f} MB in all)", markup=False)
