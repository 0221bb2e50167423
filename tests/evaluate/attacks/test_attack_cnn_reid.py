"""The CNN re-identification attack: validation, determinism, and that it can succeed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pixveil.errors import InputError, MissingDependencyError
from pixveil.evaluate.attacks import ReidAttackResult, cnn_reid_attack
from pixveil.progress import ProgressEvent

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy machine, tiny networks spend most of their time
    waiting for a second thread (the attacks use whatever ``torch.set_num_threads`` says)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ATT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "att_faces"


def pattern_set(
    n_classes: int, per_class: int, *, size: int = 16, noise: float = 20.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each class is a fixed random colour pattern; its images are noisy copies of it.

    The patterns do not depend on ``seed`` (only the noise does), so two calls
    with different seeds give new photos of the same identities.
    """
    prototypes = np.random.default_rng(1234).uniform(
        40, 215, size=(n_classes, size // 4, size // 4, 3)
    )
    rng = np.random.default_rng(seed)
    prototypes = prototypes.repeat(4, axis=1).repeat(4, axis=2)
    labels = np.repeat(np.arange(n_classes), per_class)
    images = prototypes[labels] + rng.normal(0, noise, size=(labels.size, size, size, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels


class TestValidation:
    def setup_method(self) -> None:
        self.x, self.y = pattern_set(3, 2)

    def test_wrong_shapes_and_dtypes(self) -> None:
        x, y = self.x, self.y
        with pytest.raises(InputError, match=r"\(N, H, W, 3\)"):
            cnn_reid_attack(x[..., 0], y, x, y)
        with pytest.raises(InputError, match="uint8"):
            cnn_reid_attack(x, y, x.astype(np.float32), y)
        with pytest.raises(InputError, match="no image"):
            cnn_reid_attack(x, y, x[:0], y[:0])
        with pytest.raises(InputError, match="numpy array"):
            cnn_reid_attack(x.tolist(), y, x, y)  # type: ignore[arg-type]

    def test_label_counts(self) -> None:
        x, y = self.x, self.y
        with pytest.raises(InputError, match="5 labels for 6 images"):
            cnn_reid_attack(x, y[:5], x, y)
        with pytest.raises(InputError, match="one-dimensional"):
            cnn_reid_attack(x, y, x, y[:, None])
        with pytest.raises(InputError, match="at least 2 identities"):
            cnn_reid_attack(x, np.zeros(6, dtype=int), x, np.zeros(6, dtype=int))
        with pytest.raises(InputError, match="absent from train_labels"):
            cnn_reid_attack(x, y, x, np.array([0, 1, 2, 3, 0, 1]))

    def test_string_labels_accepted_and_checked(self) -> None:
        names = np.array(["ann", "bob", "cyd"])[self.y]
        with pytest.raises(InputError, match="dan"):
            cnn_reid_attack(self.x, names, self.x[:1], np.array(["dan"]))

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("epochs", 0),
            ("epochs", 1.5),
            ("image_size", 24),
            ("image_size", 8),
            ("image_size", 512),
            ("batch_size", 0),
            ("seed", -1),
            ("learning_rate", 0.0),
            ("width", True),
        ],
    )
    def test_bad_options(self, option: str, value: object) -> None:
        with pytest.raises(ValueError, match=option):
            cnn_reid_attack(self.x, self.y, self.x, self.y, **{option: value})  # type: ignore[arg-type]

    def test_bad_progress(self) -> None:
        with pytest.raises(TypeError, match="progress"):
            cnn_reid_attack(self.x, self.y, self.x, self.y, progress="loud")  # type: ignore[arg-type]

    def test_missing_torch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "torch", None)
        with pytest.raises(MissingDependencyError, match=r"pixveil\[eval\]"):
            cnn_reid_attack(self.x, self.y, self.x, self.y, epochs=1, image_size=16)


