"""Tests for imagedex.ingest.imaging: safe decoding of untrusted image bytes."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data as skdata

from imagedex.errors import ImageDecodeError
from imagedex.ingest.imaging import (
    SUPPORTED_CONTENT_TYPES,
    DecodedImage,
    decode_image,
    sniff_content_type,
)

# --------------------------------------------------------------------------- helpers


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A real photograph (512×512 RGB)."""
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    """A real, non-square photograph (451×300 RGB)."""
    return Image.fromarray(skdata.chelsea())


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_with_header(width: int, height: int, idat: bytes = b"", bit_depth: int = 1) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def mean_rgb(im: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(im.crop(box), dtype=np.float64).reshape(-1, 3).mean(axis=0)


def assert_rgb(decoded: DecodedImage) -> None:
    assert isinstance(decoded.image, Image.Image)
    assert decoded.image.mode == "RGB"
    decoded.image.load()


# --------------------------------------------------------------------------- good images


@pytest.mark.parametrize(
    ("fmt", "content_type", "lossless"),
    [
        ("JPEG", "image/jpeg", False),
        ("PNG", "image/png", True),
        ("GIF", "image/gif", False),
        ("WEBP", "image/webp", False),
        ("BMP", "image/bmp", True),
        ("TIFF", "image/tiff", True),
        ("PPM", "image/x-portable-anymap", True),
    ],
)
def test_real_photo_in_each_format(
    chelsea: Image.Image, fmt: str, content_type: str, lossless: bool
) -> None:
    payload = encode(chelsea, fmt)
    decoded = decode_image(payload)
    assert_rgb(decoded)
    assert decoded.format == fmt
    assert decoded.content_type == content_type
    assert decoded.content_type in SUPPORTED_CONTENT_TYPES
    assert (decoded.width, decoded.height) == chelsea.size == decoded.image.size
    assert decoded.frames == 1
    assert decoded.taken_at is None and decoded.camera is None and decoded.gps is None
    original = np.asarray(chelsea, dtype=np.int16)
    got = np.asarray(decoded.image, dtype=np.int16)
    if lossless:
        assert np.array_equal(original, got)
    else:
        assert np.abs(original - got).mean() < 12
    assert sniff_content_type(payload) == content_type


def test_bytearray_input_is_accepted(photo: Image.Image) -> None:
    decoded = decode_image(bytearray(encode(photo, "PNG")))  # type: ignore[arg-type]
    assert decoded.image.size == (512, 512)


def test_result_does_not_depend_on_global_pillow_limit(
    photo: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    decoded = decode_image(encode(photo, "PNG"))
    assert decoded.image.size == (512, 512)


def test_max_pixels_argument_is_enforced(photo: Image.Image) -> None:
    with pytest.raises(ImageDecodeError, match=r"512×512 = 262,144 pixels.*limit of 100,000"):
        decode_image(encode(photo, "JPEG"), max_pixels=100_000)
    assert decode_image(encode(photo, "JPEG"), max_pixels=512 * 512).width == 512


# --------------------------------------------------------------------------- EXIF


def exif_jpeg(im: Image.Image, orientation: int | None = None, **tags: object) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if "make" in tags:
        exif[0x010F] = tags["make"]
    if "model" in tags:
        exif[0x0110] = tags["model"]
    if "datetime" in tags:
        exif[0x0132] = tags["datetime"]
    if "original" in tags:
        exif.get_ifd(0x8769)[0x9003] = tags["original"]
    if "offset" in tags:
        exif.get_ifd(0x8769)[0x9011] = tags["offset"]
    if "gps" in tags:
        exif.get_ifd(0x8825).update(tags["gps"])  # type: ignore[call-overload]
    return encode(im, "JPEG", exif=exif, quality=95)


def test_exif_orientation_6_rotates_and_swaps_dimensions() -> None:
    # Stored 60 wide × 40 high, red block in the stored top-left corner.
    stored = Image.new("RGB", (60, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    payload = exif_jpeg(stored, orientation=6)

    decoded = decode_image(payload)
    assert (decoded.width, decoded.height) == (40, 60)
    assert decoded.image.size == (40, 60)
    # Orientation 6 = rotate 90° clockwise to display: stored top-left ends up top-right.
    top_right = mean_rgb(decoded.image, (25, 2, 38, 15))
    top_left = mean_rgb(decoded.image, (2, 2, 15, 15))
    assert top_right[0] > 200 and top_right[2] < 60
    assert top_left[2] > 200 and top_left[0] < 60
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(payload))).convert("RGB")
    assert np.array_equal(np.asarray(reference), np.asarray(decoded.image))


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 7, 8])
def test_every_exif_orientation_matches_pillow(chelsea: Image.Image, orientation: int) -> None:
    payload = exif_jpeg(chelsea, orientation=orientation)
    decoded = decode_image(payload)
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(payload))).convert("RGB")
    assert decoded.image.size == reference.size == (decoded.width, decoded.height)
    assert np.array_equal(np.asarray(reference), np.asarray(decoded.image))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_exif_in_non_jpeg_formats(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 12"
    decoded = decode_image(encode(Image.new("RGB", (60, 40), (0, 0, 255)), fmt, exif=exif))
    assert (decoded.width, decoded.height) == decoded.image.size == (40, 60)
    assert decoded.camera == "Apple iPhone 12"


def test_exif_metadata_is_extracted(chelsea: Image.Image) -> None:
    payload = exif_jpeg(
        chelsea,
        make="Canon",
        model="Canon EOS 5D Mark IV",
        datetime="2022:01:01 00:00:00",
        original="2021:06:01 12:30:45",
        offset="+02:00",
        gps={1: "S", 2: (33.0, 51.0, 54.0), 3: "W", 4: (151.0, 12.0, 36.0)},
    )
    decoded = decode_image(payload)
    assert decoded.taken_at == "2021-06-01T12:30:45+02:00"
    assert decoded.camera == "Canon EOS 5D Mark IV"
    assert decoded.gps is not None
    assert decoded.gps["lat"] == pytest.approx(-(33 + 51 / 60 + 54 / 3600), abs=1e-6)
    assert decoded.gps["lon"] == pytest.approx(-(151 + 12 / 60 + 36 / 3600), abs=1e-6)


def test_exif_fallbacks(chelsea: Image.Image) -> None:
    payload = exif_jpeg(
        chelsea,
        make="NIKON CORPORATION",
        model="D750",
        datetime="2020:02:29 23:59:58",
        gps={1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.2)},
    )
    decoded = decode_image(payload)
    assert decoded.taken_at == "2020-02-29T23:59:58"
    assert decoded.camera == "NIKON CORPORATION D750"
    assert decoded.gps == {
        "lat": pytest.approx(48.858222, abs=1e-5),
        "lon": pytest.approx(2.294500, abs=1e-5),
    }


