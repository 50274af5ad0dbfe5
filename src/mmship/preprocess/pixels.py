"""mmship's own image pipeline: bytes -> pixels exactly as the HF image processor makes them.

Pillow and numpy only (no torch, no transformers), so the server stays light. Each step
replicates the Pillow backend of transformers' image processors (``PilBackend`` in
``transformers/image_processing_backends.py`` and ``image_transforms.py``), which is what
``CLIPImageProcessor`` / ``ViTImageProcessor`` / ``FlavaImageProcessor`` run without
torchvision:

1. decode with Pillow (first frame; no EXIF rotation: the HF processor does none);
2. RGB conversion as ``image_transforms.convert_to_rgb``: an image with an alpha band or a
   ``transparency`` entry (palette, grayscale or RGB colour key) is composited onto white,
   anything else goes through ``Image.convert("RGB")`` (grayscale, palette, CMYK, ...);
3. resize with ``Image.resize(size, resample)`` (Pillow always antialiases when shrinking);
   the shortest-edge size is ``get_resize_output_image_size``'s, long edge
   ``int(size * long / short)`` (floor);
4. center crop on the uint8 pixels, ``top = (h - crop_h) // 2``, zero padding when the image
   is smaller than the crop (as ``image_transforms.center_crop``);
5. rescale ``float32(uint8 * scale)`` computed in float64, then normalize
   ``(x - mean) / std`` in float32.

Opt-in (``jpeg_scaled_decode``), a JPEG at least twice the resize target in both sides is
decoded at 1/2, 1/4 or 1/8 of its size by the JPEG decoder itself (its DCT scaling, Pillow's
``draft``), never below the resize target, then resized as above: a 12-megapixel photo costs
~10x less, but the pixels are no longer bit-identical to the HF processor's (the build
reports what it does to the embeddings: ``scaled_jpeg_decode`` in report.json).

Step 5 maps each of the 256 byte values of a channel to one float32, so it is done by a
per-channel lookup table built with the very same numpy operations: the output is
bit-identical to the HF processor's, and costs one gather per pixel.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmship.core.errors import InputSpecError
from mmship.core.specs import ImagePreprocessSpec
from mmship.preprocess.image_limits import ImageLimits, ImageSize, check_deadline, check_image, check_request

#: Default decompression-bomb cap: the largest image (width x height) decoded.
DEFAULT_MAX_PIXELS = 40_000_000

#: Spec resample names -> Pillow filters (the integers HF stores as ``resample``).
PIL_RESAMPLE: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}

#: What the pipeline takes: encoded bytes or a decoded Pillow image.
ImageInput = Union[Image.Image, bytes, bytearray, memoryview]  # noqa: UP007 (a runtime alias on 3.10)

#: The formats the server decodes (Pillow's names): what the HTTP API promises, nothing else.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")

_DECODE_HINT = "send the complete file of a JPEG, PNG or WebP image (base64 in JSON)"


# --- decoding -----------------------------------------------------------------------


def silence_pillow_bomb_warnings() -> None:
    """Ignore Pillow's ``DecompressionBombWarning`` in this process. For a server: its own
    caps (``max_image_pixels``, checked on every header) refuse large images with a 4xx,
    and Pillow's warning, whose text holds each image's size, would let any client add a
    line to the server's log per request (the default filter prints each new message)."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _describe_start(data: bytes) -> str:
    head = bytes(data[:8])
    return head.hex(" ") if head else "nothing"


def open_image(data: bytes | bytearray | memoryview, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               where: str = "image") -> Image.Image:
    """Open encoded image bytes, reading only the header: no pixel is decoded yet.

    :param data: the encoded file (JPEG, PNG or WebP; other formats are refused).
    :param max_pixels: refuse images with more pixels (width x height) than this;
        ``None`` leaves only Pillow's own decompression-bomb guard.
    :param where: how error messages name the image (e.g. ``image 3``).
    :raises InputSpecError: for empty, unreadable, other-format or too large images.
    """
    from mmship.payload.images import check_encoded_image

    data = bytes(data)
    if not data:
        raise InputSpecError(f"{where} is empty (0 bytes)", hint=_DECODE_HINT)
    check_encoded_image(data, where)  # a GIF, BMP, TIFF or raw pixels are named as such
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InputSpecError(
            f"{where} is too large to decode safely: {exc}",
            hint="downscale the image before sending it",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputSpecError(
            f"{where} ({len(data):,} bytes starting {_describe_start(data)}) is not an image Pillow can read: {exc}",
            hint=_DECODE_HINT,
        ) from None
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        image.close()
        raise InputSpecError(
            f"{where} is {width}x{height} = {width * height:,} pixels, more than the cap of "
            f"{max_pixels:,} pixels (a guard against decompression bombs)",
            hint="downscale the image before sending it, or raise the server's max_image_pixels",
        )
    return image


def load_pixels(image: Image.Image, where: str = "image", size: int | None = None) -> Image.Image:
    """Decode the pixels of an image :func:`open_image` opened; ``size`` (bytes) for messages."""
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        truncated = "truncated" in str(exc).lower()
        width, height = image.size
        of = f", {size:,} bytes" if size is not None else ""
        raise InputSpecError(
            f"{where} ({image.format or 'unknown format'}, {width}x{height}{of}) could not be "
            f"decoded{' because the file is truncated' if truncated else ''}: {exc}",
            hint=_DECODE_HINT,
        ) from None
    return image


def decode_image(data: bytes | bytearray | memoryview, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 where: str = "image") -> Image.Image:
    """Decode encoded image bytes into a fully loaded Pillow image: :func:`open_image`
    (header checks first) then :func:`load_pixels`.

    :raises InputSpecError: for empty, unreadable, other-format, truncated or too large images.
    """
    return load_pixels(open_image(data, max_pixels=max_pixels, where=where), where, len(data))


# --- the geometric steps ------------------------------------------------------------


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB conversion as ``transformers.image_transforms.convert_to_rgb``: transparency is
    composited onto white, everything else is converted by Pillow."""
    has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
    if not has_alpha:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def shortest_edge_size(height: int, width: int, shortest_edge: int) -> tuple[int, int]:
    """(height, width) after resizing the shortest edge to ``shortest_edge``, as
    ``transformers.image_transforms.get_resize_output_image_size(default_to_square=False)``:
    the long edge is ``int(shortest_edge * long / short)``."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shortest_edge, int(shortest_edge * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resize_target(height: int, width: int, spec: ImagePreprocessSpec) -> tuple[int, int] | None:
    """The (height, width) ``spec`` resizes an image of this size to, or ``None``."""
    if spec.resize_shortest_edge is not None:
        return shortest_edge_size(height, width, spec.resize_shortest_edge)
    if spec.resize_height is not None and spec.resize_width is not None:
        return spec.resize_height, spec.resize_width
    return None


def center_crop(pixels: np.ndarray, crop_height: int, crop_width: int) -> np.ndarray:
    """Center crop of an HWC array as ``transformers.image_transforms.center_crop``: the
    top-left corner is ``((h - crop_h) // 2, (w - crop_w) // 2)``, and an image smaller than
    the crop is first zero-padded (``ceil`` of half the missing rows/columns on top/left)."""
    height, width = pixels.shape[:2]
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    bottom, right = top + crop_height, left + crop_width
    if top >= 0 and left >= 0 and bottom <= height and right <= width:
        return pixels[top:bottom, left:right]
    new_height, new_width = max(crop_height, height), max(crop_width, width)
    padded = np.zeros((new_height, new_width, *pixels.shape[2:]), dtype=pixels.dtype)
    top_pad = -(-(new_height - height) // 2)
    left_pad = -(-(new_width - width) // 2)
    padded[top_pad:top_pad + height, left_pad:left_pad + width] = pixels
    top, bottom, left, right = top + top_pad, bottom + top_pad, left + left_pad, right + left_pad
    return padded[max(0, top):min(new_height, bottom), max(0, left):min(new_width, right)]


def value_table(spec: ImagePreprocessSpec, channels: int = 3) -> np.ndarray:
    """float32 ``[channels, 256]``: what rescale + normalize make of each byte value, computed
    with the HF processor's own operations (float64 rescale cast to float32, then float32
    ``(x - mean) / std``), so looking values up is bit-identical to computing them."""
    values = np.arange(256, dtype=np.uint8)
    if spec.rescale_factor is not None:
        base = (values.astype(np.float64) * spec.rescale_factor).astype(np.float32)
    else:
        base = values.astype(np.float32)
    table = np.repeat(base[None, :], channels, axis=0)
    if spec.mean is not None and spec.std is not None:
        mean = np.asarray(spec.mean, dtype=np.float32)
        std = np.asarray(spec.std, dtype=np.float32)
        if mean.shape != (channels,) or std.shape != (channels,):
            raise ValueError(f"mean and std need {channels} values, got {list(spec.mean)} and {list(spec.std)}")
        table = (table - mean[:, None]) / std[:, None]
    return np.ascontiguousarray(table, dtype=np.float32)


# --- the pipeline -------------------------------------------------------------------


class ImagePreprocessor:
    """Turns encoded or decoded images into the model's ``pixel_values`` (float32 NCHW).

    Callable on a list of images; thread-safe (it holds no per-call state), so a server
    can run it in a thread pool. Every image is sized from its header first: its decoded
    size, its aspect ratio and the size the resize asks for are checked against
    :attr:`limits` (and the sums over the call) before any pixel is decoded.
    """

    def __init__(self, spec: ImagePreprocessSpec, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 *, limits: ImageLimits | None = None, jpeg_scaled_decode: bool = False) -> None:
        """
        :param spec: the aligned image spec from the bundle manifest.
        :param max_pixels: the per-image cap (width x height, decoded and resized) when
            ``limits`` is not given; ``None`` for no cap.
        :param limits: every cap (per image, per call, aspect ratio).
        :param jpeg_scaled_decode: decode large JPEGs at a reduced scale no smaller than the
            resize target (faster, not bit-identical to the HF processor); limits are still
            checked on the full size the header declares.
        :raises ValueError: for a spec this runtime cannot honour.
        """
        if not spec.antialias and spec.resample != "nearest":
            raise ValueError(
                "resizing without antialias is not supported: Pillow always antialiases, as the HF "
                "Pillow-based image processors do"
            )
        self.spec = spec
        self.limits = limits if limits is not None else ImageLimits(max_pixels=max_pixels)
        self.max_pixels = self.limits.max_pixels
        self.resample = PIL_RESAMPLE[spec.resample]
        self.table = value_table(spec)
        self.jpeg_scaled_decode = jpeg_scaled_decode

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(height, width) of every output, or ``None`` when it depends on the input."""
        try:
            return self.spec.output_size
        except ValueError:
            return None

    def open(self, image: ImageInput, where: str = "image") -> Image.Image:
        """The image with only its header read (bytes), or as given (a PIL image)."""
        if isinstance(image, (bytes, bytearray, memoryview)):
            return open_image(image, max_pixels=self.max_pixels, where=where)
        if not isinstance(image, Image.Image):
            raise InputSpecError(
                f"{where} is a {type(image).__name__}, not encoded bytes or a PIL image",
                hint="send the image file's bytes (base64 in JSON)",
            )
        return image

    def size_of(self, image: Image.Image, where: str = "image") -> ImageSize:
        """The image's decoded size and the size this spec resizes it to, checked against
        the per-image limits."""
        decoded = (image.height, image.width)
        if self.max_pixels is not None and image.height * image.width > self.max_pixels:
            raise InputSpecError(
                f"{where} is {image.width}x{image.height} = {image.width * image.height:,} pixels, more than the cap of "
                f"{self.max_pixels:,} pixels (a guard against decompression bombs)",
                hint="downscale the image before sending it, or raise the server's max_image_pixels",
            )
        size = ImageSize(where, decoded, resize_target(image.height, image.width, self.spec) or decoded)
        check_image(size, self.limits)
        return size

    def rgb(self, image: Image.Image, where: str = "image", target: tuple[int, int] | None = None) -> Image.Image:
        """Decode the pixels of an opened image and convert them to RGB as the spec says.

        :param target: the (height, width) the image will be resized to; with
            ``jpeg_scaled_decode`` a JPEG is decoded at the smallest scale not below it.
        """
        if self.jpeg_scaled_decode and target is not None and image.format == "JPEG":
            image.draft(None, (target[1], target[0]))  # keeps the mode; scales only when >= 2x
        image = load_pixels(image, where)
        if self.spec.convert_rgb:
            return to_rgb(image)
        if image.mode != "RGB":
            raise InputSpecError(
                f"{where} has mode {image.mode}; this model's preprocessing takes RGB images only",
                hint="convert the image to RGB before sending it",
            )
        return image

    def load(self, image: ImageInput, where: str = "image") -> Image.Image:
        """A decoded, RGB image at its full size, its sizes checked before decoding."""
        opened = self.open(image, where)
        self.size_of(opened, where)
        return self.rgb(opened, where)

    def geometry(self, image: Image.Image, target: tuple[int, int] | None = None) -> np.ndarray:
        """Resize and crop an RGB image; returns uint8 HWC pixels.

        :param target: the (height, width) to resize to, computed from the size the header
            declared (an image decoded at a reduced scale is smaller); default: from
            ``image``'s own size.
        """
        if target is None:
            target = resize_target(image.height, image.width, self.spec)
        if target is not None:
            height, width = target
            image = image.resize((width, height), resample=self.resample)
        pixels = np.asarray(image)
        if self.spec.crop_height is not None and self.spec.crop_width is not None:
            pixels = center_crop(pixels, self.spec.crop_height, self.spec.crop_width)
        return pixels

    def values(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rescale + normalize uint8 HWC pixels into float32 CHW (into ``out`` when given)."""
        if out is None:
            out = np.empty((3, *pixels.shape[:2]), dtype=np.float32)
        for channel in range(3):
            np.take(self.table[channel], pixels[:, :, channel], out=out[channel])
        return out

    def preprocess_one(self, image: ImageInput, where: str = "image") -> np.ndarray:
        """One image -> float32 ``[3, H, W]``."""
        opened = self.open(image, where)
        self.size_of(opened, where)
        return self.values(self._decoded_geometry(opened, where))

    def _decoded_geometry(self, opened: Image.Image, where: str) -> np.ndarray:
        """Decode, convert and resize/crop an opened image, the resize target taken from
        the size its header declares (a scaled decode makes the decoded image smaller)."""
        target = resize_target(opened.height, opened.width, self.spec)
        return self.geometry(self.rgb(opened, where, target), target)

    def preprocess_images(self, images: Sequence[ImageInput], deadline: float | None = None) -> np.ndarray:
        """A batch of images -> float32 ``[N, 3, H, W]``.

        Every image is opened (header only) and sized first; the per-image and per-call
        limits are checked before any pixel is decoded. Then each image is decoded,
        resized and cropped in turn, the deadline checked between images.

        :param deadline: ``time.monotonic()`` after which no further image is started.
        :raises InputSpecError: naming the image (by index) that cannot be decoded or is
            over a limit, a call over the per-call limits, and outputs that differ in size
            (a spec without crop or fixed resize).
        :raises TimeoutError: when the deadline passed.
        """
        names = [f"image {i}" for i in range(len(images))]
        opened = [self.open(image, where) for image, where in zip(images, names)]
        check_request([self.size_of(image, where) for image, where in zip(opened, names)], self.limits)
        size = self.output_size
        arrays: list[np.ndarray] = []
        out = np.empty((len(images), 3, *size), dtype=np.float32) if size is not None else None
        for i, (image, where) in enumerate(zip(opened, names)):
            check_deadline(deadline, f"preprocessing image {i} of {len(images)}")
            pixels = self._decoded_geometry(image, where)
            if out is None:
                arrays.append(self.values(pixels))
            elif pixels.shape[:2] != size:  # cannot happen with a crop; kept as a guard
                raise InputSpecError(f"{where} became {pixels.shape[:2]}, not {size}", hint="report this bug")
            else:
                self.values(pixels, out[i])
        if out is not None:
            return out
        shapes = sorted({a.shape for a in arrays})
        if len(shapes) > 1:
            raise InputSpecError(
                f"the images give pixel arrays of different sizes {shapes}; this model's preprocessing "
                "neither crops nor resizes to a fixed size",
                hint="send one image per request, or images of one size",
            )
        return np.stack(arrays) if arrays else np.empty((0, 3, 0, 0), dtype=np.float32)

    __call__ = preprocess_images


def preprocess_images(images: Sequence[ImageInput], spec: ImagePreprocessSpec,
                      max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Encoded or PIL images -> float32 ``[N, 3, H, W]`` as the HF processor makes them."""
    return ImagePreprocessor(spec, max_pixels=max_pixels)(images)
