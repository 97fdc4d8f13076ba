"""A few real training steps on the tiny note set: finite outputs, a learning discriminator, resumable runs."""
import json

import numpy as np
import pytest
import torch

from synth.model.networks import Discriminator, Generator, NetConfig, resolution
from synth.model.train import TrainConfig, schedule, train

from .conftest import TINY_NET


def test_schedule_follows_gansynth_phases():
    assert schedule(0, 100, 7) == (0, 1.0)
    assert schedule(150, 100, 7) == (1, 0.5)
    assert schedule(250, 100, 7) == (1, 1.0)
    assert schedule(1250, 100, 7) == (6, 1.0)
    assert schedule(10_000, 100, 7) == (6, 1.0)
    # --final-images: the run goes on past the 13 phases, at full resolution.
    cfg = TrainConfig(data_dir="x", out_dir="y", net=TINY_NET, phase_images=100, final_images=500)
    assert cfg.total_images == 1800 and schedule(1700, 100, 7) == (6, 1.0)


def test_networks_shapes_at_every_level():
    torch.manual_seed(0)
    g, d = Generator(TINY_NET), Discriminator(TINY_NET)
    z, pitch = torch.randn(4, 16), torch.tensor([24, 40, 60, 84])
    for level in range(TINY_NET.levels):
        x = g(z, pitch, level, alpha=0.5)
        assert x.shape == (4, 2, *resolution(level)) and x.abs().max() <= 1
        critic, logits = d(x, level, alpha=0.5)
        assert critic.shape == (4,) and logits.shape == (4, 61)
        assert torch.isfinite(critic).all()


def test_training_steps_reduce_discriminator_loss_and_resume(tiny_notes, tmp_path):
    cfg = TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path), net=TINY_NET, batch=8,
                      phase_images=10_000, max_steps=60, sample_every=60, lr=2e-3)
    record = train(cfg, progress=False)
    assert record["step"] == 60
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in log)
    assert log[-1]["loss_d"] < log[0]["loss_d"]
    assert (tmp_path / "samples" / "step0000060.png").stat().st_size > 0
    assert (tmp_path / "samples" / "step0000060.wav").stat().st_size > 44
    cfg.max_steps = 70
    assert train(cfg, progress=False)["step"] == 70


def test_export_command_writes_contract_model_and_card(tiny_notes, tmp_path):
    from synth.cli import main
    from synth.runtime.model import NoteModel

    run = tmp_path / "run"
    train(TrainConfig(data_dir=str(tiny_notes), out_dir=str(run), net=TINY_NET, max_steps=2), progress=False)
    main(["export", str(run / "checkpoint.pt"), "-o", str(tmp_path / "m.onnx"), "--card", str(tmp_path / "card.md")])
    model = NoteModel(tmp_path / "m.onnx")
    facts = json.loads(model.info.training_data)
    assert facts["steps"] == 2 and facts["soundfonts"] == ["timgm6mb"] and facts["representation"] == "IF-Mel"
    assert model.render(np.zeros((1, 16), np.float32), [60]).shape == (1, 64000)
    assert "2 steps" in (tmp_path / "card.md").read_text()


@pytest.mark.parametrize("net", [TINY_NET, NetConfig(z_dim=16, channels=(16, 8), arch="1d", fixed_if=True)],
                         ids=["2d", "1d-fixed-if"])
def test_export_of_an_onnx_file_rebuilds_the_same_model(tiny_notes, tmp_path, net):
    """Checkpoints stay on the machine that trained them; a model file alone can be exported again, with new
    measurements and a card, and renders exactly what an export of its checkpoint renders."""
    from synth.cli import main
    from synth.runtime.model import NoteModel

    run = tmp_path / "run"
    train(TrainConfig(data_dir=str(tiny_notes), out_dir=str(run), net=net, max_steps=2, batch=4), progress=False)
    main(["export", str(run / "checkpoint.pt"), "-o", str(tmp_path / "m.onnx")])
    rows = [{"set": "generated (m.onnx)", "notes": 61, "pitch_accuracy": 0.5}]
    (tmp_path / "eval.json").write_text(json.dumps(rows))
    curve = {"from": "A", "to": "B", "t": [0.0, 1.0], "families": ["piano", "organ"],
             "probabilities": [[1.0, 0.0], [0.0, 1.0]], "max_step": 1.0}
    (tmp_path / "c1.json").write_text(json.dumps(curve))
    (tmp_path / "c2.json").write_text(json.dumps(curve | {"from": "C", "to": "D"}))
    main(["export", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.onnx"), "--metrics", str(tmp_path / "eval.json"),
          "--curve", str(tmp_path / "c1.json"), "--curve", str(tmp_path / "c2.json"), "--card", str(tmp_path / "c.md")])
    model = NoteModel(tmp_path / "m.onnx")
    assert model.info.metrics == rows
    assert json.loads(model.info.training_data)["steps"] == 2
    card = (tmp_path / "c.md").read_text()
    assert "2 steps" in card and "slerp A → B" in card and "slerp C → D" in card and "0.500" in card
    again = model.render(np.ones((1, 16), np.float32), [60])
    main(["export", str(run / "checkpoint.pt"), "-o", str(tmp_path / "fresh.onnx")])
    assert np.array_equal(again, NoteModel(tmp_path / "fresh.onnx").render(np.ones((1, 16), np.float32), [60]))
    main(["export", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "again.onnx")])  # no --metrics: the file's stay
    assert NoteModel(tmp_path / "again.onnx").info.metrics == rows
    import onnx

    old = onnx.load(str(tmp_path / "m.onnx"))  # files exported before the magnitude range was in the metadata
    kept = [p for p in old.metadata_props if p.key != "mag_range"]
    assert len(kept) == len(old.metadata_props) - 1
    del old.metadata_props[:]
    old.metadata_props.extend(kept)
    onnx.save(old, str(tmp_path / "old.onnx"))
    main(["export", str(tmp_path / "old.onnx"), "-o", str(tmp_path / "from_old.onnx")])
    assert np.array_equal(again, NoteModel(tmp_path / "from_old.onnx").render(np.ones((1, 16), np.float32), [60]))
    assert not list(tmp_path.glob(".*.part"))


def test_reconstruction_encoder_trains_resumes_and_lies_on_the_prior_sphere(tiny_notes, tmp_path):
    from synth.model.networks import Encoder1D, NetConfig

    net = NetConfig(z_dim=16, channels=(16, 8), arch="1d", fixed_if=True)
    z = Encoder1D(net)(torch.rand(3, 128, 512) * 2 - 1)
    assert z.shape == (3, 16) and torch.allclose(z.norm(dim=1), torch.full((3,), 4.0), atol=1e-4)
    cfg = TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "r"), net=net, batch=4, max_steps=20,
                      lr=2e-3, reconstruct=10.0)
    train(cfg, progress=False)
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert all(0.0 < r["rec"] < 2.0 for r in log)
    ck = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    cfg.max_steps = 22
    assert train(cfg, progress=False)["step"] == 22
    after = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert any(not torch.equal(after["E"][k], ck["E"][k]) for k in ck["E"])  # the resumed encoder goes on learning
    plain = TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "p"), net=net, batch=4, max_steps=1)
    train(plain, progress=False)
    plain.reconstruct, plain.max_steps = 10.0, 2
    with pytest.raises(ValueError, match="without --reconstruct"):
        train(plain, progress=False)


def test_1d_network_trains_resumes_and_exports(tiny_notes, tmp_path):
    """The CPU-friendly architecture goes through the same training loop, checkpoint and ONNX contract."""
    from synth.cli import main
    from synth.model.networks import NetConfig, make_discriminator, make_generator
    from synth.runtime.model import NoteModel

    net = NetConfig(z_dim=16, channels=(16, 16, 8), arch="1d")
    g, d = make_generator(net), make_discriminator(net)
    x = g(torch.randn(3, 16), torch.tensor([24, 60, 84]))
    assert x.shape == (3, 2, *resolution(6)) and x.abs().max() <= 1
    assert d(x)[0].shape == (3,) and d(x)[1].shape == (3, 61)
    run = tmp_path / "run"
    cfg = TrainConfig(data_dir=str(tiny_notes), out_dir=str(run), net=net, batch=8, phase_images=10_000,
                      max_steps=40, sample_every=40, lr=2e-3)
    log0 = train(cfg, progress=False)
    assert log0["step"] == 40 and log0["level"] == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["aux_d"] < log[0]["aux_d"]  # the discriminator starts to tell pitches apart
    cfg.max_steps = 45
    assert train(cfg, progress=False)["step"] == 45
    main(["export", str(run / "checkpoint.pt"), "-o", str(tmp_path / "m.onnx"), "--card", str(tmp_path / "card.md")])
    audio = NoteModel(tmp_path / "m.onnx").render(np.zeros((2, 16), np.float32), [36, 72])
    assert audio.shape == (2, 64000) and np.isfinite(audio).all()
    assert "1-D conv generator" in (tmp_path / "card.md").read_text()


