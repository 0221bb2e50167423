"""Key-based, invertible transforms of whole images for privacy-preserving training data.

A *scheme* turns a plain image into a visually protected one with a secret key,
such that a classifier can still be trained on the protected images, and the
key holder can invert it exactly.  Each scheme is a small registered class
(:data:`SCHEMES`) with ``encrypt(image, key)`` and ``decrypt(image, key)``.

Keys are 32 random bytes (:func:`pixveil.dataset.keys.new_key`).  Everything a
scheme needs (bit masks, permutations) is expanded from the key with SHAKE-256,
under a label that names the scheme, its parameters and, where it matters, the
image size: the same key always gives the same transform of an image of that
size, and nothing about the key can be learnt from the expansion of another
label.

One registered scheme has no key: ``gan``, the trained transform of the
reference paper (:class:`GanTransform`; ``keyed = False``, no ``decrypt``).

Threat model (all schemes)
--------------------------
These are *visual* protections, not ciphers in the cryptographic sense.  They
hide what a person sees; they keep enough structure for a network to learn from,
and that structure is what attacks exploit.  With one key shared by every image,
a single known plain/protected pair reveals most or all of the key (known-
plaintext attack), and ciphertext-only attacks that learn to undo the transform
from data (the GAN-based attack of Madono et al., jigsaw-puzzle solvers on
block-based schemes) are reported to recover recognisable images.  See
``docs/dataset.md`` for what each scheme is reported to resist and not.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pixveil.errors import InputError, ModelError, PrivacyParameterError
from pixveil.registry import Registry
from pixveil.validate import check_image

__all__ = [
    "KEY_BYTES",
    "SCHEMES",
    "BlockScramble",
    "GanTransform",
    "PixelBased",
    "Scheme",
    "available_schemes",
    "get_scheme",
]

#: Length of a key in bytes (256 bits).
KEY_BYTES = 32

_DOMAIN = b"pixveil/dataset/v1/"

# The six orders of (R, G, B); row i is the channel order of choice i.
_CHANNEL_PERMS = np.array(list(itertools.permutations(range(3))), dtype=np.intp)


def _check_key(key: object) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        got = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise InputError(f"key must be {KEY_BYTES} bytes, got {got}")
    return bytes(key)


def expand(key: bytes, label: str, n: int) -> bytes:
    """``n`` pseudo-random bytes from ``key`` for the use named by ``label`` (SHAKE-256)."""
    h = hashlib.shake_256()
    h.update(_DOMAIN + label.encode("ascii") + b"\x00" + _check_key(key))
    return h.digest(n)


def key_bits(key: bytes, label: str, n: int) -> np.ndarray:
    """``n`` key-derived bits as a uint8 array of 0 and 1."""
    raw = np.frombuffer(expand(key, label, (n + 7) // 8), dtype=np.uint8)
    return np.unpackbits(raw)[:n]


def key_permutation(key: bytes, label: str, n: int) -> np.ndarray:
    """A key-derived permutation of ``range(n)`` (Fisher-Yates, rejection-sampled: unbiased)."""
    perm = list(range(n))
    stream = expand(key, label, 8 * n + 64)
    pos = 0
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = (1 << 32) - (1 << 32) % bound
        while True:
            if pos + 4 > len(stream):  # astronomically rare: extend the stream
                stream += expand(key, f"{label}/more{len(stream)}", 8 * n)
            r = int.from_bytes(stream[pos : pos + 4], "little")
            pos += 4
            if r < limit:
                break
        j = r % bound
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.intp)


class Scheme:
    """Base class of the schemes: ``encrypt`` and ``decrypt`` with a 32-byte key.

    Subclasses set ``name``, ``summary`` and ``threat_model`` and implement
    :meth:`encrypt` and :meth:`decrypt`.  Parameters are keyword-only and checked
    on construction; :meth:`params` returns them as a JSON-able dict (stored in
    the key file).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    threat_model: ClassVar[str] = ""
    #: Whether the scheme takes a key (and can be inverted with it).
    keyed: ClassVar[bool] = True

    def params(self) -> dict[str, Any]:
        return {}

    def check_image(self, image: np.ndarray) -> np.ndarray:
        """``image`` checked as (H, W, 3) uint8 (InputError otherwise)."""
        return check_image(image, name="image")

    def encrypt(self, image: np.ndarray, key: bytes | None) -> np.ndarray:
        """The protected version of ``image`` ((H, W, 3) uint8 -> same shape and dtype).

        ``key`` is None only for a scheme with ``keyed = False``.
        """
        raise NotImplementedError

    def decrypt(self, image: np.ndarray, key: bytes) -> np.ndarray:
        """The inverse of :meth:`encrypt` with the same key (exact, bit for bit)."""
        raise NotImplementedError

    def encrypt_batch(self, images: np.ndarray, key: bytes | None) -> np.ndarray:
        """:meth:`encrypt` of every image of an (N, H, W, 3) uint8 batch."""
        return np.stack([self.encrypt(im, key) for im in images])


