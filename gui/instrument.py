"""The instrument the window drives, with nothing of Qt in it. The sound (engine, effects, recorder, audio output,
MIDI input) runs in a process of its own (synth.engine.sound_process), so the window's thread never shares a
GIL with the audio callback. Notes, timbres, gain and status return at once; `start`/`apply` wait for the sound
process to open its devices, and recording and the effects chain (RemoteChain) wait for their answers."""
from __future__ import annotations

import sys
import time
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from synth.core.timbre import (MAX_NAME, PRESETS_DIR, Preset, PresetError, morph, preset_path, save_preset,
                               scan_presets)
from synth.engine.rig import RigConfig, RigStatus
from synth.engine.sound_process import RemoteChain, SoundProcess, SoundProcessError
from synth.runtime.model_file import ModelFile

MASTER_GAIN = 0.5  # the voices' gain at 0 dB on the master slider
RECONNECT_PROBE_SECONDS = 1.0  # how often a window whose JACK server went away looks for it again
TIMBRE_INTERVAL = 0.1  # seconds between new banks while the pad moves: each gets time to render the held keys


@dataclass
class Devices:
    """Where the sound goes and where MIDI comes from (None: the system default / our virtual port), and how it
    plays: every option of `gansynth-live play` that the window does not set elsewhere."""
    audio_out: str | None = None
    host_api: str | None = None
    rate: int = 48000
    block: int = 128
    latency: str | float = "low"
    midi_in: str | None = None
    midi_api: str | None = None
    channel: int | None = None  # 0-15, None: every channel
    polyphony: int = 32
    release: float | None = None  # None: each note's own release
    connect: str | None = None  # JACK ports to wire our outputs to
    mod_target: str | None = None  # the preset the modulation wheel and pressure morph towards (None: the default)
    drums: str | None = None  # a SoundFont whose GM kit FluidSynth plays channel 10 with (None: the timbre plays it)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @staticmethod
    def from_dict(d: dict) -> "Devices":
        known = Devices().__dict__
        return Devices(**{k: d[k] for k in known if k in d})


