"""Safe decoding of untrusted image bytes.

Every input either becomes a :class:`DecodedImage` holding an RGB Pillow image or raises
:class:`imagedex.errors.ImageDecodeError` with a message a user can act on. The checks that
protect the worker (format allow-list, dimension and pixel limits, a JPEG's marker structure)
run on the header, before any pixel data is decoded, and never depend on Pillow's process-wide
settings (``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``). Every decode first
reserves its estimated memory in the process-wide pixel budget (``pixel_budget``), so concurrent
decodes (thumbnails, the worker's fetch threads) cannot together exhaust memory.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFile

from imagedex.errors import ImageDecodeError
from imagedex.ingest.jpeg_markers import check_jpeg
from imagedex.ingest.pixel_budget import PixelBudget, process_budget

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_SIDE",
    "SUPPORTED_CONTENT_TYPES",
    "SUPPORTED_NAMES",
    "DecodedImage",
    "decode_image",
    "require_image",
    "sniff_content_type",
]

#: Largest width or height accepted, in pixels.
MAX_SIDE = 65_535

#: Seconds a decode waits for room in the pixel budget unless told otherwise (the worker's);
#: past it DecodeBusyError, which the worker retries later.
BUDGET_WAIT = 60.0

# Bytes per pixel Pillow stores a mode in (RGB too takes 4).
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Bytes per pixel the conversion to upright RGB adds at its peak (copies, numpy arrays, the
# RGB result, the transposed result), measured on 40 MP images.
_CONVERT_BYTES = {"RGB": 4, "I": 18, "F": 18, "I;16": 14, "I;16L": 14, "I;16B": 14, "I;16N": 14}
_ALPHA_CONVERT_BYTES = 13
_OTHER_CONVERT_BYTES = 8
# Modes whose pixels may be averaged before the conversion (a palette or a colour key may not).
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"})

#: Pillow format name -> content type, for the formats :func:`decode_image` accepts.
ALLOWED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # multi-picture JPEG (stereo cameras, phones); a JPEG to everyone else
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "PPM": "image/x-portable-anymap",
    "HEIF": "image/heic",  # decoded by pillow-heif (libheif), registered on first use
    "AVIF": "image/avif",  # Pillow's own plugin (libavif, Pillow >= 11.3)
}

#: Content types of the formats :func:`decode_image` accepts.
SUPPORTED_CONTENT_TYPES: frozenset[str] = frozenset(ALLOWED_FORMATS.values())

#: The accepted formats as people name them, for messages and docs.
SUPPORTED_NAMES = "JPEG, PNG, GIF, WebP, BMP, TIFF, PPM, HEIC/HEIF, AVIF"

# EXIF tag numbers.
_TAG_ORIENTATION = 0x0112
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_DATETIME = 0x0132
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4

# EXIF orientation -> transpose that makes the image upright (same table as ImageOps).
_ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})

# Exceptions Pillow and its codecs raise on malformed input.
_PILLOW_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    AttributeError,
    RecursionError,
    Image.DecompressionBombError,
)


@dataclass
class DecodedImage:
    """A decoded, upright RGB image and what its header and EXIF said about it."""

    image: Image.Image
    """Mode ``RGB``, EXIF orientation applied, possibly reduced when ``draft_size`` was given."""
    width: int
    """Full width of the upright image, whatever ``image.width`` is after a draft reduction."""
    height: int
    """Full height of the upright image."""
    format: str
    """Pillow's format name, e.g. ``"JPEG"``."""
    content_type: str
    """MIME type, e.g. ``"image/jpeg"``."""
    frames: int = 1
    """Number of frames (pages, animation frames); only the first is decoded."""
    taken_at: str | None = None
    """ISO 8601 capture time from EXIF DateTimeOriginal (or DateTime)."""
    camera: str | None = None
    """``"Make Model"`` from EXIF."""
    gps: dict[str, float] | None = None
    """``{"lat": ..., "lon": ...}`` in signed decimal degrees from EXIF GPS."""


# --------------------------------------------------------------------------- sniffing


