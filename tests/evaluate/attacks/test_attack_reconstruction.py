"""The reconstruction attack: validation, determinism, and that it can (and cannot) succeed."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from pixveil.errors import InputError, MissingDependencyError
from pixveil.evaluate.attacks import (
    ReconstructionResult,
    reconstruction_attack,
    unpaired_reconstruction_attack,
)
from pixveil.evaluate.metrics import ssim
from pixveil.progress import ProgressEvent

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy machine, tiny networks spend most of their time
    waiting for a second thread (the attacks use whatever ``torch.set_num_threads`` says)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def crops(n: int, *, size: int = 32, seed: int = 0, test: bool = False) -> np.ndarray:
    """Random ``size`` x ``size`` crops of scikit-image's sample photos (held-out photo if test)."""
    from skimage import data

    if test:
        sources = [data.coffee()]
    else:
        sources = [data.astronaut(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    sources = [
        cv2.resize(s, (s.shape[1] // 3, s.shape[0] // 3), interpolation=cv2.INTER_AREA)
        for s in sources
    ]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        src = sources[i % len(sources)]
        y = rng.integers(0, src.shape[0] - size + 1)
        x = rng.integers(0, src.shape[1] - size + 1)
        out[i] = src[y : y + size, x : x + size]
    return out


def blur(batch: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(img, (0, 0), sigma) for img in batch])


class TestValidation:
    def setup_method(self) -> None:
        self.x = crops(4, size=16)

    def test_shapes(self) -> None:
        x = self.x
        with pytest.raises(InputError, match="same shape"):
            reconstruction_attack(x, x[:3], x, x)
        with pytest.raises(InputError, match="same shape"):
            reconstruction_attack(x, x, x, x[:, :8])
        with pytest.raises(InputError, match=r"\(N, H, W, 3\)"):
            reconstruction_attack(x[0], x[0], x, x)
        with pytest.raises(InputError, match="uint8"):
            reconstruction_attack(x, x, x.astype(np.int16), x)
        with pytest.raises(InputError, match="no image"):
            reconstruction_attack(x, x, x[:0], x[:0])

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("epochs", 0),
            ("image_size", 20),
            ("image_size", 264),
            ("batch_size", -2),
            ("seed", 1.0),
            ("learning_rate", 2.0),
            ("ssim_weight", -0.1),
            ("width", 2),
        ],
    )
    def test_bad_options(self, option: str, value: object) -> None:
        with pytest.raises(ValueError, match=option):
            reconstruction_attack(self.x, self.x, self.x, self.x, **{option: value})  # type: ignore[arg-type]

    def test_missing_torch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "torch", None)
        with pytest.raises(MissingDependencyError, match=r"pixveil\[eval\]"):
            reconstruction_attack(self.x, self.x, self.x, self.x, epochs=1, image_size=16)


class TestTraining:
    def test_deterministic_shapes_and_scores(self) -> None:
        orig = crops(12, size=24)
        prot = blur(orig, 1.5)
        before = torch.random.get_rng_state()
        events: list[ProgressEvent] = []
        kwargs = {"epochs": 2, "image_size": 16, "batch_size": 4, "width": 4}
        a = reconstruction_attack(orig[:8], prot[:8], orig[8:], prot[8:], seed=5, **kwargs)
        b = reconstruction_attack(
            orig[:8], prot[:8], orig[8:], prot[8:], seed=5, progress=events.append, **kwargs
        )
        assert torch.equal(torch.random.get_rng_state(), before)
        assert isinstance(a, ReconstructionResult)
        assert a.reconstructions.shape == (4, 16, 16, 3)
        assert a.reconstructions.dtype == np.uint8
        np.testing.assert_array_equal(a.reconstructions, b.reconstructions)
        assert a.ssim_reconstructed == b.ssim_reconstructed
        assert a.epochs == 2
        assert [(e.stage, e.done, e.total) for e in events] == [
            ("reconstruction", 1, 2),
            ("reconstruction", 2, 2),
        ]
        assert all(e.message.startswith("reconstruction: epoch ") for e in events)

        # The protected scores are the metrics module's, at the attack's resolution.
        def small(img: np.ndarray) -> np.ndarray:
            return cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA)

        expected = np.mean(
            [ssim(small(o), small(p)) for o, p in zip(orig[8:], prot[8:], strict=True)]
        )
        assert a.ssim_protected == pytest.approx(expected)
        got = np.mean([ssim(small(o), r) for o, r in zip(orig[8:], a.reconstructions, strict=True)])
        assert a.ssim_reconstructed == pytest.approx(got)

    def test_identity_protection_gives_perfect_scores(self) -> None:
        orig = crops(8, size=16)
        r = reconstruction_attack(orig, orig, orig, orig, epochs=1, image_size=16, width=4)
        assert r.ssim_protected == pytest.approx(1.0)
        assert r.psnr_protected == float("inf")


