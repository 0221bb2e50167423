"""Differentially private licence-plate text: per-character codes, Laplace noise, cyclic wrap.

After the plate mechanism of the DP street-view framework (plate codes, Laplace noise
with sensitivity 1, cyclic shift), restricted to Latin plates.

Codes and classes
-----------------
Every character of the plate is mapped to an integer code; digits and letters have
their own ranges (the *classes*):

========  =========  =========  ==============
class     symbols    codes      class size n
========  =========  =========  ==============
digit     ``0-9``    0 .. 9     10
letter    ``A-Z``    10 .. 35   26
========  =========  =========  ==============

The *format* of a plate is its sequence of classes (``"RK763AS"`` -> ``LLDDDLL``).

Mechanism
---------
For each character with code ``c`` in a class of size ``n`` starting at ``o``:
``c' = o + (c - o + round(Z)) mod n`` with ``Z ~ Laplace(0, 1/ε)``
(sensitivity Δf = 1, scale ``1/ε``), i.e. the code is noised, rounded to the nearest
integer and wrapped cyclically inside its own class, so letters stay letters and
digits stay digits.  Characters are noised independently.

Guarantee (per character)
-------------------------
Let ``d(c, c')`` be the *cyclic* distance of two codes of the same class,
``min(|c - c'|, n - |c - c'|)`` (so at most 5 for digits and 13 for letters).  For
every output symbol ``y`` and every two symbols ``c, c'`` of the same class::

    P[M(c) = y] ≤ exp(ε · d(c, c')) · P[M(c') = y]

This is ε·d metric privacy (d-privacy, Chatzikokolakis et al. 2013) on the code
distance: the Laplace mechanism gives ``exp(ε·|c - c'|)`` on the line; rounding and
wrapping only use the noisy value (post-processing), and since ``c`` and ``c + n``
give the same wrapped output the linear distance can be replaced by the distance to
the nearest representative, i.e. the cyclic one.  Two digits are thus at most
``5ε`` apart, two letters at most ``13ε``.

Guarantee (per plate)
---------------------
For two plates ``x, x'`` of the *same format* and ``k`` characters, by independence::

    P[M(x) = y] ≤ exp(ε · Σᵢ d(xᵢ, x'ᵢ)) · P[M(x') = y]

i.e. ε·d₁ privacy for the L1 (sum of cyclic distances) metric on code vectors.  The
worst case over same-format plates is ``ε · (5 · digits + 13 · letters)``: plates
that differ in one character by one step are hard to tell apart; plates that differ
everywhere are not (at ε = 0.5 a 7-character ``LLDDDLL`` plate has a worst-case bound
of ``0.5 · (4·13 + 3·5) = 33.5``).  This is *not* ε-differential privacy over all
plates.

Not protected: the format (which positions are letters and which are digits), the
length, the layout (character positions, spacing, the plate's shape and colours are
reused by the renderer), characters the reader missed or added, anything outside the
recognised text (state names, stickers, the car).  OCR errors are passed through: the
mechanism protects the text as *read*.

Re-drawing when the output equals the input
-------------------------------------------
A protected plate that reads exactly like the original would be no protection at all,
so by default (``redraw=True``) the whole plate is drawn again until it differs from
the input in at least one character.  This conditions the output on ``y ≠ x`` and
changes the guarantee slightly.  Let ``q`` be the probability that the plain
mechanism returns the input unchanged; it only depends on the format and ε
(``q = Πᵢ p₀(nᵢ)``, see :func:`unchanged_probability`), so for two plates of the same
format the normalising factors ``1/(1 - q)`` cancel and, for every output ``y``
other than ``x`` and ``x'``, the bound above holds exactly.  The output, however,
reveals that the plate is *not* ``y``: ``P[M'(x') = x'] = 0`` while
``P[M'(x) = x'] > 0``.  For sets of outputs ``S`` this gives

    P[M'(x) ∈ S] ≤ exp(ε·d(x, x')) · P[M'(x') ∈ S] + δ,   δ = exp(ε·d(x, x')) · q / (1 - q)

and the re-drawn output is within total-variation distance ``q`` of the plain
mechanism.  ``p₀`` is 0.221 (letters) to 0.225 (digits) at ε = 0.5 and 0.393 at
ε = 1, so at ε = 0.5 ``q`` is about 2.7e-5 for 7 characters, 1.2e-4 for 6 and 5.5e-4
for 5; at ε = 1 it is 1.5e-3 for 7 characters.  ``redraw=False`` gives the plain
mechanism (and sometimes the input plate back).

ε = 0
-----
``epsilon=0`` draws every character uniformly from its class: a uniformly random
plate of the same format (with re-draw: uniform over the same-format plates other
than the input).  Apart from the format (and the exclusion of the input with
re-draw), the output carries no information about the plate.

Noise comes from the operating system's CSPRNG unless a seed or a NumPy Generator
is given (tests only, no privacy).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from pixveil.errors import PrivacyParameterError
from pixveil.privacy.laplace import LaplaceMechanism
from pixveil.privacy.rng import NoiseSource, RandomState, noise_source

__all__ = [
    "DIGITS",
    "LETTERS",
    "MAX_EPSILON",
    "check_plate_epsilon",
    "cyclic_distance",
    "decode",
    "encode",
    "levenshtein",
    "perturb_plate",
    "plate_distance",
    "plate_format",
    "plate_unchanged_probability",
    "shift_pmf",
    "unchanged_probability",
]

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SYMBOLS = DIGITS + LETTERS
_CODE = {c: i for i, c in enumerate(_SYMBOLS)}
#: Largest accepted ε.  Above it a character almost never changes (P ≈ e^-ε/2), so
#: the output would mostly come from the re-draw and hardly be private at all.
MAX_EPSILON = 10.0


def check_plate_epsilon(epsilon: object) -> float:
    """Validate ε for plate codes: a real number in ``[0, MAX_EPSILON]`` (0 = uniform).

    Raises
    ------
    PrivacyParameterError
        For anything else (``inf`` included: it would return the plate unchanged).
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise PrivacyParameterError(
            f"epsilon must be a real number in [0, {MAX_EPSILON}], got {epsilon!r}"
        )
    value = float(epsilon)
    if not (math.isfinite(value) and 0.0 <= value <= MAX_EPSILON):
        raise PrivacyParameterError(
            f"epsilon must be in [0, {MAX_EPSILON}] for plate text (0 = uniformly random "
            f"plate of the same format, smaller is more private), got {epsilon!r}"
        )
    return value


