"""Evaluation: how private and how useful protected images are.

Submodules
----------
reid
    Face re-identification with dlib's ResNet recogniser (rank-1 identification,
    verification, same-photo verification); needs ``pip install 'pixveil[eval]'``.
"""

from __future__ import annotations

__all__: list[str] = []
