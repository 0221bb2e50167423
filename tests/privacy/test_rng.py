"""Sources of privacy noise: secure by default, reproducible only when seeded."""

from __future__ import annotations

import numpy as np
import pytest

from pixveil.privacy.rng import NoiseSource, SecureSource, SeededSource, noise_source


class TestNoiseSource:
    def test_none_is_secure(self) -> None:
        src = noise_source(None)
        assert isinstance(src, SecureSource)
        assert src.secure

    def test_default_argument_is_secure(self) -> None:
        assert noise_source().secure

    @pytest.mark.parametrize("seed", [0, 7, np.int64(3)])
    def test_int_seed_is_reproducible(self, seed: int) -> None:
        a = noise_source(seed).open_uniform(100)
        b = noise_source(seed).open_uniform(100)
        assert not noise_source(seed).secure
        np.testing.assert_array_equal(a, b)

    def test_generator_is_used_in_place(self) -> None:
        gen = np.random.default_rng(1)
        src = noise_source(gen)
        assert isinstance(src, SeededSource) and src.generator is gen
        first, second = src.open_uniform(10), src.open_uniform(10)
        assert not np.array_equal(first, second)  # the generator advanced

    def test_source_passes_through(self) -> None:
        src = SecureSource()
        assert noise_source(src) is src

    @pytest.mark.parametrize("bad", [1.5, True, "0", np.random.RandomState(0), [1]])
    def test_bad_types_raise(self, bad: object) -> None:
        with pytest.raises(TypeError, match="random_state"):
            noise_source(bad)  # type: ignore[arg-type]

    def test_negative_seed_raises(self) -> None:
        with pytest.raises(ValueError, match=">= 0"):
            noise_source(-1)

    def test_seeded_generator_type_checked(self) -> None:
        with pytest.raises(TypeError):
            SeededSource(np.random.RandomState(0))  # type: ignore[arg-type]


class TestOpenUniform:
    @pytest.mark.parametrize("src", [SecureSource(), SeededSource(np.random.default_rng(0))])
    def test_open_interval_and_shape(self, src: NoiseSource) -> None:
        u = src.open_uniform((200, 50))
        assert u.shape == (200, 50) and u.dtype == np.float64
        assert np.all(u > 0.0) and np.all(u < 1.0) and not np.any(u == 0.5)

    @pytest.mark.parametrize("src", [SecureSource(), SeededSource(np.random.default_rng(0))])
    def test_uniform_moments(self, src: NoiseSource) -> None:
        u = src.open_uniform(200_000)
        assert abs(u.mean() - 0.5) < 0.005
        assert abs(u.var() - 1 / 12) < 0.002
        hist, _ = np.histogram(u, bins=10, range=(0, 1))
        assert hist.min() > 0.95 * 20_000 and hist.max() < 1.05 * 20_000

    def test_extreme_bits_stay_open(self) -> None:
        class Edge(NoiseSource):
            secure = False

            def _bits64(self, count: int) -> np.ndarray:
                return np.array([0, 2**64 - 1, 2**63, 2**63 - 1], dtype=np.uint64)[:count]

        u = Edge().open_uniform(4)
        assert 0.0 < u[0] < 1e-15 and 1.0 - 1e-15 < u[1] < 1.0
        assert u[2] != 0.5 and u[3] != 0.5 and u[3] < 0.5 < u[2]

    def test_random_bits_use_all_64_bits(self) -> None:
        bits = SecureSource().random_bits(4096)
        assert bits.dtype == np.uint64
        for shift in (0, 31, 63):
            ones = ((bits >> np.uint64(shift)) & np.uint64(1)).mean()
            assert 0.45 < ones < 0.55

    def test_secure_runs_differ(self) -> None:
        assert not np.array_equal(SecureSource().open_uniform(8), SecureSource().open_uniform(8))

    def test_empty_and_negative_sizes(self) -> None:
        assert SecureSource().open_uniform(0).shape == (0,)
        with pytest.raises(ValueError):
            SecureSource().open_uniform((-1, 2))

    def test_too_large_refused(self) -> None:
        with pytest.raises(ValueError, match="at most"):
            SecureSource().open_uniform((2**14, 2**14))