def test_bogus_exif_values_are_ignored_not_fatal(chelsea: Image.Image) -> None:
    payload = exif_jpeg(
        chelsea,
        orientation=42,
        datetime="0000:00:00 00:00:00",
        gps={1: "N", 2: (123.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},
    )
    decoded = decode_image(payload)
    assert decoded.image.size == chelsea.size
    assert decoded.taken_at is None
    assert decoded.gps is None  # latitude 123° is impossible


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_corrupt_exif_block_does_not_reject_the_picture(chelsea: Image.Image) -> None:
    payload = encode(chelsea, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff\x01")
    decoded = decode_image(payload)
    assert decoded.image.size == chelsea.size
    assert decoded.camera is None


# --------------------------------------------------------------------------- colour modes


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red in CMYK
    payload = encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(payload)).mode == "CMYK"
    decoded = decode_image(payload)
    assert_rgb(decoded)
    r, g, b = mean_rgb(decoded.image, (0, 0, 64, 64))
    assert r > 240 and g < 20 and b < 20


def test_16_bit_grayscale_png_is_scaled_to_8_bit() -> None:
    ramp = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16).repeat(4, axis=0)
    im = Image.fromarray(ramp)
    assert im.mode.startswith("I;16")
    decoded = decode_image(encode(im, "PNG"))
    assert_rgb(decoded)
    row = np.asarray(decoded.image)[0]
    assert row[:, 0].tolist() == [0, 64, 128, 255]
    assert np.array_equal(row[:, 0], row[:, 1])


