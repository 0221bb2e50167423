"""What an evaluation measures: settings, the configuration and the parsing of its options.

:class:`EvaluationConfig` holds everything that decides what
:func:`pixveil.evaluate.run_evaluation` measures, validated on construction;
:meth:`EvaluationConfig.settings` expands it into the unprotected baseline plus
one :class:`Setting` per method and value of its swept parameter:

* ``epsilon`` for methods that have one (``dp-pix``, ``dp-blur``; values from
  ``epsilons``);
* ``strength`` for ``blur`` and ``blocks`` for ``pixelate``
  (:data:`DEFAULT_SWEEPS`);
* one setting for the others (``mask``).

``sweeps`` overrides any of them; ``fixed`` holds parameters constant.  The
``parse_*`` helpers turn the command line's strings into these values.

Nothing here loads a model or touches the data folder.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.evaluate.reid import DEFAULT_THRESHOLD
from pixveil.io import DEFAULT_MAX_PIXELS
from pixveil.validate import parse_value

__all__ = [
    "ATTACKS",
    "BASELINE",
    "DEFAULT_CONTEXTS",
    "DEFAULT_EPSILONS",
    "DEFAULT_METHODS",
    "DEFAULT_SWEEPS",
    "EvaluationConfig",
    "Setting",
    "parse_contexts",
    "parse_fixed",
    "parse_list",
    "parse_sweep",
    "parse_value",
]

#: Name of the unprotected baseline setting.
BASELINE = "none"
#: Methods evaluated when none are named.
DEFAULT_METHODS: tuple[str, ...] = ("blur", "pixelate", "mask", "dp-pix", "dp-blur")
#: Privacy budgets swept for methods with an ``epsilon`` parameter.
DEFAULT_EPSILONS: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0)
#: Parameter swept, and its values, for the methods without ``epsilon``.
DEFAULT_SWEEPS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "blur": ("strength", (0.05, 0.1, 0.2, 0.3)),
    "pixelate": ("blocks", (16, 12, 8, 4)),
}
#: Attacks that can be run: ``cnn`` (re-identification) and ``reconstruction``.
ATTACKS: tuple[str, ...] = ("cnn", "reconstruction")
#: What the attackers see when none is named: the square around the face box
#: grown by 1.2 (the face and a little of its surroundings).
DEFAULT_CONTEXTS: tuple[str, ...] = ("1.2",)


def parse_contexts(value: str | Any) -> tuple[str, ...]:
    """``"1.2,2,full"`` (or an iterable) -> ``("1.2", "2", "full")``, checked.

    Each context is what an attacker (CNN re-identification, reconstruction)
    sees of a photo: a number ``c`` in ``[1, 10]`` (the square around the
    detected face box grown by ``c``) or ``"full"`` (the whole photo).  Numbers are normalised (``"2.0"`` -> ``"2"``).

    Raises
    ------
    ValueError
        For an empty list or a value that is neither.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        text = str(item).strip().lower()
        if not text:
            continue
        if text != "full":
            try:
                c = float(text)
            except ValueError:
                raise ValueError(
                    f"a context must be a number in [1, 10] or 'full', got {text!r}"
                ) from None
            if not (math.isfinite(c) and 1.0 <= c <= 10.0):
                raise ValueError(f"a context must be a number in [1, 10] or 'full', got {text!r}")
            text = f"{c:g}"
        if text not in out:
            out.append(text)
    if not out:
        raise ValueError("contexts must name at least one context, e.g. '1.2,2,full'")
    return tuple(out)


# --------------------------------------------------------------------------- #
# parsing helpers (shared with the command line)
# --------------------------------------------------------------------------- #
def parse_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _split_method(spec: str, what: str) -> tuple[str, str, str]:
    method, sep, rest = spec.partition(":")
    key, eq, values = rest.partition("=")
    if not sep or not eq or not method.strip() or not key.strip() or not values.strip():
        raise ValueError(f"{what} must look like METHOD:PARAM=VALUE[,VALUE...], got {spec!r}")
    return method.strip().lower(), key.strip().replace("-", "_"), values


def parse_sweep(spec: str) -> tuple[str, str, tuple[Any, ...]]:
    """``"blur:strength=0.05,0.1"`` -> ``("blur", "strength", (0.05, 0.1))``.

    Raises
    ------
    ValueError
        If ``spec`` is not ``METHOD:PARAM=V1[,V2...]``.
    """
    method, key, values = _split_method(spec, "a sweep")
    parsed = tuple(parse_value(v) for v in parse_list(values))
    if not parsed:
        raise ValueError(f"a sweep needs at least one value, got {spec!r}")
    return method, key, parsed


def parse_fixed(spec: str) -> tuple[str, str, Any]:
    """``"dp-pix:m=4"`` -> ``("dp-pix", "m", 4)`` (a parameter held fixed)."""
    method, key, value = _split_method(spec, "a fixed parameter")
    return method, key, parse_value(value)