def _sniff_format(data: bytes) -> tuple[str, str] | None:
    """Return ``(pillow_format_or_"", human_name)`` for image-looking bytes, else None.

    The Pillow format name is empty for image formats Pillow cannot or must not open here.
    """
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG", "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF", "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP", "WebP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF", "TIFF"
    if head[:2] == b"BM" and len(head) >= 18:
        (dib_size,) = struct.unpack_from("<I", head, 14)
        if dib_size in (12, 16, 40, 52, 56, 64, 108, 124):
            return "BMP", "BMP"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n#":
        return "PPM", "PPM/PGM/PBM"
    if head[:4] == b"\x00\x00\x01\x00" and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return "", "ICO"
    if head[4:8] == b"ftyp":
        found = _sniff_isobmff(data)
        if found is not None:
            return found
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "", "JPEG 2000"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "", "JPEG XL"
    if head.startswith(b"8BPS"):
        return "", "Photoshop PSD"
    return None


_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


def _sniff_isobmff(data: bytes) -> tuple[str, str] | None:
    """AVIF or HEIF from the `ftyp` box: its major brand, else its compatible brands.

    Both share the generic `mif1`/`msf1` brands, so an AVIF brand anywhere wins over them.
    """
    (box_size,) = struct.unpack_from(">I", data, 0)
    end = min(max(box_size, 16), len(data), 256)
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF", "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF", "HEIC/HEIF"
    return None


def require_image(data: bytes) -> str:
    """The content type of bytes that start like an accepted image, or ImageDecodeError saying
    what they look like instead. Reads only the first bytes: a cheap check before storing."""
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    found = _sniff_format(data)
    if found is None:
        raise ImageDecodeError(
            f"not an image (looks like {_looks_like(data)}); supported formats: {SUPPORTED_NAMES}"
        )
    if found[0] not in ALLOWED_FORMATS:
        raise ImageDecodeError(
            f"unsupported image format {found[1]}; supported formats: {SUPPORTED_NAMES}"
        )
    return ALLOWED_FORMATS[found[0]]


def sniff_content_type(data: bytes) -> str | None:
    """Guess an image content type from the leading magic bytes, without decoding.

    Returns the MIME type (``"image/jpeg"``, ``"image/png"``, ...) when ``data`` starts like an
    image format :func:`decode_image` accepts, otherwise ``None``. A non-None answer does not
    promise the rest of the file is valid; :func:`decode_image` decides that.
    """
    found = _sniff_format(data)
    if found is None or not found[0]:
        return None
    return ALLOWED_FORMATS[found[0]]


def _looks_like(data: bytes) -> str:
    """A short description of bytes that are not an image, for error messages."""
    head = data[:2048]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(b"%pdf"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a ZIP archive or office document"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"7z\xbc\xaf\x27\x1c") or head.startswith(b"Rar!"):
        return "an archive"
    if head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3":
        return "a video"
    if head[:4] == b"RIFF":
        return "a RIFF media file (audio or video)"
    if head.startswith(b"\x7fELF") or head.startswith(b"MZ"):
        return "an executable"
    if stripped.startswith((b"<svg", b"<?xml")) and b"<svg" in stripped:
        return "an SVG vector image; vector images are not supported"
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if stripped.startswith((b"{", b"[")) and _is_text(head):
        return "JSON text"
    if _is_text(head):
        return "text"
    return "unrecognised binary data"


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 4:
            return False
        text = head[: exc.start].decode("utf-8")
    if not text:
        return False
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    return printable / len(text) > 0.95


# --------------------------------------------------------------------------- decoding


def _short(exc: BaseException, limit: int = 120) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f} MP"


def _register_heif() -> None:
    """pillow-heif's opener, added to Pillow once (importing libheif costs ~50 ms)."""
    try:
        import pillow_heif
    except ImportError:
        return  # then HEIF is missing from Image.OPEN and _open says it cannot be decoded
    pillow_heif.register_heif_opener()


def _open(data: bytes, fmt: str, name: str) -> ImageFile.ImageFile:
    """Parse the header with the one plugin the magic bytes selected.

    The plugin factory is called directly (as ``Image.open`` does) so that the size limits applied
    afterwards are ours, not Pillow's process-wide ``MAX_IMAGE_PIXELS``.
    """
    if fmt not in Image.OPEN:
        Image.init()
    if fmt == "HEIF" and fmt not in Image.OPEN:
        _register_heif()
    entry = Image.OPEN.get(fmt)
    if entry is None:
        raise ImageDecodeError(f"{name} images cannot be decoded on this installation")
    factory: Callable[[Any, str], ImageFile.ImageFile] = entry[0]
    accept = entry[1]
    if accept is not None:
        verdict = accept(data[:16])
        if isinstance(verdict, str):  # the plugin's own "support not installed"
            raise ImageDecodeError(f"{name} images cannot be decoded on this installation")
        if not verdict:
            raise ImageDecodeError(f"{name} header is corrupt or uses an unsupported variant")
    try:
        return factory(io.BytesIO(data), "")
    except _PILLOW_ERRORS as exc:
        raise ImageDecodeError(f"{name} header is truncated or corrupt ({_short(exc)})") from exc
    except MemoryError as exc:
        raise ImageDecodeError(f"{name} header asks for too much memory") from exc


