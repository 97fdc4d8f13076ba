"""Train the harmonic-plus-noise voice as a VAE: encoder → z, G(z, pitch, velocity) → audio, multi-resolution
spectral loss on crops of real notes plus a KL term towards N(0, I). Runs on CPU or CUDA, with torchrun (DDP), and
resumes from OUT/checkpoint.pt; losses go to OUT/log.jsonl.
"""
from __future__ import annotations

import gc
import json
import math
import os
import platform
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import torch

from synth.core.files import replacing
from synth.core.notes import PITCH_MAX, PITCH_MIN
from synth.model import dataset
from synth.model.discriminator import Discriminator, discriminator_loss, generator_losses
from synth.model.envelope import BandEnvelope
from synth.model.harmonic_levels import HarmonicLevels
from synth.model.hnsynth import FRAMES, HOLD_SECONDS, HOP, SAMPLE_RATE, average_spectrum_loss, mel_loss, spectral_loss
from synth.model.noise_course import NoiseCourse
from synth.model.noise_critic import NoiseCritic
from synth.model.texture import Texture
from synth.model.vibrato import track_all, vibrato_loss
from synth.model.voice import Encoder, MelFeatures, Voice, VoiceConfig, grow_noise_head, resample_bands

CHECKPOINT_VERSION = 2  # 1 was the IF-Mel GAN
SPIKE_RATIO, SETTLED_STEPS = 4.0, 20  # a batch whose spectral loss is 4x the level of the steps before is skipped
DISC_LR = 1e-4  # the discriminator's rate, fixed: at a fine-tune's generator rate (5e-5) it was still at chance
                # after 100 steps (hinge loss 1.98 of 2; at 1e-4, 1.85 by step 350)
CRITIC_LR = 4e-4  # the noise critic's: at 1e-4 a first form of it was still at chance (1.995 of 2) after 100 steps


@dataclass
class VoiceTrainConfig:
    data_dir: str
    out_dir: str
    net: VoiceConfig = field(default_factory=VoiceConfig)
    batch: int = 8
    crop_frames: int = 96                # 0.48 s of audio per note per step
    lr: float = 3e-4                     # 1e-3 diverged after 3,500 steps (KL and loss jumped 8-20x)
    lr_final: float = 3e-5               # cosine decay to this over decay_steps
    # ~6 sessions of 3 h on one CPU thread. At 200,000 the rate had barely moved by step 33,000; after it dropped
    # there to 2e-4, the median pitch error went from 7.4 cents (step 31,300) to 2.1 (36,000), piano attacks 42 → 14 ms.
    decay_steps: int = 80_000
    kl_weight: float = 1e-3
    envelope_weight: float = 0.5         # the whole-note band envelope loss (envelope.py), beside the crops' loss
    spectrum_weight: float = 0.1         # the crops' average spectrum (hnsynth.average_spectrum_loss)
    kl_warmup: int = 2000                # steps over which the KL weight rises from a tenth of its value
    limit_notes: int | None = 12000
    seed: int = 0
    checkpoint_every_s: float = 300.0
    max_minutes: float | None = None
    max_steps: int | None = None
    device: str | None = None
    threads: int | None = None
    init_from: str | None = None         # a checkpoint or exported .onnx whose generator a new run starts from
    # A fine-tune of a model file keeps what it played: the generator's controls for the model's presets and for
    # random latents of its prior stay near the file's own (an L1 on log amplitudes and noise, and on the vibrato),
    # with this weight; 0 lets it drift. Without it, 30 minutes on 14 programs of another soundfont took the Bass,
    # Guitar and Synth Pad presets from 0.88 / 0.58 / 0.99 to 0.25 / 0.10 / 0.42 family probability; with 2 (presets
    # half of each keep batch) every preset stayed within 0.05 and imports of that soundfont still came 0.3 dB closer;
    # with 5 they stayed too but the imports did not move.
    keep_weight: float = 2.0
    # This share of each batch is decoded at the pitch of another note of the same unit (instrument and velocity)
    # and compared with that note: a latent then stands for an instrument across the keyboard, not one note of it,
    # as a preset or an imported one-shot is played. 0: every note is rebuilt at its own pitch only.
    cross_pitch: float = 0.0
    # This share of each batch is decoded at the velocity of the same instrument's note at the same pitch and
    # another velocity, and compared with that note: the bank plays every velocity layer from one latent, and a
    # latent decoded only at its own note's velocity drifted in timbre across the layers (the held-out notes'
    # spectral centroid moved up to 194 cents from velocity 40 to 120 where the soundfont's moved 0-29).
    cross_velocity: float = 0.0
    # Weight of the adversarial stage (discriminator.py): this times the generator's hinge loss plus twice this
    # times feature matching; 0 trains on the reconstruction losses alone.
    adversarial: float = 0.0
    # Weight of the noise adversarial stage (noise_critic.py): the same losses, from a critic that sees only the
    # crops' power between the partials per noise band every 20 ms; 0 leaves it out.
    noise_adversarial: float = 0.0
    # Weight of the whole-note harmonic level loss (harmonic_levels.py): each harmonic's amplitude every 20 ms
    # against the real note's; 0 leaves it out.
    harmonic_weight: float = 0.0
    # Weight of the noise course loss (noise_course.py): each noise band's power between the harmonics every 20 ms,
    # the crop's against the real crop's; 0 leaves it out.
    noise_weight: float = 0.0
    # Weight of the texture loss (texture.py): how far and how fast each band's level moves over the crop,
    # whatever the timing, against the real crop's; 0 leaves it out.
    texture_weight: float = 0.0
    # Weight of the onset envelope loss (envelope.py): the band envelope over the note's first 0.4 s alone, on top
    # of the whole note's; 0 leaves it out.
    onset_weight: float = 0.0
    # Weight of the log-mel loss (hnsynth.mel_loss): the crops' spectra on the mel scale, where the low partials
    # weigh as a listener hears them; 0 leaves it out.
    mel_weight: float = 0.0
    # Weight of the vibrato loss (vibrato.py): the pitch curve against the real note's tracked one; 0 leaves it out.
    vibrato_weight: float = 0.0
    vibrato_any_phase: bool = False     # compare its depth and rate only (the curves' magnitude spectra)


