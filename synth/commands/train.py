"""`train`: train the voice (a VAE over the harmonic-plus-noise decoder), resuming from OUT/checkpoint.pt."""
from __future__ import annotations

import argparse
import json
import sys

from synth.commands.common import DEFAULT_DATA
from synth.commands.options import float_in, int_in


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the voice (a VAE over the harmonic-plus-noise decoder); resumes "
                                     "from OUT/checkpoint.pt")
    t.add_argument("--data", default=str(DEFAULT_DATA))
    t.add_argument("--out", required=True, help="run directory (checkpoint.pt, log.jsonl)")
    t.add_argument("--z-dim", type=int, default=64)
    t.add_argument("--channels", type=int, nargs=5,
                   help="widths of the five upsampling blocks (default 128 128 96 64 48)")
    t.add_argument("--unison", action="store_true",
                   help="give each note a second, detuned voice of its harmonics, mixed per note (a run may start "
                        "from a model without it)")
    t.add_argument("--jitter", action="store_true",
                   help="let each harmonic's level wobble slightly on a curve of its own, by a depth the model "
                        "learns, so partials are narrow bands as in recordings (a run may start from a model "
                        "without it)")
    t.add_argument("--body", action="store_true",
                   help="give each timbre a filter fixed in Hz over its harmonics, from the latent alone, so one "
                        "timbre keeps its body across the keyboard (a run may start from a model without it)")
    t.add_argument("--frame-noise", type=int_in(4, 512), metavar="BANDS",
                   help="draw the noise per control frame at 100 Hz resolution from this many bands (e.g. 128) instead "
                        "of 32 fixed band recordings (a run may start from a model without it)")
    t.add_argument("--noise-draw", type=int_in(1, 64), default=0, metavar="CURVES",
                   help="random curves the noise bands may follow, so a note's noise can swell and burst on a course "
                        "of its own (experimental; default: none)")
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--crop-frames", type=int, default=96, help="5 ms frames of audio synthesised per note per step")
    t.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (1e-3 diverged after 3,500 steps)")
    t.add_argument("--decay-steps", type=int, default=80_000,
                   help="steps over which the learning rate falls (cosine) to a tenth of --lr")
    t.add_argument("--kl-weight", type=float, default=1e-3)
    t.add_argument("--envelope-weight", type=float, default=0.5, help="weight of the whole-note envelope loss")
    t.add_argument("--spectrum-weight", type=float_in(0.0, 10.0), default=0.1, metavar="W",
                   help="weight of the crops' average spectrum loss (asks for the partials' smear: vibrato, chorus)")
    t.add_argument("--harmonic-weight", type=float_in(0.0, 10.0), default=0.0, metavar="W",
                   help="weight of the whole-note harmonic level loss: each harmonic's amplitude every 20 ms against "
                        "the real note's (default 0: off)")
    t.add_argument("--noise-weight", type=float_in(0.0, 10.0), default=0.0, metavar="W",
                   help="weight of the noise course loss: each noise band's power between the harmonics every 20 ms "
                        "against the real crop's (default 0: off)")
    t.add_argument("--texture-weight", type=float_in(0.0, 10.0), default=0.0, metavar="W",
                   help="weight of the texture loss: how far and how fast each band's level moves over the crop, "
                        "whatever the timing, against the real crop's (default 0: off)")
    t.add_argument("--onset-weight", type=float_in(0.0, 10.0), default=0.0, metavar="W",
                   help="weight of the onset envelope loss: the band envelope over the note's first 0.4 s alone, so "
                        "attacks are as sharp and as loud as the real notes' (default 0: off)")
    t.add_argument("--vibrato-weight", type=float_in(0.0, 10.0), default=0.0, metavar="W",
                   help="weight of the vibrato loss: the voice's pitch curve against the real note's tracked one, "
                        "so reeds, pipes and strings waver as theirs do (default 0: off)")
    t.add_argument("--vibrato-lfo", action="store_true",
                   help="give each note a vibrato LFO (depth, rate, onset set by the generator) on top of its free "
                        "pitch curve; a run may grow it from a model without one")
    t.add_argument("--vibrato-any-phase", action="store_true",
                   help="the vibrato loss compares the curves' depth and rate only, not when they swing")
    t.add_argument("--mel-weight", type=float_in(0.0, 10.0), default=0.0, metavar="W",
                   help="weight of the log-mel loss: the crops' spectra on the mel scale, where the low partials "
                        "weigh as a listener hears them (default 0: off)")
    t.add_argument("--limit-notes", type=int, default=12000, help="train on a random subset of this many notes")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--minutes", type=float, help="stop and checkpoint after this long")
    t.add_argument("--steps", type=int, help="stop and checkpoint at this step")
    t.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if present)")
    t.add_argument("--threads", type=int, help="CPU threads for torch")
    t.add_argument("--init-from", metavar="MODEL", help="start a new run from a checkpoint, or fine-tune an exported "
                                                        ".onnx (its generator and the encoder beside it)")
    t.add_argument("--keep", type=float, default=2.0, metavar="WEIGHT",
                   help="a fine-tune of a .onnx keeps what the model played (its presets, its random timbres) with "
                        "this weight (default 2); 0 lets it drift")
    t.add_argument("--cross-pitch", type=float_in(0.0, 1.0), default=0.0, metavar="SHARE",
                   help="share of each batch (0-1) rebuilt at the pitch of another note of the same instrument and "
                        "velocity: latents then stand for instruments across the keyboard (default 0)")
    t.add_argument("--cross-velocity", type=float_in(0.0, 1.0), default=0.0, metavar="SHARE",
                   help="share of each batch (0-1) rebuilt at another velocity of the same instrument and pitch: "
                        "a latent then keeps its timbre across the velocity layers (default 0)")
    t.add_argument("--adversarial", type=float_in(0.0, 10.0), default=0.0, metavar="WEIGHT",
                   help="weight of the adversarial stage: a spectrogram discriminator learns what sets real notes "
                        "apart from the voice's, and the voice learns from it (default 0: off)")
    t.add_argument("--noise-adversarial", type=float_in(0.0, 10.0), default=0.0, metavar="WEIGHT",
                   help="weight of the noise adversarial stage: a critic of the power between the partials over "
                        "time, and the voice learns from it (default 0: off)")
    t.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from synth.model.hnsynth import NOISE_BANDS
    from synth.model.voice import VoiceConfig
    from synth.model.voice_train import VoiceTrainConfig, train

    if a.cross_pitch + a.cross_velocity > 1.0:
        raise ValueError(f"--cross-pitch {a.cross_pitch:g} and --cross-velocity {a.cross_velocity:g} share one batch: "
                         "together they can be at most 1")
    net = VoiceConfig(z_dim=a.z_dim, channels=a.channels or VoiceConfig().channels, unison=a.unison,
                      jitter=a.jitter, body=a.body, frame_noise=a.frame_noise is not None,
                      noise_bands=a.frame_noise or NOISE_BANDS, noise_draw=a.noise_draw, lfo=a.vibrato_lfo)
    cfg = VoiceTrainConfig(data_dir=a.data, out_dir=a.out, net=net, batch=a.batch, crop_frames=a.crop_frames,
                           lr=a.lr, lr_final=a.lr / 10, decay_steps=a.decay_steps, kl_weight=a.kl_weight,
                           envelope_weight=a.envelope_weight, spectrum_weight=a.spectrum_weight,
                           harmonic_weight=a.harmonic_weight, noise_weight=a.noise_weight,
                           texture_weight=a.texture_weight, onset_weight=a.onset_weight, mel_weight=a.mel_weight,
                           vibrato_weight=a.vibrato_weight, vibrato_any_phase=a.vibrato_any_phase,
                           limit_notes=a.limit_notes, seed=a.seed, max_minutes=a.minutes, max_steps=a.steps,
                           device=a.device, threads=a.threads, init_from=a.init_from,
                           keep_weight=a.keep, cross_pitch=a.cross_pitch, cross_velocity=a.cross_velocity,
                           adversarial=a.adversarial, noise_adversarial=a.noise_adversarial)
    sys.stdout.write(json.dumps(train(cfg)) + "\n")  # one write: under torchrun every process prints to one pipe
    sys.stdout.flush()
