"""Images/s of the local engine and of ``--engine ray`` (1 and 2 workers), same photos, one run.

    python bench/bench_ray.py                     # 300 LFW photos, 330 plate photos
    python bench/bench_ray.py --lfw 60 --plates 40 --repeat 1

Each engine runs on the same CPUs as the one it is compared with
(``os.sched_setaffinity``, inherited by every process started after it):

* 1 core:  ``local-1c`` (:func:`pixveil.batch.run_batch` in a fresh process) against
  ``ray-1w`` (:func:`pixveil.ray_engine.run_batch_ray`, 1 worker, with Ray's own
  processes — GCS, raylet, driver — on that core too);
* 2 cores: ``local-2c`` against ``ray-2w`` (2 workers).

A Ray worker runs its detectors on one ONNX Runtime thread (it holds one CPU).  The
local engine uses ONNX Runtime's default on 2 cores (one thread per core), and one
thread on 1 core, like the worker: on a machine shared with other jobs a process
with two busy threads on one core gets a larger share of it than one with a single
thread, which would favour the local engine.  Ray is started once per core count
(``ray.init``, timed apart: a running cluster does not pay it).  Every run starts
cold: models are loaded inside the timed run (the local engine in a new process,
each Ray worker once).  ``first`` is the time to the first result (start-up);
``steady`` the rate after it.  With ``--repeat 2`` (default) each pair runs
local, ray, ray, local and the table shows the mean of the two runs of each (the
machine is shared: the load average is printed).  ``overhead`` is the wall time
per image beyond the local engine's at the same core count.  Every output is
compared with the local engine's, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import LFW, PLATES, REPO, table_head, table_row

LOCAL_RUN = """
import json, sys, time
from pathlib import Path
import pixveil.pipeline
if sys.argv[4] != "default":  # the detectors' ONNX Runtime threads, as in a Ray worker
    _options = pixveil.pipeline.Anonymizer._detector_options
    def _threaded(self, target, n=int(sys.argv[4])):
        return {**_options(self, target), "threads": n}
    pixveil.pipeline.Anonymizer._detector_options = _threaded
from pixveil.batch import run_batch
from pixveil.config import AnonymizeConfig
first = []
t = time.perf_counter()
r = run_batch([Path(sys.argv[1])], Path(sys.argv[2]), AnonymizeConfig(method=sys.argv[3]),
              on_result=lambda o: first or first.append(time.perf_counter()))
end = time.perf_counter()
print(json.dumps({"seconds": end - t, "first": first[0] - t, "ok": r.n_ok, "n": r.n_images}))
"""


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("pixveil-")
    }


def local_run(listing: Path, out: Path, *, method: str, threads: int | None) -> dict[str, float]:
    """The local engine in a fresh process (on the CPUs this process may use)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            LOCAL_RUN,
            str(listing),
            str(out),
            method,
            str(threads or "default"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def ray_run(listing: Path, out: Path, *, workers: int, method: str) -> dict[str, float]:
    from pixveil.config import AnonymizeConfig
    from pixveil.ray_engine import run_batch_ray

    first: list[float] = []
    t = time.perf_counter()
    r = run_batch_ray(
        [listing],
        out,
        AnonymizeConfig(method=method),
        workers=workers,
        on_result=lambda _o: first or first.append(time.perf_counter()),
    )
    end = time.perf_counter()
    return {"seconds": end - t, "first": first[0] - t, "ok": r.n_ok, "n": r.n_images}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lfw", type=int, default=300, help="LFW photos (first N by name)")
    ap.add_argument("--plates", type=int, default=330, help="plate photos (first N by name)")
    ap.add_argument("--method", default="blur")
    ap.add_argument("--repeat", type=int, choices=(1, 2), default=2)
    ap.add_argument("--cores", default="1,2", help="core counts to compare: 1, 2 or 1,2")
    args = ap.parse_args()
    if not LFW.is_dir() or not PLATES.is_dir():
        raise SystemExit(f"no data at {LFW} / {PLATES}")
    import ray

    sets = {
        "lfw": sorted(LFW.glob("*/*.jpg"))[: args.lfw],
        "plates": sorted(PLATES.glob("*/*.jpg"))[: args.plates],
    }
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs 2 CPUs")
    print(f"# CPUs {cpus}, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    rows = []
    starts = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        listings = {}
        for name, photos in sets.items():
            listings[name] = work / f"{name}.txt"
            listings[name].write_text("\n".join(str(p) for p in photos) + "\n")
            for p in photos:
                p.read_bytes()  # the same warm file cache for every run
        for cores in sorted({int(c) for c in args.cores.split(",")}):
            os.sched_setaffinity(0, set(cpus[:cores]))
            t = time.perf_counter()
            ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)
            starts[cores] = time.perf_counter() - t
            local, remote = f"local-{cores}c", f"ray-{cores}w"
            for name, listing in listings.items():
                order = [local, remote, remote, local][: 2 * args.repeat]
                if args.repeat == 1:
                    order = [local, remote]
                runs: dict[str, list[dict[str, float]]] = {local: [], remote: []}
                for k, label in enumerate(order):
                    out = work / f"{name}-{label}-{k}"
                    if label == local:
                        r = local_run(
                            listing, out, method=args.method, threads=1 if cores == 1 else None
                        )
                    else:
                        r = ray_run(listing, out, workers=cores, method=args.method)
                    r["same"] = _files(out) == _files(work / f"{name}-{local}-0")
                    r["load"] = os.getloadavg()[0]
                    runs[label].append(r)
                    print(f"#   {name} {label}: {r}", flush=True)
                ref = _mean(runs[local])
                for label in (local, remote):
                    r = _mean(runs[label])
                    n = r["n"]
                    extra = (r["seconds"] - ref["seconds"]) / n * 1000
                    pct = (r["seconds"] / ref["seconds"] - 1) * 100
                    steady = (n - 1) / (r["seconds"] - r["first"]) if n > 1 else float("nan")
                    rows.append(
                        [
                            name,
                            label,
                            f"{int(r['ok'])}/{int(n)}",
                            f"{r['seconds']:.1f}",
                            f"{n / r['seconds']:.2f}",
                            f"{r['first']:.1f}",
                            f"{steady:.2f}",
                            "-" if label == local else f"{extra:+.1f} ms ({pct:+.0f} %)",
                            "yes" if all(x["same"] for x in runs[label]) else "NO",
                            f"{r['load']:.1f}",
                        ]
                    )
            ray.shutdown()
        os.sched_setaffinity(0, set(cpus))
    print()
    for cores, seconds in starts.items():
        print(f"ray.init(num_cpus={cores}): {seconds:.1f} s (once; not in the rows)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    cols = [
        "set",
        "engine",
        "ok",
        "seconds",
        "images/s",
        "first (s)",
        "steady images/s",
        "overhead per image",
        "same bytes",
        "load avg",
    ]
    for line in table_head(cols, right=8):
        print(line)
    for row in rows:
        print(table_row(row))


def _mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(float(r[k]) for r in runs) / len(runs) for k in runs[0]}


if __name__ == "__main__":
    main()
