"""Tests of the PII patterns behind ``text-pii`` (no models: readings as OCR gives them)."""

from __future__ import annotations

import pytest

from pixveil.detect.pii import (
    BUILTIN_PATTERNS,
    DEFAULT_PATTERN_NAMES,
    PiiPattern,
    describe_patterns,
    find_pii,
    normalise,
    parse_pattern_spec,
    repair_digits,
    resolve_patterns,
)


def names(text: str) -> set[str]:
    return {m.pattern for m in find_pii(text)}


class TestNormalise:
    def test_at_sign_renderings(self) -> None:
        for raw in ("anna(a)mail.com", "anna[at]mail.com", "anna (at) mail.com", "anna©mail.com"):
            assert "@" in normalise(raw), raw

    def test_full_width_characters(self) -> None:
        assert normalise("ａｎｎａ＠ｍａｉｌ．ｃｏｍ") == "anna@mail.com"
        assert normalise("Tel   ０３０\t1234") == "Tel 030 1234"

    def test_digit_repair_in_numbers_only(self) -> None:
        assert repair_digits("Call 555-I23-4S67 today") == "Call 555-123-4567 today"
        assert repair_digits("4111 l111 1111 1O11") == "4111 1111 1111 1011"
        # Words, and tokens with too few digits, are left alone.
        assert repair_digits("BOOKS SOLD OIL") == "BOOKS SOLD OIL"
        assert repair_digits("B2B") == "B2B"

    def test_repair_keeps_length(self) -> None:
        text = "IBAN DE89 37O4 OO44 O532 O13O OO, Sl5 l!|"
        assert len(repair_digits(text)) == len(text)


