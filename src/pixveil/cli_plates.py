"""``pixveil plates``: train, export and evaluate the learned licence-plate detector.

``train`` and ``export`` need torch (the ``[gan]`` extra); ``eval`` runs the exported
ONNX model only.  Exit codes: 0 done; 1 the job failed; 2 bad usage or a missing
optional dependency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pixveil.errors import MissingDependencyError, PixveilError

__all__ = ["app"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train (resumable), export to ONNX and evaluate the learned plate detector.",
)
err = Console(stderr=True)
out = Console()


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("torch", "gan") from exc


def _shown(value: object) -> str:
    """Safe terminal text (control characters and markup escaped), as in ``pixveil.cli``."""
    from pixveil.cli import shown  # at call time: pixveil.cli imports this module

    return shown(value)


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


@app.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder (ckpt.pt, log.jsonl).")],
    plates: Annotated[
        Path | None,
        typer.Option(
            "--plates", help="Annotated photos: a folder with eu/ and us/ (*.jpg + *.txt)."
        ),
    ] = None,
    regions: Annotated[
        str, typer.Option("--regions", help="Photo folders to train on: eu, us or eu,us.")
    ] = "eu",
    faces: Annotated[
        Path | None, typer.Option("--faces", help="Face photos (lfw/<Name>/*.jpg) as negatives.")
    ] = None,
    holdout: Annotated[
        str, typer.Option("--holdout-formats", help="Plate formats never trained on ('' for none).")
    ] = "square",
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.")] = 3000,
    batch: Annotated[int, typer.Option("--batch", help="Samples per step.")] = 16,
    size: Annotated[int, typer.Option("--size", help="Training crop side (multiple of 32).")] = 256,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 2e-3,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads (0 = default).")] = 1,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    checkpoint_minutes: Annotated[
        float, typer.Option("--checkpoint-minutes", help="Minutes between checkpoints.")
    ] = 5.0,
    init_weights: Annotated[
        Path | None,
        typer.Option("--init-weights", help="Start from exported weights (plate_det.pt)."),
    ] = None,
    hard_negatives: Annotated[
        Path | None,
        typer.Option(
            "--hard-negatives", help="Mined false positives (pixveil plates mine) to train on."
        ),
    ] = None,
    p_hard: Annotated[
        float, typer.Option("--p-hard", help="Share of photo crops around a mined negative.")
    ] = 0.35,
    p_replay: Annotated[
        float, typer.Option("--p-replay", help="Share of each batch replayed from mined samples.")
    ] = 0.15,
    vanity_weight: Annotated[
        float,
        typer.Option("--vanity-weight", help="Letters-only plates drawn this many times as often."),
    ] = 1.0,
    unannotated: Annotated[
        Path | None,
        typer.Option(
            "--unannotated",
            help="Reviewed real plates the photos' annotation leaves out "
            "(bench/plate_unannotated.json): trained as plates, not background.",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from <out>/ckpt.pt.")] = False,
) -> None:
    """Train the plate network on synthetic scenes; --resume continues a run."""
    try:
        _need_torch()
        from pixveil.platedet.train import TrainConfig
        from pixveil.platedet.train import train as run_train

        cfg = TrainConfig(
            out=str(out_dir),
            plates_root=str(plates) if plates else None,
            train_regions=_split(regions),
            faces_root=str(faces) if faces else None,
            holdout_formats=_split(holdout),
            steps=steps,
            batch=batch,
            size=size,
            lr=lr,
            threads=threads,
            device=device,
            seed=seed,
            checkpoint_minutes=checkpoint_minutes,
            init_weights=str(init_weights) if init_weights else None,
            hard_negatives=str(hard_negatives) if hard_negatives else None,
            p_hard=p_hard,
            p_replay=p_replay,
            vanity_weight=vanity_weight,
            unannotated=str(unannotated) if unannotated else None,
        )

        def progress(step: int, total: int, metrics: dict[str, float]) -> None:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            out.print(f"step {step}/{total} {escape(shown)}", soft_wrap=True, highlight=False)

        ckpt = run_train(cfg, resume=resume, progress=progress)
    except MissingDependencyError as exc:
        err.print(f"[red]error:[/red] {_shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    except ValueError as exc:
        err.print(f"[red]error:[/red] {_shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    out.print(f"checkpoint: {_shown(ckpt)}", soft_wrap=True)


@app.command()
def mine(
    to: Annotated[Path, typer.Option("--to", help="JSON file to write the hard negatives to.")],
    plates: Annotated[
        Path, typer.Option("--plates", help="Annotated photos: a folder with eu/ and us/.")
    ],
    regions: Annotated[
        str, typer.Option("--regions", help="The TRAINING photo folders (never the test ones).")
    ] = "eu",
    model: Annotated[
        Path | None, typer.Option("--model", help="An exported plate_det.onnx (default: shipped).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Mining threshold.")] = 0.35,
    faces: Annotated[
        Path | None, typer.Option("--faces", help="Face photos, as for train.")
    ] = None,
    holdout: Annotated[str, typer.Option("--holdout-formats", help="As for train.")] = "square",
    size: Annotated[int, typer.Option("--size", help="Training crop side, as for train.")] = 192,
    synthetic: Annotated[
        int, typer.Option("--synthetic", help="Training-stream samples to mine (0: none).")
    ] = 2000,
    stream_seed: Annotated[
        int, typer.Option("--stream-seed", help="Seed of the mined stream (not a training seed).")
    ] = 977,
    ocr_threshold: Annotated[
        float,
        typer.Option(
            "--ocr-threshold", help="OCR plates above this are not negatives (0: no OCR)."
        ),
    ] = 0.25,
) -> None:
    """Mine a model's false positives on the training photos and stream (for --hard-negatives)."""
    try:
        from pixveil.detect.plate_net import PlateNetDetector
        from pixveil.platedet.data import load_split
        from pixveil.platedet.mine import mine_photos, mine_synthetic, save

        det = PlateNetDetector(threshold=threshold, model=str(model) if model else None, threads=1)
        second = None
        if ocr_threshold > 0:
            from pixveil.detect.plates import PlateDetector

            second = PlateDetector(threshold=ocr_threshold, threads=1).detect
        photos = load_split(plates, _split(regions))
        found = mine_photos(det.detect, photos, second_opinion=second)
        out.print(
            f"photos: {sum(len(v) for v in found.values())} negatives in {len(found)} of "
            f"{len(photos)} photos",
            soft_wrap=True,
        )
        data: dict[str, object] = {"model": str(model or "shipped"), "threshold": threshold}
        data["photos"] = found
        if synthetic > 0:
            _need_torch()
            from pixveil.platedet.train import TrainConfig, make_synth

            cfg = TrainConfig(
                out=str(to.parent),
                plates_root=str(plates),
                train_regions=_split(regions),
                faces_root=str(faces) if faces else None,
                holdout_formats=_split(holdout),
                size=size,
            )
            synth = make_synth(cfg, seed=stream_seed)
            idx = mine_synthetic(det.detect, synth, range(synthetic), second_opinion=second)
            data["synthetic"] = {"seed": stream_seed, "indices": idx, "of": synthetic}
            out.print(f"synthetic: {len(idx)} of {synthetic} samples", soft_wrap=True)
        save(to, data)
    except MissingDependencyError as exc:
        err.print(f"[red]error:[/red] {_shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    except (PixveilError, ValueError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/red] {_shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    out.print(f"hard negatives: {_shown(to)}", soft_wrap=True)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Training run folder (with ckpt.pt) or a ckpt file.")],
    to: Annotated[Path, typer.Option("--to", help="Folder for plate_det.onnx/.pt/.json.")],
    note: Annotated[
        str | None,
        typer.Option("--note", help="Text recorded in the JSON card (e.g. the command)."),
    ] = None,
) -> None:
    """Export a checkpoint to ONNX, with float16 weights for later training and a JSON card."""
    try:
        _need_torch()
        ckpt = run / "ckpt.pt" if run.is_dir() else run
        if not ckpt.is_file():
            err.print(
                f"[red]error:[/red] {_shown(ckpt)}: no checkpoint (train first)",
                soft_wrap=True,
            )
            raise typer.Exit(2)
        from pixveil.platedet.train import export_onnx

        files = export_onnx(ckpt, to, card={"note": note} if note else None)
    except MissingDependencyError as exc:
        err.print(f"[red]error:[/red] {_shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    for kind, path in files.items():
        out.print(f"{kind}: {_shown(path)} ({path.stat().st_size / 1e6:.1f} MB)", soft_wrap=True)


@app.command("eval")
def evaluate(
    plates: Annotated[
        Path, typer.Option("--plates", help="Annotated photos: a folder with eu/ and us/.")
    ],
    regions: Annotated[str, typer.Option("--regions", help="Folders to test on.")] = "eu,us",
    model: Annotated[
        Path | None, typer.Option("--model", help="An exported plate_det.onnx (default: shipped).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Score threshold.")] = 0.6,
    limit: Annotated[int, typer.Option("--limit", help="At most this many photos per folder.")] = 0,
    unannotated: Annotated[
        Path | None,
        typer.Option(
            "--unannotated",
            help="JSON of reviewed real plates the data set does not annotate "
            "(bench/plate_unannotated.json): detections on them are not false positives.",
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
) -> None:
    """Recall (IoU >= 0.5 or >= 90 % covered) and false positives per photo, per folder."""
    try:
        from pixveil.detect.plate_net import PlateNetDetector
        from pixveil.platedet.data import load_photos, load_unannotated
        from pixveil.platedet.evaluate import evaluate_photos

        others = load_unannotated(unannotated) if unannotated is not None else None
        det = PlateNetDetector(threshold=threshold, model=str(model) if model else None)
        table = Table()
        for col in ("folder", "photos", "recall", "FP / photo", "ms / photo"):
            table.add_column(col)
        results = {}
        for region in _split(regions):
            photos = load_photos(plates, region, unannotated=others)
            if limit > 0:
                photos = photos[:limit]
            r = evaluate_photos(det, photos)
            results[region] = r
            table.add_row(
                region,
                str(r["photos"]),
                f"{100 * r['recall']:.1f} %",
                f"{r['fp_per_image']:.3f}",
                f"{r['ms_per_image']:.0f}",
            )
    except (PixveilError, ValueError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/red] {_shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    out.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=1) + "\n")
