import base64
import io

import numpy as np
import pytest
from PIL import Image

from vlmpipe.core.images import ImageError, prepare_image, sniff_format


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def rgba16_png() -> bytes:
    """A 16-bit-per-channel RGBA PNG, written by hand (Pillow cannot write 16-bit RGBA)."""
    import struct
    import zlib

    w, h = 4, 2
    raw = b""
    for _y in range(h):
        raw += b"\x00" + b"".join(struct.pack(">HHHH", 65535, 0, 0, 0 if x < 2 else 65535) for x in range(w))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_format_is_read_from_bytes_not_name() -> None:
    data = png_bytes(Image.new("RGB", (5, 5), "white"))
    assert sniff_format(data) == "PNG"
    jpeg = io.BytesIO()
    Image.new("RGB", (5, 5)).save(jpeg, format="JPEG")
    assert sniff_format(jpeg.getvalue()) == "JPEG"


def test_16bit_rgba_png_becomes_8bit_rgb_with_alpha_on_white() -> None:
    p = prepare_image(rgba16_png())
    assert (p.source_format, p.mime, p.converted) == ("PNG", "image/png", True)
    out = Image.open(io.BytesIO(p.data))
    assert out.mode == "RGB" and out.size == (4, 2)
    assert out.getpixel((0, 0)) == (255, 255, 255)  # fully transparent red -> white background
    assert out.getpixel((3, 0)) == (255, 0, 0)  # opaque red stays red
    assert p.data_url().startswith("data:image/png;base64,")
    assert base64.b64decode(p.data_url().split(",", 1)[1]) == p.data


def test_16bit_grayscale_is_scaled_not_clipped() -> None:
    arr = np.array([[0, 32896, 65535]], dtype=np.uint16)
    p = prepare_image(png_bytes(Image.fromarray(arr)))
    out = Image.open(io.BytesIO(p.data))
    assert [out.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_palette_image_is_converted_and_plain_jpeg_is_passed_through() -> None:
    pal = Image.new("P", (3, 3))
    p = prepare_image(png_bytes(pal))
    assert p.converted and Image.open(io.BytesIO(p.data)).mode == "RGB"
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), "blue").save(buf, format="JPEG")
    j = prepare_image(buf.getvalue())
    assert (j.converted, j.mime, j.data) == (False, "image/jpeg", buf.getvalue())


def test_max_side_downscales_keeping_aspect() -> None:
    p = prepare_image(png_bytes(Image.new("RGB", (400, 100), "white")), max_side=200)
    assert (p.width, p.height) == (200, 50)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty file"), (b"hello, not an image", "not a recognised image"),
     (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not a recognised image")],
)
def test_bad_bytes_give_clear_errors(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        prepare_image(data)


def test_truncated_image_is_an_image_error() -> None:
    data = png_bytes(Image.new("RGB", (50, 50), "white"))
    with pytest.raises(ImageError):
        prepare_image(data[: len(data) // 2])
