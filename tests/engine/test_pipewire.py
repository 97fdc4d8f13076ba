"""End to end into a PipeWire null sink, the virtual audio device of a Linux desktop without a sound card: the
player reaches PipeWire through its JACK API (as under `pw-jack`), a fake DAW plays a phrase into our MIDI port
and records the sink's monitor, and the take matches the offline render of the phrase. The DAW records, as a DAW
under `pw-jack` would, rather than `pw-record`: its take and its phrase follow the one graph clock, where
`pw-record`, a separate stream, loses whole cycles when a loaded machine runs it late (tens of ms over the phrase).

A private PipeWire (tests/pipewire-null-sink.conf: dummy driver, one null sink) runs with WirePlumber, a desktop's
session manager, and a private D-Bus session bus, which WirePlumber needs. Missing programs fail the test:
the README's setup installs them.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fake_daw import assert_matches_offline_render
from tests.procs import lines_of, wait_for

PW_JACK = "/usr/lib/x86_64-linux-gnu/pipewire-0.3/jack"
PW_LIBJACK = str(Path(PW_JACK, "libjack.so.0"))  # preloaded for python-rtmidi, whose wheel brings JACK 2's
CONF = Path(__file__).with_name("pipewire-null-sink.conf")
SINK = "GSL null sink"


def _until(check, what: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def pipewire(tmp_path_factory):
    """Environment for children that talk to a private PipeWire with a null sink. python-rtmidi's wheel carries
    its own JACK 2 client library, so PipeWire's libjack is preloaded for it; PortAudio and the JACK client of
    the fake DAW find PipeWire's through the library path, as `pw-jack` arranges."""
    missing = [p for p in ("pipewire", "wireplumber", "dbus-daemon", "pw-link") if not shutil.which(p)]
    if missing or not Path(PW_LIBJACK).exists():
        pytest.fail(f"PipeWire is not installed ({', '.join(missing) or 'pipewire-jack'}); run the README's setup")
    run = tmp_path_factory.mktemp("pipewire-run")
    run.chmod(0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), PIPEWIRE_RUNTIME_DIR=str(run))
    env.pop("JACK_DEFAULT_SERVER", None)
    procs = []
    try:
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
        procs.append(bus)
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        procs.append(subprocess.Popen(["pipewire", "-c", str(CONF)], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))

        def ports() -> str:
            return subprocess.run(["pw-link", "-o"], env=env, capture_output=True, text=True).stdout

        _until(lambda: "gsl-null-sink:monitor_FL" in ports(), "PipeWire starting with the null sink")
        procs.append(subprocess.Popen(["wireplumber"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _until(lambda: "WirePlumber" in subprocess.run(["pw-cli", "ls", "Client"], env=env, capture_output=True,
                                                       text=True).stdout, "WirePlumber starting")
        env["LD_LIBRARY_PATH"] = PW_JACK + os.pathsep + env.get("LD_LIBRARY_PATH", "")
        yield env
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_phrase_into_a_pipewire_null_sink_matches_the_offline_render(pipewire, tone_model, tmp_path):
    env = pipewire
    devices = subprocess.run([sys.executable, "-m", "synth", "devices"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert any(SINK in line and "* virtual" in line for line in devices.stdout.splitlines()), devices.stdout

    take = tmp_path / "monitor.npy"
    player = subprocess.Popen([sys.executable, "-m", "synth", "play", "--model", str(tone_model), "--host-api", "jack",
                               "--audio-out", SINK, "--midi-api", "jack", "--release", "0.05", "--seconds", "60"],
                              env=dict(env, LD_PRELOAD=PW_LIBJACK),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = lines_of(player)
        assert SINK in wait_for(out, "audio:")
        wait_for(out, "ready:")
        wanted = "GANSynth Live Audio:out_0\n  |-> gsl-null-sink:playback_FL"  # by PortAudio
        _until(lambda: wanted in subprocess.run(["pw-link", "-l"], env=env, capture_output=True, text=True).stdout,
               "linking the player to the sink")
        daw = subprocess.run([sys.executable, "-m", "tests.fake_daw", "GANSynth Live", ":monitor_F", str(take)],
                             capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2],
                             env=dict(env, LD_PRELOAD=PW_LIBJACK))
        assert daw.returncode == 0 and "played" in daw.stdout, daw.stderr
        print(daw.stdout.strip())
        player.send_signal(signal.SIGINT)
        assert player.wait(timeout=20) == 0
        wait_for(out, "stopped:")
    finally:
        if player.poll() is None:
            player.send_signal(signal.SIGINT)
            try:
                player.wait(timeout=10)
            except subprocess.TimeoutExpired:
                player.kill()

    audio = np.load(take)
    assert audio.ndim == 2 and audio.shape[1] == 2
    assert_matches_offline_render(audio[:, 0], tone_model, tmp_path, np.load(tmp_path / "monitor.heard.npy"))


def test_default_midi_api_on_pipewire_is_jack_only_where_rtmidi_reaches_it(pipewire):
    """On a PipeWire desktop libjack is PipeWire's, but python-rtmidi's own JACK 2 library cannot reach it: the
    default MIDI API then falls back to the platform's (ALSA, which PipeWire bridges), unless PipeWire's libjack
    is preloaded."""
    probe = [sys.executable, "-c", "import rtmidi; from synth.engine.midi import default_api; "
             "print(rtmidi.get_api_name(default_api()))"]
    plain = subprocess.run(probe, env=pipewire, capture_output=True, text=True, timeout=60)
    preloaded = subprocess.run(probe, env=dict(pipewire, LD_PRELOAD=PW_LIBJACK),
                               capture_output=True, text=True, timeout=60)
    assert plain.stdout.strip() == "alsa", plain.stderr
    assert preloaded.stdout.strip() == "jack", preloaded.stderr
