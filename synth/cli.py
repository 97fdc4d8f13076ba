"""The one command-line entry point, `gansynth-live`, with a subcommand per job."""
from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Callable

from synth import __version__
from synth import options as opt

DEFAULT_DATA = Path.home() / ".cache" / "gansynth-live" / "data"
EXIT_SERVER_LOST = 3  # play's exit code when the audio server went away under it
RECONNECT_PROBE_SECONDS = 1.0  # how often play looks for a JACK server that went away


def cmd_dataset(a: argparse.Namespace) -> None:
    from synth.model import dataset

    summary = dataset.build(Path(a.out), a.soundfonts, a.programs, a.velocities, a.pitches, gain=a.gain,
                            workers=a.workers)
    print(json.dumps(summary, indent=2))


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_train(a: argparse.Namespace) -> None:
    from synth.model.voice import VoiceConfig
    from synth.model.voice_train import VoiceTrainConfig, train

    net = VoiceConfig(z_dim=a.z_dim, channels=a.channels or VoiceConfig().channels)
    cfg = VoiceTrainConfig(data_dir=a.data, out_dir=a.out, net=net, batch=a.batch, crop_frames=a.crop_frames,
                           lr=a.lr, kl_weight=a.kl_weight, limit_notes=a.limit_notes, seed=a.seed,
                           max_minutes=a.minutes, max_steps=a.steps, device=a.device, threads=a.threads,
                           init_from=a.init_from)
    sys.stdout.write(json.dumps(train(cfg)) + "\n")  # one write: under torchrun every process prints to one pipe
    sys.stdout.flush()


def cmd_export(a: argparse.Namespace) -> None:
    from synth.model.voice_export import export_checkpoint, reexport_model_file, write_card

    metrics = json.loads(Path(a.metrics).read_text()) if a.metrics else None
    if a.checkpoint.endswith(".onnx"):  # the checkpoint may be gone: the file's own weights, this version's graph
        from synth.runtime.model import NoteModel

        NoteModel(a.checkpoint, provider="cpu")  # a broken file stops here, in one line
        training = reexport_model_file(a.checkpoint, a.out, metrics)
    else:
        training = export_checkpoint(a.checkpoint, a.out, metrics or {})
    print(f"wrote {a.out}")
    if a.card:
        write_card(a.card, a.out, training, metrics or {})
        print(f"wrote {a.card}")


def cmd_eval(a: argparse.Namespace) -> None:
    from synth.model.evaluate import evaluate, format_table, save_json

    presets = []
    if a.model:
        from synth.runtime.model import NoteModel

        presets = _load_presets(a, NoteModel(a.model).info.z_dim)
    rows = evaluate(Path(a.data), a.model, per_pitch=a.per_pitch, real_limit=a.real_notes, presets=presets) \
        if not a.sound_only else []
    if rows:
        print(format_table(rows))
    for r in rows:
        if "families_of_256_z" in r:
            print(f"{r['set']}: {r['families_of_256_z']} distinct classifier families among 256 random latents")
    if a.checkpoint or (a.sound and a.model):
        rows.append(_sound_row(a, presets))
    if a.json:
        save_json(rows, a.json)
        print(f"wrote {a.json}")


def _sound_row(a: argparse.Namespace, presets: list) -> dict:
    """Per-family sound measures, real held-out notes beside ours: reconstructions through a checkpoint, or the
    model's notes at each family's preset."""
    from synth.model import voice_eval
    from synth.model.dataset import FAMILIES

    if a.checkpoint:
        render, what, rate = voice_eval.checkpoint_renderer(a.checkpoint), f"reconstructions by {a.checkpoint}", 200.0
    else:
        from synth.runtime.model import NoteModel

        model = NoteModel(a.model)
        # The frame rate whose sidebands are looked for: the voice's control rate, or an IF-Mel model's hop (512).
        rate = float(model.session.get_modelmeta().custom_metadata_map.get("control_rate",
                                                                             model.info.sample_rate / 512))
        latents = {FAMILIES.index(p.family): p.z for p in presets if p.family in FAMILIES}
        if not latents:
            raise ValueError("--sound needs presets with GM families (or --checkpoint for reconstructions)")
        render, what = voice_eval.model_renderer(a.model, latents), f"presets of {Path(a.model).name}"
    result = voice_eval.evaluate_sound(Path(a.data), render, rate, per_family=a.per_family,
                                       families=None if a.checkpoint else set(latents))
    print(f"sound by family, real / ours ({what}; {result['notes']} held-out notes):")
    print(voice_eval.format_family_table(result["families"]))
    return {"set": f"sound: {what}"} | result


def _load_presets(a: argparse.Namespace, z_dim: int) -> list:
    from synth.core.timbre import PRESETS_DIR, PresetError, scan_presets

    presets, problems = scan_presets(z_dim, a.presets or PRESETS_DIR)
    if problems and not presets:
        if a.presets:
            raise PresetError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        # The shipped presets belong to the shipped model; another model plays its default timbre instead.
        print(f"note: not using the shipped presets ({problems[0]})", file=sys.stderr)
    for problem in problems if presets else []:
        print(f"note: preset skipped: {problem}", file=sys.stderr)
    if getattr(a, "preset", None):
        chosen = [p for p in presets if p.name.lower() == a.preset.lower()]
        if not chosen:
            names = ", ".join(p.name for p in presets) or "none"
            raise ValueError(f"no preset named '{a.preset}' (have: {names})")
        presets = chosen
    return presets


def cmd_render(a: argparse.Namespace) -> None:
    import time

    from synth.audio_io import check_output, write_audio
    from synth.engine.offline import render_midi
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    check_output(a.out)  # before any work: a render that cannot be written is not rendered
    signal.signal(signal.SIGTERM, _raise_interrupt)  # a killed render removes its temp file
    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider)
    presets = _load_presets(a, model.info.z_dim)
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


def cmd_demo(a: argparse.Namespace) -> None:
    from synth.demo import DEMO_MIDI

    a.midi = str(DEMO_MIDI)
    cmd_render(a)


def cmd_play(a: argparse.Namespace) -> None:
    import time

    from synth.engine.audio import AudioOutput
    from synth.engine.engine import Engine
    from synth.engine.midi import MidiInput
    from synth.engine.realtime import promote_thread
    from synth.engine.render_worker import RenderError
    from synth.engine.routing import RoutingError, connect_outputs
    from synth.runtime.model import DEFAULT_MODEL, NoteModel, live_threads

    signal.signal(signal.SIGTERM, _raise_interrupt)
    if a.record:
        from synth.audio_io import check_output
        from synth.engine.recorder import TAKE_FORMATS

        check_output(a.record, TAKE_FORMATS, a.overwrite, what="record to")  # before any work
    model = NoteModel(a.model or DEFAULT_MODEL, provider=a.provider, threads=live_threads())
    presets = _load_presets(a, model.info.z_dim)
    engine = Engine(model, rate=a.rate, block=a.block, polyphony=a.polyphony, presets=presets, release=a.release,
                    channel=a.channel - 1 if a.channel else None)
    chain = None
    if a.effects:
        from synth.engine.effects import parse_chain

        chain = parse_chain(a.effects, a.rate)
    out = AudioOutput(engine, a.audio_out, a.host_api, block=a.block, latency=a.latency, effects=chain)
    if a.record:
        from synth.engine.recorder import Recorder

        out.recorder = Recorder(a.record, a.rate, out.channels, overwrite=a.overwrite)
    midi, lost = None, False
    try:
        engine.start()
        midi = MidiInput(engine.send, port=a.midi_in, api=a.midi_api)
        engine.renderer.wait_complete(timeout=120)  # the first bank renders before the audio starts
        out.start()
        fx = f" + effects {out.fx_latency_ms:.1f} ms ({', '.join(e.name for e in chain.effects)})" if chain else ""
        latency = f"{out.latency_ms:.1f} ms" if out.latency_ms is not None else "not reported by the device"
        print(f"audio: {out.device_name}, {a.rate} Hz, block {a.block}, output latency {latency}{fx}",
              flush=True)
        if a.connect:
            if not out.hostapi.startswith("JACK"):
                raise RoutingError(f"--connect wires JACK ports, but the audio goes to {out.device_name}; "
                                   "add --host-api jack")
            for ours, theirs in connect_outputs(a.connect):
                print(f"JACK: {ours} -> {theirs}", flush=True)
        if out.recorder is not None:
            print(f"recording to {out.recorder.path}", flush=True)
        print(f"MIDI in: {midi.port_name}, channel {a.channel or 'omni'}; model on {model.provider}; "
              f"timbre: {engine.status()['preset'] or 'default'}", flush=True)
        promote_thread()  # this loop shares the GIL with the audio callback (synth.engine.realtime)
        t0, announced, last, told, warned = time.monotonic(), False, 0.0, None, False
        told_dropped, told_at = 0, -5.0
        while a.seconds is None or time.monotonic() - t0 < a.seconds:
            time.sleep(0.1)
            st = engine.status()
            while chain is not None and chain.errors:
                print(("\n" if sys.stdout.isatty() else "") + f"gansynth-live: {chain.errors.pop(0)}", file=sys.stderr,
                      flush=True)
            clipping = chain.clipping() if chain is not None and not warned else None
            if clipping:
                warned = True
                print(("\n" if sys.stdout.isatty() else "") + f"warning: {clipping}", flush=True)
            if out.recorder is not None and out.recorder.error is not told:
                told = out.recorder.error
                print(("\n" if sys.stdout.isatty() else "") + f"gansynth-live: {told}", file=sys.stderr, flush=True)
            if not announced and engine.renderer.complete() and out.blocks > 0:  # rendered and the audio flows
                announced = True
                print(f"ready: {st['bank_size']} notes rendered in {st['last_bank_s']:.2f} s "
                      f"(first after {st['first_note_s'] * 1000:.0f} ms)", flush=True)
            if st["render_error"]:
                raise RenderError(st["render_error"])
            for problem in out.problems():
                print(f"gansynth-live: {problem}", file=sys.stderr, flush=True)
            dropped = midi.dropped + st["bad_midi"]
            if dropped > told_dropped and time.monotonic() - told_at >= 5.0:  # at most one line each 5 s
                print(f"gansynth-live: MIDI: {dropped} malformed message(s) dropped so far; the sound goes on",
                      file=sys.stderr, flush=True)
                told_dropped, told_at = dropped, time.monotonic()
            if out.check_server():
                print(f"gansynth-live: the audio output stopped: {out.device_name} went away (was its server "
                      "stopped?)" + ("; the take is kept" if out.recorder is not None else ""),
                      file=sys.stderr, flush=True)
                lost = True
                break
            if time.monotonic() - last >= 1.0:
                last = time.monotonic()
                p50, p99, _ = out.callback_us()
                line = (f"voices {st['voices']:2d}  bank {st['bank_ready']}/{st['bank_size']}  "
                        f"underruns {out.underruns}  callback p50 {p50:.0f} us p99 {p99:.0f} us  "
                        f"waited notes {st['waited_notes']}  MIDI messages {midi.messages}  dropped {dropped}")
                if sys.stdout.isatty():
                    print("\r" + line, end="", flush=True)
                elif a.verbose:
                    print(line, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        out.stop()  # first: closing rtmidi's JACK client (GIL held) waits for a cycle that waits for our callback
        if sys.stdout.isatty():
            print()
        print(f"stopped: {out.blocks} blocks, {out.underruns} underruns"
              + (f", {out.failed_blocks} failed blocks played as silence" if out.failed_blocks else ""), flush=True)
        if out.recorder is not None:  # the take is safe before anything else is let go
            path = out.recorder.close()  # OutputError if it cannot be finished: the part file stays, and says so
            if path is None:
                print("recorded nothing: no file written", flush=True)
            else:
                print(f"recorded {out.recorder.seconds:.1f} s to {path}"
                      + (f" ({out.recorder.dropped} frames lost: the disk was too slow)" if out.recorder.dropped
                         else ""), flush=True)
        if chain is not None:
            chain.close()
        if midi is not None:
            midi.close()
        engine.stop()
        if lost and not a.exit_on_server_loss and out.hostapi.startswith("JACK"):
            _restart_when_jack_returns(a, out.recorder.path if out.recorder is not None else None,
                                       None if a.seconds is None else a.seconds - (time.monotonic() - t0))
        if out.abandoned:  # PortAudio would hang or abort tearing down a stream its host API lost: leave now
            error = sys.exc_info()[1]
            if error is not None:
                print(f"gansynth-live: {error}", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_SERVER_LOST if lost else 1 if error is not None else 0)
    if lost:
        sys.exit(EXIT_SERVER_LOST)


def cmd_recover(a: argparse.Namespace) -> None:
    from synth.engine.recorder import recover

    path, seconds = recover(a.part, a.out)
    print(f"recovered {seconds:.1f} s into {path}")


def _restart_when_jack_returns(a: argparse.Namespace, take: Path | None, seconds_left: float | None) -> None:
    """Wait for the JACK server that went away and start this player again in its place (a fresh process: the
    old PortAudio cannot open the new server), recording into a new take; returns if told to stop or out of time."""
    import time

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


def cmd_devices(a: argparse.Namespace) -> None:
    import rtmidi

    from synth.engine.audio import output_devices
    from synth.engine.midi import APIS, MidiPortError, list_ports
    from synth.engine.routing import pulse_sinks

    print("Audio outputs (* = a virtual route a DAW can record from):")
    for d in output_devices():
        mark = f"  * virtual: {d['virtual']}" if d["virtual"] else ""
        print(f"  [{d['index']}] {d['name']} ({d['hostapi']}, {d['channels']} ch, {d['default_rate']:.0f} Hz, "
              f"low latency {d['low_latency_ms']} ms){mark}")
    sinks = pulse_sinks()
    if sinks:
        print("PulseAudio/PipeWire sinks (play to one with --audio-out SINK):")
        for s in sinks:
            print(f"  {s['name']} ({s['driver']})" + ("  * virtual: null sink, record its .monitor" if s["null"] else ""))
    print("MIDI inputs:")
    compiled = set(rtmidi.get_compiled_api())
    for name, const in APIS.items():
        if getattr(rtmidi, const) not in compiled:
            continue
        try:
            ports = list_ports(name)
        except MidiPortError as e:
            print(f"  {name}: {e}")
            continue
        for i, port in enumerate(ports):
            print(f"  {name} [{i}] {port}")
        if not ports:
            print(f"  {name}: no ports")


def cmd_bench(a: argparse.Namespace) -> None:
    from synth.engine import bench
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    path = a.model or str(DEFAULT_MODEL)
    model = NoteModel(path, provider=a.provider)
    report: dict = {"model": path, "provider": model.provider, "cpu_count": os.cpu_count()}
    report["bank"] = bench.bench_bank(model, a.rate)
    bank = bench.full_bank(model, a.rate)
    report["callback"] = bench.bench_callback(bank, a.block)
    report["note_latency"] = bench.bench_note_latency(bank, a.block)
    report["offline"] = bench.bench_offline(model, a.rate)
    if a.soak > 0:
        report["soak"] = bench.bench_soak(path, a.rate, a.block, a.soak)
        if a.floor:
            report["floor"] = bench.bench_floor(a.rate, a.block, a.soak)
    print(bench.format_report(report))
    if a.json:
        tmp = Path(a.json).with_name(f".{Path(a.json).name}.part")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, a.json)
        print(f"wrote {a.json}")


def _named_preset(presets: list, name: str):
    found = [p for p in presets if p.name.lower() == name.lower()]
    if not found:
        raise ValueError(f"no preset named '{name}' (have: {', '.join(p.name for p in presets) or 'none'})")
    return found[0]


def cmd_presets_curve(a: argparse.Namespace) -> None:
    from synth.model.timbre_map import format_curve, format_pairs, pair_curves, slerp_curve
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    if (a.start is None) != (a.end is None):
        raise ValueError("name two presets for one curve, or none for every pair")
    model = a.model or str(DEFAULT_MODEL)
    presets = _load_presets(a, NoteModel(model).info.z_dim)
    if a.start is None:
        curve = pair_curves(a.data, model, presets, a.steps)
        print(format_pairs(curve))
    else:
        curve = slerp_curve(a.data, model, _named_preset(presets, a.start), _named_preset(presets, a.end), a.steps)
        print(format_curve(curve))
    if a.json:
        tmp = Path(a.json).with_name(f".{Path(a.json).name}.part")
        tmp.write_text(json.dumps(curve, indent=2))
        os.replace(tmp, a.json)
        print(f"wrote {a.json}")


def cmd_presets_pictures(a: argparse.Namespace) -> None:
    from synth.core.timbre import preset_filename
    from synth.model.timbre_map import spectrogram_picture
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    model = a.model or str(DEFAULT_MODEL)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for preset in _load_presets(a, NoteModel(model).info.z_dim):
        path = out / preset_filename(preset.name).replace(".json", ".png")
        spectrogram_picture(model, preset, path)
        print(f"wrote {path}")


