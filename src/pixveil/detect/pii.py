"""Patterns of personal data in OCR readings (the rules behind the ``text-pii`` target).

A :class:`PiiPattern` is a named regular expression, with an optional minimum count
of digits and an optional *reject* expression for look-alikes (a date is not an ID
number).  :func:`find_pii` runs a set of patterns over one OCR reading and returns
the matches.

OCR readings are noisy, so matching is made tolerant in two ways:

* **Normalisation** (:func:`normalise`), applied to every reading: Unicode NFKC
  (full-width ``＠`` and digits become ASCII), and the usual renderings of an at
  sign, ``(a)``, ``[a]``, ``(at)``, ``[at]``, ``{at}``, ``©`` and ``®``, become ``@``.
* **Digit repair** (:func:`repair_digits`), for the patterns marked ``numeric``: in
  every token made of digits, separators and digit look-alikes that holds at least
  two digits and at least twice as many digits as look-alikes, ``O o Q D`` become
  ``0``, ``I l i | !`` become ``1``, ``S`` ``5``, ``B`` ``8`` and ``Z`` ``2``
  (``555-I23-4S67`` -> ``555-123-4567``).  The repair keeps the length of the text,
  so match positions refer to the normalised reading in both cases.

The patterns also allow what OCR does to spacing: the recogniser often drops spaces
(``Tel+493012345678``, ``IBANDE8937040044...``) and sometimes adds them, so no
pattern relies on word boundaries between letters and digits, and digit groups may
be separated by one space, dot, dash or slash, or by nothing.

The built-in patterns (``BUILTIN_PATTERNS``; :func:`describe_patterns` lists them
with their expressions) are, in priority order (the first one that matches names a
match that several patterns find):

``email``
    ``local@domain.tld`` (single spaces allowed around ``@`` and dots, and one
    inside the first domain label: ``fi rma.de``).
``iban``
    Two letters, two check digits, up to two groups of 4 letters or digits (the
    bank code of GB or NL IBANs), then 2 to 7 groups of 4 digits (no checksum: an
    OCR error must not hide an IBAN).
``phone``
    International (``+`` or ``00`` and a country code), national with a trunk
    ``0`` (``030 123 45 67``), North-American (``(555) 123-4567``), or any number
    after a keyword (``tel``, ``phone``, ``mobile``, ``fax``, ``call``...); 7 to 15
    digits.
``birth-date``
    A date after a birth keyword (``DOB``, ``born`` and its misreading ``bom``,
    ``date of birth``, ``geb.``, ``né le``...).
``id-number``
    A run of 8 or more digits, optionally separated by single spaces, dots, dashes
    or slashes (card, account, passport, social-security and customer numbers);
    plain dates (``12.03.1985``) and amounts with thousands separators
    (``12.345.678``) are rejected.
``plate``
    Plate-like strings: 5 to 8 letters and digits mixing both, in the shapes of
    European, British and US plates (``B-MW 1234``, ``AB-123-CD``, ``AB12 CDE``,
    ``7ABC123``), with at least 60 % of the letters upper case unless the string
    starts with a digit (the recogniser reads ``ZUI`` as ``ZUl``); a ``0`` is
    accepted among the letters (``G-0Y 1448``).  Standard and disease codes
    (``ISO 9001``, ``IEC 62443``, ``DIN 5008``, ``COVID-19``) are rejected; other
    upper-case product codes (``XR 2000``) still match.

``date`` (any calendar date with a four-digit year) is built in but off by
default: documents are full of dates that identify nobody.  Turn it on, or add your
own patterns, with :func:`parse_pattern_spec` (``--pii-pattern date``,
``--pii-pattern "staff-id=EMP-?\\d{5}"``).  Extra patterns are matched
case-insensitively against the normalised reading and against its digit-repaired
form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "BUILTIN_PATTERNS",
    "DEFAULT_PATTERN_NAMES",
    "OPTIONAL_PATTERNS",
    "PiiMatch",
    "PiiPattern",
    "describe_patterns",
    "find_pii",
    "normalise",
    "parse_pattern_spec",
    "repair_digits",
    "resolve_patterns",
]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class PiiPattern:
    """One named kind of personal data.

    Parameters
    ----------
    name : str
        Lower-case identifier (letters, digits, ``-`` and ``_``; at most 32
        characters); it prefixes the region's label (``"phone: ..."``).
    regex : str
        The expression, searched (not anchored) in the normalised reading.
    description : str
        One line for the documentation.
    min_digits, max_digits : int
        A match must contain this many ASCII digits (``max_digits=0``: no upper bound).
    min_letters : int
        A match must contain at least this many letters.
    min_alnum, max_alnum : int
        Bounds on the number of letters and digits together (``max_alnum=0``: none).
    min_upper : float
        Smallest share of the letters that must be upper case, in ``[0, 1]``;
        matches that start with a digit are exempt (``8Owi514``: the recogniser
        often gets the case of plate letters wrong, and prose rarely looks like that).
    reject : str, optional
        A match that this expression matches in full is dropped (look-alikes).
    case_sensitive : bool
        Match case-sensitively (default: case-insensitively).
    numeric : bool
        Also match against the digit-repaired reading (see :func:`repair_digits`).

    Raises
    ------
    ValueError
        When the name is not a valid identifier or an expression does not compile.
    """

    name: str
    regex: str
    description: str = ""
    min_digits: int = 0
    max_digits: int = 0
    min_letters: int = 0
    min_alnum: int = 0
    max_alnum: int = 0
    min_upper: float = 0.0
    reject: str | None = None
    case_sensitive: bool = False
    numeric: bool = True
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _reject: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"pattern name must be lower-case letters, digits, '-' or '_' "
                f"(starting with a letter, at most 32 characters), got {self.name!r}"
            )
        flags = 0 if self.case_sensitive else re.IGNORECASE
        try:
            compiled = re.compile(self.regex, flags)
            rejected = None if self.reject is None else re.compile(self.reject, flags)
        except re.error as exc:
            raise ValueError(f"pattern {self.name!r}: invalid regular expression ({exc})") from None
        if compiled.match(""):
            raise ValueError(f"pattern {self.name!r}: the expression matches the empty string")
        bounds = (
            self.min_digits,
            self.max_digits,
            self.min_letters,
            self.min_alnum,
            self.max_alnum,
        )
        if any(not isinstance(b, int) or b < 0 for b in bounds):
            raise ValueError(f"pattern {self.name!r}: character bounds must be integers >= 0")
        if not 0.0 <= self.min_upper <= 1.0:
            raise ValueError(f"pattern {self.name!r}: min_upper must be in [0, 1]")
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_reject", rejected)

    def finditer(self, text: str) -> Iterable[tuple[int, int]]:
        """``(start, end)`` of every accepted match in ``text`` (already normalised).

        A match the digit, letter or reject rules refuse does not hide a shorter one
        inside it: the search starts again one character after its start.
        """
        pos = 0
        while pos < len(text):
            m = self._compiled.search(text, pos)
            if m is None:
                return
            start, end = m.span()
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start < end and self._accepts(text[start:end]):
                yield start, end
                pos = max(m.end(), m.start() + 1)
            else:
                pos = m.start() + 1

    def _accepts(self, s: str) -> bool:
        digits = sum(c.isdigit() for c in s)
        letters = sum(c.isalpha() for c in s)
        if digits < self.min_digits or (self.max_digits and digits > self.max_digits):
            return False
        if letters < self.min_letters or digits + letters < self.min_alnum:
            return False
        if self.max_alnum and digits + letters > self.max_alnum:
            return False
        if self.min_upper and letters and not s[0].isdigit():
            upper = sum(c.isupper() for c in s)
            if upper < self.min_upper * letters:
                return False
        return not (self._reject is not None and self._reject.fullmatch(s.strip(" .-/")))


@dataclass(frozen=True)
class PiiMatch:
    """A match of a pattern in a normalised reading: ``text[start:end]``."""

    pattern: str
    start: int
    end: int
    text: str


# ------------------------------------------------------------------- normalisation

_AT = re.compile(r"\(a\)|\[a\]|\{a\}|\((?:at)\)|\[(?:at)\]|\{(?:at)\}|[©®]", re.IGNORECASE)
_LOOKALIKE = {
    "O": "0",
    "o": "0",
    "Q": "0",
    "D": "0",
    "I": "1",
    "l": "1",
    "i": "1",
    "|": "1",
    "!": "1",
    "S": "5",
    "B": "8",
    "Z": "2",
}
_NUMERIC_TOKEN = re.compile(r"[0-9OoQDIli|!SBZ][0-9OoQDIli|!SBZ.\-/]*")


def normalise(text: str) -> str:
    """NFKC, at-sign renderings -> ``@``, whitespace runs -> one space."""
    t = unicodedata.normalize("NFKC", text)
    t = _AT.sub("@", t)
    return re.sub(r"\s+", " ", t)


def repair_digits(text: str) -> str:
    """Digit look-alikes inside numeric tokens replaced by digits (same length).

    A token is a run of digits, look-alikes (``O o Q D I l i | ! S B Z``) and the
    separators ``. - /``; it is repaired when it holds at least two digits and at
    least twice as many digits as look-alikes.
    """
    out = list(text)
    for m in _NUMERIC_TOKEN.finditer(text):
        tok = m.group(0)
        digits = sum(c.isdigit() for c in tok)
        looks = sum(c in _LOOKALIKE for c in tok)
        if looks and digits >= 2 and digits >= 2 * looks:
            for k, c in enumerate(tok, start=m.start()):
                out[k] = _LOOKALIKE.get(c, c)
    return "".join(out)


# ------------------------------------------------------------------------ patterns

_SEP = r"[ .\-/]?"
_DATE = (
    r"(?:\d{1,2}[./\-] ?\d{1,2}[./\-] ?(?:19|20)?\d{2}"
    r"|(?:19|20)\d{2}[./\-]\d{1,2}[./\-]\d{1,2}"
    r"|\d{1,2}\.? ?(?:jan|feb|m[aä]r|apr|ma[iy]|jun|jul|aug|sep|o[ck]t|nov|de[cz])[a-z]*\.?,? ?"
    r"(?:19|20)\d{2})"
)

BUILTIN_PATTERNS: tuple[PiiPattern, ...] = (
    PiiPattern(
        "email",
        r"[a-z0-9._%+\-]+ ?@ ?[a-z0-9\-]+(?: ?[a-z0-9\-]+)?(?: ?\. ?[a-z0-9\-]+)+",
        "an e-mail address, local@domain.tld",
        numeric=False,
    ),
    PiiPattern(
        "iban",
        r"[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){0,2}(?: ?\d{4}){2,7}(?: ?\d{1,3})?",
        "an IBAN: country code, check digits, up to 2 groups of 4 letters or digits "
        "(bank code), then 2-7 groups of 4 digits (no checksum)",
        min_digits=8,
    ),
    PiiPattern(
        "phone",
        r"(?:\+|(?<!\d)00) ?[1-9][\d ().\-/]{5,20}\d"
        r"|\(?(?<!\d)0[1-9][\d ().\-/]{5,16}\d"
        r"|(?<!\d)\(?[2-9]\d{2}\)?[ .\-]?\d{3}[ .\-]\d{4}(?!\d)"
        r"|(?:tel|phone|mobile|mobil|mob|cell|fax|call|ph|whatsapp|telefon)[.:]?[ :]{0,3}"
        r"(?:no\.? ?|nr\.? ?)?[+(]?\d[\d ().\-/]{4,20}\d",
        "a phone number (international, national, North-American, or after a keyword)",
        min_digits=7,
        max_digits=16,
        reject=_DATE,
    ),
    PiiPattern(
        "birth-date",
        r"(?:d\.? ?o\.? ?b|b[o0]r?[nm]{1,2}|birth ?(?:day|date)?|date of birth|geb(?:oren|urtsdatum|\.)"
        r"|n[ée]e? le|fecha de nacimiento)[^0-9]{0,12}" + _DATE,
        "a date after a birth keyword (DOB, born, date of birth, geb., ne le...)",
    ),
    PiiPattern(
        "id-number",
        r"(?<!\d)\d(?:" + _SEP + r"\d){7,}(?!\d)",
        "8 or more digits, optionally separated by single spaces, dots, dashes or slashes",
        reject=_DATE + r"|\d{1,3}(?:[.,]\d{3})+|\d+[.,]\d{2}",
    ),
    PiiPattern(
        "plate",
        r"(?-i:(?<![A-Z0-9]))(?:[A-Z][A-Z0]{0,2}[ \-]?[A-Z0]{0,3}[ \-]?\d{1,4}[ \-]?[A-Z]{0,3}?"
        r"|\d{1,3}[ \-]?[A-Z]{2,3}[ \-]?\d{1,4})(?-i:(?![A-Z0-9]))",
        "a plate-like string: 5-8 letters and digits mixing both, letters mostly upper case",
        min_digits=1,
        min_letters=1,
        min_alnum=5,
        max_alnum=8,
        min_upper=0.6,
        numeric=False,
        # standard and disease codes: "ISO 9001", "IEC 62443", "DIN 5008", "COVID-19"
        # (with the end of a word before them that the case-insensitive search took in)
        reject=r"(?:[A-Za-z]{1,3} )?(?:ISO|IEC|DIN|COVID|SARS|MERS)[ \-]?\d{1,5}(?:[ \-]\d{1,4})?",
    ),
)

OPTIONAL_PATTERNS: tuple[PiiPattern, ...] = (
    PiiPattern(
        "date",
        r"(?<!\d)" + _DATE + r"(?!\d)",
        "any calendar date (d.m.y, y-m-d, d/m/y, '3 March 1985')",
    ),
)

#: Names of the patterns a ``text-pii`` detector uses when none are added.
DEFAULT_PATTERN_NAMES: tuple[str, ...] = tuple(p.name for p in BUILTIN_PATTERNS)


def parse_pattern_spec(spec: str) -> PiiPattern | str:
    """``"NAME=REGEX"`` -> a new :class:`PiiPattern`; ``"NAME"`` -> an optional built-in's name.

    Raises
    ------
    ValueError
        When the name is malformed, clashes with a built-in pattern, names no optional
        built-in pattern, or the expression does not compile.
    """
    if not isinstance(spec, str):
        raise ValueError(f"a PII pattern must be a string NAME=REGEX, got {spec!r}")
    builtin = {p.name for p in BUILTIN_PATTERNS}
    optional = {p.name for p in OPTIONAL_PATTERNS}
    if "=" not in spec:
        name = spec.strip().lower()
        if name in optional:
            return name
        if name in builtin:
            raise ValueError(f"PII pattern {name!r} is already on by default")
        raise ValueError(
            f"PII pattern {spec!r}: expected NAME=REGEX, or one of the optional built-in "
            f"patterns: {', '.join(sorted(optional))}"
        )
    name, regex = spec.split("=", 1)
    name = name.strip().lower()
    if name in builtin or name in optional:
        raise ValueError(f"PII pattern name {name!r} is built in; choose another name")
    if not regex:
        raise ValueError(f"PII pattern {name!r}: the regular expression is empty")
    return PiiPattern(name, regex, f"user pattern {regex}")


def resolve_patterns(extra: Sequence[str] = ()) -> tuple[PiiPattern, ...]:
    """The built-in patterns plus those named or defined in ``extra`` (see :func:`parse_pattern_spec`).

    Raises
    ------
    ValueError
        On a malformed spec or a name given twice.
    """
    out = list(BUILTIN_PATTERNS)
    optional = {p.name: p for p in OPTIONAL_PATTERNS}
    for spec in extra:
        parsed = parse_pattern_spec(spec)
        pat = optional[parsed] if isinstance(parsed, str) else parsed
        if any(p.name == pat.name for p in out):
            raise ValueError(f"PII pattern {pat.name!r} is given twice")
        out.append(pat)
    return tuple(out)


def find_pii(text: str, patterns: Sequence[PiiPattern] = BUILTIN_PATTERNS) -> list[PiiMatch]:
    """Every match of ``patterns`` in one OCR reading.

    Parameters
    ----------
    text : str
        The raw reading; it is normalised here (:func:`normalise`).
    patterns : sequence of PiiPattern
        In priority order: where matches of several patterns overlap, all are
        returned, the earlier pattern's first.

    Returns
    -------
    list of PiiMatch
        Positions refer to ``normalise(text)``; ``text`` of a match is taken from
        the digit-repaired reading when that is where it matched.
    """
    norm = normalise(text)
    repaired = repair_digits(norm)
    variants = [norm] if repaired == norm else [norm, repaired]
    out: list[PiiMatch] = []
    seen: set[tuple[str, int, int]] = set()
    for pat in patterns:
        for variant in variants if pat.numeric else [norm]:
            for s, e in pat.finditer(variant):
                key = (pat.name, s, e)
                if key not in seen:
                    seen.add(key)
                    out.append(PiiMatch(pat.name, s, e, variant[s:e]))
    return out


def describe_patterns(patterns: Sequence[PiiPattern] = BUILTIN_PATTERNS) -> str:
    """A Markdown table of the patterns: name, what, expression, extra conditions."""
    rows = ["| name | what | expression | conditions |", "|---|---|---|---|"]
    for p in patterns:
        cond = []
        if p.min_digits or p.max_digits:
            cond.append(
                f"{p.min_digits}-{p.max_digits} digits"
                if p.max_digits
                else f">= {p.min_digits} digits"
            )
        if p.min_letters:
            cond.append(f">= {p.min_letters} letter")
        if p.min_alnum or p.max_alnum:
            cond.append(f"{p.min_alnum}-{p.max_alnum} letters and digits")
        if p.min_upper:
            cond.append(f">= {p.min_upper:.0%} of letters upper case")
        if p.reject:
            cond.append("refused when all of it matches `" + p.reject.replace("|", "\\|") + "`")
        if not p.case_sensitive:
            cond.append("any case")
        if p.numeric:
            cond.append("also on the digit-repaired reading")
        regex = p.regex.replace("|", "\\|")
        rows.append(f"| `{p.name}` | {p.description} | `{regex}` | {'; '.join(cond)} |")
    return "\n".join(rows)
