"""The report of ``pixveil attack attribution``: CSV, JSON, plots and an HTML page.

Built from the same pieces as the ``pixveil evaluate`` report
(:mod:`pixveil.evaluate.report`, :mod:`pixveil.evaluate.plots`): strict JSON,
the CSV writer, embedded PNGs, atomic writes.  Files written into one folder:

* ``results.csv``: one row per condition (method × strength, ``none`` first):
  SSIM, accuracy of the clean-trained and of the fine-tuned classifier, chance;
* ``results.json``: the same with the confusion matrices, sources, timings, notes;
* ``config.json``: the resolved configuration and the environment;
* ``attribution.png``: accuracy against SSIM, one curve per method, both classifiers;
* ``fingerprints.png``: per-source mean residual and its spectrum;
* ``index.html``: everything above on one self-contained page.
"""

from __future__ import annotations

import html
import io
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.evaluate.attribution import AttributionResult, ConditionResult
from pixveil.evaluate.plots import _figure, _png
from pixveil.evaluate.report import ReportFolder, _img_tag, csv_bytes, format_value, json_bytes

__all__ = ["REPORT_FILES", "attribution_figure", "render_html", "write_report"]

REPORT_FILES = (
    "results.csv",
    "results.json",
    "config.json",
    "attribution.png",
    "fingerprints.png",
    "index.html",
)


def environment() -> dict[str, Any]:
    """Versions, CPUs and load average, for the report."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("pixveil", "numpy", "torch", "scikit-image"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        load: list[float] | None = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": load,
        "versions": versions,
    }


def attribution_figure(result: AttributionResult) -> bytes:
    """Two panels (clean-trained, fine-tuned): accuracy against mean SSIM per method."""
    fig = _figure(10.0, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    base = next((c for c in result.conditions if c.method == "none"), None)
    methods = [m for m in dict.fromkeys(c.method for c in result.conditions) if m != "none"]
    for ax, key, title in (
        (axes[0], "acc_clean", "classifier trained on clean images"),
        (axes[1], "acc_finetuned", "classifier fine-tuned on protected images"),
    ):
        for m in methods:
            cs = [c for c in result.conditions if c.method == m]
            pts = [(c.ssim, getattr(c, key)) for c in cs if getattr(c, key) is not None]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", label=m)
            for c, x, y in zip(cs, xs, ys, strict=True):
                text = f"{c.value:g}" if isinstance(c.value, float) else str(c.value)
                ax.annotate(text, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
        if base is not None:
            ax.plot([1.0], [base.acc_clean], marker="*", color="black", ms=12, label="none")
        ax.axhline(result.chance, ls="--", color="grey", label="chance")
        ax.set_xlabel("SSIM protected vs clean (utility →)")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("attribution accuracy (test)")
    axes[1].legend(fontsize=8, loc="lower right")
    return bytes(_png(fig))


def _fingerprint_png(result: AttributionResult) -> bytes:
    from PIL import Image

    k = len(result.sources)
    tile = 128
    grid = np.full((2 * tile + 6, k * (tile + 4) + 2, 3), 255, np.uint8)
    for i in range(k):
        res = np.asarray(Image.fromarray(result.fingerprints[i]).resize((tile, tile), 0))
        spec = np.asarray(Image.fromarray(result.spectra[i]).resize((tile, tile), 0))
        x0 = 2 + i * (tile + 4)
        grid[2 : 2 + tile, x0 : x0 + tile] = res
        grid[4 + tile : 4 + 2 * tile, x0 : x0 + tile] = spec[..., None]
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _pct(v: float | None) -> str:
    return format_value(v, scale=100, decimals=1) + (" %" if v is not None else "")


def _confusion_html(sources: tuple[str, ...], cm: list[list[int]] | None, caption: str) -> str:
    if cm is None:
        return ""
    head = "".join(f"<th>{html.escape(s)}</th>" for s in sources)
    rows = []
    for s, row in zip(sources, cm, strict=True):
        total = sum(row) or 1
        cells = "".join(
            f'<td style="background: rgba(40, 90, 200, {v / total:.2f})">{v}</td>' for v in row
        )
        rows.append(f"<tr><th>{html.escape(s)}</th>{cells}</tr>")
    return (
        f"<table class='cm'><caption>{html.escape(caption)}</caption>"
        f"<tr><th>true \\ predicted</th>{head}</tr>{''.join(rows)}</table>"
    )


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
img.plot { max-width: 100%; }
.meta { color: #666; }
.cm td { min-width: 3em; }
"""


def _label(c: ConditionResult) -> str:
    return "none (clean)" if c.method == "none" else c.label


def render_html(
    result: AttributionResult, *, plot_png: bytes, fingerprint_png: bytes, env: dict[str, Any]
) -> str:
    """The report page (self-contained; images embedded as base64 PNG)."""
    cfg = result.config
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t = result.timings
    load = env.get("load_average")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>pixveil attribution report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Attribution under obfuscation</h1>",
        f'<p class="meta">{created} · pixveil {html.escape(str(env["versions"].get("pixveil")))}'
        f" · {env.get('cpus')} CPUs" + (f", load average {load[0]:.1f}" if load else "") + "</p>",
        "<p>Can a GAN-fingerprint classifier (after Yu, Davis and Fritz, ICCV 2019) still tell "
        f"which of {len(result.sources)} sources made an image once the whole image is "
        "protected? <b>Sources:</b> "
        + ", ".join(f"<code>{html.escape(s)}</code>" for s in result.sources)
        + f". {cfg.n_train} training and {cfg.n_test} test images per source, seed {cfg.seed}. "
        f"<b>Clean test accuracy: {_pct(result.clean_accuracy)}</b>; chance "
        f"{_pct(result.chance)}. Run time {t.get('total', 0):.0f} s (sources "
        f"{t.get('sources', 0):.0f} s, classifier {t.get('classifier', 0):.0f} s, "
        f"protected conditions {t.get('conditions', 0):.0f} s).</p>",
    ]
    if result.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li>{html.escape(n)}</li>" for n in result.notes)
        parts.append("</ul>")
    parts.append("<h2>Accuracy against utility</h2>")
    parts.append(
        "<p>Left: the classifier trained on clean images, tested on protected ones. Right: "
        "the same classifier fine-tuned on protected training images of every source "
        "(immunised). Labels next to the points are the swept parameter; the star is the "
        "unprotected baseline; the dashed line is chance. Lower accuracy hides provenance "
        "better; further right keeps more of the image.</p>"
    )
    parts.append(
        _img_tag(plot_png, alt="attribution plot").replace("<img ", '<img class="plot" ', 1)
    )
    parts.append("<h2>Table</h2><table><tr><th class='l'>condition</th><th>SSIM</th>")
    parts.append("<th>clean-trained</th><th>fine-tuned</th><th>chance</th><th>seconds</th></tr>")
    for c in result.conditions:
        parts.append(
            f"<tr><td class='l'>{html.escape(_label(c))}</td>"
            f"<td>{format_value(c.ssim)}</td><td>{_pct(c.acc_clean)}</td>"
            f"<td>{_pct(c.acc_finetuned)}</td><td>{_pct(result.chance)}</td>"
            f"<td>{c.seconds:.0f}</td></tr>"
        )
    parts.append("</table>")
    parts.append("<h2>Fingerprints</h2>")
    parts.append(
        "<p>Per source (left to right: "
        + ", ".join(html.escape(s) for s in result.sources)
        + "): top, the mean noise residual <code>x − GaussianBlur(x, σ=1)</code> over its test "
        "images (one scale for all); bottom, the log-magnitude spectrum of that mean (centred). "
        "Regular patterns and spectral peaks are the generators' upsampling fingerprints.</p>"
    )
    parts.append(_img_tag(fingerprint_png, alt="fingerprints"))
    parts.append("<h2>Examples</h2><p>The first test image of every source, per condition.</p>")
    parts.append("<table><tr><th class='l'>condition</th>")
    parts.extend(f"<th>{html.escape(s)}</th>" for s in result.sources)
    parts.append("</tr>")
    for label, imgs in result.examples.items():
        cells = "".join(f"<td>{_img_tag(im, alt=label, width=64)}</td>" for im in imgs)
        parts.append(f"<tr><td class='l'>{html.escape(label)}</td>{cells}</tr>")
    parts.append("</table>")
    parts.append("<h2>Confusion matrices</h2>")
    for c in result.conditions:
        parts.append(f"<details{' open' if c.method == 'none' else ''}>")
        parts.append(f"<summary>{html.escape(_label(c))}</summary>")
        parts.append(_confusion_html(result.sources, c.confusion_clean, "clean-trained classifier"))
        if c.method != "none":
            parts.append(
                _confusion_html(result.sources, c.confusion_finetuned, "fine-tuned classifier")
            )
        parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: AttributionResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the report files into ``out_dir`` (created); returns key -> path.

    Raises
    ------
    OutputError
        If the folder or a file cannot be written.
    MissingDependencyError
        If matplotlib is missing (``pip install 'pixveil[eval]'``).
    """
    folder = ReportFolder(out_dir)
    write = folder.write
    env = environment()
    write("csv", "results.csv", csv_bytes(result.rows()))
    write("json", "results.json", json_bytes(result.to_dict()))
    write(
        "config",
        "config.json",
        json_bytes({"config": result.config.to_dict(), "environment": env}),
    )
    plot = attribution_figure(result)
    write("plot", "attribution.png", plot)
    fps = _fingerprint_png(result)
    write("fingerprints", "fingerprints.png", fps)
    page = render_html(result, plot_png=plot, fingerprint_png=fps, env=env)
    write("html", "index.html", page.encode("utf-8"))
    return folder.written
