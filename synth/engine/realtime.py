"""Thread priority for the audio process: every Python thread there can hold the GIL the audio callback needs,
and one that the OS preempts for an ordinary process while holding it makes the callback late. Such threads
(bank bookkeeping, effects producer, recorder, MIDI input, the player's main loop) do little, bounded work, so
they run at the lowest real-time priority, under JACK's own threads, where the system allows it."""
from __future__ import annotations

import os

HELPER_PRIORITY = 1  # SCHED_FIFO 1: above every ordinary thread, below JACK's (jackd's default is 10 and up)


def promote_thread(priority: int = HELPER_PRIORITY) -> bool:
    """Put the calling thread in SCHED_FIFO at `priority`; False where the platform or the user's limits refuse."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except OSError:  # no permission (no rtprio limit for this user) or not supported
        return False


def ordinary_thread() -> None:
    """Back to normal scheduling for the calling thread."""
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass
