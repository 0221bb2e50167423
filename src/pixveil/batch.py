"""The batch: many files (images and videos) into an output folder, fail closed.

:func:`run_batch` walks files and folders, protects each input with one shared
:class:`~pixveil.pipeline.Anonymizer` and writes metadata-free outputs, mirroring
input folders under the output folder.  A file that cannot be read, detected,
protected or written gets no output and is reported; the batch goes on.  Videos
(by extension, :data:`pixveil.io.video.VIDEO_EXTENSIONS`) go through
:func:`pixveil.video.process_video` with the same detectors and method (the
``[video]`` extra).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixveil._onnx import resolve_providers, usable_cores
from pixveil._slots import ComputeSlots
from pixveil.config import AnonymizeConfig
from pixveil.errors import InputError, OutputError, PixveilError
from pixveil.io import (
    LoadedImage,
    ProtectedPaths,
    atomic_write_text,
    clean_stale_temps,
    is_image_path,
    output_format_for,
    output_path_for,
)
from pixveil.io.video import is_video_path, video_output_suffix
from pixveil.progress import ProgressCallback, ProgressEvent, check_progress, notify
from pixveil.types import Detections

__all__ = [
    "ALONE_SIDE",
    "INPUT_LIST_SUFFIXES",
    "MAX_WORKERS",
    "PREFETCH",
    "RUN_FILE",
    "BatchReport",
    "ImageOutcome",
    "OutputPlanner",
    "PlannedOutput",
    "collect_inputs",
    "default_workers",
    "failed_outcome",
    "file_rng",
    "process_input",
    "read_input_list",
    "run_batch",
    "write_run_file",
]

#: How many images are decoded ahead of the one being detected (plus one per extra worker).
PREFETCH = 2

#: Most images protected at once by default (:func:`default_workers`).
MAX_WORKERS = 4

#: Images with a longer side above this run alone, with every core: their detection
#: already splits into passes that use the cores, and two at once would double the
#: peak memory (about 1.8 GB for a 12 MP photo in the exhaustive mode).
ALONE_SIDE = 2048


@dataclass(frozen=True)
class ImageOutcome:
    """What happened to one input file."""

    path: Path
    output: Path | None
    detections: Detections | None
    error: str | None
    #: Method events for this image (e.g. ``{"fallback": 1}``).
    events: dict[str, int] = field(default_factory=dict)
    #: Requested targets of which nothing was found in this image.
    missing: tuple[str, ...] = ()
    #: For a video: what :func:`pixveil.video.process_video` did (frames, tracks...).
    video: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def count(self, kind: str) -> int:
        """Regions of ``kind`` protected: detections in an image, tracks in a video."""
        if self.video is not None:
            return int(self.video.tracks.get(kind, 0))
        return self.detections.count(kind) if self.detections is not None else 0


@dataclass
class BatchReport:
    """Summary of a batch run."""

    outcomes: list[ImageOutcome] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    #: The requested targets, in order.
    targets: tuple[str, ...] = ()
    #: Stale temporary files of an earlier, interrupted run that were removed.
    stale_removed: list[Path] = field(default_factory=list)
    dry_run: bool = False
    #: Inputs a resumed run skipped: an earlier run completed them (``--resume``).
    resumed: list[Path] = field(default_factory=list)
    #: Per target, the detector that ran (its options) and its model, e.g. which int8
    #: file the CPU chose; recorded in ``pixveil-run.json``.  Local engine only: the
    #: Ray engine's workers may run on machines that choose other files.
    detectors: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.outcomes)

    @property
    def n_ok(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def n_written(self) -> int:
        return sum(1 for o in self.outcomes if o.output is not None)

    @property
    def failures(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def count(self, kind: str) -> int:
        """Regions of ``kind`` protected over the batch (a video counts its tracks)."""
        return sum(o.count(kind) for o in self.outcomes)

    def without(self) -> dict[str, int]:
        """Per requested target: processed images in which it found nothing."""
        return {t: sum(1 for o in self.outcomes if o.ok and t in o.missing) for t in self.targets}

    @property
    def n_incomplete(self) -> int:
        """Processed images in which at least one requested target found nothing."""
        return sum(1 for o in self.outcomes if o.ok and o.missing)

    def to_dict(self) -> dict[str, Any]:
        kinds = sorted(
            {r.kind for o in self.outcomes if o.detections for r in o.detections}
            | {k for o in self.outcomes if o.video is not None for k in o.video.tracks}
        )
        videos = [o for o in self.outcomes if is_video_path(o.path)]
        return {
            "images": self.n_images - len(videos),
            "videos": len(videos),
            "video_frames": sum(o.video.frames for o in videos if o.video is not None),
            "written": self.n_written,
            "dry_run": self.dry_run,
            "skipped_non_images": len(self.skipped),
            "regions": {k: self.count(k) for k in kinds},
            "images_without": self.without(),
            "method_events": dict(sum((Counter(o.events) for o in self.outcomes), Counter())),
            "stale_temp_files_removed": len(self.stale_removed),
            "resumed": len(self.resumed),
            "failures": [{"file": str(o.path), "error": o.error} for o in self.failures],
            **({"detectors": self.detectors} if self.detectors else {}),
        }


def collect_inputs(
    inputs: Sequence[Path], *, exclude: Path | None = None
) -> tuple[list[tuple[Path, Path | None]], list[Path]]:
    """Expand files and folders (recursively, sorted) into image paths.

    Symbolic links to folders are not followed inside a folder input (a link
    loop would never end); linked files are read.  A file input ending in
    ``.txt`` is a list of inputs (:func:`read_input_list`).

    Returns
    -------
    images : list of (path, root)
        ``root`` is the folder the path was found under (None for a file given directly).
    skipped : list of Path
        Files without an image extension.
    """
    images: list[tuple[Path, Path | None]] = []
    skipped: list[Path] = []
    excl = exclude.resolve() if exclude is not None else None
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            root = p
            for dirpath, dirnames, filenames in os.walk(p):
                d = Path(dirpath)
                # never descend into the output folder (it may sit inside the input tree)
                dirnames[:] = sorted(
                    n for n in dirnames if excl is None or (d / n).resolve() != excl
                )
                for name in sorted(filenames):
                    f = d / name
                    if is_image_path(f) or is_video_path(f):
                        images.append((f, root))
                    else:
                        skipped.append(f)
        elif p.suffix.lower() in INPUT_LIST_SUFFIXES:
            images.extend(read_input_list(p))
        else:
            # a missing or unreadable file is an error of that file, reported with the others
            images.append((p, None))
    return images, skipped


#: A file input with one of these extensions lists the inputs, one path per line.
INPUT_LIST_SUFFIXES = (".txt",)


def read_input_list(path: Path) -> list[tuple[Path, Path | None]]:
    """The files listed in ``path`` (one per line), each with the folder to mirror it from.

    Blank lines and lines starting with ``#`` are ignored; a relative path is
    relative to the list's folder.  The outputs mirror the listed files' folders
    below their deepest common folder (so ``a/x.jpg`` and ``b/x.jpg`` do not
    collide).  A listed file that is missing or broken fails like any input.

    Raises
    ------
    InputError
        If the list cannot be read or is not UTF-8 text.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"cannot read the input list ({reason})", path=path) from exc
    base = path.parent
    files = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        f = Path(entry)
        files.append(f if f.is_absolute() else base / f)
    if not files:
        return []
    root = Path(os.path.commonpath([os.path.abspath(f.parent) for f in files]))
    return [(Path(os.path.abspath(f)), root) for f in files]


