"""Where renders and takes go: the output path is checked before any work, every run writes a temp file of its
own that no error leaves behind, a full disk is one line, and a take's part file is readable at any moment and
`recover` finishes it. Disks that fill up or are read-only are small tmpfs mounts made here (root only)."""
import signal
import subprocess
import sys
import time

import mido
import numpy as np
import pytest
import soundfile as sf

from synth.audio_io import OutputError, check_output, final_name, write_audio
from synth.engine.recorder import Recorder, recover


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "synth", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def midi_file(path, pitches, seconds_each=0.5):
    song = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 960 ticks a second
    track = mido.MidiTrack()
    song.tracks.append(track)
    for p in pitches:
        track.append(mido.Message("note_on", note=p, velocity=100, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=round(seconds_each * 960)))
    song.save(path)
    return path


def parts(folder):
    return sorted(p.name for p in folder.glob(".*.part")) + sorted(p.name for p in folder.glob(".*.probe"))


@pytest.fixture
def mount(tmp_path):
    """mount(options) → a fresh tmpfs folder (e.g. 'size=256k' or 'ro'); skipped where mounting is not allowed."""
    made = []

    def make(options):
        where = tmp_path / f"disk{len(made)}"
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): the test needs root")
        made.append(where)
        return where

    yield make
    for where in made:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_bad_output_paths_are_refused_before_any_work(tmp_path, mount):
    """The model named does not exist: an error about the output proves it was checked before the model was
    even opened (the issue saw 12 s and 2.8 GB of rendering first)."""
    song = midi_file(tmp_path / "song.mid", [60])
    read_only = mount("ro,size=64k")
    cases = {tmp_path / "nowhere" / "x.wav": "folder", tmp_path / "x.mp3": "use a .wav, .flac",
             read_only / "x.wav": "not writable", tmp_path: "use a"}
    for out, says in cases.items():
        r = cli("render", song, "-o", out, "--model", tmp_path / "no-model.onnx")
        assert r.returncode == 1 and says in r.stderr and "model" not in r.stderr, (out, r.stderr)
        assert r.stderr.count("\n") == 1
    r = cli("play", "--record", tmp_path / "nowhere" / "take.wav", "--model", tmp_path / "no-model.onnx")
    assert r.returncode == 1 and "folder" in r.stderr and "model" not in r.stderr, r.stderr
    assert parts(tmp_path) == [] and parts(read_only) == []


def test_a_written_file_has_the_permissions_open_gives_and_no_part_file_stays(tmp_path):
    write_audio(tmp_path / "take.flac", np.zeros(4800, np.float32), 48000)
    with open(tmp_path / "plain", "w"):  # what open() makes under this process's umask
        pass
    mode = lambda name: (tmp_path / name).stat().st_mode & 0o777  # noqa: E731
    assert mode("take.flac") == mode("plain") != 0o600 and parts(tmp_path) == []
    assert sf.info(str(tmp_path / "take.flac")).frames == 4800


