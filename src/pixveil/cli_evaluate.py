"""``pixveil evaluate`` and ``pixveil attack``: thin shells over the evaluation harness.

Each command turns its options into one :class:`~pixveil.evaluate.EvaluationConfig`
and makes one :func:`~pixveil.evaluate.run_evaluation` call (``--repeat`` passes
the seeds to pool); the ``attack`` subcommands are made by one factory
(:func:`_add_attack_command`) and differ only in the attack and its table.

Mounted on the main application with ``app.add_typer(evaluate_app)`` (the commands
appear at the top level).  Exit codes: 0 the report was written; 1 the run failed
(a method, a detector or a write failed); 2 bad usage, configuration or data
folder, or a missing optional dependency.

Why one module of ~600 lines: a third of it is typer's option declarations, and
the rest (progress display, summary and attack tables) serves these commands
only; split, each command would be spread over two files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pixveil.cli_progress import ProgressBars
from pixveil.errors import InputError, MissingDependencyError, PixveilError

__all__ = ["app"]

app = typer.Typer(add_completion=False)
attack_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run one attack against protected faces: a CNN that re-identifies them (reid) or "
    "a U-Net that undoes the protection (reconstruction).",
)
app.add_typer(attack_app, name="attack")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

EXIT_FAILED = 1
EXIT_USAGE = 2

_STAGES = {
    "load": "listing images",
    "originals": "detecting and encoding originals",
    "protect": "protecting and measuring",
    "scores": "aggregating",
    "attack": "attacks",
}


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_USAGE)


def _workers(value: int) -> int:
    if value < 0:
        raise ValueError(f"--workers must be >= 0 (0 = one per CPU), got {value}")
    return value or max(1, min(8, os.cpu_count() or 1))


def _build_config(
    *,
    data: Path,
    methods: str,
    epsilons: str,
    sweeps: list[str] | None,
    fixed: list[str] | None,
    identities: int | None,
    per_identity: int | None,
    max_images: int | None,
    seed: int,
    threshold: float | None,
    workers: int,
    **options: Any,
) -> Any:
    """CLI strings -> a validated :class:`EvaluationConfig` (raises ValueError)."""
    from pixveil.evaluate import (
        EvaluationConfig,
        parse_fixed,
        parse_list,
        parse_sweep,
        parse_value,
    )

    sweep_map: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for spec in sweeps or []:
        method, key, values = parse_sweep(spec)
        if method in sweep_map:
            raise ValueError(f"--sweep given twice for {method!r} (one parameter per method)")
        sweep_map[method] = (key, values)
    fixed_map: dict[str, dict[str, Any]] = {}
    for spec in fixed or []:
        method, key, value = parse_fixed(spec)
        fixed_map.setdefault(method, {})[key] = value
    eps: list[float] = []
    for text in parse_list(epsilons):
        value = parse_value(text)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"--epsilons must be numbers, got {text!r}")
        eps.append(float(value))
    return EvaluationConfig(
        data=data,
        methods=tuple(parse_list(methods.lower())),
        epsilons=tuple(eps),
        sweeps=sweep_map,
        fixed=fixed_map,
        identities=identities,
        per_identity=per_identity,
        max_images=max_images,
        seed=seed,
        face_threshold=threshold,
        workers=_workers(workers),
        **options,
    )


def _parse_attacks(attacks: str, no_attacks: bool) -> tuple[str, ...]:
    from pixveil.evaluate import ATTACKS, parse_list

    if no_attacks:
        return ()
    names = [a.lower() for a in parse_list(attacks)]
    if names in (["none"], []):
        return ()
    if names == ["all"]:
        return ATTACKS
    return tuple(names)


def _run(config: Any, *, quiet: bool, seeds: range | None = None) -> Any:
    """Run (once, or once per seed pooled) with a progress display; map errors to exit codes."""
    from pixveil.evaluate import ProgressEvent, run_evaluation

    bars = ProgressBars(
        err,
        disable=quiet or not err.is_terminal,
        label=lambda e: _STAGES.get(e.stage, e.stage),
        detail=lambda e: e.message[:70],
    )
    last: list[tuple[str, int]] = [("", -1)]

    def on_event(event: ProgressEvent) -> None:
        if event.stage == "run":  # a new seed: the stages start again
            if not quiet:
                err.print(f"run {event.done + 1} of {event.total} ({event.message})", markup=False)
            return
        bars(event)
        if quiet or err.is_terminal:
            return
        # Not a terminal (a log file): a line per stage, per tenth of a stage and
        # per attack run.
        tenth = event.done * 10 // event.total if event.total else 0
        key = (event.stage, tenth if event.stage != "attack" else event.done)
        if key != last[0] and (event.stage != "attack" or "epoch" not in event.message):
            last[0] = key
            count = f" {event.done}/{event.total}" if event.total else ""
            err.print(
                f"{_STAGES.get(event.stage, event.stage)}{count}: {event.message}", markup=False
            )

    try:
        with bars:
            return run_evaluation(config, seeds=seeds, progress=on_event)
    except (InputError, MissingDependencyError) as exc:
        raise _usage(str(exc)) from None
    except PixveilError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from None


def _write(result: Any, output: Path) -> dict[str, Path]:
    from pixveil.evaluate.report import write_report

    try:
        return write_report(result, output)
    except MissingDependencyError as exc:
        raise _usage(str(exc)) from None
    except PixveilError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from None


def _pct(value: Any) -> str:
    from pixveil.evaluate.report import format_value

    return format_value(value, scale=100.0, decimals=1)


def _num(value: Any, decimals: int = 3) -> str:
    from pixveil.evaluate.report import format_value

    return format_value(value, decimals=decimals)


def _print_notes(result: Any) -> None:
    for note in result.notes:
        err.print(f"[dim]note: {note}[/dim]")


def _summary(result: Any) -> Table:
    table = Table(title="pixveil evaluate", title_justify="left")
    table.add_column("method", style="bold", no_wrap=True)
    table.add_column("parameter", no_wrap=True)
    table.add_column("SSIM", justify="right")
    table.add_column("region SSIM", justify="right")
    has_ids = any(r.reid is not None and r.reid.rank1 is not None for r in result.results)
    has_reid = any(r.reid is not None for r in result.results)
    if has_ids:
        table.add_column("rank-1", justify="right")
        table.add_column("verified", justify="right")
    if has_reid:
        table.add_column("same photo", justify="right")
    if result.config.detection:
        table.add_column("detected", justify="right")
    attacks = [a for a in ("cnn", "reconstruction") if any(a in r.attacks for r in result.results)]
    contexts = list(result.config.contexts) if "cnn" in attacks else []
    rec_contexts = list(result.config.contexts) if "reconstruction" in attacks else []
    for c in contexts:
        table.add_column(f"informed top-1 ({c})", justify="right")
    for c in rec_contexts:
        table.add_column(f"recon. SSIM ({c})", justify="right")
    for r in result.results:
        cells = [
            r.setting.method,
            r.setting.value_label if r.setting.parameter else "",
            _num(r.utility.get("ssim")),
            _num(r.utility_region.get("ssim")),
        ]
        if has_ids:
            cells += [_pct(r.reid and r.reid.rank1), _pct(r.reid and r.reid.verification)]
        if has_reid:
            cells.append(_pct(r.reid and r.reid.same_photo))
        if result.config.detection:
            cells.append(_pct(r.detection.get("pixveil")))
        for c in contexts:
            figures = r.attacks.get("cnn", {}).get("contexts", {}).get(c, {})
            cells.append(_pct(figures.get("top1")))
        for c in rec_contexts:
            figures = _by_context(r.attacks.get("reconstruction", {})).get(c, {})
            cells.append(_num(figures.get("ssim_reconstructed")))
        table.add_row(*cells)
    scored = next((r.reid for r in result.results if r.reid is not None and r.reid.n_probes), None)
    captions = []
    if has_ids and scored is not None:
        chance = "" if scored.chance_rank1 is None else f", chance {_pct(scored.chance_rank1)}"
        captions.append(
            f"rank-1 over {scored.n_probes} probes per setting{chance} (naive judge: dlib)"
        )
    cnn = next((r.attacks["cnn"] for r in result.results if "cnn" in r.attacks), None)
    if contexts and cnn is not None:
        captions.append(
            "informed top-1: a CNN trained on protected photos of the same people, seeing the "
            "face box grown by the factor named or the full photo; "
            f"{cnn.get('n_test')} test photos, chance {_pct(cnn.get('chance_top1'))}"
        )
    if captions:
        table.caption = "\n".join(captions)
        table.caption_justify = "left"
    return table


# Shared option types.
DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        "-d",
        help="Folder of <identity>/<images> (LFW, AT&T layout) or a flat folder of images.",
    ),
]
EpsilonsOpt = Annotated[
    str, typer.Option("--epsilons", "-e", help="Privacy budgets swept for dp-* methods.")
]
SweepOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sweep",
        help="Swept parameter of a method, METHOD:PARAM=V1,V2,... (repeatable), "
        "e.g. blur:strength=0.05,0.1,0.2,0.3.",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Parameter held fixed, METHOD:PARAM=VALUE (repeatable), e.g. dp-pix:m=4."
    ),
]
IdentitiesOpt = Annotated[
    int | None, typer.Option("--identities", help="Sample this many identities (seeded).")
]
PerIdentityOpt = Annotated[
    int | None,
    typer.Option(
        "--per-identity",
        help="Sample this many images per identity (identities with fewer are left out).",
    ),
]
MaxImagesOpt = Annotated[
    int | None, typer.Option("--max-images", help="Flat folders: sample this many images.")
]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Seed of the sampling, the privacy noise and the attacks.")
]
ThresholdOpt = Annotated[
    float | None, typer.Option("--threshold", help="Face detection threshold (pixveil's detector).")
]
WorkersOpt = Annotated[
    int, typer.Option("--workers", "-j", help="Worker processes (0 = one per CPU, up to 8).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
ContextOpt = Annotated[
    str,
    typer.Option(
        "--context",
        help="What the attackers see, comma-separated: a factor (the face box grown by "
        "it, e.g. 1.2 or 2) or full (the whole photo); each attack runs once per context.",
    ),
]
RegionOpt = Annotated[
    str,
    typer.Option("--region", help="What of each person the methods protect: face, head or person."),
]


@app.command()
def evaluate(
    data: DataOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder (created).")] = Path(
        "pixveil-report"
    ),
    methods: Annotated[
        str, typer.Option("--methods", "-m", help="Methods to evaluate, comma-separated.")
    ] = "blur,pixelate,mask,dp-pix,dp-blur",
    epsilons: EpsilonsOpt = "0.1,0.5,1,5",
    sweeps: SweepOpt = None,
    fixed: SetOpt = None,
    identities: IdentitiesOpt = None,
    per_identity: PerIdentityOpt = None,
    max_images: MaxImagesOpt = None,
    seed: SeedOpt = 0,
    threshold: ThresholdOpt = None,
    attacks: Annotated[
        str,
        typer.Option(
            "--attacks",
            help="Attacks to run: cnn, reconstruction, all or none (slow: each trains a "
            "network per setting).",
        ),
    ] = "cnn",
    no_attacks: Annotated[
        bool, typer.Option("--no-attacks", help="Run no attack (overrides --attacks).")
    ] = False,
    cnn_epochs: Annotated[
        int | None, typer.Option("--cnn-epochs", help="Epochs of the CNN attack.")
    ] = None,
    reconstruction_epochs: Annotated[
        int | None,
        typer.Option("--reconstruction-epochs", help="Epochs of the reconstruction attack."),
    ] = None,
    attack_size: Annotated[
        int, typer.Option("--attack-size", help="Side of the attacks' face crops (pixels).")
    ] = 64,
    context: ContextOpt = "full",
    region: RegionOpt = "face",
    reid: Annotated[
        bool,
        typer.Option(
            "--reid/--no-reid", help="dlib face re-identification (rank-1, verification)."
        ),
    ] = True,
    detection: Annotated[
        bool,
        typer.Option("--detection/--no-detection", help="Face detection rates after protection."),
    ] = True,
    ms_ssim: Annotated[
        bool, typer.Option("--ms-ssim/--no-ms-ssim", help="Whole-image MS-SSIM (slow).")
    ] = False,
    region_ms_ssim: Annotated[
        bool,
        typer.Option("--region-ms-ssim", help="Region-only MS-SSIM (regions >= 161 px; slow)."),
    ] = False,
    fid: Annotated[
        bool,
        typer.Option(
            "--fid/--no-fid",
            help="FID-like and IS-like scores on MobileNetV2 features (not Inception; slow).",
        ),
    ] = False,
    examples: Annotated[
        int, typer.Option("--examples", help="Identities shown in the example grids.")
    ] = 3,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            help="Run with seeds SEED..SEED+N-1 (other photos, other noise) and pool the "
            "figures over all their probes (one run of 100 identities has ~300 probes: "
            "one probe is a third of a point of rank-1).",
        ),
    ] = 1,
    video_frames: Annotated[
        int,
        typer.Option(
            "--video-frames", help="Video clips in DATA: frames read from each (temporal metrics)."
        ),
    ] = 150,
    workers: WorkersOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Protect a face data set with every method and parameter; measure privacy and utility.

    Writes OUTPUT/index.html (tables, plots, examples), results.csv, results.json
    and config.json.  Video clips in DATA are protected with the same settings and
    measured over time (coverage, flicker, identity along tracks, re-identification,
    frames/s): video.csv, video.json and a section of index.html.
    """
    from pixveil.evaluate.video import find_clips

    if repeat < 1:
        raise _usage(f"--repeat must be >= 1, got {repeat}")
    if video_frames < 2:
        raise _usage(f"--video-frames must be >= 2, got {video_frames}")
    clips = find_clips(data)
    try:
        config = _build_config(
            data=data,
            methods=methods,
            epsilons=epsilons,
            sweeps=sweeps,
            fixed=fixed,
            identities=identities,
            per_identity=per_identity,
            max_images=max_images,
            seed=seed,
            threshold=threshold,
            workers=workers,
            attacks=_parse_attacks(attacks, no_attacks),
            cnn_epochs=cnn_epochs,
            reconstruction_epochs=reconstruction_epochs,
            attack_image_size=attack_size,
            contexts=context,
            region=region,
            reid=reid,
            detection=detection,
            ms_ssim=ms_ssim,
            region_ms_ssim=region_ms_ssim,
            fid=fid,
            examples=examples,
        )
        settings = config.settings()
    except (ValueError, TypeError) as exc:
        raise _usage(str(exc)) from None
    written: dict[str, Path] = {}
    images = not clips or _has_images(data)
    if images:
        result = _run(config, quiet=quiet, seeds=range(seed, seed + repeat) if repeat > 1 else None)
        written = _write(result, output)
        out.print(_summary(result))
        _print_notes(result)
    if clips:
        written.update(
            _run_video(
                clips,
                settings,
                output,
                seed=seed,
                threshold=threshold,
                reid=reid,
                max_frames=video_frames,
                quiet=quiet,
                html=written.get("html"),
            )
        )
    out.print(f"report: {written['html']}")
    files = [written[k] for k in ("csv", "json", "video_csv", "video_json") if k in written]
    out.print("results: " + ", ".join(str(f) for f in files))
    if "config" in written:
        out.print(f"config: {written['config']}")
    if images:
        out.print(f"[dim]{result.timings['total']:.0f} s[/dim]")


