"""Compute slots: at most N threads compute at once; one that waits on the disk lets go.

The local batch protects several images at once on threads, one per core.  The last
step of each image is durable writing (``fsync`` before the atomic rename), which on
a slow disk or a network folder waits far longer than it computes (about 15 ms per
1280x720 JPEG against about 110 ms of CPU on the machine of ``docs/BENCHMARKS.md``
section 9.5).  With one thread per core, that wait idles a core.  The batch therefore
runs more threads than cores and lets only ``n`` of them compute at once: each takes a
slot (:meth:`ComputeSlots.hold`) once its image is decoded, and the writer gives the
slot up (:func:`waiting_on_disk`) when what is left of the image's work is waiting on
the disk, so the next image starts computing meanwhile.

A thread that holds no slot (a single-image call, a video, the Ray engine) is not
affected: :func:`waiting_on_disk` does nothing there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ComputeSlots", "waiting_on_disk"]

_local = threading.local()


class ComputeSlots:
    """At most ``n`` threads inside :meth:`hold` at once, less those waiting on the disk."""

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"compute slots must be an integer >= 1, got {n!r}")
        self.n = n
        self._free = threading.Semaphore(n)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Take a slot for the block; give it back at its end unless given up before."""
        if getattr(_local, "slot", None) is not None:
            raise RuntimeError("this thread already holds a compute slot")
        self._free.acquire()
        _local.slot = self
        try:
            yield
        finally:
            if getattr(_local, "slot", None) is self:
                _local.slot = None
                self._free.release()


def waiting_on_disk() -> None:
    """Give this thread's compute slot up for the rest of its block (no-op without one).

    Called by the atomic writer before ``fsync``: from there on the thread only waits
    on the disk and renames, so another thread may compute.  The slot is not taken
    again: what follows in the block must be bookkeeping, not computation.
    """
    slots = getattr(_local, "slot", None)
    if slots is not None:
        _local.slot = None
        slots._free.release()