# --------------------------------------------------------------------------- #
# settings and configuration
# --------------------------------------------------------------------------- #
def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Setting:
    """One method with one set of parameters.

    Attributes
    ----------
    method : str
        A registered method, or :data:`BASELINE` (no protection).
    params : mapping
        Every parameter passed to the method (the swept one included).
    parameter : str or None
        Name of the swept parameter (None for a single-setting method).
    value : Any
        Its value in this setting.
    """

    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    parameter: str | None = None
    value: Any = None

    @property
    def label(self) -> str:
        """``"blur strength=0.1"``, ``"mask"``, ``"none"``."""
        if self.parameter is None:
            return self.method
        return f"{self.method} {self.parameter}={_fmt_value(self.value)}"

    @property
    def value_text(self) -> str:
        """The swept value alone: ``"0.1"``, ``"inf"``, ``"None"``."""
        return _fmt_value(self.value)

    @property
    def value_label(self) -> str:
        """``"strength=0.1"`` or ``"-"``."""
        if self.parameter is None:
            return "-"
        return f"{self.parameter}={_fmt_value(self.value)}"

    @property
    def is_baseline(self) -> bool:
        return self.method == BASELINE

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "parameter": self.parameter,
            "value": self.value,
            "params": dict(self.params),
            "label": self.label,
        }


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _check_int(name: str, value: object, lo: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """Everything that decides what an evaluation measures.

    Parameters
    ----------
    data : Path
        ``<identity>/<images>`` folder or a flat folder of images.
    methods : tuple of str
        Registered protection methods to evaluate (the baseline ``none`` is always added).
    epsilons : tuple of float
        Values of ``epsilon`` swept for the methods that have one.
    sweeps : mapping of str to (str, tuple)
        ``method -> (parameter, values)``: overrides the swept parameter of a method.
    fixed : mapping of str to mapping
        ``method -> {parameter: value}`` held fixed in every setting of that method.
    identities, per_identity, max_images : int or None
        Sampling (see :func:`~pixveil.evaluate.datasets.load_dataset`).
    seed : int
        Seed of the sampling, of the privacy noise (seeded per setting and
        image, so that results are reproducible; a real release uses a secure
        source) and of the attacks.
    face_threshold : float or None
        Score threshold of pixveil's face detector (None: its default).
    utility : bool
        Compute the utility metrics.
    ms_ssim : bool
        Compute whole-image MS-SSIM (slow: about 10x the rest of the metrics).
    region_ms_ssim : bool
        Compute region-only MS-SSIM (needs regions of at least 161 px).
    reid : bool
        Face re-identification with dlib (needs ``pixveil[eval]``).
    detection : bool
        Detection rates after protection (pixveil's detector and dlib's HOG).
    fid : bool
        FID-like and IS-like scores on MobileNetV2 (slow; needs torch).
    reid_threshold : float
        dlib distance threshold (0.6).
    attacks : tuple of str
        Attacks to run, from :data:`ATTACKS`.
    cnn_epochs, reconstruction_epochs : int or None
        Training epochs of the attacks (None: the attack's default).
    attack_image_size : int
        Side of the face crops given to the attacks (a multiple of 16).
    contexts : tuple of str
        What the attackers see (:func:`parse_contexts`): ``"1.2"`` the square
        around the face box grown by 1.2, ``"2"`` grown by 2, ``"full"`` the
        whole photo; each attack (CNN re-identification and reconstruction)
        runs once per context and setting.
    region : {"face", "head", "person"}
        What of each person every setting protects (:mod:`pixveil.regions`).
    examples : int
        Identities (or images) shown in the report's example grids.
    workers : int
        Processes protecting and measuring images (1: in this process).  More
        than one starts worker processes with the ``spawn`` method: a script
        calling :func:`~pixveil.evaluate.run_evaluation` must then guard its entry point with
        ``if __name__ == "__main__":``.  Results do not depend on it.
    max_pixels : int
        Largest image accepted (decompression-bomb guard).
    """

    data: Path
    methods: tuple[str, ...] = DEFAULT_METHODS
    epsilons: tuple[float, ...] = DEFAULT_EPSILONS
    sweeps: Mapping[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)
    fixed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    identities: int | None = None
    per_identity: int | None = None
    max_images: int | None = None
    seed: int = 0
    face_threshold: float | None = None
    utility: bool = True
    ms_ssim: bool = False
    region_ms_ssim: bool = False
    reid: bool = True
    detection: bool = True
    fid: bool = False
    reid_threshold: float = DEFAULT_THRESHOLD
    attacks: tuple[str, ...] = ()
    cnn_epochs: int | None = None
    reconstruction_epochs: int | None = None
    attack_image_size: int = 64
    contexts: tuple[str, ...] = DEFAULT_CONTEXTS
    region: str = "face"
    examples: int = 3
    workers: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        methods = tuple(str(m).strip().lower() for m in self.methods)
        if not methods and not self.attacks:
            raise ValueError("methods must name at least one protection method")
        if len(set(methods)) != len(methods):
            raise ValueError(f"methods are repeated: {', '.join(methods)}")
        if BASELINE in methods:
            methods = tuple(m for m in methods if m != BASELINE)  # always included
        object.__setattr__(self, "methods", methods)
        epsilons = tuple(float(e) for e in self.epsilons)
        for e in epsilons:
            if not e > 0:
                raise ValueError(f"epsilons must be positive, got {e!r}")
        object.__setattr__(self, "epsilons", epsilons)
        sweeps = {str(k): (str(v[0]), tuple(v[1])) for k, v in dict(self.sweeps).items()}
        object.__setattr__(self, "sweeps", sweeps)
        object.__setattr__(self, "fixed", {str(k): dict(v) for k, v in dict(self.fixed).items()})
        attacks = tuple(str(a).strip().lower() for a in self.attacks)
        for a in attacks:
            if a not in ATTACKS:
                raise ValueError(f"unknown attack {a!r}; known: {', '.join(ATTACKS)}")
        object.__setattr__(self, "attacks", tuple(dict.fromkeys(attacks)))
        object.__setattr__(self, "contexts", parse_contexts(self.contexts))
        from pixveil.regions import check_region_kind

        object.__setattr__(self, "region", check_region_kind(self.region))
        for name in ("utility", "ms_ssim", "region_ms_ssim", "reid", "detection", "fid"):
            _check_flag(name, getattr(self, name))
        for name in ("identities", "per_identity", "max_images", "cnn_epochs"):
            _check_int(name, getattr(self, name), 1, optional=True)
        _check_int("reconstruction_epochs", self.reconstruction_epochs, 1, optional=True)
        _check_int("seed", self.seed, 0)
        _check_int("examples", self.examples, 0)
        _check_int("workers", self.workers, 1)
        _check_int("max_pixels", self.max_pixels, 1)
        _check_int("attack_image_size", self.attack_image_size, 16)
        if self.attack_image_size % 16 or self.attack_image_size > 256:
            raise ValueError(
                f"attack_image_size must be a multiple of 16 in [16, 256], "
                f"got {self.attack_image_size}"
            )
        if self.face_threshold is not None and not 0.0 < float(self.face_threshold) < 1.0:
            raise ValueError(f"face_threshold must be in (0, 1), got {self.face_threshold!r}")
        if not (0 < float(self.reid_threshold) < 2):
            raise ValueError(f"reid_threshold must be in (0, 2), got {self.reid_threshold!r}")
        self.settings()  # validate every method and parameter now

    def settings(self) -> list[Setting]:
        """The baseline and every (method, parameter value) setting, validated.

        Raises
        ------
        ValueError
            For an unknown method or parameter, or a value its method refuses
            (:class:`~pixveil.errors.PrivacyParameterError` for privacy parameters).
        """
        from pixveil.protect import available_methods, method_class, validate_params

        known = available_methods()
        out = [Setting(BASELINE)]
        for name in (*self.sweeps, *self.fixed):
            if name not in self.methods:
                raise ValueError(f"--sweep/--set name method {name!r}, which is not evaluated")
        for method in self.methods:
            if method not in known:
                raise ValueError(f"unknown method {method!r}; known: {', '.join(known)}")
            fields = [f.name for f in dataclasses.fields(method_class(method).Params)]
            fixed = dict(self.fixed.get(method, {}))
            for key in fixed:
                if key not in fields:
                    raise ValueError(
                        f"method {method!r} has no parameter {key!r}; "
                        f"its parameters are: {', '.join(fields)}"
                    )
            if method in self.sweeps:
                parameter, values = self.sweeps[method]
            elif "epsilon" in fields and "epsilon" not in fixed:
                parameter, values = "epsilon", self.epsilons
            elif method in DEFAULT_SWEEPS and DEFAULT_SWEEPS[method][0] not in fixed:
                parameter, values = DEFAULT_SWEEPS[method]
            else:
                parameter, values = "", ()
            if parameter and parameter not in fields:
                raise ValueError(
                    f"method {method!r} has no parameter {parameter!r}; "
                    f"its parameters are: {', '.join(fields)}"
                )
            if not parameter or not values:
                validate_params(method, fixed)
                out.append(Setting(method, fixed))
                continue
            for value in values:
                params = {**fixed, parameter: value}
                validate_params(method, params)  # raises on a bad value
                out.append(Setting(method, params, parameter, value))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration, JSON-ready."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["data"] = str(self.data)
        d["methods"] = list(self.methods)
        d["epsilons"] = list(self.epsilons)
        d["attacks"] = list(self.attacks)
        d["contexts"] = list(self.contexts)
        d["sweeps"] = {k: {"parameter": p, "values": list(v)} for k, (p, v) in self.sweeps.items()}
        d["fixed"] = {k: dict(v) for k, v in self.fixed.items()}
        d["settings"] = [s.to_dict() for s in self.settings()]
        return d