def test_16_bit_tiff_and_float_tiff() -> None:
    ramp16 = Image.fromarray(np.array([[0, 65535]], dtype=np.uint16))
    decoded = decode_image(encode(ramp16, "TIFF"))
    assert np.asarray(decoded.image)[0, :, 0].tolist() == [0, 255]

    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert floats.mode == "F"
    decoded = decode_image(encode(floats, "TIFF"))
    assert np.asarray(decoded.image)[0, :, 0].tolist() == [0, 128, 255]

    wide = Image.fromarray(np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32))
    decoded = decode_image(encode(wide, "TIFF"))
    assert np.asarray(decoded.image)[0, :, 0].tolist() == [0, 128, 255]


def test_palette_png_with_transparency_is_composited_on_white() -> None:
    im = Image.new("P", (20, 10), 1)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(0, (0, 0, 10, 10))
    payload = encode(im, "PNG", transparency=0)
    decoded = decode_image(payload)
    assert_rgb(decoded)
    assert decoded.image.getpixel((2, 2)) == (255, 255, 255)  # transparent red -> white
    assert decoded.image.getpixel((15, 5)) == (0, 0, 255)


def test_palette_png_without_transparency(photo: Image.Image) -> None:
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    decoded = decode_image(encode(pal, "PNG"))
    assert_rgb(decoded)
    assert np.array_equal(np.asarray(decoded.image), np.asarray(pal.convert("RGB")))


def test_rgba_is_composited_on_white() -> None:
    im = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    im.paste((0, 0, 0, 128), (5, 0, 10, 10))
    decoded = decode_image(encode(im, "PNG"))
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)
    half = decoded.image.getpixel((7, 7))
    assert isinstance(half, tuple)
    assert all(120 <= c <= 135 for c in half)


def test_la_and_one_bit_and_grayscale() -> None:
    la = Image.new("LA", (8, 8), (0, 0))
    la.paste((0, 255), (4, 0, 8, 8))
    decoded = decode_image(encode(la, "PNG"))
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.image.getpixel((6, 1)) == (0, 0, 0)

    bw = Image.new("1", (8, 8), 0)
    bw.paste(1, (0, 0, 4, 8))
    decoded = decode_image(encode(bw, "PNG"))
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.image.getpixel((6, 1)) == (0, 0, 0)

    gray = Image.new("L", (8, 8), 77)
    decoded = decode_image(encode(gray, "BMP"))
    assert decoded.image.getpixel((3, 3)) == (77, 77, 77)


def test_grayscale_png_with_trns_transparency() -> None:
    gray = Image.new("L", (8, 8), 10)
    gray.paste(200, (4, 0, 8, 8))
    decoded = decode_image(encode(gray, "PNG", transparency=10))
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.image.getpixel((6, 1)) == (200, 200, 200)


# --------------------------------------------------------------------------- animation


def frames_of(n: int, size: tuple[int, int] = (32, 24)) -> list[Image.Image]:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    return [Image.new("RGB", size, colours[i % len(colours)]) for i in range(n)]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_first_frame_and_frame_count(fmt: str) -> None:
    first, *rest = frames_of(3)
    extra: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    payload = encode(first, fmt, save_all=True, append_images=rest, duration=100, **extra)
    decoded = decode_image(payload)
    assert decoded.frames == 3
    assert decoded.image.size == (32, 24)
    r, g, b = mean_rgb(decoded.image, (0, 0, 32, 24))
    assert r > 240 and g < 15 and b < 15


def test_mpo_stereo_jpeg_is_a_jpeg_with_frames() -> None:
    left = Image.new("RGB", (800, 600), (200, 30, 30))
    right = Image.new("RGB", (800, 600), (30, 30, 200))
    payload = encode(left, "MPO", save_all=True, append_images=[right])
    decoded = decode_image(payload, draft_size=(200, 150))
    assert decoded.format == "MPO"
    assert decoded.content_type == "image/jpeg"
    assert decoded.frames == 2
    assert (decoded.width, decoded.height) == (800, 600)
    assert decoded.image.size == (200, 150)  # JPEG draft at 1/4 scale
    r, _, b = mean_rgb(decoded.image, (0, 0, 200, 150))
    assert r > 180 and b < 60


def test_multipage_tiff_counts_pages() -> None:
    first, *rest = frames_of(4)
    decoded = decode_image(encode(first, "TIFF", save_all=True, append_images=rest))
    assert decoded.frames == 4
    assert decoded.image.getpixel((0, 0)) == (255, 0, 0)


