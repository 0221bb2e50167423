"""Evaluation: how private and how useful protected images are.

The names below are importable from ``pixveil.evaluate`` directly; each is
loaded from its module on first use, so that ``import pixveil.evaluate.metrics``
stays light.

Modules
-------
spec
    What an evaluation measures: :class:`EvaluationConfig`, :class:`Setting`,
    the parsing of command-line values.
runner
    :func:`run_evaluation` (one run, or one per seed pooled) and its
    :class:`ProgressEvent`.
results
    :class:`EvaluationResult`, :class:`SettingResult`, :func:`pool_results`.
report
    :func:`write_report`: CSV, JSON and an HTML page.
worker
    The per-image work and the process pool (internals of the run).
attack_runs
    The attack stage of a run; :func:`attacks_available`.
datasets, metrics, privacy, reid, features
    Data sets, utility metrics, re-identification (dlib's ResNet recogniser;
    needs ``pip install 'pixveil[eval]'``), MobileNetV2 features and the
    FID-like / IS-like scores.
attacks
    The learned attacks (CNN re-identification, reconstruction) as functions
    on face crops.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixveil.evaluate.attack_runs import attacks_available
    from pixveil.evaluate.features import frechet_distance_low_rank
    from pixveil.evaluate.report import write_report
    from pixveil.evaluate.results import (
        UTILITY_KEYS,
        EvaluationResult,
        Example,
        SettingResult,
        pool_results,
    )
    from pixveil.evaluate.runner import ProgressCallback, ProgressEvent, run_evaluation
    from pixveil.evaluate.spec import (
        ATTACKS,
        BASELINE,
        DEFAULT_EPSILONS,
        DEFAULT_METHODS,
        DEFAULT_SWEEPS,
        EvaluationConfig,
        Setting,
        parse_contexts,
        parse_fixed,
        parse_list,
        parse_sweep,
        parse_value,
    )
    from pixveil.evaluate.worker import protected_mask

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ATTACKS",
            "BASELINE",
            "DEFAULT_EPSILONS",
            "DEFAULT_METHODS",
            "DEFAULT_SWEEPS",
            "EvaluationConfig",
            "Setting",
            "parse_contexts",
            "parse_fixed",
            "parse_list",
            "parse_sweep",
            "parse_value",
        ),
        "spec",
    ),
    **dict.fromkeys(
        ("UTILITY_KEYS", "EvaluationResult", "Example", "SettingResult", "pool_results"),
        "results",
    ),
    **dict.fromkeys(("ProgressCallback", "ProgressEvent", "run_evaluation"), "runner"),
    "attacks_available": "attack_runs",
    "frechet_distance_low_rank": "features",
    "protected_mask": "worker",
    "write_report": "report",
}

__all__ = [
    "ATTACKS",
    "BASELINE",
    "DEFAULT_EPSILONS",
    "DEFAULT_METHODS",
    "DEFAULT_SWEEPS",
    "UTILITY_KEYS",
    "EvaluationConfig",
    "EvaluationResult",
    "Example",
    "ProgressCallback",
    "ProgressEvent",
    "Setting",
    "SettingResult",
    "attacks_available",
    "frechet_distance_low_rank",
    "parse_contexts",
    "parse_fixed",
    "parse_list",
    "parse_sweep",
    "parse_value",
    "pool_results",
    "protected_mask",
    "run_evaluation",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Looked up on every access (not cached here), so that a name replaced in
    # its module (a test's monkeypatch) is seen through this package too.
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
