"""`gansynth-live`: the one command-line entry point. Each command lives in its own module of synth.commands;
packages above synth (the window's `gui`) add theirs through the `gansynth_live.commands` entry points."""
from __future__ import annotations

import argparse
import importlib
import pickle
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

from synth import __version__

Register = Callable[[argparse._SubParsersAction], None]
COMMANDS = ("dataset", "train", "export", "evaluate", "render", "play", "recover", "devices", "presets", "bench",
            "levels", "held", "examples")
DESCRIPTION = "A playable neural synthesizer: play it live from MIDI, render MIDI files, train your own voice."
COMMAND_GROUP = "gansynth_live.commands"  # entry points: a `register(subparsers)` each


def _installed_commands() -> list[Register]:
    """The `register` functions other installed packages declare; one whose package fails to import is left out
    (its command is missing from --help; the error shows when that package is run directly)."""
    found = []
    for ep in entry_points(group=COMMAND_GROUP):
        try:
            found.append(ep.load())
        except ImportError:
            continue
    return found


def build_parser(extra: Iterable[Register] = ()) -> argparse.ArgumentParser:
    """The command line: synth's commands, then those registered by entry point or passed in `extra`."""
    p = argparse.ArgumentParser(prog="gansynth-live", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"gansynth-live {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"synth.commands.{name}").register(sub)
    done: set[Register] = set()
    for register in (*_installed_commands(), *extra):
        if register not in done:  # a package passing its own register while installed is registered once
            done.add(register)
            register(sub)
    return p


def _let_portaudio_go() -> None:
    if "sounddevice" in sys.modules:
        from synth.engine.audio import skip_portaudio_teardown_if_jack_is_gone

        skip_portaudio_teardown_if_jack_is_gone()


def main(argv: list[str] | None = None, extra: Iterable[Register] = ()) -> None:
    """Run one command; every user-facing error ends as one line and a non-zero exit code."""
    args = build_parser(extra).parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # play starts itself again after a lost server
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except ModuleNotFoundError as e:
        if e.name not in ("torch", "onnx", "PIL"):
            raise
        sys.exit(f"gansynth-live: '{args.command}' needs {e.name}, which this install does not have; "
                 "install the training extras: pip install 'gansynth-live[train]'")
    except (OSError, ValueError) as e:  # every user-facing error class derives from these
        sys.exit(f"gansynth-live: {e}")
    except pickle.UnpicklingError as e:  # torch.load(weights_only=True) refusing a checkpoint with code in it
        why = next((line.strip().rstrip(".") for line in str(e).splitlines() if "GLOBAL" in line.upper()
                    and ("unsupported" in line.lower() or "blocked" in line.lower())), "it is not a torch checkpoint")
        sys.exit(f"gansynth-live: checkpoint not loaded: it holds more than weights ({why})")
    finally:
        _let_portaudio_go()
