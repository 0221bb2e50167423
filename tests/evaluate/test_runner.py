"""The evaluation runner: settings, per-image measurements and the aggregated results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixveil.errors import PrivacyParameterError
from pixveil.evaluate import (
    BASELINE,
    EvaluationConfig,
    EvaluationResult,
    ProgressEvent,
    attack_runs,
    parse_fixed,
    parse_sweep,
    parse_value,
    pool_results,
    run_evaluation,
    worker,
)
from pixveil.evaluate.features import frechet_distance_low_rank
from pixveil.evaluate.metrics import utility_report

pytest.importorskip("dlib")


# --------------------------------------------------------------------------- #
# synthetic data: astronaut variants (one real face, shifted, recoloured, mirrored)
# --------------------------------------------------------------------------- #
def variant(
    astronaut: np.ndarray,
    *,
    dx: int = 0,
    dy: int = 0,
    gain: float = 1.0,
    flip: bool = False,
    perm: tuple[int, int, int] = (0, 1, 2),
    size: int = 192,
) -> np.ndarray:
    """A ``size`` x ``size`` crop around the astronaut's face (at about (225, 118))."""
    x0, y0 = 225 + dx - size // 2, 118 + dy - size // 2
    crop = astronaut[max(0, y0) : y0 + size, max(0, x0) : x0 + size].astype(np.float32) * gain
    out = np.clip(crop, 0, 255).astype(np.uint8)[:, :, list(perm)]
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


def make_people(root: Path, astronaut: np.ndarray, *, per_identity: int = 2) -> Path:
    """Three 'identities' of ``per_identity`` images each (JPEG, 192x192)."""
    looks: dict[str, dict[str, Any]] = {
        "ann": {},
        "bob": {"perm": (2, 1, 0), "flip": True},
        "cyd": {"perm": (1, 0, 2), "gain": 0.85},
    }
    shifts = [(0, 0, 1.0), (8, -6, 0.92), (-9, 5, 1.08), (4, 7, 1.0)]
    for name, look in looks.items():
        for k in range(per_identity):
            dx, dy, gain = shifts[k]
            image = variant(
                astronaut, dx=dx, dy=dy, gain=gain * look.get("gain", 1.0),
                flip=look.get("flip", False), perm=look.get("perm", (0, 1, 2)),
            )  # fmt: skip
            path = root / name / f"{name}_{k + 1}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path, quality=95)
    return root


SMALL = {
    "methods": ("blur", "mask", "dp-pix"),
    "sweeps": {"blur": ("strength", (0.05, 0.3))},
    "epsilons": (0.5,),
    "examples": 2,
}


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    return make_people(tmp_path_factory.mktemp("people"), astronaut)


@pytest.fixture(scope="module")
def small_run(people: Path) -> EvaluationResult:
    return run_evaluation(EvaluationConfig(data=people, **SMALL))


def by_label(result: EvaluationResult) -> dict[str, Any]:
    return {r.setting.label: r for r in result.results}


# --------------------------------------------------------------------------- #
# parsing and settings
# --------------------------------------------------------------------------- #
class TestParsing:
    def test_values(self) -> None:
        assert parse_value("8") == 8 and isinstance(parse_value("8"), int)
        assert parse_value("0.5") == 0.5
        assert parse_value("inf") == math.inf
        assert parse_value("true") is True and parse_value("none") is None
        assert parse_value("#ff0000") == "#ff0000"

    def test_sweep_and_fixed(self) -> None:
        assert parse_sweep("blur:strength=0.05, 0.1") == ("blur", "strength", (0.05, 0.1))
        assert parse_sweep("DP-PIX:block-size=4,8") == ("dp-pix", "block_size", (4, 8))
        assert parse_fixed("dp-pix:m=4") == ("dp-pix", "m", 4)
        for bad in ("blur", "blur:strength", "blur:=1", ":strength=1", "blur:strength="):
            with pytest.raises(ValueError, match="METHOD:PARAM=VALUE"):
                parse_sweep(bad)