def _count_frames(im: ImageFile.ImageFile) -> int:
    try:
        frames = int(getattr(im, "n_frames", 1))
    except _PILLOW_ERRORS as exc:
        raise ImageDecodeError(
            f"{im.format} frame table is truncated or corrupt ({_short(exc)})"
        ) from exc
    if frames > 1:
        try:
            im.seek(0)
        except _PILLOW_ERRORS as exc:
            raise ImageDecodeError(f"{im.format} first frame is corrupt ({_short(exc)})") from exc
    return max(frames, 1)


def _orientation(exif: Image.Exif | None) -> int:
    if exif is None:
        return 1
    try:
        value = int(exif.get(_TAG_ORIENTATION, 1))
    except (TypeError, ValueError):
        return 1
    return value if value in _ORIENTATION_TRANSPOSE else 1


def _read_exif(im: Image.Image) -> Image.Exif | None:
    """EXIF from the header; corrupt EXIF is ignored rather than rejecting the picture."""
    try:
        return im.getexif()
    except Exception:
        return None


def _scale_to_uint8(arr: np.ndarray[Any, Any], *, integer_depth: int | None) -> Image.Image:
    """Map a single-channel high-depth array to 8-bit L (float32 work, in place)."""
    if integer_depth is not None:
        return Image.fromarray((arr >> (integer_depth - 8)).astype(np.uint8))
    values = arr.astype(np.float32)  # a copy; the operations below reuse it
    np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    lo = float(values.min()) if values.size else 0.0
    hi = float(values.max()) if values.size else 0.0
    if lo >= 0.0 and hi <= 1.0 and arr.dtype.kind == "f":
        values *= 255.0
    elif lo >= 0.0 and hi <= 255.0:
        pass
    elif lo >= 0.0 and hi <= 65535.0 and arr.dtype.kind in "iu":
        values /= 257.0
    elif hi > lo:
        values -= lo
        values *= 255.0 / (hi - lo)
    else:
        values[...] = 0.0
    np.rint(values, out=values)
    np.clip(values, 0, 255, out=values)
    return Image.fromarray(values.astype(np.uint8))


