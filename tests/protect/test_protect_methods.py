"""Invariants every registered protection method must keep."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixveil.errors import ProtectionError
from pixveil.protect import METHODS, ProtectionMethod, available_methods, get_method
from pixveil.protect.base import SHAPES, region_geometry
from pixveil.types import Region

NAMES = available_methods()  # also imports the built-in modules so METHODS is filled
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="session")
def required(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The parameters without a default, per method (the others get none)."""
    logo = np.zeros((24, 40, 4), dtype=np.uint8)
    logo[..., 0] = np.linspace(0, 255, 40, dtype=np.uint8)[None, :]
    logo[..., 1] = np.linspace(255, 0, 24, dtype=np.uint8)[:, None]
    logo[..., 2] = 200
    logo[..., 3] = 255
    logo[:, :6, 3] = 0  # a transparent band and a half-transparent one
    logo[:6, :, 3] = 128
    path = tmp_path_factory.mktemp("logo") / "logo.png"
    Image.fromarray(logo, "RGBA").save(path)
    return {"image": {"image": str(path)}}


def build(name: str, required: dict[str, dict[str, Any]], **params: Any) -> ProtectionMethod:
    """``get_method(name, **params)`` with the method's required parameters filled in."""
    return get_method(name, **{**required.get(name, {}), **params})


def protected_mask(regions: list[Region], width: int, height: int, shape: str, margin: float):
    """Union of the pixels the methods may change (the grown regions' shape masks)."""
    union = np.zeros((height, width), dtype=bool)
    for r in regions:
        geom = region_geometry(r, width, height, shape=shape, margin=margin)
        if geom is not None:
            (x0, y0, x1, y1), mask, _ = geom
            union[y0:y1, x0:x1] |= mask
    return union


def fit(name: str, regions: list[Region]) -> list[Region]:
    """The regions with kinds the method handles (kind-specific methods refuse others)."""
    kinds = METHODS.get(name).kinds
    if kinds is None:
        return regions
    k = sorted(kinds)[0]
    return [r if r.kind in kinds else dataclasses.replace(r, kind=k) for r in regions]


def test_builtin_methods_registered() -> None:
    assert {"blur", "pixelate", "mask", "image", "dp-pix", "dp-blur"} <= set(NAMES)
    assert set(NAMES) == set(METHODS.names())


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(name: str, required: dict[str, dict[str, Any]]) -> Callable[..., ProtectionMethod]:
    """Builds the method ``name`` with these parameters (and its required ones)."""
    return lambda **params: build(name, required, **params)


