"""The emulator's drawing: a deterministic picture that shows what a request asked for, at an exact size.

A canvas has three bands: a yellow mark on top ("EMULATED · imagegate emulator"), the content in the middle
(the input images composed over a background colour derived from the prompt, or abstract shapes when there are
none, with the prompt's simple edits applied: rotation, greyscale, colour tint) and the prompt as a caption at
the bottom. Everything derives from the request, never from time or randomness, so equal requests give equal
PNG bytes. Pure and blocking: the provider runs ``render`` in a worker thread.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import random
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont, ImageOps

from imagegate import imaging
from imagegate.errors import InvalidImage

MARK_TEXT = "EMULATED · imagegate emulator"
CAPTION_LINES = 3

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

#: Tint targets; the last colour word in a prompt wins ("turn the red car blue" -> blue).
COLOURS: dict[str, RGB] = {
    "red": (220, 30, 30),
    "orange": (245, 130, 20),
    "yellow": (235, 205, 20),
    "gold": (215, 170, 30),
    "green": (30, 170, 60),
    "teal": (0, 128, 128),
    "cyan": (0, 200, 220),
    "blue": (30, 80, 230),
    "purple": (130, 50, 180),
    "violet": (140, 80, 210),
    "magenta": (220, 0, 160),
    "pink": (240, 100, 170),
    "brown": (130, 80, 40),
    "sepia": (160, 110, 60),
}

_COLOUR_RE = re.compile(r"\b(" + "|".join(COLOURS) + r")\b")
_GREYSCALE_RE = re.compile(
    r"\b(?:gr[ae]y[\s-]?scale|gr[ae]y|black[\s-]+(?:and|&)[\s-]+white|b\s*&\s*w|b/w|monochrome|desaturated?)\b"
)
_ROTATE_RE = re.compile(r"\brotat\w*(.{0,40})")
_ANGLE_RE = re.compile(r"(-?\d{2,3})\s*(?:°|º|deg\w*)?")
_CCW_RE = re.compile(r"counter[\s-]?clockwise|anti[\s-]?clockwise|\bccw\b|\bleft\b")
_CW_RE = re.compile(r"clockwise|\bcw\b|\bright\b")
_UPSIDE_DOWN_RE = re.compile(r"\bupside[\s-]down\b")

# Rotations as Pillow transposes (clockwise degrees; Pillow's names count counter-clockwise).
_TRANSPOSE = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class Edits:
    """The simple instructions the emulator understands in a prompt."""

    greyscale: bool = False
    rotate: int = 0  # clockwise degrees: 0, 90, 180 or 270
    tint: str | None = None  # a key of COLOURS

    def describe(self) -> list[str]:
        said = []
        if self.rotate:
            said.append(f"rotated {self.rotate}°")
        if self.greyscale:
            said.append("greyscale")
        if self.tint:
            said.append(f"{self.tint} tint")
        return said


def parse_edits(prompt: str) -> Edits:
    """Find rotation, greyscale and colour instructions in plain English, case-insensitively."""
    text = prompt.lower()
    colours = _COLOUR_RE.findall(text)
    return Edits(
        greyscale=_GREYSCALE_RE.search(text) is not None,
        rotate=_rotation(text),
        tint=colours[-1] if colours else None,
    )


def _rotation(text: str) -> int:
    if _UPSIDE_DOWN_RE.search(text):
        return 180
    match = _ROTATE_RE.search(text)
    if match is None:
        return 0
    window = match.group(1)
    counter = _CCW_RE.search(window) is not None
    angle = _ANGLE_RE.search(window)
    if angle is not None:
        degrees = int(angle.group(1))
        if degrees % 90:
            return 0  # only quarter turns keep the picture a rectangle; ignore what we cannot honour
        return (-degrees if counter else degrees) % 360
    if counter:
        return 270
    return 90  # "rotate it" / "rotate clockwise" / "rotate right": a quarter turn clockwise


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the mark, the content and the caption go on a ``width`` x ``height`` canvas."""

    width: int
    height: int
    mark: Box
    content: Box
    caption: Box
    mark_font_size: int
    caption_font_size: int


def layout(width: int, height: int) -> Layout:
    short = min(width, height)
    mark_h = max(20, round(short * 0.05))
    caption_size = max(12, round(short / 26))
    caption_h = CAPTION_LINES * _line_height(caption_size) + 2 * round(caption_size * 0.5)
    return Layout(
        width=width,
        height=height,
        mark=(0, 0, width, mark_h),
        content=(0, mark_h, width, height - caption_h),
        caption=(0, height - caption_h, width, height),
        mark_font_size=round(mark_h * 0.5),
        caption_font_size=caption_size,
    )


def _line_height(font_size: int) -> int:
    return round(font_size * 1.3)


@dataclass(frozen=True, slots=True)
class Sketch:
    """Everything ``render`` draws from."""

    width: int
    height: int
    prompt: str
    images: tuple[bytes, ...] = ()
    edits: Edits = Edits()
    label: str = ""  # right side of the mark, e.g. "16:9 · 1344x768"
    seed: int = 0


