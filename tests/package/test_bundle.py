"""The desktop bundle (slow: a full PyInstaller build): the binary runs on its own, with no Python environment,
prints its version and renders a MIDI file with the bundled model and presets."""
import configparser
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bundle_builds_and_runs_without_python(tmp_path):
    build = subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                            "--distpath", str(tmp_path / "dist"), "--workpath", str(tmp_path / "work"),
                            str(ROOT / "packaging" / "gansynth-live.spec")], capture_output=True, text=True,
                           timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    binary = tmp_path / "dist" / "gansynth-live" / "gansynth-live"
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no virtualenv, no PYTHONPATH
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=bare, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == "gansynth-live 0.1.0"
    out = tmp_path / "demo.flac"
    render = subprocess.run([str(binary), "render", str(ROOT / "synth" / "assets" / "demo.mid"), "-o", str(out)],
                            capture_output=True, text=True, env=bare, timeout=300, cwd=tmp_path)
    assert render.returncode == 0, render.stderr
    assert "65 notes" in render.stdout and "Flutes" in render.stdout  # the bundled presets were found
    audio, rate = sf.read(out)
    assert rate == 48000 and len(audio) > 15 * rate and np.abs(audio).max() > 0.01
    shot = tmp_path / "window.png"
    gui = subprocess.run([str(binary), "gui", "--no-audio", "--no-midi", "--config", str(tmp_path / "cfg"),
                          "--screenshot", str(shot)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env=bare | {"QT_QPA_PLATFORM": "offscreen"})
    assert gui.returncode == 0 and shot.stat().st_size > 10_000, gui.stderr[-2000:]


def test_desktop_entry_is_valid():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "packaging" / "gansynth-live.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"].split()[0] == "gansynth-live"
    assert set(d["Categories"].rstrip(";").split(";")) >= {"AudioVideo", "Audio", "Midi"}
    assert (ROOT / "packaging" / f"{d['Icon']}.svg").exists()