def readme_guarantees() -> dict[str, str]:
    """Method -> guarantee column of the README's "Methods and guarantees" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Methods and guarantees", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([a-z0-9-]+)`.*", cells[0]) if len(cells) == 3 else None
        if match:
            rows[match.group(1)] = cells[2].replace("`", "")
    return rows


class TestDescriptions:
    """What ``pixveil methods`` prints: one plain line each for what and what is guaranteed."""

    @pytest.mark.parametrize("attr", ["summary", "guarantee"])
    def test_every_method_has_a_plain_one_line_text(self, name: str, attr: str) -> None:
        text = getattr(METHODS.get(name), attr)
        assert isinstance(text, str) and text.strip() == text and text
        assert "\n" not in text
        assert not re.search(r"`|\*\*|:[a-z]+:", text), f"markup in {name}.{attr}: {text!r}"

    def test_base_class_declares_both_empty(self) -> None:
        assert ProtectionMethod.summary == "" and ProtectionMethod.guarantee == ""

    def test_guarantees_match_the_readme(self, name: str) -> None:
        rows = readme_guarantees()
        assert len(rows) >= 5, "the README's methods table was not found"
        if name not in rows:
            pytest.skip(f"{name} is not in the README's table yet")
        assert METHODS.get(name).guarantee == rows[name]


class TestEveryMethod:
    def test_shape_dtype_kept_and_input_untouched(
        self, name: str, make: Callable[..., ProtectionMethod], astronaut: np.ndarray
    ) -> None:
        image = astronaut.copy()
        out = make().apply(image, fit(name, [Region((170, 40, 290, 190), "face")]))
        assert out.shape == astronaut.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(image, astronaut)
        assert out is not image

    def test_region_changes_and_outside_does_not(
        self, name: str, make: Callable[..., ProtectionMethod], astronaut: np.ndarray
    ) -> None:
        [region] = fit(name, [Region((170, 40, 290, 190), "face")])
        method = make()
        out = method.apply(astronaut, [region], rng=np.random.default_rng(0))
        inside = protected_mask([region], 512, 512, method.params.shape, method.params.margin)
        np.testing.assert_array_equal(out[~inside], astronaut[~inside])
        changed = np.abs(out.astype(int) - astronaut).sum(axis=2) > 0
        assert changed[inside].mean() > 0.5  # the face really is replaced

    def test_no_regions_is_identity(
        self, name: str, make: Callable[..., ProtectionMethod], astronaut: np.ndarray
    ) -> None:
        np.testing.assert_array_equal(make().apply(astronaut, []), astronaut)

    def test_region_outside_image_ignored(
        self, name: str, make: Callable[..., ProtectionMethod]
    ) -> None:
        image = np.full((20, 30, 3), 77, dtype=np.uint8)
        out = make().apply(image, fit(name, [Region((100, 100, 120, 130), "plate")]))
        np.testing.assert_array_equal(out, image)

    def test_deterministic_given_seed(
        self, name: str, make: Callable[..., ProtectionMethod], astronaut: np.ndarray
    ) -> None:
        regions = fit(
            name, [Region((170, 40, 290, 190), "face"), Region((0, 400, 90, 440), "plate")]
        )
        method = make()
        a = method.apply(astronaut, regions, rng=np.random.default_rng(9))
        b = method.apply(astronaut, regions, rng=np.random.default_rng(9))
        np.testing.assert_array_equal(a, b)

    def test_unseeded_runs(
        self, name: str, make: Callable[..., ProtectionMethod], astronaut: np.ndarray
    ) -> None:
        """Noise-adding methods draw fresh secure noise per run; the others are deterministic."""
        region = fit(name, [Region((170, 40, 290, 190), "face")])
        method = make()
        a, b = method.apply(astronaut, region), method.apply(astronaut, region)
        assert np.array_equal(a, b) != method.randomized

    def test_describe_round_trips(self, name: str, make: Callable[..., ProtectionMethod]) -> None:
        method = make()
        described = method.describe()
        assert described.pop("method") == name
        rebuilt = get_method(name, **described)
        assert rebuilt.params == method.params

    @pytest.mark.parametrize(
        ("field", "value"),
        [("shape", "circle"), ("margin", 0.5), ("margin", 5.0), ("margin", "1.3")],
    )
    def test_common_parameters_validated(
        self, name: str, make: Callable[..., ProtectionMethod], field: str, value: object
    ) -> None:
        with pytest.raises(ValueError, match=field):
            make(**{field: value})

    def test_unknown_parameter_refused(
        self, name: str, make: Callable[..., ProtectionMethod]
    ) -> None:
        with pytest.raises(TypeError):
            make(not_a_parameter=1)

    def test_params_frozen_and_keyword_only(
        self, name: str, make: Callable[..., ProtectionMethod]
    ) -> None:
        method = make()
        with pytest.raises(dataclasses.FrozenInstanceError):
            method.params.margin = 2.0  # type: ignore[misc]
        with pytest.raises(TypeError):
            type(method).Params("box")  # type: ignore[misc]

    def test_wrong_image_refused(self, name: str, make: Callable[..., ProtectionMethod]) -> None:
        with pytest.raises(ValueError):
            make().apply(np.zeros((8, 8), np.uint8), [])
        with pytest.raises(ValueError):
            make().apply(np.zeros((8, 8, 3), np.float32), [])

    def test_tiny_regions_and_borders(
        self, name: str, make: Callable[..., ProtectionMethod]
    ) -> None:
        image = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
        regions = [
            Region((0.2, 0.3, 0.9, 0.8), "face"),  # sub-pixel
            Region((-5, -5, 2, 3), "plate"),  # sticks out of the corner
            Region((6.5, 8.5, 7.5, 9.5), "text"),  # last pixel
        ]
        out = make(margin=1.0).apply(image, fit(name, regions), rng=np.random.default_rng(0))
        assert out.shape == image.shape


def test_failures_are_protection_errors(astronaut: np.ndarray) -> None:
    """A method that breaks raises ProtectionError, so the caller writes nothing."""
    method = get_method("blur")

    def broken(*args: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError("boom")

    method.replace = broken  # type: ignore[method-assign]
    with pytest.raises(ProtectionError, match="boom"):
        method.apply(astronaut, [Region((10, 10, 50, 50), "face")])


@st.composite
def scenes(draw: st.DrawFn) -> tuple[np.ndarray, list[Region], str, float]:
    h = draw(st.integers(4, 48))
    w = draw(st.integers(4, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    regions = []
    for _ in range(draw(st.integers(1, 3))):
        x0 = draw(st.floats(-0.5 * w, w - 0.5, allow_nan=False))
        y0 = draw(st.floats(-0.5 * h, h - 0.5, allow_nan=False))
        bw = draw(st.floats(0.5, float(w), allow_nan=False))
        bh = draw(st.floats(0.5, float(h), allow_nan=False))
        kind = draw(st.sampled_from(["face", "plate", "text"]))
        regions.append(Region((x0, y0, x0 + bw, y0 + bh), kind))
    shape = draw(st.sampled_from(SHAPES))
    margin = draw(st.floats(1.0, 4.0, allow_nan=False))
    return image, regions, shape, margin


@pytest.mark.parametrize("method_name", NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes(), seed=st.integers(0, 1000))
def test_pixels_outside_regions_never_change(
    method_name: str,
    required: dict[str, dict[str, Any]],
    scene: tuple[np.ndarray, list[Region], str, float],
    seed: int,
) -> None:
    image, regions, shape, margin = scene
    regions = fit(method_name, regions)
    method = build(method_name, required, shape=shape, margin=margin)
    out = method.apply(image, regions, rng=np.random.default_rng(seed))
    assert out.shape == image.shape and out.dtype == np.uint8
    inside = protected_mask(regions, image.shape[1], image.shape[0], shape, margin)
    np.testing.assert_array_equal(out[~inside], image[~inside])
    again = method.apply(image, regions, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(out, again)


def test_margin_grows_the_protected_area(astronaut: np.ndarray) -> None:
    region = Region((200, 100, 260, 160), "plate")
    small = get_method("mask", margin=1.0).apply(astronaut, [region])
    big = get_method("mask", margin=2.0).apply(astronaut, [region])
    n_small = int((small != astronaut).any(axis=2).sum())
    n_big = int((big != astronaut).any(axis=2).sum())
    assert n_big > 3.5 * n_small
    assert math.isclose(n_small, 60 * 60, rel_tol=0.05)
