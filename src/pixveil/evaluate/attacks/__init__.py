"""Attacks on protected images: what a motivated adversary recovers.

Two learned attacks, both trained by the attacker on examples he protected
himself with the same method and parameters (the strongest realistic setting:
the protection software is public, so anyone can produce such examples):

:func:`cnn_reid_attack`
    Re-identification: a CNN classifier trained on protected photos of known
    people names the people in other protected photos (McPherson, Shokri and
    Shmatikov, "Defeating Image Obfuscation with Deep Learning", 2016).
    Scores: top-1 / top-5 accuracy against chance.
:func:`reconstruction_attack`
    Reconstruction: a U-Net trained on (protected, original) pairs maps
    protected faces back towards their originals (the supervised form of the
    GAN-based attack of Sirichotedumrong and Kiya, 2020).  Scores: SSIM and
    PSNR of the reconstruction against the original, next to those of the
    protected face.

Both are pure functions on ``(N, H, W, 3)`` ``uint8`` face crops; they need
torch (``pip install 'pixveil[eval]'``), imported only when an attack runs, and
respect ``torch.set_num_threads``.  A seed makes them deterministic.
"""

from __future__ import annotations

from pixveil.evaluate.attacks.cnn_reid import (
    DEFAULT_REID_EPOCHS,
    ReidAttackResult,
    cnn_reid_attack,
)
from pixveil.evaluate.attacks.reconstruction import (
    DEFAULT_RECONSTRUCTION_EPOCHS,
    ReconstructionResult,
    reconstruction_attack,
    unpaired_reconstruction_attack,
)

__all__ = [
    "DEFAULT_RECONSTRUCTION_EPOCHS",
    "DEFAULT_REID_EPOCHS",
    "ReconstructionResult",
    "ReidAttackResult",
    "cnn_reid_attack",
    "reconstruction_attack",
    "unpaired_reconstruction_attack",
]
