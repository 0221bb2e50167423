"""The int8 face network on CPUs without int8 dot-product instructions (emulated).

``--detect fast`` runs a statically quantised CenterFace (``precision="int8"``).
ONNX Runtime picks its int8 convolution kernels by the CPU's instructions: with
AVX-512 VNNI or AVX-VNNI it sums uint8 x int8 products in 32 bits; on an AVX2 CPU
without them its kernels multiply with ``vpmaddubsw``, whose pairwise 16-bit sums
can saturate; on older CPUs it has SSE kernels.  The shipped threshold was chosen on
a VNNI CPU.  This bench runs the same network on the same scenes under QEMU's
user-mode emulator (``qemu-x86_64 -cpu MODEL``, Debian package ``qemu-user``), so
ONNX Runtime sees the CPU ``MODEL`` describes and takes that CPU's kernels.  Only
the outputs are compared; emulated time means nothing.

Scenes: 1280x720 street photos with 12 LFW faces pasted 10-63 px wide (as
``bench_int8.py``).  Reported per CPU: pasted faces found by the int8 network at
its default threshold, the share of the float network's (native, at 0.2) it finds,
its boxes, and how many of the native int8 run's boxes it reproduces.

Run from the repository root (needs ``qemu-user`` and ``../shared/data``)::

    python bench/bench_int8_cpus.py --scenes 30 --scene-seed 1400
    python bench/bench_int8_cpus.py --cpus Haswell,Nehalem --scenes 30 --scene-seed 1400
    python bench/bench_int8_cpus.py --int8-model /tmp/rr/centerface_int8.onnx   # another build
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import face_matched, make_scene, table_head, table_row
from bench_int8 import SCENE_FACE_BINS

HERE = Path(__file__).resolve().parent


def scenes(n: int, seed: int) -> list[tuple[np.ndarray, list[Any]]]:
    out = []
    for k in range(n):
        img, boxes, _ = make_scene(
            seed + k, 12, width=1280, height=720, bins=SCENE_FACE_BINS,
            background="mosaic" if k % 2 else "upscaled",
        )  # fmt: skip
        out.append((img, boxes))
    return out


def child(n: int, seed: int, precision: str, out: Path, model: Path | None = None) -> None:
    """Detect on every scene with one thread; write boxes and scores as JSON."""
    from pixveil.detect.faces import FaceDetector

    det = FaceDetector(precision=precision, threads=1, threshold=0.1)
    if model is not None and precision == "int8":  # another int8 build (no public way)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        det._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    result = []
    for img, _ in scenes(n, seed):
        boxes, scores, _ = det.detect_arrays(img)
        result.append({"boxes": boxes.tolist(), "scores": scores.tolist()})
    out.write_text(json.dumps(result))


def run_child(
    prefix: list[str], n: int, seed: int, precision: str, tmp: Path, model: Path | None = None
) -> list[Any]:
    out = tmp / f"{precision}-{len(prefix)}-{time.monotonic_ns()}.json"
    cmd = [*prefix, sys.executable, str(Path(__file__).resolve()), "--child", precision,
           "--scenes", str(n), "--scene-seed", str(seed), "--child-out", str(out)]  # fmt: skip
    if model is not None:
        cmd += ["--int8-model", str(Path(model).resolve())]
    subprocess.run(cmd, check=True, cwd=HERE.parent)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=30)
    ap.add_argument("--scene-seed", type=int, default=1400)
    ap.add_argument("--cpus", default="Haswell", help="QEMU CPU models, comma-separated")
    ap.add_argument(
        "--int8-model", type=Path,
        help="another int8 build of the network (e.g. quantised with reduce_range)",
    )  # fmt: skip
    ap.add_argument(
        "--thresholds", default="",
        help="int8 thresholds, comma-separated (default: the detector's own)",
    )  # fmt: skip
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.scenes, args.scene_seed, args.child, args.child_out, args.int8_model)
        return 0
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise SystemExit("needs qemu-x86_64 (Debian: apt install qemu-user)")
    from pixveil.detect.face_int8 import has_int8_dot_product
    from pixveil.detect.faces import INT8_THRESHOLD

    truth = [boxes for _, boxes in scenes(args.scenes, args.scene_seed)]
    total = sum(map(len, truth))
    with tempfile.TemporaryDirectory(prefix="bench_int8_cpus_") as tmp_name:
        tmp = Path(tmp_name)
        float_native = run_child([], args.scenes, args.scene_seed, "float32", tmp)
        runs = {"this CPU" + (" (int8 dot products)" if has_int8_dot_product() else ""): []}
        runs[next(iter(runs))] = run_child(
            [], args.scenes, args.scene_seed, "int8", tmp, args.int8_model
        )
        for cpu in filter(None, args.cpus.split(",")):
            t0 = time.perf_counter()
            runs[f"emulated {cpu}"] = run_child(
                [qemu, "-cpu", cpu], args.scenes, args.scene_seed, "int8", tmp, args.int8_model
            )
            print(f"[{cpu}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)

    def kept(res: list[Any], thr: float) -> list[np.ndarray]:
        return [np.asarray(r["boxes"]).reshape(-1, 4)[np.asarray(r["scores"]) > thr] for r in res]

    ref = kept(float_native, 0.2)
    ref_hits = [
        [face_matched(np.asarray(t), b) for t in ts] for ts, b in zip(truth, ref, strict=True)
    ]
    n_ref = sum(map(sum, ref_hits))
    thresholds = [float(t) for t in args.thresholds.split(",") if t] or [INT8_THRESHOLD]
    print(f"### int8 CenterFace by CPU: {args.scenes} scenes (seeds {args.scene_seed}-"
          f"{args.scene_seed + args.scenes - 1}), {total} pasted faces; float (native) at "
          f"0.2: {n_ref} found\n")  # fmt: skip
    cols = ["CPU", "int8 threshold", "pasted faces found", "of the float network's", "boxes",
            "native int8 boxes reproduced"]  # fmt: skip
    print("\n".join(table_head(cols, right=4)))
    for (name, res), thr in itertools.product(runs.items(), thresholds):
        native = kept(next(iter(runs.values())), thr)
        n_native = sum(map(len, native))
        got = kept(res, thr)
        hits = [
            [face_matched(np.asarray(t), b) for t in ts] for ts, b in zip(truth, got, strict=True)
        ]
        of_ref = sum(h and r for hs, rs in zip(hits, ref_hits, strict=True)
                     for h, r in zip(hs, rs, strict=True))  # fmt: skip
        same = sum(face_matched(b, g) for nb, g in zip(native, got, strict=True) for b in nb)
        print(table_row([
            name, f"{thr:g}", f"{sum(map(sum, hits))} of {total}", f"{of_ref / max(n_ref, 1):.1%} of {n_ref}",
            sum(map(len, got)), f"{same} of {n_native}",
        ]), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