#: The run file a batch writes into its output folder.
RUN_FILE = "pixveil-run.json"


def run_batch(
    inputs: Sequence[Path | str],
    out_dir: Path | str,
    config: AnonymizeConfig | None = None,
    *,
    on_result: Callable[[ImageOutcome], None] | None = None,
    progress: ProgressCallback | None = None,
    output_file: Path | str | None = None,
    workers: int | None = None,
) -> BatchReport:
    """Protect every image in ``inputs`` (files and folders) into ``out_dir``.

    Folder inputs are mirrored under ``out_dir``.  A file that cannot be read,
    detected, protected or written is recorded as a failure and gets no output;
    the batch goes on with the others.  Decoding of the next images overlaps
    with detection of the current ones.  Stale temporary files that an
    interrupted earlier run left in ``out_dir`` are removed first (only pixveil's
    own temporary-file names).  Outputs are never written through a symbolic
    link below ``out_dir``.

    ``workers`` images are protected at once, on threads of this process, each
    with ``cores // workers`` ONNX Runtime threads per network (at least one):
    on small photos one image per core gets more from the cores than one image
    on all of them (``docs/BENCHMARKS.md`` section 9.5).  As many images again
    may be under way, waiting for their turn or for the disk: an image gives its
    turn up once what is left is ``fsync`` and the rename
    (:mod:`pixveil._slots`), so a slow disk does not idle a core.  Default (None):
    :func:`default_workers`.  Videos, and photos whose longer side exceeds
    :data:`ALONE_SIDE`, run one at a time with every core, after the inputs before
    them.  Outcomes, ``on_result`` and ``progress`` follow the input order
    whatever finishes first.

    With ``config.seed``, each input's noise comes from its own generator,
    seeded by the seed and the output's name (:func:`file_rng`, as in the Ray
    engine): the same seed gives the same bytes whatever ``workers`` is.

    ``output_file`` names the output of a single input file instead (its
    extension gives the format unless ``config.output_format`` is set);
    ``out_dir`` is then ignored.

    ``on_result`` receives each :class:`ImageOutcome` as soon as it is known;
    ``progress`` receives :class:`~pixveil.progress.ProgressEvent` values of stage
    ``"images"`` (``done`` of ``total`` inputs, ``item`` the input just handled),
    the first one with ``done=0`` before any work.
    """
    from pixveil.pipeline import Anonymizer

    config = config or AnonymizeConfig()
    if workers is None:
        workers = default_workers(config)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    anonymizer = Anonymizer(
        config, threads=max(1, usable_cores() // workers) if workers > 1 else None
    )

    @functools.cache
    def whole() -> Any:
        """The anonymizer of inputs that run alone: every core (built when first needed)."""
        return Anonymizer(config)

    images, skipped = collect_inputs([Path(i) for i in inputs], exclude=Path(out_dir))
    if output_file is not None:
        if len(images) != 1 or skipped:
            raise ValueError("an output file name needs exactly one input image")
        target = Path(output_file)
        out = target.parent
        single_fmt = (
            "video"
            if is_video_path(images[0][0])
            else output_format_for(target, config.output_format)
        )
    else:
        out = Path(out_dir)
        target = None
        single_fmt = None
    stale: list[Path] = []
    if not config.dry_run and output_file is None and out.is_dir() and not out.is_symlink():
        stale = clean_stale_temps(out)
    report = BatchReport(
        skipped=skipped,
        targets=tuple(config.targets),
        stale_removed=stale,
        dry_run=config.dry_run,
        detectors=describe_detectors(anonymizer),
    )
    report_progress = notify(check_progress(progress))
    report_progress(ProgressEvent("images", 0, len(images)))
    input_paths = [p for p, _ in images]
    all_inputs = ProtectedPaths(input_paths)
    planner = OutputPlanner(out, config, output_file=target, single_format=single_fmt)
    root_out = None if target is not None else out
    # ``workers`` images compute at once (one compute slot each); as many again may
    # be started, waiting for a slot, or waiting on the disk after giving theirs up
    # (pixveil._slots), so a slow fsync or one slow image does not idle a core.
    slots = ComputeSlots(workers)
    in_flight = 2 * workers if workers > 1 else 1
    prefetch = PREFETCH + in_flight - 1

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixveil-read") as reader,
        ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="pixveil-image") as pool,
    ):
        decoded: dict[int, Future[LoadedImage]] = {}
        # inputs started and not yet reported, oldest first: (index, planned, result)
        running: deque[tuple[int, PlannedOutput | None, Future[ImageOutcome]]] = deque()

        def decode(i: int) -> None:
            if i < len(images) and not is_video_path(images[i][0]):
                decoded[i] = reader.submit(anonymizer.read, images[i][0])

        def finish_oldest() -> None:
            i, planned, future = running.popleft()
            path = images[i][0]
            outcome = future.result()
            if planned is not None and not outcome.ok:
                # a failed input writes nothing: its output name is free for the next one
                planner.release(planned, path)
            report.outcomes.append(outcome)
            if on_result is not None:
                on_result(outcome)
            report_progress(
                ProgressEvent("images", len(report.outcomes), len(images), item=str(path))
            )

        def plan(path: Path, root: Path | None) -> PlannedOutput:
            try:
                return planner.plan(path, root)
            except OutputError:
                if not running:
                    raise
                # the name may belong to an input still running that will fail and free it
                while running:
                    finish_oldest()
                return planner.plan(path, root)

        for i in range(min(prefetch, len(images))):
            decode(i)
        for i, (path, root) in enumerate(images):
            loaded = decoded.pop(i, None)
            decode(i + prefetch)
            video = is_video_path(path)
            # videos (which report progress per frame) and large photos (whose
            # passes already use every core, and whose activations are large) run
            # alone, in this thread, with every core
            alone = video or workers == 1 or _is_large(loaded)
            if alone:
                while running:
                    finish_oldest()
            planned: PlannedOutput | None = None
            try:
                planned = plan(path, root)
            except Exception as exc:  # fail closed: no output, and say why
                future: Future[ImageOutcome] = Future()
                future.set_result(failed_outcome(path, exc))
            else:
                task = functools.partial(
                    process_input,
                    anonymizer if not alone or workers == 1 else whole(),
                    path,
                    planned,
                    loaded=loaded.result if loaded is not None else None,
                    root=root_out,
                    protected_paths=input_paths,
                    protected=all_inputs,
                    rng=_input_rng(config.seed, planned.path, out),
                    progress=report_progress,
                    slots=None if alone else slots,
                )
                if alone:
                    future = Future()
                    future.set_result(task())
                else:
                    future = pool.submit(task)
            running.append((i, planned, future))
            while len(running) >= (1 if alone else in_flight):
                finish_oldest()
        while running:
            finish_oldest()
    return report


