"""Image files for the CLI: 8/16-bit and float pixels, colour profiles, EXIF and resolution.

An archivist's 16-bit scan is read at 16 bits (Pillow for what it reads exactly,
imagecodecs for 16-bit colour PNG, tifffile for 16-bit colour and float TIFF) and written
back at 16 bits. A photo with an embedded ICC profile is converted to the working space,
sRGB, with LittleCMS (through imagecodecs, at any bit depth) and the result carries the
sRGB profile. EXIF orientation is applied; EXIF (orientation reset) and the resolution
travel to the result. Animated and multi-page images are refused: which frame to
colorize is the user's choice.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image, ImageOps, TiffImagePlugin

from colorize_backend.core.atomic_file import replaced_on_success
from colorize_backend.core.color import lab_to_pixels, lightness_of
from colorize_backend.core.errors import ColorizeError, ErrorCode

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF",
                  ".tiff": "TIFF", ".webp": "WEBP"}  # fmt: skip
SRGB = imagecodecs.cms_profile("srgb")
ORIENTATION = 0x0112
Image.MAX_IMAGE_PIXELS = None  # read_photo enforces its own limit, with a clear message


def refused(message: str) -> ColorizeError:
    return ColorizeError(ErrorCode.BAD_REQUEST, message)


@dataclass
class Photo:
    """Pixels [H, W, C] (u8, u16 or float32 in [0, 1]) in sRGB, and what travels with them."""

    pixels: np.ndarray
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)  # what was done on reading (for the log)


@dataclass
class WriteOptions:
    png_compression: int = 1  # zlib level: 1 is fast, 9 is small
    quality: int = 92  # JPEG and WebP


# ------------------------------------------------------------------ reading


def read_photo(path: Path, max_pixels: int = 400_000_000) -> Photo:
    """Decode an image file into a Photo; a clear ColorizeError for anything unusable,
    refused from its header when decoding and colorizing it would not fit in memory."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise refused(f"{Path(path).name} cannot be read: {_reason(exc)}") from None
    return decode_photo(Path(path).name, data, max_pixels)


def decode_photo(name: str, data: bytes, max_pixels: int = 400_000_000) -> Photo:
    """An image file's bytes (named `name` in messages) decoded into a Photo."""
    try:
        if not data:
            raise refused(f"{name} is empty (0 bytes): not an image")
        try:
            image = Image.open(io.BytesIO(data))
        except Image.UnidentifiedImageError:
            if not data.startswith(TIFF_MAGIC):
                raise
            return _read_tiff_only(name, data, max_pixels)  # e.g. float RGB, which Pillow lacks
        with image:
            frames = getattr(image, "n_frames", 1)
            _check_size(name, image.width, image.height, frames, _layout(image), max_pixels)
            photo = _decode(image, data)
    except ColorizeError:
        raise
    except MemoryError:
        raise refused(f"{name} does not fit in the memory this machine has free") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise refused(f"{name} cannot be read as an image: {_reason(exc)}") from None
    return photo


TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
FLOAT_COPIES = 3  # float samples: as decoded, scaled to [0, 1], and clipped


def _reason(exc: BaseException) -> str:
    """An exception as a sentence for the user: no object reprs of in-memory files."""
    text = str(exc) or type(exc).__name__
    return re.sub(r"<[^<>]* object at 0x[0-9a-f]+>", "the file", text)


