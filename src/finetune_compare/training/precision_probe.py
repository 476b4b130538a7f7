"""`mixed_precision: auto` on a CPU decides by measurement, not by a CPU flag.

A CPU flag says bf16 *can* run natively, not that it is faster: with AMX, bf16 autocast trains ~1.6x faster than
fp32; with AVX512-BF16 alone it is ~2.4x slower on a MiniLM-sized layer (measured; docs/benchmarks.md). So before a
command's first run, a probe times forward + backward of the model's own layer shapes (one encoder layer's linear
maps: attention in and out, the MLP up and down) at the run's batch shape, in fp32 and under bf16 autocast, and the
faster one is chosen. The probe takes a fraction of a second and is cached per machine (CPU model, torch version,
threads, shapes), so later commands reuse it.

On CUDA, bf16 (tensor cores) is kept without a probe on every GPU that has it, fp16 on older ones: there mixed
precision is the fast path on every card this project supports. CPUs without bf16 instructions emulate it, which is
always slower: fp32 without a probe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..utils.io import atomic_write_text

log = logging.getLogger(__name__)

PROBE_ROWS = (64, 512)  # rows (batch x tokens) timed: enough to load the cores, small enough to stay well under 1 s
PROBE_FLOP = 6e9  # at most this many FLOP per timed pass (fewer rows for wide models): ~0.1-0.6 s for the whole probe
REPEATS = 3  # timed passes per precision after one warm-up; the fastest counts (the least disturbed by other load)


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # 'bf16', 'fp16' or 'no' (fp32)
    reason: str
    bf16_speedup: float | None = None  # fp32 time / bf16 time in the probe (> 1: bf16 faster); None without a probe
    fp32_ms: float | None = None
    bf16_ms: float | None = None

    def record(self) -> dict:
        """What every run's environment and the report show."""
        return {"precision_reason": self.reason,
                **({"bf16_speedup": self.bf16_speedup} if self.bf16_speedup is not None else {})}


def cpu_bf16_path() -> str:
    """'amx', 'avx512_bf16' or 'none': the CPU's native bf16 instructions (Linux /proc/cpuinfo; 'none' elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "none"
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else "none"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _layer(hidden: int, intermediate: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(hidden, 3 * hidden), torch.nn.Linear(3 * hidden, hidden),
                               torch.nn.Linear(hidden, intermediate), torch.nn.GELU(),
                               torch.nn.Linear(intermediate, hidden))


def _seconds(layer: torch.nn.Module, x: torch.Tensor, bf16: bool) -> float:
    best = float("inf")
    for i in range(REPEATS + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = layer(x)
        out.float().sum().backward()
        if i:  # the first pass warms up (allocations, kernel choice)
            best = min(best, time.perf_counter() - start)
    layer.zero_grad(set_to_none=True)
    return best


def probe_rows(hidden: int, intermediate: int, rows: int) -> int:
    """The batch's rows, capped so one pass stays under PROBE_FLOP (forward + backward: 6 FLOP per weight and row)."""
    weights = 4 * hidden * hidden + 2 * hidden * intermediate
    return int(min(max(rows, PROBE_ROWS[0]), PROBE_ROWS[1], max(PROBE_ROWS[0], PROBE_FLOP // (6 * weights))))


def time_precisions(hidden: int, intermediate: int, rows: int) -> tuple[float, float]:
    """Seconds of one forward + backward of an encoder layer's linear maps in fp32 and under bf16 autocast."""
    rows = probe_rows(hidden, intermediate, rows)
    generator = torch.Generator().manual_seed(0)
    layer = _layer(hidden, intermediate)
    x = torch.randn(rows, hidden, generator=generator)
    return _seconds(layer, x, False), _seconds(layer, x, True)


def decide(fp32_s: float, bf16_s: float, path: str) -> PrecisionChoice:
    """The faster one; a tie (within 5%) keeps fp32, whose results do not depend on the CPU's bf16 rounding."""
    speedup = round(fp32_s / bf16_s, 2)
    faster = bf16_s * 1.05 < fp32_s
    where = {"amx": "AMX", "avx512_bf16": "AVX512-BF16, no AMX"}.get(path, path)
    reason = (f"auto: bf16 autocast measured {speedup:.2f}x fp32's speed on this CPU ({where})"
              + ("" if faster else ", so fp32"))
    return PrecisionChoice("bf16" if faster else "no", reason, speedup, round(fp32_s * 1e3, 2), round(bf16_s * 1e3, 2))


def _cache_file() -> Path:
    root = os.environ.get("FINETUNE_COMPARE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "finetune-compare")
    return Path(root) / "precision.json"


def _cache_key(hidden: int, intermediate: int, rows: int) -> str:
    parts = [cpu_model(), torch.__version__, str(torch.get_num_threads()), str(hidden), str(intermediate), str(rows)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _read_cache() -> dict:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(entries: dict) -> None:
    try:
        atomic_write_text(_cache_file(), json.dumps(entries, indent=1, sort_keys=True))
    except OSError as exc:  # a read-only home only costs the probe again next time
        log.debug("precision cache not written: %s", exc)


def probe_cpu_precision(hidden: int, intermediate: int, rows: int) -> PrecisionChoice:
    """Measured (or cached) choice between fp32 and bf16 autocast on this CPU for these shapes."""
    path = cpu_bf16_path()
    rows = probe_rows(hidden, intermediate, rows)
    key = _cache_key(hidden, intermediate, rows)
    cached = _read_cache().get(key)
    if isinstance(cached, dict):
        try:
            return PrecisionChoice(**cached)
        except TypeError:
            pass
    start = time.perf_counter()
    choice = decide(*time_precisions(hidden, intermediate, rows), path)
    busy = machine_busy()
    log.info("%s (probe of %d x %d -> %d rows: fp32 %.1f ms, bf16 %.1f ms, %.2f s; %s)", choice.reason, hidden,
             intermediate, rows, choice.fp32_ms, choice.bf16_ms, time.perf_counter() - start,
             "not cached: the machine was busy, so the next command measures again" if busy
             else f"cached in {_cache_file()}")
    if not busy:  # a ratio measured beside other work is not kept for later commands
        _write_cache({**_read_cache(), key: asdict(choice)})
    return choice


def machine_busy() -> bool:
    """More runnable work than cores (the 1-minute load average), where timings say little about this command."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:
        return False
