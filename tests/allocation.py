"""How much a loop of real-time calls allocates: the callback's promise, measured with tracemalloc."""
import tracemalloc
from collections.abc import Callable


def peak_allocation(step: Callable[[int], object], times: int) -> int:
    """Bytes at the peak of tracemalloc's count above where it stood before calling step(0) … step(times - 1)."""
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for k in range(times):
            step(k)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base
