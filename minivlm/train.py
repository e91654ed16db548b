"""One training loop for every chapter (chapter 8).

`train(model, get_batch, config)` runs AdamW with a linear warm-up and a cosine decay, clips the
gradient norm, and writes what a long run needs:

* a JSONL metrics log (one line per logged step, one per evaluation) and a loss-curve plot;
* checkpoints as safetensors (model and optimizer tensors) plus a JSON file (step, config,
  optimizer scalars, training seconds so far), written atomically every `ckpt_every` steps,
  every `ckpt_seconds` of training, at the end, and on Ctrl-C. A run killed at any moment
  (even `kill -9`) loses at most the steps since the last checkpoint;
* exact resume: the batch of step s is `get_batch(s)` and every random number drawn inside a
  step comes from a generator seeded by (seed, s), so a run that is stopped and resumed gives
  the same losses as one that never stopped. The log is cut back to the checkpoint's step and
  its clock continues from the checkpoint's training time;
* a NaN/inf guard: a non-finite loss or gradient stops the run with a clear error, and the last
  good checkpoint stays on disk untouched;
* a time limit, `max_seconds`: a run compared with another at equal training time stops when its
  clock passes the limit, even if the machine slowed down after its steps were counted. The
  schedule still runs over `steps`, so set those to fit (`steps_for`) and let the limit only
  catch an overrun; the log's last row says `"stopped": "max_seconds"`;
* bf16 autocast on CUDA, `torch.compile` as an opt-in, and DistributedDataParallel when the
  script is launched with `torchrun` (gloo on CPU, nccl on CUDA).

The model is any nn.Module whose forward(batch) returns a dict with a scalar "loss" (and any
other scalars worth logging).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import InputError
from .files import atomic_write, atomic_write_text, remove_stale_temporaries

CKPT_PREFIX = "step_"


@dataclass
class TrainConfig:
    steps: int
    lr: float = 1e-3
    warmup: int = 100
    min_lr: float = 0.0  # the cosine ends here
    weight_decay: float = 0.01
    clip: float = 1.0  # max gradient norm (0: no clipping)
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate only at the end (if an evaluate hook is given)
    ckpt_every: int = 0  # also checkpoint every this many steps (0: off)
    ckpt_seconds: float = 0.0  # also checkpoint after this many seconds of training (0: off)
    max_seconds: float = 0.0  # stop once training has run this long, over every call (0: off)
    keep: int = 2  # checkpoints kept on disk
    amp: bool = True  # bf16 autocast, on CUDA only
    compile: bool = False
    fused: bool = False  # AdamW's fused kernel (CPU, CUDA): one pass over every weight
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        counts = ("warmup", "log_every", "eval_every", "ckpt_every", "ckpt_seconds", "max_seconds")
        for name in counts:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.keep < 1:
            raise ValueError(f"keep must be >= 1 checkpoint, got {self.keep}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over `warmup` steps to `lr`, then a cosine down to `min_lr` at `steps`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def step_seed(seed: int, step: int) -> int:
    """The seed of one step's random numbers: a function of (seed, step) only."""
    return (seed * 1_000_003 + step) % (2**63 - 1)


@contextmanager
def evaluating(model: nn.Module, no_grad: bool = True) -> Iterator[nn.Module]:
    """`with evaluating(model):` runs the block in eval mode (dropout off) and without
    gradients, then puts the model back in the mode it was in, even if the block raised."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad() if no_grad else torch.enable_grad():
            yield model
    finally:
        model.train(was)


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(
    out_dir: str | Path, step: int, model: nn.Module, optimizer=None, meta: dict | None = None
) -> Path:
    """Write step_NNNNNNN.safetensors, then its .json (the JSON is the commit marker)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        for idx, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value).contiguous().cpu()
        opt_meta = {"param_groups": sd["param_groups"], "ids": list(sd["state"])}
    name = f"{CKPT_PREFIX}{step:07d}"
    atomic_write(out / f"{name}.safetensors", lambda p: save_file(tensors, p))
    record = {"step": step, "optimizer": opt_meta, "meta": meta or {}}
    return atomic_write_text(out / f"{name}.json", json.dumps(record, indent=1))


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (its JSON and safetensors both present), or None."""
    out = Path(out_dir)
    done = [
        p
        for p in out.glob(f"{CKPT_PREFIX}*.json")
        if p.with_suffix(".safetensors").exists() and not p.name.startswith(".")
    ]
    return max(done, key=lambda p: int(p.stem[len(CKPT_PREFIX) :])) if done else None


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The JSON record and the tensors of a checkpoint written by save_checkpoint (no pickle).

    A file that is truncated, corrupted or not a checkpoint raises InputError naming it."""
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    if not path.exists() or not path.with_suffix(".safetensors").exists():
        raise FileNotFoundError(f"no complete checkpoint at {path} (need .json and .safetensors)")
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError("no step")
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(
            "checkpoint", f"a checkpoint record with its step in {path}", f"unreadable JSON ({err})"
        ) from err
    try:
        tensors = load_file(str(path.with_suffix(".safetensors")))
    except SafetensorError as err:
        raise InputError(
            "checkpoint",
            f"complete tensors in {path.with_suffix('.safetensors')}",
            f"a truncated or corrupted file ({err}); delete it to resume from an older one",
        ) from err
    return record, tensors


def load_checkpoint(path: str | Path, model: nn.Module, optimizer=None) -> dict:
    """Load a checkpoint written by save_checkpoint (no pickle); returns its JSON record.

    A checkpoint of another model (other shapes or parameter names) raises InputError."""
    record, tensors = read_checkpoint(path)
    path = Path(path).with_suffix(".json")
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        why = (str(err).strip().splitlines()[1:2] or [str(err)])[0].strip()
        expected = f"weights of this model in {path}"
        raise InputError("checkpoint", expected, f"another model's ({why})") from err
    if optimizer is not None:
        if record["optimizer"] is None:
            raise ValueError(f"{path} holds no optimizer state")
        opt_state = {
            idx: {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"opt.{idx}.")}
            for idx in record["optimizer"]["ids"]
        }
        optimizer.load_state_dict(
            {"state": opt_state, "param_groups": record["optimizer"]["param_groups"]}
        )
    return record


def _prune(out_dir: Path, keep: int) -> None:
    ckpts = sorted(out_dir.glob(f"{CKPT_PREFIX}*.json"), key=lambda p: p.stem)
    for old in ckpts[:-keep]:
        old.unlink(missing_ok=True)  # the marker goes first: a half-deleted pair is never "latest"
        old.with_suffix(".safetensors").unlink(missing_ok=True)


# ---------------------------------------------------------------- distributed


def distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


# ---------------------------------------------------------------- the loop


def _scalars(out: dict) -> dict[str, float]:
    if not isinstance(out, dict) or "loss" not in out:
        raise TypeError("the model's forward(batch) must return a dict with a scalar 'loss'")
    return {k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1}


def to_device(batch, device: torch.device):
    """The batch with its tensors on `device`: a tensor, or a dict, list or tuple of them (other
    values pass through). `get_batch` may then build batches on the CPU, as data loaders do."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, norms and embeddings' scales).

    cfg.fused runs the update of every weight in one kernel where torch has one (CPU, CUDA): the
    same arithmetic, without a loop of small ops per tensor, which is a real share of a small
    model's step (bench/throughput.py)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = cfg.fused and all(p.device.type in ("cpu", "cuda") for p in decay + no_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), fused=True if fused else None)


def steps_for(
    model: nn.Module,
    get_batch: Callable[[int], object],
    seconds: float,
    probe: int = 12,
    device: torch.device | str = "cpu",
    setup: Callable[[nn.Module], object] | None = None,
) -> int:
    """How many training steps of `get_batch`'s batches fit in `seconds`, timed on a copy of
    the model (its first two steps warm up and are not counted): the way to compare two
    models at equal training time (chapters 9 and 10). setup(copy), if given, first readies
    the copy as training would (which parameters are frozen, say)."""
    if probe < 3:
        raise InputError("probe", "at least 3 steps (2 warm up)", probe)
    twin = copy.deepcopy(model).to(device).train()
    if setup is not None:
        setup(twin)
    opt = make_optimizer(twin, TrainConfig(steps=1))
    for i in range(probe):
        if i == 2:
            t0 = time.perf_counter()
        loss = twin(to_device(get_batch(i), torch.device(device)))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    per_step = (time.perf_counter() - t0) / (probe - 2)
    return max(1, int(seconds / per_step))


def train(
    model: nn.Module,
    get_batch: Callable[[int], object],
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    evaluate: Callable[[nn.Module, int], dict[str, float]] | None = None,
    resume: bool = True,
    device: torch.device | str = "cpu",
) -> list[dict]:
    """Train `model` for cfg.steps steps; returns the logged records (also in metrics.jsonl).

    get_batch(step) must return the same batch for the same step (resume relies on it); under
    torchrun each rank calls get_batch(step) and should slice its own share with
    `rank_slice`. evaluate(model, step) -> scalars, called every eval_every steps and at the end.
    """
    device = torch.device(device)
    rank, world = distributed()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    start, elapsed = 0, 0.0  # steps done and seconds of training before this call
    if out is not None and resume and (ckpt := latest_checkpoint(out)) is not None:
        record = load_checkpoint(ckpt, model, optimizer)
        start, elapsed = record["step"], float(record["meta"].get("elapsed", 0.0))
    runner: nn.Module = model
    if world > 1:
        runner = nn.parallel.DistributedDataParallel(model)
    if cfg.compile:
        runner = torch.compile(runner)
    amp = cfg.amp and device.type == "cuda"
    log_path = out / "metrics.jsonl" if out is not None and rank == 0 else None
    records: list[dict] = []
    if log_path is not None:
        remove_stale_temporaries(out)  # what a killed write left behind
        # rows past the checkpoint were logged by steps that are about to run again
        records = [r for r in read_log(log_path) if r["step"] <= start] if start else []
        atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in records))

    def log(record: dict) -> None:
        records.append(record)
        if log_path is not None:
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def seconds() -> float:  # of training, over every call that trained this run
        return elapsed + time.perf_counter() - t0

    def checkpoint(step: int) -> None:
        nonlocal last_save
        if out is not None and rank == 0:
            meta = {"config": asdict(cfg), "elapsed": seconds()}
            save_checkpoint(out, step, model, optimizer, meta)
            _prune(out, cfg.keep)
        last_save = time.perf_counter()

    bar = None
    if cfg.progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc="train", leave=False)
    t0 = last_save = time.perf_counter()
    completed = start
    model.train()

    def over() -> bool:  # past the time limit
        return bool(cfg.max_seconds) and seconds() >= cfg.max_seconds

    try:
        for step in range(start, cfg.steps):
            if over():  # a resumed run whose time was already spent
                break
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            torch.manual_seed(step_seed(cfg.seed * 1009 + rank, step))
            batch = to_device(get_batch(step), device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                result = runner(batch)
            scalars = _scalars(result)
            loss = result["loss"]
            if not math.isfinite(scalars["loss"]):
                raise FloatingPointError(
                    f"loss is {scalars['loss']} at step {step}; stopped. The last good "
                    f"checkpoint is {latest_checkpoint(out) if out else 'none (no out_dir)'}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.clip if cfg.clip > 0 else float("inf")
            )
            if not torch.isfinite(norm):
                raise FloatingPointError(
                    f"gradient norm is {float(norm)} at step {step}; stopped before the update. "
                    f"The last good checkpoint is {latest_checkpoint(out) if out else 'none'}"
                )
            optimizer.step()
            done = completed = step + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{scalars['loss']:.4f}")
            stop = done < cfg.steps and over()
            if cfg.log_every and (done % cfg.log_every == 0 or done == cfg.steps or stop):
                row = {"step": done, "lr": lr, "time": seconds(), **scalars}
                log({**row, "stopped": "max_seconds"} if stop else row)
            if evaluate is not None and cfg.eval_every and done % cfg.eval_every == 0:
                log({"step": done, "eval": True, **_evaluate(evaluate, model, done)})
            due = cfg.ckpt_every and done % cfg.ckpt_every == 0
            late = cfg.ckpt_seconds and time.perf_counter() - last_save >= cfg.ckpt_seconds
            if (due or late) and done < cfg.steps and not stop:
                checkpoint(done)
            if stop:
                break
    except KeyboardInterrupt:
        checkpoint(completed)  # every finished step is saved; the step in flight starts again
        raise
    finally:
        if bar is not None:
            bar.close()
    if completed > start:  # else the final checkpoint is the one this call resumed from
        checkpoint(completed)
    if evaluate is not None and not (cfg.eval_every and completed % cfg.eval_every == 0):
        log({"step": completed, "eval": True, **_evaluate(evaluate, model, completed)})
    if log_path is not None and log_path.exists():
        save_loss_plot(read_log(log_path), out / "loss.png")
    return records


def _evaluate(evaluate: Callable, model: nn.Module, step: int) -> dict[str, float]:
    with evaluating(model):
        return dict(evaluate(model, step))


def rank_slice(n: int) -> slice:
    """This rank's share of a batch of n items (all of it outside torchrun)."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    if n % world:
        raise ValueError(f"batch of {n} does not split evenly over {world} processes")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


def read_log(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_losses(records: list[dict], ax=None, keys: tuple[str, ...] = ("loss",)):
    """Plot logged training scalars against the step; returns the matplotlib axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3))[1]
    train_rows = [r for r in records if not r.get("eval")]
    for key in keys:
        rows = [r for r in train_rows if key in r]
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=key)
    ax.set(xlabel="step", ylabel="loss (log scale)", yscale="log")
    ax.legend()
    return ax


def save_loss_plot(records: list[dict], path: str | Path) -> None:
    """Write the loss curve (and any other logged losses) as a PNG, without pyplot state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3), layout="tight")
    keys = tuple(k for k in records[0] if k == "loss" or k in ("itc", "itm", "mlm", "lm"))
    plot_losses(records, ax=fig.subplots(), keys=keys)
    fig.savefig(path, dpi=100)