def _layout(image: Image.Image) -> tuple[int, int]:
    """(channels, bytes per sample) as decoded, from the header alone."""
    if isinstance(image, TiffImagePlugin.TiffImageFile):
        bits = image.tag_v2.get(258, (8,))  # BitsPerSample
        bits = bits if isinstance(bits, tuple) else (bits,)
        return len(bits), max(1, max(bits) // 8)
    if image.mode in ("F", "I"):
        return 1, 4
    if image.mode.startswith("I;16"):
        return 1, 2
    return len(image.getbands()), 1


def _check_size(
    name: str, width: int, height: int, frames: int, layout: tuple[int, int], limit: int
) -> None:
    """Refuse, before decoding, what has several frames, too many pixels, or would not fit in
    the memory this process can have (the samples, their working copies and the result)."""
    if frames > 1:
        raise refused(
            f"{name} has {frames} frames (animated or multi-page): export the frame you want as "
            "a single image"
        )
    pixels, megapixels = width * height, width * height / 1e6
    if pixels > limit:
        raise refused(
            f"{name} is {width}x{height} ({megapixels:.0f} MP); at most {limit / 1e6:.0f} MP"
        )
    channels, sample = layout
    copies = FLOAT_COPIES if sample == 4 else 1
    needed = pixels * (channels * sample * copies + 4 * sample + 4)  # + RGBA result, lightness
    free = memory_available()
    if needed > free:
        raise refused(
            f"{name} is {width}x{height} ({megapixels:.0f} MP, {channels} x {8 * sample}-bit): "
            f"decoding and colorizing it needs about {needed / 1e9:.1f} GB, more than the "
            f"{free / 1e9:.1f} GB free here; scale it down or split it into tiles"
        )


def memory_available() -> int:
    """Bytes this process may still allocate: the system's available memory, and no more than
    its own address-space limit (ulimit -v) leaves."""
    import resource

    try:
        meminfo = Path("/proc/meminfo").read_text()
        free = int(re.search(r"MemAvailable:\s+(\d+) kB", meminfo).group(1)) * 1024  # type: ignore[union-attr]
    except (OSError, AttributeError):
        free = 1 << 62  # unknown: only the address-space limit counts
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
        except OSError:
            used = 0
        free = min(free, soft - used)
    return max(free, 0)


def _read_tiff_only(name: str, data: bytes, max_pixels: int) -> Photo:
    """A TIFF that Pillow cannot open (float RGB/RGBA, unusual layouts), through tifffile."""
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        page = tiff.pages.first
        height, width = page.imagelength, page.imagewidth
        layout = (page.samplesperpixel, page.dtype.itemsize if page.dtype else 4)
        _check_size(name, width, height, len(tiff.pages), layout, max_pixels)
        orientation = page.tags.valueof(ORIENTATION) or 1
    pixels, icc, dpi = _tiff(data)
    pixels = _upright(pixels, orientation)
    notes = [f"{pixels.dtype} TIFF"]
    if icc:
        pixels = _to_srgb(pixels, icc, notes)
    return Photo(pixels, None, _dpi(dpi), notes)


def _decode(image: Image.Image, data: bytes) -> Photo:
    icc = image.info.get("icc_profile")
    dpi = image.info.get("dpi")
    exif = image.getexif()
    notes: list[str] = []
    if image.format == "PNG" and _png_is_16_bit_colour(data):
        pixels = _upright(imagecodecs.png_decode(data), exif.get(ORIENTATION, 1))
        notes.append("16-bit colour PNG")
    elif image.format == "TIFF" and not _pillow_reads_exactly(image):
        pixels, icc, dpi = _tiff(data)
        pixels = _upright(pixels, exif.get(ORIENTATION, 1))
        notes.append(f"{pixels.dtype} TIFF")
    else:
        transposed = ImageOps.exif_transpose(image) or image
        pixels = _pillow_pixels(transposed, notes)
    if icc:
        pixels = _to_srgb(pixels, icc, notes)
    return Photo(pixels, _exif_bytes(exif), _dpi(dpi), notes)


_PILLOW_EXACT = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I", "F"}


def _pillow_reads_exactly(tiff: Image.Image) -> bool:
    """Pillow reads 16-bit colour TIFFs as 8-bit RGB: those go to tifffile."""
    if not isinstance(tiff, TiffImagePlugin.TiffImageFile):
        return True
    bits = tiff.tag_v2.get(258, (8,))  # BitsPerSample
    deep_colour = tiff.mode in ("RGB", "RGBA") and max(bits) > 8
    return tiff.mode in _PILLOW_EXACT and not deep_colour


def _pillow_pixels(image: Image.Image, notes: list[str]) -> np.ndarray:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        array = np.asarray(image)
    elif mode.startswith("I;16"):
        array = np.asarray(image).astype(np.uint16)
        notes.append("16-bit grey")
    elif mode == "I":  # Pillow's 32-bit integers: 16-bit PNG/TIFF data
        values = np.asarray(image)
        array = np.clip(values, 0, 65535).astype(np.uint16)
        notes.append("16-bit grey")
    elif mode == "F":
        array = _unit_float(np.asarray(image, dtype=np.float32))
        notes.append("float grey")
    else:
        keeps_alpha = "A" in image.getbands() or "transparency" in image.info
        array = np.asarray(image.convert("RGBA" if keeps_alpha else "RGB"))
    return array[..., None] if array.ndim == 2 else array


def _unit_float(values: np.ndarray) -> np.ndarray:
    """Float samples scaled to [0, 1]: as they are when they already are, else from 8 or 16
    bits (float TIFFs come both ways)."""
    top = float(np.nanmax(values)) if values.size else 1.0
    scale = 1.0 if top <= 1.0 + 1e-3 else 255.0 if top <= 255.5 else 65535.0
    return np.clip(np.nan_to_num(values / np.float32(scale)), 0.0, 1.0).astype(np.float32)


def _png_is_16_bit_colour(data: bytes) -> bool:
    """IHDR bit depth 16 and colour type 2 (RGB) or 6 (RGBA): what Pillow reads as 8 bits."""
    return len(data) > 26 and data[24] == 16 and data[25] in (2, 6)


def _tiff(data: bytes) -> tuple[np.ndarray, bytes | None, tuple | None]:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        page = tiff.pages.first
        pixels = page.asarray()
        icc = page.tags.valueof(34675)
        resolution = page.resolution if page.resolutionunit else None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.dtype.kind == "f":
        pixels = _unit_float(pixels.astype(np.float32))
    elif pixels.dtype != np.uint8:
        pixels = pixels.astype(np.uint16)
    return pixels, icc, resolution


PROFILE_ADVICE = (
    "convert the file to sRGB first (in GIMP: Image > Color Management > Convert to Color "
    "Profile), or strip its profile (exiftool -icc_profile= FILE) to read it as sRGB"
)


def _to_srgb(pixels: np.ndarray, icc: bytes, notes: list[str]) -> np.ndarray:
    """Convert pixels described by an ICC profile into sRGB (alpha is kept as it is).

    Grey pixels may carry an RGB profile (Pillow's convert('L') keeps the source's sRGB
    profile): they are read as neutral colours through that profile, then reduced to grey.
    """
    grey = pixels.shape[2] <= 2
    space = icc[16:20] if len(icc) >= 20 else b""
    colour = pixels[..., 0] if grey else pixels[..., :3]  # LittleCMS wants grey as [H, W]
    through_rgb = grey and space == b"RGB "
    if through_rgb:
        colour = np.repeat(pixels[..., :1], 3, axis=2)
    if not grey and space not in (b"RGB ", b""):
        raise refused(
            f"its ICC profile describes {space.decode('latin-1').strip() or 'unknown'} data, "
            f"not RGB: {PROFILE_ADVICE}"
        )
    try:
        converted = imagecodecs.cms_transform(
            np.ascontiguousarray(colour), icc, SRGB,
            colorspace="gray" if grey and not through_rgb else "rgb", outcolorspace="rgb",
        )  # fmt: skip
    except Exception as exc:  # a damaged or unusual profile
        raise refused(f"its ICC profile cannot be used ({exc}): {PROFILE_ADVICE}") from None
    if grey:  # keep one grey channel: the converted colour's lightness, as neutral sRGB
        lightness = lightness_of(converted)
        converted = lab_to_pixels(lightness, np.zeros(lightness.shape + (2,), np.float32),
                                  converted.dtype)[..., :1]  # fmt: skip
    notes.append(
        "grey read through its RGB profile, converted to sRGB"
        if through_rgb
        else "converted from its ICC profile to sRGB"
    )
    if pixels.shape[2] in (2, 4):
        converted = np.concatenate([converted, pixels[..., -1:]], axis=-1)
    return converted.astype(pixels.dtype)


def _upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels [H, W, C] upright by an EXIF orientation, as Pillow's exif_transpose."""
    turns = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    turn = turns.get(orientation)
    return np.ascontiguousarray(turn(pixels)) if turn else pixels


def _exif_bytes(exif: Image.Exif) -> bytes | None:
    if not exif:
        return None
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1  # the pixels are already turned upright
    return exif.tobytes()


def _dpi(dpi) -> tuple[float, float] | None:
    if not dpi:
        return None
    try:
        return float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------ writing


def write_photo(path: Path, photo: Photo, options: WriteOptions = WriteOptions()) -> None:
    """Write pixels [H, W, 3 or 4] in the format the suffix names, with the sRGB profile,
    EXIF and resolution; 16-bit and float results stay 16-bit (PNG) or float (TIFF) where
    the format can hold them. Written to a temporary name first: no half-written file."""
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise refused(f"cannot write {path.name}: use .png, .jpg, .tif or .webp")
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = photo.pixels
    if pixels.dtype != np.uint8 and fmt in ("JPEG", "WEBP"):
        pixels = _to_u8(pixels)
    with replaced_on_success(path) as partial:
        if fmt == "TIFF" and pixels.dtype != np.uint8:
            _write_tiff(partial, pixels, photo)
        elif fmt == "PNG" and pixels.dtype != np.uint8:
            partial.write_bytes(_png_16(pixels, photo, options))
        else:
            _write_pillow(partial, pixels, photo, fmt, options)


def _to_u8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)


