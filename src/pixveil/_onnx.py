"""The one place where pixveil builds ONNX Runtime sessions.

Every network pixveil runs (CenterFace, the PP-OCR text models, the face GAN) is
loaded through :func:`load_session`: one session per process for each model,
thread count and set of execution providers, built under a lock and shared by
every detector or method instance (an ``InferenceSession`` may serve many threads
at once).

Devices
-------
``device`` picks the ONNX Runtime execution providers (:data:`DEVICES`):

* ``"cpu"`` (the default): the CPU provider only.
* ``"cuda"``, ``"tensorrt"``, ``"migraphx"``, ``"rocm"``, ``"openvino"``,
  ``"directml"``, ``"coreml"``: that provider, then the CPU provider for the
  operators it does not take (``"tensorrt"`` also puts CUDA in between when it is
  there).  Each needs an ONNX Runtime build that has the provider (for example
  ``onnxruntime-gpu``, ``pip install 'pixveil[gpu]'``, for CUDA and TensorRT).  When
  it is missing, the CPU is used and :attr:`ProviderChoice.fallback` says why.
* ``"auto"``: the first of CUDA, ROCm, DirectML and OpenVINO that this ONNX Runtime
  has, else the CPU; never a fallback message.  TensorRT and MIGraphX compile the
  graph for each input size, and the detectors run at each image's own size, so a
  new image size would stall for the compilation; CoreML ships with every macOS
  build of ONNX Runtime and its support for inputs of symbolic size is limited.
  None of the three has been measured here: ``auto`` never picks them; name them
  to use them.

The device changes speed, never which pixels are protected by design, but an
accelerator computes in a different order (or precision, for TensorRT in FP16
mode, which is not turned on here), so scores near a threshold can land on the
other side of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixveil.errors import ModelError
from pixveil.validate import check_number

__all__ = [
    "DEVICES",
    "LoadedSession",
    "ProviderChoice",
    "available_devices",
    "check_device",
    "check_threads",
    "load_session",
    "resolve_providers",
    "session_options",
    "verified_model",
]

_CPU = "CPUExecutionProvider"

#: Device names accepted by ``device`` options, ``"auto"`` first.
DEVICES = ("auto", "cpu", "cuda", "tensorrt", "migraphx", "rocm", "openvino", "directml", "coreml")

#: The provider each device needs, and how to get an ONNX Runtime that has it.
_REQUIRED: dict[str, tuple[str, str]] = {
    "cpu": (_CPU, "pip install onnxruntime"),
    "cuda": ("CUDAExecutionProvider", "install pixveil[gpu]"),
    "tensorrt": ("TensorrtExecutionProvider", "install pixveil[gpu] and NVIDIA TensorRT"),
    "migraphx": ("MIGraphXExecutionProvider", "install onnxruntime-migraphx"),
    "rocm": ("ROCMExecutionProvider", "install onnxruntime-rocm, version 1.22 or older"),
    "openvino": ("OpenVINOExecutionProvider", "install onnxruntime-openvino"),
    "directml": ("DmlExecutionProvider", "install onnxruntime-directml"),
    "coreml": ("CoreMLExecutionProvider", "use the macOS build of onnxruntime"),
}

#: What ``auto`` tries, best first (see the module notes for what is left out).
_AUTO = ("cuda", "rocm", "directml", "openvino")


def check_device(device: object) -> str:
    """Validate a ``device`` option and return it.

    Raises
    ------
    ValueError
        When ``device`` is not one of :data:`DEVICES` (the message lists them).
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    return device


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def check_threads(threads: object) -> int | None:
    """Validate a ``threads`` option (ONNX Runtime intra-op threads) and return it.

    Raises
    ------
    InputError (a ValueError)
        When ``threads`` is neither None nor an integer ``>= 1``.
    """
    if threads is None:
        return None
    return int(check_number(threads, name="threads", low=1, integer=True))


