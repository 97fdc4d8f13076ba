"""The JACK server stopped under `play --record` and under the window: one line within 2 s, the take finalised with
every note played before; play exits non-zero, the window's sound starts again when the server returns; SIGTERM
is answered within 2 s, with no PortAudio abort.

Each scenario runs in a child process with its own private JACK server (dummy backend), which it stops itself:
libjack keeps one server's state per process, so a process that has talked to the shared test server (conftest)
cannot reach a second one, and its clients would silently land on the first."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from synth.commands.play import EXIT_SERVER_LOST
from synth.bench.jack_server import start_jack
from tests.procs import lines_of, wait_for
from tests.engine.test_record import check_notes, play_notes, start_player, stored_peak


class Server:
    """A private JACK server (dummy backend) that a scenario may stop and start again under the same name."""

    def __init__(self) -> None:
        self.name = f"gsldoomed{os.getpid()}"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = start_jack(self.name, 48000, 128, modes=("--no-realtime",), options=("--sync",))
        assert self.proc is not None, "jackd did not start on the dummy backend"

    def stop(self) -> float:
        """Stop it (SIGTERM: a killed jackd keeps its slot in JACK's registry); returns when it was told to."""
        t0 = time.monotonic()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        return t0

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        for leftover in Path("/dev/shm").glob(f"jack_sem.*_{self.name}_*"):  # its clients' semaphores, if any
            leftover.unlink(missing_ok=True)


def in_child(scenario: str, model: str, tmp: str) -> None:
    """The child's side: a private server, the scenario, and the server gone again."""
    server = Server()
    try:
        globals()[scenario](server, Path(model), Path(tmp))
    finally:
        server.close()
    print("all checked", flush=True)


def run_in_child(scenario: str, tone_model: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JACK_DEFAULT_SERVER"}
    proc = subprocess.run([sys.executable, "-c", f"from tests.engine.test_server_loss import in_child; "
                           f"in_child({scenario!r}, {str(tone_model)!r}, {str(tmp_path)!r})"],
                          capture_output=True, text=True, timeout=600, env=env)
    print(proc.stdout)
    assert proc.returncode == 0 and "all checked" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_server_killed_under_record_keeps_the_take_and_exits_non_zero(tone_model, tmp_path):
    run_in_child("record_then_exit", tone_model, tmp_path)


def test_player_starts_again_when_the_server_returns_recording_a_new_take(tone_model, tmp_path):
    run_in_child("record_and_reconnect", tone_model, tmp_path)


def test_sigterm_is_answered_after_the_server_went_away(tone_model, tmp_path):
    """The player is told to stop while its server is gone (the loss not yet acted on or already reported):
    it answers within 2 s and its take is finalised, however PortAudio's stream stop behaves."""
    run_in_child("sigterm_after_loss", tone_model, tmp_path)


def test_server_killed_under_the_windows_sound_process(tone_model, tmp_path):
    """The window's instrument (its sound process on JACK) recording: the loss comes as one event within 2 s, the
    take is finalised, the status says the audio was lost; when the server returns the sound starts again by
    itself, and closing takes no hang and no PortAudio abort."""
    run_in_child("instrument_loses_and_finds_jack", tone_model, tmp_path)


def test_window_reports_the_loss_and_answers_sigterm(tone_model, tmp_path):
    """`gansynth-live gui` (offscreen) on a JACK server that is then stopped: the window says so within 2 s, and
    SIGTERM closes it within 2 s with exit code 0 and no PortAudio assertion."""
    run_in_child("window_sigterm_after_loss", tone_model, tmp_path)


# -- the scenarios, run in the child -------------------------------------------------------------------------------
def record_then_exit(server, tone_model, tmp_path):
    take = tmp_path / "take.flac"
    proc = start_player(tone_model, take, "--exit-on-server-loss")
    try:
        out = lines_of(proc)
        wait_for(out, f"recording to {take}")
        play_notes(then=0.5)
        t0 = server.stop()
        wait_for(out, "went away", timeout=2.0)
        reported = time.monotonic() - t0
        assert proc.wait(timeout=10) == EXIT_SERVER_LOST
        wait_for(out, "recorded")
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"server loss reported after {reported:.2f} s")
    assert not (tmp_path / ".take.flac.part").exists()
    audio, _ = sf.read(take, dtype="float32")
    check_notes(audio[:, 0])


def record_and_reconnect(server, tone_model, tmp_path):
    take = tmp_path / "take.wav"
    proc = start_player(tone_model, take)
    try:
        out = lines_of(proc)
        wait_for(out, f"recording to {take}")
        play_notes(then=0.5)
        server.stop()
        wait_for(out, "went away", timeout=2.0)
        wait_for(out, "waiting for the audio server to come back")
        assert take.exists()  # finalised before waiting
        server.start()
        wait_for(out, "the audio server is back")
        wait_for(out, f"recording to {tmp_path / 'take-2.wav'}", timeout=60)
        wait_for(out, "ready:", timeout=60)
        play_notes(then=0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    for name in ("take.wav", "take-2.wav"):
        audio, _ = sf.read(tmp_path / name, dtype="float32")
        check_notes(audio[:, 0])
    assert not list(tmp_path.glob(".*.part"))


def sigterm_after_loss(server, tone_model, tmp_path):
    take = tmp_path / "take.wav"
    proc = start_player(tone_model, take)
    try:
        out = lines_of(proc)
        wait_for(out, f"recording to {take}")
        wait_for(out, "MIDI in:")
        server.stop()
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        proc.wait(timeout=2.0)
        answered = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"SIGTERM answered after {answered:.2f} s")
    time.sleep(0.2)  # the reader thread takes the last lines
    rest = "".join(iter(lambda: out.get() if not out.empty() else "", ""))
    assert proc.returncode in (0, EXIT_SERVER_LOST), rest
    assert take.exists() and not (tmp_path / ".take.wav.part").exists()
    assert sf.info(take).samplerate == 48000


def instrument_loses_and_finds_jack(server, tone_model, tmp_path):
    from gui.instrument import Devices, Instrument
    from synth.runtime.model_file import ModelFile

    inst = Instrument(ModelFile.read(tone_model), user_presets=tmp_path / "presets", devices=Devices(host_api="jack"))
    inst.start()
    try:
        assert inst.audio_error is None, inst.audio_error
        deadline = time.monotonic() + 60
        while not inst.status().audio and time.monotonic() < deadline:  # pushed once the first bank is in
            time.sleep(0.1)
        assert inst.status().audio
        while (st := inst.status()).bank_ready < st.bank_size and time.monotonic() < deadline:
            time.sleep(0.1)
        take = tmp_path / "take.wav"
        inst.start_recording(take)
        inst.note_on(60)
        time.sleep(0.5)
        child = inst.sound.process
        t0 = server.stop()
        events = []
        while time.monotonic() - t0 < 2.0 and not any("audio stopped" in e[1] for e in events if e[0] == "error"):
            events += inst.poll_events()
            time.sleep(0.02)
        lines = [e[1] for e in events if e[0] == "error" and "audio stopped" in e[1]]
        assert len(lines) == 1 and f"the take is saved: {take}" in lines[0], events
        assert take.exists() and not (tmp_path / ".take.wav.part").exists()
        audio, _ = sf.read(take, dtype="float32")
        # the note held when the server went is in the take, at least at half its level (the bank stores a timbre
        # at one loudness; velocity 100 on the GM curve; the voices' gain 0.5)
        assert np.abs(audio).max() > 0.5 * 0.5 * (100 / 127) ** 2 * stored_peak(tone_model, 60, 0.5)
        st = inst.status()
        assert st.audio is None and inst.audio_error.startswith("lost: ")
        deadline = time.monotonic() + 2
        while child.is_alive() and time.monotonic() < deadline:  # the sound process lives on, waiting
            inst.status()
            time.sleep(0.1)
        assert child.is_alive() and inst.status().audio is None

        server.start()  # the server returns: the window's sound reconnects by itself
        deadline = time.monotonic() + 60
        while not inst.status().audio and time.monotonic() < deadline:
            time.sleep(0.1)
        assert inst.status().audio and inst.audio_error is None
        assert any(e[0] == "error" and e[1].startswith("audio is back: ") for e in inst.poll_events())
        assert child.exitcode == 0  # the old sound process went without a PortAudio abort
        t1 = time.monotonic()
        inst.close()
        closed = time.monotonic() - t1
    finally:
        inst.close()
    assert closed < 2.0, closed


def window_sigterm_after_loss(server, tone_model, tmp_path):
    import jack

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "gui", "gui", "--model", str(tone_model), "--config",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out = lines_of(proc)
        probe = jack.Client("window-probe", no_start_server=True)
        deadline = time.monotonic() + 120

        def playing() -> bool:  # the stream starts (and connects to the system's playback) after the first bank
            ports = probe.get_ports("GANSynth Live Audio:")
            return bool(ports) and bool(probe.get_all_connections(ports[0]))

        while not playing() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert playing(), "the window's sound never reached JACK"
        probe.close()
        time.sleep(0.5)
        server.stop()
        wait_for(out, "gansynth-live: audio stopped", timeout=2.0)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=2.0)
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = "".join(iter(lambda: out.get(timeout=1) if not out.empty() else "", ""))
    assert rc == 0 and "Assertion" not in rest, rest