def _write_pillow(path: Path, pixels: np.ndarray, photo: Photo, fmt: str, options) -> None:
    image = Image.fromarray(pixels, {3: "RGB", 4: "RGBA"}[pixels.shape[2]])
    if fmt == "JPEG":
        image = image.convert("RGB")
    extra: dict = {"icc_profile": SRGB}
    if photo.exif:
        extra["exif"] = photo.exif
    if photo.dpi:
        extra["dpi"] = photo.dpi
    if fmt == "PNG":
        extra["compress_level"] = options.png_compression
    elif fmt in ("JPEG", "WEBP"):
        extra["quality"] = options.quality
    elif fmt == "TIFF":
        extra["compression"] = "tiff_deflate"
    image.save(path, fmt, **extra)


def _write_tiff(path: Path, pixels: np.ndarray, photo: Photo) -> None:
    import tifffile

    resolution = photo.dpi or (72.0, 72.0)
    tifffile.imwrite(
        path,
        pixels,
        photometric="rgb",
        extrasamples=["unassalpha"] if pixels.shape[2] == 4 else None,
        compression="zlib",
        iccprofile=SRGB,
        resolution=resolution,
        resolutionunit="inch",
    )


def _png_16(pixels: np.ndarray, photo: Photo, options: WriteOptions) -> bytes:
    """A 16-bit PNG (imagecodecs), with iCCP, pHYs and eXIf chunks added after IHDR."""
    if pixels.dtype != np.uint16:
        pixels = np.round(np.clip(pixels, 0, 1) * 65535).astype(np.uint16)
    encoded = imagecodecs.png_encode(pixels, level=options.png_compression)
    chunks = [_chunk(b"iCCP", b"sRGB\0\0" + imagecodecs.zlib_encode(SRGB))]
    if photo.dpi:
        per_metre = [round(v / 0.0254) for v in photo.dpi]
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    if photo.exif:
        chunks.append(_chunk(b"eXIf", photo.exif.removeprefix(b"Exif\0\0")))
    header_end = 8 + 25  # signature + IHDR chunk
    return bytes(encoded[:header_end]) + b"".join(chunks) + bytes(encoded[header_end:])


def _chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