def _has_images(data: Path) -> bool:
    from pixveil.io import is_image_path

    if data.is_file():
        return is_image_path(data)
    return any(p.is_file() and is_image_path(p) for p in data.rglob("*"))


def _run_video(
    clips: list[Path],
    settings: list[Any],
    output: Path,
    *,
    seed: int,
    threshold: float | None,
    reid: bool,
    max_frames: int,
    quiet: bool,
    html: Path | None,
) -> dict[str, Path]:
    """The temporal metrics of ``clips`` under ``settings``: files written, table printed."""
    from pixveil.evaluate.report import ReportFolder, csv_bytes, json_bytes
    from pixveil.evaluate.video import evaluate_clips, video_rows, video_section_html

    def note(message: str) -> None:
        if not quiet:
            err.print(f"video: {message}", markup=False)

    try:
        result = evaluate_clips(
            clips,
            [(s.label, s.method, dict(s.params)) for s in settings if s.method != "none"],
            seed=seed,
            face_threshold=threshold,
            reid=reid,
            max_frames=max_frames,
            progress=note,
        )
    except (InputError, MissingDependencyError) as exc:
        raise _usage(str(exc)) from None
    except PixveilError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    try:
        folder = ReportFolder(output)
        folder.write("video_csv", "video.csv", csv_bytes(result.rows()))
        folder.write("video_json", "video.json", json_bytes(result.to_dict()))
    except PixveilError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    section = video_section_html(result)
    if html is not None:
        page = html.read_text(encoding="utf-8")
        page = page.replace("</body>", section + "</body>", 1)
    else:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>pixveil video report"
            f"</title></head><body><h1>pixveil evaluate: video</h1>{section}</body></html>"
        )
    try:
        folder.write("html", "index.html", page.encode("utf-8"))
    except PixveilError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    written = dict(folder.written)
    table = Table(title="video: temporal metrics")
    for column in (
        "clip",
        "setting",
        "frames",
        "tracks",
        "coverage",
        "flicker (floor)",
        "same person along a track",
        "matches the original",
        "re-anonymised matches",
        "frames/s",
    ):
        table.add_column(column, overflow="fold")
    for row in video_rows(result):
        table.add_row(*(Text(cell) for cell in row))  # file names are never markup
    out.print(table)
    return written