def describe_detectors(anonymizer: Any) -> dict[str, dict[str, str]]:
    """Per target: the detector's ``repr`` (its options) and, where it has one, the
    model its session runs (``runtime.name``)."""
    out: dict[str, dict[str, str]] = {}
    for target, det in zip(anonymizer.config.targets, anonymizer.detectors, strict=True):
        entry = {"detector": repr(det)}
        runtime = getattr(det, "runtime", None)
        if runtime is not None and getattr(runtime, "name", None):
            entry["model"] = str(runtime.name)
        out[target] = entry
    return out


def _is_large(loaded: Future[LoadedImage] | None) -> bool:
    """Whether a decoded image's longer side exceeds :data:`ALONE_SIDE` (waits for it)."""
    if loaded is None:
        return False
    try:
        pixels = loaded.result().pixels
    except Exception:  # its task reports the failure
        return False
    return max(pixels.shape[:2]) > ALONE_SIDE


def default_workers(config: AnonymizeConfig) -> int:
    """Images at once by default: one per usable core, at most :data:`MAX_WORKERS`.

    One when the models run on an accelerator (``config.device`` other than
    ``cpu``, or ``auto`` resolving to one): there the cores do not run them.
    """
    if resolve_providers(config.device).device != "cpu":
        return 1
    return max(1, min(MAX_WORKERS, usable_cores()))


