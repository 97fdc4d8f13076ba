"""`gansynth-live bench`: measured numbers for the engine's real-time budget (printed, and as JSON).

Bank render (first playable note and the full bank, every velocity layer, after a timbre change), callback cost
per block at 1/8/32 voices, note-on to first sample, offline render speed, and a soak on a private JACK dummy
server with 32 voices and a new timbre every 10 s, counting underruns (PortAudio's flag and JACK's xrun callback).
"""
from __future__ import annotations

import os
import time

import numpy as np

from synth.bench.jack_server import start_jack
from synth.engine.audio import TIMING_RING, AudioOutput
from synth.engine.bank import N_KEYS, BankRenderer
from synth.engine.engine import Engine
from synth.engine.realtime import ordinary_thread, promote_thread
from synth.engine.routing import XrunWatch
from synth.engine.voices import Voices
from synth.runtime.model import NoteModel, live_threads


def bench_bank(model: NoteModel, rate: int, trials: int = 5) -> dict:
    """A new timbre while key 60 is held: time until that key is playable, and until every layer of every pitch is.

    Measured as `play` renders: in the worker process, with live_threads() inference threads."""
    model = NoteModel(model.path, provider=model.provider, threads=live_threads())
    renderer = BankRenderer(model, rate, process=True)
    renderer.lanes[0].held[60] = 1
    rng = np.random.default_rng(0)
    renderer.set_timbre(rng.standard_normal(model.info.z_dim).astype(np.float32))
    renderer.render_all()  # warm-up: sessions, memory
    first, full = [], []
    renderer.start()
    try:
        for _ in range(trials):
            t0 = time.perf_counter()
            renderer.set_timbre(rng.standard_normal(model.info.z_dim).astype(np.float32))
            gen = renderer.lanes[0].generation
            while not (renderer.lanes[0].banks and renderer.lanes[0].banks[-1].generation == gen
                       and any(k % N_KEYS == 60 for k in renderer.lanes[0].banks[-1].slot_of)):
                time.sleep(0.0005)
            first.append(time.perf_counter() - t0)
            renderer.wait_complete()
            full.append(time.perf_counter() - t0)
    finally:
        renderer.stop()
    n = renderer.bank_notes
    return {"first_note_ms_median": 1000 * float(np.median(first)), "first_note_ms_max": 1000 * max(first),
            "full_bank_s_median": float(np.median(full)), "full_bank_s_max": max(full),
            "notes_per_second": n / float(np.median(full)), "pitches": renderer.pmax - renderer.pmin + 1,
            "layers": len(renderer.layers), "notes": n}


def full_bank(model: NoteModel, rate: int) -> BankRenderer:
    """A renderer holding one whole bank of a random timbre on lane 0, and another on lane 1 (the modulation
    wheel's morph target), for the benches that play from it."""
    renderer = BankRenderer(model, rate, lanes=2, polyphony=32)
    rng = np.random.default_rng(1)
    for lane in (0, 1):
        renderer.set_timbre(rng.standard_normal(model.info.z_dim).astype(np.float32), lane)
        renderer.render_all(lane)
    return renderer


def bench_callback(renderer: BankRenderer, block: int, blocks: int = 3000) -> dict:
    """Voices.process cost per block with 1, 8 and 32 notes held (pitch bent, so every voice interpolates); and
    32 notes morphing (each also on the morph lane: 64 voices) while a controller moves every block, so the
    channel gains glide (`voices_32_morph`)."""
    rate = renderer.layout.rate
    period_us = block / rate * 1e6
    out: dict[str, object] = {"block": block, "rate": rate, "period_us": period_us}
    for count, morph in ((1, False), (8, False), (32, False), (32, True)):
        v = Voices(renderer, max_block=block, polyphony=32)
        v.handle(0xE0, 0x00, 0x50)
        if morph:
            v.morph_lane_of[:] = 1
            v.handle(0xB0, 1, 64)
        for k in range(count):
            v.handle(0x90, 30 + (3 * k) % 50, 100)
        times = np.empty(blocks)
        for i in range(blocks):
            if morph:
                v.events.append((0xB0, 7 if i % 2 else 10, 40 + i % 80))
            t0 = time.perf_counter()
            v.process(block)
            times[i] = time.perf_counter() - t0
        p50, p99 = np.percentile(times[100:] * 1e6, [50, 99])
        out[f"voices_{count}" + ("_morph" if morph else "")] = {
            "p50_us": float(p50), "p99_us": float(p99), "p99_share": float(p99 / period_us), "mixed": v.n}
    return out


