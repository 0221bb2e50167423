"""Tests of the plate-code mechanism: format, re-draw, noise distribution, guarantee."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixveil.errors import PrivacyParameterError
from pixveil.privacy.plate_codes import (
    cyclic_distance,
    decode,
    encode,
    levenshtein,
    perturb_plate,
    plate_distance,
    plate_format,
    plate_unchanged_probability,
    shift_pmf,
    unchanged_probability,
)


class TestLevenshtein:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            ("kitten", "sitting", 3),  # k->s, e->i, +g
            ("flaw", "lawn", 2),  # -f, +n
            ("", "abc", 3),
            ("abc", "", 3),
            ("abc", "abc", 0),
            ("AB123", "AB132", 2),  # a transposition costs two substitutions
            ("AB123", "XB12", 2),  # A->X, -3
        ],
    )
    def test_hand_computed(self, a: str, b: str, expected: int) -> None:
        assert levenshtein(a, b) == expected

    def test_rejects_non_strings(self) -> None:
        with pytest.raises(TypeError):
            levenshtein("abc", None)  # type: ignore[arg-type]

    @settings(max_examples=150, deadline=None)
    @given(st.text("ABC12", max_size=8), st.text("ABC12", max_size=8), st.text("ABC12", max_size=8))
    def test_is_a_metric(self, a: str, b: str, c: str) -> None:
        d = levenshtein(a, b)
        assert d == levenshtein(b, a)
        assert (d == 0) == (a == b)
        assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
        assert levenshtein(a, c) <= d + levenshtein(b, c)


class TestCodes:
    def test_ranges_and_roundtrip(self) -> None:
        codes = encode("09AZ")
        assert codes.tolist() == [0, 9, 10, 35]
        assert decode(codes) == "09AZ"
        assert plate_format("RK763AS") == "LLDDDLL"

    @pytest.mark.parametrize("bad", ["ab12", "AB-12", "ÄB12"])
    def test_rejects_other_characters(self, bad: str) -> None:
        with pytest.raises(ValueError, match="A-Z and 0-9"):
            encode(bad)

    def test_cyclic_distance(self) -> None:
        assert cyclic_distance("0A", "9Z").tolist() == [1, 1]  # wrap inside each class
        assert cyclic_distance("0A", "5N").tolist() == [5, 13]  # the largest distances
        assert plate_distance("AB12", "AC19") == 1 + 3
        with pytest.raises(ValueError, match="different formats"):
            cyclic_distance("A1", "11")


class TestShiftDistribution:
    @pytest.mark.parametrize("eps", [0.1, 0.5, 1.0, 3.0])
    @pytest.mark.parametrize("n", [10, 26])
    def test_closed_form_matches_laplace_rounding(self, eps: float, n: int) -> None:
        # P[round(Z) = m] from the Laplace CDF, folded modulo n.
        m = np.arange(-4000, 4001)

        def laplace_cdf(x: np.ndarray) -> np.ndarray:
            tail = 0.5 * np.exp(-eps * np.abs(x))
            return np.where(x >= 0, 1 - tail, tail)

        cdf, cdf_lo = laplace_cdf(m + 0.5), laplace_cdf(m - 0.5)
        folded = np.bincount(m % n, weights=cdf - cdf_lo, minlength=n)
        np.testing.assert_allclose(shift_pmf(eps, n), folded, atol=1e-12)
        assert shift_pmf(eps, n).sum() == pytest.approx(1.0)

    @pytest.mark.parametrize("eps", [0.5, 1.0])
    def test_empirical_shifts_follow_laplace_scale(self, eps: float) -> None:
        rng = np.random.default_rng(7)
        draws = 8000
        out = [
            perturb_plate("5K", epsilon=eps, redraw=False, random_state=rng) for _ in range(draws)
        ]
        digit = np.array([(int(o[0]) - 5) % 10 for o in out])
        letter = np.array([(ord(o[1]) - ord("K")) % 26 for o in out])
        for shifts, n in ((digit, 10), (letter, 26)):
            freq = np.bincount(shifts, minlength=n) / draws
            expected = shift_pmf(eps, n)
            # 4.5 binomial standard deviations per cell.
            tol = 4.5 * np.sqrt(expected * (1 - expected) / draws)
            assert np.all(np.abs(freq - expected) <= tol), (freq, expected)
        # P[unchanged] = 1 - exp(-ε/2) for the rounded Laplace(1/ε) noise (+ tiny wrap mass).
        assert np.mean(digit == 0) == pytest.approx(1 - math.exp(-eps / 2), abs=0.015)

    def test_metric_privacy_bound_is_tight_per_character(self) -> None:
        eps = 0.7
        for n in (10, 26):
            pmf = shift_pmf(eps, n)
            worst = 0.0
            for c in range(n):
                for c2 in range(n):
                    d = min(abs(c - c2), n - abs(c - c2))
                    # P[y | c] = pmf[(y - c) mod n]
                    ratio = max(pmf[(y - c) % n] / pmf[(y - c2) % n] for y in range(n))
                    assert ratio <= math.exp(eps * d) * (1 + 1e-9)
                    if d == 1:
                        worst = max(worst, ratio)
            assert worst == pytest.approx(math.exp(eps), rel=0.02)


class TestPerturbPlate:
    @pytest.mark.parametrize("eps", [0.0, 0.5, 2.0, 10.0])
    def test_format_kept_and_output_differs(self, eps: float) -> None:
        rng = np.random.default_rng(3)
        for text in ("RK763AS", "7ABC123", "A1", "9"):
            for _ in range(50):
                out = perturb_plate(text, epsilon=eps, random_state=rng)
                assert out != text
                assert plate_format(out) == plate_format(text)

    def test_without_redraw_unchanged_rate_is_q(self) -> None:
        rng = np.random.default_rng(11)
        q = plate_unchanged_probability("AB12", epsilon=2.0)
        assert q == pytest.approx(
            unchanged_probability(2.0, 26) ** 2 * unchanged_probability(2.0, 10) ** 2
        )
        same = np.mean(
            [
                perturb_plate("AB12", epsilon=2.0, redraw=False, random_state=rng) == "AB12"
                for _ in range(4000)
            ]
        )
        assert same == pytest.approx(q, abs=4.5 * math.sqrt(q * (1 - q) / 4000))

    def test_epsilon_zero_is_uniform(self) -> None:
        rng = np.random.default_rng(5)
        draws = 6000
        out = [perturb_plate("A0", epsilon=0.0, random_state=rng) for _ in range(draws)]
        letters = np.bincount([ord(o[0]) - 65 for o in out], minlength=26) / draws
        digits = np.bincount([int(o[1]) for o in out], minlength=10) / draws
        # Re-drawn only when both characters are unchanged (1/260): nearly uniform.
        for freq, n in ((letters, 26), (digits, 10)):
            tol = 4.5 * np.sqrt((1 / n) * (1 - 1 / n) / draws)
            assert np.all(np.abs(freq - 1 / n) <= tol)
        assert "A0" not in out

    def test_seed_reproduces_and_default_is_secure(self) -> None:
        a = perturb_plate("RK763AS", epsilon=0.5, random_state=np.random.default_rng(1))
        b = perturb_plate("RK763AS", epsilon=0.5, random_state=np.random.default_rng(1))
        assert a == b
        # CSPRNG by default: 20 uniform 7-character plates are all distinct.
        assert len({perturb_plate("RK763AS", epsilon=0.0) for _ in range(20)}) == 20

    @pytest.mark.parametrize("eps", [-0.1, math.inf, math.nan, 10.5, True, "1"])
    def test_rejects_bad_epsilon(self, eps: object) -> None:
        with pytest.raises(PrivacyParameterError, match="epsilon"):
            perturb_plate("AB12", epsilon=eps)  # type: ignore[arg-type]

    def test_rejects_empty(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            perturb_plate("", epsilon=1.0)
