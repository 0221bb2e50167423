"""pixveil attack attribution: configuration, whole-image protection, fingerprints, the
classifier on synthetic fingerprints, the VAE's resumable training and the command."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pixveil.evaluate import attribution as at  # noqa: E402

LFW = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "lfw"


def fingerprinted(n: int, period: int, seed: int) -> np.ndarray:
    """Smooth random images plus a faint periodic pattern of ``period`` pixels (the "fingerprint")."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 215, (n, 8, 8, 3)).astype(np.float32)
    imgs = np.stack([cv2.resize(b, (64, 64), interpolation=cv2.INTER_CUBIC) for b in base])
    yy, xx = np.mgrid[0:64, 0:64]
    pattern = 12.0 * (((yy % period) == 0) ^ ((xx % period) == 0)).astype(np.float32)
    return np.clip(imgs + pattern[None, :, :, None] - 6.0, 0, 255).round().astype(np.uint8)


class TestConfig:
    def test_settings_include_defaults_and_baseline(self, tmp_path: Path) -> None:
        cfg = at.AttributionConfig(real=tmp_path, work=tmp_path)
        settings = cfg.settings()
        assert settings[0][0] == "none"
        labels = {(m, p.get(k) if k else None) for m, p, k, _ in settings}
        assert ("dp-pix", 1.0) in labels and ("dp-blur", 1.0) in labels  # DP defaults
        assert ("metric-pix", 8.0) in labels
        per_method = {m: sum(1 for s in settings if s[0] == m) for m in cfg.methods}
        assert all(v >= 3 for v in per_method.values())

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"sources": ("real",)}, "two distinct"),
            ({"sources": ("real", "real")}, "two distinct"),
            ({"sources": ("real", "stylegan")}, "unknown source"),
            ({"methods": ("nope",)}, "unknown method"),
            ({"strengths": {"dp-pix": ("epsilon", (-1.0,))}}, "epsilon"),
            ({"strengths": {"blur": ("strength", (0.1,))}, "methods": ("pixelate",)}, "not among"),
            ({"n_train": 3}, "n_train"),
        ],
    )
    def test_bad_values_raise(self, tmp_path: Path, kwargs: dict, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            at.AttributionConfig(real=tmp_path, work=tmp_path, **kwargs)

    def test_parse_strengths(self) -> None:
        assert at.parse_strengths(["dp-pix:epsilon=1,5", "pixelate:blocks=4"]) == {
            "dp-pix": ("epsilon", (1, 5)),
            "pixelate": ("blocks", (4,)),
        }


class TestProtectWhole:
    def test_whole_image_changes_and_none_is_a_copy(self) -> None:
        x = fingerprinted(3, 2, 0)
        assert np.array_equal(at.protect_whole(x, "none", {}, seed=0), x)
        out = at.protect_whole(x, "pixelate", {"blocks": 4}, seed=0)
        assert out.shape == x.shape and out.dtype == np.uint8
        # every 16x16 cell is flat: the whole image (corners too) was protected
        cells = out.reshape(3, 4, 16, 4, 16, 3)
        assert (cells == cells[:, :, :1, :, :1]).all()

    def test_noise_is_seeded(self) -> None:
        x = fingerprinted(2, 2, 1)
        a = at.protect_whole(x, "metric-pix", {"epsilon": 4.0}, seed=3)
        b = at.protect_whole(x, "metric-pix", {"epsilon": 4.0}, seed=3)
        c = at.protect_whole(x, "metric-pix", {"epsilon": 4.0}, seed=4)
        assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_fingerprint_spectrum_peaks_at_the_pattern_frequency() -> None:
    """A period-4 pattern shows as a spectral peak at 64/4 = 16 cycles from the centre."""
    vis, spec = at.fingerprints([fingerprinted(40, 4, 2), fingerprinted(40, 64, 3)])
    assert vis.shape == (2, 64, 64, 3) and spec.shape == (2, 64, 64)
    s = spec[0].astype(float)
    assert s[32, 32 + 16] > np.percentile(s, 99)
    assert spec[1][32, 32 + 16] < np.percentile(spec[1], 99)


def test_classifier_learns_fingerprints_and_pixelation_hides_them() -> None:
    """Two sources differing only in a faint periodic pattern: the network attributes them;
    pixelation (4 cells) wipes the pattern and the clean-trained network falls to chance."""
    torch.manual_seed(0)
    xa, xb = fingerprinted(160, 2, 10), fingerprinted(160, 3, 11)
    x = np.concatenate([xa[:120], xb[:120]])
    y = np.repeat([0, 1], 120)
    xt = np.concatenate([xa[120:], xb[120:]])
    yt = np.repeat([0, 1], 40)
    net = at._attribution_net(2, 8)
    at._train(net, x, y, epochs=15, lr=2e-3, seed=0, device="cpu", stage="t", emit=None)
    assert np.mean(at._predict(net, xt, "cpu") == yt) >= 0.95
    px = at.protect_whole(xt, "pixelate", {"blocks": 4}, seed=0)
    assert np.mean(at._predict(net, px, "cpu") == yt) <= 0.7


def test_vae_training_resumes(tmp_path: Path) -> None:
    from pixveil.gan.vae import VAEConfig, load_vae, train_vae

    crops = fingerprinted(16, 2, 5)
    cfg = VAEConfig(out=str(tmp_path / "vae"), steps=2, batch=4, width=4, nz=8, ckpt_every=1)
    train_vae(cfg, crops)
    cfg.steps = 3
    events: list[int] = []
    train_vae(cfg, crops, progress=lambda e: events.append(e.done))
    assert events == [3]  # resumed at step 2
    model = load_vae(tmp_path / "vae")
    with torch.no_grad():
        out = model.decode(torch.zeros(2, 8))
    assert tuple(out.shape) == (2, 3, 64, 64)


def test_cli_refuses_an_unknown_source(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pixveil.cli import app

    res = CliRunner().invoke(
        app,
        [
            "attack",
            "attribution",
            "--real",
            str(tmp_path),
            "--sources",
            "real,stylegan",
            "-o",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 2
    assert "unknown source" in res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.skipif(not LFW.is_dir(), reason="LFW not available")
@pytest.mark.skipif(
    importlib.util.find_spec("gan_face_generate") is None, reason="gan-face-generate missing"
)
def test_real_against_baseline_dcgan_end_to_end(tmp_path: Path) -> None:
    """Real LFW crops vs gan-face-generate's DCGAN: attributed, report written."""
    from pixveil.evaluate.attribution_report import REPORT_FILES, write_report

    cfg = at.AttributionConfig(
        real=LFW,
        work=tmp_path / "work",
        sources=("real", "dcgan-baseline"),
        methods=("pixelate",),
        strengths={"pixelate": ("blocks", (4,))},
        n_train=100,
        n_test=30,
        clf_epochs=12,
    )
    result = at.run_attribution(cfg)
    assert result.clean_accuracy >= 0.9
    assert [c.label for c in result.conditions] == ["none", "pixelate blocks=4"]
    written = write_report(result, tmp_path / "report")
    assert {p.name for p in written.values()} == set(REPORT_FILES)
    data = json.loads((tmp_path / "report" / "results.json").read_text())
    assert data["chance"] == 0.5 and len(data["conditions"]) == 2
    assert sum(map(sum, data["conditions"][0]["confusion_clean_trained"])) == 60  # 2 x n_test
