"""Progressive WGAN-GP training of the GANSynth generator, on CPU or CUDA, resumable from a checkpoint.

The schedule follows GANSynth: level 0 trains for one phase, then each new level fades in for a phase and trains
stable for a phase (13 phases for 7 levels). Losses go to log.jsonl; spectrogram pictures and audio to samples/.
"""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synth.model import dataset
from synth.model.export import checkpoint_from_model_file, decode, objective_stretches
from synth.model.networks import BINS, Encoder1D, N_PITCHES, NetConfig, PITCH_MIN, make_discriminator, make_generator
from synth.model.preset_terms import even_morph_loss, keep_loss, morph_points
from synth.model.spectral import FEATURES_VERSION, IFMel, SAMPLE_RATE, check_features


@dataclass
class TrainConfig:
    data_dir: str
    out_dir: str
    net: NetConfig = field(default_factory=NetConfig)
    mel: bool = True
    batch: int = 8
    lr: float = 8e-4
    phase_images: int = 800_000          # GANSynth: 800k images per phase
    final_images: int = 0                # extra images at full resolution after the 13 phases
    gp_weight: float = 10.0
    drift: float = 0.001
    aux_weight: float = 10.0
    ema: float = 0.999
    limit_notes: int | None = None       # train on a random subset of this many notes
    seed: int = 0
    sample_every: int = 500              # steps
    checkpoint_every_s: float = 300.0
    max_minutes: float | None = None     # stop (and checkpoint) after this much wall time in this run
    max_steps: int | None = None
    device: str | None = None
    init_from: str | None = None         # start a new run from another checkpoint's (or model file's) weights
    d_warmup: int = 0                    # steps at the start that train only the critic (a fresh one on a trained G)
    reconstruct: float = 0.0             # 1d: weight of an encoder's L1 reconstruction of real log-magnitudes
    keep_presets: str | None = None      # preset directory whose sounds the run keeps (needs --init-from)
    keep_weight: float = 20.0            # weight of the L1 between G and the starting G at those presets
    even_morphs: float = 0.0             # weight of the even-speed term along slerp between preset pairs
    morph_pairs: int = 4                 # preset pairs per step for that term
    morph_segments: int = 5              # segments per pair's path

    @property
    def total_images(self) -> int:
        return (2 * self.net.levels - 1) * self.phase_images + self.final_images


