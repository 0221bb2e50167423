"""One Anonymizer serves several threads: same outputs as sequential use, for every method.

Per-call results travel in return values (``Anonymizer.protect`` -> ``ProtectedImage``,
``ProtectionMethod.protect`` -> ``Protected``), never in attributes of the shared
detector or method instances.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixveil.config import AnonymizeConfig
from pixveil.demo import street_scene
from pixveil.pipeline import Anonymizer
from pixveil.protect import available_methods


@pytest.fixture(scope="module")
def images(astronaut: np.ndarray) -> list[np.ndarray]:
    return [
        astronaut,
        street_scene(plate_text="PV 4821 K"),
        np.ascontiguousarray(astronaut[:, ::-1]),
        street_scene(plate_text="KL 7730 B"),
    ]


@pytest.fixture(scope="module")
def logo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logo") / "logo.png"
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[10:30, 15:45, 3] = 255  # an opaque red block in a transparent frame
    Image.fromarray(rgba).save(path)
    return path


def _params(method: str, logo: Path) -> dict[str, object]:
    return {"image": str(logo)} if method == "image" else {}


@pytest.mark.parametrize("method", available_methods())
def test_four_threads_give_the_sequential_outputs(
    method: str, images: list[np.ndarray], logo: Path
) -> None:
    config = AnonymizeConfig(
        targets=("faces", "plates"), method=method, method_params=_params(method, logo), seed=3
    )
    anonymizer = Anonymizer(config)
    sequential = [anonymizer.protect(im) for im in images]
    assert sum(len(r.detections) for r in sequential) >= 4
    jobs = images * 2  # every image twice, interleaved across the threads
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(anonymizer.protect, jobs))
    for i, result in enumerate(threaded):
        expected = sequential[i % len(images)]
        np.testing.assert_array_equal(result.pixels, expected.pixels)
        assert [r.box for r in result.detections] == [r.box for r in expected.detections]
        assert result.events == expected.events
        assert [o.details for o in result.outcomes] == [o.details for o in expected.outcomes]
    # the method kept nothing of any call
    for name, value in vars(anonymizer.method).items():
        assert not isinstance(value, (list, dict)) or name.startswith("_"), name
