"""Evaluation reports: CSV, JSON, the resolved configuration and an HTML page.

:func:`write_report` writes, into one folder:

* ``results.csv``: one row per setting (the baseline ``none`` first), every figure;
* ``results.json``: the same figures, nested, with the notes, timings and environment;
* ``config.json``: the resolved configuration (every setting with its parameters),
  the data set summary and the environment;
* ``privacy_utility.png``: the privacy-utility plot;
* ``index.html``: a self-contained page (images embedded as base64 PNG) with the
  plot, the utility tables in the layout of Yu et al. (Sensors 2021, Tables 1
  and 2: rows are metrics, columns are methods), the privacy and attack
  tables, and example images.

Non-finite numbers are written as empty CSV cells and JSON ``null`` (strict
JSON); an infinite PSNR means "identical images".
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.errors import OutputError
from pixveil.evaluate.plots import privacy_utility_figure
from pixveil.evaluate.results import EvaluationResult, SettingResult
from pixveil.io import atomic_write_bytes

__all__ = [
    "REPORT_FILES",
    "ReportFolder",
    "csv_bytes",
    "format_value",
    "json_bytes",
    "json_ready",
    "privacy_utility_figure",
    "render_html",
    "write_report",
]

#: The files :func:`write_report` writes.
REPORT_FILES = (
    "results.csv",
    "results.json",
    "config.json",
    "privacy_utility.png",
    "index.html",
)

# (label, getter, scale, decimals): the paper's rows first, as in its Tables 1 and 2.
_Row = tuple[str, Callable[[SettingResult], Any], float, int]


def _utility_rows(region: bool) -> list[_Row]:
    def get(key: str) -> Callable[[SettingResult], Any]:
        if region:
            return lambda r: r.utility_region.get(key)
        return lambda r: r.utility.get(key)

    return [
        ("Dhash (Hamming, 64-bit)", get("dhash"), 1.0, 2),
        ("SSIM (10<sup>-2</sup>)", get("ssim"), 100.0, 2),
        ("L<sub>0</sub> (10<sup>2</sup> pixels)", get("l0"), 0.01, 2),
        ("L<sub>2</sub>", get("l2"), 1.0, 1),
        ("ALD<sub>2</sub> (10<sup>-2</sup>)", get("ald_2"), 100.0, 2),
        ("PSNR (dB)", get("psnr"), 1.0, 2),
        ("MS-SSIM", get("ms_ssim"), 1.0, 4),
        ("L<sub>0</sub> share of pixels (%)", get("l0_fraction"), 100.0, 2),
        ("ALD<sub>0</sub> (10<sup>-2</sup>)", get("ald_0"), 100.0, 2),
        ("ALD<sub>&infin;</sub> (10<sup>-2</sup>)", get("ald_inf"), 100.0, 2),
    ]


#: How many of the utility rows are the paper's (the rest are extra).
_PAPER_ROWS = 5


def _reid(key: str) -> Callable[[SettingResult], Any]:
    return lambda r: None if r.reid is None else getattr(r.reid, key)


_PRIVACY_ROWS: list[_Row] = [
    ("Rank-1 identification (%)", _reid("rank1"), 100.0, 1),
    ("&nbsp;&nbsp;chance (%)", _reid("chance_rank1"), 100.0, 1),
    ("Verification rate (%)", _reid("verification"), 100.0, 1),
    ("False accept rate (%)", _reid("false_accept"), 100.0, 2),
    ("Same-photo verification (%)", _reid("same_photo"), 100.0, 1),
    ("Face covered by protection (%)", lambda r: r.face_covered, 100.0, 1),
    ("Face still detected: pixveil (%)", lambda r: r.detection.get("pixveil"), 100.0, 1),
    ("Face still detected: dlib HOG (%)", lambda r: r.detection.get("dlib"), 100.0, 1),
    ("FID-like, MobileNetV2 (not Inception FID)", lambda r: r.fid_like, 1.0, 2),
    ("IS-like, MobileNetV2 (not Inception Score)", lambda r: r.is_like, 1.0, 2),
]


def _attack(name: str, key: str) -> Callable[[SettingResult], Any]:
    return lambda r: r.attacks.get(name, {}).get(key)


_CNN_ROWS: list[_Row] = [
    ("Top-1 accuracy (%)", _attack("cnn", "top1"), 100.0, 1),
    ("Top-5 accuracy (%)", _attack("cnn", "top5"), 100.0, 1),
    ("Chance top-1 (%)", _attack("cnn", "chance_top1"), 100.0, 1),
    ("Chance top-5 (%)", _attack("cnn", "chance_top5"), 100.0, 1),
    ("Training / test images", lambda r: _pair(r, "cnn", "n_train", "n_test"), 1.0, 0),
    ("Training time (s)", _attack("cnn", "train_seconds"), 1.0, 0),
]


def _in_context(context: str, key: str, attack: str = "cnn") -> Callable[[SettingResult], Any]:
    """``key`` of ``attack``'s figures in ``context`` (an entry without per-context
    figures, from an older report, counts as its own ``"context"``, else ``"1.2"``)."""

    def get(r: SettingResult) -> Any:
        entry = r.attacks.get(attack, {})
        by_context = entry.get("contexts") or {entry.get("context", "1.2"): entry}
        return by_context.get(context, {}).get(key)

    return get


def _reconstruction_rows(contexts: Sequence[str]) -> list[_Row]:
    """SSIM and PSNR of the reconstruction attack per context, then the rest."""
    rows: list[_Row] = []
    for c in contexts or ("1.2",):
        sees = f", sees {_context_name(c)}"
        rows += [
            (f"SSIM protected vs original{sees}", _in_context(c, "ssim_protected", _REC), 1.0, 3),
            (
                f"SSIM reconstruction vs original{sees}",
                _in_context(c, "ssim_reconstructed", _REC),
                1.0,
                3,
            ),
            (f"PSNR protected (dB){sees}", _in_context(c, "psnr_protected", _REC), 1.0, 2),
            (
                f"PSNR reconstruction (dB){sees}",
                _in_context(c, "psnr_reconstructed", _REC),
                1.0,
                2,
            ),
        ]
    rows += [
        (
            "Same-photo verification, protected (%), face box x 1.2",
            _in_context("1.2", "same_photo_protected", _REC),
            100.0,
            1,
        ),
        (
            "Same-photo verification, reconstruction (%), face box x 1.2",
            _in_context("1.2", "same_photo_reconstructed", _REC),
            100.0,
            1,
        ),
        (
            "Training / test images",
            lambda r: _pair(r, _REC, "n_train", "n_test"),
            1.0,
            0,
        ),
        ("Training time per context (s)", _attack(_REC, "train_seconds"), 1.0, 0),
    ]
    return rows


_REC = "reconstruction"


def _context_name(context: str) -> str:
    return "the whole photo" if context == "full" else f"face box x {context}"


def _informed_rows(contexts: Sequence[str]) -> list[_Row]:
    """The informed attacker's top-1 per context, then its chance (next to the naive judge)."""
    rows: list[_Row] = [
        (
            f"Informed attacker (CNN) top-1, sees {_context_name(c)} (%)",
            _in_context(c, "top1"),
            100.0,
            1,
        )
        for c in contexts
    ]
    if rows:
        rows.append(("&nbsp;&nbsp;chance (%)", _attack("cnn", "chance_top1"), 100.0, 1))
    return rows