@dataclass(frozen=True)
class ProviderChoice:
    """The execution providers chosen for a ``device``.

    Attributes
    ----------
    providers : tuple of str
        ONNX Runtime provider names, best first; always ends with
        ``"CPUExecutionProvider"``.
    device : str
        The device these providers amount to (``"cpu"`` when the requested one is
        not available); never ``"auto"``.
    fallback : str or None
        One line saying why the requested device is not used, or None.
    """

    providers: tuple[str, ...]
    device: str
    fallback: str | None = None


def _available(available: Sequence[str] | None) -> tuple[str, ...]:
    if available is not None:
        if isinstance(available, str):
            raise ValueError(f"available must be a sequence of provider names, got {available!r}")
        return tuple(available)
    import onnxruntime as ort

    return tuple(ort.get_available_providers())


def resolve_providers(device: str, *, available: Sequence[str] | None = None) -> ProviderChoice:
    """The execution providers to ask ONNX Runtime for, for ``device``.

    Parameters
    ----------
    device : str
        One of :data:`DEVICES`.
    available : sequence of str, optional
        The providers this ONNX Runtime has (default:
        ``onnxruntime.get_available_providers()``).

    Returns
    -------
    ProviderChoice
        With a ``fallback`` message when ``device`` names an accelerator that
        ``available`` lacks; ``"auto"`` never has one.

    Raises
    ------
    ValueError
        When ``device`` is not one of :data:`DEVICES`.
    """
    check_device(device)
    have = _available(available)
    if device == "auto":
        for name in _AUTO:
            if _REQUIRED[name][0] in have:
                return _choice(name, have)
        return ProviderChoice((_CPU,), "cpu")
    provider, hint = _REQUIRED[device]
    if provider not in have:
        return ProviderChoice(
            (_CPU,),
            "cpu",
            f"{device} requested but this onnxruntime has no {provider} ({hint}); using the CPU",
        )
    return _choice(device, have)


def _choice(device: str, have: tuple[str, ...]) -> ProviderChoice:
    chain = [_REQUIRED[device][0]]
    if device == "tensorrt" and "CUDAExecutionProvider" in have:
        chain.append("CUDAExecutionProvider")
    if chain[-1] != _CPU:
        chain.append(_CPU)
    return ProviderChoice(tuple(chain), device)


def available_devices(*, available: Sequence[str] | None = None) -> tuple[str, ...]:
    """The device names whose provider this ONNX Runtime has (``"auto"`` and ``"cpu"`` always)."""
    have = _available(available)
    return tuple(d for d in DEVICES if d == "auto" or _REQUIRED[d][0] in have)


def _device_of(provider: str) -> str:
    for name, (required, _) in _REQUIRED.items():
        if required == provider:
            return name
    return provider


