"""From a composite to file bytes, one branch per output format.

Raster formats go through ``io.encode``; the vector and layered formats (SVG, PSD) and
the clipping path (JPEG, TIFF) are built from the subject's outline.
"""

from __future__ import annotations

from cleancut.core import io, matte, photoshop, psd, vector
from cleancut.core.compose import Composite
from cleancut.core.types import U8, DecodedImage, OutputSpec
from cleancut.errors import InvalidOptions

_CLIP_FORMATS = ("jpeg", "tiff", "psd")


def render(
    composite: Composite,
    spec: OutputSpec,
    image: DecodedImage,
    *,
    original: U8 | None = None,
    layer: tuple[U8, U8] | None = None,
) -> bytes:
    """Encode ``composite`` as ``spec`` says.

    ``original`` is the source photo on the output canvas (when the layout kept it whole):
    a clipping-path JPEG or TIFF over a transparent background carries the photo itself,
    which is what the Photoshop-path workflow delivers, and the path does the clipping.
    ``layer`` is the (colour, matte) pair a PSD stores as a layer with a layer mask.
    """
    if spec.clip_path and spec.format not in _CLIP_FORMATS:
        raise InvalidOptions(
            f"a clipping path can be embedded in {', '.join(_CLIP_FORMATS)}, not {spec.format}"
        )
    if spec.mode == "mask":
        return _render_mask(composite, spec)
    icc = image.icc_profile
    match spec.format:
        case "svg":
            return _svg(composite.alpha, spec)
        case "psd":
            colour, alpha = layer if layer is not None else (image.rgb, composite.alpha)
            return psd.write_psd(
                colour,
                alpha,
                subpaths=vector.trace(alpha, threshold=spec.threshold),
                icc_profile=icc,
            )
        case "jpeg" | "tiff" if spec.clip_path:
            return _with_clip_path(composite, spec, original, icc)
        case _:
            return io.encode(
                composite.pixels,
                spec.format,
                quality=spec.quality,
                lossless=spec.lossless,
                background=spec.flatten_color,
                icc_profile=icc,
            )


def _render_mask(composite: Composite, spec: OutputSpec) -> bytes:
    if spec.format == "psd":
        raise InvalidOptions("mask output comes as an image or an SVG outline, not a PSD")
    if spec.format == "svg":
        return _svg(composite.alpha, spec)
    mask = (
        matte.binary(composite.alpha, spec.threshold)
        if spec.mask == "binary"
        else (composite.alpha)
    )
    return io.encode(mask, spec.format, quality=spec.quality, lossless=spec.lossless)


def _svg(alpha: U8, spec: OutputSpec) -> bytes:
    h, w = alpha.shape
    return vector.to_svg(vector.trace(alpha, threshold=spec.threshold), w, h)


def _with_clip_path(
    composite: Composite, spec: OutputSpec, original: U8 | None, icc: bytes | None
) -> bytes:
    w, h = composite.size
    irb = photoshop.path_resources(vector.trace(composite.alpha, threshold=spec.threshold), w, h)
    pixels = original if original is not None and composite.has_alpha else composite.pixels
    if spec.format == "tiff":
        return photoshop.tiff_with_paths(pixels, irb, icc_profile=icc)
    jpeg = io.encode(
        pixels, "jpeg", quality=spec.quality, background=spec.flatten_color, icc_profile=icc
    )
    return photoshop.embed_in_jpeg(jpeg, irb)