class TestBuiltinPatterns:
    @pytest.mark.parametrize(
        "reading",
        [
            "Contact: john.smith@example.com",
            "maria.garcia@firma.de",
            "write to anna_b@mail.co.uk or",
            "bob(a)test.org",  # '@' read as '(a)'
            "bob @ test . org",  # spaces inserted
            "here: noah.dubois@fi rma.de",
            "E-mail:j.doe@post.example.org",  # spaces dropped
        ],
    )
    def test_email(self, reading: str) -> None:
        assert "email" in names(reading)

    @pytest.mark.parametrize(
        "reading",
        [
            "Call 555-123-4567 today",
            "(555) 123-4567",
            "555.123.4567",
            "Tel+493012345678",  # spaces dropped
            "+49 30 1234 5678",
            "+1 (212) 555-0134",
            "0044 2079 460958",
            "030 123 45 67",
            "0171-2345678",
            "Tel: 555-0134 ext",  # 7 digits after a keyword
            "phone O171 2345678",  # O read for 0
            "Call 555-I23-4S67",  # I and S read for 1 and 5
        ],
    )
    def test_phone(self, reading: str) -> None:
        assert "phone" in names(reading)

    @pytest.mark.parametrize(
        "reading",
        [
            "IBAN DE89 3704 0044 0532 0130 00",
            "IBANDE89370400440532013000",  # spaces dropped
            "GB29 NWBK 6016 1331 9268 19",
            "IBAN DE89 37O4 0044 O532 0130 00",  # O for 0
            "NL91 ABNA 0417 1643 00",
        ],
    )
    def test_iban(self, reading: str) -> None:
        assert "iban" in names(reading)

    @pytest.mark.parametrize(
        "reading",
        [
            "Card 4111 1111 1111 1111",
            "4111111111111111",
            "SSN 123-45-6789",
            "Customer no. 12 345 678 901",
            "Ref 2024/123456",
            "4111 l111 1111 1111",  # l for 1
        ],
    )
    def test_id_number(self, reading: str) -> None:
        assert "id-number" in names(reading)

    @pytest.mark.parametrize(
        "reading",
        [
            "Plate: B-MW 1234 seen",
            "AB-123-CD",
            "AB12 CDE",
            "7ABC123",
            "car KLM 4821",
            "plate ZUl 6403",  # I read as l
            "vehicle8Owi514",  # case lost, starts with a digit
            "plate G-0Y 1448",  # O read as 0
            "service -Nj71 GTP",  # J read as j
            "Plate:B-MW1234seen",  # spaces dropped
        ],
    )
    def test_plate(self, reading: str) -> None:
        assert "plate" in names(reading)

    @pytest.mark.parametrize(
        "reading",
        [
            "Date of birth: 12.03.1985",
            "DOB 1957-05-10",
            "born on 03/12/1985",
            "bormn 12.03.1985",  # misreadings of "born"
            "Bom : 07/09/1955",
        ],
    )
    def test_birth_date(self, reading: str) -> None:
        assert "birth-date" in names(reading)

    @pytest.mark.parametrize(
        "reading",
        [
            "Thank you for your business!",
            "Total: 1,234.56 EUR",
            "Total 12,345,678.00",
            "Invoice date: 2024-05-13",
            "Order 2024-05-13, qty 12 14 16",
            "shipped on 12.03.2024",
            "Meeting at 10:45",
            "Page 2 of 3",
            "Discount 25 %",
            "Room 101, floor 3",
            "Version 2.4.1",
            "Order 123456 shipped",
            "Please see the project budget review",
            "iPhone 15 Pro",
            "car 6403 is",
            "Qty 12 Price 4.50",
            "Order321997shippedon26.5.2024",
            "certified to ISO 9001",
            "IEC 62443-3 compliant",
            "letter format DIN 5008",
            "COVID-19 rules apply",
        ],
    )
    def test_distractors_do_not_match(self, reading: str) -> None:
        assert find_pii(reading) == [], reading

    def test_match_positions_refer_to_the_normalised_reading(self) -> None:
        text = "Call 555-I23-4567 now"
        (phone, *_) = [m for m in find_pii(text) if m.pattern == "phone"]
        assert normalise(text)[phone.start : phone.end] == "Call 555-I23-4567"
        assert phone.text == "Call 555-123-4567"  # the repaired reading

    def test_a_refused_match_does_not_hide_one_inside_it(self) -> None:
        # "plateZUl 6403" first matches as "ateZUl 6403" (10 characters: refused).
        assert [m.text for m in find_pii("plateZUl 6403")] == ["ZUl 6403"]

    def test_date_is_optional(self) -> None:
        assert "date" not in DEFAULT_PATTERN_NAMES
        pats = resolve_patterns(["date"])
        assert [m.pattern for m in find_pii("shipped on 12.03.2024", pats)] == ["date"]

    def test_describe_lists_every_pattern(self) -> None:
        table = describe_patterns()
        for p in BUILTIN_PATTERNS:
            assert f"`{p.name}`" in table


class TestExtension:
    def test_user_pattern(self) -> None:
        pats = resolve_patterns(["staff-id=EMP-?\\d{5}"])
        found = find_pii("badge emp-12345", pats)
        assert [m.pattern for m in found] == ["staff-id"]
        assert "staff-id" not in {m.pattern for m in find_pii("badge EMP-1234", pats)}

    def test_user_pattern_sees_repaired_digits(self) -> None:
        pats = resolve_patterns(["staff-id=EMP\\d{5}"])
        assert [m.pattern for m in find_pii("EMP12O45", pats)] == ["staff-id"]

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("bad=([", "invalid regular expression"),
            ("email=x@y", "is built in"),
            ("Bad Name=x", "pattern name"),
            ("empty=", "empty"),
            ("any=a*", "matches the empty string"),
            ("nosuch", "optional built-in"),
            ("phone", "already on by default"),
        ],
    )
    def test_bad_specs(self, spec: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            parse_pattern_spec(spec)

    def test_duplicate_names_refused(self) -> None:
        with pytest.raises(ValueError, match="given twice"):
            resolve_patterns(["x1=abc", "x1=def"])

    def test_pattern_validates_bounds(self) -> None:
        with pytest.raises(ValueError, match="bounds"):
            PiiPattern("x", "a", min_digits=-1)
