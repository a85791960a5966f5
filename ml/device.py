"""Device selection and mixed precision, in one place.

The pipeline runs on CUDA when one is present and on the CPU otherwise. On a GPU it runs under
autocast (bf16 where the card supports it, else fp16); on the CPU it runs in fp32, because CPU
autocast is slower than fp32 for these convolution and attention shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class DeviceError(ValueError):
    """A requested device is unknown or not present on this machine."""

    def __init__(self, requested: str, message: str) -> None:
        super().__init__(f"device {requested!r}: {message}")
        self.requested = requested


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """Return the device to run on.

    ``None`` or ``"auto"`` picks ``cuda`` when available, else ``cpu``. An explicit ``"cuda"``
    on a machine without CUDA raises :class:`DeviceError` instead of silently using the CPU.
    """
    if requested is None or requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise DeviceError(str(requested), str(exc)) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(str(requested), "CUDA is not available on this machine")
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``device``: bf16 or fp16 on CUDA, ``None`` (fp32) elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def inference_mode(device: torch.device) -> Iterator[None]:
    """``torch.no_grad()`` plus, on CUDA, autocast to :func:`autocast_dtype`."""
    dtype = autocast_dtype(device)
    with torch.no_grad():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield
