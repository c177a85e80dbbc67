"""What the browser tests do to the page and read back from it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import expect

JOB_LIMIT_MS = 180_000  # a generous bound on one real-model job on a busy 2-core machine

#: Pixels of <img> elements through a canvas (the result images are same-origin blob: URLs).
_PIXELS = """async ([selector, points]) => {
  const img = document.querySelector(selector);
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  g.drawImage(img, 0, 0);
  return {
    size: [img.naturalWidth, img.naturalHeight],
    pixels: points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data)),
  };
}"""

#: A file handed to the page as a clipboard paste or a drop on the drop zone.
_HAND_OVER = """([kind, name, bytes]) => {
  const data = new DataTransfer();
  data.items.add(new File([new Uint8Array(bytes)], name, { type: "image/jpeg" }));
  const init = { bubbles: true, cancelable: true };
  if (kind === "paste") {
    document.dispatchEvent(new ClipboardEvent("paste", { ...init, clipboardData: data }));
  } else {
    const zone = document.getElementById("drop-zone");
    zone.dispatchEvent(new DragEvent("drop", { ...init, dataTransfer: data }));
  }
}"""

Point = tuple[int, int]


def checked_points(mask_path: Path, background: Point, subject: Point) -> tuple[Point, Point]:
    """Known points of a photo, checked against its ground-truth mask: clear background (0)
    and solid subject (255), far from any edge."""
    truth = Image.open(mask_path).convert("L")
    assert truth.getpixel(background) == 0, (mask_path, background)
    assert truth.getpixel(subject) == 255, (mask_path, subject)
    return background, subject


def upload(page: Any, *paths: Path) -> None:
    page.set_input_files("#file-input", [str(p) for p in paths])


def hand_over(page: Any, kind: str, path: Path) -> None:
    page.evaluate(_HAND_OVER, [kind, path.name, list(path.read_bytes())])


def wait_done(page: Any, count: int = 1) -> None:
    expect(page.locator(".item[data-state=done]")).to_have_count(count, timeout=JOB_LIMIT_MS)


def wait_shown(page: Any, text: str = "Showing") -> None:
    expect(page.locator("#stage-status")).to_contain_text(text, timeout=60_000)


def pixels(page: Any, selector: str, points: list[Point]) -> tuple[Point, list[list[int]]]:
    found = page.evaluate(_PIXELS, [selector, [list(p) for p in points]])
    return tuple(found["size"]), found["pixels"]


def choose_view(page: Any, view: str) -> None:
    page.locator(f"label[for=view-{view}]").click()


def download(page: Any, button: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.locator(button).click()
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def open_bytes(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def open_image(path: Path) -> Image.Image:
    return open_bytes(path.read_bytes())


def focus_by_tab(page: Any, predicate: str, limit: int = 60) -> None:
    """Press Tab until ``predicate`` (a JS expression over ``el``) holds for the focused element."""
    check = f"() => {{ const el = document.activeElement; return Boolean({predicate}); }}"
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(check):
            return
    raise AssertionError(f"Tab never reached an element where {predicate}")


#: The lowest text contrast on the page: every element with its own text, against the colour
#: behind it (translucent backgrounds blended up the tree; text over pictures and disabled
#: controls, which WCAG exempts, left out).
_CONTRAST = """() => {
  const rgba = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const luminance = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage !== "none") return null;
      const c = rgba(style.backgroundColor);
      if (c && c[3] > 0) layers.push(c);
      if (c && c[3] >= 1) break;
    }
    let colour = [255, 255, 255];
    for (const [r, g, b, a] of layers.reverse()) {
      colour = colour.map((c, i) => [r, g, b][i] * a + c * (1 - a));
    }
    return colour;
  };
  const worst = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility() || el.closest(":disabled, .visually-hidden")) continue;
    const style = getComputedStyle(el);
    if (Number(style.opacity) < 1) continue;
    const bg = behind(el);
    if (!bg) continue;
    const fg = rgba(style.color);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const what = `${el.tagName}.${el.className}`;
    worst.push([(hi + 0.05) / (lo + 0.05), what, el.textContent.trim().slice(0, 30)]);
  }
  return worst.sort((a, b) => a[0] - b[0]).slice(0, 5);
}"""


def lowest_contrast(page: Any) -> list[tuple[float, str, str]]:
    return [tuple(row) for row in page.evaluate(_CONTRAST)]