def test_export_of_a_model_file_it_cannot_rebuild_is_one_line(tiny_model, tmp_path):
    from synth.cli import main

    with pytest.raises(SystemExit) as e:  # a contract-valid model whose training_data is not an export's
        main(["export", str(tiny_model), "-o", str(tmp_path / "x.onnx")])
    assert str(e.value).startswith("gansynth-live: model file") and "does not hold a generator exported" in str(e.value)
    assert "\n" not in str(e.value) and not (tmp_path / "x.onnx").exists()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path / "junk.onnx"), "-o", str(tmp_path / "x.onnx")])
    assert "is not a readable ONNX model" in str(e.value)


def test_init_from_a_model_file_trains_a_new_critic_first(tiny_notes, tmp_path):
    """The shipped .onnx outlives its run's checkpoint: --init-from it starts from its generator (the EMA weights,
    read back unscaled) with a fresh critic, and --d-warmup keeps the generator still while that critic learns."""
    from synth.cli import main

    net = NetConfig(z_dim=16, channels=(16, 8), arch="1d", fixed_if=True)
    train(TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "a"), net=net, batch=4, max_steps=3),
          progress=False)
    main(["export", str(tmp_path / "a" / "checkpoint.pt"), "-o", str(tmp_path / "a.onnx")])
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    cfg = TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "b"), net=net, batch=4, max_steps=2,
                      d_warmup=2, lr=2e-3, init_from=str(tmp_path / "a.onnx"))
    assert train(cfg, progress=False)["step"] == 2
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    for k in a["G_ema"]:
        torch.testing.assert_close(b["G"][k], a["G_ema"][k], rtol=1e-5, atol=1e-6)  # still, while the critic learns
    assert b["pretrained"]["step"] == 3 and b["pretrained"]["from"].endswith("a.onnx")
    cfg.max_steps = 3
    train(cfg, progress=False)
    c = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert any(not torch.allclose(c["G"][k], b["G"][k]) for k in b["G"])  # then the generator trains


def test_init_from_fine_tunes_another_run_and_older_features_are_refused(tiny_notes, tmp_path):
    """--init-from starts a new run at another run's weights and records where it came from; a checkpoint of the
    older feature definition is refused by export and resume with a line that says what to do."""
    from synth.cli import main
    from synth.model.networks import NetConfig

    net = NetConfig(z_dim=16, channels=(16, 8), arch="1d")
    first = TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "a"), net=net, batch=4, max_steps=3)
    train(first, progress=False)
    tuned = TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "b"), net=net, batch=4, max_steps=0,
                        init_from=str(tmp_path / "a" / "checkpoint.pt"))
    assert train(tuned, progress=False)["step"] == 0
    a, b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in "ab")
    assert all(torch.equal(a["G_ema"][k], b["G_ema"][k]) for k in a["G_ema"])
    assert b["pretrained"]["step"] == 3 and b["features"] == a["features"] == 2
    main(["export", str(tmp_path / "b" / "checkpoint.pt"), "-o", str(tmp_path / "b.onnx"),
          "--card", str(tmp_path / "card.md")])
    assert "starting from another run's weights (3 steps" in (tmp_path / "card.md").read_text()

    # Fine-tuned with a fixed IF: every frame's IF is the training notes' mean for the pitch, whatever z is.
    from dataclasses import replace

    from synth.model.export import load_checkpoint
    from synth.model.train import data_pitch_spectrum

    fixed = replace(tuned, out_dir=str(tmp_path / "c"), net=replace(net, fixed_if=True), max_steps=2)
    assert train(fixed, progress=False)["step"] == 2
    model, facts = load_checkpoint(tmp_path / "c" / "checkpoint.pt")
    assert facts["net"]["fixed_if"]
    main(["export", str(tmp_path / "c" / "checkpoint.pt"), "-o", str(tmp_path / "c.onnx"),
          "--card", str(tmp_path / "c.md")])
    assert "IF not learned: each bin turns at the pitch" in (tmp_path / "c.md").read_text()
    from synth.model import dataset

    want = torch.tanh(data_pitch_spectrum(model.codec, dataset.load(tiny_notes, "train"), torch.device("cpu"))[:, 512:])
    with torch.no_grad():
        feats = model.generator(torch.randn(3, 16), torch.tensor([40, 40, 70]))
    torch.testing.assert_close(feats[:, 1], want[[16, 16, 46]].unsqueeze(1).expand(-1, 128, -1))
    assert not torch.equal(feats[0, 0], feats[1, 0])  # the magnitude still follows z

    a["features"] = 1  # as every checkpoint written before the feature change
    torch.save(a, tmp_path / "a" / "checkpoint.pt")
    with pytest.raises(SystemExit, match="older feature definition.*--init-from"):
        main(["export", str(tmp_path / "a" / "checkpoint.pt"), "-o", str(tmp_path / "m.onnx")])
    with pytest.raises(ValueError, match="older feature definition"):
        train(first, progress=False)
    assert not (tmp_path / "m.onnx").exists()


def test_network_shape_errors_name_the_problem():

    from synth.model.networks import NetConfig

    with pytest.raises(ValueError, match="2d network needs 7 widths"):
        NetConfig(channels=(8, 8))
    with pytest.raises(ValueError, match="unknown network architecture"):
        NetConfig(channels=(8,), arch="3d")
    with pytest.raises(ValueError, match="fixed IF needs the 1d network"):
        NetConfig(fixed_if=True)


@pytest.mark.parametrize("arch, channels", [("1d", ["16", "16", "8"]), ("2d", ["16", "16", "8", "8", "8", "4", "4"])])
def test_torchrun_trains_data_parallel_with_replicas_in_sync(tiny_notes, tmp_path, arch, channels):
    """Two CPU processes under torchrun (gloo): each trains on its own batches, DistributedDataParallel averages
    the gradients, so the generators stay identical while the per-process losses differ."""
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "synth",
                           "train", "--data", str(tiny_notes), "--out", str(run), "--arch", arch, "--channels",
                           *channels, "--z-dim", "16", "--batch", "4", "--steps", "5", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    finals = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(finals) == 2 and all(f["step"] == 5 and f["images"] == 40 for f in finals)  # 5 x 4 x 2 processes
    assert all(f["replica_max_diff"] == 0.0 for f in finals)
    assert finals[0]["loss_d"] != finals[1]["loss_d"]  # different batches on each process
    facts = torch.load(run / "checkpoint.pt", weights_only=False)
    assert facts["hardware"].startswith("2 x CPU") and "DistributedDataParallel" in facts["hardware"]


