"""`play`: live MIDI in, audio out, until Ctrl-C or --seconds; under JACK it waits out a lost server and starts
again in a fresh process, recording into a new take."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from synth.commands import options as opt
from synth.commands.common import EFFECTS_HELP, load_presets, render_options, stop_on_sigterm
from synth.engine.rig import LiveRig, RigConfig
from synth.runtime.model import DEFAULT_MODEL

EXIT_SERVER_LOST = 3  # play's exit code when the audio server went away under it
RECONNECT_PROBE_SECONDS = 1.0  # how often play looks for a JACK server that went away


def register(sub: argparse._SubParsersAction) -> None:
    pl = sub.add_parser("play", help="play live: MIDI in, audio out (Ctrl-C stops)")
    render_options(pl)
    pl.add_argument("--audio-out", help="output device: name fragment or number (see 'devices')")
    pl.add_argument("--host-api", help="jack, alsa, pulse, coreaudio, wasapi, asio, ...")
    pl.add_argument("--block", type=opt.BLOCK, default=128, help="frames per audio block (16-8192)")
    pl.add_argument("--latency", type=opt.latency, default="low", help="low, high or seconds")
    pl.add_argument("--midi-in", help="MIDI input port: name fragment or number (default: our virtual port "
                                      "'GANSynth Live')")
    pl.add_argument("--midi-api", help="jack, alsa, coremidi, winmm (default: JACK if running, else the system's)")
    pl.add_argument("--channel", type=int, choices=range(1, 17), metavar="1-16", help="listen to one channel only")
    pl.add_argument("--polyphony", type=opt.int_in(1, 256, "voices"), default=32)
    pl.add_argument("--release", type=opt.float_in(0.0, 10.0, "seconds"), default=None,
                    help="a fixed release fade in seconds (default: each note's own release from the model)")
    pl.add_argument("--seconds", type=opt.float_in(0.0, 1e9, "seconds", above=True), help="stop after this long")
    pl.add_argument("--effects", help=EFFECTS_HELP + " (adds 3 blocks of latency)")
    pl.add_argument("--connect", metavar="PORTS", help="JACK: wire our outputs to these input ports (comma-separated "
                                                       "names or fragments, e.g. 'ardour:audio_in'), instead of the "
                                                       "sound card")
    pl.add_argument("--record", metavar="FILE", help="record what plays to a .wav or .flac file")
    pl.add_argument("--overwrite", action="store_true", help="let --record replace an existing file")
    pl.add_argument("--drums", metavar="SOUNDFONT", help="play channel 10 with FluidSynth from this .sf2 (default: "
                                                         "channel 10 plays the timbre like the others)")
    pl.add_argument("--exit-on-server-loss", action="store_true",
                    help="when the audio server goes away, save the take and exit with code 3 (default: under JACK, "
                         "wait for it and start again, recording into a new take)")
    pl.add_argument("-v", "--verbose", action="store_true", help="print the status line every second")
    pl.set_defaults(func=run, bit_depth=24)


def rig_config(a: argparse.Namespace, presets: list) -> RigConfig:
    """The rig the command line asks for."""
    return RigConfig(model=str(a.model or DEFAULT_MODEL), provider=a.provider, presets=presets, rate=a.rate,
                     block=a.block, latency=a.latency, polyphony=a.polyphony, release=a.release,
                     channel=a.channel - 1 if a.channel else None, effects=a.effects, audio_out=a.audio_out,
                     host_api=a.host_api, midi_in=a.midi_in, midi_api=a.midi_api, connect=a.connect,
                     record=a.record, overwrite=a.overwrite, bit_depth=a.bit_depth, spread=a.spread,
                     mod_target=a.mod_target, drums=a.drums)


def say(line: str) -> None:
    """A line for the player while the status line may be on screen: warnings on stdout, problems on stderr."""
    lead = "\n" if sys.stdout.isatty() else ""
    if line.startswith("warning:"):
        print(lead + line, flush=True)
    else:
        print(lead + f"gansynth-live: {line}", file=sys.stderr, flush=True)


def run(a: argparse.Namespace) -> None:
    from synth.runtime.model import NoteModel, live_threads

    stop_on_sigterm()
    if a.record:
        from synth.audio_io import check_output, subtype_for
        from synth.engine.recorder import TAKE_FORMATS

        check_output(a.record, TAKE_FORMATS, a.overwrite, what="record to")  # before any work
        subtype_for(a.record, a.bit_depth)
    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider, threads=live_threads())
    rig = LiveRig(rig_config(a, load_presets(a, model.info.z_dim)), model=model)
    t0, lost = time.monotonic(), False
    try:
        rig.open()
        t0 = time.monotonic()  # --seconds counts from when the sound starts
        _announce(rig, a)
        lost = _watch(rig, a, t0)
    except KeyboardInterrupt:
        pass
    finally:
        audio = rig.audio
        _close(rig)
        if lost and audio is not None and not a.exit_on_server_loss and audio.hostapi.startswith("JACK"):
            _restart_when_jack_returns(a, rig.last_take.path if rig.last_take is not None else None,
                                       None if a.seconds is None else a.seconds - (time.monotonic() - t0))
        if audio is not None and audio.abandoned:  # PortAudio would hang or abort tearing down a lost stream
            error = sys.exc_info()[1]
            if error is not None:
                print(f"gansynth-live: {error}", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_SERVER_LOST if lost else 1 if error is not None else 0)
    if lost:
        sys.exit(EXIT_SERVER_LOST)


def _announce(rig: LiveRig, a: argparse.Namespace) -> None:
    out, chain, midi = rig.audio, rig.chain, rig.midi
    assert out is not None and midi is not None  # play's rig is strict: both are open, or open() raised
    fx = f" + effects {out.fx_latency_ms:.1f} ms ({', '.join(e.name for e in chain.effects)})" if chain else ""
    latency = f"{out.latency_ms:.1f} ms" if out.latency_ms is not None else "not reported by the device"
    print(f"audio: {out.device_name}, {a.rate} Hz, block {a.block}, output latency {latency}{fx}", flush=True)
    for ours, theirs in rig.connected:
        print(f"JACK: {ours} -> {theirs}", flush=True)
    if out.recorder is not None:
        print(f"recording to {out.recorder.path}", flush=True)
    print(f"MIDI in: {midi.port_name}, channel {a.channel or 'omni'}; model on {rig.status().provider}; "
          f"timbre: {rig.status().preset or 'default'}", flush=True)


def _watch(rig: LiveRig, a: argparse.Namespace, t0: float) -> bool:
    """Ten times a second until --seconds: problems, the ready line, the status line; True if the server left."""
    from synth.engine.realtime import promote_thread
    from synth.engine.render_worker import RenderError

    promote_thread()  # this loop shares the GIL with the audio callback (synth.engine.realtime)
    announced, last, told_dropped, told_at = False, 0.0, 0, -5.0
    while a.seconds is None or time.monotonic() - t0 < a.seconds:
        time.sleep(0.1)
        st = rig.status()
        for line in rig.problems():
            say(line)
        if not announced and st.bank_complete and st.blocks > 0:  # rendered and the audio flows
            announced = True
            print(f"ready: {st.bank_size} notes rendered in {st.last_bank_s or 0.0:.2f} s "
                  f"(first after {(st.first_note_s or 0.0) * 1000:.0f} ms)", flush=True)
        if st.render_error:
            raise RenderError(st.render_error)
        if st.bad_midi > told_dropped and time.monotonic() - told_at >= 5.0:  # at most one line each 5 s
            say(f"MIDI: {st.bad_midi} malformed message(s) dropped so far; the sound goes on")
            told_dropped, told_at = st.bad_midi, time.monotonic()
        if rig.check_server():
            say(f"the audio output stopped: {rig.lost}" + ("; the take is kept" if st.recording else ""))
            return True
        if time.monotonic() - last >= 1.0:
            last = time.monotonic()
            line = (f"voices {st.voices:2d}  bank {st.bank_ready}/{st.bank_size}  underruns {st.underruns}  "
                    f"callback p50 {st.callback_p50_us:.0f} us p99 {st.callback_p99_us:.0f} us  "
                    f"waited notes {st.waited_notes}  MIDI messages {st.midi_messages}  dropped {st.bad_midi}")
            if sys.stdout.isatty():
                print("\r" + line, end="", flush=True)
            elif a.verbose:
                print(line, flush=True)
    return False


def _close(rig: LiveRig) -> None:
    """Close the rig (the take is finished first) and say what was played and recorded."""
    out = rig.audio
    recording = out is not None and out.recorder is not None
    try:
        path = rig.close()  # OutputError if the take cannot be finished: the part file stays, and says so
    finally:
        if sys.stdout.isatty():
            print()
        if out is not None:
            print(f"stopped: {out.blocks} blocks, {out.underruns} underruns"
                  + (f", {out.failed_blocks} failed blocks played as silence" if out.failed_blocks else ""),
                  flush=True)
    if recording and path is None:
        print("recorded nothing: no file written", flush=True)
    elif recording and rig.last_take is not None:
        take = rig.last_take
        print(f"recorded {take.seconds:.1f} s to {path}"
              + (f" ({take.dropped} frames lost: the disk was too slow)" if take.dropped else ""), flush=True)


def _restart_when_jack_returns(a: argparse.Namespace, take: Path | None, seconds_left: float | None) -> None:
    """Wait for the JACK server that went away and start this player again in its place (a fresh process: the
    old PortAudio cannot open the new server), recording into a new take; returns if told to stop or out of time."""
    from synth.engine.midi import jack_running

    print("gansynth-live: waiting for the audio server to come back (Ctrl-C stops)", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        while not jack_running():
            time.sleep(RECONNECT_PROBE_SECONDS)
            if seconds_left is not None and time.monotonic() - start >= seconds_left:
                return
    except KeyboardInterrupt:
        return
    argv = list(a.argv)
    if take is not None:  # argparse keeps the last value given: these replace the originals
        argv += ["--record", str(_next_free(take))]
    if seconds_left is not None:
        argv += ["--seconds", f"{max(seconds_left - (time.monotonic() - start), 0.1):.3f}"]
    print("gansynth-live: the audio server is back; starting again", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "synth", *argv])


def _next_free(path: Path) -> Path:
    """take.flac → take-2.flac (or -3, ...): the first name not taken."""
    n = 2
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return candidate