def _pair(r: SettingResult, attack: str, a: str, b: str) -> str | None:
    entry = r.attacks.get(attack)
    if not entry:
        return None
    return f"{entry.get(a)} / {entry.get(b)}"


# --------------------------------------------------------------------------- #
# values
# --------------------------------------------------------------------------- #
def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars/arrays made plain and NaN/inf made None (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (int, str)):
        return value
    return str(value)


def format_value(value: Any, *, scale: float = 1.0, decimals: int = 3) -> str:
    """A table cell: ``"–"`` for missing or NaN, ``"∞"`` for infinity, else the scaled number."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(f):
        return "–"
    if math.isinf(f):
        return "∞" if f > 0 else "-∞"
    return f"{f * scale:,.{decimals}f}"


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return "inf" if float(value) == math.inf else ""
    return value


# --------------------------------------------------------------------------- #
# HTML
# --------------------------------------------------------------------------- #
def _img_tag(image: np.ndarray | bytes, *, alt: str, width: int | None = None) -> str:
    if isinstance(image, np.ndarray):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", optimize=True)
        data = buf.getvalue()
    else:
        data = image
    b64 = base64.b64encode(data).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}"{size}>'


def _header_rows(results: Sequence[SettingResult]) -> str:
    groups: list[tuple[str, int]] = []
    for r in results:
        s = r.setting
        if s.is_baseline:
            name = "Original"
        elif s.parameter:
            name = f"{s.method} · {s.parameter}"
        else:
            name = s.method
        if groups and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1] + 1)
        else:
            groups.append((name, 1))
    top = "".join(f'<th colspan="{n}" class="group">{html.escape(name)}</th>' for name, n in groups)
    bottom = "".join(
        f"<th>{html.escape(r.setting.value_text if r.setting.parameter else '')}</th>"
        for r in results
    )
    return f'<tr><th rowspan="2" class="metric">Metric</th>{top}</tr>\n<tr>{bottom}</tr>'


def _table(
    results: Sequence[SettingResult],
    rows: Sequence[_Row],
    *,
    caption: str,
    table_id: str,
    separator_after: int | None = None,
    skip_empty: bool = True,
) -> str:
    body = []
    for n, (label, getter, scale, decimals) in enumerate(rows):
        values = [getter(r) for r in results]
        if skip_empty and all(
            v is None or (isinstance(v, float) and math.isnan(v)) for v in values
        ):
            continue
        cls = ' class="sep"' if separator_after is not None and n == separator_after else ""
        cells = "".join(
            f"<td>{html.escape(format_value(v, scale=scale, decimals=decimals))}</td>"
            for v in values
        )
        body.append(f'<tr{cls}><th class="metric">{label}</th>{cells}</tr>')
    if not body:
        return ""
    return (
        f'<div class="scroll"><table id="{table_id}"><caption>{caption}</caption>\n'
        f"{_header_rows(results)}\n" + "\n".join(body) + "\n</table></div>"
    )


def _examples_html(result: EvaluationResult) -> str:
    if not result.examples:
        return ""
    methods: dict[str, list[SettingResult]] = {}
    for r in result.results:
        if not r.setting.is_baseline:
            methods.setdefault(r.setting.method, []).append(r)
    width = max((len(v) for v in methods.values()), default=1)
    parts = []
    for ex in result.examples:
        rows = [
            f'<tr><th class="metric">original</th><td>{_img_tag(ex.original, alt="original")}'
            f"<div>{html.escape(ex.name)}</div></td>" + "<td></td>" * (width - 1) + "</tr>"
        ]
        for method, settings in methods.items():
            cells = []
            for r in settings:
                view = ex.protected.get(r.setting.label)
                if view is None:
                    cells.append("<td>–</td>")
                    continue
                cells.append(
                    f"<td>{_img_tag(view, alt=r.setting.label)}"
                    f"<div>{html.escape(r.setting.value_label if r.setting.parameter else 'default')}"
                    "</div></td>"
                )
            cells.extend(["<td></td>"] * (width - len(settings)))
            rows.append(f'<tr><th class="metric">{html.escape(method)}</th>{"".join(cells)}</tr>')
        parts.append(
            f'<div class="scroll"><table class="grid"><caption>{html.escape(ex.name)}</caption>'
            + "".join(rows)
            + "</table></div>"
        )
    return "\n".join(parts)


def _reconstructions_html(result: EvaluationResult) -> str:
    if not result.reconstructions:
        return ""
    rows = []
    originals = result.reconstructions.get("original")
    if originals is not None:
        cells = "".join(f"<td>{_img_tag(im, alt='original')}</td>" for im in originals[0])
        rows.append(f'<tr><th class="metric">original</th>{cells}</tr>')
    for label, (protected, rebuilt) in result.reconstructions.items():
        if label == "original":
            continue
        cells = "".join(f"<td>{_img_tag(im, alt='protected')}</td>" for im in protected)
        rows.append(f'<tr><th class="metric">{html.escape(label)}<br>protected</th>{cells}</tr>')
        cells = "".join(f"<td>{_img_tag(im, alt='reconstruction')}</td>" for im in rebuilt)
        rows.append(
            f'<tr><th class="metric">{html.escape(label)}<br>reconstruction</th>{cells}</tr>'
        )
    sees = _context_name(result.config.contexts[0] if result.config.contexts else "1.2")
    return (
        '<div class="scroll"><table class="grid"><caption>Reconstruction attack on held-out '
        f"faces (the attacker sees {html.escape(sees)}): protected input and the attack's "
        "output</caption>" + "".join(rows) + "</table></div>"
    )


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px;
       color: #1d1d1f; max-width: 1800px; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { font-size: 20px; margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p, li { font-size: 14px; line-height: 1.45; }
.meta { color: #555; font-size: 13px; }
.scroll { overflow-x: auto; margin: 12px 0; }
table { border-collapse: collapse; font-size: 12px; }
caption { text-align: left; font-weight: 600; padding: 6px 0; font-size: 14px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f3f3f5; }
th.group { text-align: center; background: #e6e9f0; }
th.metric { text-align: left; }
tr.sep th, tr.sep td { border-top: 3px double #999; }
table.grid td { text-align: center; padding: 3px; font-size: 12px; }
table.grid img { display: block; margin: auto; }
img.plot { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 10px; font-size: 12px; overflow-x: auto; }
"""


