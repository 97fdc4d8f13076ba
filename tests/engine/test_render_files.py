"""`render` as a studio expects it: stereo files through libsndfile at 16/24-bit or 32-bit float, WAV or FLAC,
lasting to the MIDI file's end of track, optional peak normalisation; GM drums skipped and counted in one line,
or played by FluidSynth and mixed in at their samples."""
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from synth.engine.offline import read_midi_file, render_midi
from synth.runtime.model import NoteModel

RATE = 48000
GM_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian fluid-soundfont-gm (the Makefile installs it)
HITS = [(0.2503, 36), (0.5011, 38), (0.7519, 42), (1.0027, 36), (1.2601, 38), (1.5007, 46), (1.7717, 36),
        (2.0093, 38)]


def song(path, hits=HITS, tail=5.0):
    """A melodic note on channel 1 and drum hits on channel 10, at 120 bpm (960 ticks a second), whose end of
    track comes `tail` seconds after its last event."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = [(0.0, mido.Message("note_on", channel=0, note=60, velocity=100)),
              (1.0, mido.Message("note_off", channel=0, note=60, velocity=0))]
    for t, key in hits:
        events += [(t, mido.Message("note_on", channel=9, note=key, velocity=110)),
                   (t + 0.05, mido.Message("note_off", channel=9, note=key, velocity=0))]
    now = 0
    for t, msg in sorted(events, key=lambda e: e[0]):
        tick = round(t * 960)
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(tail * 960)))
    mid.save(path)
    return path


def render(tone_model, midi, out, *args):
    return subprocess.run([sys.executable, "-m", "synth", "render", str(midi), "-o", str(out), "--model",
                           str(tone_model), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name,args,subtype", [("a.wav", [], "PCM_16"), ("b.wav", ["--bit-depth", "24"], "PCM_24"),
                                               ("c.wav", ["--bit-depth", "32"], "FLOAT"),
                                               ("d.flac", ["--bit-depth", "24"], "PCM_24")])
def test_render_writes_stereo_files_as_long_as_the_midi(tone_model, tmp_path, name, args, subtype):
    midi = song(tmp_path / "s.mid")
    _, length = read_midi_file(midi)
    assert length == pytest.approx(2.0093 + 0.05 + 5.0, abs=0.002)  # last note-off, then 5 s to the end
    proc = render(tone_model, midi, tmp_path / name, *args)
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(tmp_path / name))
    assert info.channels == 2 and info.subtype == subtype and info.samplerate == RATE
    assert info.frames >= length * RATE
    skipped = [line for line in proc.stdout.splitlines() if "drum" in line]
    assert skipped == [f"skipped {len(HITS)} drum notes on channel 10 (the model has no percussion; --drums "
                       "SOUNDFONT.sf2 plays them with FluidSynth)"]
    assert not list(tmp_path.glob(".*part*"))


def test_normalize_and_bad_bit_depths(tone_model, tmp_path):
    midi = song(tmp_path / "s.mid", hits=[])
    proc = render(tone_model, midi, tmp_path / "n.wav", "--bit-depth", "32", "--normalize", "-1")
    assert proc.returncode == 0, proc.stderr
    audio, _ = sf.read(str(tmp_path / "n.wav"), dtype="float32")
    assert np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), rel=1e-5)
    proc = render(tone_model, midi, tmp_path / "l.wav", "--bit-depth", "32", "--normalize=-20LUFS")
    assert proc.returncode == 0 and "to -20 LUFS" in proc.stdout, proc.stderr
    from synth.engine.loudness import integrated_lufs

    audio, _ = sf.read(str(tmp_path / "l.wav"), dtype="float32")
    assert integrated_lufs(audio, RATE) == pytest.approx(-20.0, abs=0.05)
    proc = render(tone_model, midi, tmp_path / "f.flac", "--bit-depth", "32")
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gansynth-live:")]
    assert proc.returncode != 0 and lines == ["gansynth-live: FLAC holds 16 or 24 bits, not 32-bit float: use "
                                              "--bit-depth 16 or 24, or a .wav file"]
    assert not (tmp_path / "f.flac").exists()
    proc = render(tone_model, midi, tmp_path / "x.wav", "--drums", str(tmp_path / "none.sf2"))
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gansynth-live:")]
    assert proc.returncode != 0 and len(lines) == 1 and "SoundFont" in lines[0] and "not found" in lines[0]


def fluidsynth_hit(key, velocity, frames):
    """FluidSynth alone: one drum hit of the GM kit from frame 0, as pyfluidsynth renders it."""
    import fluidsynth

    fs = fluidsynth.Synth(gain=0.2, samplerate=float(RATE))
    try:
        sfid = fs.sfload(str(GM_SOUNDFONT))
        fs.program_select(9, sfid, 128, 0)
        fs.noteon(9, key, velocity)
        return fs.get_samples(frames).reshape(-1, 2)[:, 0].astype(np.float64)
    finally:
        fs.delete()


def test_drums_play_with_fluidsynth_aligned_to_their_samples(tone_model, tmp_path):
    """Each hit of the drum track lies where FluidSynth alone, starting the hit at its exact MIDI sample, puts it:
    within 1 ms (the cross-correlation peak of 30 ms of the hit)."""
    assert GM_SOUNDFONT.is_file(), "fluid-soundfont-gm is not installed (the Makefile's APT_PKGS has it)"
    midi = song(tmp_path / "s.mid")
    result = render_midi(midi, NoteModel(tone_model, provider="cpu"), [], rate=RATE, channels={9},
                         drums=GM_SOUNDFONT)
    assert result.drum_notes == len(HITS) and result.skipped_drums == 0
    left = result.audio[:, 0].astype(np.float64)
    n = int(0.03 * RATE)
    lags = []
    for t, key in HITS:
        ref = fluidsynth_hit(key, 110, n)
        at = int(round(t * RATE))
        search = 96  # look 2 ms either side
        seg = left[at - search:at + search + n]
        corr = np.correlate(seg, ref, mode="valid")
        lags.append((int(np.argmax(corr)) - search) / RATE)
    print("drum hit offsets against FluidSynth alone, ms:", np.round(np.array(lags) * 1000, 3))
    assert np.max(np.abs(lags)) <= 0.001, lags
    # and the melodic channel still plays with the drums
    both = render_midi(midi, NoteModel(tone_model, provider="cpu"), [], rate=RATE, drums=GM_SOUNDFONT)
    assert both.notes == 1 and np.abs(both.audio[int(0.1 * RATE):int(0.2 * RATE)]).max() > 0.01


def test_live_drums_sound_in_the_block_after_their_note_on(tone_model):
    """`play --drums`: channel 10 goes to FluidSynth inside the engine's block (not to the voices), and a hit
    starts in the next block at the same frame as the voices' notes do, with FluidSynth alone's waveform."""
    from synth.engine.engine import Engine

    engine = Engine(NoteModel(tone_model, provider="cpu"), rate=RATE, block=128, render_process=False,
                    drums=str(GM_SOUNDFONT))
    try:
        for _ in range(4):
            engine.process(128)
        engine.send(0x99, 38, 110)
        out = np.concatenate([engine.process(128).copy() for _ in range(12)])
        assert engine.voices.n == 0 and not engine.voices.events  # the voices never saw it
        ref = fluidsynth_hit(38, 110, len(out))
        corr = np.correlate(out[:, 0].astype(np.float64), ref[:256], mode="valid")
        assert int(np.argmax(corr)) == 0  # starts at frame 0 of the first block after the note-on
        assert np.corrcoef(out[:1024, 0], ref[:1024])[0, 1] > 0.95  # FluidSynth's own hit (its reverb on top)
    finally:
        engine.stop()
    with pytest.raises(ValueError, match="not found"):
        Engine(NoteModel(tone_model, provider="cpu"), rate=RATE, render_process=False, drums="/nonexistent.sf2")


def test_live_drums_allocate_no_buffers(tone_model):
    """Playing FluidSynth's drums adds no buffer to the engine's block: what the engine allocates per block with
    drums (Python objects only) grows by less than one drum block's copy over the engine without them."""
    from synth.engine.engine import Engine
    from tests.allocation import peak_allocation

    peaks = []
    for drums in (None, str(GM_SOUNDFONT)):
        engine = Engine(NoteModel(tone_model, provider="cpu"), rate=RATE, block=1024, render_process=False,
                        drums=drums)
        try:
            engine.renderer.render_notes(0, [(60, 127)] + [(k, 127) for k in range(38, 46)])
            engine.note_on(60)
            for _ in range(2):
                engine.process(1024)

            def step(k: int, engine: Engine = engine) -> None:
                engine.send(0x99, 38 + k % 8, 100)
                engine.process(1024)

            peaks.append(peak_allocation(step, 100))
        finally:
            engine.stop()
    assert peaks[0] < 16384 and peaks[1] - peaks[0] < 4096, peaks  # a drum block's copy: 1024 × 2 × 4 = 8 KB


def test_integrated_loudness_reads_the_bs1770_reference():
    """BS.1770's reference: a 997 Hz sine at 0 dBFS in one channel reads -3.01 LUFS; in both, 0."""
    from synth.engine.loudness import integrated_lufs

    t = np.arange(5 * RATE) / RATE
    x = np.sin(2 * np.pi * 997 * t)
    assert integrated_lufs(x, RATE) == pytest.approx(-3.01, abs=0.02)
    assert integrated_lufs(np.stack([x, x], axis=1), RATE) == pytest.approx(0.0, abs=0.02)
    quiet_then_loud = np.concatenate([0.001 * x, 0.5 * x])  # the gates leave the near-silent half out (ungated:
    assert integrated_lufs(quiet_then_loud, RATE) == pytest.approx(-3.01 + 20 * np.log10(0.5), abs=0.2)  # -12)
    assert integrated_lufs(np.zeros(RATE), RATE) == float("-inf")