class TestSettings:
    def test_default_grid(self, tmp_path: Path) -> None:
        settings = EvaluationConfig(data=tmp_path).settings()
        labels = [s.label for s in settings]
        assert labels[0] == BASELINE
        assert len(settings) == 1 + 4 + 4 + 1 + 4 + 4
        assert "blur strength=0.05" in labels and "pixelate blocks=4" in labels
        assert "mask" in labels and "dp-blur epsilon=0.1" in labels
        dp = [s for s in settings if s.method == "dp-pix"]
        assert [s.value for s in dp] == [0.1, 0.5, 1.0, 5.0]
        assert all(s.parameter == "epsilon" for s in dp)

    def test_custom_sweep_and_fixed_parameters(self, tmp_path: Path) -> None:
        cfg = EvaluationConfig(
            data=tmp_path,
            methods=("pixelate", "dp-pix"),
            sweeps={"pixelate": ("block_size", (4, 16))},
            fixed={"dp-pix": {"m": 4, "blocks": 6}},
            epsilons=(1.0, 2.0),
        )
        settings = cfg.settings()
        assert [s.label for s in settings] == [
            "none",
            "pixelate block_size=4",
            "pixelate block_size=16",
            "dp-pix epsilon=1",
            "dp-pix epsilon=2",
        ]
        assert settings[3].params == {"m": 4, "blocks": 6, "epsilon": 1.0}
        d = cfg.to_dict()
        assert d["sweeps"] == {"pixelate": {"parameter": "block_size", "values": [4, 16]}}
        assert len(d["settings"]) == 5

    def test_fixing_the_swept_parameter_gives_one_setting(self, tmp_path: Path) -> None:
        cfg = EvaluationConfig(data=tmp_path, methods=("blur",), fixed={"blur": {"strength": 0.2}})
        assert [s.label for s in cfg.settings()] == ["none", "blur"]

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"methods": ("smudge",)}, ValueError, "unknown method"),
            ({"methods": ("blur", "blur")}, ValueError, "repeated"),
            ({"sweeps": {"blur": ("radius", (1,))}}, ValueError, "no parameter 'radius'"),
            ({"fixed": {"mask": {"size": 1}}}, ValueError, "no parameter 'size'"),
            ({"sweeps": {"pixelate": ("blocks", (0,))}}, ValueError, "blocks"),
            ({"sweeps": {"dp-pix": ("epsilon", (-1.0,))}}, PrivacyParameterError, "epsilon"),
            ({"methods": ("blur",), "sweeps": {"mask": ("color", ("#fff000",))}}, ValueError, "not evaluated"),
            ({"epsilons": (0.0,)}, ValueError, "positive"),
            ({"attacks": ("gan",)}, ValueError, "unknown attack"),
            ({"workers": 0}, ValueError, "workers"),
            ({"attack_image_size": 40}, ValueError, "multiple of 16"),
            ({"face_threshold": 1.5}, ValueError, "face_threshold"),
            ({"reid": "yes"}, ValueError, "reid"),
        ],
    )  # fmt: skip
    def test_invalid(self, tmp_path: Path, kwargs: dict[str, Any], error: type, match: str) -> None:
        with pytest.raises(error, match=match):
            EvaluationConfig(data=tmp_path, **kwargs)