def render_html(result: EvaluationResult, *, plot_png: bytes | None) -> str:
    """The report page (self-contained HTML; images embedded as base64 PNG)."""
    ds = result.dataset
    config = result.config
    env = result.environment
    results = result.results
    title = "pixveil evaluation report"
    load_start = env.get("load_average_start")
    load_end = env.get("load_average_end")
    load = ""
    if load_start and load_end:
        load = f"; load average (1 min) {load_start[0]:.1f} at start, {load_end[0]:.1f} at end"
    n_settings = sum(1 for r in results if not r.setting.is_baseline)
    cpu_seconds = result.timings.get("cpu_seconds")
    cpu = f" ({cpu_seconds:.0f} CPU seconds)" if cpu_seconds is not None else ""
    summary = (
        f"Data: <code>{html.escape(str(ds.root))}</code> ({html.escape(ds.layout)} layout): "
        f"{len(ds)} images"
        + (f" of {len(ds.identities)} identities" if ds.has_identities else "")
        + f". {n_settings} protected settings plus the unprotected baseline. "
        f"Seed {config.seed}. Run time {result.timings.get('total', 0):.0f} s{cpu} with "
        f"{env.get('workers', config.workers)} worker(s) on {env.get('cpus')} CPUs{load}."
    )
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="meta">{created} · pixveil {html.escape(str(env.get("versions", {}).get("pixveil")))}</p>',
        f"<p>{summary}</p>",
    ]
    if result.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li>{html.escape(n)}</li>" for n in result.notes)
        parts.append("</ul>")
    parts.append('<h2 id="plot">Privacy and utility</h2>')
    if plot_png is not None:
        parts.append(
            "<p>Each curve is one method over its parameter (its first and last values "
            "next to the points); the black marker is the unprotected baseline (a triangle "
            "on the top edge with its value when the panel is zoomed on the protected "
            "settings); the dashed line is chance. Lower is more private, further right is "
            "more useful.</p>"
        )
        parts.append(
            _img_tag(plot_png, alt="privacy-utility plot").replace("<img ", '<img class="plot" ', 1)
        )
    else:
        parts.append(
            "<p>No privacy-utility plot: re-identification or utility was not measured.</p>"
        )
    if config.utility:
        parts.append('<h2 id="utility">Utility</h2>')
        parts.append(
            "<p>Means over the images, in the layout of Yu et al. (Sensors 2021), Table 1 "
            "(whole images) and Table 2 (the protected face regions only). The first five rows "
            "are the paper's metrics; the rows below the double line are further metrics. "
            "Dhash is the Hamming distance between 64-bit difference hashes (the paper's "
            "Dhash values are on another scale); L<sub>2</sub> is not normalised by the "
            "image size; ALD<sub>p</sub> is the relative L<sub>p</sub> distortion.</p>"
        )
        parts.append(
            _table(
                results,
                _utility_rows(False),
                caption="Table 1. Whole image",
                table_id="table-whole",
                separator_after=_PAPER_ROWS,
            )
        )
        parts.append(
            _table(
                results,
                _utility_rows(True),
                caption="Table 2. Protected region only",
                table_id="table-region",
                separator_after=_PAPER_ROWS,
            )
        )
    contexts = config.contexts if "cnn" in config.attacks else ()
    privacy = _table(
        results,
        [*_PRIVACY_ROWS[:2], *_informed_rows(contexts), *_PRIVACY_ROWS[2:]],
        caption="Table 3. Privacy: re-identification by dlib's face recogniser "
        f"(threshold {config.reid_threshold:g}) and detection after protection",
        table_id="table-privacy",
    )
    if privacy:
        parts.append('<h2 id="privacy">Privacy</h2>')
        parts.append(
            "<p>Gallery: one original photo per identity. Probes: the other photos, "
            "protected, encoded at the face location found in their original. Rank-1: the "
            "nearest enrolled identity is the right one. Verification: distance to the right "
            "identity below the threshold; read it with the false accept rate (pairs with other "
            "identities below the threshold). Same-photo: protected probe vs its own original. "
            "Face covered: the centre of dlib's face lies inside the protected area. "
            "Informed attacker: a CNN trained on protected photos of the same people "
            "(McPherson et al. 2016) names held-out protected photos, seeing the context "
            "named; a method is only as private as its worst row.</p>"
        )
        parts.append(privacy)
    cnn = _table(
        results,
        _CNN_ROWS,
        caption="Table 4. CNN re-identification attack (McPherson et al. 2016): "
        "a classifier trained on protected faces of known identities names held-out "
        "protected faces",
        table_id="table-cnn",
    )
    recon = _table(
        [r for r in results if "reconstruction" in r.attacks],
        _reconstruction_rows(config.contexts if "reconstruction" in config.attacks else ()),
        caption="Table 5. Reconstruction attack: a U-Net trained on (original, protected) "
        "pairs of the attacker's view (per context) reconstructs held-out protected views",
        table_id="table-reconstruction",
    )
    if cnn or recon:
        parts.append('<h2 id="attacks">Attacks</h2>')
        parts.extend(t for t in (cnn, recon) if t)
        parts.append(_reconstructions_html(result))
    examples = _examples_html(result)
    if examples:
        parts.append('<h2 id="examples">Examples</h2>')
        parts.append(
            "<p>Each original (around its main face) and its protected versions, one row per "
            "method, one column per parameter value.</p>"
        )
        parts.append(examples)
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    parts.append('<h2 id="config">Configuration</h2>')
    parts.append(f'<p class="meta">Timings: {html.escape(timings)}.</p>')
    config_json = json.dumps(json_ready(config.to_dict()), indent=2)
    parts.append(
        f"<details><summary>Resolved configuration</summary><pre>{html.escape(config_json)}</pre></details>"
    )
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


