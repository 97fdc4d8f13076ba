"""A private JACK server on the dummy backend: the soak benchmark's audio device, and the tests' (tests/conftest.py).

Not product code: `play` and the window never start a server; they use the one the musician runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time


def start_jack(name: str, rate: int, block: int, modes: tuple[str, ...] = ("--realtime", "--no-realtime"),
               options: tuple[str, ...] = ()) -> subprocess.Popen | None:
    """A private jackd on the dummy backend, named `name` and made the default server of this process.

    Tries the scheduling modes in order (realtime first, as a musician's JACK runs: its clients' process threads
    get SCHED_FIFO too); the one that started is in `proc.realtime`. `options` are further server options (e.g.
    "--sync"). None if jackd is missing or never starts."""
    import jack

    if shutil.which("jackd") is None:
        return None
    jack.set_error_function(lambda message: None)  # "cannot connect" while the server starts is expected
    os.environ["JACK_DEFAULT_SERVER"] = name
    for mode in modes:
        proc = subprocess.Popen(["jackd", "-n", name, mode, *options, "-d", "dummy", "-r", str(rate),
                                 "-p", str(block)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(150):
            try:
                jack.Client("probe", no_start_server=True).close()
                proc.realtime = mode == "--realtime"  # type: ignore[attr-defined]
                return proc
            except jack.JackOpenError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        proc.kill()
        proc.wait()
    return None
