"""minivlm: a vision-language model built from scratch, one chapter at a time."""

from .device import deterministic, env_report, pick_device, seed_everything

__version__ = "0.1.0"
__all__ = ["pick_device", "seed_everything", "deterministic", "env_report"]