# --------------------------------------------------------------------------- #
# files
# --------------------------------------------------------------------------- #
def csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Rows as CSV, UTF-8: the columns of every row in first-seen order (a row
    without a column, e.g. the baseline without reconstruction figures, leaves it empty)."""
    buf = io.StringIO()
    fieldnames = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")


def write_report(result: EvaluationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the report files into ``out_dir`` (created if needed).

    Parameters
    ----------
    result : EvaluationResult
    out_dir : path
        Output folder.  Existing report files in it are replaced (each write is
        atomic, see :func:`pixveil.io.atomic_write_bytes`); nothing else in it is
        touched.

    Returns
    -------
    dict of str to Path
        ``{"csv", "json", "config", "plot", "html"}`` -> written path (no
        ``"plot"`` when nothing could be plotted).

    Raises
    ------
    OutputError
        If the folder or a file cannot be written (or a report file is a
        symbolic link).
    MissingDependencyError
        If matplotlib is missing (``pip install 'pixveil[eval]'``).
    """
    folder = ReportFolder(out_dir)
    write = folder.write
    rows = result.rows()
    write("csv", "results.csv", csv_bytes(rows))
    payload = result.to_dict()
    payload["rows"] = rows
    write("json", "results.json", json_bytes(payload))
    config = {
        "config": result.config.to_dict(),
        "dataset": result.dataset.to_dict(),
        "environment": result.environment,
    }
    write("config", "config.json", json_bytes(config))
    plot = privacy_utility_figure(result)
    if plot is not None:
        write("plot", "privacy_utility.png", plot)
    write("html", "index.html", render_html(result, plot_png=plot).encode("utf-8"))
    return folder.written


class ReportFolder:
    """A report folder (created on construction) whose files are written atomically.

    Shared by the report writers of ``pixveil evaluate``, its video section and
    ``pixveil attack attribution``.

    Raises
    ------
    OutputError
        If the folder cannot be created, or (from :meth:`write`) a file cannot be
        written or is a symbolic link.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the report folder: {exc.strerror or exc}", path=self.path
            ) from exc
        #: key -> path of every file written so far
        self.written: dict[str, Path] = {}

    def write(self, key: str, name: str, data: bytes) -> Path:
        """Write ``data`` to ``name`` in the folder (atomic; no link followed)."""
        path = atomic_write_bytes(self.path / name, data, root=self.path)
        self.written[key] = path
        return path


def json_bytes(value: Any) -> bytes:
    """``value`` as indented JSON (NaN/inf as null, see :func:`json_ready`), UTF-8."""
    return (json.dumps(json_ready(value), indent=2, allow_nan=False) + "\n").encode("utf-8")