def render(sketch: Sketch) -> bytes:
    """The sketch as PNG bytes: RGB, exactly ``width`` x ``height``."""
    plan = layout(sketch.width, sketch.height)
    digest = hashlib.sha256(f"{sketch.seed}\x00{sketch.prompt}".encode()).digest()
    background = _background_colour(digest)
    canvas = Image.new("RGB", (sketch.width, sketch.height), background)
    canvas.paste(_content(sketch, plan, background, digest), plan.content[:2])
    _draw_mark(canvas, plan, sketch.label)
    _draw_caption(canvas, plan, sketch.prompt)
    return imaging.encode(canvas, "image/png")


def _background_colour(digest: bytes) -> RGB:
    hue = int.from_bytes(digest[:2], "big") / 65536
    saturation = 0.35 + digest[2] / 255 * 0.3
    value = 0.7 + digest[3] / 255 * 0.2
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _content(sketch: Sketch, plan: Layout, background: RGB, digest: bytes) -> Image.Image:
    left, top, right, bottom = plan.content
    size = (right - left, bottom - top)
    turned = sketch.edits.rotate in (90, 270)
    # Draw into the turned box so that the quarter turn lands exactly on the content size.
    box = (size[1], size[0]) if turned else size
    subject = Image.new("RGB", box, background)
    if sketch.images:
        _compose(subject, [_decode(data) for data in sketch.images])
    else:
        _draw_shapes(subject, background, digest)
    if sketch.edits.rotate:
        subject = subject.transpose(_TRANSPOSE[sketch.edits.rotate])
    if sketch.edits.greyscale:
        subject = subject.convert("L").convert("RGB")
    if sketch.edits.tint:
        subject = _tint(subject, COLOURS[sketch.edits.tint])
    return subject


def _decode(data: bytes) -> Image.Image:
    try:
        return imaging.open_image(data)
    except InvalidImage:
        # The real model reads formats Pillow cannot (HEIC); show a stand-in tile rather than fail the job.
        tile = Image.new("RGB", (512, 512), (90, 90, 90))
        draw = ImageDraw.Draw(tile)
        font = ImageFont.load_default(size=36)
        label = "image not\nshown by\nthe emulator"
        draw.multiline_text((256, 256), label, font=font, fill="white", anchor="mm", align="center")
        return tile


def _compose(subject: Image.Image, images: list[Image.Image]) -> None:
    """Paste every image, aspect kept, into the grid that shows them largest."""
    width, height = subject.size
    gutter = 0 if len(images) == 1 else max(4, round(min(width, height) * 0.02))
    cols, rows = _best_grid(images, width, height, gutter)
    cell_w = (width - gutter * (cols + 1)) // cols
    cell_h = (height - gutter * (rows + 1)) // rows
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        in_row = min(cols, len(images) - row * cols)
        # A short last row is centred rather than left-aligned.
        offset = (width - (in_row * cell_w + (in_row + 1) * gutter)) // 2
        fitted = _fit(image, cell_w, cell_h)
        x = offset + gutter + col * (cell_w + gutter) + (cell_w - fitted.width) // 2
        y = gutter + row * (cell_h + gutter) + (cell_h - fitted.height) // 2
        subject.paste(fitted, (x, y), fitted if fitted.mode == "RGBA" else None)


def _best_grid(images: list[Image.Image], width: int, height: int, gutter: int) -> tuple[int, int]:
    best: tuple[float, int, int] | None = None
    for cols in range(1, len(images) + 1):
        rows = math.ceil(len(images) / cols)
        cell_w = (width - gutter * (cols + 1)) / cols
        cell_h = (height - gutter * (rows + 1)) / rows
        if cell_w < 1 or cell_h < 1:
            continue
        shown = sum(_fitted_area(im.width, im.height, cell_w, cell_h) for im in images)
        if best is None or shown > best[0]:
            best = (shown, cols, rows)
    return (best[1], best[2]) if best else (1, len(images))


def _fitted_area(w: int, h: int, box_w: float, box_h: float) -> float:
    scale = min(box_w / w, box_h / h)
    return w * h * scale * scale


