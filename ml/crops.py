"""The classifier's cell crop and image resizing: numpy and OpenCV only, no torch.

:mod:`ml.models.predictors` crops with these at inference and :mod:`ml.datasets.export`
at export, so a training crop is the crop the classifier will see; living here, they cost an
export no torch import.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ml.geometry import square_box


def resize_to(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``(size, size, 3)``: area down, linear up."""
    if image.shape[:2] == (size, size):
        return image
    shrinking = image.shape[0] > size or image.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def crop_square(
    image: np.ndarray, box: Sequence[float] | np.ndarray, offset: float, size: int
) -> np.ndarray:
    """The classifier's crop: :func:`ml.geometry.square_box` of ``box``, resized to ``size``.

    ``image`` is ``(H, W, 3)`` uint8 and ``box`` XYXY in its pixels. Parts of the square past
    the image edge are filled by reflection, so a cell near the edge keeps a natural context.
    Returns ``(size, size, 3)`` uint8.
    """
    x0, y0, x1, y1 = square_box(box, offset)
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    crop = image[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
    if any(pads):
        border = cv2.BORDER_REFLECT_101 if min(crop.shape[:2]) > 1 else cv2.BORDER_REPLICATE
        crop = cv2.copyMakeBorder(crop, *pads, borderType=border)
    return resize_to(np.ascontiguousarray(crop), size)
