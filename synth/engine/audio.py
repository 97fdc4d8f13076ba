"""Audio output through sounddevice (PortAudio): device and host API by name, and the real-time callback.

Without effects the callback runs `Engine.process` itself (preallocated, lock-free), so a note-on sounds in the
next block. With an effects chain (pedalboard allocates, so it may not run in the callback) a producer thread
mixes and processes a few blocks ahead into a ring and the callback only copies from it; that adds
`fx_blocks` blocks of latency. Either way the callback counts underruns, times itself and hands its block to
the recorder's ring, nothing else.
"""
from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from synth.engine.effects import EffectsChain
from synth.engine.engine import Engine
from synth.engine.meter import Meter
from synth.engine.recorder import Recorder
from synth.engine.realtime import promote_thread
from synth.engine.ring import Ring
from synth.engine.routing import name_jack_client, use_pulse_sink, virtual_kind

HOST_API_ALIASES = {"jack": "JACK", "alsa": "ALSA", "pulse": "PulseAudio", "oss": "OSS", "coreaudio": "Core Audio",
                    "wasapi": "WASAPI", "asio": "ASIO", "mme": "MME", "directsound": "DirectSound", "wdm": "WDM-KS"}
TIMING_RING = 8192
MAX_PLAUSIBLE_LATENCY_S = 10.0
STOP_TIMEOUT_S = 1.0  # the longest stop() waits for the host API before abandoning the stream


def skip_portaudio_teardown_if_jack_is_gone() -> None:
    """Call as a process that used PortAudio ends. PortAudio's JACK host API holds a client of the server it
    found at start; if that server has gone, PortAudio's exit handler aborts the process on an assertion
    (pa_jack.c, Terminate), so it is skipped then and the OS frees what is left."""
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return
    try:
        jack_api = any("JACK" in api["name"] for api in sd.query_hostapis())
    except Exception:  # PortAudio already terminated
        return
    if jack_api:
        from synth.engine.midi import jack_running

        if not jack_running():
            atexit.unregister(sd._exit_handler)


class AudioDeviceError(ValueError):
    """An audio device, host API or setting that does not exist here, with what does."""


def output_devices() -> list[dict]:
    """Every output-capable device: index, name, host API, channels, default rate and latency."""
    import sounddevice as sd

    apis = sd.query_hostapis()
    return [{"index": i, "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": d["max_output_channels"], "default_rate": d["default_samplerate"],
             "low_latency_ms": round(d["default_low_output_latency"] * 1000, 1),
             "virtual": virtual_kind(d["name"], apis[d["hostapi"]]["name"])}
            for i, d in enumerate(sd.query_devices()) if d["max_output_channels"] > 0]


def _describe(devices: list[dict]) -> str:
    return "; ".join(f"[{d['index']}] {d['name']} ({d['hostapi']})" for d in devices) or "none"


def find_output_device(spec: str | int | None = None, hostapi: str | None = None) -> int:
    """The device index for a name fragment or index, optionally within one host API; a clear error otherwise."""
    import sounddevice as sd

    devices = output_devices()
    if hostapi:
        want = HOST_API_ALIASES.get(hostapi.lower(), hostapi).lower()
        names = {d["hostapi"] for d in devices} | {a["name"] for a in sd.query_hostapis()}
        if not any(want in n.lower() for n in names):
            raise AudioDeviceError(f"no host API '{hostapi}' here; available: {', '.join(sorted(names))}")
        devices = [d for d in devices if want in d["hostapi"].lower()]
        if not devices:
            raise AudioDeviceError(f"host API '{hostapi}' has no output device (is its server running?)")
    if spec is None or spec == "":
        if hostapi:
            api = next(a for a in sd.query_hostapis() if a["name"] == devices[0]["hostapi"])
            default = api["default_output_device"]
            return default if default >= 0 else devices[0]["index"]
        default = sd.default.device[1]
        if default is None or default < 0:
            if not devices:
                raise AudioDeviceError("no audio output device found (start JACK or PulseAudio, or plug one in)")
            return devices[0]["index"]
        return int(default)
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        if any(d["index"] == index for d in devices):
            return index
        raise AudioDeviceError(f"no output device number {index}; devices: {_describe(devices)}")
    matches = [d for d in devices if str(spec).lower() in d["name"].lower()]
    if len(matches) == 1:
        return matches[0]["index"]
    pulse = [d for d in devices if d["name"] == "pulse"]
    if not matches and pulse and use_pulse_sink(str(spec)):  # a PulseAudio/PipeWire sink, e.g. a null sink
        return pulse[0]["index"]
    if not matches:
        raise AudioDeviceError(f"no output device matches '{spec}'; devices: {_describe(devices)}")
    exact = [d for d in matches if d["name"].lower() == str(spec).lower()]
    if len(exact) == 1:
        return exact[0]["index"]
    raise AudioDeviceError(f"'{spec}' matches several devices: {_describe(matches)}; give its number")


