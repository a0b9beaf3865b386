"""Draw the patient app's tab-bar icons (81x81 PNG, grey and teal) without an
image library: shapes are tested per pixel at 4x4 supersampling and written
with zlib. Run once after changing a shape; the PNGs are committed.

    .venv/bin/python scripts/make_tab_icons.py
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

SIZE = 81
SS = 4
OUT = Path(__file__).resolve().parent.parent / "frontend/patient/src/static/tab"
COLOURS = {"": (0x8A, 0x9A, 0xA6), "-active": (0x0B, 0x8A, 0x83)}

Shape = Callable[[float, float], bool]


def in_poly(pts: list[tuple[float, float]]) -> Shape:
    def f(x: float, y: float) -> bool:
        inside = False
        j = len(pts) - 1
        for i, (xi, yi) in enumerate(pts):
            xj, yj = pts[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside

    return f


def circle(cx: float, cy: float, r: float) -> Shape:
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def ring(cx: float, cy: float, r: float, w: float) -> Shape:
    return lambda x, y: (r - w) ** 2 <= (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def rrect(x0: float, y0: float, x1: float, y1: float, r: float) -> Shape:
    def f(x: float, y: float) -> bool:
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return False
        cx = min(max(x, x0 + r), x1 - r)
        cy = min(max(y, y0 + r), y1 - r)
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

    return f


def union(*shapes: Shape) -> Shape:
    return lambda x, y: any(s(x, y) for s in shapes)


def minus(a: Shape, b: Shape) -> Shape:
    return lambda x, y: a(x, y) and not b(x, y)


def outline(outer: Shape, inner: Shape) -> Shape:
    return minus(outer, inner)


# Shapes on a 0..81 canvas.
HOME = outline(
    union(in_poly([(40.5, 10), (72, 38), (64, 38), (64, 70), (17, 70), (17, 38), (9, 38)])),
    union(in_poly([(40.5, 19), (58, 35), (58, 64), (23, 64), (23, 35)])),
)
HOME = union(HOME, rrect(34, 46, 47, 70, 2))
CHAT = union(
    outline(rrect(10, 14, 71, 58, 12), rrect(16, 20, 65, 52, 7)),
    in_poly([(22, 56), (34, 56), (20, 70)]),
    circle(28, 36, 3.6),
    circle(40.5, 36, 3.6),
    circle(53, 36, 3.6),
)
RECORDS = union(
    outline(rrect(14, 9, 67, 72, 8), rrect(20, 15, 61, 66, 4)),
    rrect(27, 27, 54, 32, 2.5),
    rrect(27, 39, 54, 44, 2.5),
    rrect(27, 51, 44, 56, 2.5),
)
ME = union(
    ring(40.5, 27, 15, 6),
    minus(
        outline(circle(40.5, 86, 34), circle(40.5, 86, 28)),
        lambda x, y: y > 72,
    ),
)
ICONS = {"home": HOME, "chat": CHAT, "records": RECORDS, "me": ME}


def png(shape: Shape, rgb: tuple[int, int, int]) -> bytes:
    rows = bytearray()
    step = 1 / SS
    for py in range(SIZE):
        rows.append(0)  # filter: none
        for px in range(SIZE):
            hits = sum(shape(px + (i + 0.5) * step, py + (j + 0.5) * step) for i in range(SS) for j in range(SS))
            rows.extend((*rgb, round(255 * hits / (SS * SS))))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, shape in ICONS.items():
        for suffix, rgb in COLOURS.items():
            (OUT / f"{name}{suffix}.png").write_bytes(png(shape, rgb))
    print(f"wrote {len(ICONS) * len(COLOURS)} icons to {OUT}")


if __name__ == "__main__":
    main()
