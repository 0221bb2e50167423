"""The Laplace mechanism: ranges, scale, distribution, randomness source."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixveil.errors import PrivacyLeakWarning, PrivacyParameterError
from pixveil.privacy import (
    LaplaceMechanism,
    NoiseSource,
    SeededSource,
    check_epsilon,
    laplace_noise,
)


class TestParameters:
    @pytest.mark.parametrize("eps", [0, -1.0, math.nan, -math.inf, "1", None, True])
    def test_bad_epsilon(self, eps: object) -> None:
        with pytest.raises(PrivacyParameterError, match="epsilon"):
            LaplaceMechanism(epsilon=eps, sensitivity=1.0)  # type: ignore[arg-type]

    @pytest.mark.parametrize("sens", [-0.1, math.inf, math.nan, "1", None, False])
    def test_bad_sensitivity(self, sens: object) -> None:
        with pytest.raises(PrivacyParameterError, match="sensitivity"):
            LaplaceMechanism(epsilon=1.0, sensitivity=sens)  # type: ignore[arg-type]

    def test_keyword_only(self) -> None:
        with pytest.raises(TypeError):
            LaplaceMechanism(1.0, 1.0)  # type: ignore[misc]

    def test_privacy_errors_are_value_errors(self) -> None:
        with pytest.raises(ValueError):
            check_epsilon(0.0)

    def test_infinite_epsilon_warns_and_adds_nothing(self) -> None:
        with pytest.warns(PrivacyLeakWarning, match="NO differential-privacy"):
            mech = LaplaceMechanism(epsilon=math.inf, sensitivity=3.0, random_state=0)
        assert mech.scale == 0.0
        values = np.array([1.5, -2.0, 7.0])
        np.testing.assert_array_equal(mech.randomise(values), values)

    def test_finite_epsilon_does_not_warn(self) -> None:
        # filterwarnings=error makes any warning fail this test.
        LaplaceMechanism(epsilon=1e-3, sensitivity=1.0)

    @pytest.mark.parametrize(("eps", "sens"), [(1.0, 1.0), (0.5, 2.0), (4, 0), (0.1, 765.0)])
    def test_scale_and_variance(self, eps: float, sens: float) -> None:
        mech = LaplaceMechanism(epsilon=eps, sensitivity=sens)
        assert mech.scale == pytest.approx(sens / eps)
        assert mech.variance == pytest.approx(2 * (sens / eps) ** 2)
        assert mech.epsilon == eps and mech.sensitivity == sens

    def test_zero_sensitivity_returns_values(self) -> None:
        mech = LaplaceMechanism(epsilon=1.0, sensitivity=0.0)
        np.testing.assert_array_equal(mech.randomise(np.arange(4.0)), np.arange(4.0))


class TestRandomise:
    def test_shape_dtype_and_input_untouched(self) -> None:
        values = np.zeros((3, 4, 5), dtype=np.uint8)
        out = LaplaceMechanism(epsilon=1.0, sensitivity=1.0, random_state=0).randomise(values)
        assert out.shape == values.shape and out.dtype == np.float64
        assert not np.any(values)
        assert np.all(np.isfinite(out))

    @pytest.mark.parametrize("bad", [np.array([1.0, np.nan]), np.array([np.inf])])
    def test_non_finite_values_refused(self, bad: np.ndarray) -> None:
        mech = LaplaceMechanism(epsilon=1.0, sensitivity=1.0, random_state=0)
        with pytest.raises(ValueError, match="finite"):
            mech.randomise(bad)

    def test_distribution_is_laplace(self) -> None:
        """Mean, std (√2·b), mean absolute deviation (b) and the CDF match Laplace(0, b)."""
        b = 2.5
        mech = LaplaceMechanism(epsilon=0.4, sensitivity=1.0, random_state=123)
        z = mech.randomise(np.zeros(400_000))
        assert abs(z.mean()) < 0.03
        assert z.std() == pytest.approx(math.sqrt(2) * b, rel=0.01)
        assert np.abs(z).mean() == pytest.approx(b, rel=0.01)
        for t in (-5.0, -1.0, 0.0, 2.0, 6.0):
            cdf = 0.5 * math.exp(t / b) if t < 0 else 1 - 0.5 * math.exp(-t / b)
            assert np.mean(z <= t) == pytest.approx(cdf, abs=0.003)

    def test_secure_by_default_and_runs_differ(self) -> None:
        a = LaplaceMechanism(epsilon=1.0, sensitivity=1.0)
        b = LaplaceMechanism(epsilon=1.0, sensitivity=1.0)
        assert a.secure and b.secure
        assert not np.array_equal(a.randomise(np.zeros(16)), b.randomise(np.zeros(16)))

    def test_seeded_runs_equal(self) -> None:
        a = LaplaceMechanism(epsilon=1.0, sensitivity=1.0, random_state=42)
        b = LaplaceMechanism(epsilon=1.0, sensitivity=1.0, random_state=np.random.default_rng(42))
        assert not a.secure
        np.testing.assert_array_equal(a.randomise(np.zeros(16)), b.randomise(np.zeros(16)))

    def test_dp_bound_on_counting_query(self) -> None:
        """Histogram check of P[M(x)∈S] ≤ e^ε P[M(x')∈S] for a sensitivity-1 query."""
        eps, n = 1.0, 300_000
        gen = np.random.default_rng(5)
        mx = LaplaceMechanism(epsilon=eps, sensitivity=1.0, random_state=gen)
        out_x = mx.randomise(np.zeros(n))
        out_y = mx.randomise(np.ones(n))
        edges = np.linspace(-6, 7, 27)
        px = np.histogram(out_x, edges)[0] / n
        py = np.histogram(out_y, edges)[0] / n
        ok = (px > 0.002) & (py > 0.002)
        ratio = np.maximum(px[ok] / py[ok], py[ok] / px[ok])
        assert ratio.max() <= math.exp(eps) * 1.08
        assert ratio.max() >= math.exp(eps) * 0.85  # the bound is nearly attained in the tails


def test_laplace_noise_rejects_bad_scale() -> None:
    src = SeededSource(np.random.default_rng(0))
    with pytest.raises(PrivacyParameterError):
        laplace_noise(-1.0, 3, src)
    with pytest.raises(PrivacyParameterError):
        laplace_noise(math.inf, 3, src)
    assert not np.any(laplace_noise(0.0, 3, src))


def test_laplace_noise_extreme_bits_are_finite() -> None:
    class Edge(NoiseSource):
        secure = False

        def _bits64(self, count: int) -> np.ndarray:
            return np.array([0, 1, 2**64 - 1, 2**64 - 2], dtype=np.uint64)[:count]

    z = laplace_noise(2.0, 4, Edge())
    assert np.all(np.isfinite(z))
    limit = 2.0 * 53 * math.log(2)
    assert z[0] == pytest.approx(limit) and z[1] == pytest.approx(-limit)
    assert z[2] == 0.0 and z[3] == 0.0


def test_repr_names_parameters() -> None:
    text = repr(LaplaceMechanism(epsilon=0.5, sensitivity=2.0))
    assert "epsilon=0.5" in text and "SecureSource" in text
