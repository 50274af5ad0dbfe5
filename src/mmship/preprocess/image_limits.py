"""How big an image may get at every step, checked before any pixel is decoded.

An image is judged on every size it takes: its decoded size (from the file header), the
size the model's resize asks for (a 200000x1 PNG of 274 bytes passes a cap on decoded
pixels, then asks for a ten-gigapixel resize) and its shape (aspect ratio). A request is
judged on the sum over its images, decoded and resized, so one body cannot hold hundreds of
images each just under the cap. All of it is known from the headers, so a refused request
costs no decoding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from mmship.core.errors import InputSpecError


@dataclass(frozen=True)
class ImageLimits:
    """Caps on the images of one call; ``None`` switches a cap off.

    :param max_pixels: one image, width x height, decoded and again after resizing.
    :param max_request_pixels: all images of the call together, decoded and again after resizing.
    :param max_aspect_ratio: longest side over shortest side.
    """

    max_pixels: int | None = 40_000_000
    max_request_pixels: int | None = None
    max_aspect_ratio: float | None = None


@dataclass(frozen=True)
class ImageSize:
    """One image's sizes: decoded (from its header) and after the resize, ``(height, width)``."""

    where: str
    decoded: tuple[int, int]
    resized: tuple[int, int]

    @property
    def decoded_pixels(self) -> int:
        """Pixels of the decoded image."""
        return self.decoded[0] * self.decoded[1]

    @property
    def resized_pixels(self) -> int:
        """Pixels after the resize (the decoded pixels when the spec does not resize)."""
        return self.resized[0] * self.resized[1]


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def check_image(size: ImageSize, limits: ImageLimits) -> None:
    """Refuse one image whose shape or resize target is over the limits."""
    height, width = size.decoded
    if limits.max_aspect_ratio is not None and max(height, width) > limits.max_aspect_ratio * min(height, width):
        ratio = max(height, width) / min(height, width)
        raise InputSpecError(
            f"{size.where} is {width}x{height}: its aspect ratio of {ratio:,.0f}:1 is over the limit of "
            f"{limits.max_aspect_ratio:g}:1",
            hint="crop or pad the image closer to square, or raise the server's --max-aspect-ratio",
        )
    if limits.max_pixels is not None and size.resized_pixels > limits.max_pixels:
        raise InputSpecError(
            f"{size.where} is {width}x{height}, which this model's preprocessing resizes to "
            f"{_wxh(size.resized)} = {size.resized_pixels:,} pixels, more than the cap of {limits.max_pixels:,}",
            hint="crop the image closer to square before sending it, or raise the server's --max-image-pixels",
        )


def check_request(sizes: Sequence[ImageSize], limits: ImageLimits) -> None:
    """Refuse a call whose images together hold more pixels than allowed, decoded or resized."""
    cap = limits.max_request_pixels
    if cap is None or not sizes:
        return
    for kind, total in (
        ("hold", sum(s.decoded_pixels for s in sizes)),
        ("are resized to", sum(s.resized_pixels for s in sizes)),
    ):
        if total > cap:
            raise InputSpecError(
                f"the request's {len(sizes)} images {kind} {total:,} pixels together, more than the cap of "
                f"{cap:,} per request",
                hint="send fewer or smaller images per request, or raise the server's --max-request-pixels",
            )


def check_deadline(deadline: float | None, what: str) -> None:
    """Raise :class:`TimeoutError` when ``deadline`` (``time.monotonic()``) has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"the request's deadline passed while {what}")
