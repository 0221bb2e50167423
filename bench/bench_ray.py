"""Images/s of the local engine and of ``--engine ray``, same photos, same CPUs, one run.

    python bench/bench_ray.py --cores 2          # 300 LFW photos, 330 plate photos, 2 cores
    python bench/bench_ray.py --cores 2,1        # then the 1-core rows
    python bench/bench_ray.py --lfw 60 --plates 40 --repeat 1

Three rows per set and core count, each run in its own process (a driver, as the
``pixveil`` command is), timed from after its imports to the end of its run:

* ``local-Nc``: :func:`pixveil.batch.run_batch`.  On 1 core with one ONNX Runtime
  thread, like a Ray worker (on a shared machine two busy threads get a larger
  share of the core than one); on 2 cores as shipped (one thread per core).
* ``ray-Nw new``: :func:`pixveil.ray_engine.run_batch_ray` with N workers, the
  first job on a Ray started just before (its start, ``ray.init``, is timed apart
  and printed: a user of ``--engine ray`` without ``--ray-address`` pays it too).
  The row includes what the first Ray Data job of a cluster starts: Ray Data's
  helper actors (autoscaling coordinator, stats, actor locations — detached,
  cluster-wide) and the pool's worker processes.
* ``ray-Nw running``: the next job on the same Ray, from a new driver process
  (``--ray-address`` to a running cluster): its connection, its worker processes
  (one per worker, started for each job) and its run, but not the helper actors
  the first job left running.

The driver's imports (pixveil; for Ray also ``ray`` and ``ray.data``) are not in the
rows; they are printed in their own column (the ``pixveil`` command pays them on
every run, a long-lived program once).

Every process — the local engine, Ray's own (GCS, raylet, agents, helper actors,
workers) and the drivers — runs on the same CPUs (``os.sched_setaffinity``,
inherited by every process started after it).  Each worker runs its detectors on
one ONNX Runtime thread (it holds one CPU).  Every run starts cold: models are
loaded inside the timed run.  With ``--repeat 2`` (default) the runs of a set go
local, [new Ray] new, running, [new Ray] new, running, local, and the table shows
the mean of the two runs of each (the machine may be shared: the load average is
printed).  ``first`` is the time to the first result; ``steady`` the rate after
it; ``overhead`` the wall time per image beyond the local engine's at the same
core count.  Every output is compared with the local engine's, byte for byte.
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
import time
t0 = time.perf_counter()
import json, sys
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
print(json.dumps({"seconds": end - t, "first": first[0] - t, "ok": r.n_ok, "n": r.n_images,
                  "imports": t - t0}))
"""

RAY_RUN = """
import time
t0 = time.perf_counter()
import json, sys
from pathlib import Path
import ray, ray.data
from pixveil.config import AnonymizeConfig
from pixveil.ray_engine import run_batch_ray
first = []
t = time.perf_counter()
r = run_batch_ray([Path(sys.argv[1])], Path(sys.argv[2]), AnonymizeConfig(method=sys.argv[3]),
                  address=sys.argv[4], workers=int(sys.argv[5]),
                  on_result=lambda o: first or first.append(time.perf_counter()))
end = time.perf_counter()
print(json.dumps({"seconds": end - t, "first": first[0] - t, "ok": r.n_ok, "n": r.n_images,
                  "imports": t - t0}))
"""


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("pixveil-")
    }


