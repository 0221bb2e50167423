"""metric-pix: transform, noise distribution, parameters, randomness, and a statistical
test of its metric-privacy bound P[M(x)∈S] ≤ exp(ε·d(x, x'))·P[M(x')∈S]."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import pixveil.protect.metric as mp
from pixveil.errors import PrivacyLeakWarning, PrivacyParameterError
from pixveil.protect import get_method
from pixveil.types import Region


def full_box(image: np.ndarray) -> list[Region]:
    h, w = image.shape[:2]
    return [Region((0, 0, w, h), "plate")]


class TestTransform:
    def test_basis_is_orthonormal_and_inverts(self) -> None:
        b = mp.dct_basis(13, 13)
        np.testing.assert_allclose(b @ b.T, np.eye(13), atol=1e-12)
        x = np.random.default_rng(0).integers(0, 256, (13, 9, 3)).astype(np.float64)
        coef = mp.lowpass_coefficients(x, 13, 9)
        np.testing.assert_allclose(mp.from_coefficients(coef, 13, 9), x, atol=1e-9)

    def test_dc_is_the_scaled_mean(self) -> None:
        x = np.random.default_rng(1).integers(0, 256, (20, 30, 3)).astype(np.float64)
        coef = mp.lowpass_coefficients(x, 1, 1)
        np.testing.assert_allclose(coef[0, 0], x.mean(axis=(0, 1)) * math.sqrt(600))

    def test_kept_frequencies_follow_the_aspect(self) -> None:
        assert mp.kept_frequencies(64, 64, 8) == (8, 8)
        assert mp.kept_frequencies(32, 64, 8) == (4, 8)
        assert mp.kept_frequencies(3, 200, 8) == (1, 8)
        assert mp.kept_frequencies(4, 4, 8) == (4, 4)  # capped at the side

    def test_distance_is_lowpass_rms_and_at_most_pixel_rms(self) -> None:
        rng = np.random.default_rng(2)
        x = rng.integers(0, 256, (32, 32, 3)).astype(np.float64)
        y = x.copy()
        y[..., 0] += 30  # a constant shift lives in the DC: fully kept
        assert mp.metric_distance(x, y, blocks=4) == pytest.approx(30 / math.sqrt(3))
        z = rng.integers(0, 256, (32, 32, 3)).astype(np.float64)
        pixel_rms = float(np.sqrt(np.mean((x - z) ** 2)))
        assert mp.metric_distance(x, z, blocks=4) < pixel_rms


class TestNoise:
    @pytest.mark.parametrize("dim", [1, 3, 48])
    def test_radius_is_gamma_and_direction_uniform(self, dim: int) -> None:
        eps = 0.5
        z = mp.euclidean_dx_noise(dim, eps, 20000, random_state=0)
        r = np.linalg.norm(z, axis=1)
        # Gamma(dim, 1/eps): mean dim/eps, variance dim/eps².
        assert r.mean() == pytest.approx(dim / eps, rel=0.02)
        assert r.var() == pytest.approx(dim / eps**2, rel=0.06)
        u = z / r[:, None]
        assert np.abs(u.mean(axis=0)).max() < 0.03  # no preferred direction
        assert np.mean(u[:, 0] ** 2) == pytest.approx(1 / dim, rel=0.05)

    def test_mean_rms_noise_in_the_image_is_d_over_epsilon(self) -> None:
        """The documented size: an RMS of D/ε grey levels (no clipping at mid grey)."""
        image = np.full((64, 64, 3), 128, np.uint8)
        eps, blocks = 64.0, 4  # D = 48: RMS ≈ 0.75 grey levels
        method = get_method("metric-pix", epsilon=eps, blocks=blocks, shape="box", margin=1.0)
        rng = np.random.default_rng(3)
        patch = image.copy()
        patch.setflags(write=False)
        region = full_box(image)[0]
        rms = []
        for _ in range(300):
            h, w = 64, 64
            coef = mp.lowpass_coefficients(patch, 4, 4)
            noise = mp.euclidean_dx_noise(coef.size, eps / math.sqrt(h * w * 3), random_state=rng)
            img = mp.from_coefficients(coef + noise.reshape(coef.shape), h, w)
            rms.append(float(np.sqrt(np.mean((img - 128.0) ** 2))))
        assert np.mean(rms) == pytest.approx(48 / eps, rel=0.05)
        out = method.replace(patch, region, rng=np.random.default_rng(4))
        assert out.dtype == np.uint8 and abs(float(out.mean()) - 128) < 2

    def test_release_is_inverse_of_noisy_coefficients(self) -> None:
        """The method is exactly transform -> d_X noise -> inverse -> round/clip."""
        x = np.random.default_rng(5).integers(0, 256, (24, 40, 3), dtype=np.uint8)
        method = get_method("metric-pix", epsilon=4.0, blocks=5, shape="box", margin=1.0)
        out = method.apply(x, full_box(x), rng=np.random.default_rng(9))
        kh, kw = mp.kept_frequencies(24, 40, 5)
        coef = mp.lowpass_coefficients(x, kh, kw)
        noise = mp.euclidean_dx_noise(
            coef.size, 4.0 / math.sqrt(24 * 40 * 3), random_state=np.random.default_rng(9)
        )
        want = np.clip(
            np.rint(mp.from_coefficients(coef + noise.reshape(coef.shape), 24, 40)), 0, 255
        )
        np.testing.assert_array_equal(out, want.astype(np.uint8))


class TestParameters:
    def test_defaults(self) -> None:
        p = get_method("metric-pix").params
        assert p.epsilon == mp.DEFAULT_EPSILON  # type: ignore[attr-defined]
        assert p.blocks == mp.DEFAULT_BLOCKS  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"epsilon": 0}, "epsilon"),
            ({"epsilon": -2.0}, "epsilon"),
            ({"epsilon": math.nan}, "epsilon"),
            ({"epsilon": "1"}, "epsilon"),
            ({"epsilon": True}, "epsilon"),
            ({"blocks": 0}, "blocks"),
            ({"blocks": 65}, "blocks"),
            ({"blocks": 2.5}, "blocks"),
        ],
    )
    def test_privacy_parameters_raise(self, params: dict[str, object], match: str) -> None:
        with pytest.raises(PrivacyParameterError, match=match):
            get_method("metric-pix", **params)

    def test_infinite_epsilon_warns_and_is_a_plain_lowpass(self) -> None:
        image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        with pytest.warns(PrivacyLeakWarning):
            method = get_method("metric-pix", epsilon=math.inf, blocks=4, shape="box", margin=1.0)
        with pytest.warns(PrivacyLeakWarning):
            out = method.apply(image, full_box(image))
        low = mp.from_coefficients(mp.lowpass_coefficients(image, 4, 4), 32, 32)
        np.testing.assert_array_equal(out, np.clip(np.rint(low), 0, 255).astype(np.uint8))


class TestRandomness:
    def test_unseeded_uses_the_os_csprng(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[int] = []
        real_urandom = os.urandom

        def counting_urandom(n: int) -> bytes:
            calls.append(n)
            return real_urandom(n)

        monkeypatch.setattr("pixveil.privacy.rng.os.urandom", counting_urandom)
        image = np.zeros((32, 32, 3), np.uint8)
        get_method("metric-pix", blocks=4).apply(image, full_box(image))
        assert sum(calls) >= 3 * 48 * 8  # three 64-bit words per dimension

    def test_seeded_does_not_touch_the_csprng(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def forbidden(n: int) -> bytes:
            raise AssertionError("seeded runs must not read os.urandom")

        monkeypatch.setattr("pixveil.privacy.rng.os.urandom", forbidden)
        image = np.zeros((32, 32, 3), np.uint8)
        get_method("metric-pix").apply(image, full_box(image), rng=np.random.default_rng(1))

    def test_unseeded_runs_differ_seeded_equal(self) -> None:
        image = np.full((48, 48, 3), 90, np.uint8)
        method = get_method("metric-pix")
        a, b = method.apply(image, full_box(image)), method.apply(image, full_box(image))
        assert not np.array_equal(a, b)
        np.testing.assert_array_equal(
            method.apply(image, full_box(image), rng=np.random.default_rng(4)),
            method.apply(image, full_box(image), rng=np.random.default_rng(4)),
        )


# ---------------------------------------------------------------------------
# Statistical test of the metric-privacy bound
# ---------------------------------------------------------------------------

EPS = 2.0  # per grey level of RMS low-pass distance
SIDE = 8
N_RELEASES = 40000


def releases(image: np.ndarray, *, seed: int) -> np.ndarray:
    """N_RELEASES releases of metric-pix (blocks=1: the three channel means) on ``image``;
    returns the red channel's released value (a post-processing of the output)."""
    method = get_method("metric-pix", epsilon=EPS, blocks=1, shape="box", margin=1.0)
    rng = np.random.default_rng(seed)
    patch = image.copy()
    patch.setflags(write=False)
    region = full_box(image)[0]
    return np.array(
        [int(method.replace(patch, region, rng=rng)[0, 0, 0]) for _ in range(N_RELEASES)]
    )


def neighbours() -> tuple[np.ndarray, np.ndarray, float]:
    """x: mid grey; y: its red channel 1 grey level brighter; and d(x, y)."""
    x = np.full((SIDE, SIDE, 3), 128, np.uint8)
    y = x.copy()
    y[..., 0] += 1
    return x, y, mp.metric_distance(x, y, blocks=1)


def dx_violations(tx: np.ndarray, ty: np.ndarray, bound: float, *, z: float = 4.5) -> list[str]:
    """Values v where P[M(x)=v] > bound · P[M(y)=v] (or the reverse) beyond sampling error."""
    lo, hi = int(min(tx.min(), ty.min())), int(max(tx.max(), ty.max()))
    edges = np.arange(lo, hi + 2)
    n = tx.size
    px = np.histogram(tx, edges)[0] / n
    py = np.histogram(ty, edges)[0] / n
    bad = []
    for v, a, b in zip(edges[:-1], px, py, strict=True):
        if min(a, b) * n < 200:
            continue  # too little mass to test
        for p, q, side in ((a, b, "x"), (b, a, "y")):
            se = math.sqrt(p * (1 - p) / n + bound * bound * q * (1 - q) / n)
            if p - bound * q > z * se:
                bad.append(f"value {v} ({side}): {p:.4f} > {bound:.3f} * {q:.4f}")
    return bad


