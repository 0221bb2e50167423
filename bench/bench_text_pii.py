"""Text-PII detection: recall per pattern, precision and speed of the ``text-pii`` detector.

The labelled set is generated at run time (nothing is written to disk unless
``--save`` is given), deterministically from ``--seed``:

* **documents**, 1240x1754 (A4 at 150 dpi): forms (``Label:  value`` rows, the value
  in a column of its own), letters (paragraphs with the data inline) and invoices
  (address block, item table with amounts and dates, bank and contact footer);
* **screenshots**, 1280x720: chat (coloured bubbles, light or dark theme) and web
  pages (address bar, navigation, headings, a contact box, a footer).

Text is drawn with Pillow in DejaVu and Liberation fonts (sans, serif, mono) when
the system has them, else Pillow's built-in font, at 13 to 26 px; a third of the
documents are degraded like a scan (blur, noise, JPEG at quality 60).  Every PII
string (e-mail, phone, IBAN, card and ID numbers, plates, birth dates; fake values,
drawn at random in the usual national formats) is recorded with its pixel box; the
rest is distractor text without personal data (words, amounts, dates, times,
percentages, short numbers and a few upper-case codes such as ``ISO 9001``).

Scoring: a PII item is **found** when at least 80 % of its box lies inside the union
of the detected regions.  A detected region is **correct** when it covers at least
25 % of some PII box; precision = correct regions / all regions.  Times are wall
clock of ``detect`` (images are generated outside the timer).

``--photos N`` also runs the ``text`` detector on N of the street photos in
``../shared/data/plates`` (real photos with signs, badges and plates) and reports
how many text regions it finds; ``--save DIR`` writes masked outputs there to look at.

Run from the repository root::

    python bench/bench_text_pii.py                      # 60 generated images, seed 0
    python bench/bench_text_pii.py --n 20 --list-misses --list-fps
    python bench/bench_text_pii.py --photos 20 --save /tmp/text-out
"""

from __future__ import annotations

import argparse
import platform
import random
import string
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from _common import PLATES, table_head
from pixveil.io import read_image

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationMono-Regular.ttf",
    "LiberationSansNarrow-Regular.ttf",
    "LiberationSans-Bold.ttf",
)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Pii:
    kind: str
    text: str
    box: Box


@dataclass
class Sample:
    name: str
    layout: str
    image: np.ndarray
    pii: list[Pii] = field(default_factory=list)


# --------------------------------------------------------------------- fake data

FIRST = ["anna", "john", "maria", "li", "omar", "sofia", "lukas", "emma", "noah", "yuki", "ines"]
LAST = ["smith", "garcia", "mueller", "chen", "kowalski", "dubois", "rossi", "novak", "silva"]
DOMAINS = ["example.com", "mail.co.uk", "firma.de", "post.example.org", "web.fr", "uni-x.edu"]
WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "for",
    "on",
    "with",
    "as",
    "at",
    "by",
    "from",
    "this",
    "that",
    "project",
    "meeting",
    "report",
    "delivery",
    "order",
    "item",
    "service",
    "please",
    "thank",
    "you",
    "regards",
    "team",
    "update",
    "schedule",
    "budget",
    "review",
    "weekend",
    "office",
    "coffee",
    "document",
    "attached",
    "quarter",
    "results",
    "plan",
    "draft",
    "agenda",
    "notes",
    "invoice",
    "payment",
    "due",
    "total",
    "amount",
    "subtotal",
    "shipping",
    "tax",
    "quantity",
    "price",
    "product",
]


