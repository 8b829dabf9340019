"""Constructed libraries for the duplicate tests and the precision report: real photos from the shared sample
media, and Pillow-made copies, resizes, recompressions, format conversions, light edits and crops of them.

Everything is written into a tmp dir; the shared media are only read.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

# Distinct real photos (camera, phone, web and document pictures), decoded fast (no HEIC: ~1 s each).
PHOTOS = (
    "jpg_orient1.jpg",
    "jpeg_nikon_d5000_gps.jpeg",
    "jpg_pixel7pro_progressive_gps.jpg",
    "jpg_unicode_fin de journée.jpg",
    "jpg_no_exif.jpg",
    "webp_lossy_photo.webp",
    "avif_photo.avif",
    "jpg_grayscale_concert.jpg",
    "bmp_24bit.bmp",
    "tif_lzw_rgb.tif",
    "png_exif_orientation3.png",
    "livephoto_iphone6s_train.jpg",
    "jpg_pixel4xl_motionphoto_orient6.jpg",
    "ocr_ad_zh_en_numbers.jpg",
    "ocr_document_photo_zh.jpeg",
    "ocr_english_page.jpg",
    "ocr_gym_sign_phone_numbers.jpg",
    "ocr_vertical_classical_zh.png",
    "ocr_upside_down_exif3.jpg",
    "png_rgba_transparent.png",
    "webp_lossless.webp",
    "jpg_cmyk.jpg",
    "png_16bit_rgba.png",
    "png_palette_trns.png",
    "gif_animated.gif",
)
BASE_SIDE = 640  # the library's originals: long side in px (small, so a scan of 75 files takes seconds)


def upright(path: Path, side: int = BASE_SIDE) -> Image.Image:
    """The picture at ``path`` as an upright RGB image with long side at most ``side``."""
    with Image.open(path) as image:
        image.draft("RGB", (side, side))
        picture = ImageOps.exif_transpose(image)
        if picture.mode in ("RGBA", "LA", "P", "I;16", "I"):
            picture = picture.convert("RGBA")
            flat = Image.new("RGB", picture.size, "white")
            flat.paste(picture, mask=picture.getchannel("A"))
            picture = flat
        picture = picture.convert("RGB")
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    return picture


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))), Image.LANCZOS)


def _crop(image: Image.Image, margin: float) -> Image.Image:
    dx, dy = round(image.width * margin), round(image.height * margin)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


# name → (file suffix, how the variant is made from the upright original). The "duplicate" kinds.
VARIANTS: dict[str, tuple[str, Callable[[Image.Image], Image.Image], dict]] = {
    "resize50": (".jpg", lambda im: _scaled(im, 0.5), {"quality": 90}),
    "resize75": (".jpg", lambda im: _scaled(im, 0.75), {"quality": 90}),
    "resize30": (".jpg", lambda im: _scaled(im, 0.3), {"quality": 85}),
    "q60": (".jpg", lambda im: im, {"quality": 60}),
    "q35": (".jpg", lambda im: im, {"quality": 35}),
    "png": (".png", lambda im: im, {}),
    "webp": (".webp", lambda im: im, {"quality": 70}),
    "brighter": (".jpg", lambda im: ImageEnhance.Brightness(im).enhance(1.15), {"quality": 90}),
    "resize50_q50": (".jpg", lambda im: _scaled(im, 0.5), {"quality": 50}),
}
# Crops: near-duplicates a viewer would call "the same photo, trimmed" (reported, not required to group).
CROPS: dict[str, tuple[str, Callable[[Image.Image], Image.Image], dict]] = {
    "crop3": (".jpg", lambda im: _crop(im, 0.03), {"quality": 90}),
    "crop10": (".jpg", lambda im: _crop(im, 0.10), {"quality": 90}),
}


def save(image: Image.Image, path: Path, options: dict) -> None:
    """Write ``image`` at ``path`` (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)


def duplicate_library(
    root: Path, media: Path, duplicated: int = 5, distinct: int = 20, crops: bool = False
) -> dict[str, list[Path]]:
    """``duplicated`` photos each with an original, a byte copy and every VARIANT (crops too if asked), plus
    ``distinct`` other photos alone. Returns photo name → its files (one file for the distinct ones)."""
    if duplicated + distinct > len(PHOTOS):
        raise ValueError(f"only {len(PHOTOS)} distinct photos are available")
    made: dict[str, list[Path]] = {}
    kinds = {**VARIANTS, **(CROPS if crops else {})}
    for number, name in enumerate(PHOTOS[: duplicated + distinct]):
        stem = f"p{number:02d}"
        picture = upright(media / name)
        original = root / "originals" / f"{stem}.jpg"
        save(picture, original, {"quality": 95})
        files = [original]
        if number < duplicated:
            copy = root / "copies" / f"{stem}_copy.jpg"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, copy)
            files.append(copy)
            for kind, (suffix, make, options) in kinds.items():
                target = root / "variants" / f"{stem}_{kind}{suffix}"
                save(make(picture), target, options)
                files.append(target)
        made[stem] = files
    return made


def same_scene_pairs(root: Path, media: Path) -> list[tuple[Path, Path]]:
    """Different photos of the same scene (negatives): two far-apart, overlapping-free views cut from one big
    photo, and the two halves of a burst-like shift. Each pair must NOT be grouped."""
    pairs = []
    for name in ("livephoto_iphone6s_train.jpg", "jpg_no_exif.jpg", "jpg_orient1.jpg"):
        picture = upright(media / name, side=1600)
        w, h = picture.size
        left = picture.crop((0, 0, w // 2, h * 3 // 4))
        right = picture.crop((w // 2, h // 4, w, h))
        shifted = picture.crop((w // 4, 0, w * 3 // 4 + w // 8, h * 3 // 4))
        for tag, view in (("left", left), ("right", right), ("shift", shifted)):
            save(view.resize((view.width // 2, view.height // 2)), root / "scenes" / f"{name}_{tag}.jpg", {})
        base = root / "scenes"
        pairs.append((base / f"{name}_left.jpg", base / f"{name}_right.jpg"))
        pairs.append((base / f"{name}_left.jpg", base / f"{name}_shift.jpg"))
    return pairs
