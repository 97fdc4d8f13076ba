"""The master effects chain: pedalboard's built-in effects and hosted VST3/AU plugins, in order, each bypassable.

The chain runs in the output stage's producer thread (pedalboard allocates, so never in the audio callback).
Edits from other threads swap in a new `pedalboard.Pedalboard` of the same plugin objects, so effect tails
survive reordering and bypass, and the producer never sees a half-edited chain.
"""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

# name → (pedalboard class, {parameter: (default, minimum, maximum)})
BUILTINS: dict[str, tuple[str, dict[str, tuple[float, float, float]]]] = {
    "reverb": ("Reverb", {"room_size": (0.5, 0.0, 1.0), "damping": (0.5, 0.0, 1.0), "wet_level": (0.33, 0.0, 1.0),
                          "dry_level": (0.4, 0.0, 1.0), "width": (1.0, 0.0, 1.0)}),
    "delay": ("Delay", {"delay_seconds": (0.25, 0.0, 2.0), "feedback": (0.3, 0.0, 0.95), "mix": (0.3, 0.0, 1.0)}),
    "chorus": ("Chorus", {"rate_hz": (1.0, 0.01, 10.0), "depth": (0.25, 0.0, 1.0), "centre_delay_ms": (7.0, 1.0, 50.0),
                          "feedback": (0.0, 0.0, 0.95), "mix": (0.5, 0.0, 1.0)}),
    "compressor": ("Compressor", {"threshold_db": (-18.0, -60.0, 0.0), "ratio": (4.0, 1.0, 20.0),
                                  "attack_ms": (5.0, 0.1, 100.0), "release_ms": (100.0, 5.0, 1000.0)}),
    "filter": ("LadderFilter", {"cutoff_hz": (2000.0, 20.0, 20000.0), "resonance": (0.2, 0.0, 1.0),
                                "drive": (1.0, 1.0, 10.0)}),
    "gain": ("Gain", {"gain_db": (0.0, -60.0, 24.0)}),
}
PLUGIN_SUFFIXES = (".vst3", ".component")
CLIP_TRACE = 0.001  # a share of clipped samples above this is more than a trace, and worth a warning


class EffectError(ValueError):
    """An effect, parameter, plugin or saved chain that cannot be used, said in one line."""


@dataclass
class Effect:
    """One link of the chain: a built-in (kind is its name) or a hosted plugin (kind "plugin", path set)."""
    kind: str
    plugin: Any  # a pedalboard Plugin, or the HostedPlugin proxy of one in its own process
    path: str | None = None
    bypass: bool = False
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:8])  # stable across reordering (MIDI learn)

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else self.kind

    def parameters(self) -> dict[str, tuple[float, float, float]]:
        """Every (numeric) parameter as (value, minimum, maximum)."""
        if self.path is None:
            return {p: (float(getattr(self.plugin, p)), lo, hi) for p, (lo, hi) in self.ranges.items()}
        return self.plugin.parameters()

    def set(self, parameter: str, value: float) -> None:
        params = self.parameters()
        if parameter not in params:
            raise EffectError(f"{self.name} has no parameter '{parameter}'; it has: {', '.join(params)}")
        _, lo, hi = params[parameter]
        if not (lo <= float(value) <= hi):
            raise EffectError(f"{self.name} {parameter} must be between {lo:g} and {hi:g}, not {value:g}")
        if self.path is None:
            setattr(self.plugin, parameter, float(value))
        else:
            self.plugin.set(parameter, float(value))

    def to_dict(self) -> dict:
        d: dict = {"kind": self.kind, "uid": self.uid, "bypass": self.bypass,
                   "params": {p: v for p, (v, _, _) in self.parameters().items()}}
        if self.path:
            d["path"] = self.path
            state = getattr(self.plugin, "raw_state", None)
            if state:
                d["state"] = base64.b64encode(state).decode("ascii")
        return d


def builtin(kind: str, **params: float) -> Effect:
    """A built-in effect at its defaults, with any parameters overridden."""
    import pedalboard

    if kind not in BUILTINS:
        raise EffectError(f"no effect called '{kind}'; built-ins are: {', '.join(BUILTINS)}")
    cls, spec = BUILTINS[kind]
    fx = Effect(kind, getattr(pedalboard, cls)(**{p: d for p, (d, _, _) in spec.items()}),
                ranges={p: (lo, hi) for p, (_, lo, hi) in spec.items()})
    for p, v in params.items():
        fx.set(p, v)
    return fx


