"""The latent Laplace mechanism of gan-face: noise scale, clipping, projection, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixveil.errors import PrivacyLeakWarning, PrivacyParameterError
from pixveil.privacy.latent import LatentLaplace, gaussianize, standard_normal
from pixveil.privacy.rng import SecureSource, SeededSource


def test_output_on_the_generator_shell() -> None:
    mech = LatentLaplace(epsilon=1.0, dim=128, random_state=0)
    z = mech.privatize(np.full((5, 128), 10.0))
    assert z.shape == (5, 128) and z.dtype == np.float32
    assert np.allclose(np.linalg.norm(z, axis=1), math.sqrt(128), rtol=1e-5)


def test_noise_is_laplace_with_scale_one_over_epsilon() -> None:
    # release() is the mechanism before post-processing: clip(z) + Lap(1/ε).
    eps = 0.5
    mech = LatentLaplace(epsilon=eps, dim=100_000, random_state=1)
    noise = mech.release(np.zeros(100_000))
    # Laplace(b): E|n| = b and Var n = 2 b^2
    assert np.abs(noise).mean() == pytest.approx(1 / eps, rel=0.02)
    assert noise.var() == pytest.approx(2 / eps**2, rel=0.03)
    assert mech.scale == pytest.approx(1 / eps)


@pytest.mark.parametrize("eps", [0.1, 0.5, 2.0])
def test_released_codes_follow_the_generator_prior(eps: float) -> None:
    # Prior codes through the mechanism come out with N(0, 1) coordinates (not the
    # heavy-tailed Laplace ones), which is what keeps the generated faces clean.
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3000, 128))
    mech = LatentLaplace(epsilon=eps, dim=128, random_state=2)
    noisy = mech.release(z)
    g = gaussianize(noisy, scale=mech.scale, clip=mech.clip)
    assert abs(g.mean()) < 0.01
    assert g.std() == pytest.approx(1.0, abs=0.01)
    kurt = ((g - g.mean()) ** 4).mean() / g.var() ** 2
    assert kurt == pytest.approx(3.0, abs=0.1)  # Laplace would be 6
    raw_kurt = ((noisy - noisy.mean()) ** 4).mean() / noisy.var() ** 2
    assert raw_kurt > kurt + 0.15
    # post-processing keeps the information: monotone and odd per coordinate
    # (over the range noisy values reach with probability > 1e-15)
    lim = mech.clip + 30 * mech.scale
    y = np.linspace(-lim, lim, 1001)
    t = gaussianize(y, scale=mech.scale, clip=mech.clip)
    assert np.all(np.diff(t) > 0)
    assert np.allclose(t, -t[::-1])


def test_gaussianize_is_identity_without_noise() -> None:
    y = np.array([-1.0, 0.0, 2.5])
    assert np.array_equal(gaussianize(y, scale=0.0, clip=3.0), y)


def test_clipping_bounds_influence_of_outliers() -> None:
    # Two codes that differ only beyond the clip bound give identically distributed outputs.
    a = np.zeros(16)
    b = np.zeros(16)
    a[0], b[0] = 3.0, 50.0
    m1 = LatentLaplace(epsilon=2.0, clip=3.0, dim=16, random_state=7)
    m2 = LatentLaplace(epsilon=2.0, clip=3.0, dim=16, random_state=7)
    assert np.array_equal(m1.privatize(a), m2.privatize(b))


def test_closer_codes_give_closer_outputs_on_average() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal(128)
    near = base + 0.05 * rng.standard_normal(128)
    far = rng.standard_normal(128)
    mech = LatentLaplace(epsilon=4.0, dim=128, random_state=3)
    outs_b = mech.privatize(np.tile(base, (200, 1)))
    outs_n = mech.privatize(np.tile(near, (200, 1)))
    outs_f = mech.privatize(np.tile(far, (200, 1)))
    d_near = np.linalg.norm(outs_b.mean(0) - outs_n.mean(0))
    d_far = np.linalg.norm(outs_b.mean(0) - outs_f.mean(0))
    assert d_near < 0.5 * d_far


def test_epsilon_zero_ignores_the_input() -> None:
    m1 = LatentLaplace(epsilon=0.0, dim=32, random_state=5)
    m2 = LatentLaplace(epsilon=0.0, dim=32, random_state=5)
    assert np.array_equal(m1.privatize(np.zeros(32)), m2.privatize(np.full(32, 2.0)))
    assert m1.scale == math.inf


def test_epsilon_inf_warns_and_keeps_the_clipped_code_direction() -> None:
    with pytest.warns(PrivacyLeakWarning):
        mech = LatentLaplace(epsilon=math.inf, dim=4)
    z = mech.privatize(np.array([1.0, 0.0, 0.0, 0.0]))
    assert np.allclose(z, [2.0, 0.0, 0.0, 0.0])


def test_guarantee_numbers() -> None:
    mech = LatentLaplace(epsilon=0.5, clip=3.0, dim=128)
    assert mech.diameter == 768.0
    assert mech.dp_epsilon == 384.0
    assert isinstance(mech._source, SecureSource)  # CSPRNG by default


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": -1.0, "dim": 4},
        {"epsilon": float("nan"), "dim": 4},
        {"epsilon": "1", "dim": 4},
        {"epsilon": 1.0, "clip": 0.0, "dim": 4},
        {"epsilon": 1.0, "clip": math.inf, "dim": 4},
        {"epsilon": 1.0, "dim": 0},
    ],
)
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(PrivacyParameterError):
        LatentLaplace(**kwargs)  # type: ignore[arg-type]


def test_bad_codes() -> None:
    mech = LatentLaplace(epsilon=1.0, dim=4, random_state=0)
    with pytest.raises(ValueError, match="4 coordinates"):
        mech.privatize(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        mech.privatize(np.array([0.0, np.nan, 0.0, 0.0]))


def test_standard_normal_moments() -> None:
    x = standard_normal((100_001,), SeededSource(np.random.default_rng(0)))
    assert x.shape == (100_001,)
    assert abs(x.mean()) < 0.01 and x.std() == pytest.approx(1.0, abs=0.01)