def test_even_morph_term_is_zero_for_an_even_morph_and_not_for_a_jump():
    """The term measures what it says: a sound that moves with the slerp angle scores 0, one that moves late and
    fast does not; torch's slerp is the engine's."""
    from synth.engine.latent import slerp as engine_slerp
    from synth.model.preset_terms import even_morph_loss, morph_points, slerp

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 16, generator=gen), torch.randn(3, 16, generator=gen)
    b = b * (a.norm(dim=1) / b.norm(dim=1))[:, None]  # on one sphere slerp turns at a constant rate
    t = morph_points(3, 5, gen)
    assert torch.all(t[:, 1:] > t[:, :-1]) and torch.all(t[:, 0] == 0) and torch.all(t[:, -1] == 1)
    z = slerp(a, b, torch.full((3,), 0.3))
    np.testing.assert_allclose(z[1].numpy(), engine_slerp(a[1].numpy(), b[1].numpy(), 0.3), rtol=1e-4, atol=1e-5)

    def angle_from(start):
        def g(z, pitch):
            cos = torch.nn.functional.cosine_similarity(z, start.repeat_interleave(len(z) // len(start), 0), dim=1)
            return torch.acos(cos.clamp(-1, 1))[:, None, None, None].expand(-1, 2, 4, 4)
        return g

    pitch = torch.tensor([40, 60, 80])
    even = even_morph_loss(angle_from(a), a, b, pitch, t)
    jump = even_morph_loss(lambda z, p: angle_from(a)(z, p) ** 4, a, b, pitch, t)
    assert float(even) < 1e-4 and float(jump) > 0.1


def test_keep_presets_holds_the_preset_sounds_through_a_fine_tune(tiny_notes, tmp_path):
    """--keep-presets: the fine-tuned generator stays nearer to the starting one at the preset latents than the same
    run without it, the teacher survives a resume, and a run without --init-from is refused in one line."""
    from synth.engine.latent import Preset, load_presets, save_preset

    net = NetConfig(z_dim=16, channels=(16, 8), arch="1d", fixed_if=True)
    train(TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "a"), net=net, batch=4, max_steps=3),
          progress=False)
    rng = np.random.default_rng(3)
    for name in ("One", "Two", "Three"):
        save_preset(Preset(name, rng.standard_normal(16).astype(np.float32)), tmp_path / "presets")
    start = str(tmp_path / "a" / "checkpoint.pt")

    def run(out, **kw):
        cfg = TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / out), net=net, batch=4, max_steps=25,
                          lr=3e-3, init_from=start, **kw)
        train(cfg, progress=False)
        return cfg, torch.load(tmp_path / out / "checkpoint.pt", weights_only=False)

    kept_cfg, kept = run("kept", keep_presets=str(tmp_path / "presets"), keep_weight=200.0, even_morphs=1.0)
    _, free = run("free")
    g0 = _generator(net, torch.load(start, weights_only=False)["G_ema"])
    z = torch.from_numpy(np.stack([p.z for p in load_presets(16, tmp_path / "presets")]))
    pitch = torch.tensor([30, 60, 84])
    with torch.no_grad():
        target = g0(z, pitch)[:, 0]
        drift = {k: float((_generator(net, ck["G"])(z, pitch)[:, 0] - target).abs().mean())
                 for k, ck in (("kept", kept), ("free", free))}
    assert drift["kept"] < 0.5 * drift["free"], drift
    log = [json.loads(line) for line in (tmp_path / "kept" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["keep"]) and np.isfinite(r["even"]) for r in log)
    for k in kept["teacher"]:
        torch.testing.assert_close(kept["teacher"][k], torch.load(start, weights_only=False)["G_ema"][k])
    kept_cfg.max_steps = 26
    assert train(kept_cfg, progress=False)["step"] == 26  # resumes with the stored teacher
    kept_cfg.max_steps, kept_cfg.keep_weight = 27, 50.0
    train(kept_cfg, progress=False)
    stretches = torch.load(tmp_path / "kept" / "checkpoint.pt", weights_only=False)["objectives"]
    assert [(s["steps"], s["keep_weight"]) for s in stretches] == [([0, 26], 200.0), ([26, 27], 50.0)]

    # The card says what the generator was trained for, and the whole chain of runs it came from.
    from synth.cli import main

    main(["export", str(tmp_path / "kept" / "checkpoint.pt"), "-o", str(tmp_path / "k.onnx")])
    train(TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "next"), net=net, batch=4, max_steps=1,
                      d_warmup=1, init_from=str(tmp_path / "k.onnx")), progress=False)
    main(["export", str(tmp_path / "next" / "checkpoint.pt"), "-o", str(tmp_path / "n.onnx"),
          "--card", str(tmp_path / "card.md")])
    card = (tmp_path / "card.md").read_text()
    assert "after starting from another run's weights (27 steps" in card and "(3 steps" in card
    assert "steps 0–26: WGAN-GP" in card and "3 presets kept as the starting generator made them (weight 200)" in card
    assert "steps 26–27: WGAN-GP" in card and "(weight 50)" in card
    assert "an even speed of the sound along slerp between them (weight 1)" in card
    with pytest.raises(ValueError, match="give it --init-from"):
        train(TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "x"), net=net, max_steps=1,
                          keep_presets=str(tmp_path / "presets")), progress=False)
    with pytest.raises(ValueError, match="give it --keep-presets"):
        train(TrainConfig(data_dir=str(tiny_notes), out_dir=str(tmp_path / "y"), net=net, max_steps=1,
                          even_morphs=1.0), progress=False)


def _generator(net, state):
    from synth.model.networks import make_generator

    g = make_generator(net).eval()
    g.load_state_dict(state)
    return g
