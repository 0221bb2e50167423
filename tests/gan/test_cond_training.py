"""Pack, train (tiny), resume, export and use the conditional face generator end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.cli import app
from pixveil.gan.data import is_held_out

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    """An LFW-like folder: the astronaut's head, shifted and tinted, as training people."""
    root = tmp_path_factory.mktemp("people")
    names = [n for n in (f"person_{i}" for i in range(40)) if not is_held_out(n)][:4]
    held = next(n for n in (f"other_{i}" for i in range(100)) if is_held_out(n))
    rng = np.random.default_rng(0)
    for k, name in enumerate([*names, held]):
        (root / name).mkdir()
        for j in range(2):
            dx, dy = rng.integers(-20, 20, 2)
            crop = astronaut[max(0, dy) : 250 + dy + 20, 80 + dx : 330 + dx][:250, :250]
            tint = np.clip(crop * (0.8 + 0.1 * k) + 5 * j, 0, 255).astype(np.uint8)
            Image.fromarray(tint).save(root / name / f"{name}_{j:04d}.jpg", quality=92)
    return root


@pytest.mark.slow
def test_pack_train_resume_export_and_protect(
    photos: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    from pixveil.gan.cond_runtime import CondFaceGAN
    from pixveil.protect import get_method

    runner = CliRunner()
    pack = tmp_path / "pack.npz"
    res = runner.invoke(app, ["gan", "pack", "--data", str(photos), "-o", str(pack)])
    assert res.exit_code == 0, res.output
    with np.load(pack) as z:
        assert len(z["offsets"]) - 1 == 8  # 4 training people x 2 photos; held-out one skipped
        assert not any(is_held_out(str(i)) for i in z["identity"])
        assert z["landmarks"].shape == (8, 5, 2)
    run = tmp_path / "run"
    from pixveil.gan.cond_train import train

    state = train(pack, run, minutes=5, batch=4, device="cpu", max_steps=2, every=1000)
    assert state["step"] == 2
    for f in ("g_ema.pt", "g.pt", "e.pt", "d.pt", "state.json", "preview.jpg"):
        assert (run / f).is_file(), f
    state = train(pack, run, minutes=5, batch=4, device="cpu", max_steps=3, every=1000)
    assert json.loads((run / "state.json").read_text())["step"] == 3  # resumed, not restarted
    export = tmp_path / "export"
    res = runner.invoke(
        app,
        [
            *("gan", "export-cond", str(run), "--to", str(export)),
            *("--pack", str(pack), "--prior-samples", "300"),
        ],
    )
    assert res.exit_code == 0, res.output
    card = json.loads((export / "gan_face_cond.json").read_text())
    assert card["training"]["steps"] == 3 and set(card["files"]) == {
        "generator",
        "encoder",
        "prior",
    }
    gan = CondFaceGAN(export)
    assert gan.nz == 64 and gan.prior.nz == 64
    m = get_method("gan-face", model=str(export), epsilon=0.5)
    from pixveil.types import Region

    region = Region((190.0, 60.0, 270.0, 175.0), "face", 0.9)
    out = m.apply(astronaut, [region], rng=np.random.default_rng(0))
    assert out.shape == astronaut.shape and not np.array_equal(out, astronaut)
