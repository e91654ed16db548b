"""Safe files: every file the course writes is written atomically (chapter 8).

A write goes to a temporary file in the same folder, is flushed to disk (fsync), and is then
renamed over the target. A rename within one folder is atomic, so a reader, or a run killed at
any moment, sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call write(tmp_path), fsync the result, then rename it to `path`; returns `path`.

    The temporary name holds the process id, so two processes never share one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left if write or fsync failed
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (see atomic_write)."""
    return atomic_write(path, lambda p: Path(p).write_text(text))


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files that a killed atomic_write left in `folder`; returns how many."""
    stale = list(Path(folder).glob(".*.tmp*")) if Path(folder).is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def save_run(
    run_dir: str | os.PathLike, files: tuple[str, str, str], info: dict, model, tok
) -> Path:
    """A trained model's folder (chapters 9 and 10): `info` as JSON, the tokenizer, and every
    weight as safetensors, named `files` = (json, tokenizer, weights), each written atomically;
    the weights first and the JSON last, so a folder with its JSON is complete. Returns it."""
    import json

    from safetensors.torch import save_file

    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out / files[2], lambda p: save_file(tensors, p))
    atomic_write(out / files[1], tok.save)
    atomic_write_text(out / files[0], json.dumps(info, indent=1))
    return out


def load_run(
    run_dir: str | os.PathLike,
    files: tuple[str, str, str],
    build: Callable[[dict, object], object],
    expected: str,
    what: str,
):
    """The model that `save_run` wrote into run_dir (no pickle): build(info, tok) makes it from
    the JSON and the tokenizer, then the weights are loaded into it. A folder without `files`
    is an error naming `expected`; one that does not read back, an error naming `what`."""
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .data import CaptionTokenizer
    from .errors import InputError

    run_dir = Path(run_dir)
    missing = [n for n in files if not (run_dir / n).is_file()]
    if missing:
        raise InputError("run_dir", expected, f"{run_dir} without {', '.join(missing)}")
    try:
        info = json.loads((run_dir / files[0]).read_text())
        model = build(info, CaptionTokenizer.load(run_dir / files[1]))
        model.load_state_dict(load_file(str(run_dir / files[2])))
    except (ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as err:
        raise InputError("run_dir", f"a readable {what}", f"{run_dir}: {err}") from err
    return model
