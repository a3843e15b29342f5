"""Marks every local output as AI-made: an invisible watermark in the pixels and provenance metadata in the file.

The watermark is ``invisible-watermark``'s DWT-DCT method (the one Stable Diffusion XL ships with) carrying a
fixed 48-bit imagegate mark in the colour (U) channel; it needs at least 256x256 pixels and colour texture, and
survives PNG and 4:4:4 JPEG but not lossy WEBP's colour subsampling, so those images carry the metadata only. The
metadata is an XMP packet with IPTC's ``DigitalSourceType`` = ``trainedAlgorithmicMedia`` (the term C2PA
manifests and Google's SynthID-marked images use) plus plain PNG text chunks / EXIF ``Software``, so both
provenance tools and a casual ``exiftool`` say what made the image. No signed C2PA manifest is written: that
needs a certificate the operator would have to provide.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image
from PIL.PngImagePlugin import PngInfo

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

#: The 48 bits imagegate writes into the pixels: the ASCII of "igAI:1" (imagegate, AI-made, mark version 1).
MARK = b"igAI:1"
MARK_BITS = [bool(byte >> (7 - i) & 1) for byte in MARK for i in range(8)]
MIN_WATERMARK_SIDE = 256  # the DWT-DCT embedder refuses anything smaller
_MAX_BIT_ERRORS = 4  # of 48: tolerates light re-encoding; a random image matches with odds below 1 in 10^9

_SOFTWARE = "imagegate"
_EXIF_SOFTWARE = 0x0131
_EXIF_DESCRIPTION = 0x010E


@dataclass(frozen=True, slots=True)
class Provenance:
    model: str  # the checkpoint that made the image (Hugging Face id or directory name)
    seed: int


def xmp_packet(provenance: Provenance) -> bytes:
    """An XMP packet saying the image is AI-generated, by which model and seed."""
    model = escape(provenance.model, {'"': "&quot;"})
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:imagegate="https://imagegate.dev/ns/1.0/"\n'
        f'    Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"\n'
        f'    xmp:CreatorTool="{_SOFTWARE} ({model})"\n'
        f'    imagegate:Model="{model}"\n'
        f'    imagegate:Seed="{provenance.seed}"\n'
        '    imagegate:AIGenerated="True"/>\n'
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    ).encode()


def watermark(image: Image.Image) -> Image.Image:
    """``image`` with the imagegate mark in its pixels (unchanged when it is too small to carry one)."""
    if min(image.size) < MIN_WATERMARK_SIDE:
        return image
    import numpy as np
    from imwatermark import WatermarkEncoder  # type: ignore[import-untyped]

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", MARK_BITS)
    rgb = np.asarray(image.convert("RGB"))
    # the library works on OpenCV's BGR order; flip on the way in and out
    marked = encoder.encode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")
    return Image.fromarray(np.ascontiguousarray(marked[:, :, ::-1]))


def has_watermark(image: Image.Image) -> bool:
    """Whether ``image`` carries the imagegate mark (tolerating a few flipped bits)."""
    if min(image.size) < MIN_WATERMARK_SIDE:
        return False
    import numpy as np
    from imwatermark import WatermarkDecoder

    rgb = np.asarray(image.convert("RGB"))
    bits = WatermarkDecoder("bits", len(MARK_BITS)).decode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")
    errors = sum(bool(got) != want for got, want in zip(bits, MARK_BITS, strict=True))
    return errors <= _MAX_BIT_ERRORS


def encode(image: Image.Image, provenance: Provenance, mime_type: str, quality: int | None) -> bytes:
    """The watermarked image as PNG, JPEG or WEBP bytes with its provenance metadata."""
    marked = watermark(image.convert("RGB"))
    xmp = xmp_packet(provenance)
    description = f"AI-generated image (model: {provenance.model}, seed: {provenance.seed})"
    buf = io.BytesIO()
    if mime_type == "image/png":
        info = PngInfo()
        info.add_text("Software", _SOFTWARE)
        info.add_text("Description", description)
        info.add_text("DigitalSourceType", DIGITAL_SOURCE_TYPE)
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        marked.save(buf, format="PNG", pnginfo=info, compress_level=6)
        return buf.getvalue()
    exif = Image.Exif()
    exif[_EXIF_SOFTWARE] = _SOFTWARE
    exif[_EXIF_DESCRIPTION] = description
    options: dict[str, Any] = {"exif": exif.tobytes(), "xmp": xmp, "quality": 90 if quality is None else quality}
    if mime_type == "image/jpeg":
        # full-resolution colour (4:4:4): the usual 4:2:0 subsampling would blur the mark out of the U channel
        marked.save(buf, format="JPEG", subsampling=0, **options)
    elif mime_type == "image/webp":
        marked.save(buf, format="WEBP", method=4, **options)
    else:
        raise ValueError(f"cannot encode {mime_type!r}; supported: image/png, image/jpeg, image/webp")
    return buf.getvalue()


def read_provenance(data: bytes) -> dict[str, str]:
    """The provenance an encoded image declares: its XMP (``xmp``) and text chunks / EXIF, for checks and tools."""
    with Image.open(io.BytesIO(data)) as im:
        found: dict[str, str] = {}
        xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        if xmp:
            found["xmp"] = xmp.decode() if isinstance(xmp, bytes) else str(xmp)
        for key in ("Software", "Description", "DigitalSourceType"):
            if isinstance(im.info.get(key), str):
                found[key] = im.info[key]
        exif = im.getexif()
        if _EXIF_SOFTWARE in exif:
            found.setdefault("Software", str(exif[_EXIF_SOFTWARE]))
        if _EXIF_DESCRIPTION in exif:
            found.setdefault("Description", str(exif[_EXIF_DESCRIPTION]))
        return found
