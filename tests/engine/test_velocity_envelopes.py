"""Velocity layers and the model's own envelopes, through real ONNX models (built with the onnx helper API) and the
real runtime, bank and voices: layer choice and blend by velocity, percussive notes that keep decaying instead of
looping, sustained notes that loop, releases that follow the model, and older models that still play."""

import mido
import numpy as np
import pytest

from synth.engine.bank import N_KEYS, BankRenderer, render_into, render_order
from synth.engine.envelope import analyse
from synth.engine.offline import render_midi
from synth.engine.voices import Voices
from synth.runtime.model import ModelError, NoteModel
from tests.allocation import peak_allocation
from tests.onnx_voices import RATE, envelope, tone_onnx

BLOCK = 256
LAYERS = [40, 80, 120]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("voices")
    return {
        "sustained": NoteModel(tone_onnx(d / "s.onnx", envelope("sustained"), layers=LAYERS), provider="cpu"),
        "percussive": NoteModel(tone_onnx(d / "p.onnx", envelope("percussive"), layers=LAYERS), provider="cpu"),
        "steady": NoteModel(tone_onnx(d / "n.onnx", envelope("steady"), release_seconds=0.0), provider="cpu"),
        "old": NoteModel(tone_onnx(d / "o.onnx", envelope("sustained"), velocity=False), provider="cpu"),
    }


def voices_for(model, max_block=BLOCK, match_loudness=False, **kw):
    renderer = BankRenderer(model, RATE, polyphony=8, match_loudness=match_loudness)
    renderer.set_timbre(np.zeros(model.info.z_dim, np.float32))
    renderer.render_all()
    return Voices(renderer, max_block=max_block, polyphony=8, **kw)


def run(v, seconds):
    return np.concatenate([v.process(BLOCK)[:, 0].copy() for _ in range(int(seconds * RATE / BLOCK))])  # centred: left = mono


def amplitude(x, f, start, stop):
    """Amplitude of the sinusoid at f in x[start:stop] seconds (a whole number of its periods)."""
    a = int(start * RATE)
    n = int(round(int((stop - start) * f) * RATE / f))
    t = np.arange(n) / RATE
    return 2 * abs(np.sum(x[a:a + n] * np.exp(-2j * np.pi * f * t))) / n


def rms_db(x, start, stop, step=0.05):
    edges = np.arange(int(start * RATE), int(stop * RATE), int(step * RATE))
    return np.array([20 * np.log10(np.sqrt(np.mean(x[e:e + int(step * RATE)] ** 2)) + 1e-12) for e in edges])


def hz(pitch):
    return 440 * 2 ** ((pitch - 69) / 12)


def expected(velocity):
    """Fundamental and third-harmonic amplitudes the tone model's layers give a note of this velocity: the two
    layers around it blended linearly, each at the GM gain relative to its own velocity, master gain 0.5."""
    layers = np.array(LAYERS, float)
    if velocity <= layers[0] or velocity >= layers[-1]:
        parts = [(1.0, layers[0] if velocity <= layers[0] else layers[-1])]
    else:
        hi = int(np.searchsorted(layers, velocity, side="right"))
        lo_v, hi_v = layers[hi - 1], layers[hi]
        w = (velocity - lo_v) / (hi_v - lo_v)
        parts = [(1 - w, lo_v), (w, hi_v)]
    f1 = sum(w * (velocity / lv) ** 2 * (lv / 127) for w, lv in parts)
    f3 = sum(w * (velocity / lv) ** 2 * (lv / 127) ** 2 for w, lv in parts)
    return 0.5 * f1, 0.5 * f3


def test_runtime_takes_velocity_and_its_layers(models):
    model = models["sustained"]
    assert model.takes_velocity and model.info.velocity_layers == (40, 80, 120)
    z = np.zeros((2, 4), np.float32)
    audio = model.render(z, [60, 60], [40 / 127, 120 / 127])
    for row, v in zip(audio, (40, 120)):  # brighter and louder with velocity
        f1, f3 = amplitude(row, hz(60), 0.5, 1.5), amplitude(row, 3 * hz(60), 0.5, 1.5)
        assert f1 == pytest.approx(v / 127, rel=0.01) and f3 / f1 == pytest.approx(v / 127, rel=0.01)
    default = model.render(z[:1], [60])[0]  # no velocities: the top layer's
    assert np.allclose(default, audio[1], atol=1e-6)
    with pytest.raises(ModelError, match="between 0 and 1"):
        model.render(z[:1], [60], [1.5])
    with pytest.raises(ModelError, match="one velocity per pitch"):
        model.render(z, [60, 61], [0.5])


def test_runtime_refuses_bad_velocity_layers(tmp_path):
    env = envelope("steady")
    for layers, velocity, message in (([80, 40], True, "rising MIDI velocities"),
                                      ([0, 200], True, "rising MIDI velocities"),
                                      ([40, 80], False, "declares 2 velocity layers but has no 'velocity' input")):
        path = tone_onnx(tmp_path / "bad.onnx", env, velocity=velocity, layers=layers)
        with pytest.raises(ModelError, match=message) as e:
            NoteModel(path)
        assert "\n" not in str(e.value)


def test_old_model_has_one_layer_and_ignores_velocities(tone_model, models):
    for model in (NoteModel(tone_model, provider="cpu"), models["old"]):
        assert not model.takes_velocity and model.info.velocity_layers == (127,)
        z = np.zeros((1, model.info.z_dim), np.float32)
        assert np.array_equal(model.render(z, [60], [0.1]), model.render(z, [60]))
    v = voices_for(models["old"])  # plays at the GM gain re velocity 127, as before layers existed
    v.handle(0x90, 60, 64)
    out = run(v, 1.0)
    assert amplitude(out, hz(60), 0.3, 0.9) == pytest.approx(0.5 * (64 / 127) ** 2 * 0.5, rel=0.02)


def test_bank_renders_every_layer_with_the_played_ones_first(models):
    renderer = BankRenderer(models["sustained"], RATE, match_loudness=False)
    lane = renderer.lanes[0]
    lane.held[60], lane.velocity[60], lane.last_velocity[0] = 1, 100, 100
    renderer.set_timbre(np.zeros(4, np.float32))
    renderer.step()
    first = set(renderer.lanes[0].banks[-1].slot_of)
    assert {1 * N_KEYS + 60, 2 * N_KEYS + 60} <= first  # the 80 and 120 layers a velocity of 100 blends
    assert {k // N_KEYS for k in first} == {1, 2}  # then their neighbours, at the same layers
    renderer.render_all()
    assert renderer.complete() and renderer.ready() == renderer.bank_notes == 7 * 3
    assert (lane.slot_for[:, 57:64] >= 0).all()


def test_render_order_puts_the_needed_layers_before_the_others():
    held, last, wanted = np.zeros(128, int), np.zeros(128, int), np.zeros(128, int)
    needed = np.zeros((3, 128), bool)
    needed[1, :] = True
    held[60] = 1
    keys = [layer * N_KEYS + p for layer in range(3) for p in (59, 60, 61)]
    order = render_order(keys, held, last, wanted, needed=needed)
    assert order[0] == N_KEYS + 60 and set(order[1:3]) == {N_KEYS + 59, N_KEYS + 61}
    assert {k // N_KEYS for k in order[3:]} == {0, 2} and order[3] % N_KEYS == 60


def test_real_piano_notes_are_percussive_and_violin_notes_are_not(tiny_notes):
    """FluidSynth's TimGM6mb notes (3 s held): the threshold separates a piano from a violin at every pitch."""
    from synth.model import dataset

    notes = dataset.load(tiny_notes)
    hold = int(dataset.HOLD_SECONDS * dataset.SAMPLE_RATE)
    for program, percussive in ((0, True), (40, False)):
        pick = notes.program == program
        found = [analyse(dataset.NoteSet.to_float(a), dataset.SAMPLE_RATE, hold, hz(p)).percussive
                 for a, p in zip(notes.audio[pick], notes.pitch[pick])]
        assert len(found) >= 9 and all(f == percussive for f in found)


@pytest.mark.parametrize("velocity", [20, 40, 60, 80, 100, 127])
def test_velocity_picks_or_blends_the_nearest_layers(models, velocity):
    v = voices_for(models["sustained"])
    v.handle(0x90, 60, velocity)
    out = run(v, 1.5)
    assert v.sounding == 1 and v.n == (2 if velocity in (60, 100) else 1)  # between two layers: both play
    f1, f3 = expected(velocity)
    assert amplitude(out, hz(60), 0.3, 1.3) == pytest.approx(f1, rel=0.02)
    assert amplitude(out, 3 * hz(60), 0.3, 1.3) == pytest.approx(f3, rel=0.02)


def test_level_is_continuous_across_a_layer(models):
    v = voices_for(models["sustained"])
    levels = []
    for velocity in (76, 78, 80, 82, 84):  # the layer rendered at 80 and its neighbours' blends
        v.handle(0x90, 60, velocity)
        levels.append(20 * np.log10(amplitude(run(v, 0.5), hz(60), 0.1, 0.45)))
    steps = np.diff(levels)
    # Rises, never by more than the GM curve's own 40·log10(84/82) = 0.42 dB per step: no jump at the layer (the
    # layers differ by 6 dB).
    assert np.all(steps > 0) and steps.max() < 0.45


def test_keys_outside_the_range_play_each_layer_transposed(models):
    v = voices_for(models["sustained"])
    v.handle(0x90, 70, 100)  # the model stops at 63: both layers of 63, transposed up
    assert v.n_pending == 1
    while v.renderer.step():
        pass
    out = run(v, 1.2)
    assert v.n == 2
    f1, f3 = expected(100)
    assert amplitude(out, hz(70), 0.3, 1.1) == pytest.approx(f1, rel=0.03)
    assert amplitude(out, 3 * hz(70), 0.3, 1.1) == pytest.approx(f3, rel=0.03)


def test_percussive_note_plays_its_own_decay_and_keeps_decaying(models):
    v = voices_for(models["percussive"])
    slot = v.renderer.lanes[0].slot_for[2, 60]
    assert v.renderer.pool.tail_k[slot] > 0  # measured as percussive
    v.handle(0x90, 60, 120)
    out = run(v, 6.0)
    # Straight through: the model's own note (at the GM gain of its layer) up to its loop stretch.
    note = models["percussive"].render(np.zeros((1, 4), np.float32), [60], [120 / 127])[0]
    start = int(v.renderer.pool.tail_from[slot])
    assert np.allclose(out[RATE // 100:start], 0.5 * note[RATE // 100:start], atol=2e-3)  # 0.3 % of the peak
    # Held 6 s (twice the stored hold), it keeps falling at the note's own 10 dB a second, with no loop pattern.
    db = rms_db(out, 0.2, 6.0)
    t = np.arange(len(db)) * 0.05
    slope, icpt = np.polyfit(t, db, 1)
    assert slope == pytest.approx(-10.0, abs=1.0)
    assert np.abs(db - (slope * t + icpt)).max() < 1.0
    assert np.all(np.diff(db) < 0)


def test_sustained_note_loops_at_a_steady_level(models):
    v = voices_for(models["sustained"])
    assert v.renderer.pool.tail_k[v.renderer.lanes[0].slot_for[2, 60]] == 0
    v.handle(0x90, 60, 120)
    db = rms_db(run(v, 6.0), 0.5, 6.0, step=0.1)
    assert db.max() - db.min() < 0.5


def test_release_follows_the_models_curve(models):
    v = voices_for(models["sustained"])
    v.handle(0x90, 60, 120)
    held = run(v, 1.0)
    v.handle(0x80, 60, 0)
    out = run(v, 1.0)
    before = amplitude(held, hz(60), 0.5, 1.0)
    assert amplitude(out, hz(60), 0.03, 0.28) / before == pytest.approx(0.5, abs=0.02)  # half, for 0.3 s
    assert amplitude(out, hz(60), 0.42, 0.48) / before == pytest.approx(0.25, abs=0.03)  # then a line to 0
    assert np.all(out[int(0.64 * RATE):] == 0) and v.n == 0
    # No jump at note-off: no sample step larger than the held tone's own.
    assert np.abs(np.diff(np.concatenate([held[-100:], out[:1000]]))).max() <= np.abs(np.diff(held)).max()


def test_release_continues_from_where_the_voice_is(models):
    """A percussive note let go at 1 s (10 dB under its peak) goes on from there along the model's release."""
    v = voices_for(models["percussive"])
    v.handle(0x90, 60, 120)
    held = run(v, 1.0)
    v.handle(0x80, 60, 0)
    out = run(v, 0.5)
    before = amplitude(held, hz(60), 0.94, 0.99)
    after = amplitude(out, hz(60), 0.24, 0.26)
    assert after / before == pytest.approx(np.exp(-8 * 0.25) * 10 ** (-10 * 0.25 / 20), rel=0.1)


def test_model_without_a_release_segment_fades_as_before(models):
    v = voices_for(models["steady"])
    assert v.renderer.pool.release_end[v.renderer.lanes[0].slot_for[0, 60]] == 0
    v.handle(0x90, 60, 127)
    held = run(v, 0.5)
    v.handle(0x80, 60, 0)
    out = run(v, 0.5)
    ratio = amplitude(out, hz(60), 0.14, 0.16) / amplitude(held, hz(60), 0.3, 0.49)
    assert ratio == pytest.approx(0.5, abs=0.03)  # the 0.3 s linear fade, halfway
    assert np.all(out[int(0.31 * RATE):] == 0) and v.n == 0


def test_offline_render_agrees_with_live_voices(models, tmp_path):
    notes = [(0.0, 60, 50), (0.4, 62, 100), (0.8, 58, 127), (1.0, 61, 80)]
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = sorted([(t, "note_on", p, vel) for t, p, vel in notes]
                    + [(t + 0.5, "note_off", p, 0) for t, p, _ in notes])
    now = 0.0
    for t, kind, p, vel in events:  # 120 bpm: a beat is 0.5 s, 960 ticks a second
        track.append(mido.Message(kind, note=p, velocity=vel, time=int(round((t - now) * 960))))
        now = t
    mid.save(tmp_path / "v.mid")
    model = models["percussive"]
    offline = render_midi(tmp_path / "v.mid", model, [], rate=RATE, block=BLOCK, gm_levels=False).audio  # as live

    v = voices_for(model, match_loudness=True)
    live, cursor = np.zeros((len(offline), 2), np.float32), 0
    for t, kind, p, vel in events:
        at = int(round(t * RATE))
        while cursor < at:
            n = min(BLOCK, at - cursor)
            live[cursor:cursor + n] = v.process(n)
            cursor += n
        v.handle(0x90 if kind == "note_on" else 0x80, p, vel)
    while cursor < len(live):
        n = min(BLOCK, len(live) - cursor)
        live[cursor:cursor + n] = v.process(n)
        cursor += n
    assert np.abs(offline).max() > 0.05
    assert np.allclose(offline, live, atol=1e-6)


def test_callback_allocates_no_buffers(models):
    """Blended layers, percussive tails and release curves: process() makes no array, only views."""
    block = 1024
    v = voices_for(models["percussive"], max_block=block)
    for p in range(57, 64):  # seven notes, each between two layers
        v.handle(0x90, p, 60 if p % 2 else 100)
    run(v, 3.2)  # past the loop stretch: tails are decaying

    def step(k: int) -> None:
        if k == 50:
            v.events.append((0x80, 57, 0))  # a release along the model's curve
        if k == 60:
            v.events.append((0x90, 60, 70))  # a blended note starts
        v.process(block)

    allocated = peak_allocation(step, 200)
    assert v.n == 12  # six notes of two voices each (57 released and gone; 60 struck again)
    # One per-sample buffer for these voices would take 12 × 1024 × 4 = 48 KB; what is left are Python objects
    # (array views, numpy scalars), a few hundred bytes each, per voice at most.
    assert allocated < 16384


def test_stealing_takes_whole_blended_notes(models):
    renderer = BankRenderer(models["sustained"], RATE, polyphony=2, match_loudness=False)
    renderer.set_timbre(np.zeros(4, np.float32))
    renderer.render_all()
    v = Voices(renderer, max_block=BLOCK, polyphony=2, release=0.05)
    for p in (58, 60, 62):  # each blends two layers: two voices a note
        v.handle(0x90, p, 100)
        run(v, 0.02)
    run(v, 0.02)
    assert v.sounding == 2 and v.stolen == 1 and sorted(v.keys_held()) == [60, 62]
    assert v.n == 4 and sorted(v.v_pitch[:v.n].tolist()) == [60, 60, 62, 62]  # 58's two voices faded out
    v.handle(0x80, 60, 0)
    run(v, 0.2)
    assert v.n == 2 and v.keys_held() == [62]


def test_layers_of_a_pitch_share_their_loop(models, tmp_path):
    """The two voices of a blended note wrap at the same sample, so a long hold keeps their phase relation, also
    where each layer alone would loop elsewhere (its third partial mistuned by velocity)."""
    model = NoteModel(tone_onnx(tmp_path / "st.onnx", envelope("sustained"), layers=LAYERS, stretch=0.02))
    pool = BankRenderer(model, RATE).pool
    alone = [render_into(model, pool.data, pool.layout, np.zeros(4, np.float32), [60], [vel], [0])[0].loop_len
             for vel in LAYERS]
    assert len(set(alone)) > 1
    v = voices_for(model)
    pool, slot_for = v.renderer.pool, v.renderer.lanes[0].slot_for
    for pitch in (57, 60, 63):
        slots = slot_for[:, pitch]
        assert len({(pool.loop_start[s], pool.loop_len[s], tuple(pool.jump_from[s]), tuple(pool.jump_to[s]))
                    for s in slots}) == 1
        assert pool.jumps[slots].min() > 0
    v = voices_for(models["sustained"])
    v.handle(0x90, 60, 100)
    db = rms_db(run(v, 8.0), 0.5, 8.0, step=0.1)
    assert db.max() - db.min() < 0.5


def test_a_note_and_its_morph_partner_share_their_loop(tmp_path):
    """The morph lane's note of a pitch wraps where the main lane's does (each alone would loop elsewhere), so a
    long hold with the wheel half up keeps the two in phase."""
    model = NoteModel(tone_onnx(tmp_path / "st.onnx", envelope("sustained"), layers=LAYERS, stretch=0.02))
    renderer = BankRenderer(model, RATE, lanes=2, match_loudness=False)
    for lane in (0, 1):
        renderer.set_timbre(np.full(4, lane, np.float32), lane)
    renderer.render_notes(0, [(60, 40)])
    renderer.render_notes(1, [(60, 120)])
    pool = renderer.pool
    loops = [(pool.loop_start[s] + pool.loop_len[s], tuple(pool.jump_from[s]), tuple(pool.jump_to[s]))
             for s in (renderer.lanes[0].slot_for[0, 60], renderer.lanes[1].slot_for[2, 60])]
    assert loops[0] == loops[1]


def test_a_held_note_does_not_repeat_its_loop_pass_after_pass(tmp_path):
    """A note whose level wanders without a period, held 30 s. Wrapping one stretch of it repeats that stretch's
    wandering every pass, a beat a listener hears about once a second; the voices' jumps, a random exit from and
    landing in the loop each pass, leave little of a period (loop_periodicity, the measure of `held` and `eval`:
    30 s of such wandering, unlooped, scores 0.12), and each joins the waveform without a step."""
    from synth.model.sound_metrics import loop_periodicity

    model = NoteModel(tone_onnx(tmp_path / "w.onnx", envelope("wobbling"), velocity=False), provider="cpu")
    v = voices_for(model)
    v.handle(0x90, 60, 100)
    jumping = run(v, 30.0)
    v.renderer.pool.jumps[:] = 0  # slots without jump segments: the voices only wrap
    w = Voices(v.renderer, max_block=BLOCK, polyphony=8)
    w.handle(0x90, 60, 100)
    wrapping = run(w, 30.0)
    assert loop_periodicity(wrapping, RATE, end=30.0) > 0.8
    assert loop_periodicity(jumping, RATE, end=30.0) < 0.35
    # A step in the waveform is a spike in its second difference, against the tone's level there (10 ms RMS).
    level = np.sqrt(np.convolve(jumping.astype(np.float64) ** 2, np.ones(480) / 480, mode="same"))
    spikes = np.abs(np.diff(jumping, 2)) / level[1:-1]
    assert spikes[RATE:-480].max() < 1.2 * spikes[RATE // 2:RATE].max()  # (the last 10 ms: the RMS edge)


@pytest.mark.parametrize("levelled", [True, False])
def test_the_render_worker_measures_each_blend_of_layers_as_the_renderer_does(tmp_path, levelled):
    """In the live rig the render worker measures how alike a key's adjacent layers are (no numpy work for the
    audio process): the bank it fills has the same likeness for every key as a bank rendered in-process."""
    model = NoteModel(tone_onnx(tmp_path / "u.onnx", envelope("sustained"), layers=LAYERS, stretch=1.0),
                      provider="cpu")
    local = voices_for(model, match_loudness=levelled).renderer
    remote = BankRenderer(model, RATE, polyphony=8, match_loudness=levelled, process=True)
    remote.start()
    try:
        remote.set_timbre(np.zeros(model.info.z_dim, np.float32))
        assert remote.wait_complete(timeout=60), remote.error
        keys = slice(model.info.pitch_min, model.info.pitch_max + 1)
        assert (local.lanes[0].blend_rho[:, keys] < 0.99).any()  # the layers differ somewhere: measured, not 1
        np.testing.assert_allclose(remote.lanes[0].blend_rho[:, keys], local.lanes[0].blend_rho[:, keys], atol=1e-9)
    finally:
        remote.stop()


def test_a_note_between_two_unlike_layers_is_as_loud_as_either(tmp_path):
    """Layers whose third partials differ (mistuned by the velocity) are partly unlike: summed half and half they
    would lose level; the voices scale a blend by the layers' correlation so it plays at GM's level."""
    from synth.engine.bank import REFERENCE_LUFS
    from synth.engine.loudness import momentary_peak_lufs

    model = NoteModel(tone_onnx(tmp_path / "u.onnx", envelope("sustained"), layers=LAYERS, stretch=1.0),
                      provider="cpu")
    v = voices_for(model, match_loudness=True)
    lane = v.lanes[0]
    assert 0.2 < lane.blend_rho[1, 60] < 0.95  # layers 80 and 120 of key 60: alike in the fundamental only
    for velocity in (100, 80, 60):  # blended 80/120, layer 80 alone, blended 40/80
        v.handle(0x90, 60, velocity)
        x = run(v, 1.0)
        v.handle(0x80, 60, 0)
        run(v, 1.5)
        want = REFERENCE_LUFS + 20 * np.log10(0.5) + 40 * np.log10(velocity / 100)
        assert momentary_peak_lufs(x, RATE) == pytest.approx(want, abs=0.25), velocity


def test_jumps_moved_row_by_row_play_as_all_rows_at_once(models, monkeypatch):
    """A block moves the read positions of the few voices that jump in it one row at a time, and of many at once:
    held notes, sustained and percussive, bent, play the same samples either way, to the bit, through wraps and
    jump segments, also in blocks longer than a segment (a voice jumps into one and out of it within a block)."""
    import synth.engine.voices as voices_module

    def held(rows: int, block: int, model: str) -> np.ndarray:
        monkeypatch.setattr(voices_module, "JUMP_ROWS", rows)
        v = voices_for(models[model], max_block=block)
        for p in (48, 55, 60, 64, 67, 72):
            v.handle(0x90, p, 60 if p % 2 else 100)  # some between two layers: two voices a note
        v.handle(0xE0, 0, 70)  # a bend: positions move at a rate that is not 1
        out = np.concatenate([v.process(block)[:, 0].copy() for _ in range(12 * RATE // block)])
        assert v.v_passes[:v.n].min() >= 3  # every voice has taken several jumps
        return out

    rows = voices_module.JUMP_ROWS
    for model in ("sustained", "percussive"):
        for block in (BLOCK, 4096):
            assert np.array_equal(held(rows, block, model), held(0, block, model))
