"""A capstone small enough for a test: every stage runs in a second or two."""

TINY = dict(
    image_size=32, grid=4, d_model=32, n_alt=64, n_captioned=64, n_test=16, n_comp=16,
    batch=8, pretrain_steps=4, caption_steps=4, threads=0, progress=False,
)  # fmt: skip


def sets(values: dict) -> list[str]:
    """The command-line form of config values: ["--set", "k=v", ...]."""
    out = []
    for k, v in values.items():
        v = str(v).lower() if isinstance(v, bool) else str(v).replace(" ", "")
        out += ["--set", f"{k}={v}"]
    return out
