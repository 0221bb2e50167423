"""Privacy-preserving training data: labelled datasets and key-based image schemes.

* :mod:`pixveil.dataset.data` loads ``<class>/<images>`` folders and CIFAR-10.
* :mod:`pixveil.dataset.schemes` holds the registered schemes (:data:`SCHEMES`):
  ``pixel-based`` and ``block-scramble`` (keyed), ``gan`` (a trained transform).
* :mod:`pixveil.dataset.ppgan` trains the ``gan`` transform (torch).
* :mod:`pixveil.dataset.keys` generates keys and reads/writes key files.
* :mod:`pixveil.dataset.protect` protects or restores a whole folder.
* :mod:`pixveil.dataset.classify` trains a ResNet on (protected) images (torch).
* :mod:`pixveil.dataset.table1` measures accuracy and reconstruction-attack SSIM
  per scheme (``pixveil attack dataset``).

See ``docs/dataset.md`` for the threat model of each scheme.
"""

from __future__ import annotations

from pixveil.dataset.data import (
    CIFAR10_CLASSES,
    LabeledImages,
    iter_image_folder,
    load_cifar10,
    load_image_folder,
)
from pixveil.dataset.keys import KeyFile, image_id, load_key_file, new_key, save_key_file
from pixveil.dataset.protect import DatasetRun, protect_dataset, restore_dataset
from pixveil.dataset.schemes import SCHEMES, Scheme, available_schemes, get_scheme

__all__ = [
    "CIFAR10_CLASSES",
    "SCHEMES",
    "DatasetRun",
    "KeyFile",
    "LabeledImages",
    "Scheme",
    "available_schemes",
    "get_scheme",
    "image_id",
    "iter_image_folder",
    "load_cifar10",
    "load_image_folder",
    "load_key_file",
    "new_key",
    "protect_dataset",
    "restore_dataset",
    "save_key_file",
]
