"""Report files: written, parseable, and the HTML holds the plot, the tables and the images."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixveil.errors import OutputError
from pixveil.evaluate import EvaluationConfig, EvaluationResult, Example, SettingResult, plots
from pixveil.evaluate.datasets import DatasetItem, FaceDataset
from pixveil.evaluate.privacy import ReidSummary
from pixveil.evaluate.report import (
    REPORT_FILES,
    format_value,
    json_ready,
    privacy_utility_figure,
    render_html,
    write_report,
)

pytest.importorskip("matplotlib")

NAN = math.nan


def _utility(ssim: float, l0: float, psnr: float = 30.0) -> dict[str, float]:
    return {
        "ssim": ssim,
        "ms_ssim": NAN,
        "psnr": psnr,
        "l0": l0,
        "l0_fraction": l0 / 10000,
        "l2": 10 * l0,
        "ald_0": 0.01,
        "ald_2": 0.05,
        "ald_inf": 0.2,
        "dhash": 7.0,
    }


def fake_result(
    tmp_path: Path, *, identities: bool = True, attacks: bool = False
) -> EvaluationResult:
    """A hand-made result: none, blur strength 0.1/0.3, mask, with known numbers."""
    config = EvaluationConfig(
        data=tmp_path,
        methods=("blur", "mask"),
        sweeps={"blur": ("strength", (0.1, 0.3))},
        attacks=("cnn", "reconstruction") if attacks else (),
    )
    settings = config.settings()
    labels = ["ann", "ann", "bob", "bob"] if identities else [None] * 4
    dataset = FaceDataset(
        root=tmp_path,
        layout="identities" if identities else "flat",
        items=tuple(DatasetItem(tmp_path / f"{i}.png", label) for i, label in enumerate(labels)),
    )
    numbers = [  # ssim, l0, rank1, same_photo, detected
        (1.0, 0.0, 1.0, 1.0, 1.0),
        (0.9, 1500.0, 0.5, 0.5, 0.75),
        (0.8, 1500.0, 0.25, 0.0, 0.25),
        (0.6, 1500.0, 0.0, 0.0, 0.0),
    ]
    results = []
    for setting, (ssim, l0, rank1, same, detected) in zip(settings, numbers, strict=True):
        reid = ReidSummary(
            rank1=rank1 if identities else None,
            verification=rank1 if identities else None,
            false_accept=0.01 if identities else None,
            same_photo=same,
            chance_rank1=0.5 if identities else None,
            n_probes=2,
            n_gallery=2 if identities else 0,
        )
        res = SettingResult(
            setting,
            n_images=4,
            n_with_faces=4,
            n_regions=4,
            utility=_utility(ssim, l0, math.inf if l0 == 0 else 30.0),
            utility_region=_utility(ssim - 0.3 if l0 else 1.0, l0),
            n_region_images=4,
            reid=reid,
            face_covered=None if setting.is_baseline else 1.0,
            detection={"pixveil": detected, "dlib": detected},
        )
        if attacks:
            res.attacks["cnn"] = {
                "top1": rank1, "top5": 1.0, "chance_top1": 0.5, "chance_top5": 1.0,
                "n_classes": 2, "n_train": 2, "n_test": 2, "epochs": 1, "train_seconds": 1.5,
            }  # fmt: skip
            if not setting.is_baseline:
                res.attacks["reconstruction"] = {
                    "ssim_protected": ssim - 0.3, "ssim_reconstructed": ssim - 0.1,
                    "psnr_protected": 20.0, "psnr_reconstructed": 24.0, "n_train": 2, "n_test": 2,
                    "epochs": 1, "train_seconds": 2.0,
                }  # fmt: skip
        results.append(res)
    rng = np.random.default_rng(0)
    view = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    example = Example("ann/1.png", view, {s.label: 255 - view for s in settings[1:]})
    reconstructions = {}
    if attacks:
        crops = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
        reconstructions = {"original": (crops, crops), "mask": (crops, crops)}
    notes = ["data: something was noted", "<script>alert(1)</script>"]
    if not identities:
        notes.append("flat folder (no identities): identity-based metrics were skipped")
    return EvaluationResult(
        config=config,
        dataset=dataset,
        results=results,
        notes=notes,
        timings={"total": 12.5},
        examples=[example],
        reconstructions=reconstructions,
        environment={
            "cpus": 2,
            "workers": 1,
            "load_average_start": [1.5, 1.0, 1.0],
            "load_average_end": [2.5, 1.0, 1.0],
            "versions": {"pixveil": "0.1.0"},
        },
    )


#: Informed attacker's top-1 per setting label and context in :func:`with_contexts`.
_TOP1 = {
    "1.2": {"none": 1.0, "blur strength=0.1": 0.5, "blur strength=0.3": 0.25, "mask": 0.0},
    "full": {"none": 1.0, "blur strength=0.1": 0.75, "blur strength=0.3": 0.5, "mask": 0.5},
}


def with_contexts(result: EvaluationResult) -> EvaluationResult:
    """``result`` (with attacks) as if both attacks had seen the face box x 1.2 and the whole
    photo: CNN top-1 from :data:`_TOP1`, reconstruction SSIM 0.1 higher in the whole photo."""
    result.config = dataclasses.replace(result.config, contexts=("1.2", "full"))
    for r in result.results:
        cnn = r.attacks["cnn"]
        cnn["context"] = "1.2"
        cnn["contexts"] = {c: {**cnn, "top1": top1[r.setting.label]} for c, top1 in _TOP1.items()}
        cnn.update(cnn["contexts"]["1.2"])
        rec = r.attacks.get("reconstruction")
        if rec is not None:
            rec["context"] = "1.2"
            whole = {k: v + 0.1 if k.startswith("ssim") else v for k, v in rec.items()}
            rec["contexts"] = {"1.2": dict(rec), "full": whole}
    return result


def _strict_json(path: Path) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


class TestWriteReport:
    def test_files(self, tmp_path: Path) -> None:
        written = write_report(fake_result(tmp_path), tmp_path / "report")
        assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(REPORT_FILES)
        assert set(written) == {"csv", "json", "config", "plot", "html"}

    def test_csv(self, tmp_path: Path) -> None:
        write_report(fake_result(tmp_path), tmp_path / "r")
        text = (tmp_path / "r" / "results.csv").read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["label"] for r in rows] == [
            "none",
            "blur strength=0.1",
            "blur strength=0.3",
            "mask",
        ]
        assert rows[1]["method"] == "blur" and rows[1]["parameter"] == "strength"
        assert float(rows[1]["value"]) == 0.1 and float(rows[1]["whole_ssim"]) == 0.9
        assert rows[0]["whole_psnr"] == "inf" and rows[1]["whole_ms_ssim"] == ""
        assert float(rows[3]["reid_rank1"]) == 0.0 and float(rows[1]["detected_dlib"]) == 0.75
        assert rows[0]["face_covered"] == "" and rows[0]["cnn_top1"] == ""

    def test_json_is_strict_and_complete(self, tmp_path: Path) -> None:
        write_report(fake_result(tmp_path), tmp_path / "r")
        payload = _strict_json(tmp_path / "r" / "results.json")
        assert len(payload["results"]) == 4 and len(payload["rows"]) == 4
        assert payload["results"][0]["utility_whole"]["psnr"] is None  # inf -> null
        assert payload["results"][2]["reid"]["rank1"] == 0.25
        assert payload["notes"][0] == "data: something was noted"
        config = _strict_json(tmp_path / "r" / "config.json")
        labels = [s["label"] for s in config["config"]["settings"]]
        assert labels == ["none", "blur strength=0.1", "blur strength=0.3", "mask"]
        assert config["dataset"]["images"] == 4 and config["environment"]["cpus"] == 2

    def test_html_has_plot_tables_and_images(self, tmp_path: Path) -> None:
        write_report(fake_result(tmp_path), tmp_path / "r")
        page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>")
        for table in ("table-whole", "table-region", "table-privacy"):
            assert f'id="{table}"' in page
        assert "table-cnn" not in page  # no attack ran
        assert 'class="plot"' in page
        images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
        assert len(images) == 1 + 1 + 3  # the plot, the original, three protected views
        Image.open(io.BytesIO(__import__("base64").b64decode(images[0]))).verify()
        # Table 1 layout: columns "Original" then methods; SSIM x100, L0 / 100
        assert ">Original</th>" in page and ">blur · strength</th>" in page and ">mask</th>" in page
        whole = page[page.index('id="table-whole"') : page.index('id="table-region"')]
        ssim_row = re.search(r"SSIM \(10<sup>-2</sup>\)</th>(.*?)</tr>", whole)
        assert ssim_row is not None
        assert re.findall(r"<td>([^<]*)</td>", ssim_row.group(1)) == [
            "100.00",
            "90.00",
            "80.00",
            "60.00",
        ]
        assert "<td>15.00</td>" in whole  # L0 1500 pixels in units of 10^2
        assert "<td>∞</td>" in whole  # the baseline's PSNR
        assert "Rank-1 identification (%)" in page and "<td>25.0</td>" in page
        # notes are shown, escaped
        assert "data: something was noted" in page
        assert "<script>" not in page and "&lt;script&gt;" in page

    def test_attack_tables_and_reconstructions(self, tmp_path: Path) -> None:
        write_report(fake_result(tmp_path, attacks=True), tmp_path / "r")
        page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
        assert 'id="table-cnn"' in page and 'id="table-reconstruction"' in page
        assert "SSIM reconstruction vs original" in page
        assert "reconstruction</th>" in page  # the reconstruction grid rows

    def test_reconstruction_figures_per_context(self, tmp_path: Path) -> None:
        write_report(with_contexts(fake_result(tmp_path, attacks=True)), tmp_path / "r")
        page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
        table = page.split('id="table-reconstruction"')[1].split("</table>")[0]
        for sees in ("face box x 1.2", "the whole photo"):
            assert f"SSIM reconstruction vs original, sees {sees}</th>" in table
        # mask: SSIM 0.6, reconstruction 0.5 in the face box x 1.2, 0.6 in the whole photo
        row = table.split("SSIM reconstruction vs original, sees the whole photo</th>")[1]
        assert row.split("</tr>")[0].count("<td>0.600</td>") == 1
        rows = list(csv.DictReader(io.StringIO((tmp_path / "r" / "results.csv").read_text())))
        mask = next(r for r in rows if r["label"] == "mask")
        assert float(mask["reconstruction_ssim_reconstructed_context_full"]) == pytest.approx(0.6)
        assert "the attacker sees face box x 1.2" in page  # the reconstructions shown

    def test_flat_folder(self, tmp_path: Path) -> None:
        result = fake_result(tmp_path, identities=False)
        write_report(result, tmp_path / "r")
        page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
        assert "identity-based metrics were skipped" in page
        assert "Rank-1 identification" not in page  # rows without any value are left out
        assert "Same-photo verification (%)" in page
        assert privacy_utility_figure(result) is not None  # same-photo panel only

    def test_plot_is_a_png(self, tmp_path: Path) -> None:
        png = privacy_utility_figure(fake_result(tmp_path, attacks=True))
        assert png is not None and png.startswith(b"\x89PNG")
        with Image.open(io.BytesIO(png)) as im:
            width, height = im.size
        assert width > 2.5 * height  # three panels side by side

    def test_informed_frontier(self, tmp_path: Path) -> None:
        results = with_contexts(fake_result(tmp_path, attacks=True)).results
        near = plots.informed_frontier(results, "1.2")
        assert near == [
            (0.6, 0.0, "mask"),
            (0.8, 0.25, "blur strength=0.3"),
            (0.9, 0.5, "blur strength=0.1"),
        ]  # the baseline is no protection: left out
        # in the whole photo mask (SSIM 0.6, 50 %) is beaten by blur 0.3 (SSIM 0.8, 50 %)
        whole = plots.informed_frontier(results, "full")
        assert whole == [(0.8, 0.5, "blur strength=0.3"), (0.9, 0.75, "blur strength=0.1")]
        assert plots.informed_frontier(results, "2") == []

    def test_plot_draws_the_informed_frontier_per_context(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(plots, "_png", lambda fig: fig)  # keep the figure to look at
        fig: Any = privacy_utility_figure(with_contexts(fake_result(tmp_path, attacks=True)))
        (ax,) = [a for a in fig.axes if a.get_title().startswith("Informed attacker")]
        lines = {line.get_label(): line for line in ax.get_lines()}
        near = lines["informed attacker's frontier, sees face box x 1.2"]
        whole = lines["informed attacker's frontier, sees the whole photo"]
        assert list(near.get_xdata()) == [0.6, 0.8, 0.9]
        assert list(near.get_ydata()) == [0.0, 25.0, 50.0]
        assert near.get_drawstyle() == "steps-pre"  # lowest top-1 at SSIM >= x
        assert list(whole.get_xdata()) == [0.8, 0.9] and list(whole.get_ydata()) == [50, 75]
        assert list(lines["chance"].get_ydata()) == [50.0, 50.0]
        # each method's curve is its worst context
        assert list(lines["blur (strength)"].get_ydata()) == [75.0, 50.0]
        assert list(lines["mask"].get_ydata()) == [50.0]
        assert "worst context" in ax.get_ylabel()

    def test_plot_with_one_context_draws_its_frontier(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(plots, "_png", lambda fig: fig)
        fig: Any = privacy_utility_figure(fake_result(tmp_path, attacks=True))
        (ax,) = [a for a in fig.axes if a.get_title().startswith("Informed attacker")]
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels.count("informed attacker's frontier, sees face box x 1.2") == 1
        assert "worst context" not in ax.get_ylabel()

    def test_no_plot_without_privacy_figures(self, tmp_path: Path) -> None:
        result = fake_result(tmp_path)
        for r in result.results:
            r.reid = None
        assert privacy_utility_figure(result) is None
        html = render_html(result, plot_png=None)
        assert "No privacy-utility plot" in html
        written = write_report(result, tmp_path / "r")
        assert "plot" not in written

    def test_output_folder_is_a_file(self, tmp_path: Path) -> None:
        target = tmp_path / "file"
        target.write_text("x")
        with pytest.raises(OutputError):
            write_report(fake_result(tmp_path), target)


class TestValues:
    def test_format_value(self) -> None:
        assert format_value(None) == "–"
        assert format_value(NAN) == "–"
        assert format_value(math.inf) == "∞"
        assert format_value(0.91234, scale=100, decimals=2) == "91.23"
        assert format_value(12345.6, decimals=1) == "12,345.6"
        assert format_value("3 / 4") == "3 / 4"
        assert format_value(np.float32(0.5), decimals=1) == "0.5"

    def test_json_ready(self) -> None:
        value = {
            "a": np.float64(1.5),
            "b": [math.nan, math.inf, np.int64(3)],
            "c": np.array([1, 2]),
            "d": Path("x/y"),
            "e": np.bool_(True),
            1: None,
        }
        assert json_ready(value) == {
            "a": 1.5,
            "b": [None, None, 3],
            "c": [1, 2],
            "d": "x/y",
            "e": True,
            "1": None,
        }
        json.dumps(json_ready(value), allow_nan=False)
