"""The training loop: schedule, atomic checkpoints, exact resume, the NaN guard and DDP."""

import json
import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

from minivlm.errors import InputError
from minivlm.files import atomic_write_text
from minivlm.train import (
    TrainConfig,
    evaluating,
    latest_checkpoint,
    load_checkpoint,
    lr_at,
    make_optimizer,
    rank_slice,
    read_log,
    save_checkpoint,
    to_device,
    train,
)


class Regressor(nn.Module):
    """A tiny model with dropout, so resume must restore the random stream too."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(dropout), nn.GELU(), nn.Linear(16, 1))

    def forward(self, batch):
        x, y = batch
        sl = rank_slice(len(x))
        pred = self.net(x[sl]).squeeze(-1)
        return {"loss": F.mse_loss(pred, y[sl]), "mean_pred": pred.mean().detach()}


def get_batch(step: int, n: int = 8):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(n, 4, generator=g)
    return x, x.sum(-1).sin()


def config(**kw):
    return TrainConfig(
        **{"steps": 12, "lr": 1e-2, "warmup": 3, "log_every": 1, "progress": False, **kw}
    )


def test_lr_warms_up_then_decays_to_min():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr=0.1)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))  # never rises after warm-up
    assert lr_at(100, cfg) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kw, match",
    [({"steps": 0}, "steps"), ({"steps": 5, "lr": 0.0}, "lr"), ({"steps": 5, "keep": 0}, "keep")],
)
def test_bad_config_is_named(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_to_device_moves_every_tensor_of_a_batch():
    x = torch.ones(2, 3)
    batch = {"image": x, "ids": [x, (x, 7)], "name": "a"}
    moved = to_device(batch, torch.device("meta"))  # a device that every torch build has
    assert moved["image"].device.type == "meta" and moved["image"].shape == (2, 3)
    assert [t.device.type for t in (moved["ids"][0], *moved["ids"][1][:1])] == ["meta"] * 2
    assert moved["ids"][1][1] == 7 and moved["name"] == "a"
    assert isinstance(moved["ids"][1], tuple) and batch["image"].device.type == "cpu"


def test_forward_must_return_a_loss(tmp_path):
    class NoLoss(Regressor):
        def forward(self, batch):
            return {"mse": super().forward(batch)["loss"]}

    with pytest.raises(TypeError, match="'loss'"):
        train(NoLoss(), get_batch, config(steps=2))


def test_checkpoint_round_trip_is_atomic_and_complete(tmp_path):
    torch.manual_seed(0)
    model = Regressor()
    train(model, get_batch, config(steps=5), out_dir=tmp_path)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "step_0000005.json"
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    assert (tmp_path / "loss.png").stat().st_size > 1000  # the loss curve
    other = Regressor()
    opt = make_optimizer(other, config())
    record = load_checkpoint(ckpt, other, opt)
    assert record["step"] == 5 and record["meta"]["config"]["steps"] == 5
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert opt.state_dict()["state"][0]["exp_avg"].abs().sum() > 0
    # a safetensors file without its JSON marker (a crash mid-save) is never picked
    (tmp_path / "step_0000009.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "step_0000005.json"


def test_fused_adamw_takes_the_steps_of_the_loop_over_tensors():
    """TrainConfig.fused (the capstone's stages) changes how AdamW runs, not what it computes."""
    torch.manual_seed(0)
    loop = Regressor(dropout=0.0)
    fused = Regressor(dropout=0.0)
    fused.load_state_dict(loop.state_dict())
    a = train(loop, get_batch, config())
    b = train(fused, get_batch, config(fused=True))
    assert isinstance(make_optimizer(fused, config(fused=True)), torch.optim.AdamW)
    assert make_optimizer(fused, config(fused=True)).defaults["fused"] is True
    assert not make_optimizer(fused, config()).defaults["fused"]
    torch.testing.assert_close([r["loss"] for r in b], [r["loss"] for r in a])
    torch.testing.assert_close(fused.state_dict(), loop.state_dict())


@pytest.mark.parametrize("fused", [False, True])
def test_interrupted_run_resumes_to_the_same_losses(tmp_path, fused):
    torch.manual_seed(0)
    straight = Regressor()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    ref = train(straight, get_batch, config(fused=fused), out_dir=tmp_path / "a")

    def interrupting(step):
        if step == 7 and not getattr(interrupting, "fired", False):
            interrupting.fired = True
            raise KeyboardInterrupt
        return get_batch(step)

    model = Regressor()
    model.load_state_dict(init)
    with pytest.raises(KeyboardInterrupt):
        train(model, interrupting, config(fused=fused), out_dir=tmp_path / "b")
    assert latest_checkpoint(tmp_path / "b").name == "step_0000007.json"
    fresh = Regressor()  # a new process: weights come only from the checkpoint
    train(fresh, interrupting, config(fused=fused), out_dir=tmp_path / "b")
    losses_ref = [r["loss"] for r in ref]
    losses = [r["loss"] for r in read_log(tmp_path / "b" / "metrics.jsonl")]
    assert losses == losses_ref  # bit for bit, dropout included
    for a, b in zip(straight.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_nan_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    class Exploding(Regressor):
        def forward(self, batch):
            out = super().forward(batch)
            if batch[0][0, 0] == get_batch(6)[0][0, 0]:
                out["loss"] = out["loss"] * float("nan")
            return out

    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match="loss is nan at step 6.*step_0000006"):
        train(Exploding(), get_batch, config(ckpt_every=2), out_dir=tmp_path)
    good = latest_checkpoint(tmp_path)
    assert json.loads(good.read_text())["step"] == 6  # steps 0..5 done, all finite
    model = Regressor()
    load_checkpoint(good, model)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _ddp_worker(rank: int, world: int, port: int, init: dict, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    model = Regressor(dropout=0.0)
    model.load_state_dict(init)
    train(model, get_batch, config(steps=6))
    if rank == 0:
        torch.save(model.state_dict(), out)
    torch.distributed.destroy_process_group()


def test_ddp_on_two_cpu_processes_equals_one_process(tmp_path):
    """DDP averages the gradients of two half batches: the same update as the full batch."""
    torch.manual_seed(0)
    single = Regressor(dropout=0.0)
    init = {k: v.clone() for k, v in single.state_dict().items()}
    train(single, get_batch, config(steps=6))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_ddp_worker, args=(2, port, init, out), nprocs=2, join=True)
    ddp = torch.load(out)
    moved = 0.0
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ddp[k], v, atol=1e-6, rtol=1e-5)
        moved += (v - init[k]).abs().sum().item()
    assert moved > 1e-3  # training changed the weights, so the equality means something