class AudioOutput:
    """A running output stream that plays the engine."""

    def __init__(self, engine: Engine, device: str | int | None = None, hostapi: str | None = None,
                 block: int = 128, latency: str | float = "low", channels: int = 2,
                 effects: EffectsChain | None = None, fx_blocks: int = 3) -> None:
        import sounddevice as sd

        name_jack_client()
        self.engine = engine
        self.device = find_output_device(device, hostapi)
        info = sd.query_devices(self.device)
        channels = min(channels, int(info["max_output_channels"]))
        try:
            sd.check_output_settings(self.device, channels=channels, samplerate=engine.rate, dtype="float32")
        except sd.PortAudioError as e:
            raise AudioDeviceError(f"device '{info['name']}' cannot play {engine.rate} Hz ({e}); its default rate "
                                   f"is {info['default_samplerate']:.0f} Hz") from None
        self.block = block
        self.channels = channels
        self.effects = effects
        self.recorder: Recorder | None = None  # set before start() to record what plays
        self.meter = Meter(max_block=max(block, 1024))  # what plays, for a window's meter and scope
        self.underruns = 0
        self.late_blocks = 0  # staged mode: blocks the producer had not made in time (also counted as underruns)
        self.blocks = 0
        self.timings = np.zeros(TIMING_RING, dtype=np.float64)
        self.slowest = 0.0  # longest callback so far, seconds
        # How long after PortAudio began the block our callback's code began (sounddevice's wrapper and the wait
        # for the GIL), and the blocks whose start delay plus own time passed the block's period: those are late
        # by our doing. The period is the block's, so the count means that where the server's period is the block
        # (as `bench` runs JACK).
        self.start_delays = np.zeros(TIMING_RING, dtype=np.float64)
        self.longest_delay = 0.0  # seconds, since the start
        self.overran = 0
        self._period = block / engine.rate
        self.failed_blocks = 0  # blocks whose callback (or producer) raised: silenced, reported by problems()
        self.last_error: Exception | None = None
        self.server_lost = False  # the stream stopped without being asked: the audio server went away
        self.abandoned = False  # stop() gave up on a stream whose host API hung
        self._failed_in_a_row = False
        self._reported_failures = 0
        self._reported_nonfinite = 0
        self._started = False
        self._finished = False
        self._perf = time.perf_counter
        self._stop = threading.Event()
        self._producer: threading.Thread | None = None
        if effects is not None:
            self.ring = Ring(block * max(16, 4 * fx_blocks), channels)
            self.fx_frames = block * fx_blocks
            self._stereo = np.zeros((2, block), dtype=np.float32)
            self._producer = threading.Thread(target=self._produce, name="fx-producer", daemon=True)
        callback = self._callback if effects is None else self._staged_callback
        self.stream = sd.OutputStream(device=self.device, samplerate=engine.rate, blocksize=block,
                                      channels=channels, dtype="float32", latency=latency, callback=callback,
                                      finished_callback=self._on_finished)
        self._stream_time = sd._lib.Pa_GetStreamTime  # stream.time without its Python wrapper (it raises on 0)
        self._stream_ptr = self.stream._ptr
        self.hostapi = sd.query_hostapis(info["hostapi"])["name"]
        self.device_name = f"{info['name']} ({self.hostapi})"
        if info["name"] == "pulse" and os.environ.get("PULSE_SINK"):
            self.device_name += f" → sink {os.environ['PULSE_SINK']}"

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: object) -> None:
        t0 = self._perf()
        delay = self._stream_time(self._stream_ptr) - time_info.currentTime
        try:
            block = self.engine.process(frames)  # [frames, 2]
            if self.channels == 2:
                outdata[:] = block
            else:  # a mono device: the left side (the whole signal while nothing is panned)
                outdata[:, 0] = block[:, 0]
            self.meter.push(block)
            recorder = self.recorder
            if recorder is not None:
                recorder.push(outdata)
            self._failed_in_a_row = False
        except Exception as e:  # an exception would stop the stream for good: silence this block, go on
            self._failed(outdata, e)
        self._account(t0, status, delay)

    def _staged_callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: object) -> None:
        t0 = self._perf()
        delay = self._stream_time(self._stream_ptr) - time_info.currentTime
        try:
            got = self.ring.read_into(outdata)
            if got < frames:
                outdata[got:] = 0.0
                self.late_blocks += 1
                self.underruns += 1
        except Exception as e:
            self._failed(outdata, e, voices=False)  # the producer thread owns the voices here
        self._account(t0, status, delay)

    def _failed(self, outdata: np.ndarray, error: Exception, voices: bool = True) -> None:
        """A block that raised: silence it and count it; `problems()` reports it off the audio thread. With
        `voices` (called by the thread that mixes them), voices whose state made the previous block fail too are
        let go, so one bad voice cannot silence the instrument."""
        outdata.fill(0.0)
        self.failed_blocks += 1
        self.last_error = error
        if voices:
            if self._failed_in_a_row:
                self.engine.voices.reset()
            self._failed_in_a_row = True

    def _account(self, t0: float, status: Any, delay: float) -> None:
        """Both callbacks' bookkeeping: the device's underflow flag, how long this block took and how late its
        code began (`delay`, seconds; a host API whose clocks disagree gives nonsense, not counted)."""
        # status: a sounddevice.CallbackFlags (sounddevice ships no type hints)
        if status.output_underflow:
            self.underruns += 1
        took = self._perf() - t0
        k = self.blocks % TIMING_RING
        self.timings[k] = took
        if took > self.slowest:
            self.slowest = took
        if -1.0 < delay < 1.0:
            self.start_delays[k] = delay
            if delay > self.longest_delay:
                self.longest_delay = delay
            if delay + took > self._period:
                self.overran += 1
        self.blocks += 1

    def _produce(self) -> None:
        """Staged mode: keep `fx_frames` mixed and processed frames ahead of the callback."""
        block, stereo, ring = self.block, self._stereo, self.ring
        assert self.effects is not None  # the producer thread exists only with an effects chain
        promote_thread()
        nap = block / self.engine.rate / 2
        while not self._stop.is_set():
            try:
                while ring.available() < self.fx_frames:
                    stereo[:] = self.engine.process(block).T
                    wet = self.effects.process(stereo)
                    if wet.shape[1] == 0:
                        continue
                    frames = wet.T if self.channels == 2 else wet.mean(axis=0)[:, None]
                    ring.write(frames)
                    self.meter.push(np.ascontiguousarray(wet.T, dtype=np.float32))
                    if self.recorder is not None:
                        self.recorder.push(frames)
                self._failed_in_a_row = False
            except Exception as e:  # as in the callback: this block is lost (the callback plays silence), go on
                self._failed(stereo, e)
            time.sleep(nap)

    @property
    def fx_latency_ms(self) -> float:
        """Latency the effects stage adds ahead of the device (0 without effects)."""
        return self.fx_frames / self.engine.rate * 1000 if self.effects is not None else 0.0

    def start(self) -> None:
        sys.setswitchinterval(0.0005)  # let the callback take the GIL back quickly from busy Python threads
        gc.freeze()  # a full collection triggered inside the callback would otherwise scan every object loaded
        self.engine.renderer.pool.live = True
        if self._producer is not None:
            self._producer.start()
            deadline = time.monotonic() + 2.0
            while self.ring.available() < self.fx_frames and time.monotonic() < deadline:
                time.sleep(0.001)
        self.stream.start()
        self._started = True

    def _on_finished(self) -> None:
        """PortAudio's stream-finished callback (its own thread): the stream ended, asked to or not."""
        self._finished = True

    def check_server(self) -> bool:
        """True once the stream has stopped without being asked (call it off the audio thread, a few times a
        second). PortAudio's JACK host API calls no finished callback when the server goes away; the stream just
        stops being active, so both are watched."""
        if self._started and not self._stop.is_set() and not self.server_lost:
            self.server_lost = self._finished or not self.stream.active
        return self.server_lost

    def problems(self) -> list[str]:
        """New trouble since the last call, one line each, for the front end to show (never from the callback)."""
        out = []
        failed = self.failed_blocks
        if failed > self._reported_failures:
            error = self.last_error
            out.append(f"audio: {failed - self._reported_failures} block(s) failed and were played as silence "
                       f"({type(error).__name__}: {str(error)[:120]}); {failed} in all, the sound goes on")
            self._reported_failures = failed
        nonfinite = self.engine.voices.nonfinite_blocks
        if nonfinite > self._reported_nonfinite:
            out.append(f"audio: {nonfinite - self._reported_nonfinite} block(s) were not finite (NaN or Inf) and "
                       f"were played as silence; {nonfinite} in all")
            self._reported_nonfinite = nonfinite
        return out

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop and close the stream; a host API that hangs there (PortAudio's JACK after the server died) is
        abandoned after `timeout` seconds, so stopping never hangs."""
        self._stop.set()
        if self._started or not self.stream.closed:
            def close() -> None:
                try:
                    self.stream.stop()
                    self.stream.close()
                except Exception:  # a server that is gone: the stream is dead anyway
                    pass
            closer = threading.Thread(target=close, name="audio-stop", daemon=True)
            closer.start()
            closer.join(0.05 if self.server_lost else timeout)
            self.abandoned = closer.is_alive()
            self._started = False
        if self._producer is not None and self._producer.is_alive():
            self._producer.join()
        self.engine.renderer.pool.live = False

    @property
    def latency_ms(self) -> float | None:
        """The device's output latency as PortAudio reports it; None when the report is nonsense (PipeWire's JACK
        emulation gives PortAudio 2^32 frames)."""
        seconds = float(self.stream.latency)
        return seconds * 1000 if 0 <= seconds < MAX_PLAUSIBLE_LATENCY_S else None

    def callback_us(self) -> tuple[float, float, float]:
        """Median, 99th percentile and longest callback time (µs) over the recent blocks."""
        return self._percentiles(self.timings)

    def start_delay_us(self) -> tuple[float, float, float]:
        """Median, 99th percentile and longest delay (µs) from PortAudio beginning a block to our callback's code
        beginning it, over the recent blocks."""
        return self._percentiles(self.start_delays)

    def _percentiles(self, ring: np.ndarray) -> tuple[float, float, float]:
        n = min(self.blocks, TIMING_RING)
        if n == 0:
            return 0.0, 0.0, 0.0
        t = ring[:n] * 1e6
        return float(np.percentile(t, 50)), float(np.percentile(t, 99)), float(t.max())
