"""Screenshots as servers accept them: format sniffed from bytes, normalised to 8-bit, sent as data URLs.

Real data has PNGs named .jpg and 16-bit RGBA PNGs; a vision server may reject 16-bit, palette or alpha
images, so those are re-encoded as 8-bit RGB PNG. The file name is never trusted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

#: Formats sent as they are (when already 8-bit RGB/L); anything else is re-encoded as PNG.
PASSTHROUGH = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
#: Largest image accepted, in pixels (Pillow's decompression-bomb guard is raised to an error above it).
MAX_PIXELS = 60_000_000


class ImageError(ValueError):
    """An image that cannot be used; the message says why."""


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    mime: str
    width: int
    height: int
    source_format: str
    source_mode: str
    converted: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def sniff_format(data: bytes) -> str:
    """The image format read from the bytes (e.g. ``"PNG"``); :class:`ImageError` when not an image."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format
    except (UnidentifiedImageError, OSError) as err:
        raise ImageError(f"not a recognised image ({err.__class__.__name__})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"image too large: {err}") from None
    if not fmt:
        raise ImageError("not a recognised image")
    return fmt


def _to_rgb8(im: Image.Image) -> Image.Image:
    """8-bit RGB, alpha composited on white; 16-bit channels scaled down, not clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(im, dtype=np.uint32)
        scale = 257 if arr.max(initial=0) > 255 else 1
        return Image.fromarray((arr // scale).astype("uint8")).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return im.convert("RGB")


def prepare_image(data: bytes, *, max_side: int | None = None) -> PreparedImage:
    """Validate and normalise image bytes for a vision model.

    Keeps the original bytes when the image is already a plain 8-bit JPEG/PNG/WebP within ``max_side``;
    otherwise re-encodes to 8-bit RGB PNG (downscaled so that the longer side is at most ``max_side``).
    """
    fmt = sniff_format(data)
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageError(f"image too large: {w}x{h} pixels (limit {MAX_PIXELS:,})")
                mode = im.mode
                im.load()  # decode fully: a truncated or corrupt file fails here, not at the server
                too_big = max_side is not None and max(w, h) > max_side
                plain = fmt in PASSTHROUGH and mode in ("RGB", "L")
                if plain and not too_big:
                    return PreparedImage(data, PASSTHROUGH[fmt], w, h, fmt, mode, converted=False)
                rgb = _to_rgb8(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"image too large: {err}") from None
    except OSError as err:
        raise ImageError(f"corrupt or truncated image: {err}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    if too_big and max_side is not None:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", optimize=False)
    return PreparedImage(buf.getvalue(), "image/png", rgb.width, rgb.height, fmt, mode, converted=True)