def _child(code: str, *args: object) -> dict[str, float]:
    """Run ``code`` in a fresh Python (on the CPUs this process may use); its last line, parsed."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SystemExit(f"a timed run failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def local_run(listing: Path, out: Path, *, method: str, threads: int | None) -> dict[str, float]:
    """The local engine in a fresh process."""
    return _child(LOCAL_RUN, listing, out, method, threads or "default")


def ray_run(
    listing: Path, out: Path, *, address: str, workers: int, method: str
) -> dict[str, float]:
    """``--engine ray`` from a fresh driver process, joining the Ray at ``address``."""
    return _child(RAY_RUN, listing, out, method, address, workers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lfw", type=int, default=300, help="LFW photos (first N by name)")
    ap.add_argument("--plates", type=int, default=330, help="plate photos (first N by name)")
    ap.add_argument("--method", default="blur")
    ap.add_argument("--repeat", type=int, choices=(1, 2), default=2)
    ap.add_argument("--cores", default="2,1", help="core counts to compare, in this order")
    args = ap.parse_args()
    if not LFW.is_dir() or not PLATES.is_dir():
        raise SystemExit(f"no data at {LFW} / {PLATES}")
    import ray

    sets = {
        "lfw": sorted(LFW.glob("*/*.jpg"))[: args.lfw],
        "plates": sorted(PLATES.glob("*/*.jpg"))[: args.plates],
    }
    cpus = sorted(os.sched_getaffinity(0))
    core_counts = [int(c) for c in args.cores.split(",")]
    if max(core_counts) > len(cpus):
        raise SystemExit(f"needs {max(core_counts)} CPUs")
    print(f"# CPUs {cpus}, load average {_load()} at start", flush=True)
    rows = []
    starts: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        listings = {}
        for name, photos in sets.items():
            listings[name] = work / f"{name}.txt"
            listings[name].write_text("\n".join(str(p) for p in photos) + "\n")
            for p in photos:
                p.read_bytes()  # the same warm file cache for every run
        for cores in core_counts:
            os.sched_setaffinity(0, set(cpus[:cores]))
            local, new, running = f"local-{cores}c", f"ray-{cores}w new", f"ray-{cores}w running"
            for name, listing in listings.items():
                ref_out = work / f"{name}-{cores}-local-0"
                order: list[str] = [local, "start", new, running]
                if args.repeat == 2:
                    order += ["start", new, running, local]
                runs: dict[str, list[dict[str, float]]] = {local: [], new: [], running: []}
                address = ""
                for k, label in enumerate(order):
                    if label == "start":  # a new Ray: this process is its head
                        if ray.is_initialized():
                            ray.shutdown()
                        t = time.perf_counter()
                        ray.init(
                            address="local",
                            num_cpus=cores,
                            include_dashboard=False,
                            log_to_driver=False,
                        )
                        starts.append((cores, time.perf_counter() - t))
                        address = ray.get_runtime_context().gcs_address
                        continue
                    out = ref_out if not runs[local] and label == local else work / f"{name}-{k}"
                    if label == local:
                        r = local_run(
                            listing, out, method=args.method, threads=1 if cores == 1 else None
                        )
                    else:
                        r = ray_run(
                            listing, out, address=address, workers=cores, method=args.method
                        )
                    r["same"] = _files(out) == _files(ref_out)
                    r["load"] = os.getloadavg()[0]
                    runs[label].append(r)
                    print(f"#   {name} {label}: {json.dumps(r)}", flush=True)
                if ray.is_initialized():
                    ray.shutdown()
                ref = _mean(runs[local])
                for label in (local, new, running):
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
                            f"{r['imports']:.1f}",
                            "yes" if all(x["same"] for x in runs[label]) else "NO",
                            f"{r['load']:.1f}",
                        ]
                    )
        os.sched_setaffinity(0, set(cpus))
    print()
    for cores in core_counts:
        took = [s for c, s in starts if c == cores]
        print(
            f"ray.init(num_cpus={cores}): {min(took):.1f}-{max(took):.1f} s "
            f"({len(took)} starts; not in the rows)"
        )
    print(f"load average {_load()} at the end\n")
    cols = [
        "set",
        "engine",
        "ok",
        "seconds",
        "images/s",
        "first (s)",
        "steady images/s",
        "overhead per image",
        "driver imports (s)",
        "same bytes",
        "load avg",
    ]
    for line in table_head(cols, right=9):
        print(line)
    for row in rows:
        print(table_row(row))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(float(r[k]) for r in runs) / len(runs) for k in runs[0]}


if __name__ == "__main__":
    main()
