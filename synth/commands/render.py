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
    r.add_argument("--drums", metavar="SOUNDFONT", help="play channel 10 with FluidSynth from this .sf2 and mix it "
                                                        "in (default: skip drums and count them)")
    r.add_argument("--normalize", type=normalize_target, metavar="DBFS|LUFS",
                   help="scale the render so its peak is at this level (e.g. -1), or its integrated loudness "
                        "(BS.1770) is at this target (e.g. --normalize=-16LUFS)")
    r.add_argument("--flat-levels", action="store_true",
                   help="every GM program equally loud, as the presets play live (default: each program at the "
                        "level a GM sound set gives it at each key, so the file keeps its balance)")
    render_options(r)
    r.set_defaults(func=run, bit_depth=16)

    d = sub.add_parser("demo", help="render the bundled demo piece with the default model and presets")
    d.add_argument("-o", "--out", default="demo.wav")
    render_options(d)
    d.set_defaults(func=run_demo, bit_depth=16)


def normalize_target(text: str) -> tuple[float, str]:
    """`--normalize`: '-1' (peak dBFS, -60 to 0) or '-16LUFS' (integrated loudness, -70 to 0)."""
    unit = "LUFS" if text.strip().upper().endswith("LUFS") else "dBFS"
    number = text.strip()[:-4] if unit == "LUFS" else text
    value = opt.float_in(-70.0 if unit == "LUFS" else -60.0, 0.0, unit)(number.strip())
    return value, unit


def run_demo(a: argparse.Namespace) -> None:
    from synth.demo import DEMO_MIDI

    a.midi = str(DEMO_MIDI)
    run(a)


def run(a: argparse.Namespace) -> None:
    import time

    import numpy as np

    from synth.audio_io import check_output, normalize_peak, subtype_for, write_audio
    from synth.engine.offline import render_midi
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    check_output(a.out)  # before any work: a render that cannot be written is not rendered
    subtype = subtype_for(a.out, a.bit_depth)
    stop_on_sigterm()  # a killed render removes its temp file
    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider)
    presets = load_presets(a, model.info.z_dim)
    t0 = time.perf_counter()
    channels = {c - 1 for c in a.channels} if getattr(a, "channels", None) else None
    chain = None
    if getattr(a, "effects", None):
        from synth.engine.effects import parse_chain

        chain = parse_chain(a.effects, a.rate)
    result = render_midi(a.midi, model, presets, rate=a.rate, progress=sys.stderr.isatty(), channels=channels,
                         spread=a.spread, mod_target=a.mod_target, drums=getattr(a, "drums", None),
                         gm_levels=not getattr(a, "flat_levels", False))
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
    if getattr(a, "normalize", None) is not None:
        level, unit = a.normalize
        if unit == "LUFS":
            from synth.engine.loudness import integrated_lufs

            before = integrated_lufs(audio, result.rate)
            if before == float("-inf"):
                print("not normalized: the render is silent")
            else:
                audio *= 10 ** ((level - before) / 20)
                peak = float(np.abs(audio).max())
                print(f"normalized the loudness from {before:.1f} to {level:g} LUFS ({level - before:+.1f} dB)"
                      + (f"; its peak is at {20 * np.log10(peak):+.1f} dBFS, so a PCM file clips there (choose a "
                         "lower target or --bit-depth 32)" if peak > 1.0 and subtype != "FLOAT" else ""))
        else:
            print(f"normalized the peak to {level:g} dBFS ({normalize_peak(audio, level):+.1f} dB)")
    write_audio(a.out, audio, result.rate, subtype)
    seconds = len(audio) / result.rate
    print(f"wrote {a.out}: {seconds:.1f} s stereo ({a.bit_depth}-bit{' float' if a.bit_depth == 32 else ''}; "
          f"the MIDI file lasts {result.midi_seconds:.1f} s), {result.notes} notes, timbres "
          f"{', '.join(result.presets)}; rendered in {elapsed:.1f} s ({seconds / elapsed:.0f}x real time, "
          f"{model.provider})")
    if result.skipped_drums:
        print(f"skipped {result.skipped_drums} drum notes on channel 10 (the model has no percussion; "
              "--drums SOUNDFONT.sf2 plays them with FluidSynth)")
    elif result.drum_notes:
        print(f"drums: {result.drum_notes} notes on channel 10 played by FluidSynth from {a.drums}")