def load_plugin(path: str, state: str | None = None, loader: Callable[[str], object] | None = None) -> Effect:
    """Host a third-party plugin in a process of its own (synth.engine.plugin_host), optionally with its saved
    state; `loader` replaces pedalboard.load_plugin there (tests stand in for plugins that misbehave)."""
    from synth.engine.plugin_host import HostedPlugin, load_vst

    p = Path(path)
    if not str(path).strip() or not p.exists():  # Path("") is the current folder, which exists
        raise EffectError(f"no plugin at {path or '(no path given)'}")
    if p.suffix.lower() not in PLUGIN_SUFFIXES:
        raise EffectError(f"{p.name} is not a VST3 (.vst3) or Audio Unit (.component) plugin")
    try:
        raw = base64.b64decode(state, validate=True) if state else None
    except ValueError:
        raise EffectError(f"plugin {p.name}: its saved state is not base64 text") from None
    plugin = HostedPlugin(str(path), raw, loader or load_vst)
    if plugin.is_instrument and not plugin.is_effect:
        plugin.close()
        raise EffectError(f"plugin {p.name} is an instrument, not an effect")
    return Effect("plugin", plugin, path=str(path))


class EffectsChain:
    """An ordered, editable list of effects that processes stereo blocks [2, frames] at one sample rate."""

    def __init__(self, rate: int, effects: list[Effect] | None = None) -> None:
        import pedalboard

        self._pedalboard = pedalboard.Pedalboard
        self.rate = rate
        self.effects: list[Effect] = list(effects or [])
        self.errors: list[str] = []  # plugins dropped while playing, one line each, for the owner to report
        self.clipped = self.samples = 0  # what the chain put out beyond full scale, since `clipping()` last ran
        self._swap()

    def _swap(self) -> None:
        """The active effects as stages: runs of built-ins in one Pedalboard, each hosted plugin on its own."""
        stages: list = []
        for fx in self.effects:
            if fx.bypass:
                continue
            if fx.path is not None:
                stages.append(fx)
            elif stages and not isinstance(stages[-1], Effect):
                stages[-1].append(fx.plugin)
            else:
                stages.append(self._pedalboard([fx.plugin]))
        self.stages = stages  # one assignment: the producer sees the old list or the new one

    def __len__(self) -> int:
        return len(self.effects)

    def add(self, fx: Effect, index: int | None = None) -> Effect:
        self.effects.insert(len(self.effects) if index is None else index, fx)
        self._swap()
        return fx

    def remove(self, index: int) -> None:
        fx = self._at(index)
        del self.effects[index]
        self._swap()
        if fx.path is not None:
            fx.plugin.close()

    def move(self, index: int, to: int) -> None:
        fx = self._at(index)
        del self.effects[index]
        self.effects.insert(max(0, min(to, len(self.effects))), fx)
        self._swap()

    def set_bypass(self, index: int, bypass: bool) -> None:
        self._at(index).bypass = bypass
        self._swap()

    def set(self, index: int, parameter: str, value: float) -> None:
        self._at(index).set(parameter, value)

    def find(self, uid: str) -> int | None:
        """The position of the effect with this uid, or None."""
        return next((i for i, fx in enumerate(self.effects) if fx.uid == uid), None)

    def _at(self, index: int) -> Effect:
        if not 0 <= index < len(self.effects):
            raise EffectError(f"no effect number {index + 1} in the chain (it has {len(self.effects)})")
        return self.effects[index]

    def process(self, block: np.ndarray, reset: bool = False, timeout: float | None = None) -> np.ndarray:
        """Stream one stereo block [2, frames] through the active effects; may return fewer frames (plugin
        latency). A hosted plugin whose process dies or hangs is dropped from the chain (bypassed, with a line in
        `errors`) and the block goes on without it."""
        from synth.engine.plugin_host import BLOCK_SECONDS, PluginStopped

        for stage in self.stages:
            if not isinstance(stage, Effect):
                block = stage(block, self.rate, reset=reset)
                continue
            try:
                block = stage.plugin.process(block, self.rate, reset, timeout or BLOCK_SECONDS)
            except PluginStopped as e:
                stage.bypass = True
                self._swap()
                self.errors.append(f"{e}; it was taken out of the chain and the rest plays on")
        if self.stages:
            self.clipped += int(np.count_nonzero(np.abs(block) > 1.0))
            self.samples += block.size
        return block

    def clipping(self) -> str | None:
        """A warning line if more than a trace of what the chain put out since the last call was beyond full
        scale (it will be clipped); counts start again."""
        clipped, samples = self.clipped, self.samples
        self.clipped = self.samples = 0
        if samples and clipped / samples > CLIP_TRACE:
            return (f"the effects chain drives {100 * clipped / samples:.1f} % of samples past full scale, so they "
                    "clip: lower a gain, wet level or feedback")
        return None

    def close(self) -> None:
        """End the hosted plugins' processes."""
        for fx in self.effects:
            if fx.path is not None:
                fx.plugin.close()

    def reset(self) -> None:
        """Clear every effect's tail (before an offline render)."""
        for fx in self.effects:
            fx.plugin.reset()

    def to_list(self) -> list[dict]:
        return [fx.to_dict() for fx in self.effects]

    @staticmethod
    def from_list(rate: int, items: list[dict], where: str = "the saved chain") -> "EffectsChain":
        """Rebuild a saved chain; a malformed entry or a plugin that no longer loads is a one-line error."""
        effects = []
        for d in check_chain(items, where):
            if d["kind"] == "plugin":
                fx = load_plugin(d["path"], d["state"])
                for p, v in d["params"].items():
                    fx.set(p, v)
            else:
                fx = builtin(d["kind"], **d["params"])
            fx.bypass = d["bypass"]
            fx.uid = d["uid"] or fx.uid
            effects.append(fx)
        return EffectsChain(rate, effects)