class Fake:
    """Fake personal data in common national formats (seeded)."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def email(self) -> str:
        f, last = self.r.choice(FIRST), self.r.choice(LAST)
        local = self.r.choice(
            [f"{f}.{last}", f"{f[0]}{last}", f"{f}_{last[:3]}", f"{f}{self.digits(2)}"]
        )
        return f"{local}@{self.r.choice(DOMAINS)}"

    def phone(self) -> str:
        d = self.digits
        return self.r.choice(
            [
                f"+49 30 {d(4)} {d(4)}",
                f"+44 20 {d(4)} {d(4)}",
                f"+33 {self.r.randint(1, 9)} {d(2)} {d(2)} {d(2)} {d(2)}",
                f"+1 ({self.r.randint(2, 9)}{d(2)}) {d(3)}-{d(4)}",
                f"({self.r.randint(2, 9)}{d(2)}) {d(3)}-{d(4)}",
                f"{self.r.randint(2, 9)}{d(2)}-{d(3)}-{d(4)}",
                f"{self.r.randint(2, 9)}{d(2)}.{d(3)}.{d(4)}",
                f"0{self.r.randint(1, 9)}{d(2)} {d(7)}",
                f"030 {d(3)} {d(2)} {d(2)}",
                f"0171-{d(7)}",
                f"0044 {d(4)} {d(6)}",
            ]
        )

    def iban(self) -> str:
        d = self.digits
        raw = self.r.choice(
            [
                f"DE{d(2)}{d(18)}",
                f"GB{d(2)}NWBK{d(14)}",
                f"FR{d(2)}{d(23)}",
                f"NL{d(2)}ABNA{d(10)}",
            ]
        )
        if self.r.random() < 0.7:
            return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        return raw

    def card(self) -> str:
        d = self.digits
        first = self.r.choice("3456")
        return self.r.choice(
            [
                f"{first}{d(3)} {d(4)} {d(4)} {d(4)}",
                f"{first}{d(15)}",
                f"{first}{d(3)}-{d(4)}-{d(4)}-{d(4)}",
            ]
        )

    def id_number(self) -> str:
        d = self.digits
        return self.r.choice(
            [
                f"{d(3)}-{d(2)}-{d(4)}",
                f"{d(9)}",
                f"{d(2)} {d(3)} {d(3)} {d(3)}",
                f"{d(4)}/{d(6)}",
                f"{d(11)}",
            ]
        )

    def plate(self) -> str:
        L = lambda n: "".join(self.r.choice(string.ascii_uppercase) for _ in range(n))  # noqa: E731
        d = self.digits
        return self.r.choice(
            [
                f"{L(1)}-{L(2)} {d(4)}",
                f"{L(2)}-{d(3)}-{L(2)}",
                f"{L(2)}{d(2)} {L(3)}",
                f"{self.r.randint(1, 9)}{L(3)}{d(3)}",
                f"{L(3)} {d(4)}",
            ]
        )

    def birth_date(self) -> str:
        day, month, year = self.r.randint(1, 28), self.r.randint(1, 12), self.r.randint(1940, 2005)
        return self.r.choice(
            [
                f"{day:02d}.{month:02d}.{year}",
                f"{month:02d}/{day:02d}/{year}",
                f"{year}-{month:02d}-{day:02d}",
            ]
        )

    def name(self) -> str:
        return f"{self.r.choice(FIRST).title()} {self.r.choice(LAST).title()}"

    def sentence(self, n: int) -> str:
        words = [self.r.choice(WORDS) for _ in range(n)]
        return " ".join(words).capitalize() + "."

    def distractor(self) -> str:
        """A line without personal data, some of it number-heavy on purpose."""
        r = self.r
        return r.choice(
            [
                self.sentence(r.randint(3, 9)),
                f"Total: {r.randint(1, 999)},{r.randint(0, 999):03d}.{r.randint(0, 99):02d} EUR",
                f"Invoice date: 2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                f"Meeting at {r.randint(8, 18)}:{r.choice(['00', '15', '30', '45'])}",
                f"Page {r.randint(1, 3)} of {r.randint(3, 9)}",
                f"Discount {r.randint(5, 40)} %",
                f"Qty {r.randint(1, 20)}  Price {r.randint(1, 99)}.{r.randint(0, 99):02d}",
                f"Room {r.randint(100, 599)}, floor {r.randint(1, 9)}",
                f"Version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}",
                f"Order {self.digits(6)} shipped on {r.randint(1, 28)}.{r.randint(1, 12)}.2024",
                "Certified ISO 9001" if r.random() < 0.5 else "Thank you for your business!",
            ]
        )


PII_MAKERS = {
    "email": Fake.email,
    "phone": Fake.phone,
    "iban": Fake.iban,
    "card": Fake.card,
    "id-number": Fake.id_number,
    "plate": Fake.plate,
    "birth-date": Fake.birth_date,
}
LABELS = {
    "email": ["E-mail:", "Email", "Contact:", "Mail:"],
    "phone": ["Phone:", "Tel.", "Mobile:", "Call"],
    "iban": ["IBAN:", "IBAN", "Account:"],
    "card": ["Card no.", "Card:", "Credit card"],
    "id-number": ["SSN:", "ID no.", "Customer no.", "Passport"],
    "plate": ["Vehicle:", "Plate", "Car reg."],
    "birth-date": ["Date of birth:", "DOB", "Born"],
}


# ------------------------------------------------------------------------ drawing


class Canvas:
    """A Pillow image plus the PII boxes drawn on it."""

    def __init__(self, size: tuple[int, int], bg: tuple[int, int, int]) -> None:
        self.img = Image.new("RGB", size, bg)
        self.draw = ImageDraw.Draw(self.img)
        self.pii: list[Pii] = []

    def text(
        self,
        xy: tuple[float, float],
        parts: list[tuple[str, str | None]],
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
        fill: tuple[int, int, int],
    ) -> float:
        """Draw ``parts`` (text, PII kind or None) on one line; returns the end x."""
        x, y = xy
        full = "".join(t for t, _ in parts)
        self.draw.text((x, y), full, font=font, fill=fill)
        top, bottom = self.draw.textbbox((x, y), full, font=font)[1::2]
        pos = x
        for t, kind in parts:
            w = self.draw.textlength(t, font=font)
            if kind is not None:
                lead = len(t) - len(t.lstrip())
                x0 = pos + self.draw.textlength(t[:lead], font=font)
                self.pii.append(Pii(kind, t.strip(), (x0, top, pos + w, bottom)))
            pos += w
        return pos


def fonts(
    rng: random.Random, sizes: tuple[int, int]
) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    files = [d / f for d in FONT_DIRS for f in FONT_FILES if (d / f).is_file()]
    size = rng.randint(*sizes)
    if not files or rng.random() < 0.1:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(rng.choice(files)), size)


def pii_item(fake: Fake, kinds: list[str]) -> tuple[str, str]:
    kind = fake.r.choice(kinds)
    return kind, PII_MAKERS[kind](fake)


ALL_KINDS = list(PII_MAKERS)


def make_form(fake: Fake, r: random.Random) -> Canvas:
    c = Canvas((1240, 1754), (255, 255, 255))
    title = fonts(r, (24, 30))
    c.text((80, 60), [("Registration form", None)], title, (10, 10, 10))
    font = fonts(r, (15, 22))
    y, col = 150.0, r.randint(280, 420)
    for _ in range(r.randint(12, 20)):
        if r.random() < 0.55:
            kind, value = pii_item(fake, ALL_KINDS)
            label = r.choice(LABELS[kind])
            c.text((80, y), [(label, None)], font, (60, 60, 60))
            c.text((col, y), [(value, kind)], font, (0, 0, 0))
        else:
            c.text(
                (80, y),
                [(r.choice(["Name:", "Department:", "Notes:", "City:"]), None)],
                font,
                (60, 60, 60),
            )
            value = fake.name() if r.random() < 0.3 else fake.distractor()
            c.text((col, y), [(value, None)], font, (0, 0, 0))
        y += font.size * 2.6 if hasattr(font, "size") else 44
    return c


def make_letter(fake: Fake, r: random.Random) -> Canvas:
    c = Canvas((1240, 1754), (255, 255, 255))
    font = fonts(r, (15, 22))
    step = font.size * 1.7 if hasattr(font, "size") else 30
    y = 100.0
    c.text((100, y), [(fake.name(), None)], font, (0, 0, 0))
    y += step
    c.text(
        (100, y), [(f"{r.randint(1, 99)} {r.choice(LAST).title()} Street", None)], font, (0, 0, 0)
    )
    y += step * 2
    c.text((100, y), [(f"Dear {fake.name()},", None)], font, (0, 0, 0))
    y += step * 1.5
    while y < 1550:
        if r.random() < 0.35:
            kind, value = pii_item(fake, ALL_KINDS)
            lead = {
                "email": "please write to ",
                "phone": "you can call me on ",
                "iban": "transfer it to IBAN ",
                "card": "charged to card ",
                "id-number": "my reference is ",
                "plate": "the car with plate ",
                "birth-date": "I was born on ",
            }[kind]
            parts = [(fake.sentence(r.randint(1, 3))[:-1] + ", " + lead, None), (value, kind)]
            if r.random() < 0.5:
                parts.append(
                    (" " + " ".join(r.choice(WORDS) for _ in range(r.randint(1, 4))) + ".", None)
                )
            c.text((100, y), parts, font, (0, 0, 0))
        else:
            c.text((100, y), [(fake.sentence(r.randint(6, 12)), None)], font, (0, 0, 0))
        y += step
    c.text((100, y + step), [("Kind regards,", None)], font, (0, 0, 0))
    return c


def make_invoice(fake: Fake, r: random.Random) -> Canvas:
    c = Canvas((1240, 1754), (255, 255, 255))
    big, font = fonts(r, (26, 34)), fonts(r, (14, 20))
    c.text((80, 60), [("INVOICE", None)], big, (20, 20, 90))
    y = 140.0
    c.text((80, y), [(fake.name(), None)], font, (0, 0, 0))
    c.text((760, y), [(fake.distractor(), None)], font, (0, 0, 0))
    y += 34
    c.text((80, y), [("Tel ", None), (fake.phone(), "phone")], font, (0, 0, 0))
    y += 34
    c.text((80, y), [(fake.email(), "email")], font, (0, 0, 0))
    y += 80
    c.draw.rectangle((70, y - 8, 1170, y + 30), fill=(225, 230, 240))
    for x, h in ((80, "Item"), (620, "Qty"), (760, "Price"), (960, "Amount")):
        c.text((x, y), [(h, None)], font, (0, 0, 0))
    y += 50
    for _ in range(r.randint(6, 14)):
        qty, price = r.randint(1, 20), r.randint(1, 2000) + r.randint(0, 99) / 100
        c.text(
            (80, y),
            [(" ".join(r.choice(WORDS) for _ in range(r.randint(1, 4))).title(), None)],
            font,
            (0, 0, 0),
        )
        c.text((620, y), [(str(qty), None)], font, (0, 0, 0))
        c.text((760, y), [(f"{price:,.2f}", None)], font, (0, 0, 0))
        c.text((960, y), [(f"{qty * price:,.2f}", None)], font, (0, 0, 0))
        y += 36
    y += 30
    c.text(
        (760, y),
        [(f"Total {r.randint(1000, 99999):,}.{r.randint(0, 99):02d} EUR", None)],
        font,
        (0, 0, 0),
    )
    y += 80
    c.text((80, y), [(fake.distractor(), None)], font, (0, 0, 0))
    y += 40
    c.text((80, y), [("Bank: IBAN ", None), (fake.iban(), "iban")], font, (0, 0, 0))
    y += 40
    c.text((80, y), [("Customer ID: ", None), (fake.id_number(), "id-number")], font, (0, 0, 0))
    y += 40
    if r.random() < 0.5:
        c.text((80, y), [("Paid by card ", None), (fake.card(), "card")], font, (0, 0, 0))
    else:
        c.text((80, y), [("Delivery vehicle ", None), (fake.plate(), "plate")], font, (0, 0, 0))
    return c


def make_chat(fake: Fake, r: random.Random) -> Canvas:
    dark = r.random() < 0.4
    bg = (18, 18, 22) if dark else (236, 229, 221)
    c = Canvas((1280, 720), bg)
    c.draw.rectangle((0, 0, 1280, 64), fill=(7, 94, 84) if not dark else (32, 44, 51))
    head = fonts(r, (20, 24))
    c.text((90, 18), [(fake.name(), None)], head, (255, 255, 255))
    font = fonts(r, (14, 18))
    y = 90.0
    while y < 640:
        mine = r.random() < 0.5
        if r.random() < 0.45:
            kind, value = pii_item(
                fake, ["email", "phone", "phone", "iban", "card", "plate", "id-number"]
            )
            parts = [
                (r.choice(["my number is ", "here: ", "ok, ", "send it to ", "it's "]), None),
                (value, kind),
            ]
        else:
            parts = [(fake.sentence(r.randint(2, 8)), None)]
        text = "".join(t for t, _ in parts)
        w = c.draw.textlength(text, font=font)
        x = 1280 - 60 - w - 24 if mine else 60
        fill = (
            ((0, 92, 75) if dark else (220, 248, 198))
            if mine
            else ((32, 44, 51) if dark else (255, 255, 255))
        )
        c.draw.rounded_rectangle((x - 12, y - 8, x + w + 12, y + 32), radius=10, fill=fill)
        c.text((x, y), parts, font, (233, 237, 239) if dark else (17, 27, 33))
        y += 56
    return c


def make_web(fake: Fake, r: random.Random) -> Canvas:
    c = Canvas((1280, 720), (255, 255, 255))
    c.draw.rectangle((0, 0, 1280, 40), fill=(222, 225, 230))
    small, font, big = fonts(r, (13, 15)), fonts(r, (14, 18)), fonts(r, (24, 32))
    c.text((120, 11), [(f"https://www.{r.choice(DOMAINS)}/contact", None)], small, (40, 40, 40))
    c.draw.rectangle((0, 40, 1280, 90), fill=(33, 37, 41))
    x = 60.0
    for item in ("Home", "Products", "About us", "Careers", "Contact"):
        x = c.text((x, 56), [(item, None)], font, (240, 240, 240)) + 40
    c.text((60, 120), [(fake.sentence(3)[:-1].title(), None)], big, (0, 0, 0))
    y = 180.0
    for _ in range(r.randint(4, 7)):
        if r.random() < 0.3:
            kind, value = pii_item(fake, ["email", "phone", "id-number", "plate"])
            parts = [(fake.sentence(r.randint(2, 5))[:-1] + " - ", None), (value, kind)]
        else:
            parts = [(fake.sentence(r.randint(6, 14)), None)]
        c.text((60, y), parts, font, (50, 50, 50))
        y += 34
    c.draw.rectangle((860, 170, 1220, 420), outline=(200, 200, 200), fill=(248, 248, 250))
    c.text((880, 185), [("Contact", None)], font, (0, 0, 0))
    c.text((880, 225), [(fake.name(), None)], font, (0, 0, 0))
    c.text((880, 265), [(fake.phone(), "phone")], font, (0, 0, 0))
    c.text((880, 305), [(fake.email(), "email")], font, (0, 0, 0))
    c.text((880, 345), [(fake.distractor(), None)], font, (0, 0, 0))
    c.draw.rectangle((0, 640, 1280, 720), fill=(52, 58, 64))
    c.text((60, 670), [(fake.distractor(), None)], small, (200, 200, 200))
    c.text((700, 670), [("Hotline ", None), (fake.phone(), "phone")], small, (200, 200, 200))
    return c


LAYOUTS = {
    "form": make_form,
    "letter": make_letter,
    "invoice": make_invoice,
    "chat": make_chat,
    "web": make_web,
}


def degrade(img: Image.Image, r: random.Random) -> Image.Image:
    """Blur, noise and JPEG, like a scan or a re-shared screenshot."""
    img = img.filter(ImageFilter.GaussianBlur(r.uniform(0.4, 0.9)))
    a = np.asarray(img).astype(np.int16)
    a = np.clip(a + np.random.default_rng(r.randint(0, 2**31)).integers(-12, 13, a.shape), 0, 255)
    ok, buf = cv2.imencode(".jpg", a.astype(np.uint8)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return Image.fromarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def generate(n: int, seed: int) -> list[Sample]:
    """``n`` labelled images, cycling through the layouts."""
    out = []
    names = list(LAYOUTS)
    for k in range(n):
        r = random.Random(seed * 100_003 + k)
        layout = names[k % len(names)]
        canvas = LAYOUTS[layout](Fake(r), r)
        img = canvas.img
        if layout in ("form", "letter", "invoice") and r.random() < 1 / 3:
            img = degrade(img, r)
            layout += "+scan"
        out.append(Sample(f"{k:03d}-{layout}", layout, np.asarray(img), canvas.pii))
    return out


# ------------------------------------------------------------------------ scoring


def covered(mask: np.ndarray, box: Box) -> float:
    x0, y0, x1, y1 = (round(v) for v in box)
    patch = mask[max(y0, 0) : y1, max(x0, 0) : x1]
    return float(patch.mean()) if patch.size else 0.0


def overlap(region: Box, box: Box) -> float:
    """Share of ``box`` inside ``region``."""
    ix = max(0.0, min(region[2], box[2]) - max(region[0], box[0]))
    iy = max(0.0, min(region[3], box[3]) - max(region[1], box[1]))
    return ix * iy / max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)


def same_line(region: Box, box: Box) -> bool:
    """Whether ``region`` sits on the same text line as ``box`` (vertical overlap >= 50 %)."""
    iy = min(region[3], box[3]) - max(region[1], box[1])
    return iy >= 0.5 * min(region[3] - region[1], box[3] - box[1])


def read_at(reader: Any, image: np.ndarray, box: Box) -> str:
    """What ``reader`` (a reading ``text`` detector) read in the lines overlapping ``box``."""
    reads = [r.label for r in reader.detect(image) if overlap(r.box, box) > 0]
    if not reads:
        return " (no text line found there)"
    return " (read: " + " | ".join(repr(text) for text in reads) + ")"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=60, help="generated images (cycling 5 layouts)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.5, help="text-line threshold")
    ap.add_argument("--max-side", type=int, default=1920)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (0: default)")
    ap.add_argument("--photos", type=int, default=0, help="also run `text` on N street photos")
    ap.add_argument("--save", type=Path, help="write masked outputs here (outside the repo)")
    ap.add_argument("--list-misses", action="store_true")
    ap.add_argument("--list-fps", action="store_true")
    args = ap.parse_args(argv)

    from pixveil.detect.text import TextDetector, TextPiiDetector

    det = TextPiiDetector(
        threshold=args.threshold, max_side=args.max_side, threads=args.threads or None
    )
    text_only = TextDetector(max_side=args.max_side, threads=args.threads or None)
    # reads the lines where a PII item was missed, to explain the miss
    reader = TextDetector(
        threshold=args.threshold, max_side=args.max_side, read=True, threads=args.threads or None
    )
    det.detect(np.full((64, 256, 3), 255, np.uint8))  # warm-up
    text_only.detect(np.full((64, 256, 3), 255, np.uint8))
    t0 = time.perf_counter()
    samples = generate(args.n, args.seed)
    gen_s = time.perf_counter() - t0
    found: dict[str, list[bool]] = defaultdict(list)
    correct = total = beside = 0
    times: dict[str, list[float]] = defaultdict(list)
    text_times: dict[str, list[float]] = defaultdict(list)
    misses, fps = [], []
    for s in samples:
        t = time.perf_counter()
        regions = det.detect(s.image)
        times[s.layout.split("+")[0]].append(time.perf_counter() - t)
        t = time.perf_counter()
        text_only.detect(s.image)
        text_times[s.layout.split("+")[0]].append(time.perf_counter() - t)
        mask = np.zeros(s.image.shape[:2], bool)
        for reg in regions:
            x0, y0, x1, y1 = reg.pixel_box(s.image.shape[1], s.image.shape[0])
            mask[y0:y1, x0:x1] = True
        for p in s.pii:
            ok = covered(mask, p.box) >= 0.8
            found[p.kind].append(ok)
            found[s.layout.split("+")[0] + " (layout)"].append(ok)
            if not ok:
                misses.append(f"{s.name}: {p.kind} {p.text!r}{read_at(reader, s.image, p.box)}")
        for reg in regions:
            total += 1
            if any(overlap(reg.box, p.box) >= 0.25 for p in s.pii):
                correct += 1
            elif any(same_line(reg.box, p.box) for p in s.pii):
                beside += 1
                fps.append(f"{s.name}: {reg.label!r} (same line as a PII item)")
            else:
                fps.append(f"{s.name}: {reg.label!r}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            out = s.image.copy()
            out[mask] = 0
            for p in s.pii:
                x0, y0, x1, y1 = (round(v) for v in p.box)
                cv2.rectangle(out, (x0, y0), (x1, y1), (255, 0, 0), 1)
            Image.fromarray(out).save(args.save / f"{s.name}.png")

    everything = [v for k, v in found.items() if "(layout)" not in k for v in v]
    lines = table_head(["pattern / layout", "PII items", "found", "recall"])
    for k in sorted(found, key=lambda k: ("(layout)" in k, k)):
        v = found[k]
        lines.append(f"| {k} | {len(v)} | {sum(v)} | {100 * np.mean(v):.1f} % |")
    lines.append(
        f"| **all** | {len(everything)} | {sum(everything)} | **{100 * np.mean(everything):.1f} %** |"
    )
    lines.append("")
    lines.append(
        f"Precision: {correct}/{total} detected regions cover a PII item = "
        f"**{100 * correct / max(total, 1):.1f} %** ({total - correct} regions without PII, "
        f"{beside} of them on the same line as a PII item: field labels such as `Tel.` "
        "joined to their value)."
    )
    lines.append("")
    lines += table_head(
        [
            "layout", "size", "images", "`text-pii` ms / image (mean, median)",
            "`text` ms / image (mean, median)",
        ]
    )  # fmt: skip
    for k, v in times.items():
        size = "1280x720" if k in ("chat", "web") else "1240x1754"
        tt = text_times[k]
        lines.append(
            f"| {k} | {size} | {len(v)} | {1000 * np.mean(v):.0f}, {1000 * np.median(v):.0f} "
            f"| {1000 * np.mean(tt):.0f}, {1000 * np.median(tt):.0f} |"
        )
    lines.append("")
    lines.append(
        f"{len(samples)} images, seed {args.seed}, threshold {args.threshold}, "
        f"max_side {args.max_side}, threads {args.threads or 'default'}; generation "
        f"{gen_s:.1f} s; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print("\n".join(lines))
    if args.list_misses:
        print(f"\nmissed ({len(misses)}):\n" + "\n".join("  " + m for m in misses))
    if args.list_fps:
        print(f"\nregions without PII ({len(fps)}):\n" + "\n".join("  " + m for m in fps))

    if args.photos:
        if not PLATES.is_dir():
            print(f"no street photos at {PLATES}", file=sys.stderr)
            return 2
        text = TextDetector(max_side=args.max_side, threads=args.threads or None, read=True)
        text.detect(np.full((64, 256, 3), 255, np.uint8))
        paths = sorted(PLATES.glob("*/*.jpg"))
        step = max(1, len(paths) // args.photos)
        paths = paths[::step][: args.photos]
        counts, pii_counts, ptimes = [], [], []
        for p in paths:
            rgb = read_image(p).pixels
            t = time.perf_counter()
            regions = text.detect(rgb)
            ptimes.append(time.perf_counter() - t)
            pii = det.detect(rgb)
            counts.append(len(regions))
            pii_counts.append(len(pii))
            if args.save:
                out = rgb.copy()
                for reg in regions:
                    x0, y0, x1, y1 = reg.pixel_box(rgb.shape[1], rgb.shape[0])
                    cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), 2)
                for reg in pii:
                    x0, y0, x1, y1 = reg.pixel_box(rgb.shape[1], rgb.shape[0])
                    out[y0:y1, x0:x1] = 0
                Image.fromarray(out).save(args.save / f"photo-{p.parent.name}-{p.stem}.jpg")
        print(
            f"\nStreet photos ({len(paths)} of {PLATES.name}/eu,us): `text` finds "
            f"{np.mean(counts):.1f} regions per photo (median {np.median(counts):.0f}, "
            f"max {max(counts)}; {sum(c == 0 for c in counts)} photos with none) in "
            f"{1000 * np.mean(ptimes):.0f} ms per photo with reading; `text-pii` flags "
            f"{sum(pii_counts)} regions in all ({sum(c > 0 for c in pii_counts)} photos)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
