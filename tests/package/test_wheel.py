"""The package as a user installs it: a wheel built from the source, installed (not editable) into a fresh
virtualenv outside the source tree, renders the demo and a MIDI file, plays live on JACK (recording a take) and
finds its 12 presets."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              "runs", "data")


def run(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_the_installed_wheel_plays_renders_and_finds_its_presets(tmp_path, jack_server):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=SKIP)  # a copy: building leaves nothing in the checkout
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
        source, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("gansynth_live-*.whl"))
    packed = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(source)) for top in ("synth", "gui") for p in (source / top).rglob("*.py")}
    assert sources <= packed, sorted(sources - packed)  # a new subpackage missing from pyproject's list
    assert {f"synth/presets/{p.name}" for p in (source / "presets").glob("*.json")} <= packed
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # The dependencies come from this environment (a plain path: its .pth files, the editable install of the
    # source among them, are not read); the package itself only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel,
        cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run(venv / "bin" / "python", "-c", "import synth; print(synth.__file__)", cwd=work, env=env)
    assert where.stdout.startswith(str(site)), where.stdout  # not the source tree

    cli = venv / "bin" / "gansynth-live"
    assert " gui " in run(cli, "--help", cwd=work, env=env).stdout.replace(",", " ")  # registered by entry point
    listed = run(cli, "presets", "list", cwd=work, env=env).stdout.splitlines()
    assert len(listed) == 12, listed
    demo = run(cli, "demo", "-o", "demo.wav", cwd=work, env=env)
    assert "timbres Bass, Flutes, Synth Pad" in demo.stdout, demo.stdout  # the shipped presets, by program
    audio, rate = sf.read(work / "demo.wav")
    assert rate == 48000 and len(audio) > 10 * rate and abs(audio).max() > 0.05
    midi = site / "synth" / "assets" / "demo.mid"
    run(cli, "render", midi, "-o", "stem.flac", "--channels", "2", "--preset", "Strings", cwd=work, env=env)
    stem, _ = sf.read(work / "stem.flac")
    assert abs(stem).max() > 0.01
    played = run(cli, "play", "--host-api", "jack", "--midi-api", "jack", "--seconds", "2", "--record", "take.wav",
                 cwd=work, env=env)  # on the tests' private JACK server (JACK_DEFAULT_SERVER is set)
    assert "ready:" in played.stdout and "timbre: Bass" in played.stdout, played.stdout
    assert sf.info(work / "take.wav").duration > 0.5