# --------------------------------------------------------------------------- draft / reduce


def test_draft_decodes_big_jpeg_cheaply_but_reports_full_size() -> None:
    x = np.linspace(0, 255, 4000, dtype=np.float32)
    y = np.linspace(0, 255, 3000, dtype=np.float32)
    channels = [
        np.broadcast_to(x, (3000, 4000)),
        np.broadcast_to(y[:, None], (3000, 4000)),
        np.full((3000, 4000), 90, np.float32),
    ]
    big = np.stack(channels, axis=-1).astype(np.uint8)
    payload = encode(Image.fromarray(big), "JPEG", quality=85)

    started = time.perf_counter()
    decoded = decode_image(payload, draft_size=(500, 500))
    drafted_seconds = time.perf_counter() - started

    assert (decoded.width, decoded.height) == (4000, 3000)
    w, h = decoded.image.size
    assert w >= 500 and h >= 500
    assert w * h <= 1000 * 750  # JPEG draft picked 1/4 scale (the largest keeping ≥ 500)
    assert decoded.image.mode == "RGB"
    # The reduced picture still shows the same gradient.
    assert abs(float(np.asarray(decoded.image)[h // 2, w // 2, 0]) - 128) < 10

    full = decode_image(payload)
    assert full.image.size == (4000, 3000)
    assert drafted_seconds < 5


def test_draft_size_respects_exif_rotation() -> None:
    stored = Image.new("RGB", (1600, 800), (10, 200, 30))
    decoded = decode_image(exif_jpeg(stored, orientation=6), draft_size=(100, 400))
    assert (decoded.width, decoded.height) == (800, 1600)
    w, h = decoded.image.size
    assert w >= 100 and h >= 400
    assert h > w
    assert w * h < 800 * 1600


def test_draft_size_reduces_other_formats(photo: Image.Image) -> None:
    decoded = decode_image(encode(photo, "PNG"), draft_size=(120, 100))
    assert (decoded.width, decoded.height) == (512, 512)
    assert decoded.image.size == (128, 128)  # reduce(4): the largest factor keeping ≥ 120


def test_draft_size_larger_than_image_keeps_full_size(photo: Image.Image) -> None:
    decoded = decode_image(encode(photo, "JPEG"), draft_size=(2000, 2000))
    assert decoded.image.size == (512, 512)


# --------------------------------------------------------------------------- bad input


def test_zero_bytes() -> None:
    with pytest.raises(ImageDecodeError, match="empty file"):
        decode_image(b"")


@pytest.mark.parametrize(
    ("payload", "looks_like"),
    [
        (b"Hello, this is a plain text note.\nNot a picture.\n", "text"),
        ("Ünïcödé text — still text\n".encode(), "text"),
        (b'{"images": []}', "JSON text"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML page"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"PK\x03\x04" + bytes(40), "ZIP archive"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(40), "a video"),
    ],
)
def test_not_an_image_names_what_it_looks_like(payload: bytes, looks_like: str) -> None:
    with pytest.raises(ImageDecodeError, match=r"^not an image \(looks like") as info:
        decode_image(payload)
    assert looks_like in str(info.value)
    assert sniff_content_type(payload) is None


def test_random_bytes() -> None:
    payload = random.Random(1234).randbytes(4096)
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(payload)


def test_unsupported_image_formats_are_named() -> None:
    ico = encode(Image.new("RGB", (32, 32), (1, 2, 3)), "ICO")
    with pytest.raises(ImageDecodeError, match=r"unsupported image format ICO.*JPEG, PNG"):
        decode_image(ico)
    jpeg2000 = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(32)  # HEIC and AVIF decode now
    with pytest.raises(ImageDecodeError, match="unsupported image format JPEG 2000"):
        decode_image(jpeg2000)
    assert sniff_content_type(ico) is None


def test_truncated_jpeg(photo: Image.Image) -> None:
    payload = encode(photo, "JPEG")
    with pytest.raises(ImageDecodeError, match="JPEG image data is truncated or corrupt"):
        decode_image(payload[: len(payload) // 2])
    with pytest.raises(ImageDecodeError, match="JPEG header is truncated or corrupt"):
        decode_image(payload[:200])


def test_truncated_png(photo: Image.Image) -> None:
    payload = encode(photo, "PNG")
    with pytest.raises(ImageDecodeError, match="PNG image data is truncated or corrupt"):
        decode_image(payload[: len(payload) // 2])
    with pytest.raises(ImageDecodeError, match="PNG header is truncated or corrupt"):
        decode_image(payload[:20])


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF"])
def test_truncated_other_formats(chelsea: Image.Image, fmt: str) -> None:
    payload = encode(chelsea, fmt)
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(payload[: len(payload) // 3])


def test_decompression_bomb_png_is_rejected_before_decoding() -> None:
    # A real 30000×30000 1-bit PNG: 112 MB of zero rows deflate to ~110 kB.
    width = height = 30_000
    row = b"\x00" * (1 + width // 8)
    compressor = zlib.compressobj(9)
    block = row * 1000
    idat = b"".join(compressor.compress(block) for _ in range(height // 1000))
    idat += compressor.flush()
    payload = png_with_header(width, height, idat)
    assert len(payload) < 1_000_000

    started = time.perf_counter()
    with pytest.raises(ImageDecodeError) as info:
        decode_image(payload)
    assert time.perf_counter() - started < 1.0
    message = str(info.value)
    assert "30000×30000" in message
    assert "900,000,000 pixels" in message
    assert "limit of 40,000,000 pixels" in message


def test_bomb_rejected_even_when_pillow_limit_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    # Logical screen 65535×65535 with one 1×1 frame: ~40 bytes claiming 4.3 gigapixels.
    frame = b"," + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    gif = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + frame + b";"
    with pytest.raises(ImageDecodeError, match=r"65535×65535.*exceeds the limit"):
        decode_image(gif)
    with pytest.raises(ImageDecodeError, match="limit of 1,000 pixels"):
        decode_image(png_with_header(100, 100), max_pixels=1000)


def test_absurd_dimensions() -> None:
    with pytest.raises(ImageDecodeError, match=r"impossible dimensions 100000×1"):
        decode_image(png_with_header(100_000, 1))
    with pytest.raises(ImageDecodeError, match="PNG header is truncated or corrupt"):
        decode_image(png_with_header(0, 10))


def test_invalid_arguments_are_programming_errors(photo: Image.Image) -> None:
    payload = encode(photo, "PNG")
    with pytest.raises(ValueError, match="draft_size"):
        decode_image(payload, draft_size=(0, 10))
    with pytest.raises(ValueError, match="max_pixels"):
        decode_image(payload, max_pixels=0)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "PPM"])
def test_corrupted_bytes_never_escape_as_other_exceptions(fmt: str) -> None:
    rng = random.Random(fmt)
    base = np.asarray(skdata.coffee())[::8, ::8]
    original = encode(Image.fromarray(np.ascontiguousarray(base)), fmt)
    outcomes = {"decoded": 0, "rejected": 0}
    for _ in range(60):
        mutated = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(4, len(mutated))
            mutated[pos] = rng.randrange(256)
        if rng.random() < 0.3:
            del mutated[rng.randrange(8, len(mutated)) :]
        try:
            result = decode_image(bytes(mutated))
        except ImageDecodeError as exc:
            assert str(exc)
            outcomes["rejected"] += 1
        else:
            assert result.image.mode == "RGB"
            assert result.width * result.height <= 40_000_000
            outcomes["decoded"] += 1
    assert sum(outcomes.values()) == 60


# --------------------------------------------------------------------------- sniffing


def test_sniff_content_type(photo: Image.Image) -> None:
    small = photo.resize((16, 16))
    assert sniff_content_type(encode(small, "JPEG")) == "image/jpeg"
    assert sniff_content_type(encode(small, "PNG")) == "image/png"
    assert sniff_content_type(encode(small, "GIF")) == "image/gif"
    assert sniff_content_type(encode(small, "WEBP")) == "image/webp"
    assert sniff_content_type(encode(small, "BMP")) == "image/bmp"
    assert sniff_content_type(encode(small, "TIFF")) == "image/tiff"
    assert sniff_content_type(encode(small, "PPM")) == "image/x-portable-anymap"
    assert sniff_content_type(b"") is None
    assert sniff_content_type(b"BM is a band") is None
    assert sniff_content_type(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
