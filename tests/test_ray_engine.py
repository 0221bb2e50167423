"""The Ray engine (``--engine ray``): same outputs as the local engine, resumable, fail closed.

One local Ray session (2 CPUs) serves the whole module: starting Ray takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pixveil.batch import run_batch
from pixveil.cli import app
from pixveil.config import AnonymizeConfig
from pixveil.io.files import is_temp_name

ray = pytest.importorskip("ray")

from pixveil.ray_engine import MANIFEST_FILE, RunManifest, run_batch_ray  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # Ray Data's own DataContext trips over its own deprecations (ray 2.60)
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray\\..*"),
]
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def ray_session() -> Iterator[str]:
    """A local Ray with 2 CPUs for the module; yields its address."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _files(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` but the run records, by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (MANIFEST_FILE, "pixveil-run.json")
    }


def _records(out: Path) -> list[dict]:
    lines = (out / MANIFEST_FILE).read_text().splitlines()
    return [r for r in map(json.loads, lines) if "run" not in r]


def _astronauts(folder: Path, astronaut: np.ndarray, n: int) -> list[Path]:
    """``n`` different pictures of one face (crops, flips), in two subfolders."""
    paths = []
    for i in range(n):
        img = astronaut[i % 7 * 8 :, i % 5 * 6 :]
        img = img[:, ::-1] if i % 2 else img
        p = folder / f"s{i % 2}" / f"a{i:02d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(img)).save(p, quality=90)
        paths.append(p)
    return paths


def _clip(path: Path, astronaut: np.ndarray) -> Path | None:
    """A 6-frame H.264 clip of the astronaut (None without PyAV)."""
    try:
        import av
    except ImportError:
        return None
    frame = np.ascontiguousarray(astronaut[::2, ::2])
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 256, 256, "yuv420p"
        v.options = {"preset": "ultrafast"}
        for _ in range(6):
            for packet in v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(packet)
        for packet in v.encode():
            c.mux(packet)
    return path


def _map_workers() -> list[int]:
    """Process ids of this module's Ray Data actors (their title names the class).

    Only the workers of the Ray this process started (children of its raylet, a
    child of this process): another Ray on the machine is left alone.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"MapWorker(MapBatches(_Worker))" not in (entry / "cmdline").read_bytes():
                continue
            ours = _parent(_parent(int(entry.name))) == os.getpid()
        except (OSError, ValueError, IndexError):
            continue
        if ours:
            pids.append(int(entry.name))
    return pids


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _wait_no_workers(timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while _map_workers() and time.monotonic() < end:
        time.sleep(0.2)


@pytest.fixture(scope="module")
def listed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A list file of 10 LFW faces and 6 street photos with plates (read in place)."""
    faces = sorted((shared_data / "lfw").glob("*/*.jpg"))[:10]
    plates = sorted((shared_data / "plates").glob("*/*.jpg"))[:6]
    listing = tmp_path_factory.mktemp("list") / "inputs.txt"
    listing.write_text("\n".join(str(p) for p in faces + plates) + "\n")
    return listing


