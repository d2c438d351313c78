#!/usr/bin/env python3
"""Draws the Wegent Device icons. Run: python3 icons/generate.py  (needs Pillow)

Outputs (committed, so builds need no Python):
  icons/app-1024.png                   source for `tauri icon` (the app icon set)
  icons/tray/<state>-<bar>.png         tray icons, 32 px and @2x 64 px
     state: online | busy | offline | attention | paused
     bar:   light (dark glyph for light panels) | dark (light glyph for dark panels)
            | template (macOS: black + alpha only; state shown by the badge *shape*)

Every state differs by badge shape as well as colour, so it reads without colour too:
  online = filled dot, busy = filled dot with ring (full), offline = hollow ring,
  attention = triangle with "!", paused = two bars.
"""
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent
SS = 8  # supersampling factor

COLOURS = {"online": (34, 170, 85), "busy": (230, 160, 0),
           "offline": (150, 150, 150), "attention": (220, 50, 47), "paused": (60, 110, 220)}
GLYPH = {"light": (40, 40, 40), "dark": (235, 235, 235), "template": (0, 0, 0)}


def w_glyph(d, size, colour, width):
    """A bold 'W' (Wegent) as a polyline."""
    s = size
    pts = [(0.12 * s, 0.22 * s), (0.30 * s, 0.80 * s), (0.50 * s, 0.38 * s),
           (0.70 * s, 0.80 * s), (0.88 * s, 0.22 * s)]
    d.line(pts, fill=colour, width=width, joint="curve")
    r = width / 2
    for x, y in (pts[0], pts[-1]):
        d.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def badge(d, size, state, colour, cut):
    """Status badge in the lower right corner; `cut` clears a ring around it first."""
    s = size
    cx, cy, r = 0.76 * s, 0.76 * s, 0.21 * s
    ring = 0.06 * s
    d.ellipse([cx - r - ring, cy - r - ring, cx + r + ring, cy + r + ring], fill=cut)
    if state == "online":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif state == "busy":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=int(0.06 * s))
        ri = r * 0.55
        d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=colour)
    elif state == "offline":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=int(0.07 * s))
    elif state == "paused":
        bar_w, gap = r * 0.55, r * 0.3
        for x0 in (cx - gap - bar_w, cx + gap):
            d.rectangle([x0, cy - r, x0 + bar_w, cy + r], fill=colour)
    else:  # attention: triangle with an exclamation mark cut out
        tri = [(cx, cy - r * 1.05), (cx + r * 1.1, cy + r * 0.9), (cx - r * 1.1, cy + r * 0.9)]
        d.polygon(tri, fill=colour)
        bar_w = 0.035 * s
        d.rectangle([cx - bar_w, cy - r * 0.45, cx + bar_w, cy + r * 0.3], fill=cut)
        d.ellipse([cx - bar_w, cy + r * 0.45, cx + bar_w, cy + r * 0.45 + 2 * bar_w], fill=cut)


def tray_icon(state, bar, px):
    size = px * SS
    glyph = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    w_glyph(ImageDraw.Draw(glyph), size, GLYPH[bar] + (255,), int(0.13 * size))
    # The badge punches a transparent ring into the glyph so it stays legible on any panel.
    mask = Image.new("L", (size, size), 0)
    badge(ImageDraw.Draw(mask), size, state, 0, 255)
    cut = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    glyph = Image.composite(cut, glyph, mask)
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    colour = GLYPH["template"] if bar == "template" else COLOURS[state]
    badge(ImageDraw.Draw(layer), size, state, colour + (255,), (0, 0, 0, 0))
    img = Image.alpha_composite(glyph, layer)
    return img.resize((px, px), Image.LANCZOS)


def app_icon(px=1024):
    size = px * 2
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    m = int(0.06 * size)
    d.rounded_rectangle([m, m, size - m, size - m], radius=int(0.2 * size), fill=(30, 64, 175, 255))
    inner = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    w_glyph(ImageDraw.Draw(inner), size, (255, 255, 255, 255), int(0.11 * size))
    inner = inner.resize((int(size * 0.7),) * 2, Image.LANCZOS)
    img.alpha_composite(inner, (int(size * 0.15), int(size * 0.16)))
    return img.resize((px, px), Image.LANCZOS)


def main():
    tray = OUT / "tray"
    tray.mkdir(exist_ok=True)
    for state in COLOURS:
        for bar in GLYPH:
            tray_icon(state, bar, 32).save(tray / f"{state}-{bar}.png")
            tray_icon(state, bar, 64).save(tray / f"{state}-{bar}@2x.png")
    app_icon().save(OUT / "app-1024.png")
    print("icons written to", OUT)


if __name__ == "__main__":
    main()