def encode(text: str) -> np.ndarray:
    """Codes of a plate text: digits 0-9, letters 10-35.

    Parameters
    ----------
    text : str
        Upper-case ``A-Z`` and ``0-9`` only (separators removed).

    Returns
    -------
    ndarray of shape (len(text),), int64

    Raises
    ------
    ValueError
        For any other character.
    """
    bad = sorted({c for c in text if c not in _CODE})
    if bad:
        raise ValueError(f"plate text may only hold A-Z and 0-9, got {''.join(bad)!r} in {text!r}")
    return np.array([_CODE[c] for c in text], dtype=np.int64)


def decode(codes: np.ndarray) -> str:
    """Inverse of :func:`encode`."""
    arr = np.asarray(codes, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= len(_SYMBOLS)):
        raise ValueError(f"codes must lie in [0, {len(_SYMBOLS) - 1}]")
    return "".join(_SYMBOLS[int(c)] for c in arr)


def _classes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per character: the first code of its class and the class size."""
    is_letter = codes >= len(DIGITS)
    offset = np.where(is_letter, len(DIGITS), 0).astype(np.int64)
    size = np.where(is_letter, len(LETTERS), len(DIGITS)).astype(np.int64)
    return offset, size


def levenshtein(a: str, b: str) -> int:
    """Edit distance: fewest single-character insertions, deletions and substitutions.

    Parameters
    ----------
    a, b : str

    Returns
    -------
    int
        In ``[abs(len(a) - len(b)), max(len(a), len(b))]``; 0 iff ``a == b``.
    """
    if not isinstance(a, str) or not isinstance(b, str):
        raise TypeError(f"levenshtein compares two str, got {type(a).__name__}, {type(b).__name__}")
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ca != cb),  # substitution
                )
            )
        previous = current
    return previous[-1]


def plate_format(text: str) -> str:
    """The class sequence of a plate: ``"RK763AS"`` -> ``"LLDDDLL"``."""
    return "".join("L" if c >= len(DIGITS) else "D" for c in encode(text))


def cyclic_distance(a: str, b: str) -> np.ndarray:
    """Per-character cyclic code distance of two plates of the same format.

    Raises
    ------
    ValueError
        When the formats differ (the mechanism never maps one format to another).
    """
    ca, cb = encode(a), encode(b)
    if plate_format(a) != plate_format(b):
        raise ValueError(f"plates {a!r} and {b!r} have different formats")
    _, size = _classes(ca)
    diff = np.abs(ca - cb)
    return np.minimum(diff, size - diff)


def plate_distance(a: str, b: str) -> int:
    """The plate-level metric ``Σᵢ d(aᵢ, bᵢ)`` (sum of cyclic code distances)."""
    return int(cyclic_distance(a, b).sum())


def shift_pmf(epsilon: float, n: int) -> np.ndarray:
    """Distribution of the cyclic shift ``round(Z) mod n`` added to one code.

    Parameters
    ----------
    epsilon : float
        In ``[0, MAX_EPSILON]``; 0 gives the uniform distribution.
    n : int
        Class size (10 or 26).

    Returns
    -------
    ndarray of shape (n,), float64
        ``pmf[r] = P[round(Z) ≡ r (mod n)]`` for ``Z ~ Laplace(0, 1/ε)``, from the
        closed form ``P[round(Z) = m] = 1 - e^{-ε/2}`` (m = 0) and
        ``sinh(ε/2) · e^{-ε|m|}`` (m ≠ 0), summed over each residue class.
    """
    eps = check_plate_epsilon(epsilon)
    if eps == 0.0:
        return np.full(n, 1.0 / n)
    r = np.arange(n, dtype=np.float64)
    tail = 1.0 / (-math.expm1(-eps * n))  # 1 / (1 - e^{-εn})
    sh = math.sinh(eps / 2)
    pmf = sh * (np.exp(-eps * r) + np.exp(-eps * (n - r))) * tail
    pmf[0] = -math.expm1(-eps / 2) + 2 * sh * math.exp(-eps * n) * tail
    return pmf


def unchanged_probability(epsilon: float, n: int) -> float:
    """``p₀(n)``: probability that one character of a class of size ``n`` is unchanged."""
    return float(shift_pmf(epsilon, n)[0])


def plate_unchanged_probability(text: str, *, epsilon: float) -> float:
    """``q``: probability that the plain mechanism returns ``text`` unchanged."""
    _, size = _classes(encode(text))
    return float(np.prod([unchanged_probability(epsilon, int(n)) for n in size]))


def _shifts(epsilon: float, size: np.ndarray, rows: int, source: NoiseSource) -> np.ndarray:
    """``rows`` independent draws of the per-character cyclic shifts, shape (rows, k)."""
    shape = (rows, len(size))
    if epsilon == 0.0:
        # floor(U · n) with U on a 2**-52 grid: uniform up to a bias below 2**-46.
        u = source.open_uniform(shape)
        return np.floor(u * size[None, :]).astype(np.int64)
    mech = LaplaceMechanism(epsilon=epsilon, sensitivity=1.0, random_state=source)
    noise = mech.randomise(np.zeros(shape))
    return np.floor(noise + 0.5).astype(np.int64) % size[None, :]


def perturb_plate(
    text: str,
    *,
    epsilon: float,
    redraw: bool = True,
    random_state: RandomState = None,
) -> str:
    """A differentially private synthetic plate of the same format as ``text``.

    Parameters
    ----------
    text : str
        The plate as read, ``A-Z`` and ``0-9`` only, at least one character.
    epsilon : float
        Per-unit-of-code-distance budget in ``[0, 10]``; see the module notes for the
        exact guarantee.  0 gives a uniformly random plate of the same format.
    redraw : bool
        Draw again until the output differs from ``text`` (default; see the module
        notes for what it costs).
    random_state : None, int, numpy.random.Generator or NoiseSource
        None (default): cryptographically secure noise.  Seeds are for tests only.

    Returns
    -------
    str
        Same length and format: letters stay letters, digits stay digits.

    Raises
    ------
    PrivacyParameterError
        For ε out of range.
    ValueError
        For an empty text or characters outside ``A-Z 0-9``.
    """
    eps = check_plate_epsilon(epsilon)
    codes = encode(text)
    if codes.size == 0:
        raise ValueError("plate text is empty")
    offset, size = _classes(codes)
    source = noise_source(random_state)
    if redraw:
        q = plate_unchanged_probability(text, epsilon=eps)
        rows = int(min(1 << 16, max(1, math.ceil(4.0 / max(1.0 - q, 1e-12)))))
    else:
        rows = 1
    while True:
        shifts = _shifts(eps, size, rows, source)
        changed = np.flatnonzero(shifts.any(axis=1))
        if not redraw:
            pick = shifts[0]
        elif changed.size:
            pick = shifts[changed[0]]
        else:
            continue
        return decode(offset + (codes - offset + pick) % size)