@pytest.mark.shared
class TestSameAsLocalEngine:
    @pytest.mark.parametrize("method", ["blur", "pixelate", "mask"])
    def test_deterministic_methods_give_the_same_bytes(
        self, ray_session: str, listed: Path, tmp_path: Path, method: str
    ) -> None:
        config = AnonymizeConfig(method=method)
        local = run_batch([listed], tmp_path / "local", config)
        remote = run_batch_ray([listed], tmp_path / "ray", config, workers=2)
        assert local.n_ok == remote.n_ok == 16
        expected = _files(tmp_path / "local")
        assert len(expected) == 16
        assert _files(tmp_path / "ray") == expected
        # the workers' machines choose their own models: only the local report names them
        summary = {k: v for k, v in local.to_dict().items() if k != "detectors"}
        assert remote.to_dict() == {**summary, "stale_temp_files_removed": 0}
        # lfw/<name>/x.jpg and plates/<region>/y.jpg keep their folders below the common one
        assert any(name.startswith("lfw/") for name in expected)

    def test_dp_method_finds_the_same_regions(
        self, ray_session: str, listed: Path, tmp_path: Path
    ) -> None:
        config = AnonymizeConfig(method="dp-pix", method_params={"epsilon": 1.0}, seed=5)
        local = run_batch([listed], tmp_path / "local", config)
        remote = run_batch_ray([listed], tmp_path / "ray", config, workers=2)
        assert [o.path for o in remote.outcomes] == [o.path for o in local.outcomes]
        found = 0
        for a, b in zip(local.outcomes, remote.outcomes, strict=True):
            assert a.detections is not None and b.detections is not None
            assert a.detections.to_dict() == b.detections.to_dict()
            found += len(a.detections)
        assert found >= 16
        # per-input seeded noise: a second run gives the same bytes
        again = run_batch_ray([listed], tmp_path / "again", config, workers=1)
        assert again.n_ok == 16
        assert _files(tmp_path / "again") == _files(tmp_path / "ray")


