"""pixveil: protect the privacy of people in images.

Find faces, licence plates and text, replace them with something that no longer
identifies anyone (blur, pixelation, masks, differentially private pixelation),
and write outputs that carry no metadata.

>>> import pixveil
>>> result = pixveil.anonymize(image, method="dp-blur", epsilon=1.0)  # doctest: +SKIP
>>> result.image, result.detections                                    # doctest: +SKIP
"""

from __future__ import annotations

from pixveil.errors import (
    DetectionError,
    InputError,
    ModelError,
    OutputError,
    PixveilError,
    PrivacyLeakWarning,
    PrivacyParameterError,
    ProtectionError,
)
from pixveil.types import Detections, Region

__version__ = "0.1.0"

__all__ = [
    "DetectionError",
    "Detections",
    "InputError",
    "ModelError",
    "OutputError",
    "PixveilError",
    "PrivacyLeakWarning",
    "PrivacyParameterError",
    "ProtectionError",
    "Region",
    "__version__",
    "anonymize",
]


def __getattr__(name: str) -> object:
    # Imported lazily so that `import pixveil` stays cheap (no ONNX Runtime, no OpenCV).
    if name == "anonymize":
        from pixveil.pipeline import anonymize

        return anonymize
    raise AttributeError(f"module 'pixveil' has no attribute {name!r}")
