"""Audio output through sounddevice (PortAudio): device and host API by name, and the real-time callback.

The callback runs `Engine.process` (preallocated, lock-free), copies the mono block to every output channel,
counts underruns and records how long it took in a preallocated ring, nothing else.
"""
from __future__ import annotations

import gc
import sys
import time

import numpy as np

from synth.engine.engine import Engine

HOST_API_ALIASES = {"jack": "JACK", "alsa": "ALSA", "pulse": "PulseAudio", "oss": "OSS", "coreaudio": "Core Audio",
                    "wasapi": "WASAPI", "asio": "ASIO", "mme": "MME", "directsound": "DirectSound", "wdm": "WDM-KS"}
TIMING_RING = 8192


class AudioDeviceError(ValueError):
    """An audio device, host API or setting that does not exist here, with what does."""


def output_devices() -> list[dict]:
    """Every output-capable device: index, name, host API, channels, default rate and latency."""
    import sounddevice as sd

    apis = sd.query_hostapis()
    return [{"index": i, "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": d["max_output_channels"], "default_rate": d["default_samplerate"],
             "low_latency_ms": round(d["default_low_output_latency"] * 1000, 1)}
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
    if not matches:
        raise AudioDeviceError(f"no output device matches '{spec}'; devices: {_describe(devices)}")
    exact = [d for d in matches if d["name"].lower() == str(spec).lower()]
    if len(exact) == 1:
        return exact[0]["index"]
    raise AudioDeviceError(f"'{spec}' matches several devices: {_describe(matches)}; give its number")


class AudioOutput:
    """A running output stream that plays the engine."""

    def __init__(self, engine: Engine, device: str | int | None = None, hostapi: str | None = None,
                 block: int = 128, latency: str | float = "low", channels: int = 2) -> None:
        import sounddevice as sd

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
        self.underruns = 0
        self.blocks = 0
        self.timings = np.zeros(TIMING_RING, dtype=np.float64)
        self.slowest = 0.0  # longest callback so far, seconds
        self._perf = time.perf_counter
        self.stream = sd.OutputStream(device=self.device, samplerate=engine.rate, blocksize=block,
                                      channels=channels, dtype="float32", latency=latency, callback=self._callback)
        self.device_name = f"{info['name']} ({sd.query_hostapis(info['hostapi'])['name']})"

    def _callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        t0 = self._perf()
        if status.output_underflow:
            self.underruns += 1
        outdata[:] = self.engine.process(frames)[:, None]
        took = self._perf() - t0
        self.timings[self.blocks % TIMING_RING] = took
        if took > self.slowest:
            self.slowest = took
        self.blocks += 1

    def start(self) -> None:
        sys.setswitchinterval(0.0005)  # let the callback take the GIL back quickly from busy Python threads
        gc.freeze()  # a full collection triggered inside the callback would otherwise scan every object loaded
        self.engine.renderer.pool.live = True
        self.stream.start()

    def stop(self) -> None:
        self.stream.stop()
        self.stream.close()
        self.engine.renderer.pool.live = False

    @property
    def latency_ms(self) -> float:
        return float(self.stream.latency) * 1000

    def callback_us(self) -> tuple[float, float, float]:
        """Median, 99th percentile and longest callback time (µs) over the recent blocks."""
        n = min(self.blocks, TIMING_RING)
        if n == 0:
            return 0.0, 0.0, 0.0
        t = self.timings[:n] * 1e6
        return float(np.percentile(t, 50)), float(np.percentile(t, 99)), float(t.max())
