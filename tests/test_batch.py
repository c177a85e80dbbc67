"""Batch planning (which file goes where) and running, with the tiny real model."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleancut.batch import Batch, Job, plan_jobs
from cleancut.core.predict import ModelPool
from cleancut.core.types import Options, OutputSpec
from cleancut.errors import InvalidOptions
from tests import tinymodels

CUTOUT = Options(model="tiny")
MASK = Options(model="tiny", output=OutputSpec(mode="mask"))
WEBP = Options(model="tiny", output=OutputSpec(format="webp"))


def write_square(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tinymodels.square_image()).save(path)
    return path


def plan(
    inputs: list[str | Path],
    output: str | Path | None = None,
    *,
    options: Options = CUTOUT,
    explicit_format: bool = False,
) -> list[Job]:
    out = None if output is None else str(output)
    return plan_jobs([str(p) for p in inputs], out, options, explicit_format=explicit_format)


def dests(jobs: list[Job]) -> dict[str, str]:
    return {j.src: j.dest for j in jobs}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """photos/a.png, photos/a.jpg (same stem), photos/sub/b.webp, photos/sub/deeper/c.PNG,
    plus files that are not images."""
    root = tmp_path / "photos"
    write_square(root / "a.png")
    write_square(root / "a.jpg")
    write_square(root / "sub" / "b.webp")
    write_square(root / "sub" / "deeper" / "c.PNG")
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "data.json").write_text("{}")
    return root


# ---------------------------------------------------------------- planning: one file


def test_single_file_default_name_sits_beside_the_input(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.jpg")
    assert dests(plan([src])) == {str(src): str(tmp_path / "x.cutout.png")}
    assert dests(plan([src], options=MASK)) == {str(src): str(tmp_path / "x.mask.png")}
    assert dests(plan([src], options=WEBP)) == {str(src): str(tmp_path / "x.cutout.webp")}


def test_single_file_format_follows_the_output_suffix(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.png")
    for name, fmt in [("o.webp", "webp"), ("o.JPG", "jpeg"), ("o.jpeg", "jpeg"), ("o.png", "png")]:
        (job,) = plan([src], tmp_path / name)
        assert (job.dest, job.format, job.error) == (str(tmp_path / name), fmt, None)


def test_explicit_format_wins_over_the_suffix(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.png")
    (job,) = plan([src], tmp_path / "o.bin", options=WEBP, explicit_format=True)
    assert job.format == "webp"
    assert job.error is None


def test_unknown_output_suffix_without_format_is_an_error(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.png")
    with pytest.raises(InvalidOptions, match=r"cannot tell the output format.*--format"):
        plan([src], tmp_path / "o.xyz")


def test_single_file_into_a_folder(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.png")
    (tmp_path / "existing").mkdir()
    (job,) = plan([src], tmp_path / "existing")
    assert job.dest == str(tmp_path / "existing" / "x.cutout.png")
    (job,) = plan([src], f"{tmp_path / 'new'}/")
    assert job.dest == str(tmp_path / "new" / "x.cutout.png")


def test_single_file_to_stdout(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.png")
    assert plan([src], "-") == [Job(str(src), "-", "png")]


def test_missing_single_file_is_a_job_error_not_an_exception(tmp_path: Path) -> None:
    (job,) = plan([tmp_path / "nope.png"])
    assert job.error == "no such file"


def test_output_equal_to_the_input_is_refused(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.png")
    (job,) = plan([src], src, explicit_format=True)
    assert job.error == "output would overwrite the input"
    # The same file spelled differently is still the same file.
    (job,) = plan([src], tmp_path / "." / "x.png")
    assert job.error == "output would overwrite the input"


# ---------------------------------------------------------------- planning: stdin


def test_stdin_plans(tmp_path: Path) -> None:
    assert plan(["-"]) == [Job("-", "-", "png")]
    assert plan(["-"], "-") == [Job("-", "-", "png")]
    out = tmp_path / "o.webp"
    assert plan(["-"], out) == [Job("-", str(out), "webp")]
    with pytest.raises(InvalidOptions, match="cannot tell the output format"):
        plan(["-"], tmp_path / "o.txt")


def test_stdin_cannot_be_mixed_with_files(tmp_path: Path) -> None:
    src = write_square(tmp_path / "x.png")
    with pytest.raises(InvalidOptions, match="stdin"):
        plan(["-", src])


def test_several_inputs_cannot_go_to_stdout_or_to_a_file(tmp_path: Path) -> None:
    a = write_square(tmp_path / "a.png")
    b = write_square(tmp_path / "b.png")
    with pytest.raises(InvalidOptions, match="stdout"):
        plan([a, b], "-")
    with pytest.raises(InvalidOptions, match="must be a folder"):
        plan([a, b], a)
    # A name that looks like an image file is not silently turned into a folder.
    with pytest.raises(InvalidOptions, match="must be a folder"):
        plan([a, b], tmp_path / "new.png")
    assert not (tmp_path / "new.png").exists()


# ---------------------------------------------------------------- planning: folders


def test_folder_is_mirrored_below_the_output_folder(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs = plan([tree], out)
    assert all(j.error is None and j.format == "png" for j in jobs)
    assert dests(jobs) == {
        str(tree / "a.jpg"): str(out / "a.png"),
        # same stem in one folder: the second one keeps its own suffix in the name
        str(tree / "a.png"): str(out / "a.png.png"),
        str(tree / "sub" / "b.webp"): str(out / "sub" / "b.png"),
        str(tree / "sub" / "deeper" / "c.PNG"): str(out / "sub" / "deeper" / "c.png"),
    }


def test_folder_default_output_is_a_sibling_named_by_mode(tree: Path) -> None:
    cutouts = dests(plan([tree]))
    assert cutouts[str(tree / "sub" / "b.webp")] == str(tree.parent / "photos-cutout/sub/b.png")
    assert all(d.startswith(str(tree.parent / "photos-cutout")) for d in cutouts.values())
    masks = dests(plan([tree], options=MASK))
    assert masks[str(tree / "sub" / "b.webp")] == str(tree.parent / "photos-mask/sub/b.png")


def test_folder_output_format_sets_the_suffix(tree: Path, tmp_path: Path) -> None:
    jobs = plan([tree], tmp_path / "out", options=WEBP)
    assert {Path(j.dest).suffix for j in jobs} == {".webp"}
    assert {j.format for j in jobs} == {"webp"}


def test_several_folders_each_get_their_own_subfolder(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_square(other / "z.png")
    single = write_square(tmp_path / "single.jpg")
    out = tmp_path / "out"
    d = dests(plan([tree, other, single], out))
    assert d[str(other / "z.png")] == str(out / "other" / "z.png")
    assert d[str(tree / "sub" / "b.webp")] == str(out / "photos" / "sub" / "b.png")
    assert d[str(single)] == str(out / "single.cutout.png")


def test_missing_and_empty_inputs_become_job_errors(tree: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    jobs = plan([tree, tmp_path / "gone.png", empty], tmp_path / "out")
    errors = {j.src: j.error for j in jobs if j.error}
    assert errors == {
        str(tmp_path / "gone.png"): "no such file or folder",
        str(empty): "no images found in this folder",
    }
    assert sum(j.error is None for j in jobs) == 4


def test_output_folder_inside_the_input_is_not_scanned(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A previous run's outputs live inside the input folder; they must not become inputs,
    # however the two folders are spelled (relative, absolute, with "..").
    write_square(tree / "out" / "old.png")
    monkeypatch.chdir(tree.parent)
    spellings = ["photos/out", str(tree / "out"), "photos/sub/../out", "./photos/out/"]
    for out in spellings:
        for src in ("photos", str(tree)):
            jobs = plan([src], out)
            assert len(jobs) == 4, (src, out)
            assert not any(Path(j.src).name == "old.png" for j in jobs), (src, out)


def test_output_folder_equal_to_the_input_folder_is_refused(tree: Path) -> None:
    with pytest.raises(InvalidOptions, match="input folder itself"):
        plan([tree], tree)
    with pytest.raises(InvalidOptions, match="input folder itself"):
        plan([tree, tree.parent / "nothing"], tree.parent)


def test_output_folder_above_the_input_folder_still_finds_the_images(tree: Path) -> None:
    jobs = plan([tree / "sub"], tree)
    assert dests(jobs) == {
        str(tree / "sub" / "b.webp"): str(tree / "b.png"),
        str(tree / "sub" / "deeper" / "c.PNG"): str(tree / "deeper" / "c.png"),
    }


def test_same_stem_files_given_one_by_one_get_distinct_outputs(tmp_path: Path) -> None:
    a_png = write_square(tmp_path / "a.png")
    a_jpg = write_square(tmp_path / "a.jpg")
    jobs = plan([a_png, a_jpg])
    assert all(j.error is None for j in jobs)
    assert len({j.dest for j in jobs}) == 2


def test_an_output_never_overwrites_another_input(tmp_path: Path) -> None:
    # x.png's default output is x.cutout.png, which is itself an input of this batch.
    x = write_square(tmp_path / "x.png")
    x_cut = write_square(tmp_path / "x.cutout.png")
    errors = {j.src: j.error for j in plan([x, x_cut])}
    assert errors[str(x)] is not None
    assert "overwrite another input" in errors[str(x)]
    assert errors[str(x_cut)] is None


# ---------------------------------------------------------------- running


def alpha_of(path_or_bytes: Path | bytes) -> np.ndarray:
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as img:
        assert img.mode == "RGBA"
        return np.asarray(img.getchannel("A"))


def assert_square_cutout(alpha: np.ndarray) -> None:
    assert alpha.shape == (150, 200)
    assert alpha[48:102, 58:142].min() >= 250  # inside the bright box (50, 40)-(150, 110)
    outside = np.ones_like(alpha, dtype=bool)
    outside[32:118, 42:158] = False
    assert alpha[outside].max() <= 5


def test_batch_runs_good_files_past_bad_ones(
    tiny_pool: ModelPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_square(tmp_path / "in" / "good.png")
    bad = tmp_path / "in" / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    jobs = plan([tmp_path / "in", tmp_path / "missing.jpg"], tmp_path / "out")
    batch = Batch(jobs, CUTOUT, tiny_pool.get("tiny"))
    assert batch.run() == 2
    assert (batch.done, batch.failed) == (1, 2)
    assert_square_cutout(alpha_of(tmp_path / "out" / "in" / "good.png"))
    assert not (tmp_path / "out" / "in" / "bad.png").exists()
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"error: {bad}: ") for line in err), err
    assert f"error: {tmp_path / 'missing.jpg'}: no such file or folder" in err
    assert err[-1].startswith("cleancut: 1 done, 2 failed in ")
    assert good.exists()


def test_quiet_batch_still_prints_errors_but_no_summary(
    tiny_pool: ModelPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_square(tmp_path / "a.png")
    jobs = plan([a, tmp_path / "missing.png"], tmp_path / "out")
    assert Batch(jobs, CUTOUT, tiny_pool.get("tiny"), quiet=True).run() == 1
    err = capsys.readouterr().err
    assert "error: " in err
    assert "done" not in err
    assert (tmp_path / "out" / "a.cutout.png").is_file()


def test_single_successful_job_prints_nothing(
    tiny_pool: ModelPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_square(tmp_path / "a.png")
    jobs = plan([src], tmp_path / "deep" / "er" / "a.webp")
    assert Batch(jobs, CUTOUT, tiny_pool.get("tiny")).run() == 0
    assert capsys.readouterr().err == ""
    with Image.open(tmp_path / "deep" / "er" / "a.webp") as img:
        assert img.format == "WEBP"
    # atomic writes leave no temporary files behind
    assert [p.name for p in (tmp_path / "deep" / "er").iterdir()] == ["a.webp"]


def test_jobs_that_failed_in_planning_need_no_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = plan([tmp_path / "a.png", tmp_path / "b.png"], tmp_path / "out")
    assert Batch(jobs, CUTOUT, None).run() == 2
    assert capsys.readouterr().err.count("no such file or folder") == 2


def test_unwritable_destination_is_reported_and_the_batch_goes_on(
    tiny_pool: ModelPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_square(tmp_path / "a.png")
    b = write_square(tmp_path / "b.png")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    jobs = [
        Job(str(a), str(tmp_path / "blocker" / "a.png"), "png"),
        Job(str(b), str(tmp_path / "ok" / "b.png"), "png"),
    ]
    assert Batch(jobs, CUTOUT, tiny_pool.get("tiny"), quiet=True).run() == 1
    assert f"error: {a}: " in capsys.readouterr().err
    assert (tmp_path / "ok" / "b.png").is_file()


def test_stdin_to_stdout(
    tiny_pool: ModelPool,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    buf = io.BytesIO()
    Image.fromarray(tinymodels.square_image()).save(buf, format="JPEG", quality=95)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(buf.getvalue())))
    assert Batch(plan(["-"]), CUTOUT, tiny_pool.get("tiny")).run() == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"\x89PNG\r\n\x1a\n")
    assert_square_cutout(alpha_of(out))


def test_empty_stdin_is_an_error(
    tiny_pool: ModelPool,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert Batch(plan(["-"]), CUTOUT, tiny_pool.get("tiny")).run() == 1
    captured = capsysbinary.readouterr()
    assert captured.out == b""
    assert b"error: -: stdin was empty" in captured.err


def test_outputs_get_the_usual_file_mode(tiny_pool: ModelPool, tmp_path: Path) -> None:
    import os
    import stat

    src = write_square(tmp_path / "a.png")
    dest = tmp_path / "out" / "a.png"
    old = os.umask(0o022)
    try:
        failed = Batch(
            [Job(str(src), str(dest), "png")],
            Options(model="tiny"),
            tiny_pool.get("tiny"),
            quiet=True,
        ).run()
    finally:
        os.umask(old)
    assert failed == 0
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