def test_missing_and_corrupt_files_fail_alone_as_in_the_local_engine(
    ray_session: str, tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths: the workers' working folder is not ours
    good = _astronauts(tmp_path / "in", astronaut, 3)
    corrupt = tmp_path / "in" / "cut.jpg"
    corrupt.write_bytes(good[0].read_bytes()[:600])  # a JPEG cut short
    not_image = tmp_path / "in" / "notes.png"
    not_image.write_text("not a picture")
    listing = tmp_path / "inputs.txt"
    names = ["in/s0/a00.jpg", "in/missing.jpg", "in/cut.jpg", "in/notes.png", *good[1:]]
    video = _clip(tmp_path / "in" / "clip.mp4", astronaut)  # one task, like an image
    if video is not None:
        names.append(video)
    listing.write_text("# inputs\n" + "\n".join(map(str, names)) + "\n\n")
    results = {}
    for engine in ("local", "ray"):
        out = f"out-{engine[0]}"  # names of one length: the same table widths
        res = runner.invoke(
            app, ["anonymize", "inputs.txt", "-o", out, "-t", "faces", "--engine", engine]
        )
        summary = res.output[res.output.index("pixveil summary") :]
        results[engine] = (res.exit_code, summary.replace(out, "OUT"))
    assert results["ray"] == results["local"]
    assert results["ray"][0] == 1  # some input failed
    out = tmp_path / "out-r"
    assert _files(out).keys() == _files(tmp_path / "out-l").keys()
    written = ["s0/a00.jpg", "s0/a02.jpg", "s1/a01.jpg"]
    if video is not None:
        written.insert(0, "clip.mp4")
    assert sorted(_files(out)) == written
    by_input = {Path(r["input"]).name: r for r in _records(out)}
    assert len(by_input) == len(names)
    if video is not None:
        assert by_input["clip.mp4"]["status"] == "ok"
        assert by_input["clip.mp4"]["detections"] == {"face": 1}  # one face track
    for name in ("missing.jpg", "cut.jpg", "notes.png"):
        r = by_input[name]
        assert r["status"] == "failed" and r["output"] is None and r["sha256"] is None
        assert r["error"] and "\n" not in r["error"]
    ok = by_input["a00.jpg"]
    assert ok["status"] == "ok" and ok["detections"] == {"face": 1}
    assert ok["sha256"] == __import__("hashlib").sha256(Path(ok["output"]).read_bytes()).hexdigest()


def test_kill_the_driver_then_resume_gives_the_uninterrupted_outputs(
    ray_session: str, tmp_path: Path, astronaut: np.ndarray
) -> None:
    _astronauts(tmp_path / "in", astronaut, 40)
    config = AnonymizeConfig(method="pixelate")
    whole = run_batch_ray([tmp_path / "in"], tmp_path / "whole", config, workers=2)
    assert whole.n_ok == 40
    expected = _files(tmp_path / "whole")

    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from pixveil.cli import main; sys.argv[0] = 'pixveil'; main()",
        "anonymize",
        str(tmp_path / "in"),
        "-o",
        str(out),
        "-m",
        "pixelate",
        "--engine",
        "ray",
        "--ray-address",
        ray_session,
        "--workers",
        "2",
        "-q",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and driver.poll() is None:
            if (out / MANIFEST_FILE).is_file() and len(_records(out)) >= 1:
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the run ended before it could be killed"
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait()
    before = _records(out)
    assert 1 <= len(before) < 40
    _wait_no_workers()  # Ray ends the killed driver's workers

    report = run_batch_ray([tmp_path / "in"], out, config, workers=2, resume=True)
    assert report.n_ok + len(report.resumed) == 40
    assert len(report.resumed) == len(before)
    assert report.failures == []
    assert _files(out) == expected  # nothing missing, nothing extra, nothing partial
    assert not [p for p in out.rglob("*") if is_temp_name(p.name)]
    done = [r["input"] for r in _records(out)]
    assert len(done) == len(set(done)) == 40  # each input recorded once

    again = run_batch_ray([tmp_path / "in"], out, config, workers=2, resume=True)
    assert again.outcomes == [] and len(again.resumed) == 40
    with pytest.raises(ValueError, match="other options"):
        run_batch_ray([tmp_path / "in"], out, AnonymizeConfig(method="blur"), resume=True)


def test_a_killed_worker_is_retried_without_loss_or_duplicate(
    ray_session: str, tmp_path: Path, astronaut: np.ndarray
) -> None:
    _astronauts(tmp_path / "in", astronaut, 24)
    config = AnonymizeConfig(method="mask", targets=("faces",))
    run_batch([tmp_path / "in"], tmp_path / "local", config)
    expected = _files(tmp_path / "local")
    killed: list[int] = []

    def kill_one(_outcome: object) -> None:
        if not killed:
            pids = _map_workers()
            assert pids
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    report = run_batch_ray(
        [tmp_path / "in"], tmp_path / "out", config, workers=2, on_result=kill_one
    )
    assert killed
    assert report.n_ok == 24 and report.failures == []
    assert _files(tmp_path / "out") == expected
    done = [r["input"] for r in _records(tmp_path / "out")]
    assert len(done) == len(set(done)) == 24


def test_cli_refuses_ray_options_without_the_ray_engine(tmp_path: Path) -> None:
    res = runner.invoke(app, ["anonymize", str(tmp_path), "-o", str(tmp_path / "o"), "--resume"])
    assert res.exit_code == 2
    assert re.search(r"--resume needs --engine ray", res.output)


def test_manifest_skips_a_line_cut_short_and_ends_it_before_appending(tmp_path: Path) -> None:
    config = AnonymizeConfig()
    manifest = RunManifest(tmp_path / MANIFEST_FILE)
    head = json.dumps({"run": {"engine": "ray", "config": config.to_dict()}})
    ok = {"input": "a.jpg", "output": "o/a.jpg", "status": "ok", "sha256": "ab"}
    cut = json.dumps({"input": "b.jpg", "output": "o/b.jpg", "status": "ok", "sha256": "cd"})
    manifest.path.write_text(f"{head}\n{json.dumps(ok)}\n{cut[:30]}")
    done = manifest.completed(config)
    assert list(done) == ["o/a.jpg"] and done["o/a.jpg"].sha256 == "ab"
    manifest.open(append=True, header={"engine": "ray", "config": config.to_dict()})
    manifest.write({"input": "b.jpg", "output": "o/b.jpg", "status": "failed", "sha256": None})
    manifest.close()
    lines = manifest.path.read_text().splitlines()
    assert lines[2] == cut[:30] and json.loads(lines[3])["run"]["engine"] == "ray"
    assert list(manifest.completed(config)) == ["o/a.jpg"]
    with pytest.raises(ValueError, match="other options"):
        manifest.completed(AnonymizeConfig(method="mask"))
