"""The batch on a Ray cluster (``--engine ray``): Ray Data, resumable, each output once.

:func:`run_batch_ray` does what :func:`pixveil.batch.run_batch` does — same
inputs, same output names, the same per-file step
(:func:`pixveil.batch.process_input` with a :class:`~pixveil.pipeline.Anonymizer`),
the same :class:`~pixveil.batch.BatchReport` — but the files are processed by a
pool of Ray actors through Ray Data: the driver plans every output, the actors
(one :class:`~pixveil.pipeline.Anonymizer`, i.e. one set of models, per actor,
loaded once) read, detect, protect and write, and the driver records each result
as it arrives.  A video is one task, like an image.

Exactly once
------------
* Every output is written atomically (a hidden temporary file renamed over the
  destination, :mod:`pixveil.io.files`): a file under an output name is complete.
* The driver appends one JSON line per finished input to the run manifest
  ``pixveil-manifest.jsonl`` in the output folder as soon as the result arrives:
  ``input``, ``output``, ``status`` (``ok``/``failed``), ``error``,
  ``detections`` (count per kind) and ``sha256`` (of the output file).  Each run
  starts with a ``{"run": {...}}`` line holding the engine and the resolved config.
* ``resume=True`` skips the inputs whose manifest line says ``ok`` and whose
  output exists with the recorded hash; every other input is processed again (an
  output written but not yet recorded when the run was killed is rewritten, under
  the same name).  A resumed run must use the same config as the run it resumes.
* A worker that dies is restarted by Ray and its task retried (Ray Data's actor
  pool retries by default); the retried task writes the same name again, and the
  driver records the one result it receives.

With a seed, each input's noise comes from its own generator, seeded by the seed
and the output's name, as in the local engine: a resumed run, a different
worker count or the local engine gives the same bytes.  Without a seed the noise is
cryptographic, and an input processed twice (a retried task, a resumed run) is
released twice, the second output replacing the first.

Inputs and outputs are paths that every worker can open: local paths on one
machine, a shared file system on a cluster (see ``docs/cluster.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import pickle
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixveil.batch import (
    BatchReport,
    ImageOutcome,
    OutputPlanner,
    PlannedOutput,
    collect_inputs,
    failed_outcome,
    file_rng,
    process_input,
)
from pixveil.config import AnonymizeConfig
from pixveil.errors import MissingDependencyError, OutputError, PixveilError
from pixveil.io import ProtectedPaths, clean_stale_temps
from pixveil.io.files import is_temp_name
from pixveil.progress import ProgressCallback, ProgressEvent, check_progress, notify

__all__ = ["MANIFEST_FILE", "RunManifest", "file_sha256", "run_batch_ray"]

#: The run manifest a Ray run writes into its output folder (JSON lines).
MANIFEST_FILE = "pixveil-manifest.jsonl"

#: At most this many inputs per Ray Data block (one actor task); results reach
#: the driver, and the manifest, one block at a time.
MAX_BLOCK_ROWS = 8


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _config_key(config: AnonymizeConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, default=str)


@dataclass(frozen=True)
class _Done:
    input: str
    sha256: str


class RunManifest:
    """The JSON-lines record of a Ray run (see the module notes).

    Parameters
    ----------
    path : Path
        The manifest file, inside the output folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def completed(self, config: AnonymizeConfig) -> dict[str, _Done]:
        """Output path -> the input and hash recorded for it by an earlier run (status ok).

        Raises
        ------
        ValueError
            If an earlier run recorded here used another config.
        """
        done: dict[str, _Done] = {}
        key = _config_key(config)
        for record in self.records():
            run = record.get("run")
            if isinstance(run, dict):
                if json.dumps(run.get("config"), sort_keys=True, default=str) != key:
                    raise ValueError(
                        f"--resume: the run recorded in {self.path} used other options; "
                        "run again with the same options, or without --resume to start over"
                    )
                continue
            out = record.get("output")
            if not isinstance(out, str):
                continue
            if record.get("status") == "ok" and isinstance(record.get("sha256"), str):
                done[out] = _Done(str(record.get("input")), record["sha256"])
            else:
                done.pop(out, None)
        return done

    def records(self) -> Iterator[dict[str, Any]]:
        """Every complete line (a line cut short by a killed driver is ignored)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise OutputError(
                f"cannot read the run manifest ({exc.strerror})", path=self.path
            ) from exc
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record

    def open(self, *, append: bool, header: dict[str, Any]) -> None:
        """Start writing (a new manifest, or after the lines of the run resumed)."""
        flags = (
            os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        flags |= os.O_APPEND if append else os.O_TRUNC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise OutputError(
                f"cannot write the run manifest ({exc.strerror or exc})", path=self.path
            ) from exc
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        if append and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a line cut short: end it, it is ignored on reading
                    self._fh.write("\n")
        self.write({"run": header})

    def write(self, record: dict[str, Any]) -> None:
        """Append one line and hand it to the system (it survives a killed driver)."""
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def manifest_record(outcome: ImageOutcome, sha256: str | None) -> dict[str, Any]:
    """The manifest line of one input."""
    if outcome.video is not None:
        found = {k: int(v) for k, v in outcome.video.tracks.items()}
    elif outcome.detections is not None:
        found = dict(
            sorted({r.kind: outcome.detections.count(r.kind) for r in outcome.detections}.items())
        )
    else:
        found = {}
    return {
        "input": str(outcome.path),
        "output": None if outcome.output is None else str(outcome.output),
        "status": "ok" if outcome.ok else "failed",
        "error": outcome.error,
        "detections": found,
        "sha256": sha256,
    }


class _Worker:
    """One Ray actor: an Anonymizer built once, then one input after another."""

    def __init__(
        self, config: AnonymizeConfig, out: str, inputs: list[str], threads: int = 1
    ) -> None:
        # a worker holds one CPU of the cluster: ONNX Runtime's default (one thread
        # per core of the machine) would make the workers of one machine compete
        from pixveil.pipeline import Anonymizer

        self.anonymizer = Anonymizer(config, threads=threads)
        self.out = Path(out)
        self.inputs = [Path(p) for p in inputs]
        self.protected = ProtectedPaths(self.inputs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [self.one(*args) for args in zip(*(batch[k] for k in _TASK_KEYS), strict=True)]
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "outcome": np.array([r[0] for r in results], dtype=object),
            "record": np.array([r[1] for r in results], dtype=object),
        }

    def one(self, index: Any, path: str, output: str, fmt: str) -> tuple[bytes, str]:
        src = Path(path)
        planned = PlannedOutput(Path(output), Path(output), str(fmt))
        rel = os.path.relpath(output, self.out)
        outcome = process_input(
            self.anonymizer,
            src,
            planned,
            root=self.out,
            protected_paths=self.inputs,
            protected=self.protected,
            rng=file_rng(self.anonymizer.config.seed, rel),
        )
        digest = None
        if outcome.output is not None:
            try:
                digest = file_sha256(outcome.output)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(outcome.output)
                outcome = failed_outcome(src, exc)
        record = json.dumps(manifest_record(outcome, digest), default=str)
        return pickle.dumps(outcome), record


_TASK_KEYS = ("index", "input", "output", "format")


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependencyError("ray[data]", "ray") from exc
    return ray


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join ``address`` or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if address is None:  # a new Ray, even when a cluster of `ray start` runs here
        options.update(address="local", num_cpus=workers)
    else:
        options["address"] = address
    ray.init(**options)
    return True


def run_batch_ray(
    inputs: Sequence[Path | str],
    out_dir: Path | str,
    config: AnonymizeConfig | None = None,
    *,
    address: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    on_result: Callable[[ImageOutcome], None] | None = None,
    progress: ProgressCallback | None = None,
    output_file: Path | str | None = None,
) -> BatchReport:
    """Protect every input (files, folders, ``.txt`` lists of files) into ``out_dir`` on Ray.

    Parameters
    ----------
    inputs, out_dir, config, on_result, progress
        As :func:`pixveil.batch.run_batch`; ``on_result`` sees the outcomes in the
        order they finish, the report lists them in input order.
    address : str, optional
        A running Ray cluster (``"auto"``, ``"ray://host:10001"``...); None starts
        a local Ray on this machine.  When Ray is already initialised in this
        process, that session is used.
    workers : int, optional
        Actors (each one CPU and one set of models); default one per CPU of the
        cluster.
    resume : bool
        Skip the inputs that an earlier run into ``out_dir`` completed (see the
        module notes).  Assumes that run has stopped: its temporary files are removed.
    output_file
        Not supported (a Ray run writes into a folder); must be None.

    Returns
    -------
    BatchReport
        As the local engine's, with ``resumed`` listing the inputs skipped.

    Raises
    ------
    ValueError
        With ``output_file``, ``config.dry_run``, ``workers < 1``, or a resumed run
        whose config differs.
    MissingDependencyError
        Without ``ray[data]`` (``pip install 'pixveil[ray]'``).
    """
    config = config or AnonymizeConfig()
    if output_file is not None:
        raise ValueError("--engine ray writes into an output folder; give -o a folder")
    if config.dry_run:
        raise ValueError("--engine ray does not do --dry-run; use the local engine")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    ray = _import_ray()
    out = Path(out_dir)
    images, skipped = collect_inputs([Path(i) for i in inputs], exclude=out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError("the output folder is a file or a symbolic link", path=out)
    out.mkdir(parents=True, exist_ok=True)
    stale = clean_stale_temps(out, min_age=0.0 if resume else 60.0)
    manifest = RunManifest(out / MANIFEST_FILE)
    done = manifest.completed(config) if resume else {}

    report = BatchReport(skipped=skipped, targets=tuple(config.targets), stale_removed=stale)
    outcomes: dict[int, ImageOutcome] = {}
    planner = OutputPlanner(out, config)
    tasks: list[dict[str, Any]] = []
    planned_paths: dict[int, Path] = {}
    for i, (path, root) in enumerate(images):
        try:
            planned = planner.plan(path, root)
        except Exception as exc:  # a collision: no output, reported like any failure
            outcomes[i] = failed_outcome(path, exc)
            continue
        planned_paths[i] = planned.path
        # workers get absolute paths: their working folder is not the driver's
        src, dst = os.path.abspath(path), os.path.abspath(planned.path)
        prior = done.get(dst)
        if prior is not None and prior.input == src and _unchanged(Path(dst), prior):
            report.resumed.append(path)
            continue
        tasks.append({"index": i, "input": src, "output": dst, "format": planned.format})

    report_progress = notify(check_progress(progress))
    total = len(tasks) + len(outcomes)
    report_progress(ProgressEvent("images", 0, total))
    manifest.open(
        append=resume, header={"engine": "ray", "config": config.to_dict(), "inputs": len(images)}
    )
    n_done = 0

    def record(i: int, outcome: ImageOutcome, line: dict[str, Any]) -> None:
        nonlocal n_done
        outcomes[i] = outcome
        manifest.write(line)
        n_done += 1
        if on_result is not None:
            on_result(outcome)
        report_progress(ProgressEvent("images", n_done, total, item=str(outcome.path)))

    started = False
    run_start = time.time()
    try:
        for i, outcome in sorted(outcomes.items()):
            line = manifest_record(outcome, None)
            record(i, outcome, {**line, "input": os.path.abspath(outcome.path)})
        if tasks:
            started = _connect(ray, address, workers)
            absolute = [os.path.abspath(p) for p, _ in images]
            for row in _execute(ray, tasks, config, Path(os.path.abspath(out)), absolute, workers):
                i = int(row["index"])
                outcome = pickle.loads(row["outcome"])
                # the report names files as the caller did (the manifest: absolute paths)
                shown = dataclasses.replace(
                    outcome,
                    path=images[i][0],
                    output=None if outcome.output is None else planned_paths[i],
                )
                record(i, shown, json.loads(row["record"]))
    finally:
        manifest.close()
        if started:
            ray.shutdown()
    # A worker killed while writing leaves its temporary file; its task was retried.
    report.stale_removed.extend(_remove_temps_since(out, run_start))
    report.outcomes = [outcomes[i] for i in sorted(outcomes)]
    return report


def _remove_temps_since(out: Path, since: float) -> list[Path]:
    """Remove pixveil's temporary files written in ``out`` since ``since`` (a finished run's).

    Every task of the run has finished, so such a file belongs to a worker that
    died while writing.  A second run writing into the same folder at the same
    time could lose its file in flight: that input then fails (it is never half
    written), as the notes of ``--resume`` say: one run per output folder.
    """
    removed = []
    for dirpath, _dirs, files in os.walk(out, followlinks=False):
        for name in files:
            if not is_temp_name(name):
                continue
            p = Path(dirpath) / name
            try:
                st = p.lstat()
                if stat.S_ISREG(st.st_mode) and st.st_mtime >= since - 1.0:
                    p.unlink()
                    removed.append(p)
            except OSError:
                continue
    return removed


def _unchanged(path: Path, prior: _Done) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and file_sha256(path) == prior.sha256
    except OSError:
        return False


def _execute(
    ray: Any,
    tasks: list[dict[str, Any]],
    config: AnonymizeConfig,
    out: Path,
    inputs: list[str],
    workers: int | None,
) -> Iterator[dict[str, Any]]:
    """Run the tasks on an actor pool; yields each result row as it arrives."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    n_workers = min(n_workers, len(tasks))
    rows_per_block = max(1, min(MAX_BLOCK_ROWS, len(tasks) // (4 * n_workers)))
    blocks = -(-len(tasks) // rows_per_block)
    ds = ray.data.from_items(tasks, override_num_blocks=blocks)
    ds = ds.map_batches(
        _Worker,
        fn_constructor_kwargs={"config": config, "out": str(out), "inputs": inputs},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_workers),
        num_cpus=1,
    )
    quiet = logging.getLogger("ray.data")
    level = quiet.level
    quiet.setLevel(max(level, logging.ERROR))  # no "execution finished" lines on the terminal
    try:
        yield from ds.iter_rows()
    except PixveilError:
        raise
    except Exception as exc:
        raise PixveilError(_failure(exc)) from exc
    finally:
        quiet.setLevel(level)


def _failure(exc: BaseException) -> str:
    """One line for a failed Ray run (Ray's messages carry tracebacks and colour codes)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    missing = re.search(r"No module named '([^']+)'", text)
    if missing is not None and missing.group(1).startswith("pixveil"):
        return (
            f"the Ray workers cannot import {missing.group(1)}: install the same pixveil "
            "(pip install 'pixveil[ray]') on every node of the cluster (see docs/cluster.md)"
        )
    return f"the Ray run failed: {' '.join(text.split())[:300]}"