def cmd_presets_find(a: argparse.Namespace) -> None:
    import numpy as np

    from synth.model.dataset import FAMILIES
    from synth.model.timbre_map import find_presets
    from synth.runtime.model import DEFAULT_MODEL

    found, probs = find_presets(a.data, a.model or DEFAULT_MODEL, candidates=a.candidates, seed=a.seed,
                                generations=a.refine, names=a.only)
    families = np.bincount(probs.argmax(1), minlength=len(FAMILIES))
    print("top family of the candidates: " + ", ".join(f"{f} {n}" for f, n in zip(FAMILIES, families) if n))
    _write_found(a, found)


def cmd_presets_encode(a: argparse.Namespace) -> None:
    from synth.model.timbre_map import encode_presets
    from synth.runtime.model import DEFAULT_MODEL

    _write_found(a, encode_presets(a.data, a.checkpoint, a.model or DEFAULT_MODEL))


def _write_found(a: argparse.Namespace, found: list) -> None:
    """Save the presets both classifiers accept (by `firmness`: the family's probability at and 4° around the
    latent); with --replace-weaker, replace only a preset of the name that is less firm when measured again on
    this model (and keep the other, also where the search found nothing, with its scores brought up to date)."""
    from synth.core.timbre import PresetError, load_preset, preset_filename, save_preset
    from synth.model.timbre_map import recheck
    from synth.runtime.model import DEFAULT_MODEL

    for preset, p in found:
        existing = Path(a.out) / preset_filename(preset.name)
        if a.replace_weaker and existing.exists():
            try:
                kept, old = recheck(a.data, a.model or DEFAULT_MODEL, load_preset(existing, len(preset.z)))
            except PresetError:
                kept, old = None, -1.0
            # both measured now; 1e-4 only absorbs the batch size's rounding: a tie keeps it
            if kept is not None and (old >= p - 1e-4 or p < a.min_probability):
                save_preset(kept, a.out, overwrite=True)
                print(f"{preset.name:11s} {preset.family:21s} firmness {p:.2f}  kept {existing} ({old:.2f} on "
                      f"this model)")
                continue
        if p < a.min_probability:
            print(f"{preset.name:11s} {preset.family:21s} firmness {p:.2f}  not found: no candidate sounds like it")
            continue
        path = save_preset(preset, a.out, overwrite=a.overwrite or a.replace_weaker)
        print(f"{preset.name:11s} {preset.family:21s} firmness {p:.2f}  -> {path}")