#: Registry of the dataset schemes, by name.
SCHEMES: Registry[type[Scheme]] = Registry("dataset scheme")


def available_schemes() -> list[str]:
    return SCHEMES.names()


def get_scheme(name: str, **params: Any) -> Scheme:
    """An instance of the scheme ``name`` with ``params`` (ValueError for unknown ones)."""
    cls = SCHEMES.get(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise PrivacyParameterError(f"scheme {name!r}: {exc}") from None


@SCHEMES.decorator("pixel-based")
class PixelBased(Scheme):
    """Pixel-based image encryption (Sirichotedumrong, Maekawa, Kinoshita, Kiya 2019).

    For an image of H x W pixels, the key gives

    1. one bit per pixel and colour channel (H x W x 3 bits): where it is 1, the
       value ``q`` becomes ``q XOR 255 = 255 - q`` (negative-positive transform);
    2. one of the six orders of (R, G, B) per pixel: the channels of that pixel
       are then reordered (colour-channel shuffling).

    The transform depends on the image size: images of the same size share it
    when they share the key.  It is its own kind of one-time pad only when every
    image has its own key (``--per-image-keys``); with one key for all images it
    is the same fixed mask and shuffle on every image.

    Threat model: hides colours and most texture from a person.  With a shared
    key, one known plain/protected pair of a size reveals the key's effect on
    every pixel (known-plaintext), and learned ciphertext-only attacks recover
    recognisable images (see docs/dataset.md); independent keys per image resist
    these better but not completely.  Pixel positions are unchanged, so edges
    and shapes can leak through ``min(q, 255 - q)``-style features.
    """

    name = "pixel-based"
    summary = "per-pixel key-based negative-positive transform and colour-channel shuffle"
    threat_model = (
        "visual protection only; positions kept; shared key falls to one known plain/protected "
        "pair; per-image keys resist learned attacks better, not completely"
    )

    def _masks(self, key: bytes, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        flips = key_bits(key, f"pixel-based/negpos/{h}x{w}", h * w * 3).reshape(h, w, 3)
        raw = np.frombuffer(expand(key, f"pixel-based/channels/{h}x{w}", 4 * h * w), dtype="<u4")
        # uint32 % 6: the bias is below 1e-9 per pixel
        orders = _CHANNEL_PERMS[(raw % 6).astype(np.intp)].reshape(h, w, 3)
        return flips * np.uint8(255), orders

    def encrypt(self, image: np.ndarray, key: bytes | None) -> np.ndarray:
        img = self.check_image(image)
        xor, orders = self._masks(_check_key(key), img.shape[0], img.shape[1])
        flipped = img ^ xor
        return np.ascontiguousarray(np.take_along_axis(flipped, orders, axis=2))

    def decrypt(self, image: np.ndarray, key: bytes) -> np.ndarray:
        img = self.check_image(image)
        xor, orders = self._masks(key, img.shape[0], img.shape[1])
        unshuffled = np.take_along_axis(img, np.argsort(orders, axis=2), axis=2)
        return np.ascontiguousarray(unshuffled ^ xor)


@SCHEMES.decorator("block-scramble")
class BlockScramble(Scheme):
    """Tanaka's learnable image encryption ("Learnable image encryption", ICCE-TW 2018).

    The image is cut into ``block_size`` x ``block_size`` blocks.  In each block,
    every 8-bit value is split into its upper and lower 4 bits (a 6-channel
    block of M x M x 6 four-bit values); the key chooses which of these
    positions are inverted (``v -> 15 - v``) and a permutation of all M*M*6
    positions, the same for every block of every image; the shuffled 4-bit
    values are packed back into M x M x 3 bytes.  This mixes pixel positions,
    colour channels and bit planes within a block, but never moves anything
    between blocks, so a classifier with a block-wise adaptation layer can learn
    from it.

    Parameters
    ----------
    block_size : int, keyword-only
        M, the block side in pixels, 1..64 (Tanaka used 4 on CIFAR-10).  Image
        height and width must be multiples of it (an image that is not is
        refused, never padded).

    Threat model: the block grid and the block-level statistics stay; the same
    key for every block makes it a substitution on M*M*6 nibbles that a few
    known pairs reveal, and the paper's GAN attack reached a mean SSIM of 0.7152
    against it (Table I of the reference paper): treat it as weak.
    """

    name = "block-scramble"
    summary = "Tanaka's block scrambling: 4-bit split, key-based inversion and shuffle per block"
    threat_model = (
        "visual protection only; same scramble in every block; known pairs reveal it; "
        "learned attacks reconstruct recognisable images"
    )

    def __init__(self, *, block_size: int = 4) -> None:
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
            raise PrivacyParameterError(
                f"block_size must be an integer, got {type(block_size).__name__}"
            )
        if not 1 <= block_size <= 64:
            raise PrivacyParameterError(f"block_size must be in 1..64, got {block_size}")
        self.block_size = int(block_size)

    def params(self) -> dict[str, Any]:
        return {"block_size": self.block_size}

    def _key(self, key: bytes) -> tuple[np.ndarray, np.ndarray]:
        n = self.block_size * self.block_size * 6
        label = f"block-scramble/{self.block_size}"
        flips = key_bits(key, f"{label}/invert", n) * np.uint8(15)
        perm = key_permutation(key, f"{label}/shuffle", n)
        return flips, perm

    def check_image(self, image: np.ndarray) -> np.ndarray:
        img = check_image(image, name="image")
        m = self.block_size
        if img.shape[0] % m or img.shape[1] % m:
            raise InputError(
                f"image of {img.shape[1]}x{img.shape[0]} pixels is not a whole number of "
                f"{m}x{m} blocks; choose a block size that divides both sides"
            )
        return img

    def _blocks(self, img: np.ndarray) -> np.ndarray:
        m = self.block_size
        h, w = img.shape[:2]
        b = img.reshape(h // m, m, w // m, m, 3).transpose(0, 2, 1, 3, 4)
        return b.reshape(-1, m * m * 3)

    def _image(self, blocks: np.ndarray, h: int, w: int) -> np.ndarray:
        m = self.block_size
        b = blocks.reshape(h // m, w // m, m, m, 3).transpose(0, 2, 1, 3, 4)
        return np.ascontiguousarray(b.reshape(h, w, 3))

    def encrypt(self, image: np.ndarray, key: bytes | None) -> np.ndarray:
        img = self.check_image(image)
        flips, perm = self._key(_check_key(key))
        b = self._blocks(img)
        nib = np.concatenate((b >> 4, b & 15), axis=1) ^ flips
        nib = nib[:, perm]
        half = nib.shape[1] // 2
        packed = (nib[:, :half] << 4) | nib[:, half:]
        return self._image(packed.astype(np.uint8), *img.shape[:2])

    def decrypt(self, image: np.ndarray, key: bytes) -> np.ndarray:
        img = self.check_image(image)
        flips, perm = self._key(key)
        b = self._blocks(img)
        shuffled = np.concatenate((b >> 4, b & 15), axis=1)
        nib = np.empty_like(shuffled)
        nib[:, perm] = shuffled
        nib ^= flips
        half = nib.shape[1] // 2
        packed = (nib[:, :half] << 4) | nib[:, half:]
        return self._image(packed.astype(np.uint8), *img.shape[:2])


@SCHEMES.decorator("gan")
class GanTransform(Scheme):
    """The GAN transform of Sirichotedumrong & Kiya: a trained network ``h_p`` maps plain to protected.

    ``h_p`` is the generator G_AB of a CycleGAN trained by ``pixveil dataset
    train-transform`` (:mod:`pixveil.dataset.ppgan`) and exported to ONNX; this
    class runs it with ONNX Runtime (no torch).  There is no key: ``encrypt``
    ignores it, and there is no ``decrypt``.

    Parameters
    ----------
    model : path, keyword-only
        The run folder of ``train-transform`` (holding ``transform.onnx``) or
        the ``.onnx`` file itself.

    Threat model: not invertible by design (no key; the network is not a
    bijection and nothing is kept to undo it), so nobody, not even the data
    owner, can restore the images.  Whoever holds the model can transform
    images of their own and train an inverse on the pairs (the known-plaintext
    attack of ``pixveil attack dataset``), so the model is a secret of the data
    owner: it must not travel with the protected images.  Like the key-based
    schemes it keeps pixel positions roughly (a U-Net), so coarse layout can
    leak; the paper reports the lowest GA SSIM of its schemes (0.0956, an
    unpaired attacker without the model).
    """

    name = "gan"
    summary = "a trained CycleGAN generator (U-Net) after PGD-style preliminary protection; no key"
    threat_model = (
        "not invertible (no key, no restore); keep the model secret: with it an attacker makes "
        "pairs and learns an inverse"
    )
    keyed = False

    def __init__(self, *, model: str | os.PathLike[str]) -> None:
        path = Path(model)
        if path.is_dir():
            path = path / "transform.onnx"
        if not path.is_file():
            raise PrivacyParameterError(
                f"model: {path} not found; train one with `pixveil dataset train-transform` "
                "and give its folder"
            )
        self.model = path
        self._session: Any = None
        self._digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def params(self) -> dict[str, Any]:
        # the model's digest, not its local path: run files travel with the outputs
        return {"model_sha256": self._digest}

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._session is None:
            from pixveil._onnx import load_session

            model = self.model
            # one session per process and model content (shared, built once)
            self._session = load_session(
                ("dataset-gan", self._digest),
                lambda: model,
                threads=1,
                name=f"GAN transform {model.name}",
            ).session
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        (y,) = self._session.run(["protected"], {"image": x})
        if y.shape != x.shape or not np.isfinite(y).all():
            raise ModelError(f"{self.model}: the transform returned {y.shape}, expected {x.shape}")
        out = np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1))

    def check_image(self, image: np.ndarray) -> np.ndarray:
        img = check_image(image, name="image")
        if img.shape[0] % 4 or img.shape[1] % 4:
            raise InputError(
                f"image of {img.shape[1]}x{img.shape[0]} pixels: the GAN transform needs sides "
                "that are multiples of 4 (it was trained on 32x32 images; resize first)"
            )
        return img

    def encrypt(self, image: np.ndarray, key: bytes | None = None) -> np.ndarray:
        return self._run(self.check_image(image)[None])[0]

    def encrypt_batch(self, images: np.ndarray, key: bytes | None = None) -> np.ndarray:
        for im in images[:1]:
            self.check_image(im)
        return np.concatenate([self._run(images[i : i + 256]) for i in range(0, len(images), 256)])

    def decrypt(self, image: np.ndarray, key: bytes) -> np.ndarray:
        raise PrivacyParameterError("the GAN transform is not invertible: there is no restore")