def _composite_on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return _scale_to_uint8(np.asarray(im), integer_depth=16).convert("RGB")
    if mode in ("I", "F"):
        return _scale_to_uint8(np.asarray(im), integer_depth=None).convert("RGB")
    if mode == "La":  # premultiplied alpha: on white, out = luma + (255 - alpha)
        luma, alpha = (np.asarray(band, dtype=np.uint16) for band in im.split())
        flat = np.clip(luma + (255 - alpha), 0, 255).astype(np.uint8)
        return Image.fromarray(flat).convert("RGB")
    if mode == "RGBa":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA") or (
        mode in ("P", "L", "RGB", "1") and im.info.get("transparency") is not None
    ):
        return _composite_on_white(im)
    if mode in ("P", "L", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return im.convert("RGB")
    raise ImageDecodeError(f"unsupported colour mode {mode!r}")


def _reducible(im: Image.Image) -> bool:
    return im.mode in _REDUCIBLE and im.info.get("transparency") is None


def _decode_cost(im: ImageFile.ImageFile, draft_size: tuple[int, int] | None, is_jpeg: bool) -> int:
    """Bytes the decode of `im` (header read, JPEG draft chosen) takes at its peak."""
    width, height = im.size
    pixels = width * height
    stored = pixels * _STORED_BYTES.get(im.mode, 4)
    alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or im.info.get("transparency") is not None
    per_pixel = _CONVERT_BYTES.get(im.mode, _ALPHA_CONVERT_BYTES if alpha else _OTHER_CONVERT_BYTES)
    if draft_size is None or is_jpeg or not _reducible(im):
        return stored + pixels * per_pixel
    factor = _draft_factor((width, height), (min(draft_size), min(draft_size)))
    premultiplied = pixels * 4 if im.mode in ("RGBA", "LA") else 0  # Image.reduce's copy
    return stored + premultiplied + (pixels // (factor * factor)) * per_pixel


def _draft_factor(size: tuple[int, int], target: tuple[int, int]) -> int:
    """Largest integer reduction that keeps ``size`` at least ``target`` on both sides."""
    return max(1, min(size[0] // target[0], size[1] // target[1]))


def decode_image(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    draft_size: tuple[int, int] | None = None,
    budget: PixelBudget | None = None,
    budget_wait: float = BUDGET_WAIT,
) -> DecodedImage:
    """Decode untrusted image bytes into an upright RGB image.

    ``max_pixels`` bounds ``width * height`` as declared in the header, checked before any pixel
    data is decoded. ``draft_size`` (width, height) lets large images decode at a reduced size that
    is still at least ``draft_size`` (cheap for JPEG, which decodes at 1/2, 1/4 or 1/8 scale); the
    reported ``width``/``height`` stay the full, upright dimensions; other formats are reduced
    before their colour conversion.

    The decode holds its estimated memory in ``budget`` (the process-wide one by default) and waits
    at most ``budget_wait`` seconds for it, else raises
    :class:`imagedex.ingest.pixel_budget.DecodeBusyError`.

    Raises :class:`ImageDecodeError` for every input that is not a supported, intact image.
    """
    if max_pixels < 1:
        raise ValueError("max_pixels must be positive")
    if draft_size is not None and (len(draft_size) != 2 or draft_size[0] < 1 or draft_size[1] < 1):
        raise ValueError("draft_size must be two positive integers (width, height)")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("data must be bytes")
    data = bytes(data)
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")

    found = _sniff_format(data)
    if found is None:
        raise ImageDecodeError(f"not an image (looks like {_looks_like(data)})")
    fmt, name = found
    if fmt not in ALLOWED_FORMATS:
        raise ImageDecodeError(
            f"unsupported image format {name}; supported formats: {SUPPORTED_NAMES}"
        )

    if fmt == "JPEG":
        check_jpeg(data)
    im = _open(data, fmt, name)
    try:
        return _decode_opened(
            im,
            fmt,
            name,
            max_pixels=max_pixels,
            draft_size=draft_size,
            budget=budget or process_budget(),
            budget_wait=budget_wait,
        )
    except ImageDecodeError:
        raise
    except MemoryError as exc:
        raise ImageDecodeError(f"{name} image needs too much memory to decode") from exc
    except _PILLOW_ERRORS as exc:
        raise ImageDecodeError(
            f"{name} image data is truncated or corrupt ({_short(exc)})"
        ) from exc
    finally:
        im.close()


def _decode_opened(
    im: ImageFile.ImageFile,
    fmt: str,
    name: str,
    *,
    max_pixels: int,
    draft_size: tuple[int, int] | None,
    budget: PixelBudget,
    budget_wait: float,
) -> DecodedImage:
    real_format = im.format or fmt
    if real_format not in ALLOWED_FORMATS:
        raise ImageDecodeError(
            f"unsupported image format {real_format}; supported formats: {SUPPORTED_NAMES}"
        )
    width, height = im.size
    if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE:
        raise ImageDecodeError(
            f"{name} declares impossible dimensions {width}×{height} "
            f"(each side must be 1 to {MAX_SIDE} pixels)"
        )
    pixels = width * height
    if pixels > max_pixels:
        raise ImageDecodeError(
            f"image is too large: {width}×{height} = {pixels:,} pixels "
            f"({_megapixels(pixels)}) exceeds the limit of {max_pixels:,} pixels "
            f"({_megapixels(max_pixels)}); this protects against decompression bombs"
        )

    frames = _count_frames(im)
    is_jpeg = real_format in ("JPEG", "MPO")
    exif = None
    if is_jpeg:
        # JPEG EXIF sits in the header, and the draft (whose target depends on the
        # orientation) must be chosen before the pixels are decoded.
        exif = _read_exif(im)
        swaps = _orientation(exif) in _SWAPS_AXES
        if draft_size is not None:
            # Draft sizes are in stored (pre-rotation) pixels.
            im.draft("RGB", (draft_size[1], draft_size[0]) if swaps else draft_size)
    # Only the header is read so far (after a JPEG draft, im.size is the reduced size).
    with budget.reserve(_decode_cost(im, draft_size, is_jpeg), budget_wait):
        im.load()
        if not is_jpeg:
            # Other formats may keep EXIF after the pixel data (PNG eXIf): decode first so
            # that a truncated file fails here rather than inside the forgiving EXIF reader.
            exif = _read_exif(im)
        orientation = _orientation(exif)
        swaps = orientation in _SWAPS_AXES
        # Some plugins (e.g. TIFF) can only tell the real frame size after load.
        if im.size[0] * im.size[1] > max_pixels:
            raise ImageDecodeError(
                f"image is too large: decoded frame {im.size[0]}×{im.size[1]} exceeds the limit "
                f"of {max_pixels:,} pixels ({_megapixels(max_pixels)})"
            )
        source: Image.Image = im
        factor = 1
        if draft_size is not None and not is_jpeg:
            target = (draft_size[1], draft_size[0]) if swaps else draft_size
            factor = _draft_factor(im.size, target)
            if factor > 1 and _reducible(im):
                source = im.reduce(factor)  # before the conversion, which then costs little
                factor = 1
        result = _to_rgb(source)
        if factor > 1:
            result = result.reduce(factor)
        transpose = _ORIENTATION_TRANSPOSE.get(orientation)
        if transpose is not None:
            result = result.transpose(transpose)
        if result is im:
            result = im.copy()

    out_w, out_h = (height, width) if swaps else (width, height)
    return DecodedImage(
        image=result,
        width=out_w,
        height=out_h,
        format=real_format,
        content_type=ALLOWED_FORMATS[real_format],
        frames=frames,
        taken_at=_taken_at(exif),
        camera=_camera(exif),
        gps=_gps(exif),
    )


# --------------------------------------------------------------------------- EXIF metadata


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", " ").strip()
    return cleaned or None


def _sub_ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:
        return {}


def _taken_at(exif: Image.Exif | None) -> str | None:
    if exif is None:
        return None
    sub = _sub_ifd(exif, _IFD_EXIF)
    for raw, offset in (
        (sub.get(_TAG_DATETIME_ORIGINAL), sub.get(_TAG_OFFSET_TIME_ORIGINAL)),
        (exif.get(_TAG_DATETIME), None),
    ):
        iso = _exif_datetime(_text(raw), _text(offset))
        if iso is not None:
            return iso
    return None


def _exif_datetime(raw: str | None, offset: str | None) -> str | None:
    """``"2021:06:01 12:30:45"`` -> ``"2021-06-01T12:30:45"`` (with offset when known)."""
    from datetime import datetime

    if not raw:
        return None
    text = raw[:19]
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = datetime.strptime(text, pattern)
        except ValueError:
            continue
        iso = moment.isoformat()
        if offset and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
            iso += offset
        return iso
    return None


def _camera(exif: Image.Exif | None) -> str | None:
    if exif is None:
        return None
    make = _text(exif.get(_TAG_MAKE))
    model = _text(exif.get(_TAG_MODEL))
    if make and model and model.lower().startswith(make.lower()):
        return model
    parts = [part for part in (make, model) if part]
    return " ".join(parts) if parts else None


def _dms_to_degrees(value: object) -> float | None:
    try:
        parts = [float(part) for part in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not parts or len(parts) > 3 or not all(math.isfinite(p) for p in parts):
        return None
    degrees = 0.0
    for part, divisor in zip(parts, (1.0, 60.0, 3600.0), strict=False):
        degrees += part / divisor
    return degrees


def _gps(exif: Image.Exif | None) -> dict[str, float] | None:
    if exif is None:
        return None
    gps = _sub_ifd(exif, _IFD_GPS)
    if not gps:
        return None
    lat = _dms_to_degrees(gps.get(_GPS_LAT))
    lon = _dms_to_degrees(gps.get(_GPS_LON))
    if lat is None or lon is None:
        return None
    if (_text(gps.get(_GPS_LAT_REF)) or "N").upper().startswith("S"):
        lat = -lat
    if (_text(gps.get(_GPS_LON_REF)) or "E").upper().startswith("W"):
        lon = -lon
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return {"lat": round(lat, 7), "lon": round(lon, 7)}