def bench_note_latency(renderer: BankRenderer, block: int, trials: int = 50) -> dict:
    """Where a note-on queued between two callbacks first sounds: frame index within the next block rendered."""
    rate = renderer.layout.rate
    v = Voices(renderer, max_block=block, release=0.005)
    frames = []
    for k in range(trials):
        v.events.append((0x90, 40 + k % 40, 110))
        first = v.process(block).copy()
        nz = np.flatnonzero(np.abs(first).max(axis=1) > 0)  # frames where either side sounds
        frames.append(int(nz[0]) if len(nz) else block)
        v.events.append((0x80, 40 + k % 40, 0))
        for _ in range(8):
            v.process(block)
    return {"first_sample_frame_max": max(frames), "blocks_after_note_on": 1,
            "worst_ms_beyond_device": (block + max(frames)) / rate * 1000}


def bench_offline(model: NoteModel, rate: int) -> dict:
    from synth.demo import DEMO_MIDI
    from synth.engine.offline import render_midi

    t0 = time.perf_counter()
    result = render_midi(DEMO_MIDI, model, [], rate=rate)
    elapsed = time.perf_counter() - t0
    seconds = len(result.audio) / rate
    return {"audio_s": seconds, "wall_s": elapsed, "x_real_time": seconds / elapsed}


def bench_soak(model_path: str, rate: int, block: int, seconds: float, voices: int = 32) -> dict:
    """Play `voices` notes held (re-struck as they are stolen) with a new timbre every 10 s on JACK's dummy
    backend; count PortAudio underflows and JACK xruns."""
    server = start_jack(f"gslbench{os.getpid()}", rate, block)
    if server is None:
        return {"error": "jackd (Debian jackd2) is not available"}
    try:
        model = NoteModel(model_path, threads=live_threads())
        engine = Engine(model, rate=rate, block=block, polyphony=voices)
        watcher = XrunWatch()
        out = AudioOutput(engine, hostapi="jack", block=block)
        engine.start()
        engine.renderer.wait_complete()
        out.start()
        time.sleep(0.5)
        promote_thread()  # this thread plays the part of the MIDI input thread (synth.engine.realtime)
        base_underruns, base_xruns, base_blocks, base_overran = out.underruns, watcher.count, out.blocks, out.overran
        rng = np.random.default_rng(3)
        for k in range(voices):
            engine.note_on(36 + k, 90)
        t0 = last_change = time.monotonic()
        changes = 0
        while time.monotonic() - t0 < seconds:
            time.sleep(0.05)
            if time.monotonic() - last_change >= 10.0:
                engine.set_timbre(rng.standard_normal(model.info.z_dim).astype(np.float32))
                last_change = time.monotonic()
                changes += 1
                for k in range(0, voices, 4):  # re-strike some keys so new notes use the new timbre
                    engine.note_on(36 + k, 90)
        p50, p99, _ = out.callback_us()
        _, delay_p99, _ = out.start_delay_us()
        result = {"jack_realtime": getattr(server, "realtime", False), "seconds": seconds, "voices": voices,
                  "block": block,
                  "rate": rate, "timbre_changes": changes,
                  "blocks": out.blocks - base_blocks, "underruns": out.underruns - base_underruns,
                  "jack_xruns": watcher.count - base_xruns, "callback_p50_us": p50, "callback_p99_us": p99,
                  "callback_max_us": out.slowest * 1e6,
                  "start_delay_p99_us": delay_p99, "start_delay_max_us": out.longest_delay * 1e6,
                  "overran": out.overran - base_overran,
                  "sounding_at_end": engine.voices.sounding}
        ordinary_thread()
        out.stop()
        engine.stop()
        watcher.close()
        return result
    finally:
        import sounddevice as sd

        sd._terminate()  # PortAudio's JACK host aborts if torn down after its server is gone
        server.terminate()
        server.wait(timeout=10)
        sd._initialize()


