"""Shared fixtures: a tiny note set rendered by FluidSynth from TimGM6mb, and a tiny exported model."""
from pathlib import Path

import numpy as np
import pytest
import torch

from synth.model import dataset
from synth.model.export import NoteSynth, export_onnx
from synth.model.networks import Generator, NetConfig
from synth.model.spectral import IFMel

TINY_NET = NetConfig(z_dim=16, channels=(16, 16, 8, 8, 8, 4, 4))


@pytest.fixture(scope="session")
def tiny_notes(tmp_path_factory) -> Path:
    """Two programs (piano, violin) x 9 pitches x 2 velocities from TimGM6mb."""
    out = tmp_path_factory.mktemp("notes")
    dataset.build(out, soundfonts=["timgm6mb"], programs=[0, 40], velocities=[70, 110],
                  pitches=list(range(24, 85, 7)), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_synth() -> NoteSynth:
    torch.manual_seed(0)
    return NoteSynth(Generator(TINY_NET), IFMel(mel=True)).eval()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_synth) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(tiny_synth, path, {"training_data": "untrained test model", "metrics": {}})
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
