"""Print Tables 1 and 2 of the IoMT GAN + DP paper (Yu et al., Sensors 2021) from a report.

Reads the ``results.json`` written by ``pixveil evaluate`` and prints the
paper's layout — rows Dhash, SSIM (×10⁻²), L0 (×10²), L2, ALD_2 (×10⁻²);
columns Original, Blur, Mosaic, Ours — twice: Table 1 over the whole image,
Table 2 over the protected face region only (the paper's Table 2 is measured on
face crops).

Example::

    python bench/iomt_tables.py /tmp/pixveil-gan-bench/report/results.json \\
        --blur "blur strength=0.1" --mosaic "pixelate blocks=8" --ours "gan-face epsilon=0.25"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import table_head, table_row

ROWS = (
    ("Dhash (bits of 64)", "dhash", 1.0),
    ("SSIM (×10⁻²)", "ssim", 100.0),
    ("L0 (×10², pixels changed)", "l0", 0.01),
    ("L2", "l2", 1.0),
    ("ALD_2 (×10⁻²)", "ald_2", 100.0),
)


def table(rows: dict[str, dict[str, Any]], columns: dict[str, str], scope: str) -> str:
    lines = table_head(["metric", *columns])
    for label, key, scale in ROWS:
        cells = []
        for setting in columns.values():
            v = rows[setting].get(f"{scope}_{key}")
            cells.append("–" if v is None else f"{float(v) * scale:.2f}")
        lines.append(table_row([label, *cells]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("results", type=Path)
    ap.add_argument("--blur", default="blur strength=0.1")
    ap.add_argument("--mosaic", default="pixelate blocks=8")
    ap.add_argument("--ours", default="gan-face epsilon=0.25")
    args = ap.parse_args(argv)
    data = json.loads(args.results.read_text())
    rows = {r["label"]: r for r in data["rows"]}
    columns = {
        "Original": "none",
        "Blur": args.blur,
        "Mosaic": args.mosaic,
        "Ours (gan-face)": args.ours,
    }
    missing = [s for s in columns.values() if s not in rows]
    if missing:
        print(f"settings not in {args.results}: {missing}; have: {sorted(rows)}", file=sys.stderr)
        return 2
    print("Table 1 layout — whole image\n")
    print(table(rows, columns, "whole"))
    print("\nTable 2 layout — protected face region only\n")
    print(table(rows, columns, "region"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