def check_chain(items: object, where: str) -> list[dict]:
    """A saved chain's entries with every field checked and typed (EffectError names the entry and field)."""
    from synth import schema

    try:
        out = []
        for i, d in enumerate(schema.items(items, where, "effects", lambda v, _: v, max_len=100)):
            field = f"effect {i + 1}"
            d = schema.obj(d, where, field)
            kind = schema.string(d.get("kind"), where, f"{field} kind", 100)
            params = schema.obj(d.get("params", {}), where, f"{field} params")
            out.append({"kind": kind,
                        "params": {schema.string(k, where, f"{field} params", 200):
                                   schema.number(v, where, f"{field} params.{k}") for k, v in params.items()},
                        "bypass": schema.boolean(d.get("bypass", False), where, f"{field} bypass"),
                        "uid": schema.string(d.get("uid"), where, f"{field} uid", 100, optional=True),
                        "path": schema.string(d.get("path", "") if kind == "plugin" else "", where,
                                              f"{field} path", 4096),
                        "state": schema.string(d.get("state"), where, f"{field} state", 1 << 26, optional=True)})
        return out
    except schema.SchemaError as e:
        raise EffectError(str(e)) from None


def parse_chain(spec: str, rate: int) -> EffectsChain:
    """`--effects`: a saved chain (JSON file) or built-ins by name, e.g. "reverb:room_size=0.8,delay"."""
    if spec.endswith(".json"):
        try:
            items = json.loads(Path(spec).read_text())
        except OSError as e:
            raise EffectError(f"cannot read effects file {spec}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise EffectError(f"effects file {spec} is not valid JSON ({e.msg}, line {e.lineno})") from None
        return EffectsChain.from_list(rate, items, f"effects file {spec}")
    chain = EffectsChain(rate)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if part.lower().endswith(PLUGIN_SUFFIXES):
            chain.add(load_plugin(part))
            continue
        kind, _, rest = part.partition(":")
        params = {}
        for kv in filter(None, rest.split(":")):
            key, eq, value = kv.partition("=")
            try:
                params[key] = float(value)
            except ValueError:
                raise EffectError(f"'{kv}' in --effects: give a number, as in {kind}:{key}=0.5") from None
        chain.add(builtin(kind, **params))
    return chain


def apply_offline(chain: EffectsChain, audio: np.ndarray, tail_seconds: float = 4.0) -> np.ndarray:
    """A whole render ([frames, 2] stereo, or [frames] mono played on both sides) through the chain from a clean
    state → stereo [frames, 2], with the effects' tails kept until they fall below -90 dB (at most
    `tail_seconds`)."""
    n = len(audio)
    x = np.zeros((2, n + int(tail_seconds * chain.rate)), dtype=np.float32)
    x[:, :n] = audio.T if audio.ndim == 2 else audio
    chain.reset()
    y = chain.process(x, reset=True, timeout=60 + x.shape[1] / chain.rate)
    loud = np.flatnonzero(np.abs(y).max(axis=0) > 10 ** (-90 / 20))
    end = max(n, int(loud[-1]) + 1 if len(loud) else 0)
    return np.ascontiguousarray(y[:, :end].T)