@dataclass(frozen=True)
class _AttackTable:
    """How ``pixveil attack NAME`` prints its results: a title and one row per setting."""

    title: str
    columns: tuple[str, ...]
    row: Callable[[Any, dict[str, Any]], list[list[str]]]  # (SettingResult, figures) -> rows


def _by_context(a: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An attack entry's figures per context (an entry without them is its own context)."""
    if not a:
        return {}
    by_context: dict[str, dict[str, Any]] = a.get("contexts") or {a.get("context", "1.2"): a}
    return by_context


def _cnn_row(r: Any, a: dict[str, Any]) -> list[list[str]]:
    by_context = _by_context(a)
    return [
        [
            r.setting.label,
            c,
            _num(r.utility.get("ssim")),
            _pct(f["top1"]),
            _pct(f["top5"]),
            _pct(f["chance_top1"]),
            f"{f['n_train']} / {f['n_test']}",
        ]
        for c, f in by_context.items()
    ]


def _reconstruction_row(r: Any, a: dict[str, Any]) -> list[list[str]]:
    return [
        [
            r.setting.label,
            c,
            _num(f["ssim_protected"]),
            _num(f["ssim_reconstructed"]),
            _num(f["psnr_protected"], 2),
            _num(f["psnr_reconstructed"], 2),
            f"{f['n_train']} / {f['n_test']}",
        ]
        for c, f in _by_context(a).items()
    ]


def _run_attack(
    attack: str,
    table_spec: _AttackTable,
    *,
    method: str,
    epochs: int | None,
    image_size: int,
    output: Path | None,
    quiet: bool,
    **common: Any,
) -> None:
    """Run ``attack`` alone; ``common`` holds the data and sampling options of :func:`_build_config`."""
    from pixveil.evaluate import attacks_available

    reason = attacks_available().get(attack)
    if reason is not None:
        raise _usage(f"the {attack} attack cannot run: {reason}")
    epochs_key = "cnn_epochs" if attack == "cnn" else "reconstruction_epochs"
    options: dict[str, Any] = {epochs_key: epochs, **common}
    try:
        config = _build_config(
            methods=method,
            attacks=(attack,),
            attack_image_size=image_size,
            reid=False,
            detection=False,
            examples=0 if output is None else 3,
            **options,
        )
    except (ValueError, TypeError) as exc:
        raise _usage(str(exc)) from None
    result = _run(config, quiet=quiet)
    ran = [r for r in result.results if attack in r.attacks]
    if not ran:
        _print_notes(result)
        err.print(f"[red]error:[/red] the {attack} attack did not run (see the notes above)")
        raise typer.Exit(EXIT_USAGE)
    table = Table(title=table_spec.title, title_justify="left")
    for col in table_spec.columns:
        table.add_column(col, justify="left" if col == "setting" else "right")
    for r in ran:
        for row in table_spec.row(r, r.attacks[attack]):
            table.add_row(*row)
    out.print(table)
    _print_notes(result)
    if output is not None:
        written = _write(result, output)
        out.print(f"report: {written['html']}")


AttackMethodOpt = Annotated[
    str, typer.Option("--method", "-m", help="Method(s) to attack, comma-separated.")
]
EpochsOpt = Annotated[
    int | None, typer.Option("--epochs", help="Training epochs (default: the attack's).")
]
ImageSizeOpt = Annotated[
    int, typer.Option("--image-size", help="Side of the face crops (a multiple of 16).")
]
AttackOutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Also write a report (CSV, JSON, HTML) here."),
]


