"""The encoder comparison behind ``core/io_encode*.py``: every candidate on one real cut-out.

    .venv/bin/python bench/speed.py --encoders [--inputs "12 MP"]

The cut-out is cleancut's own output for the bench input (model, matte, straight-alpha
RGBA). Each encoder runs ``--runs`` times (a run over 10 s is not repeated); the table
gives the median, the file size and what a decode gives back (exact, or the mean error
on visible colour and the largest alpha error).
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

U8 = np.ndarray
Encoder = Callable[[U8], bytes]


def _pillow(fmt: str, **params: Any) -> Encoder:
    def run(rgba: U8) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgba).save(buf, fmt, **params)
        return buf.getvalue()

    return run


def _opencv_png(rgba: U8) -> bytes:
    import cv2

    bgra = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
    ok, out = cv2.imencode(".png", bgra, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return bytes(out)


def candidates() -> dict[str, Encoder]:
    from cleancut.core.io_encode import encode
    from cleancut.core.io_encode_png import deflate_backends, encode_png

    out: dict[str, Encoder] = {
        "PNG: cleancut writer (default)": partial(encode, fmt="png"),
    }
    for backend in deflate_backends():
        label = f"PNG: cleancut writer, {backend.name} level {backend.level}, 1 thread"
        out[label] = partial(encode_png, backend=backend, threads=1)
    out["PNG: Pillow level 6 (previous default)"] = _pillow("PNG", compress_level=6)
    out["PNG: Pillow level 1"] = _pillow("PNG", compress_level=1)
    out["PNG: OpenCV level 1"] = _opencv_png
    try:
        import pyvips

        def vips(rgba: U8) -> bytes:
            h, w = rgba.shape[:2]
            img = pyvips.Image.new_from_memory(rgba.data, w, h, 4, "uchar")
            return bytes(img.pngsave_buffer(compression=1, filter="up"))

        out["PNG: libvips level 1, Up filter"] = vips
    except (ImportError, OSError):
        pass
    out |= {
        "WebP lossless: method 0 (default)": partial(encode, fmt="webp"),
        "WebP lossless: method 1, quality 20 (previous)": _pillow(
            "WEBP", lossless=True, quality=20, method=1
        ),
        "WebP lossy q90: method 0 (default)": partial(encode, fmt="webp", lossless=False),
        "WebP lossy q90: method 4 (previous)": _pillow(
            "WEBP", quality=90, method=4, alpha_quality=100
        ),
        "AVIF q90: speed 9 (default)": partial(encode, fmt="avif"),
        "AVIF q90: speed 6 (libavif's default, previous)": _pillow("AVIF", quality=90),
    }
    return out


def fidelity(rgba: U8, data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        back = np.asarray(img.convert("RGBA")).astype(np.int16)
    visible = rgba[..., 3] > 0
    if np.array_equal(back[..., 3], rgba[..., 3]) and np.array_equal(
        back[..., :3][visible], rgba[..., :3][visible]
    ):
        return "exact"
    rgb_err = float(np.abs(back[..., :3] - rgba[..., :3])[rgba[..., 3] == 255].mean())
    alpha_err = int(np.abs(back[..., 3] - rgba[..., 3]).max())
    return f"colour MAE {rgb_err:.2f}, alpha max err {alpha_err}"


def encoder_table(rgba: U8, runs: int, log: Callable[[str], None]) -> list[str]:
    lines = [
        "| encoder | median s | vs previous default | size MB | decoded back |",
        "|---|---|---|---|---|",
    ]
    results: dict[str, tuple[float, int, str]] = {}
    for label, enc in candidates().items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            data = enc(rgba)
            times.append(time.perf_counter() - t0)
            if times[-1] > 10:
                break
        results[label] = (statistics.median(times), len(data), fidelity(rgba, data))
        log(f"encoder {label}: {results[label][0]:.3f} s")

    def previous(kind: str) -> float:
        return next(
            s for lbl, (s, _, _) in results.items() if lbl.startswith(kind) and "previous" in lbl
        )

    kinds = ("PNG", "WebP lossless", "WebP lossy", "AVIF")
    for label, (seconds, size, back) in results.items():
        kind = next(k for k in kinds if label.startswith(k))
        ratio = f"{previous(kind) / seconds:.1f}× faster"
        lines.append(f"| {label} | {seconds:.3f} | {ratio} | {size / 1e6:.2f} | {back} |")
    return lines


def cutout_of(path: str) -> U8:
    import cleancut

    result = cleancut.remove(path)
    rgba: U8 = result.rgba()
    return rgba


if __name__ == "__main__":
    rgba = cutout_of(sys.argv[1])
    print("\n".join(encoder_table(rgba, 3, lambda m: print(m, file=sys.stderr))))
