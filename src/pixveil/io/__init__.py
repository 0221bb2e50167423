"""Image input and output: decoding to upright RGB arrays, metadata-free writing.

:mod:`pixveil.io.read` decodes files and arrays (refusing damaged data unless
asked), :mod:`pixveil.io.write` writes images with no metadata,
:mod:`pixveil.io.files` writes any file atomically without following symbolic
links and cleans up after killed runs, :mod:`pixveil.io.jpeg` holds the JPEG
specifics and :mod:`pixveil.io.paths` the file-name rules.

Importing this package loads only NumPy and Pillow (OpenCV is imported on the
first JPEG read, for its corruption check).
"""

from __future__ import annotations

from pixveil.io.files import (
    TEMP_NAME_PATTERN,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    clean_stale_temps,
)
from pixveil.io.jpeg import JpegTables
from pixveil.io.paths import (
    FORMAT_EXTENSIONS,
    IMAGE_EXTENSIONS,
    OUTPUT_FORMATS,
    is_image_path,
    normalize_format,
    output_format_for,
    output_path_for,
)
from pixveil.io.read import DEFAULT_MAX_PIXELS, LoadedImage, load_array, read_image
from pixveil.io.write import DEFAULT_QUALITY, ProtectedPaths, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "FORMAT_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "OUTPUT_FORMATS",
    "TEMP_NAME_PATTERN",
    "JpegTables",
    "LoadedImage",
    "ProtectedPaths",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_stale_temps",
    "is_image_path",
    "load_array",
    "normalize_format",
    "output_format_for",
    "output_path_for",
    "read_image",
    "write_image",
]
