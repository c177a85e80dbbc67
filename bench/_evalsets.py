"""The evaluation sets in ``../shared/eval``, read in place (never copied)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
DEFAULT_EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"


@dataclass(frozen=True)
class Pair:
    stem: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class EvalSet:
    name: str
    soft: bool  # ground truth is a soft alpha matte (meta.json: soft_alpha)
    pairs: tuple[Pair, ...]


def load_set(root: Path, limit: int | None) -> EvalSet:
    meta_file = root / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    images = sorted(p for p in (root / "images").iterdir() if p.is_file())
    pairs = tuple(Pair(p.stem, p, root / "masks" / f"{p.stem}.png") for p in images)
    return EvalSet(root.name, bool(meta.get("soft_alpha", False)), pairs[:limit])


def find_sets(eval_dir: Path, names: Sequence[str] | None, limit: int | None) -> list[EvalSet]:
    available = sorted(
        d.name for d in eval_dir.iterdir() if (d / "images").is_dir() and (d / "masks").is_dir()
    )
    unknown = sorted(set(names or ()) - set(available))
    if unknown:
        raise SystemExit(f"unknown eval set(s) {unknown}; {eval_dir} has {available}")
    return [load_set(eval_dir / n, limit) for n in (names or available)]


def read_mask(path: Path) -> U8:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def spread(es: EvalSet, n: int | None) -> EvalSet:
    """``n`` pairs evenly spaced over the set (sorted by name), so that a subsample covers
    every scene of a video set rather than the first few."""
    if n is None or n >= len(es.pairs):
        return es
    step = len(es.pairs) / n
    return EvalSet(es.name, es.soft, tuple(es.pairs[int(i * step)] for i in range(n)))