def file_rng(seed: int | None, name: str) -> np.random.Generator | None:
    """The generator of one input: seeded by ``seed`` and its output ``name``, or None."""
    if seed is None:
        return None
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _input_rng(seed: int | None, output: Path, out: Path) -> np.random.Generator | None:
    return file_rng(seed, os.path.relpath(output, out))


@dataclass(frozen=True)
class PlannedOutput:
    """Where one input's output goes: ``path``, its resolved ``key`` and its ``format``."""

    path: Path
    key: Path
    format: str


class OutputPlanner:
    """Chooses each input's output path and refuses two inputs with the same output.

    Shared by the engines (:func:`run_batch`, :func:`pixveil.ray_engine.run_batch_ray`)
    so that an input gets the same output name whichever runs it.  ``output_file``
    (with its ``single_format``) names the output of a single input instead.
    """

    def __init__(
        self,
        out: Path,
        config: AnonymizeConfig,
        *,
        output_file: Path | None = None,
        single_format: str | None = None,
    ) -> None:
        self.out = out
        self.config = config
        self.output_file = output_file
        self.single_format = single_format
        self._planned: dict[Path, Path] = {}

    def plan(self, path: Path, root: Path | None) -> PlannedOutput:
        """The output of ``path`` (found under ``root``); OutputError on a collision."""
        video = is_video_path(path)
        if self.output_file is not None:
            fmt = "video" if video else (self.single_format or "png")
            return PlannedOutput(self.output_file, self.output_file.resolve(), fmt)
        if video:
            fmt = "video"
            rel = Path(path.name) if root is None else _video_relative(path, root)
            dst = self.out / rel.with_suffix(video_output_suffix(path))
        else:
            fmt = output_format_for(path, self.config.output_format)
            dst = output_path_for(path, input_root=root, out_dir=self.out, format=fmt)
        key = dst.resolve()
        if key in self._planned:
            raise OutputError(f"output would collide with that of {self._planned[key]}", path=dst)
        self._planned[key] = path
        return PlannedOutput(dst, key, fmt)

    def release(self, planned: PlannedOutput, path: Path) -> None:
        """Free the output name of ``path``, which wrote nothing."""
        if self._planned.get(planned.key) == path:
            del self._planned[planned.key]


def process_input(
    anonymizer: Any,
    path: Path,
    planned: PlannedOutput,
    *,
    loaded: Callable[[], LoadedImage] | None = None,
    root: Path | None,
    protected_paths: Sequence[Path],
    protected: ProtectedPaths,
    rng: Any = None,
    progress: ProgressCallback | None = None,
    slots: ComputeSlots | None = None,
) -> ImageOutcome:
    """Protect one input (image or video) into ``planned``; never raises.

    The per-file step of every engine.  ``loaded`` returns the decoded image
    (e.g. a prefetching future's ``result``); without it the image is read here.
    ``protected_paths`` are the inputs of the run (no output may replace one),
    ``protected`` the same prepared once.  With ``slots``, an image is protected
    and encoded inside one of its compute slots, taken once the image is decoded.
    Any failure becomes an outcome with a one-line ``error`` and no output.
    """
    try:
        if is_video_path(path):
            return _process_video(
                anonymizer,
                path,
                planned.path,
                root=root,
                protected_paths=protected_paths,
                progress=progress or (lambda _e: None),
            )
        image = loaded() if loaded is not None else anonymizer.read(path)
        with slots.hold() if slots is not None else contextlib.nullcontext():
            return anonymizer.process_file(
                image,
                planned.path,
                protected_paths=protected,
                rng=rng,
                root=root,
                format=planned.format,
            )
    except Exception as exc:  # fail closed on anything, and say what it was
        return failed_outcome(path, exc)


def failed_outcome(path: Path, exc: BaseException) -> ImageOutcome:
    """The outcome of an input that failed with ``exc`` (no output, a one-line reason)."""
    if isinstance(exc, (PixveilError, OSError)):
        return ImageOutcome(path, None, None, _one_line(exc, path))
    return ImageOutcome(path, None, None, _one_line(exc, path, prefix=type(exc).__name__))


def _video_relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root))


def _process_video(
    anonymizer: Any,
    path: Path,
    dst: Path,
    *,
    root: Path | None,
    protected_paths: Sequence[Path],
    progress: ProgressCallback,
) -> ImageOutcome:
    """One video through :func:`pixveil.video.process_video` (raises on failure: no output)."""
    from pixveil.video import process_video

    config = anonymizer.config

    def frames(done: int, total: int | None) -> None:
        progress(ProgressEvent("frames", done, total, item=str(path)))

    result = process_video(
        path,
        None if config.dry_run else dst,
        config,
        anonymizer=anonymizer,
        detect_every=config.detect_every,
        audio=config.audio,
        noise=config.video_noise,
        root=root,
        protected_paths=protected_paths,
        progress=frames,
    )
    missing = tuple(
        t for t, kind in anonymizer.target_kinds.items() if not result.tracks.get(kind, 0)
    )
    return ImageOutcome(path, result.output, None, None, dict(result.events), missing, result)


def write_run_file(out_dir: Path | str, config: AnonymizeConfig, report: BatchReport) -> Path:
    """Write ``pixveil-run.json`` (resolved config and summary) into ``out_dir``, atomically.

    Raises
    ------
    OutputError
        When it cannot be written (a folder of that name, a symbolic link, no permission).
    """
    path = Path(out_dir) / RUN_FILE
    if path.is_dir() or path.is_symlink():
        raise OutputError("cannot write the run file: a folder or link has its name", path=path)
    text = json.dumps({"config": config.to_dict(), "summary": report.to_dict()}, indent=2) + "\n"
    try:
        atomic_write_text(path, text, root=Path(out_dir))
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the run file ({exc.strerror or exc})", path=path) from exc
    return path


def _one_line(exc: BaseException, path: Path, *, prefix: str | None = None) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (InputError, OutputError)) and exc.path is not None:
        msg = " ".join(exc.reason.split())
        if exc.path != path:
            msg = f"{exc.path}: {msg}"
    elif isinstance(exc, OSError) and exc.strerror:
        msg = exc.strerror
    if prefix:
        msg = f"{prefix}: {msg}"
    return msg
