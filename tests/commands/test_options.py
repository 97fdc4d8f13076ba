"""Options and odd MIDI files get one clear line and a non-zero exit, never a traceback or silent nonsense:
each case of the issue, then random option values through the real parser (hypothesis)."""
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.cli import build_parser, main

SONG = ["render", "song.mid", "-o", "out.wav"]


def parse_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("argv, says", [
    (SONG + ["--rate", "0"], "argument --rate: 0 is outside 8000-192000 Hz"),
    (SONG + ["--rate", "1"], "argument --rate: 1 is outside"),
    (SONG + ["--rate", "-48000"], "argument --rate: -48000 is outside"),
    (SONG + ["--rate", "10000000"], "argument --rate: 10000000 is outside"),
    (["play", "--block", "0"], "argument --block: 0 is outside 16-8192 frames"),
    (["play", "--polyphony", "-1"], "argument --polyphony: -1 is outside 1-256 voices"),
    (["play", "--latency", "abc"], "argument --latency: 'abc' is not low, high or seconds"),
    (["play", "--latency", "-1"], "argument --latency: '-1' is not low, high or seconds"),
    (SONG + ["--channels", "17"], "argument --channels: '17' is outside 1-16"),
    (SONG + ["--channels", "5-3"], "argument --channels: range 5-3 runs backwards"),
    (SONG + ["--channels", "x"], "argument --channels: 'x' is not a number or a range"),
    (["play", "--presets", "/nonexistent"], "argument --presets: /nonexistent does not exist"),
    (["play", "--release", "inf"], "argument --release: inf is not from 0 to 10 seconds"),
    (["export", "ck.pt", "-o", "m.onnx", "--data", "/nonexistent"], "argument --data: /nonexistent does not exist"),
    (["held", "--seconds", "0.5"], "argument --seconds: 0.5 is not from 2 to 60 seconds"),
    (["train", "--out", "run", "--spectrum-weight", "-1"], "argument --spectrum-weight: -1 is not from 0 to 10"),
    (["train", "--out", "run", "--noise-weight", "nan"], "argument --noise-weight: nan is not from 0 to 10"),
    (["train", "--out", "run", "--texture-weight", "-1"], "argument --texture-weight: -1 is not from 0 to 10"),
    (["train", "--out", "run", "--onset-weight", "11"], "argument --onset-weight: 11 is not from 0 to 10"),
    (["train", "--out", "run", "--vibrato-weight", "-0.5"], "argument --vibrato-weight: -0.5 is not from 0 to 10"),
    (["train", "--out", "run", "--mel-weight", "-0.5"], "argument --mel-weight: -0.5 is not from 0 to 10"),
])
def test_bad_option_is_one_line(argv, says, capsys):
    assert says in parse_error(argv, capsys)


def test_good_options_parse():
    a = build_parser().parse_args(["play", "--rate", "44100", "--block", "256", "--latency", "0.02",
                                   "--polyphony", "8", "--presets", "presets"])
    assert (a.rate, a.block, a.latency, a.polyphony) == (44100, 256, 0.02, 8)
    assert build_parser().parse_args(SONG + ["--channels", "1,3-5"]).channels == [1, 3, 4, 5]


def test_bad_option_from_the_command_line_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "synth", "play", "--block", "0"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "gansynth-live play: error: argument --block: 0 is outside " \
                                                   "16-8192 frames"


def _midi(path, division=480, tracks=1, delta=b"\x60", tempo=None):
    """A one-note standard MIDI file with the header's fields and the note-off's delta (variable length) given."""
    events = b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big") if tempo else b""
    events += b"\x00\x90\x3c\x64" + delta + b"\x80\x3c\x00\x00\xff\x2f\x00"
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 1, tracks, division)
                     + b"MTrk" + struct.pack(">I", len(events)) + events)
    return path


@pytest.mark.parametrize("fields, says", [
    ({"division": 0}, "is not a readable MIDI file (its time division is 0 ticks per beat)"),
    ({"division": 0xE728}, "counts time in SMPTE frames, which is not supported"),
    ({"tracks": 65535}, "is not a readable MIDI file (it declares 65,535 tracks but holds 1)"),
    ({"division": 1, "delta": b"\xff\xff\xff\x7f", "tempo": 0xFFFFFF}, "lasts 1,250,999 h 49 min; a render holds"),
])
def test_odd_midi_files_are_one_line(tmp_path, fields, says):
    song = _midi(tmp_path / "odd.mid", **fields)
    out = tmp_path / "out.wav"
    with pytest.raises(SystemExit) as e:
        main(["render", str(song), "-o", str(out)])
    message = str(e.value.code)
    assert message.startswith(f"gansynth-live: {song} ") and says in message and "\n" not in message
    assert not out.exists()


OPTIONS = {"--rate": "rate", "--block": "block", "--polyphony": "polyphony", "--latency": "latency",
           "--release": "release", "--seconds": "seconds", "--channel": "channel"}
values = st.one_of(st.integers(-10**9, 10**9).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                   st.text(max_size=12).filter(lambda t: not t.startswith("-") or t[1:2].isdigit()),
                   st.sampled_from(["low", "high", "0", "1e400", "-0", "5-3", "3-5", "", " 7"]))


@settings(max_examples=300, deadline=None, database=None)
@given(option=st.sampled_from(sorted(OPTIONS)), value=values)
def test_random_option_values_give_a_valid_config_or_one_clean_error(option, value):
    parser = build_parser()
    try:
        a = parser.parse_args(["play", option, value])
    except SystemExit as e:
        assert e.code == 2  # argparse's one-line "error:" (its text is checked above)
        return
    got = getattr(a, OPTIONS[option])
    assert {"rate": lambda v: 8000 <= v <= 192000, "block": lambda v: 16 <= v <= 8192,
            "polyphony": lambda v: 1 <= v <= 256, "channel": lambda v: 1 <= v <= 16,
            "latency": lambda v: v in ("low", "high") or 0 < v <= 10, "release": lambda v: 0 <= v <= 10,
            "seconds": lambda v: 0 < v <= 1e9}[OPTIONS[option]](got), (option, value, got)


@settings(max_examples=200, deadline=None, database=None)
@given(value=values)
def test_random_channel_lists_give_channels_1_to_16_or_one_clean_error(value):
    try:
        a = build_parser().parse_args(SONG + ["--channels", value])
    except SystemExit as e:
        assert e.code == 2
        return
    assert a.channels and all(1 <= c <= 16 for c in a.channels)
