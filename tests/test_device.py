import random

import numpy as np
import pytest
import torch

from minivlm.device import (
    deterministic,
    env_report,
    format_report,
    pick_device,
    seed_everything,
)


def test_pick_device_defaults_to_an_available_device(monkeypatch):
    monkeypatch.delenv("MINIVLM_DEVICE", raising=False)
    device = pick_device()
    expected = "cuda" if torch.cuda.is_available() else None
    assert device.type in ("cuda", "mps", "cpu")
    if expected:
        assert device.type == expected


def test_env_var_overrides_choice(monkeypatch):
    monkeypatch.setenv("MINIVLM_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_unknown_device_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MINIVLM_DEVICE", "tpu")
    with pytest.raises(ValueError, match="expected one of"):
        pick_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not available"):
        pick_device("cuda")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("bad, err", [(-1, ValueError), (2**32, ValueError), (1.5, TypeError)])
def test_seed_rejects_bad_values(bad, err):
    with pytest.raises(err, match="seed"):
        seed_everything(bad)


def test_env_report_names_versions_and_device():
    report = env_report(torch.device("cpu"))
    assert report["device"] == "cpu"
    assert report["torch"] == torch.__version__
    assert int(report["torch threads"]) >= 1
    text = format_report(report)
    assert "torchvision" in text and "python" in text


def test_deterministic_fixes_cudnn_and_turns_tf32_off_then_restores_the_defaults():
    cudnn = torch.backends.cudnn
    before = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32)
    try:
        deterministic()
        assert cudnn.deterministic and not cudnn.benchmark and not cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32
        deterministic(False)
        assert (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32) == (False, False, True)
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32 = before
