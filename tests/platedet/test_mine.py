"""Hard negatives: mining, the file format, and how training draws them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pixveil.platedet import mine
from pixveil.platedet.data import LabelledPhoto
from pixveil.platedet.synth import FORMATS, Photo, SceneSynth, SynthConfig
from pixveil.types import Region


def _photo(tmp_path: Path) -> LabelledPhoto:
    path = tmp_path / "street.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
    return LabelledPhoto("eu", path, (100.0, 300.0, 220.0, 330.0), "AB123CD")


def _r(box: tuple[float, float, float, float], score: float = 0.9) -> Region:
    return Region(box, kind="plate", score=score)


class TestMinePhotos:
    def test_keeps_only_what_misses_the_plate(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        dets = [_r((102, 301, 218, 331)), _r((400, 50, 480, 80), 0.5), _r((10, 10, 60, 30), 0.7)]
        out = mine.mine_photos(lambda img: dets, [photo])
        # the plate is not a negative; the others are, best first
        assert out == {str(photo.path): [[10.0, 10.0, 60.0, 30.0], [400.0, 50.0, 480.0, 80.0]]}

    def test_second_opinion_vetoes_readable_plates(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        dets = [_r((400, 50, 480, 80)), _r((10, 10, 60, 30))]
        ocr = [_r((395, 45, 490, 85), 0.3)]  # the OCR path reads a plate there
        out = mine.mine_photos(lambda img: dets, [photo], second_opinion=lambda img: ocr)
        assert out == {str(photo.path): [[10.0, 10.0, 60.0, 30.0]]}

    def test_clean_photo_gives_nothing(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        assert mine.mine_photos(lambda img: [_r((100, 300, 220, 330))], [photo]) == {}


class TestFile:
    def test_round_trip(self, tmp_path: Path) -> None:
        data = {"photos": {"a.jpg": [[1, 2, 3, 4]]}, "synthetic": {"seed": 3, "indices": [5]}}
        mine.save(tmp_path / "h.json", data)
        assert mine.load(tmp_path / "h.json") == data

    @pytest.mark.parametrize(
        "bad",
        [
            [],
            {"photos": {"a.jpg": [[1, 2, 3]]}},
            {"photos": [], "synthetic": {}},
            {"synthetic": {"seed": "x", "indices": []}},
        ],
    )
    def test_rejects(self, tmp_path: Path, bad: object) -> None:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=r"hard-negative|boxes|synthetic"):
            mine.load(path)


class TestSynthDrawsThem:
    def test_no_negatives_leaves_the_stream_unchanged(self, tmp_path: Path) -> None:
        p = _photo(tmp_path)
        cfg = SynthConfig(size=(96, 96), p_hard=0.5)
        a = SceneSynth(cfg, photos=[Photo(p.path, p.box)], seed=4)
        b = SceneSynth(SynthConfig(size=(96, 96)), photos=[Photo(p.path, p.box)], seed=4)
        for i in range(4):
            assert np.array_equal(a.sample(i).image, b.sample(i).image)

    def test_crops_are_placed_around_a_negative(self, tmp_path: Path) -> None:
        # A photo that is black except a white negative patch far from its plate:
        # with p_hard = 1 every crop must show the patch.
        path = tmp_path / "black.png"
        img = np.zeros((600, 800, 3), np.uint8)
        img[40:80, 600:700] = 255
        cv2.imwrite(str(path), img)
        photo = Photo(path, (50.0, 500.0, 150.0, 530.0), ((600.0, 40.0, 700.0, 80.0),))
        cfg = SynthConfig(size=(128, 128), p_hard=1.0, p_keep=1.0, p_cover=0.0, effects=False)
        synth = SceneSynth(cfg, photos=[photo], seed=0)
        bright = [float((synth.sample(i).image > 200).mean()) for i in range(8)]
        assert min(bright) > 0.0

    def test_format_weights(self) -> None:
        w = tuple(1.0 if f == "us_vanity" else 0.0 for f in FORMATS)
        cfg = SynthConfig(size=(160, 160), format_weights=w, max_plates=3, effects=False)
        synth = SceneSynth(cfg, seed=2)
        fmts = {f for i in range(10) for f in synth.sample(i).formats}
        assert fmts == {"us_vanity"}

    @pytest.mark.parametrize(
        "w",
        [(1.0,), tuple(0.0 for _ in FORMATS), (-1.0, *(1.0 for _ in FORMATS[1:]))],
    )
    def test_rejects_weights(self, w: tuple[float, ...]) -> None:
        with pytest.raises(ValueError, match="format_weights"):
            SynthConfig(format_weights=w)


def test_training_replays_mined_samples(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from pixveil.platedet.train import TrainConfig, _batch

    synth = SceneSynth(SynthConfig(size=(64, 64)), seed=1)
    replay_stream = SceneSynth(SynthConfig(size=(64, 64)), seed=99)
    replay = (replay_stream, [7], 1.0)
    a = _batch(synth, 0, 4, replay=replay)[0]
    b = _batch(synth, 0, 4, replay=replay)[0]
    assert torch_equal(a, b)  # the same batch again (resumable)
    mined = replay_stream.sample(7).image.transpose(2, 0, 1)
    assert all(np.array_equal(a[k].numpy(), mined) for k in range(4))
    plain = _batch(synth, 0, 4)[0]
    assert not np.array_equal(plain[0].numpy(), mined)
    with pytest.raises(ValueError, match="p_hard"):
        TrainConfig(out=str(tmp_path), p_hard=2.0)
    with pytest.raises(ValueError, match="vanity_weight"):
        TrainConfig(out=str(tmp_path), vanity_weight=0.0)


def torch_equal(a: object, b: object) -> bool:
    import torch

    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    return bool(torch.equal(a, b))