@pytest.mark.slow
class TestCanSucceed:
    def test_inverts_mild_blur(self) -> None:
        """Proof the attack can succeed: a mild blur is largely undone on held-out photos."""
        train, test = crops(192), crops(48, seed=1, test=True)
        r = reconstruction_attack(
            train, blur(train, 1.0), test, blur(test, 1.0), epochs=25, image_size=32
        )
        # The structural error (1 - SSIM) falls by at least 30 % (about 45 % measured)
        # and PSNR rises by more than 1.5 dB (about 2.7 dB measured).
        assert 1 - r.ssim_reconstructed < 0.7 * (1 - r.ssim_protected)
        assert r.psnr_reconstructed > r.psnr_protected + 1.5

    def test_inverts_brightness_change(self) -> None:
        def darken(batch: np.ndarray) -> np.ndarray:
            return (batch.astype(np.float64) * 0.6 + 10).astype(np.uint8)

        train, test = crops(128), crops(32, seed=1, test=True)
        r = reconstruction_attack(
            train, darken(train), test, darken(test), epochs=15, image_size=32
        )
        assert r.psnr_protected < 20
        assert r.psnr_reconstructed > r.psnr_protected + 8
        assert r.ssim_reconstructed > max(r.ssim_protected, 0.9)

    def test_cannot_recover_from_random_noise(self) -> None:
        """Noise that replaces the image carries nothing: reconstructions fit no original."""
        rng = np.random.default_rng(0)
        train, test = crops(128), crops(32, seed=1, test=True)

        def noise(batch: np.ndarray) -> np.ndarray:
            return rng.integers(0, 256, size=batch.shape, dtype=np.uint8)

        r = reconstruction_attack(train, noise(train), test, noise(test), epochs=15, image_size=32)
        assert r.ssim_reconstructed < 0.3
        # A reconstruction fits its own original no better than another test photo's.
        own = np.mean([ssim(o, x) for o, x in zip(test, r.reconstructions, strict=True)])
        other = np.mean(
            [ssim(o, x) for o, x in zip(np.roll(test, 1, axis=0), r.reconstructions, strict=True)]
        )
        assert own < other + 0.05


class TestUnpaired:
    """The paper's GA: protected images and *other* plain images, a discriminator, no pairs."""

    def test_validation(self) -> None:
        x = crops(4, size=32)
        with pytest.raises(ValueError, match="at least 32"):
            unpaired_reconstruction_attack(x, x, x, x, image_size=16)
        with pytest.raises(InputError, match="same shape"):
            unpaired_reconstruction_attack(x, x, x, x[:3])
        with pytest.raises(ValueError, match="disc_width"):
            unpaired_reconstruction_attack(x, x, x, x, image_size=32, disc_width=2)
        with pytest.raises(ValueError, match="not both"):
            unpaired_reconstruction_attack(
                x, x, x, x, image_size=32, block_size=4, pixel_affine=True
            )

    def test_deterministic_with_progress(self) -> None:
        x, t = crops(16, size=32), crops(4, size=32, seed=1, test=True)
        events: list[ProgressEvent] = []
        kwargs = {"epochs": 2, "image_size": 32, "batch_size": 4, "width": 4, "disc_width": 4}
        a = unpaired_reconstruction_attack(x[0::2], x[1::2], t, blur(t, 1.0), seed=3, **kwargs)
        b = unpaired_reconstruction_attack(
            x[0::2], x[1::2], t, blur(t, 1.0), seed=3, progress=events.append, **kwargs
        )
        np.testing.assert_array_equal(a.reconstructions, b.reconstructions)
        assert a.reconstructions.shape == (4, 32, 32, 3)
        assert [(e.stage, e.done, e.total) for e in events] == [("ga", 1, 2), ("ga", 2, 2)]
        assert {"loss", "disc"} <= set(events[-1].metrics)

    def test_identity_transform_keeps_a_high_ssim(self) -> None:
        """On unprotected images the unpaired attacker must not destroy them (about 0.92
        measured): so a low GA SSIM against a scheme is the scheme's doing, not the attack's."""
        train, test = crops(128, size=32), crops(32, size=32, seed=1, test=True)
        r = unpaired_reconstruction_attack(
            train[0::2], train[1::2], test, test.copy(), epochs=10, image_size=32, batch_size=16
        )
        assert r.ssim_protected == pytest.approx(1.0)
        assert r.ssim_reconstructed > 0.85
        assert r.train_seconds > 0