class TestTraining:
    def test_deterministic_and_leaves_global_rng_alone(self) -> None:
        x, y = pattern_set(4, 5, noise=60.0)
        tx, ty = pattern_set(4, 3, noise=60.0, seed=1)
        before = torch.random.get_rng_state()
        kwargs = {"epochs": 3, "image_size": 16, "batch_size": 8, "width": 8}
        a = cnn_reid_attack(x, y, tx, ty, seed=3, **kwargs)
        b = cnn_reid_attack(x, y, tx, ty, seed=3, **kwargs)
        assert torch.equal(torch.random.get_rng_state(), before)
        assert dict(vars(a), train_seconds=0) == dict(vars(b), train_seconds=0)

    def test_learns_separable_identities(self) -> None:
        # Labels are not 0..n-1 on purpose: any sortable labels work.
        x, y = pattern_set(6, 6)
        tx, ty = pattern_set(6, 4, seed=1)
        events: list[ProgressEvent] = []
        r = cnn_reid_attack(
            x,
            y * 10 + 7,
            tx,
            ty * 10 + 7,
            epochs=12,
            image_size=16,
            batch_size=12,
            width=8,
            progress=events.append,
        )
        assert isinstance(r, ReidAttackResult)
        assert (r.n_classes, r.n_train, r.n_test, r.epochs) == (6, 36, 24, 12)
        assert r.chance_top1 == pytest.approx(1 / 6)
        assert r.chance_top5 == pytest.approx(5 / 6)
        assert r.top1 == 1.0
        assert r.top5 == 1.0
        assert r.train_seconds > 0
        assert [(e.stage, e.done, e.total) for e in events] == [
            ("cnn", k, 12) for k in range(1, 13)
        ]
        assert events[-1].message.startswith("cnn re-identification: epoch 12/12")
        assert set(events[-1].metrics) == {"loss", "accuracy"}

    def test_solid_mask_leaves_chance(self) -> None:
        # Every protected image is the same black square: one guess for all of them.
        x, y = pattern_set(5, 4)
        tx, ty = pattern_set(5, 4, seed=1)
        r = cnn_reid_attack(
            np.zeros_like(x), y, np.zeros_like(tx), ty, epochs=3, image_size=16, width=8
        )
        assert r.top1 == pytest.approx(r.chance_top1)
        assert r.top5 == pytest.approx(r.chance_top5)

    def test_chance_level_when_labels_are_unrelated(self) -> None:
        # Test images carry labels drawn independently of their content.
        x, y = pattern_set(5, 6)
        tx, _ = pattern_set(5, 20, seed=1)
        ty = np.random.default_rng(2).integers(0, 5, size=tx.shape[0])
        r = cnn_reid_attack(x, y, tx, ty, epochs=8, image_size=16, batch_size=10, width=8)
        assert r.top1 < 0.45  # chance is 0.2; 100 samples


def load_att(n_train: int) -> tuple[np.ndarray, ...]:
    from PIL import Image

    if not (ATT / "s1" / "1.pgm").is_file():
        pytest.skip("AT&T faces (../shared/data/att_faces) are not available")
    rng = np.random.default_rng(0)
    tr, trl, te, tel = [], [], [], []
    for s in range(1, 41):
        for j, k in enumerate(rng.permutation(10) + 1):
            with Image.open(ATT / f"s{s}" / f"{k}.pgm") as im:
                img = np.repeat(np.asarray(im.convert("L"))[:, :, None], 3, axis=2)
            (tr if j < n_train else te).append(img)
            (trl if j < n_train else tel).append(s)
    return np.stack(tr), np.array(trl), np.stack(te), np.array(tel)


@pytest.mark.slow
@pytest.mark.shared
def test_reidentifies_unprotected_att_faces() -> None:
    """Proof the attack can succeed: plain AT&T faces, 6 training / 4 test photos per subject."""
    train, train_labels, test, test_labels = load_att(6)
    r = cnn_reid_attack(train, train_labels, test, test_labels)
    assert (r.n_classes, r.n_train, r.n_test) == (40, 240, 160)
    assert r.top1 >= 0.9
    assert r.top5 >= 0.97
