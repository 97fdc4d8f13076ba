"""The layers hold: the live side (window, engine, runtime, core, the live commands) imports and renders with torch
and onnx made unimportable, and the import contracts in pyproject.toml are kept (import-linter)."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LIVE_SIDE = textwrap.dedent("""
    import importlib, pkgutil, sys

    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "onnx"):
                raise ModuleNotFoundError(f"{name} is blocked in this test", name=name)
            return None

    sys.meta_path.insert(0, Blocked())
    for package in ("synth.core", "synth.runtime", "synth.engine", "synth.commands", "synth.bench", "gui"):
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__, package + "."):
            importlib.import_module(info.name)
    from synth.cli import main
    main(["render", sys.argv[1], "-o", sys.argv[2], "--channels", "2"])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx") or m.startswith("synth.model"))
    assert not loaded, loaded
    print("live side without torch: ok")
""")


def test_the_live_side_imports_and_renders_with_torch_blocked(tmp_path):
    from synth.demo import DEMO_MIDI

    out = tmp_path / "melody.wav"
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", LIVE_SIDE, str(DEMO_MIDI), str(out)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "live side without torch: ok" in proc.stdout, proc.stdout + proc.stderr
    assert out.stat().st_size > 100_000


def test_the_import_contracts_are_kept():
    """gui > synth.cli > synth.commands > synth.bench > synth.engine | synth.model > synth.runtime > ... > synth.core,
    and the live side never imports torch, onnx or synth.model."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is not installed (pip install '.[test]')"
    proc = subprocess.run([lint], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and "0 broken" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
