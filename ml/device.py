"""Device selection and mixed precision, in one place.

The pipeline runs on CUDA when one is present and on the CPU otherwise. On a GPU it runs under
autocast (bf16 where the card supports it, else fp16); on the CPU it runs in fp32, because CPU
autocast is slower than fp32 for these convolution and attention shapes. Training is another
matter: a classifier's forward and backward pass in bf16 on a CPU with AVX-512 BF16 took half
the time of fp32 here (resnet18, batch 32, 128 px: 7.6 against 16.9 ms per image), so training
autocasts to bf16 wherever the hardware has it (:func:`training_dtype`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import threadpoolctl
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


_cpu_threads_applied: int | None = None


def limit_cpu_threads(threads: int) -> None:
    """Use at most ``threads`` CPU threads in this process: torch's, OpenCV's and the OpenMP and
    BLAS pools numpy and scipy call into.

    Each defaults to every core, so two worker processes on one machine oversubscribe it: on
    2 cores, two analysis workers with torch alone limited still spent half as long again in
    the classical segmenter (OpenCV's own threads) as one.
    """
    global _cpu_threads_applied
    if _cpu_threads_applied == threads and torch.get_num_threads() == threads:
        return  # every chunk asks again; threadpoolctl rescans the loaded libraries each call
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    threadpoolctl.threadpool_limits(threads)
    _cpu_threads_applied = threads


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``device``: bf16 or fp16 on CUDA, ``None`` (fp32) elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def training_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype a training step uses: ``None`` (fp32) for ``precision="fp32"``;
    for ``"auto"``, bf16 where the device computes it natively (a CUDA GPU with bf16, a CPU
    with AVX-512 BF16), else ``None``. fp16 is never picked: it would need loss scaling."""
    if precision == "fp32":
        return None
    if precision != "auto":
        raise ValueError(f"precision must be 'auto' or 'fp32', not {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    # A private probe (torch has no public one); an older torch without it trains in fp32.
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return torch.bfloat16 if device.type == "cpu" and probe is not None and probe() else None


@contextlib.contextmanager
def autocast_to(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` on ``device``; nothing when ``dtype`` is ``None``."""
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


@contextlib.contextmanager
def inference_mode(device: torch.device) -> Iterator[None]:
    """``torch.no_grad()`` plus, on CUDA, autocast to :func:`autocast_dtype`."""
    with torch.no_grad(), autocast_to(device, autocast_dtype(device)):
        yield
