"""Video: speed and coverage of pixveil next to deface, and which tracker holds tracks best.

Everything runs on clips generated here from scikit-image's astronaut portrait
(faces moving and scaling across a textured background, one crossing another);
nothing is read from or written into the repository.

Sections (``--section``):

``trackers``
    CenterFace detections of every frame of a 640x360 clip (3 faces, 90 frames)
    are fed to each tracker with a detection on one frame in ``k``; a detection
    belongs to the face whose pasted rectangle holds its centre.  Per tracker
    and ``k``: track ids per face (1 is ideal) and id switches (consecutive
    detections of one face with different ids).

``speed``
    A 1280x720, 30 fps clip with an AAC track.  ``pixveil.video.process_video``
    with blur at ``detect_every`` 1, 2 and 3 without tracked-face windows, at the
    ``--tracked K,N`` settings (full detection on one frame in K, windows on one
    frame in N between), and with ``--max-size``, then the
    ``deface`` command line on a copy in a temporary folder (its own every-frame
    CenterFace, ``--keep-audio``).  Frames per second of each (wall time of the
    whole file-to-file run, model loading included), the ratio to deface, and
    per-frame coverage of pixveil's protected regions against pixveil's own
    every-frame detections at full resolution (:func:`pixveil.video.metrics.coverage`).

``real``
    The same coverage on the shared real clips (``../shared/data/video``: an
    animated film excerpt with faces, pedestrians seen from above).

``windows``
    ``FaceDetector.detect_near`` against the full pass on held-out clips: box
    precision and cost at three face sizes; and the scene-cut check's thumbnail
    differences on the shared real clips.

``coverage``
    Four generated face clips (LFW people; ``--clip-seed`` > 0 draws held-out
    ones) and pans over shared plate photos: share of every-frame full-resolution
    detections covered under each setting.

Run from the repository root::

    python bench/bench_video.py                       # both sections
    python bench/bench_video.py --section speed --frames 90
    python bench/bench_video.py --section trackers
    python bench/bench_video.py --section coverage --clip-seed 7 --plate-clips 0 \
        --face-mode default,fast                      # the int8 network on video
    python bench/bench_video.py --section coverage --clip-seed 11 --plate-clips 0 \
        --face-mode default,fast --tracked 8,1 --only-tracked   # at the video default
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

CROP = (slice(20, 220), slice(110, 290))  # the astronaut's head


@dataclass(frozen=True)
class Sprite:
    start: tuple[float, float]
    end: tuple[float, float]
    scale: tuple[float, float]
    mirror: bool = False


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[CROP])


def render(
    sprites: Sequence[Sprite], n: int, size: tuple[int, int], seed: int = 0
) -> tuple[list[np.ndarray], list[list[tuple[int, int, int, int]]]]:
    """Frames and, per frame, each sprite's pasted rectangle (x0, y0, x1, y1): the astronaut."""
    face = _astronaut()
    return render_people(sprites, [face] * len(sprites), n, size, seed)


def encode(path: Path, frames: Sequence[np.ndarray], fps: int = 30) -> None:
    """H.264 (CRF 18) + a 440 Hz AAC tone, as a camera would write it."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "veryfast", "crf": "18"}
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        sr = 48000
        for s0 in range(0, int(sr * len(frames) / fps), 1024):
            x = (0.2 * np.sin(2 * np.pi * 440 * np.arange(s0, s0 + 1024) / sr)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(x[None], format="fltp", layout="mono")
            af.sample_rate, af.pts = sr, s0
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in head]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for j, r in enumerate(cells):
        print(
            "  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(r))
        )
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print()


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


# ----------------------------------------------------------------------------- trackers

TRACK_SPRITES = (
    Sprite((20, 40), (420, 120), (0.45, 0.7)),  # fastest (400 px over the clip), growing
    Sprite((560, 170), (160, 60), (0.6, 0.4), mirror=True),  # fast, shrinking, crosses
    Sprite((250, 230), (330, 200), (0.35, 0.4)),  # slow, small
)


def _owner(box: Sequence[float], rects: Sequence[tuple[int, int, int, int]]) -> int | None:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    inside = [j for j, (x0, y0, x1, y1) in enumerate(rects) if x0 <= cx < x1 and y0 <= cy < y1]
    if len(inside) == 1:
        return inside[0]
    return None  # in two rectangles at once (crossing) or in none: not scored


def _pixveil_ids(dets_per_frame, k: int, fps: float, name: str):
    from pixveil.types import Region
    from pixveil.video.tracking import DetectionTracker

    tr = DetectionTracker(name, frame_rate=fps, max_gap_frames=15)
    out = []
    for i, dets in enumerate(dets_per_frame):
        if i % k:
            continue
        regions = [Region(tuple(b), "face", s) for b, s in dets]
        got = tr.update(regions, i / fps)
        out.append((i, [(tid, r.box) for tid, r in got]))
    return out


def bench_trackers(args: argparse.Namespace) -> None:
    from pixveil.detect import get_detector
    from pixveil.video.tracking import TRACKERS

    det = get_detector("faces")
    rows = []
    for n in (90, 45):  # the same paths, at two speeds
        frames, rects = render(TRACK_SPRITES, n, (640, 360))
        dets = [[(r.box, r.score) for r in det.detect(img)] for img in frames]
        speed = 400 / n
        for k in (1, 3, 5):
            for name in TRACKERS:
                seq = _pixveil_ids(dets, k, 30.0, name)
                ids: dict[int, list[int]] = {}
                for i, items in seq:
                    for tid, box in items:
                        owner = _owner(box, rects[i])
                        if owner is not None:
                            ids.setdefault(owner, []).append(tid)
                per_face = [len(set(v)) for v in ids.values()]
                switches = sum(
                    sum(1 for a, b in itertools.pairwise(v) if a != b) for v in ids.values()
                )
                rows.append(
                    (name, f"{speed:.1f}", k, float(np.mean(per_face)), max(per_face), switches)
                )
    print(
        "trackers: 640x360 clip, 3 faces (two crossing), fastest face moving 4.4 or 8.9 px/frame\n"
    )
    table(("tracker", "px/frame", "detect every", "ids per face", "max", "id switches"), rows)


# ----------------------------------------------------------------------------- speed

SPEED_SPRITES = (
    Sprite((60, 80), (840, 240), (0.9, 1.3)),
    Sprite((1080, 330), (400, 120), (1.1, 0.8), mirror=True),
    Sprite((500, 420), (620, 380), (0.6, 0.7)),
)


def bench_speed(args: argparse.Namespace) -> None:
    from pixveil.config import AnonymizeConfig
    from pixveil.io.video import open_video
    from pixveil.pipeline import Anonymizer
    from pixveil.video import process_video
    from pixveil.video.metrics import coverage

    n = args.frames
    frames, _ = render(SPEED_SPRITES, n, (1280, 720), seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        encode(clip, frames)
        del frames
        cfg = AnonymizeConfig(targets=("faces",), device="cpu")
        an = Anonymizer(cfg)
        with open_video(clip) as reader:
            decoded = [f.pixels for f in reader]
        t0 = time.perf_counter()
        reference = [[r.box for r in an.detect(img)] for img in decoded]
        ref_s = time.perf_counter() - t0
        deface_ref = _deface_boxes(decoded)
        del decoded
        print(
            f"speed: {n} frames of 1280x720 at 30 fps, H.264 + AAC, 3 faces; "
            f"every-frame reference detection {n / ref_s:.1f} frames/s\n"
        )
        rows = []
        settings = [("pixveil blur", k, None, 0) for k in (1, 2, 3)]
        settings += [("pixveil blur", k, None, te) for k, te in _tracked(args)]
        settings += [("pixveil blur", k, args.max_size, 0) for k in (1, 3, 5)]
        for label, k, max_size, te in settings:
            regions: list[list] = []
            t0 = time.perf_counter()  # models loaded inside the timing, as deface's are
            c = AnonymizeConfig(
                targets=("faces",),
                device="cpu",
                video_max_size=max_size,
                detect_every=k,
                track_every=te,
            )
            a = Anonymizer(c)
            out = process_video(
                clip,
                Path(tmp) / f"out_{k}_{max_size}_{te}.mp4",
                anonymizer=a,
                detect_every=k,
                on_frame=lambda r, regions=regions: regions.append([t.region for t in r.regions]),
            )
            wall = time.perf_counter() - t0
            cov = coverage(reference, regions, (1280, 720))
            vs_deface = (
                coverage(deface_ref, regions, (1280, 720)) if deface_ref is not None else None
            )
            rows.append(
                [
                    f"{label} {_label(k, max_size, te)}"
                    + (" (default)" if _is_default(k, max_size, te) else ""),
                    n / wall,
                    cov.rate,
                    f"{cov.covered}/{cov.total}",
                    "" if vs_deface is None else f"{vs_deface.covered}/{vs_deface.total}",
                    out.tracks.get("face", 0),
                ]
            )
        deface = shutil.which("deface") or str(Path(sys.executable).with_name("deface"))
        copy = Path(tmp) / "deface_in.mp4"
        shutil.copy(clip, copy)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [deface, str(copy), "-o", str(Path(tmp) / "deface_out.mp4"), "--keep-audio"],
            capture_output=True,
            text=True,
        )
        d_wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print("deface failed:", proc.stderr[-500:])
            d_fps = float("nan")
        else:
            d_fps = n / d_wall
        rows.append(["deface (every frame)", d_fps, "", "", "", ""])
        for r in rows[:-1]:
            r.insert(2, r[1] / d_fps if d_fps == d_fps else float("nan"))
        rows[-1].insert(2, 1.0)
        table(
            (
                "run",
                "frames/s",
                "x deface",
                "coverage",
                "covered",
                "deface's boxes covered",
                "tracks",
            ),
            rows,
        )


def _deface_boxes(frames: Sequence[np.ndarray]) -> list[list[tuple[float, ...]]] | None:
    """deface's own every-frame detections (its CenterFace, full size, threshold 0.2)."""
    try:
        from deface.centerface import CenterFace
    except ImportError:
        return None
    cf = CenterFace(in_shape=None, backend="auto")
    out = []
    for img in frames:
        dets, _ = cf(img, threshold=0.2)
        out.append([tuple(float(v) for v in d[:4]) for d in dets])
    return out


def _tracked(args: argparse.Namespace) -> list[tuple[int, int]]:
    """The ``--tracked K,N`` settings: full detection every K frames, windows every N."""
    out = []
    for text in args.tracked:
        k, _, te = text.partition(",")
        out.append((int(k), int(te or 1)))
    return out


def _label(k: int, px: int | None, te: int) -> str:
    return f"k={k}, {px or 'full'}" + (f", tracked every {te}" if te else "")


def _is_default(k: int, px: int | None, te: int) -> bool:
    from pixveil.config import VIDEO_DETECT_EVERY, VIDEO_MAX_SIZE, VIDEO_TRACK_EVERY

    return (k, px, te) == (VIDEO_DETECT_EVERY, VIDEO_MAX_SIZE, VIDEO_TRACK_EVERY)


def _mode_label(k: int, px: int | None, te: int, mode: str | None, modes: list) -> str:
    label = _label(k, px, te) + (" (default)" if _is_default(k, px, te) else "")
    return label if len(modes) == 1 else f"{label}, --detect {mode or 'default'}"


# ----------------------------------------------------------------------------- coverage

#: The shared LFW photos give the coverage clips many different people; without
#: them every sprite is scikit-image's astronaut.
LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"
PLATES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "plates"


def _people(n: int, seed: int) -> list[np.ndarray]:
    """``n`` head-and-shoulders crops (170x150) of different LFW people (astronaut without LFW)."""
    folders = sorted(p for p in LFW.glob("*") if p.is_dir()) if LFW.is_dir() else []
    if not folders:
        return [_astronaut()] * n
    rng = np.random.default_rng(seed)
    out = []
    for j in rng.choice(len(folders), size=n, replace=False):
        photo = sorted(folders[j].glob("*.jpg"))[0]
        img = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        out.append(np.ascontiguousarray(img[40:210, 50:200]))
    return out


def render_people(
    sprites: Sequence[Sprite],
    faces: Sequence[np.ndarray],
    n: int,
    size: tuple[int, int],
    seed: int,
) -> tuple[list[np.ndarray], list[list[tuple[int, int, int, int]]]]:
    """Like :func:`render`, sprite ``j`` showing ``faces[j]``: frames and pasted rectangles."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([60 + 80 * xx / w, 70 + 60 * yy / h, 110 - 40 * xx / w], axis=2)
    bg = np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8)
    frames, rects = [], []
    for i in range(n):
        t = i / max(1, n - 1)
        img = bg.copy()
        boxes = []
        for s, face in zip(sprites, faces, strict=True):
            k = s.scale[0] + t * (s.scale[1] - s.scale[0])
            src = face[:, ::-1] if s.mirror else face
            f = cv2.resize(src, (round(src.shape[1] * k), round(src.shape[0] * k)))
            x = round(s.start[0] + t * (s.end[0] - s.start[0]))
            y = round(s.start[1] + t * (s.end[1] - s.start[1]))
            fh, fw = f.shape[:2]
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + fw), min(h, y + fh)
            if x1 > x0 and y1 > y0:
                img[y0:y1, x0:x1] = f[y0 - y : y1 - y, x0 - x : x1 - x]
            boxes.append((x, y, x + fw, y + fh))
        frames.append(img)
        rects.append(boxes)
    return frames, rects


def _grid_sprites(
    count: int, size: tuple[int, int], scale: tuple[float, float], speed: float, n: int, seed: int
) -> list[Sprite]:
    """``count`` sprites on a grid, each drifting ``speed`` px/frame in a random direction."""
    w, h = size
    rng = np.random.default_rng(seed)
    cols = math.ceil(math.sqrt(count * w / h))
    rows = math.ceil(count / cols)
    out = []
    for j in range(count):
        cx = (j % cols + 0.5) * w / cols - 75 * scale[0]
        cy = (j // cols + 0.5) * h / rows - 85 * scale[0]
        a = rng.uniform(0, 2 * math.pi)
        dx, dy = speed * n * math.cos(a), speed * n * math.sin(a)
        k0, k1 = rng.uniform(*scale), rng.uniform(*scale)
        out.append(Sprite((cx, cy), (cx + dx, cy + dy), (k0, k1), mirror=bool(j % 2)))
    return out


Clip = tuple[str, tuple[int, int], list[np.ndarray], list[list[tuple[int, int, int, int]]] | None]


def _coverage_clips(n: int, offset: int = 0) -> list[Clip]:
    """The four coverage clips; ``offset`` > 0 draws other people, paths and
    backgrounds (the crossing clip then uses grid sprites too)."""
    clips = []
    faces = _people(3, seed=1 + offset)
    sprites = (
        SPEED_SPRITES
        if offset == 0
        else _grid_sprites(3, (1280, 720), (0.9, 1.3), 6.0, n, seed=1 + offset)
    )
    clips.append(
        (
            "720p, 3 large faces" + (", crossing" if offset == 0 else ""),
            (1280, 720),
            *render_people(sprites, faces, n, (1280, 720), 1 + offset),
        )
    )
    sp = _grid_sprites(6, (1280, 720), (0.35, 0.6), 2.0, n, seed=2 + offset)
    clips.append(
        (
            "720p, 6 small faces (40-70 px)",
            (1280, 720),
            *render_people(sp, _people(6, 2 + offset), n, (1280, 720), 2 + offset),
        )
    )
    sp = _grid_sprites(4, (1280, 720), (0.5, 0.9), 12.0, n, seed=3 + offset)
    clips.append(
        (
            "720p, 4 fast faces (12 px/frame)",
            (1280, 720),
            *render_people(sp, _people(4, 3 + offset), n, (1280, 720), 3 + offset),
        )
    )
    sp = _grid_sprites(10, (1920, 1080), (0.4, 1.0), 3.0, n, seed=4 + offset)
    clips.append(
        (
            "1080p, 10 faces (45-110 px)",
            (1920, 1080),
            *render_people(sp, _people(10, 4 + offset), n, (1920, 1080), 4 + offset),
        )
    )
    return clips


def _inside_any(box: Sequence[float], rects: Sequence[tuple[int, int, int, int]]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(x0 <= cx < x1 and y0 <= cy < y1 for x0, y0, x1, y1 in rects)


def _plate_pan(n: int, photo: Path) -> list[np.ndarray]:
    """A 1280x720 window panning left to right and zooming in across a plate photo."""
    img = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    k = max(1600 / w, 900 / h)
    img = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    frames = []
    for i in range(n):
        t = i / max(1, n - 1)
        zw = round(w * (1.0 - 0.3 * t))
        zh = round(zw * 9 / 16)
        zh = min(zh, h)
        x = round((w - zw) * t)
        y = round((h - zh) * 0.5)
        crop = img[y : y + zh, x : x + zw]
        frames.append(cv2.resize(crop, (1280, 720), interpolation=cv2.INTER_AREA))
    return frames


def bench_coverage(args: argparse.Namespace) -> None:
    """Coverage of every-frame full-resolution detections under the video defaults and variants."""
    from pixveil.config import AnonymizeConfig
    from pixveil.pipeline import Anonymizer
    from pixveil.video import anonymize_video
    from pixveil.video.metrics import coverage

    n = args.coverage_frames
    settings = [(k, None, te) for k, te in _tracked(args)]
    if not args.only_tracked:
        settings = [(1, None, 0), (2, None, 0), (3, None, 0), (5, None, 0), *settings]
        settings += [(3, 960, 0), (1, 640, 0), (3, 640, 0)]
    jobs: list[tuple[Any, ...]] = [("faces", *c) for c in _coverage_clips(n, args.clip_seed)]
    if PLATES.is_dir() and args.plate_clips > 0:
        photos = sorted(PLATES.rglob("*.jpg"))
        for photo in photos[:: max(1, len(photos) // args.plate_clips)][: args.plate_clips]:
            name = f"720p pan over plate photo {photo.stem}"
            jobs.append(("plates", name, (1280, 720), _plate_pan(n, photo), None))
    rows = []
    modes = [None if m == "default" else m for m in args.face_mode.split(",")]
    totals: dict[tuple[str, int, int | None, int, str | None], list[int]] = {}
    for target, name, size, frames, rects in jobs:
        full = Anonymizer(AnonymizeConfig(targets=(target,), device="cpu"))
        reference = [[r.box for r in full.detect(img, max_size=None)] for img in frames]
        if rects is not None:  # faces: only detections on a pasted face (no false positive)
            reference = [
                [b for b in boxes if _inside_any(b, rs)]
                for boxes, rs in zip(reference, rects, strict=True)
            ]
        for (k, px, te), mode in itertools.product(settings, modes):
            an = Anonymizer(
                AnonymizeConfig(
                    targets=(target,),
                    device="cpu",
                    detect_every=k,
                    video_max_size=px,
                    track_every=te,
                    face_mode=mode,
                )
            )
            regions = [
                [t.region for t in r.regions] for r in anonymize_video(iter(frames), anonymizer=an)
            ]
            cov = coverage(reference, regions, size)
            key = (target, k, px, te, mode)
            tot = totals.setdefault(key, [0, 0])
            tot[0] += cov.covered
            tot[1] += cov.total
            label = _mode_label(k, px, te, mode, modes)
            rows.append((name, label, f"{100 * cov.rate:.1f} %", f"{cov.covered}/{cov.total}"))
        print(f"  done: {name}", file=sys.stderr, flush=True)
    print(
        f"coverage: {n} frames per clip at 30 fps; reference = every-frame detection at full "
        "resolution (faces: those on a pasted face); covered = >= 90 % of a reference box "
        "inside the protected pixels\n"
    )
    table(("clip", "detect every, size", "coverage", "covered"), rows)
    table(
        ("target", "detect every, size", "coverage (all clips)", "covered"),
        [
            (t, _mode_label(k, px, te, m, modes), f"{100 * c / max(1, a):.2f} %", f"{c}/{a}")
            for (t, k, px, te, m), (c, a) in totals.items()
        ],
    )


# ----------------------------------------------------------------------------- real clips

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video"


def bench_real(args: argparse.Namespace) -> None:
    """Coverage on the shared real clips (never used to choose a setting)."""
    from pixveil.config import AnonymizeConfig
    from pixveil.io.video import open_video
    from pixveil.pipeline import Anonymizer
    from pixveil.video import anonymize_video
    from pixveil.video.metrics import coverage

    clips = [VIDEOS / n for n in ("Megamind.avi", "vtest.avi") if (VIDEOS / n).is_file()]
    if not clips:
        print("real clips: ../shared/data/video not found, skipped")
        return
    settings = [(1, 0), (2, 0), (3, 0), *_tracked(args)]
    rows = []
    for path in clips:
        with open_video(path) as reader:
            rate = float(reader.info.frame_rate or 30)
            frames = [f.pixels for _, f in zip(range(args.real_frames), reader, strict=False)]
        h, w = frames[0].shape[:2]
        full = Anonymizer(AnonymizeConfig(targets=("faces",), device="cpu"))
        reference = [[r.box for r in full.detect(img, max_size=None)] for img in frames]
        for k, te in settings:
            an = Anonymizer(
                AnonymizeConfig(targets=("faces",), device="cpu", detect_every=k, track_every=te)
            )
            t0 = time.process_time()
            regions = [
                [t.region for t in r.regions]
                for r in anonymize_video(iter(frames), anonymizer=an, frame_rate=rate)
            ]
            cpu = (time.process_time() - t0) / len(frames) * 1000
            cov = coverage(reference, regions, (w, h))
            label = _label(k, None, te) + (" (default)" if _is_default(k, None, te) else "")
            rows.append(
                (
                    f"{path.name} ({len(frames)} frames, {w}x{h})",
                    label,
                    f"{100 * cov.rate:.2f} %",
                    f"{cov.covered}/{cov.total}",
                    f"{cpu:.0f}",
                )
            )
        print(f"  done: {path.name}", file=sys.stderr, flush=True)
    print(
        "real clips: reference = every-frame detection at full resolution (every detection, "
        "no ground truth); CPU ms per frame of detection + tracking + blur (frames in memory)\n"
    )
    table(("clip", "setting", "coverage", "covered", "CPU ms/frame"), rows)


# ----------------------------------------------------------------------------- windows


def bench_windows(args: argparse.Namespace) -> None:
    """detect_near against the full pass: box precision and cost per face size; scene cuts."""
    from pixveil.detect.faces import FaceDetector
    from pixveil.video.engine import CUT_THRESHOLD, _CutDetector

    det = FaceDetector()
    clips = _coverage_clips(30, 100)  # held-out clips: nothing was tuned on them
    rows = []
    for face_px in (40.0, 48.0, 64.0):
        iou, size, shift, ms, calls = [], [], [], 0.0, 0
        for _, _, frames, rects in clips:
            for i in range(0, 30, 3):
                full = [
                    r
                    for r in det.detect(frames[i])
                    if _inside_any(r.box, rects[i]) and r.score > 0.5
                ]
                t0 = time.perf_counter()
                near = det.detect_near(frames[i], [r.box for r in full], face_px=face_px)
                ms += (time.perf_counter() - t0) * 1000
                calls += 1
                for r in full:
                    if not near:
                        continue
                    n = max(near, key=lambda q, r=r: r.iou(q.box))
                    w = r.box[2] - r.box[0]
                    iou.append(r.iou(n.box))
                    size.append((n.box[2] - n.box[0]) / w)
                    shift.append(abs((n.box[0] + n.box[2] - r.box[0] - r.box[2]) / 2) / w)
        rows.append(
            (
                f"{face_px:g}",
                len(iou),
                f"{np.median(iou):.3f}",
                f"{np.percentile(size, 5):.3f}-{np.percentile(size, 95):.3f}",
                f"{np.percentile(shift, 95):.3f}",
                f"{ms / calls:.1f}",
            )
        )
    print(
        "windows: held-out coverage clips (--clip-seed 100), every 3rd of 30 frames; each "
        "full-resolution detection above 0.5 on a pasted face, searched again by detect_near\n"
    )
    table(
        (
            "face px",
            "faces",
            "IoU median",
            "width ratio p5-p95",
            "centre shift p95 (x width)",
            "ms per call (all windows)",
        ),
        rows,
    )
    cut_rows = []
    for path in [VIDEOS / n for n in ("Megamind.avi", "vtest.avi") if (VIDEOS / n).is_file()]:
        from pixveil.io.video import open_video

        cuts = _CutDetector(threshold=0.0)  # every difference above 0: record them all
        diffs = []
        with open_video(path) as reader:
            for _, f in zip(range(args.real_frames), reader, strict=False):
                prev = cuts._prev
                cuts.is_cut(f.pixels)
                if prev is not None:
                    diffs.append(float(np.abs(cuts._prev - prev).mean()))
        above = sorted(d for d in diffs if d > CUT_THRESHOLD)
        below = max((d for d in diffs if d <= CUT_THRESHOLD), default=0.0)
        cut_rows.append(
            (
                path.name,
                len(diffs),
                len(above),
                ", ".join(f"{d:.1f}" for d in above),
                f"{below:.1f}",
            )
        )
    if cut_rows:
        print(
            f"\nscene cuts: thumbnail difference of consecutive frames (threshold {CUT_THRESHOLD:g})\n"
        )
        table(("clip", "pairs", "cuts", "their differences", "largest other"), cut_rows)


# ----------------------------------------------------------------------------- gan-face


def bench_gan(args: argparse.Namespace) -> None:
    """Identity stability of gan-face along tracks, and re-identification of the original."""
    from pixveil.config import AnonymizeConfig
    from pixveil.evaluate.reid import DEFAULT_THRESHOLD, get_face_encoder
    from pixveil.pipeline import Anonymizer
    from pixveil.protect import protect_regions
    from pixveil.video import anonymize_video

    n = args.gan_frames
    frames, _ = render(TRACK_SPRITES[:2], n, (640, 360), seed=2)
    enc = get_face_encoder()
    an = Anonymizer(AnonymizeConfig(targets=("faces",), method="gan-face", device="cpu"))
    Seq = list[tuple[int, np.ndarray, list[tuple[int, tuple]]]]
    runs: list[tuple[str, Seq]] = []
    from pixveil.config import VIDEO_DETECT_EVERY, VIDEO_TRACK_EVERY

    settings = [(1, 0), (3, 0), (VIDEO_DETECT_EVERY, VIDEO_TRACK_EVERY)]
    for (k, te), draw in itertools.product(settings, range(args.repeat)):
        rng = np.random.default_rng(1000 + draw)
        seq = [
            (r.index, r.pixels, [(t.track, t.region.box) for t in r.regions])
            for r in anonymize_video(
                iter(frames), anonymizer=an, detect_every=k, track_every=te, rng=rng
            )
        ]
        runs.append((f"pixveil video, {_label(k, None, te)}", seq))
    # the photo method applied to each frame on its own (a fresh latent per frame)
    for draw in range(args.repeat):
        rng = np.random.default_rng(2000 + draw)
        per_frame: Seq = []
        for i, img in enumerate(frames):
            dets = an.detect(img)
            out = protect_regions(an.method, img, dets, rng=rng, companion=an.companion).image
            per_frame.append((i, out, [(-1, r.box) for r in dets]))
        runs.append(("gan-face photo method per frame", per_frame))
    stats: dict[str, tuple[int, list[float], int]] = {}
    for label, seq in runs:
        last: dict[int, np.ndarray] = {}
        centres: dict[int, tuple[float, float]] = {}
        total, consecutive, verified = stats.get(label, (0, [], 0))
        for i, pixels, items in seq:
            for tid, box in items:
                c = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                if tid < 0:  # no tracks: follow each face by its nearest centre
                    near = min(centres, key=lambda t: math.dist(centres[t], c), default=None)
                    ok = near is not None and math.dist(centres[near], c) < 40
                    tid = near if ok and near is not None else len(centres)
                centres[tid] = c
                e = enc.encode(pixels, box)
                total += 1
                verified += (
                    float(np.linalg.norm(e - enc.encode(frames[i], box))) < DEFAULT_THRESHOLD
                )
                if tid in last:
                    consecutive.append(float(np.linalg.norm(e - last[tid])))
                last[tid] = e
        stats[label] = (total, consecutive, verified)
    rows = []
    for label, (total, consecutive, verified) in stats.items():
        d = np.array(consecutive)
        rows.append(
            (
                label,
                total,
                float(np.mean(d < DEFAULT_THRESHOLD)),
                float(np.median(d)),
                verified / total,
            )
        )
    print(
        f"gan-face: {n} frames of 640x360, 2 faces, {args.repeat} noise draws per setting; "
        f"dlib distance, same person below {DEFAULT_THRESHOLD}\n"
    )
    table(("run", "face-frames", "consecutive same", "median dist", "matches original"), rows)


# ----------------------------------------------------------------------------- flicker


def bench_flicker(args: argparse.Namespace) -> None:
    """Temporal warping error inside the protected regions, per method."""
    from pixveil.config import AnonymizeConfig
    from pixveil.pipeline import Anonymizer
    from pixveil.protect import protect_regions
    from pixveil.video import anonymize_video
    from pixveil.video.metrics import flicker, protected_mask

    n = args.gan_frames
    frames, _ = render(TRACK_SPRITES[:2], n, (640, 360), seed=2)
    rows = []
    floor = None
    settings = [
        ("blur", "frame", True),
        ("pixelate", "frame", True),
        ("dp-pix", "frame", True),
        ("dp-pix", "track", True),
        ("gan-face", "track", True),
        ("gan-face", "photo method per frame", False),
    ]
    for method, noise, video in settings:
        an = Anonymizer(AnonymizeConfig(targets=("faces",), method=method, device="cpu", seed=0))
        p = an.method.params
        if video:
            res = list(
                anonymize_video(
                    iter(frames), anonymizer=an, noise="track" if noise == "track" else "frame"
                )
            )
            out = [r.pixels for r in res]
            regions = [[t.region for t in r.regions] for r in res]
        else:
            rng = np.random.default_rng(0)
            regions = [list(an.detect(img)) for img in frames]
            out = [
                protect_regions(an.method, img, regs, rng=rng, companion=an.companion).image
                for img, regs in zip(frames, regions, strict=True)
            ]
        masks = [protected_mask(r, (640, 360), shape=p.shape, margin=p.margin) for r in regions]
        if floor is None:
            floor = flicker(frames, frames, masks)
        rows.append((method, noise, flicker(frames, out, masks)))
    rows.append(("(original frames: the flow's own error)", "", floor))
    print(f"flicker: {n} frames of 640x360, 2 faces; mean absolute warping error (0..255)\n")
    table(("method", "noise", "flicker"), rows)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--section",
        choices=("all", "trackers", "speed", "coverage", "real", "windows", "gan", "flicker"),
        default="all",
    )
    ap.add_argument("--coverage-frames", type=int, default=60, help="frames of each coverage clip")
    ap.add_argument("--plate-clips", type=int, default=4, help="plate-photo pans (shared data)")
    ap.add_argument(
        "--real-frames", type=int, default=300, help="frames read from each shared real clip"
    )
    ap.add_argument(
        "--face-mode", default="default",
        help="coverage: face search of the protected runs, comma-separated: default, "
        "exhaustive, cascade, fast (the reference stays the float every-frame pass)",
    )  # fmt: skip
    ap.add_argument(
        "--only-tracked", action="store_true",
        help="coverage: only the --tracked settings (e.g. the default, --tracked 8,1)",
    )  # fmt: skip
    ap.add_argument("--gan-frames", type=int, default=45, help="frames of the gan-face clip")
    ap.add_argument("--repeat", type=int, default=5, help="noise draws per gan-face setting")
    ap.add_argument("--frames", type=int, default=90, help="frames of the 720p clip (30 fps)")
    ap.add_argument(
        "--max-size", type=int, default=640, help="detection size of the reduced-size runs"
    )
    ap.add_argument(
        "--tracked",
        action="append",
        default=None,
        metavar="K,N",
        help="also run full detection every K frames with tracked-face windows every N "
        "(repeatable; default 6,1 and 4,1)",
    )
    ap.add_argument(
        "--clip-seed",
        type=int,
        default=0,
        help="coverage clips: 0 = the clips the defaults were chosen on; another value "
        "draws other people, paths and backgrounds (held out)",
    )
    args = ap.parse_args(argv)
    if args.tracked is None:
        args.tracked = ["6,1", "4,1"]
    if args.section in ("all", "trackers"):
        bench_trackers(args)
    if args.section in ("all", "speed"):
        bench_speed(args)
    if args.section in ("all", "coverage"):
        bench_coverage(args)
    if args.section in ("all", "real"):
        bench_real(args)
    if args.section in ("all", "windows"):
        bench_windows(args)
    if args.section in ("all", "gan"):
        bench_gan(args)
    if args.section in ("all", "flicker"):
        bench_flicker(args)


if __name__ == "__main__":
    main()
