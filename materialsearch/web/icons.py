"""Draw the app's PNG icons and favicon.ico from the design of static/favicon.svg (a blue rounded square with a
white magnifier), with Pillow. Run from the repository root: ``python -m materialsearch.web.icons``; the files it
writes are committed (tests/test_install.py checks they are what this script draws).

- ``icon-192.png``, ``icon-512.png``: the "any" icons, the rounded square as in the SVG (transparent corners);
- ``icon-maskable-512.png``: full-bleed blue, the magnifier inside the central safe zone (a circle of 40 % radius)
  so that any mask a launcher applies keeps it whole;
- ``apple-touch-icon.png`` (180): full-bleed and opaque (iOS rounds the corners itself and shows no transparency);
- ``static/favicon.ico``: 16, 32 and 48 px, for browsers and tools that ask for /favicon.ico.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

BLUE = (37, 99, 235, 255)  # #2563eb, the SVG's fill (and the app's accent)
WHITE = (255, 255, 255, 255)
SUPERSAMPLE = 4  # drawn this many times larger, then reduced: smooth edges
STATIC = Path(__file__).resolve().parents[2] / "static"


def _magnifier(draw: ImageDraw.ImageDraw, unit: float, dx: float, dy: float) -> None:
    """The SVG's glyph on its 32-unit grid: a circle (14,14) r7 and a handle (19,19)→(25,25), both 3 wide."""
    width = 3 * unit
    cx, cy, r = dx + 14 * unit, dy + 14 * unit, 7 * unit
    draw.ellipse([cx - r - width / 2, cy - r - width / 2, cx + r + width / 2, cy + r + width / 2], fill=WHITE)
    draw.ellipse([cx - r + width / 2, cy - r + width / 2, cx + r - width / 2, cy + r - width / 2], fill=BLUE)
    x0, y0, x1, y1 = dx + 19 * unit, dy + 19 * unit, dx + 25 * unit, dy + 25 * unit
    draw.line([x0, y0, x1, y1], fill=WHITE, width=round(width))
    for x, y in ((x0, y0), (x1, y1)):  # round caps
        draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=WHITE)


def draw_icon(size: int, full_bleed: bool = False, glyph_scale: float = 1.0) -> Image.Image:
    """One icon ``size`` px square. ``full_bleed``: an opaque square (maskable, Apple); ``glyph_scale``: the
    magnifier's size relative to the SVG's, centred on the SVG's centre."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if full_bleed:
        draw.rectangle([0, 0, big, big], fill=BLUE)
    else:
        draw.rounded_rectangle([0, 0, big - 1, big - 1], radius=big * 8 / 32, fill=BLUE)
    unit = big / 32 * glyph_scale
    offset = big / 2 - 16 * unit  # the grid's centre (16,16) at the icon's centre
    _magnifier(draw, unit, offset, offset)
    return image.resize((size, size), Image.LANCZOS)


def icons() -> dict[str, bytes]:
    """Each file's path under static/ → its bytes."""
    made = {
        "icons/icon-192.png": draw_icon(192),
        "icons/icon-512.png": draw_icon(512),
        "icons/icon-maskable-512.png": draw_icon(512, full_bleed=True, glyph_scale=0.72),
        "icons/apple-touch-icon.png": draw_icon(180, full_bleed=True, glyph_scale=0.85).convert("RGB"),
    }
    files = {}
    for name, image in made.items():
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        files[name] = out.getvalue()
    out = io.BytesIO()
    draw_icon(48).save(out, "ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    files["favicon.ico"] = out.getvalue()
    return files


def main() -> None:
    for name, data in icons().items():
        (STATIC / name).write_bytes(data)
        print(f"static/{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