def _fit(image: Image.Image, box_w: int, box_h: int) -> Image.Image:
    scale = min(box_w / image.width, box_h / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _draw_shapes(subject: Image.Image, background: RGB, digest: bytes) -> None:
    """Abstract art for a text-to-image request: a gradient and translucent shapes, all from the prompt."""
    width, height = subject.size
    rng = random.Random(digest)
    shade = _mix(background, (0, 0, 0), 0.35)
    ramp = Image.linear_gradient("L").resize((width, height))
    subject.paste(Image.composite(Image.new("RGB", subject.size, shade), subject, ramp))
    layer = Image.new("RGBA", subject.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    hue, _, _ = colorsys.rgb_to_hsv(*(c / 255 for c in background))
    short = min(width, height)
    for _ in range(6):
        r, g, b = colorsys.hsv_to_rgb((hue + rng.uniform(0.25, 0.75)) % 1, rng.uniform(0.4, 0.8), 0.95)
        fill = (round(r * 255), round(g * 255), round(b * 255), 150)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.08, 0.25) * short
        shape = (cx - radius, cy - radius, cx + radius, cy + radius)
        if rng.random() < 0.5:
            draw.ellipse(shape, fill=fill)
        else:
            draw.rounded_rectangle(shape, radius=radius * 0.2, fill=fill)
    subject.paste(Image.alpha_composite(subject.convert("RGBA"), layer).convert("RGB"))


def _tint(image: Image.Image, colour: RGB) -> Image.Image:
    # A duotone keeps the picture's light and shade while every pixel takes the asked-for hue.
    dark = _mix(colour, (0, 0, 0), 0.85)
    light = _mix(colour, (255, 255, 255), 0.6)
    return ImageOps.colorize(image.convert("L"), black=dark, white=light, mid=colour)


def _mix(a: RGB, b: RGB, amount: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * amount),
        round(a[1] + (b[1] - a[1]) * amount),
        round(a[2] + (b[2] - a[2]) * amount),
    )


def _draw_mark(canvas: Image.Image, plan: Layout, label: str) -> None:
    left, top, right, bottom = plan.mark
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((left, top, right - 1, bottom - 1), fill=(255, 208, 0))
    font = ImageFont.load_default(size=plan.mark_font_size)
    pad = plan.mark_font_size
    middle = (top + bottom) / 2
    draw.text((left + pad, middle), MARK_TEXT, font=font, fill=(0, 0, 0), anchor="lm")
    if label and draw.textlength(MARK_TEXT + label, font=font) + 4 * pad < right - left:
        draw.text((right - pad, middle), label, font=font, fill=(0, 0, 0), anchor="rm")


def _draw_caption(canvas: Image.Image, plan: Layout, prompt: str) -> None:
    left, top, right, bottom = plan.caption
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((left, top, right - 1, bottom - 1), fill=(24, 24, 28))
    font = ImageFont.load_default(size=plan.caption_font_size)
    pad = round(plan.caption_font_size * 0.5)
    text = _printable(" ".join(prompt.split())) or "(no prompt)"
    lines = _wrap(text, font, (right - left) - 4 * pad, CAPTION_LINES)
    line_h = _line_height(plan.caption_font_size)
    first = (top + bottom) / 2 - (len(lines) - 1) * line_h / 2
    for number, line in enumerate(lines):
        draw.text(((left + right) / 2, first + number * line_h), line, font=font, fill="white", anchor="mm")


def _wrap(text: str, font: Font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap; a word wider than a line is cut, and what does not fit ends in an ellipsis.

    Linear in the text and bounded by what is shown: wrapping stops once there are more lines than fit, no text
    longer than a line can hold is ever measured, and a long word is cut by bisection. (It used to shorten a
    100,000-character word one character at a time, re-measuring it each time: minutes of CPU per image.)
    """
    capacity = _line_capacity(font, max_width)
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if len(lines) > max_lines:
            break
        candidate = f"{current} {word}" if current else word
        if _fits(candidate, font, max_width, capacity):
            current = candidate
            continue
        if current:
            lines.append(current)
        while len(lines) <= max_lines and not _fits(word, font, max_width, capacity):
            cut = _fitting_prefix(word[: capacity + 1], font, max_width)
            lines.append(word[:cut])
            word = word[cut:]
        current = word[: capacity + 1]
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and font.getlength(last + "…") > max_width:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + "…"]


def _fits(text: str, font: Font, max_width: float, capacity: int) -> bool:
    return len(text) <= capacity and font.getlength(text) <= max_width


def _line_capacity(font: Font, max_width: float) -> int:
    """The most characters a line can hold: the width over the narrowest glyph (at least one character)."""
    narrowest = min((font.getlength(c) for c in _NARROW_GLYPHS), default=1.0)
    return max(1, int(max_width / max(narrowest, 1.0)) + 1)


#: The narrowest printable ASCII glyphs of common fonts; _printable() has replaced anything the font lacks.
_NARROW_GLYPHS = "il.,:;'|!`ij"


def _fitting_prefix(word: str, font: Font, max_width: float) -> int:
    """The longest prefix of ``word`` (at least one character) no wider than ``max_width``, by bisection."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(word[:middle]) <= max_width:
            low = middle
        else:
            high = middle - 1
    return low


def _printable(text: str) -> str:
    """The text in glyphs the built-in font has: accents dropped (é -> e), anything else shown as '?'."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    plain = plain.translate(_ASCII_LOOKALIKES)
    return "".join(c if c == " " or _font_has(c) else "?" for c in plain)


# The font lacks the multiplication sign, dashes, the minus sign and the no-break space.
_ASCII_LOOKALIKES = str.maketrans({"\u00d7": "x", "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " "})


@lru_cache(maxsize=4096)
def _font_has(char: str) -> bool:
    # Pillow's default font is a subset; a glyph it lacks renders as the same box as a known-missing one.
    font = ImageFont.load_default(size=16)
    return bytes(font.getmask(char)) != bytes(font.getmask("\ufffe"))
