"""The dataset schemes: exact inversion with the key, no trivial inversion without it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio as psnr

from pixveil.dataset import SCHEMES, available_schemes, get_scheme, new_key
from pixveil.dataset.schemes import key_permutation
from pixveil.errors import InputError, PrivacyParameterError

from .conftest import generated_images

# every registered keyed scheme, with parameters that fit 32x32 and 48x64 images
# (the keyless ``gan`` needs a trained model: tests/dataset/test_ppgan.py)
CASES = [
    ("pixel-based", {}),
    ("block-scramble", {"block_size": 4}),
    ("block-scramble", {"block_size": 8}),
]


def test_the_cases_cover_every_registered_scheme() -> None:
    keyed = [n for n in available_schemes() if SCHEMES.get(n).keyed]
    assert sorted({name for name, _ in CASES}) == keyed
    assert sorted(set(available_schemes()) - set(keyed)) == ["gan"]
    for name in available_schemes():
        cls = SCHEMES.get(name)
        assert cls.name == name and cls.summary and cls.threat_model


@pytest.mark.parametrize(("name", "params"), CASES)
class TestRoundTrip:
    def test_cifar_images_invert_exactly(
        self, name: str, params: dict, cifar_images: np.ndarray
    ) -> None:
        scheme = get_scheme(name, **params)
        key = new_key()
        for img in cifar_images:
            enc = scheme.encrypt(img, key)
            assert enc.shape == img.shape and enc.dtype == np.uint8
            assert np.array_equal(scheme.decrypt(enc, key), img)

    def test_generated_images_invert_exactly(self, name: str, params: dict) -> None:
        scheme = get_scheme(name, **params)
        for img in generated_images():
            if img.shape[0] % params.get("block_size", 1) or img.shape[1] % params.get(
                "block_size", 1
            ):
                continue
            key = new_key()
            assert np.array_equal(scheme.decrypt(scheme.encrypt(img, key), key), img)

    def test_same_key_same_output_other_key_other_output(self, name: str, params: dict) -> None:
        scheme = get_scheme(name, **params)
        img = generated_images()[0]
        k1, k2 = new_key(), new_key()
        assert np.array_equal(scheme.encrypt(img, k1), get_scheme(name, **params).encrypt(img, k1))
        assert not np.array_equal(scheme.encrypt(img, k1), scheme.encrypt(img, k2))

    def test_without_the_key_trivial_inversions_fail(
        self, name: str, params: dict, cifar_images: np.ndarray
    ) -> None:
        """The protected image itself, its negative and a wrong key's decryption all stay far off."""
        scheme = get_scheme(name, **params)
        key = new_key()
        scores: dict[str, list[float]] = {"identity": [], "negative": [], "wrong key": []}
        for img in cifar_images:
            enc = scheme.encrypt(img, key)
            scores["identity"].append(psnr(img, enc))
            scores["negative"].append(psnr(img, 255 - enc))
            scores["wrong key"].append(psnr(img, scheme.decrypt(enc, new_key())))
        for what, values in scores.items():
            # an exact decryption is infinite; JPEG at quality 10 is about 25 dB
            assert np.median(values) < 13, (what, np.median(values))
            assert max(values) < 20, (what, max(values))

    def test_rejects_a_bad_key(self, name: str, params: dict) -> None:
        scheme = get_scheme(name, **params)
        img = generated_images()[1]
        for bad in (b"short", "x" * 32, None, new_key() + b"\x00"):
            with pytest.raises(InputError, match="key must be 32 bytes"):
                scheme.encrypt(img, bad)  # type: ignore[arg-type]


