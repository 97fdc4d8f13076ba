"""`render` and `demo`: a MIDI file offline through the same voices and bank as `play`, to WAV/FLAC."""
from __future__ import annotations

import argparse
import sys

from synth.commands import options as opt
from synth.commands.common import EFFECTS_HELP, load_presets, render_options, stop_on_sigterm


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("render", help="render a MIDI file offline to WAV/FLAC with the engine")
    r.add_argument("midi", help="input .mid file")
    r.add_argument("-o", "--out", required=True, help="output .wav or .flac (written atomically)")
    r.add_argument("--channels", type=opt.MIDI_CHANNELS,
                   help="render only these MIDI channels (1-16), e.g. 2,3: a stem")
    r.add_argument("--effects", help=EFFECTS_HELP)
    render_options(r)
    r.set_defaults(func=run)

    d = sub.add_parser("demo", help="render the bundled demo piece with the default model and presets")
    d.add_argument("-o", "--out", default="demo.wav")
    render_options(d)
    d.set_defaults(func=run_demo)


def run_demo(a: argparse.Namespace) -> None:
    from synth.demo import DEMO_MIDI

    a.midi = str(DEMO_MIDI)
    run(a)


def run(a: argparse.Namespace) -> None:
    import time

    from synth.audio_io import check_output, write_audio
    from synth.engine.offline import render_midi
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    check_output(a.out)  # before any work: a render that cannot be written is not rendered
    stop_on_sigterm()  # a killed render removes its temp file
    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider)
    presets = load_presets(a, model.info.z_dim)
    t0 = time.perf_counter()
    channels = {c - 1 for c in a.channels} if getattr(a, "channels", None) else None
    chain = None
    if getattr(a, "effects", None):
        from synth.engine.effects import parse_chain

        chain = parse_chain(a.effects, a.rate)
    result = render_midi(a.midi, model, presets, rate=a.rate, progress=sys.stderr.isatty(), channels=channels)
    audio = result.audio
    if chain is not None:
        from synth.engine.effects import EffectError, apply_offline

        audio = apply_offline(chain, audio)
        chain.close()
        if chain.errors:  # the file would lack an effect the user asked for
            raise EffectError(f"{chain.errors[0].split(';')[0]}; nothing was written")
        clipping = chain.clipping()
        if clipping:
            print(f"warning: {clipping}", flush=True)
    elapsed = time.perf_counter() - t0
    write_audio(a.out, audio, result.rate)
    seconds = len(audio) / result.rate
    print(f"wrote {a.out}: {seconds:.1f} s, {result.notes} notes, timbres {', '.join(result.presets)}; "
          f"rendered in {elapsed:.1f} s ({seconds / elapsed:.0f}x real time, {model.provider})")
    if result.skipped_drums:
        print(f"skipped {result.skipped_drums} drum notes on channel 10 (the model has no percussion)")