# --------------------------------------------------------------------------- #
# region-only metrics on a padded crop equal those on the whole image
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("where", ["centre", "top-left corner", "right edge"])
def test_region_metrics_on_the_crop_match_the_whole_image(
    astronaut: np.ndarray, where: str
) -> None:
    from pixveil.evaluate.metrics import SSIM_MIN_SIDE
    from pixveil.protect import get_method
    from pixveil.types import Region

    boxes = {
        "centre": (180.0, 60.0, 270.0, 178.0),
        "top-left corner": (-10.0, -5.0, 60.0, 80.0),
        "right edge": (470.0, 200.0, 530.0, 290.0),
    }
    region = Region(boxes[where], "face")
    method = get_method("pixelate", blocks=5)
    protected = method.apply(astronaut, [region])
    mask = worker.protected_mask([region], 512, 512, shape="auto", margin=method.params.margin)
    assert mask.any() and (protected[~mask] == astronaut[~mask]).all()
    full = utility_report(astronaut, protected, mask, include_ms_ssim=False)
    rows, cols = worker._padded_bbox(mask, 3, SSIM_MIN_SIDE)
    crop = utility_report(
        astronaut[rows, cols], protected[rows, cols], mask[rows, cols], include_ms_ssim=False
    )
    for key, value in full.items():
        if math.isnan(value):
            assert math.isnan(crop[key])
        else:
            assert crop[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_padded_bbox_keeps_a_minimum_size() -> None:
    mask = np.zeros((20, 20), bool)
    mask[0, 19] = True
    rows, cols = worker._padded_bbox(mask, 3, 7)
    assert (rows.start, rows.stop) == (0, 7)
    assert (cols.start, cols.stop) == (13, 20)


# --------------------------------------------------------------------------- #
# a whole run on synthetic faces
# --------------------------------------------------------------------------- #
class TestRun:
    def test_layout_of_results(self, small_run: EvaluationResult) -> None:
        labels = [r.setting.label for r in small_run.results]
        assert labels == [
            "none",
            "blur strength=0.05",
            "blur strength=0.3",
            "mask",
            "dp-pix epsilon=0.5",
        ]
        assert small_run.dataset.layout == "identities" and len(small_run.dataset) == 6
        assert all(r.n_images == 6 for r in small_run.results)
        assert all(r.n_with_faces == 6 and r.n_regions == 6 for r in small_run.results)
        assert {"load", "originals", "protect_and_measure", "total"} <= set(small_run.timings)
        rows = small_run.rows()
        assert len(rows) == 5 and rows[0]["label"] == "none"
        assert {"whole_ssim", "region_l0", "reid_rank1", "detected_dlib", "cnn_top1"} <= set(
            rows[0]
        )

    def test_baseline(self, small_run: EvaluationResult) -> None:
        base = small_run.results[0]
        assert base.utility["ssim"] == 1.0 and base.utility["psnr"] == math.inf
        assert base.utility["l0"] == 0.0 and math.isnan(base.utility["ms_ssim"])
        assert base.reid is not None
        assert base.reid.same_photo == 1.0 and base.reid.n_gallery == 3 and base.reid.n_probes == 3
        assert base.reid.chance_rank1 == pytest.approx(1 / 3)
        assert base.detection == {"pixveil": 1.0, "dlib": 1.0}
        assert base.face_covered is None

    def test_utility_follows_the_strength(self, small_run: EvaluationResult) -> None:
        r = by_label(small_run)
        weak, strong, mask = r["blur strength=0.05"], r["blur strength=0.3"], r["mask"]
        assert (
            1.0
            > weak.utility_region["ssim"]
            > strong.utility_region["ssim"]
            > mask.utility_region["ssim"]
        )
        assert weak.utility["ssim"] > weak.utility_region["ssim"]  # the rest of the image is kept
        assert mask.utility_region["l0_fraction"] > 0.95
        assert 0 < mask.utility["l0_fraction"] < 0.6
        assert mask.utility["l0"] == mask.utility_region["l0"]  # only the region changed
        assert mask.n_region_images == 6

    def test_privacy_follows_the_strength(self, small_run: EvaluationResult) -> None:
        r = by_label(small_run)
        weak, mask = r["blur strength=0.05"], r["mask"]
        assert weak.reid is not None and mask.reid is not None
        assert mask.reid.same_photo == 0.0
        assert weak.reid.same_photo is not None and weak.reid.same_photo >= mask.reid.same_photo
        assert mask.detection["pixveil"] == 0.0 and mask.detection["dlib"] == 0.0
        assert all(x.face_covered == 1.0 for x in small_run.results[1:])

    def test_examples(self, small_run: EvaluationResult) -> None:
        assert len(small_run.examples) == 2
        for ex in small_run.examples:
            assert ex.original.shape == (160, 160, 3)
            assert set(ex.protected) == {r.setting.label for r in small_run.results[1:]}
            assert not np.array_equal(ex.protected["mask"], ex.original)

    def test_seeded_noise_is_reproducible(self, people: Path) -> None:
        def run(seed: int) -> EvaluationResult:
            return run_evaluation(
                EvaluationConfig(
                    data=people, methods=("dp-pix",), epsilons=(0.5,), seed=seed,
                    reid=False, detection=False, examples=1,
                )
            )  # fmt: skip

        a, b, c = run(1), run(1), run(2)
        assert _numbers(a.rows()) == _numbers(b.rows())
        label = "dp-pix epsilon=0.5"
        assert np.array_equal(a.examples[0].protected[label], b.examples[0].protected[label])
        assert not np.array_equal(a.examples[0].protected[label], c.examples[0].protected[label])

    def test_progress_events(self, people: Path) -> None:
        events: list[ProgressEvent] = []
        run_evaluation(
            EvaluationConfig(
                data=people, methods=("mask",), reid=False, detection=False, examples=0
            ),
            progress=events.append,
        )
        stages = [e.stage for e in events]
        assert stages[0] == "load" and "originals" in stages and "protect" in stages
        last_protect = [e for e in events if e.stage == "protect"][-1]
        assert last_protect.done == last_protect.total == 6

    def test_unreadable_image_is_skipped_with_a_note(
        self, tmp_path: Path, astronaut: np.ndarray
    ) -> None:
        root = make_people(tmp_path / "p", astronaut)
        (root / "ann" / "broken.jpg").write_bytes(b"\xff\xd8 broken")
        result = run_evaluation(
            EvaluationConfig(data=root, methods=("mask",), reid=False, detection=False, examples=0)
        )
        assert result.results[1].n_images == 6
        assert any("unreadable image skipped" in n and "broken.jpg" in n for n in result.notes)


def _numbers(rows: list[dict[str, Any]]) -> list[list[Any]]:
    def norm(v: Any) -> Any:
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return [[norm(v) for v in row.values()] for row in rows]


def test_flat_folder_skips_identity_metrics(tmp_path: Path, astronaut: np.ndarray) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for k, (dx, dy) in enumerate([(0, 0), (6, -4), (-5, 6)]):
        Image.fromarray(variant(astronaut, dx=dx, dy=dy)).save(flat / f"{k}.png")
    result = run_evaluation(
        EvaluationConfig(
            data=flat, methods=("mask", "blur"), sweeps={"blur": ("strength", (0.05,))}
        )
    )
    assert any("identity-based metrics" in n and "skipped" in n for n in result.notes)
    base, mask = result.results[0], by_label(result)["mask"]
    assert base.reid is not None and base.reid.rank1 is None and base.reid.same_photo == 1.0
    assert mask.reid is not None and mask.reid.same_photo == 0.0 and mask.reid.n_probes == 3


def test_attacks_unavailable_are_skipped_with_a_note(
    people: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        attack_runs,
        "attacks_available",
        lambda: {"cnn": "torch is missing", "reconstruction": None},
    )
    result = run_evaluation(
        EvaluationConfig(
            data=people,
            methods=("mask",),
            attacks=("cnn",),
            reid=False,
            detection=False,
            examples=0,
        )
    )
    assert all("cnn" not in r.attacks for r in result.results)
    assert any("attack 'cnn' skipped: torch is missing" in n for n in result.notes)


def test_attack_split_holds_out_a_fifth_of_each_identity() -> None:
    labels = ["a"] * 5 + ["b"] * 2 + ["c"]
    train, test = attack_runs.attack_split(labels, list(range(8)))
    assert test == [4, 6] and train == [0, 1, 2, 3, 5]  # c has a single image: left out
    train, test = attack_runs.attack_split([None] * 10, list(range(10)))
    assert test == [8, 9] and train == list(range(8))


@pytest.mark.slow
def test_attacks_run_on_tiny_settings(tmp_path: Path, astronaut: np.ndarray) -> None:
    available = attack_runs.attacks_available()
    if any(reason is not None for reason in available.values()):
        pytest.skip(f"attacks unavailable: {available}")
    root = make_people(tmp_path / "p", astronaut, per_identity=3)
    result = run_evaluation(
        EvaluationConfig(
            data=root,
            methods=("mask",),
            attacks=("cnn", "reconstruction"),
            cnn_epochs=2,
            reconstruction_epochs=1,
            attack_image_size=32,
            reid=False,
            detection=False,
            examples=0,
        )
    )
    base, mask = result.results
    assert set(base.attacks) == {"cnn"}  # nothing to reconstruct without protection
    assert set(mask.attacks) == {"cnn", "reconstruction"}
    cnn = mask.attacks["cnn"]
    assert cnn["n_classes"] == 3 and cnn["n_train"] == 6 and cnn["n_test"] == 3
    assert cnn["chance_top1"] == pytest.approx(1 / 3)
    rec = mask.attacks["reconstruction"]
    assert -1 <= rec["ssim_reconstructed"] <= 1 and rec["n_test"] == 3
    protected, rebuilt = result.reconstructions["mask"]
    assert protected.shape == rebuilt.shape == (3, 32, 32, 3)
    assert "original" in result.reconstructions


@pytest.mark.slow
def test_workers_give_the_same_results(people: Path, small_run: EvaluationResult) -> None:
    parallel = run_evaluation(EvaluationConfig(data=people, **{**SMALL, "workers": 2}))
    assert _numbers(parallel.rows()) == _numbers(small_run.rows())
    assert parallel.environment["workers"] == 2
    for a, b in zip(parallel.examples, small_run.examples, strict=True):
        assert all(np.array_equal(a.protected[k], b.protected[k]) for k in a.protected)


@pytest.mark.slow
@pytest.mark.shared
def test_lfw_ten_identities(shared_data: Path) -> None:
    """10 LFW identities x 2 photos, every method with its default sweep."""
    lfw = shared_data / "lfw"
    if not lfw.is_dir():
        pytest.skip("LFW is not available")
    result = run_evaluation(
        EvaluationConfig(data=lfw, identities=10, per_identity=2, seed=0, examples=1)
    )
    r = by_label(result)
    assert len(result.results) == 18
    base = r["none"]
    assert base.reid is not None and base.reid.rank1 is not None
    assert base.reid.n_gallery >= 8
    assert base.reid.rank1 >= 0.7  # dlib recognises unprotected LFW faces
    mask = r["mask"]
    assert mask.reid is not None and mask.reid.rank1 is not None
    assert mask.reid.rank1 <= 0.4 and mask.reid.same_photo == 0.0
    blur = [r[f"blur strength={s:g}"] for s in (0.05, 0.1, 0.2, 0.3)]
    region = [b.utility_region["ssim"] for b in blur]
    assert region == sorted(region, reverse=True)
    eps = [r[f"dp-pix epsilon={e:g}"].utility_region["ssim"] for e in (0.1, 0.5, 1, 5)]
    assert eps == sorted(eps)  # more budget, less noise, more similar
    assert all(0.5 < x.utility["ssim"] < 1 for x in result.results[1:])


@pytest.mark.parametrize(("n_a", "n_b", "dim"), [(30, 40, 10), (20, 25, 60), (12, 12, 12)])
def test_low_rank_frechet_distance_matches_the_reference(n_a: int, n_b: int, dim: int) -> None:
    from pixveil.evaluate.features import frechet_distance

    rng = np.random.default_rng(n_a + dim)
    a = rng.normal(size=(n_a, dim))
    b = rng.normal(1.0, 2.0, size=(n_b, dim)) @ rng.normal(size=(dim, dim))
    expected = frechet_distance(a, b)
    assert frechet_distance_low_rank(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance_low_rank(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance_low_rank(a[:1], b)
    with pytest.raises(ValueError, match="widths differ"):
        frechet_distance_low_rank(a, b[:, :-1])


@pytest.mark.slow
def test_fid_like_and_is_like_scores(people: Path) -> None:
    pytest.importorskip("torch")
    try:
        from pixveil.evaluate.features import weights_path

        weights_path()
    except ImportError:
        pytest.skip("the MobileNetV2 weights package is not installed")
    result = run_evaluation(
        EvaluationConfig(
            data=people, methods=("mask",), fid=True, reid=False, detection=False, examples=0
        )
    )
    base, mask = result.results
    assert base.fid_like == 0.0 and mask.fid_like is not None and mask.fid_like > 0
    assert base.is_like is not None and mask.is_like is not None
    assert 1.0 <= mask.is_like <= 6.0  # at most the images per split
    assert any("not Inception" in n for n in result.notes)


# --------------------------------------------------------------------------- #
# pooling repeated runs
# --------------------------------------------------------------------------- #
def test_pooled_runs_count_every_probe(people: Path, small_run: EvaluationResult) -> None:
    other = run_evaluation(EvaluationConfig(data=people, seed=1, **SMALL))
    pooled = pool_results([small_run, other])
    assert [r.setting.label for r in pooled.results] == [r.setting.label for r in small_run.results]
    assert pooled.notes[0] == "pooled over 2 runs (seeds 0, 1)"
    for k, r in enumerate(pooled.results):
        a, b = small_run.results[k], other.results[k]
        assert r.n_images == a.n_images + b.n_images
        assert a.reid is not None and b.reid is not None and r.reid is not None
        assert r.reid.n_probes == a.reid.n_probes + b.reid.n_probes
        assert r.reid.n_gallery == a.reid.n_gallery
        hits = a.reid.rank1 * a.reid.n_probes + b.reid.rank1 * b.reid.n_probes  # type: ignore[operator]
        assert r.reid.rank1 == pytest.approx(hits / r.reid.n_probes)
        assert r.reid.chance_rank1 == pytest.approx(1 / 3)
        want = (a.utility["ssim"] * a.n_images + b.utility["ssim"] * b.n_images) / r.n_images
        assert r.utility["ssim"] == pytest.approx(want)
    base = pooled.results[0]
    assert base.utility["psnr"] == math.inf and math.isnan(base.utility["ms_ssim"])
    # the deterministic settings are the same in both runs; the noisy one is not
    label = "dp-pix epsilon=0.5"
    ssim_a, ssim_b = (by_label(x)[label].utility["ssim"] for x in (small_run, other))
    assert by_label(other)[label].utility != by_label(small_run)[label].utility
    assert min(ssim_a, ssim_b) <= by_label(pooled)[label].utility["ssim"] <= max(ssim_a, ssim_b)
    assert pool_results([small_run]).results[1].utility == small_run.results[1].utility


def test_run_evaluation_over_seeds_pools_one_run_per_seed(
    people: Path, small_run: EvaluationResult
) -> None:
    events: list[ProgressEvent] = []
    config = EvaluationConfig(data=people, **SMALL)  # seed 0, as small_run
    pooled = run_evaluation(config, seeds=[0, 1], progress=events.append)
    single = run_evaluation(config, seeds=[1])
    assert single.config.seed == 1 and not any("pooled" in n for n in single.notes)
    expected = pool_results([small_run, single])
    assert _numbers(pooled.rows()) == _numbers(expected.rows())
    assert pooled.notes == expected.notes
    assert pooled.notes[0] == "pooled over 2 runs (seeds 0, 1)"
    runs = [(e.done, e.total, e.message) for e in events if e.stage == "run"]
    assert runs == [(0, 2, "seed 0"), (1, 2, "seed 1")]
    assert [e.stage for e in events].count("load") == 4  # two per run


@pytest.mark.parametrize(("seeds", "match"), [([], "at least one"), ([2, 2], "repeated")])
def test_run_evaluation_refuses_bad_seeds(people: Path, seeds: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_evaluation(EvaluationConfig(data=people, **SMALL), seeds=seeds)


def test_pooling_refuses_runs_with_other_settings(
    people: Path, small_run: EvaluationResult
) -> None:
    other = run_evaluation(
        EvaluationConfig(data=people, methods=("mask",), reid=False, detection=False, examples=0)
    )
    with pytest.raises(ValueError, match="different settings"):
        pool_results([small_run, other])
    with pytest.raises(ValueError, match="at least one"):
        pool_results([])


def test_parse_contexts() -> None:
    from pixveil.evaluate import parse_contexts

    assert parse_contexts("1.2, 2.0,full,2") == ("1.2", "2", "full")
    for bad in ("", "0.5", "whole", "nan"):
        with pytest.raises(ValueError, match="context"):
            parse_contexts(bad)
    with pytest.raises(ValueError, match="region must be one of"):
        EvaluationConfig(data=Path("x"), methods=("mask",), region="body")


@pytest.mark.slow
def test_informed_attacker_sees_what_its_context_shows(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    """Identities told apart only by a colour band at the photo's bottom, far from the
    face: under a mask the attacker that sees the face box x 1.2 is at chance, the one
    that sees the whole photo is not; masking the whole person hides the band too."""
    available = attack_runs.attacks_available()
    if available["cnn"] is not None:
        pytest.skip(f"cnn attack unavailable: {available}")
    colours = {"ann": (255, 0, 0), "bob": (0, 255, 0), "cyd": (0, 0, 255), "dee": (255, 255, 0)}
    shifts = [(0, 0), (8, -6), (-9, 5), (4, 7), (-3, -8)]
    root = tmp_path / "people"
    for name, colour in colours.items():
        for k, (dx, dy) in enumerate(shifts):
            image = variant(astronaut, dx=dx, dy=dy, size=256).copy()
            image[-40:, :] = colour
            path = root / name / f"{name}_{k + 1}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
    common = {
        "data": root,
        "methods": ("mask",),
        "attacks": ("cnn",),
        "cnn_epochs": 12,
        "attack_image_size": 32,
        "contexts": ("1.2", "full"),
        "reid": False,
        "detection": False,
        "examples": 0,
    }
    face = run_evaluation(EvaluationConfig(**common))
    mask = by_label(face)["mask"].attacks["cnn"]
    assert set(mask["contexts"]) == {"1.2", "full"} and mask["context"] == "1.2"
    assert mask["chance_top1"] == pytest.approx(1 / 4) and mask["n_test"] == 4
    assert mask["contexts"]["1.2"]["top1"] <= 0.5  # the masked face tells nothing
    assert mask["contexts"]["full"]["top1"] == 1.0  # the band gives every one away
    row = face.rows()[1]
    assert row["cnn_top1_context_full"] == 1.0
    person = run_evaluation(EvaluationConfig(**common, region="person"))
    hidden = by_label(person)["mask"].attacks["cnn"]["contexts"]["full"]["top1"]
    assert hidden <= 0.5


@pytest.mark.slow
def test_reconstruction_attack_runs_in_every_context(tmp_path: Path, astronaut: np.ndarray) -> None:
    """The reconstruction attack sees the same contexts as the CNN attack: in the whole
    photo a masked face is a small part of the view, so the protected view is far more
    like the original there than in the face box x 1.2 (where the mask fills it)."""
    available = attack_runs.attacks_available()
    if available["reconstruction"] is not None:
        pytest.skip(f"reconstruction attack unavailable: {available}")
    root = make_people(tmp_path / "p", astronaut, per_identity=3)
    result = run_evaluation(
        EvaluationConfig(
            data=root,
            methods=("mask",),
            attacks=("reconstruction",),
            reconstruction_epochs=1,
            attack_image_size=32,
            contexts=("1.2", "full"),
            reid=True,
            detection=False,
            examples=0,
        )
    )
    base, mask = result.results
    assert not base.attacks  # nothing to reconstruct without protection
    rec = mask.attacks["reconstruction"]
    assert rec["context"] == "1.2" and set(rec["contexts"]) == {"1.2", "full"}
    near, whole = rec["contexts"]["1.2"], rec["contexts"]["full"]
    assert rec["ssim_protected"] == near["ssim_protected"]  # the top level: first context
    assert whole["ssim_protected"] > near["ssim_protected"] + 0.2
    assert near["n_test"] == whole["n_test"] == 3
    # same-photo verification needs the face's place in the crop: face box x 1.2 only
    assert "same_photo_protected" in near and "same_photo_protected" not in whole
    row = mask.row()
    assert row["reconstruction_ssim_reconstructed_context_full"] == whole["ssim_reconstructed"]
    protected, rebuilt = result.reconstructions["mask"]  # the first context's
    assert protected.shape == rebuilt.shape == (3, 32, 32, 3)