def test_save_checkpoint_without_optimizer(tmp_path):
    model = Regressor()
    path = save_checkpoint(tmp_path, 3, model, meta={"note": "weights only"})
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(path, Regressor(), make_optimizer(model, config()))
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        load_checkpoint(tmp_path / "step_0000099.json", model)


def test_evaluating_restores_the_mode_it_found_even_after_an_error():
    model = Regressor()
    for start in (True, False):
        model.train(start)
        with evaluating(model):
            assert not model.training and not torch.is_grad_enabled()
        assert model.training is start and torch.is_grad_enabled()
    model.train()
    with pytest.raises(RuntimeError, match="inside"), evaluating(model):
        raise RuntimeError("inside")
    assert model.training
    with evaluating(model, no_grad=False):
        assert not model.training and torch.is_grad_enabled()


def test_checkpoints_by_elapsed_time_and_a_log_cut_back_on_resume(tmp_path):
    """A slow run checkpoints every ckpt_seconds; a resume from an older checkpoint drops the
    log rows of the steps it runs again, and its clock continues from the checkpoint's."""

    def slow(step):
        time.sleep(0.05)
        return get_batch(step)

    torch.manual_seed(0)
    train(Regressor(), slow, config(steps=20, ckpt_seconds=0.2, keep=20), out_dir=tmp_path)
    steps = sorted(int(p.stem[5:]) for p in tmp_path.glob("step_*.json"))
    assert len(steps) >= 4 and steps[-1] == 20  # several by time, then the final one
    rows = read_log(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 21))
    # as if killed after step 14: only the checkpoints up to `back` survive
    back = max(s for s in steps if s < 15)
    for s in steps:
        if s > back:
            (tmp_path / f"step_{s:07d}.json").unlink()
    saved = json.loads((tmp_path / f"step_{back:07d}.json").read_text())["meta"]["elapsed"]
    assert saved == pytest.approx(rows[back - 1]["time"], abs=0.05)
    again = train(Regressor(), slow, config(steps=20, ckpt_seconds=0.2, keep=20), out_dir=tmp_path)
    rows2 = read_log(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows2] == list(range(1, 21)) == [r["step"] for r in again]
    assert [r["loss"] for r in rows2] == [r["loss"] for r in rows]  # the same steps, redone
    times = [r["time"] for r in rows2]
    assert times == sorted(times) and times[back] > saved  # one clock over both calls


def test_a_time_limit_stops_the_run_saves_it_and_a_resume_adds_nothing(tmp_path):
    """max_seconds stops a run whose steps would take longer (a machine that slowed down):
    the last logged row says so, the checkpoint holds the steps done, and the evaluation runs
    on them; a second call finds the time spent and trains no further step."""

    def slow(step):
        time.sleep(0.05)
        return get_batch(step)

    cfg = config(steps=1000, log_every=50, max_seconds=0.4)
    scored = []
    rows = train(Regressor(), slow, cfg, tmp_path, evaluate=lambda m, s: scored.append(s) or {})
    done = rows[-2]["step"]
    assert 4 <= done < 1000 and rows[-2]["stopped"] == "max_seconds" and rows[-2]["time"] >= 0.4
    assert rows[-1] == {"step": done, "eval": True} and scored == [done]
    assert latest_checkpoint(tmp_path).name == f"step_{done:07d}.json"
    again = train(Regressor(), slow, cfg, tmp_path)
    assert again == rows  # the log as it was: no step, no row added
    assert latest_checkpoint(tmp_path).name == f"step_{done:07d}.json"


def test_unreadable_or_foreign_checkpoints_are_named(tmp_path):
    torch.manual_seed(0)
    train(Regressor(), get_batch, config(steps=3), out_dir=tmp_path)
    ckpt = latest_checkpoint(tmp_path)
    with pytest.raises(InputError, match="checkpoint: expected weights of this model.*another"):
        load_checkpoint(ckpt, nn.Linear(4, 1))
    tensors = ckpt.with_suffix(".safetensors")
    tensors.write_bytes(tensors.read_bytes()[:100])
    with pytest.raises(InputError, match="truncated or corrupted"):
        load_checkpoint(ckpt, Regressor())
    atomic_write_text(ckpt, "{not json")
    with pytest.raises(InputError, match="unreadable JSON"):
        load_checkpoint(ckpt, Regressor())