@pytest.mark.slow
def test_metric_privacy_bound_holds() -> None:
    """P[M(x)=v] ≤ exp(ε·d(x,y))·P[M(y)=v] + sampling tolerance, both directions.

    With ``blocks=1`` the mechanism is the three-dimensional one on the channel
    means, and the released red value's log-ratio reaches ε·d in the tails:
    the statistic is sharp enough that the test below can fail.
    """
    x, y, d = neighbours()
    assert d == pytest.approx(1 / math.sqrt(3))
    tx, ty = releases(x, seed=1), releases(y, seed=2)
    assert not dx_violations(tx, ty, math.exp(EPS * d))
    # and the loss is really spent: in the lower tail (where x is likelier) the
    # ratio comes close to the bound
    v = int(np.quantile(tx, 0.02))
    ratio = np.mean(tx <= v) / np.mean(ty <= v)
    assert math.exp(0.5 * EPS * d) < ratio <= math.exp(EPS * d) * 1.1


@pytest.mark.slow
def test_bound_fails_for_too_little_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same test rejects a mechanism whose noise is three times too small."""
    real = mp.euclidean_dx_noise

    def weak(dim: int, epsilon: float, size: int = 1, **kw: object) -> np.ndarray:
        return real(dim, 3 * epsilon, size, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mp, "euclidean_dx_noise", weak)
    x, y, d = neighbours()
    tx, ty = releases(x, seed=1), releases(y, seed=2)
    assert dx_violations(tx, ty, math.exp(EPS * d))