def cmd_presets_list(a: argparse.Namespace) -> None:
    from synth.core.timbre import PRESETS_DIR, load_presets
    from synth.runtime.model import DEFAULT_MODEL, NoteModel

    z_dim = NoteModel(a.model or DEFAULT_MODEL).info.z_dim
    for i, p in enumerate(load_presets(z_dim, a.presets or PRESETS_DIR)):
        print(f"{i:3d}  {p.name:14s} {p.family:21s} {p.description}")


def _render_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("--model", help="ONNX model (default: the shipped one)")
    r.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    r.add_argument("--preset", help="play every channel with this preset")
    r.add_argument("--rate", type=opt.RATE, default=48000, help="output sample rate (8000-192000)")
    r.add_argument("--provider", help="onnxruntime provider: cuda, coreml, directml or cpu (default: best present)")


EFFECTS_HELP = ("effects chain: a saved chain (.json) or built-ins in order with parameters, e.g. "
                "'reverb:room_size=0.8,delay:mix=0.2' (reverb, delay, chorus, compressor, filter, gain) or a .vst3 path")


def _found_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="presets", help="directory to write the presets to")
    p.add_argument("--overwrite", action="store_true", help="replace presets of the same name")
    p.add_argument("--replace-weaker", action="store_true",
                   help="replace a preset of the same name only if it is less firm on this model")
    p.add_argument("--min-probability", type=float, default=0.3,
                   help="write a family's preset only if both classifiers give it at least this probability "
                        "(mean over the latent and eight latents 4° around it)")


def build_parser(extra: Callable[[argparse._SubParsersAction], None] | None = None) -> argparse.ArgumentParser:
    """The command line; `extra` adds commands from packages above synth (the GUI adds `gui`)."""
    p = argparse.ArgumentParser(prog="gansynth-live", description=__doc__)
    p.add_argument("--version", action="version", version=f"gansynth-live {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ds = sub.add_parser("dataset", help="build the NSynth-like note set from soundfonts")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    b = ds_sub.add_parser("build", help="render notes with FluidSynth (resumable)")
    b.add_argument("--out", default=str(DEFAULT_DATA))
    b.add_argument("--soundfonts", nargs="+", help="fluidr3 timgm6mb musescore musescore-hq (default: all installed)")
    b.add_argument("--programs", type=opt.MIDI_NUMBERS, help="GM programs, e.g. 0-7,40 (default 0-111)")
    b.add_argument("--velocities", type=opt.int_list(1, 127), help="default 40,80,120")
    b.add_argument("--pitches", type=opt.MIDI_NUMBERS, help="MIDI pitches (default 24-84)")
    b.add_argument("--gain", type=float, default=1.5, help="FluidSynth master gain")
    b.add_argument("--workers", type=int, default=2)
    b.set_defaults(func=cmd_dataset)

    t = sub.add_parser("train", help="train the voice (a VAE over the harmonic-plus-noise decoder); resumes "
                                     "from OUT/checkpoint.pt")
    t.add_argument("--data", default=str(DEFAULT_DATA))
    t.add_argument("--out", required=True, help="run directory (checkpoint.pt, log.jsonl)")
    t.add_argument("--z-dim", type=int, default=64)
    t.add_argument("--channels", type=int, nargs=5, help="widths of the five upsampling blocks (default 128 128 96 64 48)")
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--crop-frames", type=int, default=96, help="5 ms frames of audio synthesised per note per step")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--kl-weight", type=float, default=1e-3)
    t.add_argument("--limit-notes", type=int, default=12000, help="train on a random subset of this many notes")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--minutes", type=float, help="stop and checkpoint after this long")
    t.add_argument("--steps", type=int, help="stop and checkpoint at this step")
    t.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if present)")
    t.add_argument("--threads", type=int, help="CPU threads for torch")
    t.add_argument("--init-from", metavar="MODEL", help="start a new run from a checkpoint's or an exported "
                                                        ".onnx's generator (a fine-tune); the encoder starts anew "
                                                        "unless a checkpoint gives it")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="export a checkpoint's voice to ONNX with its metadata")
    e.add_argument("checkpoint", help="RUN/checkpoint.pt, or an exported .onnx to export again (new metrics)")
    e.add_argument("-o", "--out", required=True)
    e.add_argument("--metrics", help="JSON written by 'gansynth-live eval --json', stored in the model file")
    e.add_argument("--card", help="also write a Markdown model card here")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("eval", help="PA, FID, NDB and a YIN pitch check: real held-out notes vs a model")
    v.add_argument("--data", default=str(DEFAULT_DATA))
    v.add_argument("--model", help="ONNX model to evaluate (omit for the real-data reference row only)")
    v.add_argument("--per-pitch", type=int, default=8, help="random latents per pitch")
    v.add_argument("--real-notes", type=int, default=1000, help="held-out real notes in the reference row")
    v.add_argument("--presets", type=opt.existing_dir,
                   help="preset directory to evaluate a row each for (default: the shipped presets/)")
    v.add_argument("--json", help="also write the rows as JSON")
    v.add_argument("--sound", action="store_true", help="also measure each family's sound (ripple, sidebands, HNR, "
                                                         "attack, decay, energy above 8 kHz, level) beside the real "
                                                         "held-out notes, at the family's preset")
    v.add_argument("--checkpoint", help="measure the sound of a training checkpoint's reconstructions instead")
    v.add_argument("--sound-only", action="store_true", help="skip the classifier rows")
    v.add_argument("--per-family", type=int, default=24, help="held-out notes per family for --sound")
    v.set_defaults(func=cmd_eval)

    r = sub.add_parser("render", help="render a MIDI file offline to WAV/FLAC with the engine")
    r.add_argument("midi", help="input .mid file")
    r.add_argument("-o", "--out", required=True, help="output .wav or .flac (written atomically)")
    r.add_argument("--channels", type=opt.MIDI_CHANNELS,
                   help="render only these MIDI channels (1-16), e.g. 2,3: a stem")
    r.add_argument("--effects", help=EFFECTS_HELP)
    _render_options(r)
    r.set_defaults(func=cmd_render)

    pl = sub.add_parser("play", help="play live: MIDI in, audio out (Ctrl-C stops)")
    _render_options(pl)
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
    pl.add_argument("--exit-on-server-loss", action="store_true",
                    help="when the audio server goes away, save the take and exit with code 3 (default: under JACK, "
                         "wait for it and start again, recording into a new take)")
    pl.add_argument("-v", "--verbose", action="store_true", help="print the status line every second")
    pl.set_defaults(func=cmd_play)

    rc = sub.add_parser("recover", help="finish the take a stopped or crashed --record left in a hidden .part file")
    rc.add_argument("part", help="the part file, e.g. .take.flac.x1y2z3.part")
    rc.add_argument("-o", "--out", help="the take to write (default: the name it was recorded to)")
    rc.set_defaults(func=cmd_recover)

    dv = sub.add_parser("devices", help="list audio outputs and MIDI inputs")
    dv.set_defaults(func=cmd_devices)

    pr = sub.add_parser("presets", help="list presets, or find named ones with the family classifier")
    pr_sub = pr.add_subparsers(dest="action", required=True)
    pf = pr_sub.add_parser("find", help="timbre map: one preset per GM family, checked by the classifier")
    pf.add_argument("--data", default=str(DEFAULT_DATA), help="note set the classifier is trained on")
    pf.add_argument("--model", help="ONNX model (default: the shipped one)")
    pf.add_argument("--candidates", type=int, default=1024, help="random latents to search")
    pf.add_argument("--seed", type=int, default=0)
    pf.add_argument("--refine", type=int, default=0, metavar="GENERATIONS",
                    help="walk each preset from its best candidate towards its family by an evolution strategy "
                         "(32 latents a generation)")
    pf.add_argument("--only", action="append", metavar="NAME", help="search only this preset (repeatable)")
    _found_arguments(pf)
    pf.set_defaults(func=cmd_presets_find)
    pe = pr_sub.add_parser("encode", help="a preset per GM family from real notes, through a training "
                                          "checkpoint's encoder, checked by the classifiers")
    pe.add_argument("checkpoint", help="the voice's training checkpoint (it holds the encoder)")
    pe.add_argument("--data", default=str(DEFAULT_DATA), help="note set to encode and train the classifiers on")
    pe.add_argument("--model", help="the checkpoint's exported ONNX model (default: the shipped one)")
    _found_arguments(pe)
    pe.set_defaults(func=cmd_presets_encode)
    pc = pr_sub.add_parser("curve", help="classifier family probabilities along the slerp between two presets "
                                         "(or, with no names, a summary for every pair)")
    pc.add_argument("start", nargs="?", help="preset name")
    pc.add_argument("end", nargs="?", help="preset name")
    pc.add_argument("--data", default=str(DEFAULT_DATA), help="note set the classifier is trained on")
    pc.add_argument("--model", help="ONNX model (default: the shipped one)")
    pc.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    pc.add_argument("--steps", type=int, default=11)
    pc.add_argument("--json", help="also write the curve as JSON")
    pc.set_defaults(func=cmd_presets_curve)
    pp = pr_sub.add_parser("pictures", help="spectrogram pictures of every preset across the keyboard")
    pp.add_argument("--model", help="ONNX model (default: the shipped one)")
    pp.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    pp.add_argument("--out", required=True, help="folder for the PNG files")
    pp.set_defaults(func=cmd_presets_pictures)
    pls = pr_sub.add_parser("list", help="list the presets (program change numbers first)")
    pls.add_argument("--model", help="ONNX model whose z size the presets must have")
    pls.add_argument("--presets", type=opt.existing_dir, help="preset directory (default: the shipped presets/)")
    pls.set_defaults(func=cmd_presets_list)

    bn = sub.add_parser("bench", help="measure bank render, callback cost, note latency, offline speed and a soak")
    bn.add_argument("--model", help="ONNX model (default: the shipped one)")
    bn.add_argument("--provider", help="onnxruntime provider (default: best present)")
    bn.add_argument("--rate", type=opt.RATE, default=48000)
    bn.add_argument("--block", type=opt.BLOCK, default=128)
    bn.add_argument("--soak", type=opt.float_in(0.0, 1e6, "seconds"), default=300,
                    help="seconds of soak on a private JACK dummy server (0: skip)")
    bn.add_argument("--floor", action="store_true",
                    help="after the soak, measure the machine's own floor: as long with a client that writes silence")
    bn.add_argument("--json", help="also write the numbers as JSON")
    bn.set_defaults(func=cmd_bench)

    d = sub.add_parser("demo", help="render the bundled demo piece with the default model and presets")
    d.add_argument("-o", "--out", default="demo.wav")
    _render_options(d)
    d.set_defaults(func=cmd_demo)
    if extra is not None:
        extra(sub)
    return p


def _let_portaudio_go() -> None:
    if "sounddevice" in sys.modules:
        from synth.engine.audio import skip_portaudio_teardown_if_jack_is_gone

        skip_portaudio_teardown_if_jack_is_gone()


def main(argv: list[str] | None = None,
         extra: Callable[[argparse._SubParsersAction], None] | None = None) -> None:
    args = build_parser(extra).parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # play starts itself again after a lost server
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except ModuleNotFoundError as e:
        if e.name not in ("torch", "onnx", "PIL"):
            raise
        sys.exit(f"gansynth-live: '{args.command}' needs {e.name}, which this install does not have; "
                 "install the training extras: pip install 'gansynth-live[train]'")
    except (OSError, ValueError) as e:  # every user-facing error class derives from these
        sys.exit(f"gansynth-live: {e}")
    except pickle.UnpicklingError as e:  # torch.load(weights_only=True) refusing a checkpoint with code in it
        why = next((line.strip().rstrip(".") for line in str(e).splitlines() if "GLOBAL" in line.upper()
                    and ("unsupported" in line.lower() or "blocked" in line.lower())), "it is not a torch checkpoint")
        sys.exit(f"gansynth-live: checkpoint not loaded: it holds more than weights ({why})")
    finally:
        _let_portaudio_go()
