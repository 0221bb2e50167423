"""`pixveil evaluate` and `pixveil attack`: files written, messages, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli_evaluate import app as evaluate_app
from pixveil.evaluate import attack_runs

pytest.importorskip("dlib")
pytest.importorskip("matplotlib")

cli = CliRunner()
root = typer.Typer()


def _flat(text: str) -> str:
    """The console wraps long lines (paths vary in length): compare on single spaces."""
    return " ".join(text.split())


@root.callback()
def _root() -> None:
    """Stand-in for the main application the commands are mounted on."""


root.add_typer(evaluate_app)


def _faces(folder: Path, astronaut: np.ndarray, *, identities: bool = True) -> Path:
    """Astronaut crops: 2 'identities' x 2 images, or 3 images in a flat folder."""
    shifts = [(0, 0), (8, -6), (-7, 5)]
    for k, (dx, dy) in enumerate(shifts):
        x0, y0 = 225 + dx - 96, 118 + dy - 96
        crop = np.ascontiguousarray(astronaut[max(0, y0) : y0 + 192, max(0, x0) : x0 + 192])
        if identities:
            for name, image in (("ann", crop), ("bob", crop[:, ::-1, ::-1])):
                if k < 2:
                    path = folder / name / f"{k}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(np.ascontiguousarray(image)).save(path)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(crop).save(folder / f"{k}.png")
    return folder


FAST = ["--no-reid", "--no-detection", "--workers", "1", "-q", "--examples", "1"]


def test_evaluate_writes_the_report(tmp_path: Path, astronaut: np.ndarray) -> None:
    data = _faces(tmp_path / "faces", astronaut)
    out = tmp_path / "report"
    args = ["evaluate", "--data", str(data), "-o", str(out), "--methods", "blur,mask"]
    res = cli.invoke(root, [*args, "--sweep", "blur:strength=0.1,0.3", *FAST])
    assert res.exit_code == 0, res.output
    for name in ("index.html", "results.csv", "results.json", "config.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text(encoding="utf-8"))))
    assert [r["label"] for r in rows] == ["none", "blur strength=0.1", "blur strength=0.3", "mask"]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["config"]["reid"] is False and config["config"]["workers"] == 1
    assert "report:" in _flat(res.output) and "strength=0.3" in _flat(res.output)


def test_repeat_pools_the_runs_over_consecutive_seeds(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    data = _faces(tmp_path / "faces", astronaut)
    out = tmp_path / "report"
    args = ["evaluate", "--data", str(data), "-o", str(out), "--methods", "dp-pix"]
    res = cli.invoke(root, [*args, "--epsilons", "0.5", "--repeat", "3", "--seed", "4", *FAST])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text(encoding="utf-8"))))
    assert [r["images"] for r in rows] == ["12", "12"]  # 4 images x 3 runs
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["notes"][0] == "pooled over 3 runs (seeds 4, 5, 6)"


def test_the_summary_says_how_many_probes_rank1_counts(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    data = _faces(tmp_path / "faces", astronaut)
    args = ["evaluate", "--data", str(data), "-o", str(tmp_path / "r"), "--methods", "mask"]
    res = cli.invoke(root, [*args, "--repeat", "2", "--no-detection", "-q", "--workers", "1"])
    assert res.exit_code == 0, res.output
    # 2 identities x 2 photos: one enrolled and one probe each, in each of 2 runs
    assert "rank-1 over 4 probes per setting, chance 50" in _flat(res.output)


def test_evaluate_with_reid_on_a_flat_folder_says_what_was_skipped(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    data = _faces(tmp_path / "flat", astronaut, identities=False)
    out = tmp_path / "report"
    res = cli.invoke(
        root,
        ["evaluate", "--data", str(data), "-o", str(out), "--methods", "mask", "-q", "-j", "1"],
    )
    assert res.exit_code == 0, res.output
    assert "identity-based metrics" in _flat(res.output) and "skipped" in _flat(res.output)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "identity-based metrics" in page and "Same-photo verification" in page


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "smudge"], "unknown method"),
        (["--sweep", "blur"], "METHOD:PARAM=VALUE"),
        (["--sweep", "blur:radius=1"], "no parameter 'radius'"),
        (["--set", "dp-pix:epsilon=-1"], "epsilon"),
        (["--epsilons", "0.1,lots"], "--epsilons must be numbers"),
        (["--attacks", "gan"], "unknown attack"),
        (["--workers", "-1"], "--workers"),
        (["--per-identity", "0"], "per_identity"),
        (["--repeat", "0"], "--repeat must be >= 1"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, extra: list[str], message: str) -> None:
    (tmp_path / "faces" / "ann").mkdir(parents=True)
    res = cli.invoke(root, ["evaluate", "--data", str(tmp_path / "faces"), *extra, "-q"])
    assert res.exit_code == 2, res.output
    assert message in _flat(res.output)


def test_missing_or_empty_data_folder_exits_2(tmp_path: Path) -> None:
    res = cli.invoke(root, ["evaluate", "--data", str(tmp_path / "nowhere"), "-q"])
    assert res.exit_code == 2 and "not a folder" in _flat(res.output)
    (tmp_path / "empty").mkdir()
    res = cli.invoke(root, ["evaluate", "--data", str(tmp_path / "empty"), "-q"])
    assert res.exit_code == 2 and "no image" in _flat(res.output)


def test_attack_without_its_dependencies_exits_2(
    tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        attack_runs,
        "attacks_available",
        lambda: {"cnn": "torch is needed", "reconstruction": "torch is needed"},
    )
    data = _faces(tmp_path / "faces", astronaut)
    res = cli.invoke(root, ["attack", "reid", "--data", str(data), "-q"])
    assert res.exit_code == 2
    assert "cannot run: torch is needed" in _flat(res.output)


def test_attack_help_lists_both_attacks() -> None:
    res = cli.invoke(root, ["attack", "--help"])
    assert res.exit_code == 0
    assert "reid" in _flat(res.output) and "reconstruction" in _flat(res.output)


@pytest.mark.slow
def test_attack_reid_prints_its_table(tmp_path: Path, astronaut: np.ndarray) -> None:
    if attack_runs.attacks_available()["cnn"] is not None:
        pytest.skip("the CNN attack is not available")
    data = _faces(tmp_path / "faces", astronaut)
    for name in ("ann", "bob"):  # a third photo each: two to train on, one to test
        src = data / name / "0.png"
        Image.open(src).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(data / name / "2.png")
    out = tmp_path / "report"
    res = cli.invoke(
        root,
        [
            "attack", "reid", "--data", str(data), "--method", "mask", "--epochs", "1",
            "--image-size", "32", "-j", "1", "-q", "-o", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "CNN re-identification attack" in _flat(res.output) and "chance top-1" in _flat(
        res.output
    )
    assert "50.0" in _flat(res.output)  # chance with two identities
    html = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="table-cnn"' in html
    # one row per context, by default the face box x 1.2, x 2 and the whole photo
    flat = _flat(res.output)
    assert all(f"│ mask │ {c} │" in flat for c in ("1.2", "2", "full")), flat
    assert "Informed attacker (CNN) top-1, sees the whole photo" in html


@pytest.mark.slow
def test_attack_reconstruction_runs_per_context(tmp_path: Path, astronaut: np.ndarray) -> None:
    if attack_runs.attacks_available()["reconstruction"] is not None:
        pytest.skip("the reconstruction attack is not available")
    data = _faces(tmp_path / "faces", astronaut)
    out = tmp_path / "report"
    res = cli.invoke(
        root,
        [
            "attack", "reconstruction", "--data", str(data), "--method", "mask", "--epochs", "1",
            "--image-size", "32", "--context", "1.2,full", "-j", "1", "-q", "-o", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    flat = _flat(res.output)
    assert "Reconstruction attack" in flat
    assert all(f"│ mask │ {c} │" in flat for c in ("1.2", "full")), flat
    figures = json.loads((out / "results.json").read_text(encoding="utf-8"))
    mask = next(r for r in figures["results"] if r["setting"]["method"] == "mask")
    contexts = mask["attacks"]["reconstruction"]["contexts"]
    assert set(contexts) == {"1.2", "full"}
    # the mask fills the face box x 1.2 but is a small part of the whole photo
    assert contexts["full"]["ssim_protected"] > contexts["1.2"]["ssim_protected"]
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "SSIM reconstruction vs original, sees the whole photo" in html


@pytest.mark.slow
def test_evaluate_summary_has_reconstruction_per_context(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    if attack_runs.attacks_available()["reconstruction"] is not None:
        pytest.skip("the reconstruction attack is not available")
    data = _faces(tmp_path / "faces", astronaut)
    args = ["evaluate", "--data", str(data), "-o", str(tmp_path / "r"), "--methods", "mask"]
    args += ["--attacks", "reconstruction", "--reconstruction-epochs", "1", "--attack-size", "32"]
    res = cli.invoke(root, [*args, "--context", "2,full", *FAST])
    assert res.exit_code == 0, res.output
    flat = _flat(res.output)
    header = flat.split("┡")[0]  # the console may wrap a header over two lines
    assert header.count("recon. SSIM") == 2 and "(2)" in header and "(full)" in header, flat


def test_attack_reid_refuses_a_bad_context(tmp_path: Path, astronaut: np.ndarray) -> None:
    data = _faces(tmp_path / "faces", astronaut)
    res = cli.invoke(root, ["attack", "reid", "--data", str(data), "--context", "0.5", "-q"])
    assert res.exit_code == 2 and "context must be a number in [1, 10]" in _flat(res.output)


def test_mounted_on_the_main_application() -> None:
    from pixveil.cli import app

    if not any(g.typer_instance is evaluate_app for g in app.registered_groups):
        pytest.skip("pixveil.cli does not mount the evaluate commands yet")
    res = cli.invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "evaluate" in _flat(res.output) and "attack" in _flat(res.output)
    res = cli.invoke(app, ["evaluate", "--data", "/nonexistent/faces", "-q"])
    assert res.exit_code == 2 and "not a folder" in _flat(res.output)
