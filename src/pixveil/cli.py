"""Command-line interface: a thin shell that builds one config and makes one library call.

Exit codes: 0 everything written; 1 at least one input failed (the others were
still processed); 2 bad usage or configuration.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pixveil import __version__
from pixveil.cli_evaluate import app as evaluate_app
from pixveil.cli_gan import app as gan_app
from pixveil.config import AnonymizeConfig, parse_targets
from pixveil.errors import PixveilError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="pixveil: find faces, licence plates and text in images and protect them; "
    "outputs carry no metadata.",
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

EXIT_FAILURES = 1
EXIT_USAGE = 2


def parse_param(text: str) -> tuple[str, Any]:
    """``"block_size=16"`` -> ``("block_size", 16)``; values become int, float, bool or str."""
    if "=" not in text:
        raise typer.BadParameter(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    raw = raw.strip()
    value: Any
    low = raw.lower()
    if low in ("true", "yes", "on"):
        value = True
    elif low in ("false", "no", "off"):
        value = False
    elif low in ("inf", "infinity"):
        value = math.inf
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
    return key, value


def _fail_usage(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_USAGE)


def build_config(
    *,
    targets: str,
    method: str,
    params: list[str],
    epsilon: float | None,
    shape: str | None,
    margin: float | None,
    threshold: float | None,
    plate_threshold: float | None,
    output_format: str | None,
    quality: int,
    keep_icc: bool,
    max_pixels: int | None,
    sidecar: bool,
    seed: int | None,
    text_threshold: float | None = None,
    pii_patterns: list[str] | None = None,
) -> AnonymizeConfig:
    """Turn CLI options into a validated config (raises ValueError with a clear message)."""
    from pixveil.protect import METHODS, available_methods

    if method not in available_methods():
        raise ValueError(f"unknown method {method!r}; known: {', '.join(available_methods())}")
    method_params: dict[str, Any] = dict(parse_param(p) for p in params)
    for key, value in (("epsilon", epsilon), ("shape", shape), ("margin", margin)):
        if value is not None:
            method_params[key] = value
    params_cls = METHODS.get(method).Params
    allowed = [f.name for f in dataclasses.fields(params_cls)]
    unknown = sorted(set(method_params) - set(allowed))
    if unknown:
        raise ValueError(
            f"method {method!r} has no parameter {', '.join(unknown)}; "
            f"its parameters are: {', '.join(allowed)}"
        )
    params_cls(**method_params)  # validate now, before any file is touched
    if output_format is not None:
        from pixveil.io import OUTPUT_FORMATS

        output_format = output_format.lower().lstrip(".")
        output_format = "jpg" if output_format == "jpeg" else output_format
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}"
            )
    return AnonymizeConfig(
        targets=parse_targets(targets),
        method=method,
        method_params=method_params,
        face_threshold=threshold,
        plate_threshold=plate_threshold,
        text_threshold=text_threshold,
        pii_patterns=tuple(pii_patterns or ()),
        seed=seed,
        output_format=output_format,
        quality=quality,
        keep_icc=keep_icc,
        max_pixels=max_pixels,
        sidecar=sidecar,
    )


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"pixveil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = None,
) -> None:
    """pixveil command line."""


@app.command()
def anonymize(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders (recursive).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output folder (mirrors input folders).")
    ] = Path("pixveil-out"),
    targets: Annotated[
        str,
        typer.Option(
            "--targets",
            "-t",
            help="What to detect, comma-separated: faces, plates, text, text-pii.",
        ),
    ] = "faces,plates",
    method: Annotated[
        str, typer.Option("--method", "-m", help="Protection method (see `pixveil methods`).")
    ] = "blur",
    params: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Method parameter KEY=VALUE (repeatable)."),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(
            "--epsilon", "-e", help="Privacy budget of dp-pix, dp-blur, gan-face and plate-synth."
        ),
    ] = None,
    shape: Annotated[str | None, typer.Option("--shape", help="auto, ellipse or box.")] = None,
    margin: Annotated[
        float | None, typer.Option("--margin", help="Grow each box by this factor.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Face detection threshold.")
    ] = None,
    plate_threshold: Annotated[
        float | None, typer.Option("--plate-threshold", help="Plate detection threshold.")
    ] = None,
    text_threshold: Annotated[
        float | None,
        typer.Option("--text-threshold", help="Text-line threshold of text and text-pii."),
    ] = None,
    pii_patterns: Annotated[
        list[str] | None,
        typer.Option(
            "--pii-pattern",
            help="Extra text-pii pattern NAME=REGEX, or an optional built-in one by name "
            "(date); repeatable.",
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="Output format: png, jpg, bmp or webp (default: as input)."
        ),
    ] = None,
    quality: Annotated[int, typer.Option("--quality", help="JPEG/WebP quality.")] = 95,
    keep_icc: Annotated[
        bool, typer.Option("--keep-icc", help="Keep the ICC colour profile (dropped by default).")
    ] = False,
    max_pixels: Annotated[
        int | None, typer.Option("--max-pixels", help="Refuse larger images (decompression bombs).")
    ] = None,
    sidecar: Annotated[
        bool, typer.Option("--sidecar", help="Write <output>.json with the detections.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed the privacy noise (testing only: weakens the guarantee)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Detect faces, licence plates or text, protect them, write metadata-free copies."""
    from pixveil.pipeline import run_batch

    try:
        config = build_config(
            targets=targets,
            method=method,
            params=params or [],
            epsilon=epsilon,
            shape=shape,
            margin=margin,
            threshold=threshold,
            plate_threshold=plate_threshold,
            text_threshold=text_threshold,
            pii_patterns=pii_patterns,
            output_format=output_format,
            quality=quality,
            keep_icc=keep_icc,
            max_pixels=max_pixels,
            sidecar=sidecar,
            seed=seed,
        )
    except (ValueError, TypeError) as exc:
        raise _fail_usage(str(exc)) from None
    if config.pii_patterns and "text-pii" not in config.targets:
        err.print("[yellow]warning:[/yellow] --pii-pattern only applies to the text-pii target")
    if seed is not None:
        err.print(
            "[yellow]warning:[/yellow] --seed makes the privacy noise predictable; use it for tests only"
        )
    report = _run_with_progress(run_batch, inputs, output, config, quiet=quiet)
    _print_summary(report, output)
    raise typer.Exit(EXIT_FAILURES if report.failures else 0)


