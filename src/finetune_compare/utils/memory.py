"""Memory monitoring: peak process RSS (sampled), peak CUDA memory, and release between runs."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time

import psutil
import torch


class MemoryMonitor:
    """Samples this process's RSS in a background thread.

    `ru_maxrss` would give the peak of the whole process lifetime, which cannot
    separate consecutive runs; sampling gives a per-run peak and a time series.
    """

    def __init__(self, interval_s: float = 0.25, baseline_bytes: int | None = None):
        self.interval_s = interval_s
        # RSS before the model was loaded (Python, libraries, data): the peak above it is what the run costs
        self.baseline_bytes = baseline_bytes
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.peak_rss_bytes = 0
        self.series: list[tuple[float, float]] = []  # (seconds since start, rss MB)

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        self.series.append((round(time.perf_counter() - self._t0, 3), round(rss / 2**20, 1)))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "MemoryMonitor":
        # re-entering (training, then the test pass) continues the same series and peak
        if not self._t0:
            self._t0 = time.perf_counter()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="memory-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def summary(self) -> dict:
        peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        out = {
            "peak_rss_mb": round(self.peak_rss_bytes / 2**20, 1),
            "peak_cuda_mb": round(peak_cuda, 1) if peak_cuda is not None else None,
        }
        if self.baseline_bytes is not None:
            out["baseline_rss_mb"] = round(self.baseline_bytes / 2**20, 1)
            out["peak_rss_above_baseline_mb"] = round((self.peak_rss_bytes - self.baseline_bytes) / 2**20, 1)
        return out


def _malloc_trim() -> None:
    """Hand the C heap's free pages back to the OS (glibc): otherwise a run's freed tensors stay in this process's
    RSS, and the next run reuses them without its RSS growing."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to hand back this way
        pass


def release_memory() -> None:
    """Free what a finished run left behind (Python garbage, CUDA cache, the C heap's free pages)."""
    gc.collect()
    _malloc_trim()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
