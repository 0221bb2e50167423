"""The local batch with several images at once (``run_batch(workers=N)``, ``--workers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.batch import MAX_WORKERS, default_workers, file_rng
from pixveil.cli import app
from pixveil.config import AnonymizeConfig
from pixveil.pipeline import Anonymizer, run_batch
from pixveil.progress import ProgressEvent

DP = AnonymizeConfig(targets=("faces",), method="dp-pix", method_params={"epsilon": 1.0}, seed=7)


def _inputs(folder: Path, astronaut: np.ndarray) -> list[str]:
    """Five inputs, sorted: four photos with one face each and a truncated JPEG."""
    folder.mkdir(parents=True)
    variants = {
        "a.png": astronaut,
        "b.png": astronaut[:, ::-1],
        "d.png": np.ascontiguousarray(np.rot90(astronaut, 2)),
        "e.png": astronaut[40:, 30:],
    }
    for name, pixels in variants.items():
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / name)
    Image.fromarray(astronaut).save(folder / "c.jpg", quality=90)
    data = (folder / "c.jpg").read_bytes()
    (folder / "c.jpg").write_bytes(data[: len(data) // 3])
    return ["a.png", "b.png", "c.jpg", "d.png", "e.png"]


def _run(src: Path, out: Path, config: AnonymizeConfig, workers: int) -> tuple:
    results: list[str] = []
    events: list[ProgressEvent] = []
    report = run_batch(
        [src], out, config, workers=workers,
        on_result=lambda o: results.append(o.path.name), progress=events.append,
    )  # fmt: skip
    return report, results, [e.done for e in events if e.stage == "images"]


def test_several_workers_give_the_same_bytes_in_the_same_order(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    names = _inputs(tmp_path / "in", astronaut)
    one, one_results, one_done = _run(tmp_path / "in", tmp_path / "w1", DP, 1)
    three, three_results, three_done = _run(tmp_path / "in", tmp_path / "w3", DP, 3)
    for report, results, done in ((one, one_results, one_done), (three, three_results, three_done)):
        assert [o.path.name for o in report.outcomes] == names
        assert results == names  # on_result in input order, whatever finished first
        assert done == list(range(len(names) + 1))
        assert [o.path.name for o in report.failures] == ["c.jpg"]
        assert report.count("face") == 4
    for name in ("a.png", "b.png", "d.png", "e.png"):
        a = (tmp_path / "w1" / name).read_bytes()
        assert a == (tmp_path / "w3" / name).read_bytes(), name
        original = np.asarray(Image.open(tmp_path / "in" / name))
        protected = np.asarray(Image.open(tmp_path / "w3" / name))
        assert (original != protected).any(axis=2).mean() > 0.01, name  # the face changed
    assert not (tmp_path / "w3" / "c.jpg").exists() and not (tmp_path / "w3" / "c.png").exists()


def test_seeded_noise_comes_from_each_inputs_own_stream(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    _inputs(tmp_path / "in", astronaut)
    run_batch([tmp_path / "in"], tmp_path / "out", DP, workers=2)
    expected = Anonymizer(DP).protect(astronaut[:, ::-1].copy(), rng=file_rng(7, "b.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "b.png")), expected.pixels)


def test_a_failed_input_frees_its_name_for_one_running_beside_it(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # broken, same output name
    Image.fromarray(astronaut).save(src / "a.tif")
    report = run_batch([src], tmp_path / "out", AnonymizeConfig(targets=("faces",)), workers=2)
    assert [o.path.name for o in report.failures] == ["a.png"]
    assert "collide" not in (report.failures[0].error or "")
    assert (tmp_path / "out" / "a.png").is_file()


def test_workers_are_checked_and_defaulted(tmp_path: Path) -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="workers"):
            run_batch([tmp_path], tmp_path / "out", AnonymizeConfig(), workers=bad)  # type: ignore[arg-type]
    from pixveil._onnx import usable_cores

    assert default_workers(AnonymizeConfig(device="cpu")) == min(MAX_WORKERS, usable_cores())


def test_threads_reach_every_detector_that_takes_them() -> None:
    an = Anonymizer(AnonymizeConfig(targets=("faces", "plates")), threads=1)
    assert [d.threads for d in an.detectors] == [1, 1]  # type: ignore[attr-defined]
    assert Anonymizer(AnonymizeConfig(targets=("faces",))).detectors[0].threads is None  # type: ignore[attr-defined]


def test_cli_workers_on_the_local_engine(tmp_path: Path, astronaut: np.ndarray) -> None:
    _inputs(tmp_path / "in", astronaut)
    runner = CliRunner()
    args = ["anonymize", str(tmp_path / "in"), "--targets", "faces", "-q"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "--workers", "2"])
    assert res.exit_code == 1, res.output  # c.jpg is truncated
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "a.png", "b.png", "d.png", "e.png",
    ]  # fmt: skip
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "bad"), "--workers", "0"])
    assert res.exit_code == 2 and "--workers" in res.output
    assert not (tmp_path / "bad").exists()


def test_large_photos_run_alone_with_every_core(
    tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import pixveil.batch as batch

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "big.png")  # 512 px: "large" below
    for name in ("s1.png", "s2.png", "s3.png"):
        Image.fromarray(np.ascontiguousarray(astronaut[100:400, 100:400])).save(src / name)
    seen: dict[str, tuple[str, object]] = {}
    real = batch.process_input

    def recording(anonymizer, path, *args, **kw):  # type: ignore[no-untyped-def]
        seen[path.name] = (threading.current_thread().name, anonymizer.threads)
        return real(anonymizer, path, *args, **kw)

    monkeypatch.setattr(batch, "process_input", recording)
    monkeypatch.setattr(batch, "ALONE_SIDE", 400)
    report = run_batch([src], tmp_path / "out", AnonymizeConfig(targets=("faces",)), workers=2)
    assert report.n_ok == 4 and report.count("face") == 4
    assert seen["big.png"] == (threading.main_thread().name, None)  # alone, every core
    from pixveil._onnx import usable_cores

    for name in ("s1.png", "s2.png", "s3.png"):
        thread, threads = seen[name]
        assert thread.startswith("pixveil-image") and threads == max(1, usable_cores() // 2)


@pytest.mark.parametrize("dot_product", [True, False])
def test_the_run_file_names_the_model_each_target_ran(
    tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch, dot_product: bool
) -> None:
    import json

    from pixveil.detect import base, face_int8

    monkeypatch.setattr(face_int8, "has_int8_dot_product", lambda cpuinfo=None: dot_product)
    monkeypatch.setattr(base, "_cache", {})  # shared detectors: built for this CPU
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    res = CliRunner().invoke(
        app, ["anonymize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
              "--targets", "faces,plates", "--detect", "fast", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "out" / "pixveil-run.json").read_text())
    faces = run["summary"]["detectors"]["faces"]
    expected = "CenterFace (int8)" if dot_product else "CenterFace (int8, 7-bit weights)"
    assert faces["model"] == expected
    assert "precision='int8'" in faces["detector"] and "mode='cascade'" in faces["detector"]
    assert "PlateDetector" in run["summary"]["detectors"]["plates"]["detector"]


def test_at_most_workers_images_compute_at_once_and_none_while_waiting_on_the_disk(
    tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import pixveil.io.files as files
    from pixveil import _slots

    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        Image.fromarray(np.ascontiguousarray(np.roll(astronaut, 7 * i, axis=1))).save(
            src / f"{i}.png"
        )
    lock = threading.Lock()
    computing: set[int] = set()
    most = [0]
    in_fsync: list[bool] = []
    most_during_fsync = [0]
    real_protect = Anonymizer.protect
    real_fsync = files.os.fsync

    def protect(self: Anonymizer, *args: object, **kwargs: object) -> object:
        with lock:
            computing.add(threading.get_ident())
            most[0] = max(most[0], len(computing))
            if in_fsync:
                most_during_fsync[0] = max(most_during_fsync[0], len(computing))
        try:
            return real_protect(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                computing.discard(threading.get_ident())

    def fsync(fd: int) -> None:
        # a slow disk: the writer holds no compute slot while it waits
        assert getattr(_slots._local, "slot", None) is None
        with lock:
            in_fsync.append(True)
        time.sleep(0.3)
        real_fsync(fd)
        with lock:
            in_fsync.remove(True)

    monkeypatch.setattr(Anonymizer, "protect", protect)
    monkeypatch.setattr(files.os, "fsync", fsync)
    report = run_batch([src], tmp_path / "out", AnonymizeConfig(targets=("faces",)), workers=2)
    assert [o.path.name for o in report.outcomes] == [f"{i}.png" for i in range(8)]
    assert not report.failures and report.count("face") == 8
    assert most[0] == 2  # two images computed at once, never three
    # two images computed while a third waited on the disk: that wait idles no core
    assert most_during_fsync[0] == 2


def test_compute_slots_are_given_back_and_checked() -> None:
    import threading

    from pixveil._slots import ComputeSlots, waiting_on_disk

    with pytest.raises(ValueError, match="compute slots"):
        ComputeSlots(0)
    slots = ComputeSlots(1)
    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with slots.hold():
            entered.set()
            leave.wait(5)

    with slots.hold():
        with pytest.raises(RuntimeError, match="already holds"), slots.hold():
            pass
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.2)  # the only slot is taken
        waiting_on_disk()  # given up: the other thread computes now
        assert entered.wait(5)
    waiting_on_disk()  # no slot held: nothing happens
    assert not slots._free.acquire(timeout=0.05)  # the block's end did not give it twice
    leave.set()
    thread.join(5)
    assert slots._free.acquire(timeout=0.05)  # back once the other thread is done