def _run_with_progress(
    run: Any, inputs: list[Path], output: Path, config: AnonymizeConfig, *, quiet: bool
) -> Any:
    progress = Progress(
        TextColumn("[bold]pixveil"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=True,
    )
    task = progress.add_task("", total=None)

    def on_start(n: int) -> None:
        progress.update(task, total=n)

    def on_result(o: Any) -> None:
        progress.update(task, advance=1, description=o.path.name)
        if not o.ok:
            progress.console.print(f"[red]error:[/red] {o.path}: {o.error}")

    try:
        with progress:
            report = run(inputs, output, config, on_result=on_result, on_start=on_start)
    except PixveilError as exc:
        raise _fail_usage(str(exc)) from None
    except ValueError as exc:
        raise _fail_usage(str(exc)) from None
    cfg_path = output / "pixveil-run.json"
    if report.n_ok:
        cfg_path.write_text(
            json.dumps({"config": config.to_dict(), "summary": report.to_dict()}, indent=2) + "\n",
            encoding="utf-8",
        )
    return report


def _print_summary(report: Any, output: Path) -> None:
    summary = report.to_dict()
    table = Table(title="pixveil summary", show_header=False, title_justify="left")
    table.add_row("images", str(summary["images"]))
    table.add_row("written", f"{summary['written']} -> {output}")
    for kind, n in summary["regions"].items():
        table.add_row(f"{kind}s protected", str(n))
    for event, n in summary.get("method_events", {}).items():
        table.add_row(f"method {event}", str(n))
    table.add_row("skipped (not images)", str(summary["skipped_non_images"]))
    table.add_row("failed", str(len(summary["failures"])))
    out.print(table)
    if report.failures:
        err.print(f"[red]{len(report.failures)} file(s) failed (no output written for them):[/red]")
        for f in report.failures:
            err.print(f"  {f.path}: {f.error}")


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the demo.")] = Path(
        "pixveil-demo"
    ),
    method: Annotated[str, typer.Option("--method", "-m")] = "blur",
) -> None:
    """Run on built-in pictures (no files needed): writes inputs, outputs and a method gallery."""
    from pixveil.demo import run_demo

    try:
        result = run_demo(output, method=method)
    except (PixveilError, ValueError) as exc:
        raise _fail_usage(str(exc)) from None
    _print_summary(result.report, result.output_dir)
    for line in result.notes:
        out.print(line)
    raise typer.Exit(EXIT_FAILURES if result.report.failures else 0)


@app.command("methods")
def list_methods() -> None:
    """List the protection methods, their parameters and their guarantee."""
    from pixveil.protect import METHODS, available_methods

    table = Table(show_lines=True)
    table.add_column("method", style="bold")
    table.add_column("parameters (default)")
    table.add_column("guarantee")
    for name in available_methods():
        cls = METHODS.get(name)
        fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Params))
        doc = (cls.__doc__ or "").strip().splitlines()
        table.add_row(name, fields, doc[0] if doc else "")
    out.print(table)


# `pixveil evaluate` and `pixveil attack` (the evaluation harness).
app.add_typer(evaluate_app)
# `pixveil gan train|export|sample` (the face GAN of gan-face).
app.add_typer(gan_app, name="gan")


def main() -> None:
    """Entry point of the ``pixveil`` script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