def test_two_renders_to_one_name_each_finish_whole(tone_model, tmp_path):
    """Started together; each writes its own temp file, so the survivor is one render entire, never a mix."""
    songs = [midi_file(tmp_path / f"{k}.mid", pitches) for k, pitches in enumerate([[60, 64] * 4, [72, 79] * 4])]
    alone = []
    for k, song in enumerate(songs):
        assert cli("render", song, "-o", tmp_path / f"alone{k}.wav", "--model", tone_model).returncode == 0
        alone.append(sf.read(tmp_path / f"alone{k}.wav")[0])
    for attempt in range(3):
        out = tmp_path / "same.wav"
        procs = [subprocess.Popen([sys.executable, "-m", "synth", "render", str(song), "-o", str(out), "--model",
                                   str(tone_model)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for song in songs]
        results = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], results
        got = sf.read(out)[0]
        assert any(len(got) == len(a) and np.array_equal(got, a) for a in alone), "the file mixes two renders"
        assert parts(tmp_path) == []


def test_a_full_disk_is_one_line_and_leaves_nothing(tone_model, tmp_path, mount):
    disk = mount("size=256k")
    song = midi_file(tmp_path / "long.mid", [60, 62, 64, 65] * 5)  # 10 s + tail at 48 kHz: about 1.5 MB
    r = cli("render", song, "-o", disk / "long.wav", "--model", tone_model)
    errors = [line for line in r.stderr.splitlines() if line.startswith("gansynth-live:")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert "is full" in r.stderr and "long.wav" in r.stderr and "Traceback" not in r.stderr
    assert list(disk.iterdir()) == []  # no part file left filling the disk
    with pytest.raises(OutputError, match="is full"):
        write_audio(disk / "x.flac", np.random.default_rng(0).uniform(-1, 1, 500_000), 48000)
    assert list(disk.iterdir()) == []


def test_a_take_on_a_disk_that_fills_keeps_what_was_written(tmp_path, mount):
    disk = mount("size=512k")  # about 1.7 s of 24-bit stereo at 48 kHz
    rec = Recorder(disk / "take.wav", 48000, 2)
    tone = (0.5 * np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000)).astype(np.float32)
    for _ in range(60):
        if rec.error:
            break
        rec.push(np.stack([tone, tone], axis=1))
        time.sleep(0.3)
    assert rec.error and "is full" in rec.error and "keeps its first" in rec.error, rec.error
    rec.push(np.zeros((4800, 2), np.float32))  # the audio side goes on pushing, unharmed
    assert rec.close() == disk / "take.wav"
    audio, rate = sf.read(disk / "take.wav", dtype="float32")
    assert rate == 48000 and len(audio) == rec.frames and 0.5 < len(audio) / rate < 2.0
    assert np.allclose(audio[:48000, 0], tone, atol=1e-4)
    assert parts(disk) == []


def test_the_part_file_is_a_valid_wav_at_any_moment_and_recover_finishes_it(tmp_path):
    rec = Recorder(tmp_path / "take.flac", 48000, 2)
    block = np.full((48000, 2), 0.25, np.float32)
    rec.push(block)
    deadline = time.monotonic() + 30
    while rec.frames < 48000 and time.monotonic() < deadline:
        time.sleep(0.05)
    part = rec.part
    assert part.name.startswith(".take.flac.") and part.suffix == ".part"
    assert sf.info(str(part)).frames == 48000  # the header already counts what was written, while recording
    rec._stop.set()  # what a kill leaves: the writer stopped, the file never closed
    rec._thread.join()
    path, seconds = recover(part)
    assert path == tmp_path / "take.flac" and seconds == 1.0 and not part.exists()
    audio, rate = sf.read(path, dtype="float32")
    assert sf.info(str(path)).format == "FLAC" and np.allclose(audio, 0.25, atol=1e-4)
    with pytest.raises(OutputError, match="already exists"):
        part.write_bytes(b"")
        recover(part)


def test_nothing_recorded_makes_no_file(tmp_path):
    rec = Recorder(tmp_path / "take.wav", 48000, 2)
    assert rec.close() is None
    assert list(tmp_path.iterdir()) == []


def test_part_names_lead_back_to_the_take(tmp_path):
    assert final_name("/x/.take.flac.k3j2_a9.part").name == "take.flac"
    assert final_name(".my take.wav.part").name == "my take.wav"  # an older version's part file
    with pytest.raises(OutputError):
        final_name("take.wav")
    (tmp_path / "take.wav").write_bytes(b"mine")
    with pytest.raises(OutputError, match="already exists"):
        check_output(tmp_path / "take.wav", overwrite=False)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_render_stopped_at_any_moment_leaves_no_temp_file_and_no_half_file(tone_model, tmp_path, stop):
    """Stopped at several moments (while starting, rendering or writing): whatever was reached, no hidden temp
    file is left and the output is either absent or the whole render."""
    song = midi_file(tmp_path / "song.mid", [60, 62, 64, 65] * 10)
    whole = tmp_path / "whole.wav"
    assert cli("render", song, "-o", whole, "--model", tone_model).returncode == 0
    for delay in (0.5, 1.5, 2.5, 3.5):
        out = tmp_path / "out.wav"
        out.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-m", "synth", "render", str(song), "-o", str(out), "--model",
                                 str(tone_model)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(stop)
        proc.communicate(timeout=120)
        assert parts(tmp_path) == []
        if out.exists():
            assert out.read_bytes() == whole.read_bytes()


def test_play_says_at_once_when_the_disk_fills_under_a_take_and_keeps_it(jack_server, tone_model, mount):
    """`play --record` on a real JACK server onto a 512 kB disk: the line comes while playing (before, the writer
    thread died with a traceback and the status showed nothing), Ctrl-C still ends cleanly, and the take holds
    what fitted."""
    from tests.procs import lines_of, wait_for
    from tests.engine.test_record import start_player

    disk = mount("size=512k")
    take = disk / "take.wav"
    proc = start_player(tone_model, take)
    try:
        out = lines_of(proc)
        wait_for(out, f"recording to {take}")
        line = wait_for(out, "recording stopped: the disk holding", timeout=120)
        assert "is full; the take keeps its first" in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        wait_for(out, f"to {take}")
    finally:
        if proc.poll() is None:
            proc.kill()
    info = sf.info(str(take))
    assert info.format == "WAV" and 0.5 < info.duration < 2.0 and parts(disk) == []