def session_options(threads: int | None) -> Any:
    """ONNX Runtime options shared by every pixveil model.

    Full graph optimisation, sequential execution, and intra-op spinning off
    (measured 15-50 % faster when other processes compete for the cores; see
    ``bench/bench_faces.py --session-study``).  ``threads=None`` uses all cores.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    opts.inter_op_num_threads = 1
    if threads is not None:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


@dataclass(frozen=True)
class LoadedSession:
    """An ONNX Runtime session and the providers it actually got.

    Attributes
    ----------
    session : onnxruntime.InferenceSession
        Shared by every user of the same model, thread count and providers.
    name : str
        The model, as named in error messages.
    requested : str
        The ``device`` asked for.
    providers : tuple of str
        ``session.get_providers()``: the providers the session registered, best
        first.  ONNX Runtime drops an accelerator that fails to start (a missing
        CUDA or cuDNN library, say) without an error.
    device : str
        The device the session runs on (from ``providers[0]``).
    fallback : str or None
        One line saying why the requested device is not used, or None (always
        None for ``"auto"`` and ``"cpu"``).
    """

    session: Any
    name: str
    requested: str
    providers: tuple[str, ...]
    device: str
    fallback: str | None


@dataclass(frozen=True)
class _Entry:
    """A cached session: what it got, and why the accelerator failed to start, if it did."""

    session: Any
    providers: tuple[str, ...]
    start_error: str | None


_cache: dict[tuple[Hashable, int | None, tuple[str, ...]], _Entry] = {}
_cache_lock = threading.Lock()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _build(model: bytes | str | Path, opts: Any, providers: tuple[str, ...]) -> Any:
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else os.fspath(model)
    # enable_fallback=0: ONNX Runtime's own fallback prints to stdout; ours is below.
    return ort.InferenceSession(source, opts, providers=list(providers), enable_fallback=0)


def load_session(
    key: Hashable,
    build_model: Callable[[], bytes | str | Path],
    *,
    threads: int | None,
    device: str = "cpu",
    name: str | None = None,
) -> LoadedSession:
    """The process-wide session for one model, thread count and device (built once).

    Parameters
    ----------
    key : hashable
        Identifies the model (two different models must never share a key).
    build_model : callable
        Returns the model: serialized ONNX bytes or a file path.  Called only when
        the session is not cached yet; its own errors propagate unchanged.
    threads : int or None
        ONNX Runtime intra-op threads (None: all cores).
    device : str, default "cpu"
        One of :data:`DEVICES`, see :func:`resolve_providers`.
    name : str, optional
        The model's name in error messages (default: ``str(key)``).

    Returns
    -------
    LoadedSession
        Its ``session`` is shared by every call with the same ``key``, thread count
        and resolved providers (``"auto"`` and ``"cpu"`` share one on a machine
        without an accelerator); ``requested`` and ``fallback`` describe this call.

    Raises
    ------
    ValueError
        When ``device`` is not one of :data:`DEVICES`.
    ModelError
        When ONNX Runtime cannot load the model (corrupt or not an ONNX model).
    """
    choice = resolve_providers(device)
    label = str(key) if name is None else name
    cache_key = (key, threads, choice.providers)
    with _cache_lock:
        entry = _cache.get(cache_key)
        if entry is None:
            entry = _start(build_model(), threads, choice.providers, label)
            _cache[cache_key] = entry
    used = _device_of(entry.providers[0]) if entry.providers else "cpu"
    fallback = choice.fallback
    if fallback is None and device not in ("auto", "cpu"):
        if entry.start_error is not None:
            fallback = (
                f"{device} requested but {choice.providers[0]} failed to start "
                f"({entry.start_error}); using the CPU"
            )
        elif used != device:
            fallback = (
                f"{device} requested but ONNX Runtime did not start {choice.providers[0]} "
                f"(the session has {', '.join(entry.providers)}); using {used}"
            )
    return LoadedSession(entry.session, label, device, entry.providers, used, fallback)


def _start(
    model: bytes | str | Path, threads: int | None, providers: tuple[str, ...], label: str
) -> _Entry:
    """Build a session on ``providers``, or on the CPU alone when an accelerator fails."""
    opts = session_options(threads)
    try:
        sess = _build(model, opts, providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        if providers == (_CPU,):
            raise ModelError(f"cannot load the ONNX model {label}: {_first_line(exc)}") from exc
        # The accelerator failed to start (or the model is bad): try the CPU alone.
        try:
            sess = _build(model, opts, (_CPU,))
        except Exception as cpu_exc:
            raise ModelError(
                f"cannot load the ONNX model {label}: {_first_line(cpu_exc)}"
            ) from cpu_exc
        return _Entry(sess, tuple(sess.get_providers()), _first_line(exc))
    return _Entry(sess, tuple(sess.get_providers()), None)


def verified_model(card: Path, what: str) -> bytes:
    """The ONNX file a model card names (``files.onnx.name``), checked against its SHA-256.

    ``what`` names the model in the :class:`~pixveil.errors.ModelError` raised when
    the card or the file cannot be read, or when the file's hash differs (a corrupt
    or replaced model must never run).
    """
    try:
        info = json.loads(Path(card).read_text())
        entry = info["files"]["onnx"]
        path = Path(card).parent / entry["name"]
        data = path.read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{card}: {what} cannot be read ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ModelError(f"{path}: SHA-256 mismatch (corrupt or replaced model file)")
    return data