def _add_attack_command(name: str, attack: str, table_spec: _AttackTable, *, doc: str) -> None:
    """Register ``pixveil attack NAME``, which runs ``attack`` alone and prints its table."""

    def command(
        data: DataOpt,
        method: AttackMethodOpt = "pixelate",
        epsilons: EpsilonsOpt = "0.1,0.5,1,5",
        sweeps: SweepOpt = None,
        fixed: SetOpt = None,
        identities: IdentitiesOpt = None,
        per_identity: PerIdentityOpt = None,
        max_images: MaxImagesOpt = None,
        seed: SeedOpt = 0,
        threshold: ThresholdOpt = None,
        epochs: EpochsOpt = None,
        image_size: ImageSizeOpt = 64,
        context: ContextOpt = "1.2,2,full",
        region: RegionOpt = "face",
        output: AttackOutputOpt = None,
        workers: WorkersOpt = 0,
        quiet: QuietOpt = False,
    ) -> None:
        _run_attack(
            attack,
            table_spec,
            data=data,
            method=method,
            epsilons=epsilons,
            sweeps=sweeps,
            fixed=fixed,
            identities=identities,
            per_identity=per_identity,
            max_images=max_images,
            seed=seed,
            threshold=threshold,
            epochs=epochs,
            image_size=image_size,
            output=output,
            workers=workers,
            quiet=quiet,
            contexts=context,
            region=region,
        )

    command.__doc__ = doc
    command.__name__ = command.__qualname__ = f"attack_{name}"
    attack_app.command(name)(command)


_add_attack_command(
    "reid",
    "cnn",
    _AttackTable(
        title="CNN re-identification attack (trained on protected faces)",
        columns=("setting", "context", "SSIM", "top-1", "top-5", "chance top-1", "train / test"),
        row=_cnn_row,
    ),
    doc="CNN re-identification (McPherson et al. 2016): train on protected faces, name new ones.",
)
_add_attack_command(
    "reconstruction",
    "reconstruction",
    _AttackTable(
        title="Reconstruction attack (U-Net trained on original/protected pairs)",
        columns=(
            "setting",
            "context",
            "SSIM protected",
            "SSIM reconstructed",
            "PSNR protected",
            "PSNR reconstructed",
            "train / test",
        ),
        row=_reconstruction_row,
    ),
    doc="Reconstruction: train a U-Net on (original, protected) faces; undo held-out ones.",
)


# `pixveil attack attribution` lives in its own module (GAN-fingerprint attribution).
from pixveil.cli_attribution import register as _register_attribution  # noqa: E402

_register_attribution(attack_app)

# `pixveil attack dataset`: Table I of privacy-preserving training data.
from pixveil.cli_dataset_attack import register as _register_dataset  # noqa: E402

_register_dataset(attack_app)
