"""Tests of the shared ONNX Runtime layer (pixveil._onnx): devices, providers, the session cache."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixveil import _onnx
from pixveil._onnx import (
    DEVICES,
    ProviderChoice,
    available_devices,
    check_device,
    load_session,
    resolve_providers,
    session_options,
)
from pixveil.detect import get_detector
from pixveil.errors import ModelError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
COREML = "CoreMLExecutionProvider"
DML = "DmlExecutionProvider"

_keys = itertools.count()


def fresh_key() -> tuple[str, int]:
    """A cache key no other test uses (the session cache lives for the whole process)."""
    return ("test-onnx", next(_keys))


def add_one_model() -> bytes:
    """A tiny valid ONNX model: y = x + 1 on float32 vectors of any length."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])],
        "add_one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this ONNX Runtime report the CPU provider only, whatever the machine has."""
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])


class TestResolveProviders:
    def test_cpu(self) -> None:
        for available in ([CPU], [CUDA, CPU], [TRT, CUDA, OPENVINO, CPU]):
            assert resolve_providers("cpu", available=available) == ProviderChoice((CPU,), "cpu")

    def test_auto_prefers_cuda(self) -> None:
        choice = resolve_providers("auto", available=[TRT, CUDA, OPENVINO, CPU])
        assert choice == ProviderChoice((CUDA, CPU), "cuda", None)

    def test_auto_openvino_without_cuda(self) -> None:
        choice = resolve_providers("auto", available=[OPENVINO, CPU])
        assert choice == ProviderChoice((OPENVINO, CPU), "openvino", None)

    @pytest.mark.parametrize(
        "available", [[CPU], ["AzureExecutionProvider", CPU], [COREML, CPU], [TRT, CPU], []]
    )
    def test_auto_without_a_usable_accelerator_is_the_cpu_silently(
        self, available: list[str]
    ) -> None:
        assert resolve_providers("auto", available=available) == ProviderChoice((CPU,), "cpu")

    def test_cuda(self) -> None:
        assert resolve_providers("cuda", available=[TRT, CUDA, CPU]) == ProviderChoice(
            (CUDA, CPU), "cuda"
        )

    def test_cuda_missing_falls_back_with_a_message(self) -> None:
        choice = resolve_providers("cuda", available=["AzureExecutionProvider", CPU])
        assert choice.providers == (CPU,)
        assert choice.device == "cpu"
        assert choice.fallback == (
            "cuda requested but this onnxruntime has no CUDAExecutionProvider "
            "(install pixveil[gpu]); using the CPU"
        )

    def test_tensorrt_keeps_cuda_between(self) -> None:
        assert resolve_providers("tensorrt", available=[TRT, CUDA, CPU]).providers == (
            TRT,
            CUDA,
            CPU,
        )
        assert resolve_providers("tensorrt", available=[TRT, CPU]).providers == (TRT, CPU)

    @pytest.mark.parametrize("device", [d for d in DEVICES if d not in ("auto", "cpu")])
    def test_every_accelerator(self, device: str) -> None:
        everything = [
            TRT,
            CUDA,
            "MIGraphXExecutionProvider",
            "ROCMExecutionProvider",
            OPENVINO,
            DML,
            COREML,
            CPU,
        ]
        choice = resolve_providers(device, available=everything)
        assert choice.device == device
        assert choice.fallback is None
        assert choice.providers[-1] == CPU
        assert choice.providers[0] != CPU
        missing = resolve_providers(device, available=[CPU])
        assert missing.providers == (CPU,)
        assert missing.device == "cpu"
        assert missing.fallback is not None
        assert missing.fallback.startswith(f"{device} requested but")
        assert choice.providers[0] in missing.fallback
        assert "\n" not in missing.fallback

    @pytest.mark.parametrize("bad", ["gpu", "CUDA", "", " cpu", None, 0, ("cpu",)])
    def test_unknown_device(self, bad: object) -> None:
        with pytest.raises(ValueError, match=r"^device must be one of auto, cpu, cuda") as err:
            resolve_providers(bad, available=[CPU])  # type: ignore[arg-type]
        choices = str(err.value).split("; got ")[0]
        assert choices == "device must be one of " + ", ".join(DEVICES)  # no tuple syntax
        with pytest.raises(ValueError, match="device"):
            check_device(bad)

    def test_default_available_is_this_onnxruntime(self) -> None:
        import onnxruntime as ort

        assert resolve_providers("cpu") == ProviderChoice((CPU,), "cpu")
        auto = resolve_providers("auto")
        assert auto.fallback is None
        assert set(auto.providers) <= set(ort.get_available_providers())

    def test_available_devices(self) -> None:
        assert available_devices(available=[CPU]) == ("auto", "cpu")
        assert available_devices(available=[TRT, CUDA, CPU]) == ("auto", "cpu", "cuda", "tensorrt")
        assert set(available_devices()) >= {"auto", "cpu"}


