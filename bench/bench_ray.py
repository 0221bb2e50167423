"""Images/s of the local engine and of ``--engine ray`` (1 and 2 workers), same photos, one run.

    python bench/bench_ray.py                     # 300 LFW photos, 330 plate photos
    python bench/bench_ray.py --lfw 60 --plates 40

For each photo set (a ``.txt`` input list read in place from ``../shared/data``):

* ``local``    :func:`pixveil.batch.run_batch` in a fresh process (ONNX Runtime's
  default threads: one per core, here 2);
* ``local-1c`` the same pinned to one core (``os.sched_setaffinity``);
* ``ray-1w`` / ``ray-2w`` :func:`pixveil.ray_engine.run_batch_ray` with 1 / 2 workers
  (one CPU and one ONNX Runtime thread each) on a local Ray started once
  (``ray.init(num_cpus=2)``, timed apart: an existing cluster does not pay it).

Every run starts cold (models loaded inside the timed run: the local engine in a
new process, each Ray worker once).  ``first`` is the time to the first result
(start-up: model loading, Ray scheduling); ``steady`` the rate after it.
``overhead`` compares with the local engine at the same core count (ray-1w with
local-1c, ray-2w with local): wall time per image more than the local engine's.
The outputs of every run are compared with the local engine's, byte for byte.
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
import json, os, sys, time
from pathlib import Path
if sys.argv[3] == "1":
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
from pixveil.batch import run_batch
from pixveil.config import AnonymizeConfig
first = []
t = time.perf_counter()
r = run_batch([Path(sys.argv[1])], Path(sys.argv[2]), AnonymizeConfig(method=sys.argv[4]),
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


def local_run(listing: Path, out: Path, *, one_core: bool, method: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run(
        [sys.executable, "-c", LOCAL_RUN, str(listing), str(out), "1" if one_core else "2", method],
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
    args = ap.parse_args()
    if not LFW.is_dir() or not PLATES.is_dir():
        raise SystemExit(f"no data at {LFW} / {PLATES}")
    import ray

    sets = {
        "lfw": sorted(LFW.glob("*/*.jpg"))[: args.lfw],
        "plates": sorted(PLATES.glob("*/*.jpg"))[: args.plates],
    }
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t
        for name, photos in sets.items():
            listing = work / f"{name}.txt"
            listing.write_text("\n".join(str(p) for p in photos) + "\n")
            for p in photos:
                p.read_bytes()  # the same warm file cache for every run
            runs = {
                "local": lambda o, lst=listing: local_run(
                    lst, o, one_core=False, method=args.method
                ),
                "local-1c": lambda o, lst=listing: local_run(
                    lst, o, one_core=True, method=args.method
                ),
                "ray-1w": lambda o, lst=listing: ray_run(lst, o, workers=1, method=args.method),
                "ray-2w": lambda o, lst=listing: ray_run(lst, o, workers=2, method=args.method),
            }
            results = {}
            for label, run in runs.items():
                out = work / f"{name}-{label}"
                results[label] = run(out)
                results[label]["same"] = _files(out) == _files(work / f"{name}-local")
                print(f"#   {name} {label}: {results[label]}", flush=True)
            base = {
                "local": "local",
                "local-1c": "local-1c",
                "ray-1w": "local-1c",
                "ray-2w": "local",
            }
            for label, r in results.items():
                n = r["n"]
                ref = results[base[label]]
                extra = (r["seconds"] - ref["seconds"]) / n * 1000
                pct = (r["seconds"] / ref["seconds"] - 1) * 100
                steady = (n - 1) / (r["seconds"] - r["first"]) if n > 1 else float("nan")
                rows.append(
                    [
                        name,
                        label,
                        f"{int(r['ok'])}/{n}",
                        f"{r['seconds']:.1f}",
                        f"{n / r['seconds']:.2f}",
                        f"{r['first']:.1f}",
                        f"{steady:.2f}",
                        "-" if base[label] == label else f"{extra:+.1f} ms ({pct:+.0f} %)",
                        "yes" if r["same"] else "NO",
                    ]
                )
        ray.shutdown()
    print(f"\nray.init(num_cpus=2): {ray_start:.1f} s (once; not in the rows)")
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
    ]
    for line in table_head(cols, right=7):
        print(line)
    for row in rows:
        print(table_row(row))


if __name__ == "__main__":
    main()
