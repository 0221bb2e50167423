"""gan-face on LFW identities the GAN never saw: privacy, utility, sample quality, speed.

Prints four tables (markdown):

1. the generators, in the layout of the end-to-end GAN paper's Table 1: rows
   IS-like and FID-like (MobileNetV2, *not* Inception; samples vs held-out real
   crops), face-detection rate on samples, whole-image SSIM after the swap;
   columns: the DCGAN baseline of ``gan-face-generate`` (random latent, no
   inversion: it has no encoder) and pixveil's model (random latent, ε = 0, and
   the default ε);
2. privacy and utility per method and parameter (the ``pixveil evaluate``
   harness on the held-out identities, once per seed of ``--seeds`` and pooled
   over all probes, as ``pixveil evaluate --repeat`` does): dlib rank-1 with
   its 95 % interval and per-seed values, verification, same-photo,
   whole-image SSIM, face-detection rate after protection; gan-face over ε,
   blur over its strength, pixelate over its block count.  One run of 100
   identities has ~300 probes (one probe = 0.33 points of rank-1), hence the
   pooling.  The pooled HTML report (with the privacy-utility plot of the
   three frontiers) is written to ``--out``;
3. per-face latency of the fast path (encoder) and of the quality path
   (``refine_steps``), the face detector excluded.

Example::

    python bench/bench_gan_face.py --identities 100 --per-identity 4 --out /tmp/ganbench

Needs ``pip install 'pixveil[eval,gan]'``, LFW at ``../shared/data/lfw`` and,
for the baseline column, ``pip install --no-deps gan-face-generate``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from _common import held_out_parser, held_out_view, table_head, wilson_interval
from pixveil.detect import get_detector
from pixveil.gan.data import crop_face
from pixveil.gan.runtime import FaceGAN, load_face_gan
from pixveil.io import read_image
from pixveil.protect import get_method
from pixveil.protect.base import region_geometry
from pixveil.protect.gan import DEFAULT_EPSILON


def export_baseline(dest: Path, n_probe: int = 300) -> Path | None:
    """Export gan-face-generate's DCGAN (64x64, nz=100) to ONNX with a card, or None."""
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None or spec.origin is None:
        return None
    weights = Path(spec.origin).parent / "weights.tar"
    if not weights.is_file():
        return None
    import onnx
    import torch

    from pixveil.evaluate.attribution import baseline_generator
    from pixveil.gan.export import export_onnx, file_sha256

    g = baseline_generator()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "gan_face_64_generator.onnx"
    export_onnx(g, torch.zeros(1, 100), path, "z", "image")
    onnx.checker.check_model(str(path))
    # canonical landmarks of the baseline's faces: detect them on its own samples
    with torch.no_grad():
        faces = (
            g(torch.randn(n_probe, 100, generator=torch.Generator().manual_seed(0))) + 1
        ) * 127.5
    faces_u8 = faces.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
    lms, boxes = _landmarks_of(faces_u8)
    card = {
        "size": 64,
        "nz": 100,
        "clip": 3.0,
        "canonical_landmarks": lms.tolist(),
        "canonical_box": boxes.tolist(),
        "training": {"note": "gan-face-generate 1.1.1 DCGAN (DigiFace1M), baseline only"},
        "files": {"generator": {"name": path.name, "sha256": file_sha256(path)}},
    }
    (dest / "gan_face_64.json").write_text(json.dumps(card, indent=1))
    return dest


def _placed(face: np.ndarray) -> tuple[np.ndarray, float, int]:
    """A 64x64 face upscaled x3 and centred on a 320x320 grey canvas (detectors need context)."""
    k, pad = 3.0, 64
    big = np.asarray(Image.fromarray(face).resize((192, 192), Image.Resampling.BICUBIC))
    canvas = np.full((320, 320, 3), 128, np.uint8)
    canvas[pad : pad + 192, pad : pad + 192] = big
    return canvas, k, pad