def atomic_save(obj: object, path: Path) -> None:
    """Write `path` atomically, keeping the one before as PATH.prev (a run that went wrong can step back)."""
    with replacing(path) as tmp:
        torch.save(obj, tmp)
        if path.exists():
            os.replace(path, path.with_suffix(".prev.pt"))


def _distributed(cfg: VoiceTrainConfig) -> tuple[int, int, torch.device]:
    """(rank, world, device): one process per GPU under torchrun (NCCL), or CPU processes (gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and cfg.device in (None, "cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}" if cuda else (cfg.device or "cpu"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if cuda else "gloo")
        return dist.get_rank(), world, device
    return 0, 1, device


def crop_start(rng: np.random.Generator, frames: int) -> int:
    """Where this step's crop begins: the attack a third of the time, the note-off a sixth, else anywhere."""
    u = rng.random()
    if u < 1 / 3:
        return 0
    off = int(HOLD_SECONDS * SAMPLE_RATE / HOP)
    if u < 0.5:
        return int(np.clip(off - rng.integers(0, frames // 2), 0, FRAMES - frames))
    return int(rng.integers(0, FRAMES - frames + 1))


def mel_features(audio: np.ndarray, device: torch.device, chunk: int = 64) -> torch.Tensor:
    """Encoder inputs of int16 notes, as float16 on the device."""
    mel = MelFeatures().to(device)
    out = []
    with torch.no_grad():
        for i in range(0, len(audio), chunk):
            x = torch.from_numpy(dataset.NoteSet.to_float(audio[i:i + chunk])).to(device)
            out.append(mel(x).half())
    return torch.cat(out)


def train(cfg: VoiceTrainConfig, progress: bool = True) -> dict:
    """Train (or resume) until max_minutes / max_steps; returns the step reached, this process's last loss and,
    under torchrun, how far the replicas' generators differ (0: in sync)."""
    rank, world, device = _distributed(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ck_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed + rank)
    nets = _networks(cfg, device)
    run = _resume(cfg, ck_path, nets, device)
    if world == 1:  # under DDP a second forward of the generator before backward is not allowed
        _keep_what_it_played(cfg, nets, device)
    elif cfg.init_from and cfg.init_from.endswith(".onnx") and cfg.keep_weight > 0 and rank == 0:
        print(f"note: --keep is not applied under torchrun ({world} processes); this fine-tune may drift", flush=True)
    if world > 1:
        _wrap_ddp(nets)
    notes = _device_notes(cfg, device)
    rng = np.random.default_rng(cfg.seed * 1000 + rank * 7 + run.step)
    stop = _stop_on_signals()
    hardware = _hardware(device, world)
    started = last_ck = time.time()
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    while not stop["now"] and not _time_up(cfg, run.step, started):
        t0 = time.time()
        lr = _learning_rate(cfg, run.step)
        spec, env, avg, kl, grad, spike, extra = _step(cfg, nets, notes, rng, run, lr)
        run.advance(spec, env, avg, kl, grad, spike, time.time() - t0, extra)
        if log is not None and run.step % 50 == 0:
            _log(log, run, lr, progress, _time_left(cfg, run, started))
        if time.time() - last_ck > cfg.checkpoint_every_s:
            if rank == 0:
                _checkpoint(ck_path, cfg, nets, run, len(notes.set), hardware)
            last_ck = time.time()
    if rank == 0:
        _checkpoint(ck_path, cfg, nets, run, len(notes.set), hardware)
    if log:
        log.close()
    final = {"step": run.step, "trained_s": round(run.trained_s, 1), "spectral": run.last_loss}
    if world > 1:
        import torch.distributed as dist

        final["replica_max_diff"] = _replica_spread(nets)
        # The DDP wrappers hold the process group; dropped first, it is torn down here, while every process still
        # runs, and not at interpreter exit, where gloo's threads aborted rank 0 in 8 of 26 runs.
        nets.gen, nets.enc, nets.dsc, nets.crt = nets.voice.generator, nets.encoder, nets.disc, nets.critic
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    return final


@dataclass
class _Nets:
    """One process's networks: the voice and encoder, what a step calls (gen, enc: their DDP wrappers under
    torchrun, else themselves), the parameters learned and their optimiser, and the envelope loss's bands."""
    voice: Voice
    encoder: Encoder
    envelope: BandEnvelope
    harmonics: HarmonicLevels
    noise_course: NoiseCourse
    texture: Texture
    gen: torch.nn.Module
    enc: torch.nn.Module
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    parent: Voice | None = None          # a fine-tune's model file as it was, frozen (keep_weight)
    anchors: torch.Tensor | None = None  # generator latents whose controls the fine-tune keeps: prior draws, ...
    preset_anchors: int = 0              # ... then this many presets, which get half of each batch of the keep term
    disc: Discriminator | None = None    # the adversarial stage's discriminator, its optimiser, and what a step
    disc_opt: torch.optim.Optimizer | None = None  # calls (its DDP wrapper under torchrun)
    dsc: torch.nn.Module | None = None
    critic: NoiseCritic | None = None    # the noise adversarial stage's critic, its optimiser, and what a step
    critic_opt: torch.optim.Optimizer | None = None  # calls (its DDP wrapper under torchrun)
    crt: torch.nn.Module | None = None


@dataclass
class _Notes:
    """The training notes: int16 audio on the host (crops are cut per step), encoder inputs, pitches and
    velocities (0-1) on the device."""
    set: dataset.NoteSet
    mels: torch.Tensor
    pitch: torch.Tensor
    vel: torch.Tensor
    vibrato: tuple[torch.Tensor, torch.Tensor] | None = None  # tracked pitch curves (cents) and their weights


@dataclass
class _Progress:
    """Where a run stands: its step and seconds trained (both in the checkpoint), the spectral loss level the
    spike filter compares with, batches skipped, and the losses of the steps since the last log line."""
    step: int = 0
    trained_s: float = 0.0
    typical: float | None = None
    first: list[float] = field(default_factory=list)  # the first SETTLED_STEPS losses of this process
    skipped: int = 0
    last_loss: float | None = None
    window: list[dict] = field(default_factory=list)

    def is_spike(self, loss: float, spec: float, grad: float = 0.0) -> bool:
        """A loss or gradient norm that is not finite, or a spectral loss far above the recent level once that
        level rests on 20 steps: one lucky first batch must not make every batch after a resume look like a spike."""
        if not (math.isfinite(loss) and math.isfinite(grad)):
            return True
        settled = len(self.first) == SETTLED_STEPS
        return settled and self.typical is not None and spec > SPIKE_RATIO * self.typical

    def advance(self, spec: float, env: float, avg: float, kl: float, grad: float, spike: bool,
                seconds: float, extra: dict[str, float] | None = None) -> None:
        """Count one step that took `seconds` (a spike is counted as skipped and leaves the loss level)."""
        if not spike:
            if self.typical is None or len(self.first) < SETTLED_STEPS:  # the median of the first steps: one
                self.first.append(spec)                                      # wild batch does not set the level
                self.typical = float(np.median(self.first))
            else:
                self.typical = 0.99 * self.typical + 0.01 * spec
        self.skipped += spike
        self.step += 1
        self.trained_s += seconds
        self.last_loss = spec
        self.window.append({"spectral": spec, "envelope": env, "spectrum": avg, "kl": kl, "grad": grad,
                            "step_s": seconds} | (extra or {}))


def _networks(cfg: VoiceTrainConfig, device: torch.device) -> _Nets:
    """A new voice and encoder on the device, and an Adam optimiser over the generator's and encoder's weights."""
    voice = Voice(cfg.net).to(device)
    encoder = Encoder(cfg.net.z_dim).to(device)
    params = list(voice.generator.parameters()) + list(encoder.parameters())
    nets = _Nets(voice, encoder, BandEnvelope(voice.synth).to(device), HarmonicLevels(voice.synth).to(device),
                 NoiseCourse().to(device), Texture().to(device), voice.generator, encoder, params,
                 torch.optim.Adam(params, lr=cfg.lr))
    if cfg.adversarial > 0:
        nets.disc = nets.dsc = Discriminator().to(device)
        nets.disc_opt = torch.optim.Adam(nets.disc.parameters(), lr=DISC_LR, betas=(0.8, 0.99))
    if cfg.noise_adversarial > 0:
        nets.critic = nets.crt = NoiseCritic(int(nets.noise_course.bands.shape[1])).to(device)
        nets.critic_opt = torch.optim.Adam(nets.critic.parameters(), lr=CRITIC_LR, betas=(0.8, 0.99))
    return nets


def _resume(cfg: VoiceTrainConfig, ck_path: Path, nets: _Nets, device: torch.device) -> _Progress:
    """Load the run's own checkpoint if there is one (weights, optimiser, step), else start from --init-from if
    given; a checkpoint of another kind is refused rather than overwritten."""
    if ck_path.exists():
        ck = torch.load(ck_path, map_location=device, weights_only=True)
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{ck_path} is not a voice checkpoint (version {ck.get('version')}): use a new --out")
        nets.voice.generator.load_state_dict(ck["generator"])
        nets.encoder.load_state_dict(ck["encoder"])
        nets.opt.load_state_dict(ck["optimizer"])
        if nets.disc is not None and nets.disc_opt is not None and "discriminator" in ck:  # else it starts anew
            nets.disc.load_state_dict(ck["discriminator"])
            nets.disc_opt.load_state_dict(ck["disc_optimizer"])
        if nets.critic is not None and nets.critic_opt is not None and "noise_critic" in ck:
            nets.critic.load_state_dict(ck["noise_critic"])
            nets.critic_opt.load_state_dict(ck["critic_optimizer"])
        return _Progress(step=int(ck["step"]), trained_s=float(ck["trained_s"]))
    if cfg.init_from:
        _init_from(cfg.init_from, nets.voice, nets.encoder)
    return _Progress()


def _keep_what_it_played(cfg: VoiceTrainConfig, nets: _Nets, device: torch.device) -> None:
    """For a fine-tune of a model file: a frozen copy of it and the latents whose sound the run keeps (the shipped
    presets when they fit the model, and 256 draws of its prior)."""
    if not (cfg.init_from and cfg.init_from.endswith(".onnx") and cfg.keep_weight > 0):
        return
    from synth.core.timbre import scan_presets
    from synth.model.voice_export import voice_from_model_file

    parent = voice_from_model_file(cfg.init_from).to(device).eval()
    for p in parent.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(cfg.seed)
    played = [torch.randn(256, cfg.net.z_dim, generator=gen)]
    presets, _ = scan_presets(cfg.net.z_dim)
    played += [torch.from_numpy(np.stack([p.z for p in presets]))] if presets else []
    z = torch.cat(played).to(device)
    nets.parent, nets.anchors = parent, parent.prior_mean + z @ parent.prior_map
    nets.preset_anchors = len(presets)


def anchor_draw(anchors: int, presets: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """Indices of `count` anchors for one keep batch: half among the last `presets` (they are few: 12 of 268 would
    seldom be drawn), the rest among the prior draws before them."""
    drawn, half = anchors - presets, count // 2 if presets else 0
    return np.concatenate([rng.integers(drawn, anchors, half), rng.integers(0, drawn, count - half)])


def _keep_loss(nets: _Nets, rng: np.random.Generator, count: int = 4) -> torch.Tensor:
    """How far the generator's controls for `count` anchor latents (half of them presets; random pitches and
    velocity layers) moved from the parent's: L1 of log harmonic amplitudes and log noise bands, and of the
    vibrato and the unison (where both have one)."""
    assert nets.parent is not None and nets.anchors is not None
    device = nets.anchors.device
    latent = nets.anchors[torch.from_numpy(anchor_draw(len(nets.anchors), nets.preset_anchors, rng, count)).to(device)]
    pitch = torch.from_numpy(rng.integers(PITCH_MIN, PITCH_MAX + 1, count)).to(device)
    vel = torch.from_numpy(rng.choice(np.array([40, 80, 120], np.float32) / 127, count)).to(device)
    with torch.no_grad():
        a0, f0, n0, u0 = nets.parent.generator(latent, pitch, vel)
    a1, f1, n1, u1 = nets.gen(latent, pitch, vel)
    log = lambda x: torch.log(x + 1e-4)  # noqa: E731
    n0 = resample_bands(n0, n1.shape[-1])  # a run that grew more noise bands keeps the parent's noise spectrum
    kept = (log(a1) - log(a0)).abs().mean() + (log(n1) - log(n0)).abs().mean() + (f1 - f0).abs().mean()
    return kept + (u1 - u0).abs().mean() if u0 is not None and u1 is not None else kept


def _wrap_ddp(nets: _Nets) -> None:
    """Under torchrun: steps call DDP wrappers, which average the gradients across the processes."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    nets.gen, nets.enc = DDP(nets.voice.generator), DDP(nets.encoder)
    if nets.disc is not None:
        nets.dsc = DDP(nets.disc)
    if nets.critic is not None:
        nets.crt = DDP(nets.critic)


def _device_notes(cfg: VoiceTrainConfig, device: torch.device) -> _Notes:
    """The training split (up to limit_notes, chosen by the seed) with its encoder inputs computed once."""
    notes = dataset.load(Path(cfg.data_dir), "train", limit=cfg.limit_notes, seed=cfg.seed)
    vibrato = None
    if cfg.vibrato_weight > 0:
        cents, weight = track_all(notes.audio, notes.pitch)
        vibrato = (torch.from_numpy(cents).to(device), torch.from_numpy(weight).to(device))
    return _Notes(notes, mel_features(notes.audio, device), torch.from_numpy(notes.pitch).to(device),
                  torch.from_numpy(notes.velocity.astype(np.float32) / 127.0).to(device), vibrato)


def _stop_on_signals() -> dict[str, bool]:
    """A flag that SIGINT and SIGTERM set, so a stopped run ends after its step and still writes its checkpoint."""
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    return stop


def _time_up(cfg: VoiceTrainConfig, step: int, started: float) -> bool:
    """Whether max_steps is reached or max_minutes have passed since this process started."""
    if cfg.max_steps is not None and step >= cfg.max_steps:
        return True
    return cfg.max_minutes is not None and time.time() - started > cfg.max_minutes * 60


def _learning_rate(cfg: VoiceTrainConfig, step: int) -> float:
    """Cosine decay from lr to lr_final over decay_steps, then lr_final."""
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * min(1.0, step / cfg.decay_steps)))


def _step(cfg: VoiceTrainConfig, nets: _Nets, notes: _Notes, rng: np.random.Generator, run: _Progress,
          lr: float) -> tuple[float, float, float, float, float, bool, dict[str, float]]:
    """One optimisation step on a batch of notes: encode them, decode a sampled z (a `cross_pitch` share of them
    at the pitch of another note of their unit, a `cross_velocity` share at another velocity of their pitch, each
    against that note), the spectral and average spectrum losses on a crop plus the whole-note envelope loss plus
    the warming KL term. Returns (spectral loss, envelope loss, average spectrum loss, KL, gradient norm, spike, the
    adversarial stage's losses); a spike's gradient is not applied."""
    for g in nets.opt.param_groups:
        g["lr"] = lr
    rows = rng.integers(0, len(notes.set), cfg.batch)
    targets, crossed = rows.copy(), int(round(cfg.cross_pitch * cfg.batch))
    if crossed:
        targets[:crossed] = notes.set.same_unit(rows[:crossed], rng)
    restruck = min(int(round(cfg.cross_velocity * cfg.batch)), cfg.batch - crossed)
    if restruck:
        targets[crossed:crossed + restruck] = notes.set.same_pitch(rows[crossed:crossed + restruck], rng)
    idx = torch.from_numpy(rows).to(notes.pitch.device)
    tgt = torch.from_numpy(targets).to(notes.pitch.device)
    start = crop_start(rng, cfg.crop_frames)
    whole = torch.from_numpy(dataset.NoteSet.to_float(notes.set.audio[targets])).to(notes.pitch.device)
    real = whole[:, start * HOP:(start + cfg.crop_frames) * HOP]
    mean, logvar = nets.enc(notes.mels[idx].float(), notes.pitch[idx], notes.vel[idx])
    pitch, vel = notes.pitch[tgt], notes.vel[tgt]
    z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
    amplitudes, f0_dev, noise, unison = nets.gen(z, pitch, vel)
    fake = nets.voice.synth(amplitudes, f0_dev, noise, pitch, start, cfg.crop_frames, unison)
    spec = spectral_loss(fake, real)
    env, onset = nets.envelope.loss(amplitudes, noise, pitch, whole)
    avg = average_spectrum_loss(fake, real)
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
    beta = cfg.kl_weight * min(1.0, 0.1 + 0.9 * run.step / max(1, cfg.kl_warmup))
    loss = spec + cfg.envelope_weight * env + cfg.spectrum_weight * avg + beta * kl
    if nets.parent is not None:
        loss = loss + cfg.keep_weight * _keep_loss(nets, rng)
    extra: dict[str, float] = {}
    if cfg.onset_weight > 0:
        loss = loss + cfg.onset_weight * onset
        extra["onset"] = onset.item()
    if cfg.mel_weight > 0:
        mel = mel_loss(fake, real)
        loss = loss + cfg.mel_weight * mel
        extra["mel"] = mel.item()
    if notes.vibrato is not None:
        vib = vibrato_loss(f0_dev, notes.vibrato[0][tgt], notes.vibrato[1][tgt], HOP, cfg.vibrato_any_phase)
        loss = loss + cfg.vibrato_weight * vib
        extra["vibrato"] = vib.item()
    if cfg.harmonic_weight > 0:
        harm = nets.harmonics.loss(amplitudes, pitch, whole)
        loss = loss + cfg.harmonic_weight * harm
        extra["harmonic"] = harm.item()
    if cfg.noise_weight > 0:
        course = nets.noise_course.loss(fake, real, pitch)
        loss = loss + cfg.noise_weight * course
        extra["noise_course"] = course.item()
    if cfg.texture_weight > 0:
        texture = nets.texture.loss(fake, real)
        loss = loss + cfg.texture_weight * texture
        extra["texture"] = texture.item()
    if nets.dsc is not None:
        adv, fm = generator_losses(*_scores(nets.dsc, real, fake, pitch))
        loss = loss + cfg.adversarial * (adv + 2.0 * fm)
        extra |= {"adversarial": adv.item(), "feature_matching": fm.item()}
    courses = None
    if nets.crt is not None:  # real then generated crops, in one measure and one critic call (as DDP wants)
        courses = nets.noise_course.log_course(torch.cat([real, fake]), torch.cat([pitch, pitch]))
        adv, fm = generator_losses(*_critic_scores(nets.crt, courses, pitch, vel, start * HOP))
        loss = loss + cfg.noise_adversarial * (adv + 2.0 * fm)
        extra |= {"noise_adversarial": adv.item(), "noise_feature_matching": fm.item()}
    nets.opt.zero_grad(set_to_none=True)
    loss.backward()
    grad = torch.nn.utils.clip_grad_norm_(nets.params, 1.0)
    # A batch whose loss jumps far above the recent level is skipped, not learned from: such spikes grew into
    # a divergence at lr 1e-3.
    spike = run.is_spike(loss.item(), spec.item(), float(grad))
    if not spike:
        nets.opt.step()
    if nets.dsc is not None and nets.disc_opt is not None:  # every step: under torchrun each process must join in
        extra["discriminator"] = _discriminator_step(nets.dsc, nets.disc_opt, real, fake.detach(), pitch)
    if nets.crt is not None and nets.critic_opt is not None and courses is not None:
        critic_loss = discriminator_loss(*_critic_scores(nets.crt, courses.detach(), pitch, vel, start * HOP))
        nets.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nets.critic_opt.step()
        extra["noise_critic"] = critic_loss.item()
    return spec.item(), env.item(), avg.item(), kl.item(), float(grad), spike, extra


def _scores(dsc: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, pitch: torch.Tensor) -> tuple[list, list]:
    """The discriminator's (scores, activations) of real and generated crops, from one call on both (under DDP a
    module is called once per backward)."""
    return _split(dsc(torch.cat([real, fake]), torch.cat([pitch, pitch])), len(real))


def _critic_scores(crt: torch.nn.Module, courses: torch.Tensor, pitch: torch.Tensor, vel: torch.Tensor,
                   start_sample: int) -> tuple[list, list]:
    """The noise critic's (scores, activations) of the real crops' between-partials courses and the generated ones
    (`courses`: the real first, then as many generated), from one call."""
    return _split(crt(courses, torch.cat([pitch, pitch]), torch.cat([vel, vel]), start_sample), len(pitch))


def _split(both: list, n: int) -> tuple[list, list]:
    """A critic's outputs on real crops then generated ones (the first n, the rest) as two lists."""
    split = lambda x: (x[:n], x[n:])  # noqa: E731
    real_out, fake_out = [], []
    for score, feats in both:
        (rs, fs), pairs = split(score), [split(f) for f in feats]
        real_out.append((rs, [r for r, _ in pairs]))
        fake_out.append((fs, [f for _, f in pairs]))
    return real_out, fake_out


def _discriminator_step(dsc: torch.nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor,
                        pitch: torch.Tensor) -> float:
    """One hinge-loss step of the discriminator on this batch's real and (detached) generated crops."""
    loss = discriminator_loss(*_scores(dsc, real, fake, pitch))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def _time_left(cfg: VoiceTrainConfig, run: _Progress, started: float) -> float | None:
    """Seconds until --minutes or --steps stops the run (the nearer), at the recent step time; None if neither."""
    left = [cfg.max_minutes * 60 - (time.time() - started)] if cfg.max_minutes else []
    if cfg.max_steps is not None and run.window:
        left.append((cfg.max_steps - run.step) * float(np.mean([w["step_s"] for w in run.window])))
    return max(0.0, min(left)) if left else None


def _log(log: IO[str], run: _Progress, lr: float, progress: bool, left_s: float | None = None) -> None:
    """One line of log.jsonl: the step, lr, time and skips, and the mean losses since the last line; with
    `progress` a line for people too (step, losses, time left)."""
    record = {"step": run.step, "lr": lr, "trained_s": round(run.trained_s, 1), "skipped": run.skipped} | {
        k: round(float(np.mean([w[k] for w in run.window])), 5) for k in run.window[0]}
    run.window = []
    log.write(json.dumps(record) + "\n")
    log.flush()
    if progress:
        left = "" if left_s is None else f", {left_s / 60:.0f} min left" if left_s >= 60 else f", {left_s:.0f} s left"
        print(f"step {run.step:,}: spectral loss {record.get('spectral', float('nan')):.3f}, envelope "
              f"{record.get('envelope', float('nan')):.3f}, {record.get('step_s', 0.0):.2f} s a step{left}",
              flush=True)


def _checkpoint(path: Path, cfg: VoiceTrainConfig, nets: _Nets, run: _Progress, train_notes: int,
                hardware: str) -> None:
    """Save everything a resume, an export and the model card need (the keys load_voice and _resume read)."""
    disc = {} if nets.disc is None or nets.disc_opt is None else {
        "discriminator": nets.disc.state_dict(), "disc_optimizer": nets.disc_opt.state_dict()}
    if nets.critic is not None and nets.critic_opt is not None:
        disc |= {"noise_critic": nets.critic.state_dict(), "critic_optimizer": nets.critic_opt.state_dict()}
    atomic_save({"version": CHECKPOINT_VERSION, "generator": nets.voice.generator.state_dict(),
                 "encoder": nets.encoder.state_dict(), "optimizer": nets.opt.state_dict(), "step": run.step,
                 "trained_s": run.trained_s, "net": cfg.net.to_dict(), "config": asdict(cfg) | {"net": None},
                 "train_notes": train_notes, "hardware": hardware} | disc, path)


def _replica_spread(nets: _Nets) -> float:
    """The largest difference of any generator (or discriminator) weight between the DDP processes (0: they
    stayed in sync)."""
    import torch.distributed as dist

    params = [p for net in (nets.voice.generator, nets.disc, nets.critic) if net is not None for p in net.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    hi, lo = flat.clone(), flat.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return float((hi - lo).max())


def _init_from(path: str, voice: Voice, encoder: Encoder) -> None:
    """Start from another run's generator and encoder (a checkpoint), or an exported model's generator and the
    encoder saved beside it (a fine-tune; without one the encoder starts anew)."""
    if path.endswith(".onnx"):
        from synth.model.one_shot import OneShotError, load_encoder
        from synth.model.voice_export import voice_from_model_file

        parent = voice_from_model_file(path)
        state, enc = parent.generator.state_dict(), None
        try:
            enc = load_encoder(path, parent).state_dict()
        except OneShotError:
            pass
    else:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path} is not a voice checkpoint")
        state, enc = ck["generator"], ck["encoder"]
    state = grow_noise_head(state, voice.generator.cfg.noise_bands)
    try:
        missing = voice.generator.load_state_dict(state, strict=False)
        # Only the unison, the jitter, the body, the noise draw and the LFO may be missing (they start alike for
        # every note); else another network.
        if missing.unexpected_keys or any(not k.startswith(("unison.", "jitter.", "body.", "draw", "lfo."))
                                          for k in missing.missing_keys):
            raise RuntimeError
        if enc is not None:
            encoder.load_state_dict(enc)
    except RuntimeError:
        raise ValueError(f"{path} has another network shape than this run (--z-dim, --channels)") from None


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    return f"{world} x CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def load_voice(path: str | os.PathLike, device: str = "cpu") -> tuple[Voice, Encoder, dict]:
    """The voice, encoder and facts of a training checkpoint."""
    ck = torch.load(path, map_location=device, weights_only=True)
    if ck.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a voice checkpoint")
    cfg = VoiceConfig.from_dict(ck["net"])
    voice, encoder = Voice(cfg), Encoder(cfg.z_dim)
    voice.generator.load_state_dict(ck["generator"])
    encoder.load_state_dict(ck["encoder"])
    facts = {k: ck[k] for k in ("step", "trained_s", "net", "train_notes", "hardware")} | {"config": ck.get("config")}
    return voice.eval(), encoder.eval(), facts