def bench_floor(rate: int, block: int, seconds: float) -> dict:
    """The machine's own floor for the soak: the same JACK dummy server and a PortAudio client whose callback only
    writes silence, for as long; what it counts is not the instrument's doing."""
    import sounddevice as sd

    server = start_jack(f"gslfloor{os.getpid()}", rate, block)
    if server is None:
        return {"error": "jackd (Debian jackd2) is not available"}
    try:
        sd._terminate()
        sd._initialize()
        counts = {"underruns": 0, "blocks": 0}
        delays = np.zeros(int(seconds * rate / block) + 1000)
        stream_time = sd._lib.Pa_GetStreamTime
        stream_ptr: list = []  # the stream's cffi pointer, once the stream exists

        def callback(outdata, frames, time_info, status):  # what AudioOutput measures, for a client doing nothing
            if counts["blocks"] < len(delays) and stream_ptr:
                delays[counts["blocks"]] = stream_time(stream_ptr[0]) - time_info.currentTime
            counts["underruns"] += bool(status.output_underflow)
            counts["blocks"] += 1
            outdata.fill(0)

        watcher = XrunWatch()
        jack_device = next(i for i, d in enumerate(sd.query_devices())
                           if d["max_output_channels"] > 0
                           and sd.query_hostapis(d["hostapi"])["name"].startswith("JACK"))
        stream = sd.OutputStream(device=jack_device, samplerate=rate, blocksize=block, channels=2, callback=callback)
        stream_ptr.append(stream._ptr)
        with stream:
            time.sleep(seconds)
        watcher.close()
        d = delays[:min(counts["blocks"], len(delays))][-TIMING_RING:] * 1e6  # the p99 over as many blocks as ours
        return {"seconds": seconds, "blocks": counts["blocks"], "underruns": counts["underruns"],
                "jack_xruns": watcher.count, "jack_realtime": getattr(server, "realtime", False),
                "start_delay_p99_us": float(np.percentile(d, 99)) if len(d) else 0.0,
                "start_delay_max_us": float(delays.max() * 1e6)}
    finally:
        sd._terminate()
        server.terminate()
        server.wait(timeout=10)
        sd._initialize()


def format_report(r: dict) -> str:
    lines = []
    if "bank" in r:
        b = r["bank"]
        lines.append(f"bank render ({b['pitches']} pitches × {b.get('layers', 1)} velocity layers): first playable "
                     f"note {b['first_note_ms_median']:.0f} ms "
                     f"median / {b['first_note_ms_max']:.0f} ms max; "
                     f"full bank {b['full_bank_s_median']:.2f} s median / "
                     f"{b['full_bank_s_max']:.2f} s max ({b['notes_per_second']:.0f} notes/s)")
    if "callback" in r:
        c = r["callback"]
        for key in ("voices_1", "voices_8", "voices_32", "voices_32_morph"):
            if key not in c:
                continue
            v, n = c[key], int(key.split("_")[1])
            what = f"{n:2d} voices" + (f" morphing ({v['mixed']} mixed, a controller moving)" if "morph" in key else "")
            lines.append(f"callback, {what}, {c['block']} frames @ {c['rate']} Hz: p50 {v['p50_us']:.0f} us, "
                         f"p99 {v['p99_us']:.0f} us = {100 * v['p99_share']:.1f}% "
                         f"of the {c['period_us']:.0f} us period")
    if "note_latency" in r:
        n = r["note_latency"]
        lines.append(f"note-on to first sample: next block, frame {n['first_sample_frame_max']} of it "
                     f"(worst {n['worst_ms_beyond_device']:.2f} ms beyond the device latency)")
    if "offline" in r:
        o = r["offline"]
        lines.append(f"offline render of the demo piece: {o['audio_s']:.1f} s of audio in {o['wall_s']:.2f} s "
                     f"= {o['x_real_time']:.0f}x real time")
    if "soak" in r:
        s = r["soak"]
        if "error" in s:
            lines.append(f"soak: not run ({s['error']})")
        else:
            lines.append(f"soak on JACK dummy ({'realtime' if s['jack_realtime'] else 'no realtime'}): "
                         f"{s['seconds']:.0f} s, {s['voices']} voices, {s['timbre_changes']} "
                         f"timbre changes, {s['blocks']} blocks of {s['block']}: {s['underruns']} underruns, "
                         f"{s['jack_xruns']} JACK xruns; callback p50 {s['callback_p50_us']:.0f} us, "
                         f"p99 {s['callback_p99_us']:.0f} us, longest {s['callback_max_us']:.0f} us; its start "
                         f"delay (the GIL) p99 {s['start_delay_p99_us']:.0f} us, longest "
                         f"{s['start_delay_max_us']:.0f} us; blocks of ours past their period (start delay + "
                         f"callback): {s['overran']}")
    if "floor" in r:
        f = r["floor"]
        lines.append(f"machine floor: {f.get('error') or ''}" if "error" in f else
                     f"machine floor (a client that only writes silence, same server, {f['seconds']:.0f} s): "
                     f"{f['underruns']} underruns, {f['jack_xruns']} JACK xruns; its start delay p99 "
                     f"{f['start_delay_p99_us']:.0f} us, longest {f['start_delay_max_us']:.0f} us")
    return "\n".join(lines)