def _landmarks_of(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    det = get_detector("faces")
    lms, boxes = [], []
    for f in faces:
        canvas, k, pad = _placed(f)
        rs = [r for r in det.detect(canvas) if r.landmarks is not None]
        if rs:
            r = max(rs, key=lambda r: r.score)
            lms.append((r.landmarks - pad) / k)
            boxes.append((np.array(r.box) - pad) / k)
    return np.mean(lms, axis=0), np.mean(boxes, axis=0)


def detection_rate(faces: np.ndarray) -> float:
    det = get_detector("faces")
    return float(np.mean([bool(det.detect(_placed(f)[0])) for f in faces]))


def sample_quality(gan: FaceGAN, real: np.ndarray, n: int, seed: int) -> dict[str, float]:
    from pixveil.evaluate.features import (
        class_probabilities,
        extract_features,
        frechet_distance,
        inception_score_like,
    )

    z = np.random.default_rng(seed).standard_normal((n, gan.nz)).astype(np.float32)
    fake = np.concatenate([gan.generate(z[i : i + 64]) for i in range(0, n, 64)])
    f_fake = extract_features(list(fake))
    f_real = extract_features(list(real))
    is_mean, is_std = inception_score_like(class_probabilities(list(fake)))
    return {
        "is_like": is_mean,
        "is_like_std": is_std,
        "fid_like": frechet_distance(f_fake, f_real),
        "detected": detection_rate(fake[: min(n, 300)]),
    }


def code_distances(gan: FaceGAN, view: Path, n_ids: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """L1 distances between clipped encoder codes: two photos of one person, and of two people."""
    codes = []
    for ident in sorted(p for p in view.iterdir() if p.is_dir())[:n_ids]:
        files = sorted(ident.glob("*.jpg"))[:2]
        crops = np.stack([crop_face(Image.open(f), gan.size) for f in files])
        codes.append(np.clip(gan.encode(crops), -gan.card.clip, gan.card.clip))
    z = np.asarray(codes)  # (n, 2, nz)
    same = np.abs(z[:, 0] - z[:, 1]).sum(axis=1)
    diff = np.abs(z[:-1, 0] - z[1:, 1]).sum(axis=1)
    return same, diff


def latency(lfw_view: Path, n_faces: int, refine: tuple[int, ...]) -> dict[str, list[float]]:
    """Milliseconds per face of gan-face's replace() (detection excluded), interleaved."""
    det = get_detector("faces")
    methods = {"fast (encoder)": get_method("gan-face")}
    for k in refine:
        methods[f"quality ({k} steps)"] = get_method("gan-face", refine_steps=k)
    times: dict[str, list[float]] = {name: [] for name in methods}
    files = sorted(lfw_view.glob("*/*.jpg"))[
        :: max(1, len(list(lfw_view.glob("*/*.jpg"))) // n_faces)
    ]
    for f in files[:n_faces]:
        img = read_image(f).pixels
        regions = det.detect(img)
        if not regions:
            continue
        r = max(regions, key=lambda r: r.area if hasattr(r, "area") else r.width * r.height)
        for name, m in methods.items():
            geom = region_geometry(
                r, img.shape[1], img.shape[0], shape=m.params.shape, margin=m.params.margin
            )
            assert geom is not None
            (x0, y0, x1, y1), _, local = geom
            patch = img[y0:y1, x0:x1].copy()
            t = time.perf_counter()
            m.replace(patch, local, rng=np.random.default_rng(0))
            times[name].append((time.perf_counter() - t) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = held_out_parser(__doc__)
    ap.add_argument("--epsilons", default="0,0.25,0.5,1")
    ap.add_argument("--blur", default="0.05,0.1,0.2", help="blur strengths swept")
    ap.add_argument("--pixelate", default="16,12,8", help="pixelate block counts swept")
    ap.add_argument(
        "--seeds",
        default="0,1,2,3,4",
        help="harness seeds (other photos, other noise); figures are pooled over all probes",
    )
    ap.add_argument("--samples", type=int, default=1000, help="generated faces for IS/FID-like")
    ap.add_argument("--latency-faces", type=int, default=40)
    ap.add_argument("--refine", default="10,30")
    ap.add_argument("--out", type=Path, default=Path("/tmp/pixveil-gan-bench"))
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    if not args.lfw.is_dir():
        print(f"LFW not found at {args.lfw}", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    view = held_out_view(args.lfw, out / "lfw-held-out")
    base_dir = export_baseline(out / "baseline-model")
    ours = load_face_gan()
    print(f"# gan-face bench — {len(list(view.iterdir()))} held-out identities with >= 2 photos\n")

    # ---- 1. generators (Table 1 layout) ----
    real_files = sorted(view.glob("*/*.jpg"))
    rng = np.random.default_rng(0)
    pick = rng.choice(len(real_files), size=min(args.samples, len(real_files)), replace=False)
    real = np.stack([crop_face(Image.open(real_files[i]), 64) for i in sorted(pick)])
    cols: dict[str, dict[str, float]] = {}
    if base_dir is not None:
        cols["DCGAN baseline (gan-face-generate)"] = sample_quality(
            FaceGAN(base_dir), real, args.samples, 1
        )
    cols["pixveil 64 (ours)"] = sample_quality(ours, real, args.samples, 1)
    real_split = sample_quality_real(real)
    print("## Generators (samples vs held-out real LFW crops, 64x64)\n")
    names = list(cols)
    print("\n".join(table_head(["metric", *names, "real crops (reference)"])))
    for key, label in (
        ("is_like", "IS-like (MobileNetV2) ↑"),
        ("fid_like", "FID-like (MobileNetV2) ↓"),
        ("detected", "face detected in sample ↑"),
    ):
        cells = [
            f"{cols[n][key]:.3f}" if key != "detected" else f"{100 * cols[n][key]:.1f} %"
            for n in names
        ]
        ref = real_split.get(key)
        ref_cell = (
            "" if ref is None else (f"{100 * ref:.1f} %" if key == "detected" else f"{ref:.3f}")
        )
        print(f"| {label} | " + " | ".join(cells) + f" | {ref_cell} |")
    print()

    # ---- 2. privacy / utility with the harness, pooled over seeds ----
    if not args.skip_eval:
        from pixveil.evaluate import EvaluationConfig, pool_results, run_evaluation, write_report

        seeds = [int(s) for s in args.seeds.split(",")]
        eps = tuple(float(e) for e in args.epsilons.split(","))
        cfg = EvaluationConfig(
            data=view,
            methods=("gan-face", "blur", "pixelate"),
            sweeps={
                "gan-face": ("epsilon", eps),
                "blur": ("strength", tuple(float(v) for v in args.blur.split(","))),
                "pixelate": ("blocks", tuple(int(v) for v in args.pixelate.split(","))),
            },
            identities=args.identities,
            per_identity=args.per_identity,
            seed=seeds[0],
            workers=args.workers,
        )
        t0 = time.perf_counter()
        runs = [run_evaluation(dataclasses.replace(cfg, seed=s)) for s in seeds]
        result = pool_results(runs)
        write_report(result, out / "report")
        rows = result.rows()
        per_seed = {r.setting.label: [] for r in result.results}
        for run in runs:
            for r in run.results:
                per_seed[r.setting.label].append(r.reid.rank1 if r.reid else None)
        if base_dir is not None:
            bcfg = dataclasses.replace(
                cfg,
                methods=("gan-face",),
                sweeps={"gan-face": ("epsilon", (0.0,))},
                fixed={"gan-face": {"model": str(base_dir)}},
            )
            bruns = [run_evaluation(dataclasses.replace(bcfg, seed=s)) for s in seeds]
            bres = pool_results(bruns)
            write_report(bres, out / "report-baseline")
            for r, *singles in zip(bres.results, *(b.results for b in bruns), strict=True):
                if r.setting.method == "gan-face":
                    row = r.row()
                    row["label"] = "DCGAN baseline, random face"
                    rows.append(row)
                    per_seed[row["label"]] = [s.reid.rank1 if s.reid else None for s in singles]
        print(
            f"## Privacy and utility ({args.identities} held-out identities x {args.per_identity} "
            f"photos, pooled over seeds {args.seeds}; {time.perf_counter() - t0:.0f} s)\n"
        )
        columns = [
            "setting", "rank-1 (hits / probes)", "95 % interval", "rank-1 per seed",
            "verification", "same photo", "whole SSIM", "region SSIM",
            "face detected (pixveil)", "face detected (dlib HOG)",
        ]  # fmt: skip
        print("\n".join(table_head(columns)))

        def pct(v: Any) -> str:
            return (
                ""
                if v is None or (isinstance(v, float) and math.isnan(v))
                else f"{100 * float(v):.1f} %"
            )

        for r in rows:
            n = int(r["reid_n_probes"] or 0)
            hits = round(float(r["reid_rank1"] or 0.0) * n)
            lo, hi = wilson_interval(hits, n)
            seeds_cell = " / ".join(pct(v) for v in per_seed.get(r["label"], []))
            print(
                f"| {r['label']} | {pct(r['reid_rank1'])} ({hits} / {n}) | {pct(lo)} – {pct(hi)} "
                f"| {seeds_cell} | {pct(r['reid_verification'])} | {pct(r['reid_same_photo'])} "
                f"| {r['whole_ssim']:.3f} | {r['region_ssim']:.3f} | {pct(r['detected_pixveil'])} "
                f"| {pct(r['detected_dlib'])} |"
            )
        chance = next((r["reid_chance_rank1"] for r in rows if r.get("reid_chance_rank1")), None)
        if chance:
            print(
                f"\nChance rank-1: {100 * chance:.1f} %. HTML report (pooled): "
                f"{out / 'report' / 'index.html'}\n"
            )

    same, diff = code_distances(ours, view)
    print("## Encoder codes (L1 distance after clipping, first 150 held-out identities)\n")
    print(
        f"same person: median {np.median(same):.1f}; different people: median {np.median(diff):.1f}; "
        f"Laplace noise at the default eps={DEFAULT_EPSILON:g}: expected L1 "
        f"{ours.nz / DEFAULT_EPSILON:.0f}\n"
    )

    # ---- 3. latency ----
    refine = tuple(int(k) for k in args.refine.split(",") if k)
    times = latency(view, args.latency_faces, refine)
    print("## Per-face latency (replace() only, detection excluded)\n")
    print("\n".join(table_head(["path", "median ms", "p90 ms", "faces"])))
    for name, ts in times.items():
        ts = sorted(ts)
        print(
            f"| {name} | {statistics.median(ts):.1f} | {ts[int(0.9 * (len(ts) - 1))]:.1f} | {len(ts)} |"
        )
    print(f"\nthreads: ORT default; CPU count {os.cpu_count()}")
    return 0


def sample_quality_real(real: np.ndarray) -> dict[str, float]:
    """Reference values: one half of the real crops against the other half."""
    from pixveil.evaluate.features import (
        class_probabilities,
        extract_features,
        frechet_distance,
        inception_score_like,
    )

    half = len(real) // 2
    fa, fb = extract_features(list(real[:half])), extract_features(list(real[half:]))
    is_mean, _ = inception_score_like(class_probabilities(list(real)))
    return {
        "is_like": is_mean,
        "fid_like": frechet_distance(fa, fb),
        "detected": detection_rate(real[:300]),
    }


if __name__ == "__main__":
    raise SystemExit(main())
