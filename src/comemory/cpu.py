"""How comemory uses the CPU: how many threads, how they wait, and when to use bf16.

Threads. Measured on a 2-core machine (``benchmarks/thread_fairness.py``):

- PyTorch's CPU operators run on OpenMP worker threads, which by default *spin* for a
  few milliseconds after each operator, waiting for the next one. Alone, that saves a
  wake-up; beside another busy process, the spinning threads take the cores that process
  needs: two ``comemory detect`` kept 9 % of their solo speed each, a training beside a
  detect 13 %. Even a 0.2 ms spin (``GOMP_SPINCOUNT=20000``) did as badly (7 %, 10 %).
  Threads that sleep at once (``OMP_WAIT_POLICY=PASSIVE``) share fairly; they cost a
  wake-up per operator when alone (a training step of the cpu model: 1.08 s against
  0.77 s spinning), which small models feel most. comemory sets
  ``OMP_WAIT_POLICY=PASSIVE`` before PyTorch loads (in ``comemory/__init__``), unless the
  environment sets it. It only works if comemory is imported before torch: a program
  that imports torch first should set the variable itself.
- ``threads`` (``--threads`` on the command line, ``train.threads`` in a config) caps
  the threads of PyTorch and OpenCV; 0 means one per core (under torchrun, the cores
  shared out among the processes on the machine). ``detect`` and ``bench`` default to
  one thread (DETECT_THREADS): scoring one frame at a time gives two threads too little
  to share, except for the large paper model.

bf16. Autocast to bfloat16 halves the time of a training step on CPUs with native bf16
instructions (AVX-512 BF16 or AMX) and multiplies it by about 50 elsewhere (measured on an
AVX2-only EPYC: 84 GFLOP/s fp32 against 1.5 bf16 on a matrix product). ``precision:
auto`` (the ``cpu`` preset's) takes bf16 only where it is native.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# PyTorch and OpenCV are imported inside the functions: config reads PRECISIONS from
# here, and `comemory --help` must not wait for them.

WAIT_VARIABLE = "OMP_WAIT_POLICY"
PRECISIONS = ("auto", "fp32", "bf16")
# detect scores one frame at a time: for the tiny and cpu presets one thread is as fast as
# two (66 against 29 frames/s, 17 against 19) and never waits on another process's core
DETECT_THREADS = 1


def use_threads(count: int = 0) -> int:
    """Run PyTorch operators and OpenCV on ``count`` threads (0: one per core, shared out
    among the processes torchrun started on this machine); returns the count in use."""
    if count < 0:
        raise ValueError(f"threads must be >= 0 (0 = one per core), got {count}")
    import cv2
    import torch

    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    count = count or max(1, (os.cpu_count() or 1) // local_processes)
    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    return count


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively (fast), not by emulation."""
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, guarded
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``auto`` -> bf16 where ``device`` has native bf16, else fp32; fp32 and bf16 as
    asked."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def thread_settings() -> dict[str, object]:
    """What a benchmark record should say about threads: the counts, OpenMP's policy and
    whether bf16 is native."""
    import cv2
    import torch

    return {"torch_threads": torch.get_num_threads(), "opencv_threads": cv2.getNumThreads(),
            "omp_wait_policy": os.environ.get(WAIT_VARIABLE, "unset"),
            "native_bf16": native_bf16()}