def schedule(images: int, phase_images: int, levels: int) -> tuple[int, float]:
    """(level, alpha) after `images` training images: phase 0 is level 0; odd phases fade a level in."""
    phase = images // phase_images
    level = min((phase + 1) // 2, levels - 1)
    if phase % 2 == 1 and phase < 2 * levels - 1:
        return level, (images % phase_images) / phase_images
    return level, 1.0


def to_level(feats: torch.Tensor, level: int, alpha: float, levels: int) -> torch.Tensor:
    """Downsample full-resolution features to a level, blending with the coarser one while it fades in."""
    x = F.avg_pool2d(feats, 2 ** (levels - 1 - level)) if level < levels - 1 else feats
    if level > 0 and alpha < 1.0:
        x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
    return x


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def magnitude_range(codec: IFMel, audio: np.ndarray, device: torch.device) -> tuple[float, float]:
    """Log-magnitude range of the data (floor at the log epsilon) used to scale features into [-1, 1]."""
    hi = -math.inf
    for i in range(0, len(audio), 32):
        x = torch.from_numpy(dataset.NoteSet.to_float(audio[i:i + 32])).to(device)
        hi = max(hi, float(codec(x)[:, 0].max()))
    return float(codec.mag_range[0]), hi


def data_pitch_spectrum(codec: IFMel, notes: dataset.NoteSet, device: torch.device, per_pitch: int = 64,
                        pitches: int = 61) -> torch.Tensor:
    """[pitches, 2 * bins] pre-tanh steady-state spectrum of the data per pitch, over instruments: the mean log
    magnitude, and the IF as the magnitude-weighted circular mean (a plain mean of IF values near the +-1 wrap
    lands between them, which left 6 of 61 pitches out of tune). Zero for a pitch the data lacks."""
    rng = np.random.default_rng(0)
    out = torch.zeros(pitches, 2 * BINS, device=device)
    lo, hi = codec.mag_range
    with torch.no_grad():
        for k in range(pitches):
            idx = np.flatnonzero(notes.pitch == PITCH_MIN + k)
            if len(idx) == 0:
                continue
            idx = rng.choice(idx, min(per_pitch, len(idx)), replace=False)
            feats = codec.encode(torch.from_numpy(notes.to_float(notes.audio[idx])).to(device))
            feats = feats[:, :, 4:80]  # the held part of the note
            weight = torch.exp((feats[:, 0] + 1) * 0.5 * (hi - lo) + lo)  # linear magnitude
            angle = feats[:, 1] * math.pi
            phase_if = torch.atan2((weight * torch.sin(angle)).sum((0, 1)), (weight * torch.cos(angle)).sum((0, 1)))
            steady = torch.cat([feats[:, 0].mean(dim=(0, 1)), phase_if / math.pi])
            out[k] = torch.atanh(steady.clamp(-0.95, 0.95))
    return out


def init_pitch_spectrum(g: torch.nn.Module, codec: IFMel, notes: dataset.NoteSet, device: torch.device) -> None:
    """Start the 1-D generator's per-pitch output spectrum at the data's, so harmonics at the right frequencies
    are there from step 0 and the network learns the deviations: envelope and timbre."""
    with torch.no_grad():
        g.pitch_spectrum.copy_(data_pitch_spectrum(codec, notes, device))
        g.out.weight.zero_()  # output = that spectrum until the network learns what to add (gradients still flow)


def save_samples(out_dir: Path, step: int, g: torch.nn.Module, codec: IFMel, z: torch.Tensor, pitch: torch.Tensor,
                 level: int, alpha: float) -> None:
    """Write a spectrogram picture (log-mag over IF, one column per note) and the notes as a WAV."""
    from PIL import Image

    from synth.audio_io import write_wav

    with torch.no_grad():
        feats = g(z, pitch, level, alpha)
        scale = 2 ** (g.cfg.levels - 1 - level)
        if scale > 1:
            feats = F.interpolate(feats, scale_factor=scale, mode="nearest")
        audio = decode(g, codec, feats, pitch).cpu().numpy()
    pic = torch.cat([torch.cat([feats[i, 0].T.flip(0), feats[i, 1].T.flip(0)], dim=0) for i in range(len(z))], dim=1)
    img = ((pic.cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    samples = out_dir / "samples"
    samples.mkdir(exist_ok=True)
    Image.fromarray(img).save(samples / f"step{step:07d}.png")
    peak = max(float(np.abs(audio).max()), 1e-9)
    write_wav(samples / f"step{step:07d}.wav", (audio / peak * 0.9).reshape(-1), SAMPLE_RATE)


def _preset_latents(cfg: TrainConfig, device: torch.device) -> torch.Tensor | None:
    """[presets, z] latents of --keep-presets (None without it); a preset of another z size is one clear line."""
    if not cfg.keep_presets:
        if cfg.even_morphs:
            raise ValueError("--even-morphs evens the morphs between presets: give it --keep-presets")
        return None
    from synth.engine.latent import load_presets

    presets = load_presets(cfg.net.z_dim, cfg.keep_presets)
    if len(presets) < (2 if cfg.even_morphs else 1):
        raise ValueError(f"--keep-presets {cfg.keep_presets} holds {len(presets)} presets; "
                         f"it needs {'two' if cfg.even_morphs else 'one'} or more")
    return torch.from_numpy(np.stack([p.z for p in presets])).to(device)


def _distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) joins the process group: NCCL with one GPU per
    process (LOCAL_RANK), gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and (cfg.device or "cuda").startswith("cuda")
    if world == 1:
        return 0, 1, torch.device(cfg.device or ("cuda" if cuda else "cpu"))
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), world, device


def _agree(flag: bool, world: int, device: torch.device) -> bool:
    """True if any process says so: every process of a torchrun job must stop at the same step."""
    if world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Train (or resume) and return the last log record. Checkpoint: out_dir/checkpoint.pt.

    Under `torchrun --nproc-per-node N` each process trains on its own batches of `cfg.batch` notes and
    DistributedDataParallel averages the gradients, so a step sees N x batch notes; only rank 0 writes."""
    rank, world, device = _distributed(cfg)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, rank])
    notes = dataset.load(Path(cfg.data_dir), "train", limit=cfg.limit_notes, seed=cfg.seed)
    codec = IFMel(mel=cfg.mel).to(device)
    G, D = make_generator(cfg.net).to(device), make_discriminator(cfg.net).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    if cfg.reconstruct and cfg.net.arch != "1d":
        raise ValueError("the reconstruction encoder needs the 1d network")
    E = Encoder1D(cfg.net).to(device) if cfg.reconstruct else None
    opt_e = torch.optim.Adam(E.parameters(), lr=cfg.lr, betas=(0.0, 0.99)) if E is not None else None
    with_e = ((E, "E"), (opt_e, "opt_e")) if E is not None else ()
    anchors = _preset_latents(cfg, device)
    teacher = copy.deepcopy(G_ema) if anchors is not None else None  # replaced below by the run's starting G
    ckpt_path = out / "checkpoint.pt"
    images, step, trained_s = 0, 0, 0.0
    pretrained: dict | None = None       # what the run started from (--init-from), for the model card
    earlier: list[dict] = []             # the objectives of the steps before this resume
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        if NetConfig.from_dict(ck["net"]) != cfg.net or ck["mel"] != cfg.mel:
            raise ValueError(f"{ckpt_path} was trained with another network shape; use a new --out directory")
        check_features(ck.get("features", 1), ckpt_path)
        if E is not None and ck.get("E") is None:
            raise ValueError(f"{ckpt_path} was trained without --reconstruct; use a new --out directory")
        if teacher is not None and ck.get("teacher") is None:
            raise ValueError(f"{ckpt_path} was trained without --keep-presets; use a new --out directory")
        for m, k in ((G, "G"), (D, "D"), (G_ema, "G_ema"), (opt_g, "opt_g"), (opt_d, "opt_d")) + with_e:
            m.load_state_dict(ck[k])
        if teacher is not None:
            teacher.load_state_dict(ck["teacher"])
        codec.set_range(*ck["mag_range"])
        images, step, trained_s = ck["images"], ck["step"], ck["trained_s"]
        pretrained = ck.get("pretrained")
        earlier = objective_stretches(ck.get("objectives"), step)
        rng = np.random.default_rng([cfg.seed, step, rank])
    elif cfg.init_from:
        if str(cfg.init_from).endswith(".onnx"):  # the shipped model: its generator, a new critic and encoder
            ck = checkpoint_from_model_file(cfg.init_from)
        else:
            ck = torch.load(cfg.init_from, map_location=device, weights_only=True)
        if replace(NetConfig.from_dict(ck["net"]), fixed_if=cfg.net.fixed_if) != cfg.net or ck["mel"] != cfg.mel:
            raise ValueError(f"{cfg.init_from} has another network shape than this run's")
        for m, k in ((G, "G"), (D, "D"), (G_ema, "G_ema")) + with_e[:1]:
            if ck.get(k) is not None:  # a run without an encoder gives the new one a fresh start
                m.load_state_dict(ck[k])
        codec.set_range(*ck["mag_range"])
        if cfg.net.fixed_if:  # a learned IF may have drifted: lock it to the data's
            data_if = data_pitch_spectrum(codec, notes, device)[:, BINS:]
            with torch.no_grad():
                for g in (G, G_ema):
                    g.pitch_spectrum[:, BINS:] = data_if
        pretrained = {"from": str(cfg.init_from), "features": ck.get("features", 1)} | {
            k: ck[k] for k in ("step", "images", "trained_s", "hardware", "objectives", "pretrained") if ck.get(k)}
        if teacher is not None:
            teacher.load_state_dict(G_ema.state_dict())
    else:
        if teacher is not None:
            raise ValueError("--keep-presets keeps the sounds of the generator the run starts from: "
                             "give it --init-from")
        codec.set_range(*magnitude_range(codec, notes.audio[:512], device))
        if cfg.net.arch == "1d":
            init_pitch_spectrum(G, codec, notes, device)
            G_ema.load_state_dict(G.state_dict())
    if step == 0 and rank == 0:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
    torch.manual_seed(cfg.seed + step + 1000 * rank)  # each process draws its own z

    hardware = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"CPU, {torch.get_num_threads()} threads ({platform.machine()})")
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        hardware = f"{world} x {hardware} (torchrun, DistributedDataParallel)"
        ids = [device.index] if device.type == "cuda" else None
        grows = cfg.net.levels > 1  # the progressive net leaves the levels it has not reached yet without gradients
        G_train, D_train = (DistributedDataParallel(m, device_ids=ids, find_unused_parameters=grows) for m in (G, D))
        E_train = DistributedDataParallel(E, device_ids=ids) if E is not None else None
    else:
        G_train, D_train, E_train = G, D, E

    objectives = ({"reconstruct": cfg.reconstruct} if cfg.reconstruct else {}) | (
        {"keep_presets": len(anchors), "keep_weight": cfg.keep_weight} if anchors is not None else {}) | (
        {"even_morphs": cfg.even_morphs} if cfg.even_morphs else {})
    resumed_at = step

    def stretches() -> list[dict]:
        if step == resumed_at:
            return earlier
        if earlier and {k: v for k, v in earlier[-1].items() if k != "steps"} == objectives:
            return earlier[:-1] + [{"steps": [earlier[-1]["steps"][0], step]} | objectives]
        return earlier + [{"steps": [resumed_at, step]} | objectives]

    def checkpoint() -> None:
        if rank != 0:
            return
        _atomic_save({"net": cfg.net.to_dict(), "mel": cfg.mel, "features": FEATURES_VERSION,
                      "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                      "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                      "E": E.state_dict() if E is not None else None,
                      "opt_e": opt_e.state_dict() if E is not None else None,
                      "mag_range": codec.mag_range.tolist(), "images": images, "step": step,
                      "trained_s": trained_s, "data_dir": cfg.data_dir, "train_notes": len(notes),
                      "device": str(device), "batch": cfg.batch, "hardware": hardware,
                      "teacher": teacher.state_dict() if teacher is not None else None, "objectives": stretches(),
                      "pretrained": pretrained}, ckpt_path)

    sample_z = torch.randn(4, cfg.net.z_dim, generator=torch.Generator().manual_seed(1234)).to(device)
    sample_pitch = torch.tensor([36, 48, 60, 72], device=device)
    levels = cfg.net.levels
    start, last_ckpt = time.monotonic(), time.monotonic()
    record: dict = {}
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    try:
        while images < cfg.total_images:
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            if cfg.max_minutes is not None and _agree(time.monotonic() - start > cfg.max_minutes * 60, world, device):
                break
            t0 = time.monotonic()
            level, alpha = schedule(images, cfg.phase_images, levels)
            idx = rng.integers(0, len(notes), cfg.batch)
            pitch = torch.from_numpy(notes.pitch[idx]).to(device)
            with torch.no_grad():
                real = codec.encode(torch.from_numpy(notes.to_float(notes.audio[idx])).to(device))
                real = to_level(real, level, alpha, levels)
                if cfg.net.fixed_if:  # the critic compares magnitudes: real notes get the IF the generator has
                    real[:, 1] = G.pitch_if(pitch).unsqueeze(1)
            z = torch.randn(cfg.batch, cfg.net.z_dim, device=device)
            fake = G_train(z, pitch, level, alpha)

            d_real, p_real = D_train(real, level, alpha)
            d_fake, _ = D_train(fake.detach(), level, alpha)
            eps = torch.rand(cfg.batch, 1, 1, 1, device=device)
            mix = torch.lerp(fake.detach(), real, eps).requires_grad_(True)
            grad, = torch.autograd.grad(D_train(mix, level, alpha)[0].sum(), mix, create_graph=True)
            gp = (grad.flatten(1).norm(dim=1) - 1).square().mean()
            aux_d = F.cross_entropy(p_real, pitch - PITCH_MIN)
            loss_d = d_fake.mean() - d_real.mean() + cfg.gp_weight * gp + cfg.drift * d_real.square().mean() \
                + cfg.aux_weight * aux_d
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            g_fake, p_fake = D_train(fake, level, alpha)
            aux_g = F.cross_entropy(p_fake, pitch - PITCH_MIN)
            loss_g = -g_fake.mean() + cfg.aux_weight * aux_g
            if E is not None:  # the generator must also be able to make each real note, from its latent
                rec = G_train(E_train(real[:, 0]), pitch, level, alpha)[:, 0]
                loss_rec = (rec - real[:, 0]).abs().mean()
                loss_g = loss_g + cfg.reconstruct * loss_rec
                opt_e.zero_grad(set_to_none=True)
            terms = {}
            if anchors is not None and step >= cfg.d_warmup:  # presets keep their sound; morphs change evenly
                generate = lambda z, p: G_train(z, p, level, alpha)  # noqa: E731
                n = min(cfg.batch, 8)
                k = torch.from_numpy(rng.integers(0, len(anchors), n)).to(device)
                keep_pitch = torch.from_numpy(rng.integers(PITCH_MIN, PITCH_MIN + N_PITCHES, n)).to(device)
                loss_keep = keep_loss(generate, lambda z, p: teacher(z, p, level, alpha), anchors[k], keep_pitch)
                loss_g = loss_g + cfg.keep_weight * loss_keep
                terms["keep"] = loss_keep.item()
                if cfg.even_morphs:
                    pairs = np.array([rng.choice(len(anchors), 2, replace=False) for _ in range(cfg.morph_pairs)])
                    morph_pitch = torch.from_numpy(rng.integers(PITCH_MIN, PITCH_MIN + N_PITCHES,
                                                                cfg.morph_pairs)).to(device)
                    loss_even = even_morph_loss(generate, anchors[pairs[:, 0]], anchors[pairs[:, 1]], morph_pitch,
                                                morph_points(cfg.morph_pairs, cfg.morph_segments).to(device))
                    loss_g = loss_g + cfg.even_morphs * loss_even
                    terms["even"] = loss_even.item()
            if step >= cfg.d_warmup:
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                if E is not None:
                    opt_e.step()
                with torch.no_grad():
                    for pe, p in zip(G_ema.parameters(), G.parameters()):
                        pe.lerp_(p, 1 - cfg.ema)

            images += cfg.batch * world
            step += 1
            trained_s += time.monotonic() - t0
            record = {"step": step, "images": images, "level": level, "alpha": round(alpha, 4),
                      "loss_d": loss_d.item(), "loss_g": loss_g.item(), "wdist": (d_real.mean() - d_fake.mean()).item(),
                      "gp": gp.item(), "aux_d": aux_d.item(), "aux_g": aux_g.item(),
                      "pitch_acc_real": float((p_real.argmax(1) == pitch - PITCH_MIN).float().mean()),
                      "sec_per_step": round(time.monotonic() - t0, 4)}
            if E is not None:
                record["rec"] = loss_rec.item()
            record |= terms
            if not all(math.isfinite(v) for v in record.values()):
                raise FloatingPointError(f"training diverged at step {step}: {record}")
            if rank == 0 and (step % 10 == 0 or step == 1):
                log.write(json.dumps(record) + "\n")
                log.flush()
                if progress:
                    print(f"step {step} img {images} L{level} a{alpha:.2f} D {record['loss_d']:.3f} "
                          f"G {record['loss_g']:.3f} W {record['wdist']:.3f} {record['sec_per_step']:.2f}s/step",
                          flush=True)
            if rank == 0 and step % cfg.sample_every == 0:
                save_samples(out, step, G_ema, codec, sample_z, sample_pitch, level, alpha)
            if time.monotonic() - last_ckpt > cfg.checkpoint_every_s:
                checkpoint()
                last_ckpt = time.monotonic()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what was trained
        checkpoint()
        raise
    finally:
        if log is not None:
            log.close()
    if world > 1:  # the replicas must hold the same generator: say by how much they differ (0 when in sync)
        import torch.distributed as dist

        total = torch.stack([p.detach().double().sum() for p in G.parameters()]).sum().reshape(1).to(device)
        sums = [torch.zeros_like(total) for _ in range(world)]
        dist.all_gather(sums, total)
        record["replica_max_diff"] = float(max(abs(float(x) - float(total)) for x in sums))
    checkpoint()
    if rank == 0 and world > 1:
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    if world > 1:
        dist.destroy_process_group()
    return record | {"images": images, "step": step, "done": images >= cfg.total_images}