@dataclass
class Instrument:
    """One playable instrument; `start()` opens the sound process (device errors land in audio_error/midi_error)."""
    model: ModelFile  # read, not loaded: the sound process loads it
    user_presets: Path
    devices: Devices = field(default_factory=Devices)
    provider: str | None = None
    shipped_presets: Path | None = None  # `gui --presets DIR` plays another set in the shipped ones' place

    def __post_init__(self) -> None:
        self.presets = self._load_presets()
        self.corners: list[Preset] = [self.presets[i % len(self.presets)] for i in range(4)]
        self.position = (0.0, 0.0)
        self.master_db = 0.0
        self.z = morph([c.z for c in self.corners], *self.position)
        self.saved_effects: list[dict] = []
        self.sound: SoundProcess | None = None
        self.chain: RemoteChain | None = None
        self.audio_error: str | None = None
        self.midi_error: str | None = None
        self.chain_error: str | None = None
        self._notices: list[tuple] = []
        self._last_probe = 0.0
        self._pending: np.ndarray | None = None
        self._posted = 0.0

    def _load_presets(self) -> list[Preset]:
        """The shipped presets, then the user's; a user's preset keeps its name and the shipped one of that name
        becomes "NAME (shipped)". Files that do not load are skipped and described in `preset_problems`."""
        z_dim = self.model.info.z_dim
        shipped, problems = scan_presets(z_dim, self.shipped_presets or PRESETS_DIR)
        if problems and not shipped and self.shipped_presets is None:
            problems = []  # the shipped presets belong to the shipped model, not to this one
        user, user_problems = scan_presets(z_dim, self.user_presets)
        self.preset_problems = problems + user_problems
        mine = {p.name.casefold() for p in user}
        shipped = [replace(p, name=f"{p.name} (shipped)") if p.name.casefold() in mine else p for p in shipped]
        found = shipped + user
        if not found:
            rng = np.random.default_rng(0)
            found = [Preset(f"Random {i + 1}", rng.standard_normal(z_dim).astype(np.float32)) for i in range(4)]
        return found

    # -- the sound process ---------------------------------------------------------------------------------------
    def start(self, audio: bool = True, midi: bool = True) -> None:
        d = self._playable(self.devices)
        config = RigConfig(model=str(self.model.path), provider=self.provider, presets=self.presets, timbre=self.z,
                           gain=MASTER_GAIN * 10 ** (self.master_db / 20), effects=list(self.saved_effects),
                           audio=audio, midi=midi, **d.to_dict())
        try:
            self.sound = SoundProcess(config)
        except SoundProcessError as e:
            self.sound, self.chain, self.audio_error = None, None, str(e)
            return
        self.audio_error, self.midi_error, self.chain_error = (self.sound.audio_error, self.sound.midi_error,
                                                               self.sound.chain_error)
        self.chain = RemoteChain(self.sound)
        self._posted = time.monotonic()

    def _playable(self, d: Devices) -> Devices:
        """The devices with a saved morph target that is no longer a preset, or a drum SoundFont that is gone,
        left out (and said): the sound starts without them, and `devices` keeps the choice for when they are back."""
        if d.mod_target is not None and d.mod_target not in {p.name for p in self.presets}:
            self._notices.append(("error", f"the mod wheel's preset '{d.mod_target}' is not loaded; it morphs "
                                           "towards the default until it is"))
            d = replace(d, mod_target=None)
        if d.drums is not None and not Path(d.drums).is_file():
            self._notices.append(("error", f"drum SoundFont {d.drums} not found; channel 10 plays the timbre"))
            d = replace(d, drums=None)
        return d

    def effects_list(self) -> list[dict]:
        """The chain as it should be saved: what plays, or the saved chain while that failed to load."""
        if self.chain is not None and not self.chain_error:
            try:
                self.saved_effects = self.chain.to_list()
            except SoundProcessError:
                pass
        return self.saved_effects

    def stop(self) -> None:
        if self.sound is not None:
            self.effects_list()
            self.sound.close()
            self.sound, self.chain = None, None

    def apply(self, devices: Devices, audio: bool = True, midi: bool = True) -> None:
        """Switch devices: a new sound process with the same timbre, gain and effects."""
        self.stop()
        self.devices = devices
        self.start(audio, midi)

    close = stop

    def poll_events(self) -> list[tuple]:
        """Controller moves ("cc", channel, controller, value) and errors and notices ("error", text) since last
        time."""
        notices, self._notices = self._notices, []
        return notices + (self.sound.events() if self.sound else [])

    def _jack_is_back(self) -> bool:
        """Whether the JACK server the sound lost runs again (asked at most once a second)."""
        if time.monotonic() - self._last_probe < RECONNECT_PROBE_SECONDS:
            return False
        self._last_probe = time.monotonic()
        from synth.engine.midi import jack_running

        return jack_running()

    def _reconnect(self, lost: RigStatus) -> RigStatus:
        """A new sound process on the same devices, timbre, gain and effects (the lost one's take is already
        saved); the window blocks for its start, once."""
        self.apply(self.devices)
        if self.sound is not None and not self.audio_error:
            self._notices.append(("error", f"audio is back: {self.sound.call('status').audio}"))
        return self.status() if self.sound is not None else lost

    def note_on(self, pitch: int, velocity: int = 100) -> None:
        if self.sound:
            self.sound.send(0x90, pitch, velocity)

    def note_off(self, pitch: int) -> None:
        if self.sound:
            self.sound.send(0x80, pitch, 0)

    # -- timbre --------------------------------------------------------------------------------------------------
    def move(self, x: float, y: float) -> np.ndarray:
        """Morph to pad position (x, y) in [0, 1]² (top-left corner at 0, 0) and play it. While the pad moves
        faster than TIMBRE_INTERVAL, the latest position waits for `flush_timbre()`."""
        self.position = (min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0))
        self._pending = morph([c.z for c in self.corners], *self.position)
        self.flush_timbre()
        return self._pending if self._pending is not None else self.z

    def flush_timbre(self) -> None:
        """Post the latest morph position if the last one is old enough (call it periodically)."""
        if self._pending is not None and time.monotonic() - self._posted >= TIMBRE_INTERVAL:
            self._play(self._pending)

    def _play(self, z: np.ndarray) -> None:
        self.z, self._pending, self._posted = z, None, time.monotonic()
        if self.sound:
            self.sound.set_timbre(z)

    def set_mod_target(self, name: str) -> None:
        """The preset the modulation wheel and pressure morph towards (SoundProcessError if it is refused); kept
        in `devices`, so the session saves it and a new sound process starts with it."""
        if self.sound is not None:
            self.sound.call("mod_target", name)
        self.devices = replace(self.devices, mod_target=name)

    def set_corner(self, corner: int, preset: Preset) -> None:
        self.corners[corner] = preset
        self.move(*self.position)

    def random_timbre(self, seed: int | None = None) -> np.ndarray:
        z = np.random.default_rng(seed).standard_normal(self.model.info.z_dim).astype(np.float32)
        self._play(z)
        return z

    def use_model(self, path: str | Path) -> None:
        """Play another model file from the next start or apply (ModelError, one line, when it is not one): its
        presets are read again for its latent size, and corners that do not fit it become its first presets."""
        self.model = ModelFile.read(path)
        self.reload_presets()
        z_dim = self.model.info.z_dim
        if any(len(c.z) != z_dim for c in self.corners):
            self.corners = [self.presets[i % len(self.presets)] for i in range(4)]
        self.z = morph([c.z for c in self.corners], *self.position)
        self._pending = None

    def reload_presets(self) -> None:
        """Read the preset folders again (after a preset was made outside the window, e.g. by an import)."""
        self.presets = self._load_presets()

    def free_preset_name(self, wanted: str) -> str:
        """`wanted` made a valid preset name that no loaded or saved preset has yet ("Cello", "Cello 2", ...)."""
        base = "".join(c for c in wanted if unicodedata.category(c) != "Cc").strip()[:MAX_NAME - 4] or "Sound"
        taken = {p.name.casefold() for p in self.presets}
        for n in range(1, 1000):
            name = base if n == 1 else f"{base} {n}"
            if name.casefold() not in taken and not preset_path(name, self.user_presets)[1]:
                return name
        raise PresetError(f"too many presets are named like '{base}'")

    def import_command(self, path: str, name: str) -> list[str]:
        """The command line that makes preset `name` in the user's folder from a recorded note (`presets import`)."""
        entry = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "synth"]
        return entry + ["presets", "import", str(Path(path).absolute()), f"--name={name}",  # a name may start with -
                        f"--model={self.model.path}", f"--out={self.user_presets}"]

    def save_preset(self, name: str, overwrite: bool = False) -> Path:
        """Save the timbre playing now in the user's preset folder (refuses to replace one unless told)."""
        path = save_preset(Preset(name, self.z.copy(), description="saved from the morph pad"), self.user_presets,
                           overwrite=overwrite)
        self.reload_presets()
        return path

    def set_master_db(self, db: float) -> None:
        self.master_db = db
        if self.sound:
            self.sound.set_gain(MASTER_GAIN * 10 ** (db / 20))

    # -- recording -----------------------------------------------------------------------------------------------
    def start_recording(self, path: str | Path, overwrite: bool = False) -> str:
        if self.sound is None:
            raise ValueError("nothing to record: the sound is not running")
        return self.sound.call("record_start", str(path), overwrite)

    def stop_recording(self) -> str | None:
        try:
            return self.sound.call("record_stop") if self.sound else None
        except SoundProcessError:  # the recorder died with the process; its part file keeps what was played
            return None

    def status(self) -> RigStatus:
        """The newest status the sound process pushed (voices, bank, underruns, latency, ...), or a stand-in
        while it is down or has not said yet; never waits (but for a reconnect once the JACK server is back)."""
        if self.sound is not None:
            st = self.sound.status()
            if not self.sound.process.is_alive():  # it died: say so, keep the window working (Devices → Apply)
                self.audio_error = f"the sound process has stopped (exit code {self.sound.process.exitcode})"
                self.sound, self.chain = None, None
            elif st is not None:
                if st.audio_lost:
                    self.audio_error = f"lost: {st.audio_lost}"
                    if (st.hostapi or "").startswith("JACK") and self._jack_is_back():
                        return self._reconnect(st)
                return st
        info = self.model.info
        return RigStatus(provider=self.model.provider, z=self.z.tolist(),
                         bank_size=(info.pitch_max - info.pitch_min + 1) * len(info.velocity_layers))
