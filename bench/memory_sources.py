"""Captioned pictures for the caption memory, besides Open Clip Art: emoji and icon sets that ship in
Debian and npm, each picture captioned by its name.

    apt-get install fonts-noto-color-emoji librsvg2-bin
    npm install --prefix ICONS @iconify-json/twemoji@1.2.5 ...   (the versions in ICONIFY_SETS)

Emoji are drawn in many styles for the same few thousand everyday things (animals, food, tools,
vehicles, flags), so a drawing of a frog finds frogs in six styles instead of one. Every picture is
rendered once to a PNG under the cache folder, on white, so the memory's builder reads every source
the same way and caches its features per file.
"""

from __future__ import annotations

import json
import logging
import subprocess
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)
NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # Debian fonts-noto-color-emoji (OFL-1.1)
# npm packages of the Iconify project: name -> (version, licence of the pictures)
ICONIFY_SETS = {
    "twemoji": ("1.2.5", "CC-BY-4.0"),
    "fluent-emoji-flat": ("1.2.6", "MIT"),
    "noto": ("1.2.9", "Apache-2.0"),
    "emojione": ("1.2.3", "CC-BY-4.0"),
    "streamline-emojis": ("1.2.4", "CC-BY-4.0"),
    "game-icons": ("1.2.4", "CC-BY-3.0"),  # silhouettes, like much of Open Clip Art
}
NUMBERED = {"game-icons"}  # whose numbered names ("abstract-094") are series, not captions
EMOJI_BLOCKS = [(0x1F300, 0x1FAFF), (0x2600, 0x27BF), (0x2300, 0x23FF), (0x2B00, 0x2BFF)]
# variants that repeat a picture under a longer name, and letter or number tiles whose name says nothing of the picture
SKIP = ("skin-tone", "-button", "keycap", "regional-indicator")


def noto_emoji(out_dir: Path) -> list[dict]:
    """Every single-code-point emoji the font draws, captioned by its Unicode name ("dog face")."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(NOTO_FONT), 109)  # the one size the bitmap font holds
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for lo, hi in EMOJI_BLOCKS:
        for cp in range(lo, hi + 1):
            name = unicodedata.name(chr(cp), "")
            # skin tones and their swatches (plain coloured squares), and flag letters, picture nothing
            if not name or "SKIN TONE" in name or name.startswith(("REGIONAL INDICATOR", "EMOJI MODIFIER", "EMOJI COMPONENT")):
                continue
            png = out_dir / f"{cp:x}.png"
            if not png.exists():
                if font.getmask(chr(cp)).getbbox() is None:
                    continue
                im = Image.new("RGBA", (136, 128), (255, 255, 255, 0))
                ImageDraw.Draw(im).text((0, 0), chr(cp), font=font, embedded_color=True)
                if im.getbbox() is None or im.getextrema()[3][1] == 0:
                    continue
                im.crop(im.getbbox()).save(png)
            entries.append({"png": str(png), "text": name.lower(), "source": "noto-color-emoji"})
    return entries


def iconify(package_dir: Path, set_name: str, out_dir: Path) -> list[dict]:
    """The pictures of one ``@iconify-json/<set>`` package, rendered to 224 px PNGs by rsvg-convert."""
    data = json.loads((package_dir / "icons.json").read_text())
    width, height = data.get("width", 16), data.get("height", 16)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, todo = [], []
    for key, icon in data["icons"].items():
        if key.isdigit() or any(s in key for s in SKIP) or (set_name in NUMBERED and any(c.isdigit() for c in key)):
            continue
        png = out_dir / f"{key}.png"
        if not png.exists():
            box = f'{icon.get("left", 0)} {icon.get("top", 0)} {icon.get("width", width)} {icon.get("height", height)}'
            todo.append((png, f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                              f'viewBox="{box}" width="224" height="224">{icon["body"]}</svg>'))
        entries.append({"png": str(png), "text": key.replace("-", " "), "source": set_name})

    def render(job: tuple[Path, str]) -> None:
        png, svg = job
        done = subprocess.run(["rsvg-convert", "-b", "white", "-o", str(png)], input=svg.encode(), capture_output=True)
        if done.returncode:  # a picture rsvg cannot draw is left out, not half-written
            png.unlink(missing_ok=True)
            log.warning("%s:%s left out: rsvg-convert: %s", set_name, png.stem, done.stderr.decode(errors="replace")[:200])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(render, todo))
    return [e for e in entries if Path(e["png"]).exists()]


def iconify_package(root: Path, set_name: str) -> Path:
    """``root`` is an ``npm install --prefix`` folder (or its ``node_modules/@iconify-json``); checks the pinned version."""
    for base in (root / "node_modules" / "@iconify-json", root):
        package = base / set_name
        if (package / "icons.json").exists():
            version = json.loads((package / "package.json").read_text())["version"]
            want = ICONIFY_SETS[set_name][0]
            if version != want:
                raise SystemExit(f"@iconify-json/{set_name} is {version} in {package}; the memory is built from {want}")
            return package
    raise SystemExit(f"@iconify-json/{set_name} not found under {root}: npm install --prefix {root} "
                     + " ".join(f"@iconify-json/{n}@{v}" for n, (v, _) in ICONIFY_SETS.items()))