class TestPixelBased:
    def test_each_pixel_depends_only_on_itself(self) -> None:
        """Positions are kept (the scheme's documented weakness, and what makes it learnable)."""
        scheme, key = get_scheme("pixel-based"), new_key()
        img = generated_images()[0]
        changed = img.copy()
        changed[10, 20] = 255 - changed[10, 20]
        diff = np.any(scheme.encrypt(img, key) != scheme.encrypt(changed, key), axis=2)
        assert diff[10, 20] and diff.sum() == 1

    def test_about_half_the_values_are_negated_and_channels_are_shuffled(self) -> None:
        scheme, key = get_scheme("pixel-based"), new_key()
        img = np.zeros((64, 64, 3), np.uint8)
        img[..., 1] = 100  # R=0, G=100, B=0: every output value tells where it came from
        enc = scheme.encrypt(img, key)
        negated = np.isin(enc, (255, 155)).mean()
        assert 0.45 < negated < 0.55
        green_at = np.argmax(np.isin(enc, (100, 155)), axis=2)
        assert {0, 1, 2} == set(np.unique(green_at).tolist())
        for c in range(3):
            assert 0.25 < (green_at == c).mean() < 0.42

    def test_works_on_any_size(self) -> None:
        scheme, key = get_scheme("pixel-based"), new_key()
        img = np.random.default_rng(1).integers(0, 256, (17, 23, 3), dtype=np.uint8)
        assert np.array_equal(scheme.decrypt(scheme.encrypt(img, key), key), img)


class TestBlockScramble:
    def test_a_change_stays_inside_its_block(self) -> None:
        scheme, key = get_scheme("block-scramble", block_size=4), new_key()
        img = generated_images()[0]
        changed = img.copy()
        changed[5, 9, 0] ^= 0xFF
        diff = np.any(scheme.encrypt(img, key) != scheme.encrypt(changed, key), axis=2)
        assert diff[4:8, 8:12].any() and diff.sum() == diff[4:8, 8:12].sum()

    def test_every_block_gets_the_same_scramble(self) -> None:
        """One key, one scramble for all blocks (what the adaptation network relies on)."""
        scheme, key = get_scheme("block-scramble", block_size=4), new_key()
        block = np.random.default_rng(3).integers(0, 256, (4, 4, 3), dtype=np.uint8)
        enc = scheme.encrypt(np.tile(block, (3, 5, 1)), key)
        assert np.array_equal(enc, np.tile(enc[:4, :4], (3, 5, 1)))
        assert not np.array_equal(enc[:4, :4], block)

    def test_refuses_sizes_that_are_not_whole_blocks(self) -> None:
        scheme = get_scheme("block-scramble", block_size=5)
        with pytest.raises(InputError, match="not a whole number of 5x5 blocks"):
            scheme.encrypt(np.zeros((32, 32, 3), np.uint8), new_key())

    @pytest.mark.parametrize("bad", [0, 65, -4, 2.5, True, "4"])
    def test_block_size_range(self, bad: object) -> None:
        with pytest.raises(PrivacyParameterError, match="block_size"):
            get_scheme("block-scramble", block_size=bad)


def test_unknown_scheme_and_parameter() -> None:
    with pytest.raises(ValueError, match="unknown dataset scheme 'rot13'"):
        get_scheme("rot13")
    with pytest.raises(PrivacyParameterError, match="pixel-based"):
        get_scheme("pixel-based", block_size=4)


def test_key_permutation_is_a_permutation_that_depends_on_the_key() -> None:
    k1, k2 = new_key(), new_key()
    p1 = key_permutation(k1, "t", 96)
    assert sorted(p1.tolist()) == list(range(96))
    assert np.array_equal(p1, key_permutation(k1, "t", 96))
    assert not np.array_equal(p1, key_permutation(k2, "t", 96))
    assert not np.array_equal(p1, key_permutation(k1, "u", 96))


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    m=st.sampled_from([1, 2, 4]),
    seed=st.integers(0, 2**32 - 1),
    key=st.binary(min_size=32, max_size=32),
)
def test_round_trip_property(h: int, w: int, m: int, seed: int, key: bytes) -> None:
    """Any image, any key: decrypt(encrypt(x)) == x, for every scheme."""
    img = np.random.default_rng(seed).integers(0, 256, (h * m, w * m, 3), dtype=np.uint8)
    for scheme in (get_scheme("pixel-based"), get_scheme("block-scramble", block_size=m)):
        enc = scheme.encrypt(img, key)
        assert enc.shape == img.shape and enc.dtype == np.uint8
        assert np.array_equal(scheme.decrypt(enc, key), img)