class TestSessionOptions:
    def test_threads(self) -> None:
        assert session_options(3).intra_op_num_threads == 3
        assert session_options(None).intra_op_num_threads == 0  # ONNX Runtime's default
        opts = session_options(1)
        assert opts.inter_op_num_threads == 1
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


class TestLoadSession:
    def test_runs_the_model(self, cpu_only: None) -> None:
        loaded = load_session(fresh_key(), add_one_model, threads=1)
        out = loaded.session.run(None, {"x": np.arange(3, dtype=np.float32)})[0]
        np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
        assert loaded.providers == (CPU,)
        assert loaded.device == "cpu"
        assert loaded.requested == "cpu"
        assert loaded.fallback is None

    def test_cached_per_key_and_threads(self, cpu_only: None) -> None:
        calls: list[int] = []

        def build() -> bytes:
            calls.append(1)
            return add_one_model()

        key = fresh_key()
        a = load_session(key, build, threads=1)
        b = load_session(key, build, threads=1)
        assert b == a and b.session is a.session
        assert len(calls) == 1
        c = load_session(key, build, threads=2)
        assert c.session is not a.session
        assert len(calls) == 2
        d = load_session(fresh_key(), build, threads=1)
        assert d.session is not a.session
        # "auto" resolves to the same providers as "cpu" here: one session.
        auto = load_session(key, build, threads=1, device="auto")
        assert auto.session is a.session
        assert (auto.requested, auto.device, auto.fallback) == ("auto", "cpu", None)
        # So does a missing accelerator, but that call is told why.
        cuda = load_session(key, build, threads=1, device="cuda")
        assert cuda.session is a.session
        assert (cuda.requested, cuda.device) == ("cuda", "cpu")
        assert cuda.fallback is not None and "no CUDAExecutionProvider" in cuda.fallback
        assert len(calls) == 3

    def test_cached_per_providers(self, monkeypatch: pytest.MonkeyPatch) -> None:
        built: list[tuple[str, ...]] = []

        class Fake:
            def __init__(self, providers: tuple[str, ...]) -> None:
                self.providers = providers

            def get_providers(self) -> list[str]:
                return list(self.providers)

        def fake_build(model: object, opts: object, providers: tuple[str, ...]) -> Fake:
            built.append(providers)
            return Fake(providers)

        import onnxruntime as ort

        monkeypatch.setattr(_onnx, "_build", fake_build)
        monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
        key = fresh_key()
        on_gpu = load_session(key, add_one_model, threads=1, device="cuda")
        on_cpu = load_session(key, add_one_model, threads=1, device="cpu")
        assert on_gpu.session is not on_cpu.session
        assert built == [(CUDA, CPU), (CPU,)]
        assert (on_gpu.device, on_gpu.providers, on_gpu.fallback) == ("cuda", (CUDA, CPU), None)
        auto = load_session(key, add_one_model, threads=1, device="auto")
        assert auto.session is on_gpu.session
        assert built == [(CUDA, CPU), (CPU,)]

    def test_missing_provider_is_reported(self, cpu_only: None) -> None:
        loaded = load_session(fresh_key(), add_one_model, threads=1, device="cuda")
        assert loaded.providers == (CPU,)
        assert loaded.device == "cpu"
        assert loaded.requested == "cuda"
        assert loaded.fallback is not None
        assert "no CUDAExecutionProvider" in loaded.fallback

    def test_accelerator_that_fails_to_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import onnxruntime as ort

        real = _onnx._build

        def build(model: Any, opts: Any, providers: tuple[str, ...]) -> Any:
            if providers != (CPU,):
                raise RuntimeError("libcudnn.so.9: cannot open shared object file\nmore detail")
            return real(model, opts, providers)

        monkeypatch.setattr(_onnx, "_build", build)
        monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
        loaded = load_session(fresh_key(), add_one_model, threads=1, device="cuda")
        assert loaded.providers == (CPU,)
        assert loaded.device == "cpu"
        assert loaded.fallback == (
            "cuda requested but CUDAExecutionProvider failed to start "
            "(libcudnn.so.9: cannot open shared object file); using the CPU"
        )
        auto = load_session(fresh_key(), add_one_model, threads=1, device="auto")
        assert auto.device == "cpu"
        assert auto.fallback is None  # auto promises no accelerator

    def test_accelerator_dropped_silently_is_reported(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # ONNX Runtime drops a provider whose libraries are missing without raising.
        import onnxruntime as ort

        class Dropped:
            def get_providers(self) -> list[str]:
                return [CPU]

        monkeypatch.setattr(_onnx, "_build", lambda model, opts, providers: Dropped())
        monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
        loaded = load_session(fresh_key(), add_one_model, threads=1, device="cuda")
        assert loaded.device == "cpu"
        assert loaded.fallback is not None
        assert loaded.fallback.startswith("cuda requested but ONNX Runtime did not start")

    def test_corrupt_model_file(self, tmp_path: Path, cpu_only: None) -> None:
        path = tmp_path / "broken.onnx"
        path.write_bytes(b"\x08\x07this is not an ONNX model" * 10)
        key = fresh_key()
        with pytest.raises(ModelError, match=r"broken\.onnx") as err:
            load_session(key, lambda: path, threads=1)
        assert "\n" not in str(err.value)
        assert err.value.__cause__ is not None
        # Nothing broken is cached: the next call tries again.
        path.write_bytes(add_one_model())
        assert load_session(key, lambda: path, threads=1).device == "cpu"

    def test_corrupt_model_with_an_accelerator(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import onnxruntime as ort

        monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
        monkeypatch.setattr(_onnx, "_build", _fail_unless_cpu_then_corrupt)
        with pytest.raises(ModelError, match=r"the-model: .*bad protobuf"):
            load_session(fresh_key(), lambda: b"junk", threads=1, device="cuda", name="the-model")

    def test_bad_device_is_checked_before_building(self) -> None:
        def never() -> bytes:
            raise AssertionError("built")

        with pytest.raises(ValueError, match="device"):
            load_session(fresh_key(), never, threads=1, device="gpu")

    def test_build_errors_propagate(self) -> None:
        def missing() -> bytes:
            raise ModelError("no model here")

        with pytest.raises(ModelError, match="no model here"):
            load_session(fresh_key(), missing, threads=1)


def _fail_unless_cpu_then_corrupt(model: Any, opts: Any, providers: tuple[str, ...]) -> Any:
    if providers != (CPU,):
        raise RuntimeError("provider failed")
    raise RuntimeError("bad protobuf\nsecond line")


@pytest.mark.parametrize("name", ["faces", "plates", "text", "text-pii"])
def test_detectors_validate_device(name: str) -> None:
    with pytest.raises(ValueError, match="device must be one of"):
        get_detector(name, device="gpu")


def test_plate_detector_passes_the_device_to_both_models(cpu_only: None) -> None:
    from pixveil.detect.plates import PlateDetector

    det = PlateDetector(threads=1, device="cuda")
    assert det.device == "cuda"
    for runtime in (det.runtime, det._reader.runtime):
        assert runtime.requested == "cuda"
        assert runtime.device == "cpu"
        assert runtime.fallback is not None and "CUDAExecutionProvider" in runtime.fallback


def test_no_other_module_builds_sessions() -> None:
    """Every ONNX Runtime session goes through pixveil._onnx."""
    src = Path(_onnx.__file__).resolve().parent
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if p.name != "_onnx.py" and "InferenceSession(" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []
