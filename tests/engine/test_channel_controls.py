"""Channel messages a keyboard or DAW sends: CC7 volume and CC11 expression on the GM curve, CC10 constant-power
pan, CC1 / channel pressure / polyphonic aftertouch morphing towards a second timbre, smoothing, reset; through
the real runtime, bank and voices, the offline renderer, and (end to end) a JACK client sending them frame-exact
into `play` and recording its stereo output, checked against the expected curves and the offline render."""
import math
import signal
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.engine.bank import BankRenderer
from synth.core.timbre import Preset, save_preset
from synth.engine.offline import morph_target, render_midi
from synth.engine.voices import Voices
from synth.runtime.model import NoteModel
from tests.allocation import peak_allocation
from tests.fake_daw import RATE, FakeDaw, write_midi
from tests.procs import lines_of, wait_for

BLOCK = 128
PLAIN = np.full(8, -12.0, np.float32)  # the tone model's upper partials at 0.1·sigmoid(z): off
BRIGHT = np.full(8, 12.0, np.float32)  # … at 0.1 of the fundamental


def hz(pitch):
    return 440 * 2 ** ((pitch - 69) / 12)


def amplitude(x, f, start, stop):
    """Amplitude of the sinusoid at f in x[start:stop] seconds (Hann-windowed, so a neighbouring note leaks
    nothing)."""
    a, n = int(start * RATE), int((stop - start) * RATE)
    t = np.arange(n) / RATE
    w = np.hanning(n)
    return 2 * abs(np.sum(x[a:a + n] * w * np.exp(-2j * np.pi * f * t))) / w.sum()


def db(x):
    return 20 * math.log10(max(x, 1e-12))


def pan_law(cc10):
    theta = (max(-1.0, (cc10 - 64) / 63) + 1) * math.pi / 4
    return math.sqrt(2) * math.cos(theta), math.sqrt(2) * math.sin(theta)


@pytest.fixture(scope="module")
def model(tone_model):
    return NoteModel(tone_model, provider="cpu")


def two_lane_voices(model, max_block=BLOCK, **kw):
    renderer = BankRenderer(model, RATE, lanes=2, polyphony=8)
    for lane, z in enumerate((PLAIN, BRIGHT)):
        renderer.set_timbre(z, lane)
        renderer.render_notes(lane, [(p, 127) for p in (57, 60, 62, 64)])
    v = Voices(renderer, max_block=max_block, polyphony=8, **kw)
    v.morph_lane_of[:] = 1
    return v


def run(v, seconds):
    return np.concatenate([v.process(BLOCK).copy() for _ in range(math.ceil(seconds * RATE / BLOCK) + 1)])


def test_volume_expression_and_pan_follow_the_gm_curves(model):
    v = two_lane_voices(model)
    v.handle(0x90, 60, 100)
    f = hz(60)
    ref = run(v, 0.3)
    l0, r0 = amplitude(ref[:, 0], f, 0.1, 0.3), amplitude(ref[:, 1], f, 0.1, 0.3)
    assert l0 > 0.01 and l0 == pytest.approx(r0, rel=1e-5)  # centred: both sides carry the old mono signal
    for cc, value, want_l, want_r in [(7, 64, 40 * math.log10(64 / 100), None), (7, 127, 40 * math.log10(1.27), None),
                                      (7, 100, 0.0, None), (11, 90, 40 * math.log10(90 / 127), None),
                                      (11, 127, 0.0, None), (10, 0, None, None), (10, 96, None, None),
                                      (10, 127, None, None), (10, 64, 0.0, None)]:
        v.handle(0xB0, cc, value)
        x = run(v, 0.2)
        left, right = amplitude(x[:, 0], f, 0.1, 0.2), amplitude(x[:, 1], f, 0.1, 0.2)
        if cc == 10:
            want_l, want_r = (db(g) for g in pan_law(value))
            assert (left / l0) ** 2 + (right / r0) ** 2 == pytest.approx(2.0, rel=1e-3)  # constant power
        want_r = want_l if want_r is None else want_r
        assert db(left / l0) == pytest.approx(want_l, abs=0.05) or want_l < -60 and db(left / l0) < -60, (cc, value)
        assert db(right / r0) == pytest.approx(want_r, abs=0.05) or want_r < -60 and db(right / r0) < -60, (cc, value)


def test_controller_changes_glide_without_a_step(model):
    """A jump from full volume to 0 falls over a few ms (5 ms time constant), never in one sample."""
    v = two_lane_voices(model)
    v.handle(0x90, 60, 100)
    run(v, 0.2)
    before = run(v, 0.05)[:, 0]
    v.handle(0xB0, 7, 0)
    after = run(v, 0.1)[:, 0]
    x = np.concatenate([before, after])
    peak = np.abs(before).max()
    step = np.abs(np.diff(x)).max()
    assert step < 1.1 * np.abs(np.diff(before)).max()  # no sample jumps more than the tone itself does
    env = [np.abs(after[i:i + 48]).max() / peak for i in range(0, 48 * 20, 48)]  # per ms
    assert env[1] > 0.5 and env[15] < 0.1 and after[-BLOCK:].max() < 1e-4, np.round(env, 3)


def test_modulation_wheel_morphs_the_partials_and_keeps_the_level(model):
    """Both timbres' notes start together with the same partial phases, so the wheel interpolates the partials:
    the second partial goes 0 → 0.1 of the fundamental in proportion to CC1, the fundamental stays within 0.2 dB
    (the bank brings both timbres to one loudness, so the bright one's fundamental is a little lower)."""
    v = two_lane_voices(model)
    v.handle(0xB0, 1, 1)  # touch the wheel: notes from now on carry their morph voices
    v.handle(0xB0, 1, 0)
    v.handle(0x90, 60, 100)
    f = hz(60)
    ratios, fundamentals = [], []
    for value in (0, 32, 64, 127):
        v.handle(0xB0, 1, value)
        x = run(v, 0.2)[:, 0]
        h1, h2 = amplitude(x, f, 0.1, 0.2), amplitude(x, 2 * f, 0.1, 0.2)
        ratios.append(h2 / h1)
        fundamentals.append(h1)
    assert np.allclose(ratios, [0.1 * m / 127 for m in (0, 32, 64, 127)], atol=0.002), ratios
    assert 20 * math.log10(max(fundamentals) / min(fundamentals)) < 0.2
    assert v.sounding == 1 and v.n == 2  # one note, two voices


def test_pressure_and_aftertouch_push_towards_the_target_and_reset_clears_them(model):
    v = two_lane_voices(model)
    v.handle(0xD0, 1)
    v.handle(0xD0, 0)
    v.handle(0x90, 60, 100)
    v.handle(0x90, 64, 100)
    f60, f64 = hz(60), hz(64)

    def ratios():
        x = run(v, 0.2)[:, 0]
        return [amplitude(x, 2 * f, 0.1, 0.2) / amplitude(x, f, 0.1, 0.2) for f in (f60, f64)]

    assert np.allclose(ratios(), 0.0, atol=0.002)
    v.handle(0xD0, 127)  # channel pressure: every key of the channel
    assert np.allclose(ratios(), 0.1, atol=0.002)
    v.handle(0xD0, 0)
    v.handle(0xA0, 64, 127)  # polyphonic aftertouch: that key alone
    r60, r64 = ratios()
    assert r60 < 0.002 and r64 == pytest.approx(0.1, abs=0.002)
    v.handle(0xB0, 7, 64)
    v.handle(0xB0, 1, 127)
    v.handle(0xB0, 121, 0)  # reset all controllers: wheel, pressure, aftertouch, expression; not volume (RP-015)
    x = run(v, 0.2)[:, 0]
    assert amplitude(x, 2 * f64, 0.1, 0.2) / amplitude(x, f64, 0.1, 0.2) < 0.002
    assert v.volume[0] == 64 and v.modulation[0] == 0 and v.expression[0] == 127


def test_spread_pans_by_key(model):
    v = two_lane_voices(model, spread=1.0)
    v.handle(0x90, 57, 100)  # 3 semitones under middle C: slightly left
    x = run(v, 0.3)
    left, right = amplitude(x[:, 0], hz(57), 0.1, 0.3), amplitude(x[:, 1], hz(57), 0.1, 0.3)
    want_l, want_r = pan_law(64 - 63 * 3 / 36)
    assert left / right == pytest.approx(want_l / want_r, rel=0.01)


def test_moving_controllers_allocate_no_buffers(model):
    """The callback's promise holds while every controller moves and notes morph."""
    block = 1024
    v = two_lane_voices(model, max_block=block)
    v.handle(0xB0, 1, 1)
    for p in (57, 60, 62, 64):
        v.handle(0x90, p, 90)
    for _ in range(20):
        v.process(block)

    def step(k: int) -> None:
        v.events.append((0xB0, (7, 10, 11, 1)[k % 4], (k * 37) % 128))
        v.events.append((0xD0, (k * 11) % 128, 0))
        v.events.append((0xA0, 60, (k * 5) % 128))
        v.process(block)

    allocated = peak_allocation(step, 100)
    assert v.n == 8
    assert allocated < 16384  # one per-sample buffer for 8 voices would be 8 × 1024 × 4 = 32 KB


def test_morph_target_default_is_a_pad_and_can_be_named():
    z = np.zeros(4, np.float32)
    presets = [Preset("Keys", z, "piano"), Preset("Synth Pad", z, "synth_pad"), Preset("Strings", z, "strings")]
    assert morph_target(0, presets) == 1
    assert morph_target(1, presets) == 2  # the pad itself morphs into strings
    assert morph_target(0, presets, "strings") == 2
    with pytest.raises(ValueError, match="no preset named 'Nope' to morph to"):
        morph_target(0, presets, "Nope")
    assert morph_target(0, []) is None


# -- end to end: a DAW's controller automation over JACK, and the offline render of the same MIDI --------------

PHRASE = [(0.00, [0xB0, 1, 1]), (0.01, [0xB0, 1, 0]),  # touch the wheel: the morph target's bank renders
          (1.00, [0x90, 60, 100]),
          (1.50, [0xB0, 7, 64]), (2.00, [0xB0, 7, 100]), (2.001, [0xB0, 11, 90]),
          (2.50, [0xB0, 11, 127]), (2.501, [0xB0, 10, 0]), (3.00, [0xB0, 10, 96]),
          (3.50, [0x80, 60, 0]), (3.501, [0xB0, 10, 64]), (3.60, [0x90, 62, 100]),
          (4.05, [0xB0, 1, 64]), (4.50, [0xB0, 1, 127]), (4.90, [0xB0, 1, 0]), (4.901, [0xD0, 127]),
          (5.30, [0x80, 62, 0])]
# (window start, pitch, expected left dB, right dB relative to the first window, expected 2nd/1st partial)
EXPECTED = [(1.20, 60, 0.0, 0.0, 0.0),
            (1.65, 60, 40 * math.log10(0.64), 40 * math.log10(0.64), 0.0),
            (2.15, 60, 40 * math.log10(90 / 127), 40 * math.log10(90 / 127), 0.0),
            (2.65, 60, db(pan_law(0)[0]), None, 0.0),
            (3.15, 60, db(pan_law(96)[0]), db(pan_law(96)[1]), 0.0),
            (3.80, 62, 0.0, 0.0, 0.0),
            (4.20, 62, 0.0, 0.0, 0.1 * 64 / 127),
            (4.65, 62, 0.0, 0.0, 0.1),
            (5.05, 62, 0.0, 0.0, 0.1)]


def measure(stereo):
    """Per window: left and right level (dB, against the first window at its pitch) and 2nd/1st partial."""
    rows = []
    ref = {}
    for start, pitch, *_ in EXPECTED:
        f = hz(pitch)
        h = [amplitude(stereo[:, c], f, start, start + 0.2) for c in (0, 1)]
        ref.setdefault(pitch, h)
        rows.append((db(h[0] / ref[pitch][0]), db(h[1] / ref[pitch][1]),
                     amplitude(stereo[:, 0], 2 * f, start, start + 0.2) / h[0]))
    return rows


def check(rows, what):
    print(what, [tuple(round(x, 3) for x in r) for r in rows])
    for (start, _, want_l, want_r, want_ratio), (left, right, ratio) in zip(EXPECTED, rows):
        assert left == pytest.approx(want_l, abs=0.3), (what, start, "left")
        assert (right < -40) if want_r is None else right == pytest.approx(want_r, abs=0.3), (what, start, "right")
        assert ratio == pytest.approx(want_ratio, abs=0.004), (what, start, "morph")


@pytest.fixture
def tone_presets(tmp_path):
    d = tmp_path / "presets"
    save_preset(Preset("A Plain", PLAIN, "piano"), d)
    save_preset(Preset("Bright", BRIGHT, "synth_pad"), d)
    return d


def phrase_midi(path):
    return write_midi(PHRASE, path)


def test_controllers_from_a_jack_client_match_the_curves_and_the_offline_render(jack_server, tone_model,
                                                                               tone_presets, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--model", str(tone_model), "--host-api", "jack",
                             "--midi-api", "jack", "--presets", str(tone_presets), "--release", "0.05",
                             "--seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    daw = None
    try:
        out = lines_of(proc)
        wait_for(out, "ready:")
        daw = FakeDaw("ccdaw", events=PHRASE)
        ours = daw.client.get_ports("GANSynth Live Audio:", is_audio=True, is_output=True)
        assert len(ours) == 2
        for port, track in zip(ours, daw.ins):
            daw.client.connect(port, track)
        recorded = daw.play_phrase_into("GANSynth Live")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if daw is not None:
            daw.close()
        if proc.poll() is None:
            proc.kill()
    live = measure(recorded)
    check(live, "live")
    presets = [Preset("A Plain", PLAIN, "piano"), Preset("Bright", BRIGHT, "synth_pad")]
    offline = render_midi(phrase_midi(tmp_path / "cc.mid"), NoteModel(tone_model), presets, rate=RATE,
                          release=0.05).audio
    rows = measure(offline)
    check(rows, "offline")
    for a, b in zip(live, rows):
        assert np.allclose(a[:2], b[:2], atol=0.2) or a[1] < -40 and b[1] < -40
        assert abs(a[2] - b[2]) < 0.003


def test_data_entry_after_an_nrpn_leaves_the_bend_range_alone(model):
    """RPN 0 sets the bend range; once a file selects an NRPN (CC99/98), its data entry must not."""
    v = two_lane_voices(model)
    for cc, value in ((101, 0), (100, 0), (6, 12), (38, 0)):
        v.handle(0xB0, cc, value)
    assert v.bend_range[0] == 12
    for cc, value in ((99, 1), (98, 8), (6, 64)):  # e.g. a GS/XG vibrato NRPN
        v.handle(0xB0, cc, value)
    assert v.bend_range[0] == 12
    for cc, value in ((101, 0), (100, 0), (6, 2)):
        v.handle(0xB0, cc, value)
    assert v.bend_range[0] == 2


def test_a_starting_voice_gets_the_gains_the_block_glides_to(model):
    """A note-on sets its voices' channel gains with plain floats (Voices._voice_gains: the vectorised form cost
    40 µs a voice in the callback); they are, to the float32 bit, what _channel_targets gives the same voices for
    any volume, expression, pan, wheel, pressure, aftertouch, spread and morph pairing."""
    v = two_lane_voices(model)
    cc = st.integers(0, 127)
    voice = st.tuples(st.integers(0, 15), cc, cc, cc, cc, cc, st.floats(0, 1), st.booleans(), st.booleans(),
                      st.floats(-1, 1))

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.lists(voice, min_size=1, max_size=6))
    def check(voices):
        v.n = len(voices)
        for i, (ch, vol, expr, pan, wheel, pressure, touch, paired, side, spread) in enumerate(voices):
            v.v_chan[i], v.volume[ch], v.expression[ch], v.pan[ch] = ch, vol, expr, pan
            v.modulation[ch], v.pressure[ch] = wheel, pressure
            v.v_touch[i], v.v_paired[i], v.v_side[i], v.v_pan[i] = touch, float(paired), float(side), spread
        want = np.zeros((2, v.n), np.float32)
        v._channel_targets(0, v.n, want)
        got = np.array([v._voice_gains(i) for i in range(v.n)], np.float32).T
        np.testing.assert_array_equal(got, want)

    check()
    v.n = 0
