"""Reading a child process's output line by line, with a timeout."""
import queue
import threading
import time


def lines_of(proc):
    q = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in proc.stdout], daemon=True).start()
    return q


def wait_for(q, text, timeout=60.0):
    end, seen = time.monotonic() + timeout, []
    while time.monotonic() < end:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"'{text}' never printed; got: {''.join(seen)}")
