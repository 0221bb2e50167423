"""Command-line interface: a thin shell that builds one config and makes one library call.

Exit codes: 0 everything written; 1 at least one input failed (the others were
still processed); 2 bad usage or configuration; 3 with ``--strict``, a requested
target found nothing in some image.  User data (file names, option values) is
never read as rich markup, and error lines are never wrapped.

Why one module of ~650 lines: about 300 of them are the declarations of
``anonymize``'s 30 options (typer needs them in the signature, each with its help
text); the terminal helpers live in :mod:`pixveil.cli_console` and the output
planning in :mod:`pixveil.cli_plan`.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pixveil import __version__
from pixveil.cli_console import (
    EXIT_FAILURES,
    EXIT_STRICT,
    EXIT_USAGE,
    err,
    error,
    fail_usage,
    out,
    plain,
    shown,
    warn,
)
from pixveil.cli_dataset import app as dataset_app
from pixveil.cli_evaluate import app as evaluate_app
from pixveil.cli_gan import app as gan_app
from pixveil.cli_plan import OutputPlan, plan_outputs, take_stdin
from pixveil.cli_plates import app as plates_app
from pixveil.config import AnonymizeConfig, parse_targets
from pixveil.errors import PixveilError
from pixveil.validate import parse_value

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="pixveil: find faces, licence plates and text in images and protect them; "
    "outputs carry no metadata.",
)


def parse_param(text: str) -> tuple[str, Any]:
    """``"block_size=16"`` -> ``("block_size", 16)`` (values: :func:`pixveil.validate.parse_value`)."""
    if "=" not in text:
        raise ValueError(f"--param expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip().replace("-", "_"), parse_value(raw)


def _check_options(**flags: Any) -> None:
    """Range checks that name the flag the user typed (``--threshold must be in (0, 1)``)."""
    for flag in ("--threshold", "--plate-threshold", "--text-threshold"):
        value = flags.get(flag)
        if value is not None and not 0.0 < value < 1.0:
            raise ValueError(f"{flag} must be in (0, 1), got {value:g}")
    if flags.get("--max-pixels") is not None and flags["--max-pixels"] < 1:
        raise ValueError(f"--max-pixels must be >= 1, got {flags['--max-pixels']}")
    if flags.get("--max-size") is not None and flags["--max-size"] < 64:
        raise ValueError(f"--max-size must be >= 64 pixels, got {flags['--max-size']}")
    if flags.get("--detect") not in (None, "exhaustive", "cascade", "fast"):
        raise ValueError(f"--detect must be exhaustive, cascade or fast, got {flags['--detect']!r}")
    if flags.get("--noise") not in (None, "frame", "track"):
        raise ValueError(f"--noise must be frame or track, got {flags['--noise']!r}")
    if flags.get("--detect-every") is not None and flags["--detect-every"] < 1:
        raise ValueError(f"--detect-every must be >= 1, got {flags['--detect-every']}")
    if flags.get("--track-every") is not None and flags["--track-every"] < 0:
        raise ValueError(f"--track-every must be >= 0, got {flags['--track-every']}")
    if flags.get("--video-max-size") not in (None, "full"):
        try:
            px = int(flags["--video-max-size"])
        except ValueError:
            px = 0
        if px < 64:
            raise ValueError(
                "--video-max-size must be 'full' or >= 64 pixels, "
                f"got {flags['--video-max-size']!r}"
            )
    if flags.get("--margin") is not None and flags["--margin"] <= 0:
        raise ValueError(f"--margin must be > 0, got {flags['--margin']:g}")


def _parse_quality(value: str) -> int | str:
    text = value.strip().lower()
    if text == "keep":
        return "keep"
    try:
        q = int(text)
    except ValueError:
        raise ValueError(
            f"--quality must be 'keep' or an integer in 1..100, got {value!r}"
        ) from None
    if not 1 <= q <= 100:
        raise ValueError(f"--quality must be 'keep' or an integer in 1..100, got {q}")
    return q


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
    quality: int | str,
    keep_icc: bool,
    max_pixels: int | None,
    sidecar: bool,
    seed: int | None,
    text_threshold: float | None = None,
    pii_patterns: list[str] | None = None,
    device: str = "auto",
    max_size: int | None = None,
    allow_damaged: bool = False,
    dry_run: bool = False,
    boxes: bool = False,
    image: Path | None = None,
    detect_every: int | None = None,
    track_every: int | None = None,
    audio: bool = True,
    detect_mode: str | None = None,
    video_noise: str = "frame",
    video_max_size: str | None = None,
    region: str = "face",
    model: str | None = None,
) -> AnonymizeConfig:
    """Turn CLI options into a validated config (raises ValueError with a clear message)."""
    from pixveil._onnx import check_device
    from pixveil.detect import available_targets
    from pixveil.protect import available_methods, method_class, validate_params

    if method not in available_methods():
        raise ValueError(f"unknown method {method!r}; known: {', '.join(available_methods())}")
    target_names = parse_targets(targets)
    known_targets = available_targets()
    for t in target_names:
        if t not in known_targets:
            raise ValueError(f"--targets: unknown target {t!r}; known: {', '.join(known_targets)}")
    method_params: dict[str, Any] = dict(parse_param(p) for p in params)
    for key, value in (("epsilon", epsilon), ("shape", shape), ("margin", margin)):
        if value is not None:
            method_params[key] = value
    if image is not None:
        method_params["image"] = str(image)
    if model is not None:
        method_params["model"] = model
    allowed = [f.name for f in dataclasses.fields(method_class(method).Params)]
    unknown = sorted(set(method_params) - set(allowed))
    if unknown:
        flags = {
            "epsilon": "--epsilon",
            "shape": "--shape",
            "margin": "--margin",
            "image": "--image",
            "model": "--model",
        }
        named = ", ".join(flags.get(k, k) for k in unknown)
        raise ValueError(
            f"method {method!r} has no parameter {named}; its parameters are: {', '.join(allowed)}"
        )
    if method == "image" and "image" not in method_params:
        raise ValueError("--method image needs --image FILE (the replacement picture)")
    validate_params(method, method_params)  # before any file is touched; loads no model
    if output_format is not None:
        from pixveil.io import OUTPUT_FORMATS

        output_format = output_format.lower().lstrip(".")
        output_format = "jpg" if output_format == "jpeg" else output_format
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}"
            )
    try:
        check_device(device)
    except ValueError as exc:
        raise ValueError(f"--device: {exc}") from None
    video: dict[str, Any] = {}
    if detect_every is not None:
        video["detect_every"] = detect_every
    if track_every is not None:
        video["track_every"] = track_every
    if video_max_size is not None:
        video["video_max_size"] = None if video_max_size == "full" else int(video_max_size)
    return AnonymizeConfig(
        targets=target_names,
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
        device=device,
        max_size=max_size,
        allow_damaged=allow_damaged,
        dry_run=dry_run,
        boxes=boxes,
        audio=audio,
        face_mode=detect_mode,
        video_noise=video_noise,
        **video,
        region=region,
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
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Show the version.",
            metavar="",
        ),
    ] = None,
) -> None:
    """pixveil command line."""


@app.command()
def anonymize(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files and/or folders (recursive); '-' reads one image from standard input.",
            metavar="INPUT...",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output folder (mirrors input folders); for a single input also a file name "
            "(photo_anon.jpg), or '-' for standard output.",
            metavar="PATH",
        ),
    ] = Path("pixveil-out"),
    targets: Annotated[
        str,
        typer.Option(
            "--targets",
            "-t",
            help="What to detect, comma-separated: faces, plates (OCR-based), plates-net (the "
            "learned plate detector), plates-fused (the learned detector with the OCR path as "
            "a second opinion), text, text-pii.",
            metavar="LIST",
        ),
    ] = "faces,plates",
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            "-m",
            help="Protection method (see `pixveil methods`). [default: blur; image with --image]",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Method parameter KEY=VALUE (repeatable).", metavar="KEY=VALUE"
        ),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(
            "--epsilon",
            "-e",
            help="Privacy budget of dp-pix, dp-blur, metric-pix, gan-face and plate-synth, >= 0 "
            "(each method's default: `pixveil methods`).",
            metavar="FLOAT",
        ),
    ] = None,
    shape: Annotated[
        str | None,
        typer.Option(
            "--shape", help="Region shape: auto, ellipse or box. [default: auto]", metavar="SHAPE"
        ),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            "--margin", help="Grow each box by this factor, > 0 (method default).", metavar="FLOAT"
        ),
    ] = None,
    region: Annotated[
        str,
        typer.Option(
            "--region",
            help="What of each person to protect: face, head (face, hair, ears, neck) or "
            "person (the whole body). See docs/methods.md for what each leaves visible.",
            metavar="face|head|person",
        ),
    ] = "face",
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Face detection threshold, in (0, 1). [default: the detector's, 0.2]",
            metavar="FLOAT",
        ),
    ] = None,
    plate_threshold: Annotated[
        float | None,
        typer.Option(
            "--plate-threshold",
            help="Plate detection threshold, in (0, 1). [default: the detector's]",
            metavar="FLOAT",
        ),
    ] = None,
    text_threshold: Annotated[
        float | None,
        typer.Option(
            "--text-threshold",
            help="Text-line threshold of text and text-pii, in (0, 1). [default: 0.5]",
            metavar="FLOAT",
        ),
    ] = None,
    pii_patterns: Annotated[
        list[str] | None,
        typer.Option(
            "--pii-pattern",
            help="Extra text-pii pattern NAME=REGEX, or an optional built-in one by name "
            "(date); repeatable.",
            metavar="NAME[=REGEX]",
        ),
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option(
            "--image",
            help="Replacement picture for --method image (scaled to each region, alpha respected).",
            metavar="FILE",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="gan-face: the face model, dcgan64 (the unconditional 64-px GAN) or an "
            "exported model folder. [default: the conditional 128-px generator]",
            metavar="NAME|DIR",
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Output format: png, jpg, bmp or webp. [default: as the input; TIFF, GIF, PNM -> png]",
            metavar="FMT",
        ),
    ] = None,
    quality: Annotated[
        str,
        typer.Option(
            "--quality",
            help="JPEG/WebP quality 1..100, or 'keep': a JPEG input's own quantisation "
            "(other outputs: 95).",
            metavar="Q",
        ),
    ] = "keep",
    keep_icc: Annotated[
        bool,
        typer.Option(
            "--keep-icc", help="Keep the ICC colour profile (dropped by default).", metavar=""
        ),
    ] = False,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            "--max-pixels",
            help="Refuse larger images, >= 1 (decompression bombs). [default: 100000000]",
            metavar="N",
        ),
    ] = None,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max-size",
            help="Detect on a copy at most this many pixels on its longer side, >= 64 (faster; "
            "may miss small faces, see docs/BENCHMARKS.md); the output keeps full resolution. "
            "[default: full resolution]",
            metavar="PX",
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="Where the models run: auto, cpu, cuda, tensorrt, rocm, openvino, directml, "
            "coreml (ONNX Runtime providers; a missing one falls back to the CPU).",
            metavar="DEVICE",
        ),
    ] = "auto",
    sidecar: Annotated[
        bool,
        typer.Option("--sidecar", help="Write <output>.json with the detections.", metavar=""),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Detect and report only; write nothing.", metavar=""),
    ] = False,
    boxes: Annotated[
        bool,
        typer.Option(
            "--boxes",
            help="Draw each detection's box and score on the output (to check thresholds).",
            metavar="",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit with 3 when a requested target found nothing in some image "
            "(route such images to review).",
            metavar="",
        ),
    ] = False,
    allow_damaged_flag: Annotated[
        bool,
        typer.Option(
            "--allow-damaged",
            help="Process inputs with damaged compressed data (bad JPEG scans, PNG CRC errors) "
            "instead of refusing them.",
            metavar="",
        ),
    ] = False,
    detect_mode: Annotated[
        str | None,
        typer.Option(
            "--detect",
            help="Face search: exhaustive (full resolution everywhere), cascade (full "
            "resolution only where a small proposal network expects a face: much faster on "
            "photos over 2048 px, may miss a few faces) or fast (the cascade with the int8 "
            "network: about 2x faster again on CPUs with VNNI, more false boxes). "
            "[default: exhaustive]",
            metavar="MODE",
        ),
    ] = None,
    detect_every: Annotated[
        int | None,
        typer.Option(
            "--detect-every",
            help="Videos: run the detectors over the whole frame on one frame in K, >= 1 "
            "(tracked-face windows and tracking cover the others). [default: 8]",
            metavar="K",
        ),
    ] = None,
    track_every: Annotated[
        int | None,
        typer.Option(
            "--track-every",
            help="Videos: between full detections, search the tracked faces again in small "
            "windows around them on one frame in N (0 = never). [default: 1]",
            metavar="N",
        ),
    ] = None,
    video_max_size: Annotated[
        str | None,
        typer.Option(
            "--video-max-size",
            help="Videos: detect on a copy at most PX pixels on its longer side, or 'full' "
            "(--max-size, when given, applies to videos too; 640 is faster but misses faces "
            "under about 40 px at 720p). [default: full]",
            metavar="PX|full",
        ),
    ] = None,
    noise: Annotated[
        str,
        typer.Option(
            "--noise",
            help="Videos, dp-pix/dp-blur/metric-pix: frame (fresh noise per frame: k frames compose to "
            "k·ε) or track (one noisy release per track, ε per track).",
            metavar="frame|track",
        ),
    ] = "frame",
    no_audio: Annotated[
        bool,
        typer.Option(
            "--no-audio", help="Videos: drop the audio (copied untouched by default).", metavar=""
        ),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed the privacy noise (testing only: weakens the guarantee).",
            metavar="INT",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar.", metavar="")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (this process) or ray (a pool of Ray workers; the [ray] extra; "
            "writes a run manifest, see docs/cluster.md).",
            metavar="local|ray",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="--engine ray: a running cluster ('auto', host:port, ray://host:10001). "
            "[default: start Ray on this machine]",
            metavar="ADDRESS",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Images protected at once: threads of this process sharing one model set "
            "(local), or Ray worker processes with one model set each (ray). "
            "[default: one per CPU; local: at most 4, 1 on a GPU]",
            metavar="N",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="--engine ray: skip inputs a previous run into the same folder completed "
            "(per its manifest); the previous run must have stopped.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Detect faces, licence plates or text in images and videos, protect them, write metadata-free copies.

    Exit status: 0 all written; 1 some input failed (no output for it); 2 bad
    usage; 3 with --strict, some image had nothing of a requested target.
    """
    from pixveil._onnx import resolve_providers

    try:
        _check_options(
            **{
                "--threshold": threshold,
                "--plate-threshold": plate_threshold,
                "--text-threshold": text_threshold,
                "--max-pixels": max_pixels,
                "--max-size": max_size,
                "--margin": margin,
                "--detect-every": detect_every,
                "--track-every": track_every,
                "--video-max-size": video_max_size,
                "--detect": detect_mode,
                "--noise": noise,
            }
        )
        config = build_config(
            targets=targets,
            method=method or ("image" if image is not None else "blur"),
            params=params or [],
            epsilon=epsilon,
            shape=shape,
            margin=margin,
            threshold=threshold,
            plate_threshold=plate_threshold,
            text_threshold=text_threshold,
            pii_patterns=pii_patterns,
            output_format=output_format,
            quality=_parse_quality(quality),
            keep_icc=keep_icc,
            max_pixels=max_pixels,
            sidecar=sidecar,
            seed=seed,
            device=device,
            max_size=max_size,
            allow_damaged=allow_damaged_flag,
            dry_run=dry_run,
            boxes=boxes,
            image=image,
            model=model,
            detect_every=detect_every,
            track_every=track_every,
            video_max_size=video_max_size,
            audio=not no_audio,
            detect_mode=detect_mode,
            video_noise=noise,
            region=region,
        )
        plan = plan_outputs(list(inputs), output, config.output_format)
        run = _engine(engine, ray_address=ray_address, workers=workers, resume=resume)
    except (ValueError, TypeError) as exc:
        raise fail_usage(str(exc)) from None
    if config.pii_patterns and "text-pii" not in config.targets:
        warn("--pii-pattern only applies to the text-pii target")
    if seed is not None:
        warn("--seed makes the privacy noise predictable; use it for tests only")
    note = resolve_providers(config.device).fallback
    if note:
        warn(note)
    report_console = err if plan.to_stdout else out
    try:
        files = take_stdin(plan, list(inputs), config.output_format)
        report = _run_with_progress(run, files, plan, config, quiet=quiet or plan.to_stdout)
        if plan.to_stdout and report.n_written == 1 and plan.output_file is not None:
            sys.stdout.buffer.write(plan.output_file.read_bytes())
            sys.stdout.buffer.flush()
    finally:
        if plan.scratch is not None:
            shutil.rmtree(plan.scratch, ignore_errors=True)
    if config.dry_run:
        kinds = _target_kinds(config)
        for o in report.outcomes:
            if not o.ok:
                continue
            if o.video is not None:
                found = ", ".join(f"{o.count(kind)} {t} tracks" for t, kind in kinds.items())
            elif o.detections is not None:
                found = ", ".join(f"{o.count(kind)} {t}" for t, kind in kinds.items())
            else:
                continue
            report_console.print(
                f"{shown(plan.aliases.get(o.path, o.path))}: {found}", soft_wrap=True
            )
    _print_summary(report, plan, report_console)
    run_file_failed = False
    if plan.output_file is None and not config.dry_run and report.n_written:
        from pixveil.pipeline import write_run_file

        try:
            write_run_file(plan.out_dir, config, report)
        except PixveilError as exc:
            error(str(exc))
            run_file_failed = True
    if report.failures or run_file_failed:
        raise typer.Exit(EXIT_FAILURES)
    if strict and report.n_incomplete:
        error(
            f"--strict: {report.n_incomplete} image(s) had nothing of a requested target "
            "(see 'images without' above)"
        )
        raise typer.Exit(EXIT_STRICT)
    raise typer.Exit(0)


def _engine(name: str, *, ray_address: str | None, workers: int | None, resume: bool) -> Any:
    """The batch function of ``--engine`` (ValueError for a bad combination of options)."""
    import functools

    if name not in ("local", "ray"):
        raise ValueError(f"--engine must be local or ray, got {name!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if name == "local":
        for flag, value in (("--ray-address", ray_address), ("--resume", resume or None)):
            if value is not None:
                raise ValueError(f"{flag} needs --engine ray")
        from pixveil.pipeline import run_batch

        return functools.partial(run_batch, workers=workers)

    from pixveil.ray_engine import run_batch_ray

    return functools.partial(run_batch_ray, address=ray_address, workers=workers, resume=resume)


def _target_kinds(config: AnonymizeConfig) -> dict[str, str]:
    from pixveil.detect import DETECTORS, available_targets

    available_targets()  # registers the built-in detectors
    return {t: DETECTORS.get(t).kind for t in config.targets}


def _run_with_progress(
    run: Any, inputs: list[Path], plan: OutputPlan, config: AnonymizeConfig, *, quiet: bool
) -> Any:
    from pixveil.cli_progress import ProgressBars

    def item_name(event: Any) -> str:
        if event.item is None:
            return ""
        name = plan.aliases.get(Path(event.item), event.item)
        return plain(Path(str(name)).name)

    bars = ProgressBars(
        err,
        disable=quiet or not err.is_terminal,
        label=lambda _e: "pixveil",
        detail=item_name,
        transient=True,
    )

    def on_result(o: Any) -> None:
        if not o.ok:
            name = plan.aliases.get(o.path, o.path)
            error(f"{name}: {o.error}", bars.progress.console)

    try:
        with bars:
            return run(
                inputs,
                plan.out_dir,
                config,
                on_result=on_result,
                progress=bars,
                output_file=plan.output_file,
            )
    except (PixveilError, ValueError) as exc:
        raise fail_usage(str(exc)) from None


def _print_summary(report: Any, plan: OutputPlan, console: Console) -> None:
    summary = report.to_dict()
    shown_out = "standard output" if plan.to_stdout else str(plan.output_file or plan.out_dir)
    table = Table(title="pixveil summary", show_header=False, title_justify="left")
    table.add_row("images", str(summary["images"]))
    if summary.get("videos"):
        table.add_row("videos", f"{summary['videos']} ({summary['video_frames']} frames)")
    if report.dry_run:
        table.add_row("written", "0 (dry run)")
    else:
        table.add_row("written", f"{summary['written']} -> {shown(shown_out)}")
    for kind, n in summary["regions"].items():
        table.add_row(f"{kind}s {'found' if report.dry_run else 'protected'}", str(n))
    for target, n in summary["images_without"].items():
        table.add_row(f"images without {target}", str(n))
    for event, n in summary.get("method_events", {}).items():
        table.add_row(f"method {shown(event)}", str(n))
    table.add_row("skipped (not images)", str(summary["skipped_non_images"]))
    if summary.get("resumed"):
        table.add_row("already done (resumed)", str(summary["resumed"]))
    if summary["stale_temp_files_removed"]:
        table.add_row("stale temp files removed", str(summary["stale_temp_files_removed"]))
    table.add_row("failed", str(len(summary["failures"])))
    console.print(table)
    if report.failures:
        err.print(
            f"[red]{len(report.failures)} file(s) failed (listed above; no output written for them)[/red]",
            soft_wrap=True,
        )


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
        raise fail_usage(str(exc)) from None
    _print_summary(result.report, OutputPlan(out_dir=result.output_dir), out)
    for line in result.notes:
        out.print(line)
    raise typer.Exit(EXIT_FAILURES if result.report.failures else 0)


@app.command("methods")
def list_methods() -> None:
    """List the protection methods: what each does, its parameters and its guarantee."""
    from pixveil.protect import METHODS, available_methods

    table = Table(show_lines=True)
    table.add_column("method", style="bold")
    table.add_column("what it does")
    table.add_column("parameters (default)")
    table.add_column("guarantee")
    for name in available_methods():
        cls = METHODS.get(name)
        fields = ", ".join(f"{f.name}={_default_text(f)}" for f in dataclasses.fields(cls.Params))
        table.add_row(name, shown(cls.summary), shown(fields), shown(cls.guarantee))
    out.print(table)
    from pixveil.regions import INFORMED_ATTACKER_NOTE

    out.print(INFORMED_ATTACKER_NOTE, markup=False, highlight=False)


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if isinstance(value, (tuple, list, frozenset, set)):
        return ",".join(str(v) for v in value) or "(none)"
    return "none" if value is None else str(value)


# `pixveil evaluate` and `pixveil attack` (the evaluation harness).
app.add_typer(evaluate_app)
# `pixveil gan train|export|sample` (the face GAN of gan-face).
app.add_typer(gan_app, name="gan")
# `pixveil plates train|export|eval` (the learned plate detector).
app.add_typer(plates_app, name="plates")
# `pixveil dataset protect|restore|schemes` (key-based protection of training data).
app.add_typer(dataset_app, name="dataset")


def main() -> None:
    """Entry point of the ``pixveil`` script.

    Usage errors are printed as one ``error:`` line (never a wrapped box), with
    user data escaped.
    """
    try:
        rv = app(standalone_mode=False)
    except typer.Abort:
        err.print("aborted")
        sys.exit(EXIT_FAILURES)
    except typer.TyperException as exc:  # the usage errors of typer's command parser
        code = int(getattr(exc, "exit_code", EXIT_USAGE))
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            sys.exit(code)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        error(message)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            err.print(f"Try '{shown(ctx.command_path)} --help' for help.", soft_wrap=True)
        sys.exit(code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
