"""docs/architecture.md's table of shared buffers, kept true: every store into a shared array of the bank and
the voices is found in the engine's source, and the modules that store into each are the writers the table names
(voices: the mixing thread; bank: the renderer; engine: Engine.send, on the MIDI and command threads)."""
import ast
import collections
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "synth" / "engine"
DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
WRITERS = {  # array attribute → the modules whose code stores into it
    "slot_for": {"bank"},
    "users": {"voices"},
    "clock": {"voices"},
    "held": {"voices"},
    "last_on": {"voices"},
    "last_velocity": {"voices"},
    "velocity": {"voices", "engine"},
    "wanted": {"voices", "engine", "bank"},
    "loop_start": {"bank"},
    "loop_len": {"bank"},
    "jump_from": {"bank"},
    "jump_len": {"bank"},
    "jump_to": {"bank"},
    "jumps": {"bank"},
    "tail_from": {"bank"},
    "tail_k": {"bank"},
    "release_end": {"bank"},
}


def stores(tree: ast.AST) -> set[str]:
    """The attributes stored into by subscript (`x.attr[i] = v`, `x.attr[i] += v`) or by `out=x.attr`."""
    found = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign) else []
        found |= {t.value.attr for t in targets if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute)}
        if isinstance(node, ast.Call):
            found |= {kw.value.attr for kw in node.keywords if kw.arg == "out" and isinstance(kw.value, ast.Attribute)}
    return found


def test_each_shared_array_has_the_writers_the_architecture_document_names():
    found = collections.defaultdict(set)
    for path in ENGINE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name != "__init__":  # __init__: before any thread runs
                for attr in stores(node) & WRITERS.keys():
                    found[attr].add(path.stem)
    assert dict(found) == WRITERS


def test_the_document_lists_every_shared_array():
    table = DOC.read_text()
    missing = [attr for attr in WRITERS if f"{attr}`" not in table and f"`{attr}" not in table]
    assert not missing, missing
