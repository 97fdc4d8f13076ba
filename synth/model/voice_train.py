"""Train the harmonic-plus-noise voice as a VAE: encoder → z, G(z, pitch, velocity) → audio, multi-resolution
spectral loss on crops of real notes plus a KL term towards N(0, I). Runs on CPU or CUDA, with torchrun (DDP), and
resumes from OUT/checkpoint.pt; losses go to OUT/log.jsonl.
"""
from __future__ import annotations

import json
import math
import os
import platform
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from synth.model import dataset
from synth.model.hnsynth import FRAMES, HOLD_SECONDS, HOP, SAMPLE_RATE, spectral_loss
from synth.model.voice import Encoder, MelFeatures, Voice, VoiceConfig

CHECKPOINT_VERSION = 2  # 1 was the IF-Mel GAN


@dataclass
class VoiceTrainConfig:
    data_dir: str
    out_dir: str
    net: VoiceConfig = field(default_factory=VoiceConfig)
    batch: int = 8
    crop_frames: int = 96                # 0.48 s of audio per note per step
    lr: float = 3e-4                     # 1e-3 diverged after 3,500 steps (KL and loss jumped 8-20x)
    lr_final: float = 3e-5               # cosine decay to this over decay_steps
    decay_steps: int = 200_000
    kl_weight: float = 1e-3
    kl_warmup: int = 2000                # steps over which the KL weight rises from a tenth of its value
    limit_notes: int | None = 12000
    seed: int = 0
    checkpoint_every_s: float = 300.0
    max_minutes: float | None = None
    max_steps: int | None = None
    device: str | None = None
    threads: int | None = None
    init_from: str | None = None         # a checkpoint or exported .onnx whose generator a new run starts from


def atomic_save(obj: object, path: Path) -> None:
    """Write `path` atomically, keeping the one before as PATH.prev (a run that went wrong can step back)."""
    tmp = path.with_name(f".{path.name}.part")
    torch.save(obj, tmp)
    if path.exists():
        os.replace(path, path.with_suffix(".prev.pt"))
    os.replace(tmp, path)


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
    voice = Voice(cfg.net).to(device)
    encoder = Encoder(cfg.net.z_dim).to(device)
    params = list(voice.generator.parameters()) + list(encoder.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    step, trained_s = 0, 0.0
    if ck_path.exists():
        ck = torch.load(ck_path, map_location=device, weights_only=True)
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{ck_path} is not a voice checkpoint (version {ck.get('version')}): use a new --out")
        voice.generator.load_state_dict(ck["generator"])
        encoder.load_state_dict(ck["encoder"])
        opt.load_state_dict(ck["optimizer"])
        step, trained_s = int(ck["step"]), float(ck["trained_s"])
    elif cfg.init_from:
        _init_from(cfg.init_from, voice, encoder)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        gen = DDP(voice.generator)
        enc = DDP(encoder)
    else:
        gen, enc = voice.generator, encoder

    notes = dataset.load(Path(cfg.data_dir), "train", limit=cfg.limit_notes, seed=cfg.seed)
    mels = mel_features(notes.audio, device)
    pitch_all = torch.from_numpy(notes.pitch).to(device)
    vel_all = torch.from_numpy(notes.velocity.astype(np.float32) / 127.0).to(device)
    rng = np.random.default_rng(cfg.seed * 1000 + rank * 7 + step)

    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    def checkpoint() -> None:
        if rank != 0:
            return
        atomic_save({"version": CHECKPOINT_VERSION, "generator": voice.generator.state_dict(),
                     "encoder": encoder.state_dict(), "optimizer": opt.state_dict(), "step": step,
                     "trained_s": trained_s, "net": cfg.net.to_dict(), "config": asdict(cfg) | {"net": None},
                     "train_notes": len(notes), "hardware": _hardware(device, world)}, ck_path)

    started = time.time()
    last_ck = time.time()
    window: list[dict] = []
    record: dict = {}
    last_loss = None
    typical: float | None = None
    skipped = 0
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    while not stop["now"]:
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
        if cfg.max_minutes is not None and time.time() - started > cfg.max_minutes * 60:
            break
        t0 = time.time()
        lr = cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * min(1.0, step / cfg.decay_steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.from_numpy(rng.integers(0, len(notes), cfg.batch)).to(device)
        start = crop_start(rng, cfg.crop_frames)
        real = torch.from_numpy(dataset.NoteSet.to_float(
            notes.audio[idx.cpu().numpy(), start * HOP:(start + cfg.crop_frames) * HOP])).to(device)
        pitch, vel = pitch_all[idx], vel_all[idx]
        mean, logvar = enc(mels[idx].float(), pitch, vel)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        amplitudes, f0_dev, noise = gen(z, pitch, vel)
        fake = voice.synth(amplitudes, f0_dev, noise, pitch, start, cfg.crop_frames)
        spec = spectral_loss(fake, real)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        beta = cfg.kl_weight * min(1.0, 0.1 + 0.9 * step / max(1, cfg.kl_warmup))
        loss = spec + beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad = torch.nn.utils.clip_grad_norm_(params, 1.0)
        # A batch whose loss jumps far above the recent level is skipped, not learned from: such spikes grew into
        # a divergence at lr 1e-3.
        spike = not math.isfinite(loss.item()) or (typical is not None and spec.item() > 4 * typical)
        if not spike:
            opt.step()
            typical = spec.item() if typical is None else 0.99 * typical + 0.01 * spec.item()
        skipped += spike
        step += 1
        dt = time.time() - t0
        trained_s += dt
        last_loss = spec.item()
        window.append({"spectral": last_loss, "kl": kl.item(), "grad": float(grad), "step_s": dt})
        if step % 50 == 0 and rank == 0:
            record = {"step": step, "lr": lr, "trained_s": round(trained_s, 1), "skipped": skipped} | {
                k: round(float(np.mean([w[k] for w in window])), 5) for k in window[0]}
            window = []
            log.write(json.dumps(record) + "\n")
            log.flush()
            if progress:
                print(json.dumps(record), flush=True)
        if time.time() - last_ck > cfg.checkpoint_every_s:
            checkpoint()
            last_ck = time.time()
    checkpoint()
    if log:
        log.close()
    final = {"step": step, "trained_s": round(trained_s, 1), "spectral": last_loss}
    if world > 1:
        import torch.distributed as dist

        flat = torch.cat([p.detach().reshape(-1) for p in voice.generator.parameters()])
        hi, lo = flat.clone(), flat.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        final["replica_max_diff"] = float((hi - lo).max())
        dist.destroy_process_group()
    return final


def _init_from(path: str, voice: Voice, encoder: Encoder) -> None:
    """Start from another run's generator (and encoder, from a checkpoint) or an exported model's generator."""
    if path.endswith(".onnx"):
        from synth.model.voice_export import voice_from_model_file

        state, enc = voice_from_model_file(path).generator.state_dict(), None
    else:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path} is not a voice checkpoint")
        state, enc = ck["generator"], ck["encoder"]
    try:
        voice.generator.load_state_dict(state)
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
