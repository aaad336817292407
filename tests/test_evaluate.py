"""evaluate(): scores, report files, default model and folder, --pairs, every error, the CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio
from typer.testing import CliRunner

from facedenoise import runs
from facedenoise.cli import app
from facedenoise.errors import FaceDenoiseError
from facedenoise.evaluate import default_out_dir, evaluate
from facedenoise.imageio import read_image, write_image
from facedenoise.noise import add_gaussian_noise, noise_rng

REPORT_FILES = ("metrics.json", "per_image.csv", "samples.png", "psnr_gain.png", "report.html")
cli = CliRunner()


def make_prepared(data_dir: Path, faces: list[Path], test: int = 5, val: int = 2) -> Path:
    """A prepared dataset laid out as `facedenoise prepare` writes it, from real faces."""
    images = []
    for index, path in enumerate(faces[: test + val + 1]):
        split = "test" if index < test else "val" if index < test + val else "train"
        image_id = f"face{index:03d}"
        clean = read_image(path).pixels
        write_image(data_dir / "clean" / split / f"{image_id}.png", clean)
        if split != "train":
            noisy = add_gaussian_noise(clean, 0.3, noise_rng(42, image_id))
            write_image(data_dir / "noisy" / split / f"{image_id}.png", noisy)
        images.append({"id": image_id, "split": split})
    manifest = {"params": {"noise_factor": 0.3, "seed": 42}, "images": images}
    (data_dir / "manifest.json").write_text(json.dumps(manifest))
    return data_dir


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, sample_faces) -> Path:
    return make_prepared(tmp_path_factory.mktemp("prepared") / "data", sample_faces)


@pytest.fixture(scope="module")
def report(prepared, tiny_run, tmp_path_factory):
    """One evaluation with two cheap baselines, shared by the report tests."""
    out = tmp_path_factory.mktemp("eval") / "report"
    return evaluate(model=tiny_run, data_dir=prepared, split="test", out=out,
                    baselines="gaussian,tv")


def test_report_files_exist(report):
    for name in REPORT_FILES:
        assert (report.out_dir / name).stat().st_size > 0, name
    assert set(report.files) == set(REPORT_FILES)


def test_csv_has_one_row_per_image(report):
    with open(report.out_dir / "per_image.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image"] for row in rows] == [f"face{i:03d}" for i in range(5)]
    assert set(rows[0]) == {"image"} | {
        f"{method}_{metric}" for method in ("input", "model", "gaussian", "tv")
        for metric in ("psnr", "ssim")
    }


def test_input_psnr_is_the_files_psnr(report, prepared):
    noisy = read_image(prepared / "noisy" / "test" / "face000.png").pixels
    clean = read_image(prepared / "clean" / "test" / "face000.png").pixels
    expected = peak_signal_noise_ratio(clean, noisy, data_range=1.0)
    assert report.input.psnr[0] == pytest.approx(expected, abs=1e-4)


def test_metrics_json_ranks_every_method(report):
    summary = json.loads((report.out_dir / "metrics.json").read_text())
    assert summary["images"] == 5
    assert summary["split"] == "test"
    assert summary["noise_factor"] == 0.3
    assert sorted(summary["ranking"]) == ["gaussian", "input", "model", "tv"]
    means = [summary["methods"][name]["psnr"]["mean"] for name in summary["ranking"]]
    assert means == sorted(means, reverse=True)
    assert summary["methods"]["model"]["images_per_second"] > 0
    assert summary["methods"]["tv"]["images_per_second"] > 0
    for name in ("gaussian", "tv"):  # classical denoisers help a lot at noise factor 0.3
        assert summary["methods"][name]["psnr_gain"] > 4.0
    assert json.loads(report.to_json())["ranking"] == summary["ranking"]


def test_html_is_self_contained_and_shows_everything(report):
    page = (report.out_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "src=\"http" not in page and "<link" not in page
    for text in ("Total variation", "Gaussian blur", "Noisy input", "face004", "ranked"):
        assert text in page


def test_default_model_is_the_newest_run_and_limit(prepared, tiny_run, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(tiny_run, runs_dir / tiny_run.name)
    result = evaluate(data_dir=prepared, split="val", runs_dir=runs_dir, limit=1)
    assert result.info["model"] == str(runs_dir / tiny_run.name / "best.keras")
    assert result.out_dir == runs_dir / tiny_run.name / "eval" / "val"
    assert len(result.image_names) == 1
    assert (result.out_dir / "report.html").is_file()


def test_default_out_dir(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "20260101-000000-unet"
    assert default_out_dir(run / "best.keras", "test") == run / "eval" / "test"
    assert default_out_dir(run / "last.keras", "test") == run / "eval" / "last" / "test"
    assert default_out_dir(tmp_path / "mine.keras", "pairs") == tmp_path / "eval" / "mine" / "pairs"
    starter = tmp_path / "weights" / "starter.keras"
    starter.parent.mkdir()
    starter.touch()
    monkeypatch.setattr(runs, "packaged_weights", lambda: starter)
    assert default_out_dir(starter, "val") == Path("eval") / "starter" / "val"


def _write_pair_folders(root: Path, faces: list[Path], sizes) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    for index, (path, (height, width)) in enumerate(zip(faces, sizes, strict=False)):
        clean = read_image(path).pixels[:height, :width]
        write_image(root / "noisy" / f"photo{index}.png", add_gaussian_noise(clean, 0.3, rng))
        write_image(root / "clean" / f"photo{index}.png", clean)
    return root / "noisy", root / "clean"


def test_pairs_of_any_size(tiny_run, sample_faces, tmp_path):
    noisy_dir, clean_dir = _write_pair_folders(tmp_path, sample_faces, [(61, 47), (128, 100)])
    # Matched by name: the clean file may have another extension.
    image = read_image(clean_dir / "photo1.png").pixels
    (clean_dir / "photo1.png").unlink()
    write_image(clean_dir / "photo1.tif", image, dtype="uint16")
    result = evaluate(model=tiny_run / "best.keras", pairs=(noisy_dir, clean_dir),
                      out=tmp_path / "out", baselines="gaussian")
    assert result.image_names == ["photo0", "photo1"]
    assert result.info["noise_factor"] == 0.3
    assert "pairs" in result.info
    assert np.all(np.isfinite(result.method("model").psnr))
    assert (tmp_path / "out" / "samples.png").is_file()


def test_pairs_whose_sizes_differ(tiny_run, sample_faces, tmp_path):
    noisy_dir, clean_dir = _write_pair_folders(tmp_path, sample_faces, [(64, 64)])
    write_image(clean_dir / "photo0.png", read_image(sample_faces[0]).pixels[:64, :60])
    with pytest.raises(FaceDenoiseError, match="same size"):
        evaluate(model=tiny_run, pairs=(noisy_dir, clean_dir), out=tmp_path / "out")


def test_pairs_with_an_unmatched_name(tiny_run, sample_faces, tmp_path):
    noisy_dir, clean_dir = _write_pair_folders(tmp_path, sample_faces, [(64, 64), (64, 64)])
    (clean_dir / "photo1.png").rename(clean_dir / "other.png")
    with pytest.raises(FaceDenoiseError, match="photo1.png"):
        evaluate(model=tiny_run, pairs=(noisy_dir, clean_dir), out=tmp_path / "out")


def test_empty_pairs_folder(tiny_run, sample_faces, tmp_path):
    noisy_dir, clean_dir = _write_pair_folders(tmp_path, sample_faces, [(64, 64)])
    for path in noisy_dir.iterdir():
        path.unlink()
    with pytest.raises(FaceDenoiseError, match="holds no images"):
        evaluate(model=tiny_run, pairs=(noisy_dir, clean_dir), out=tmp_path / "out")


def test_split_not_prepared(tiny_run, tmp_path):
    with pytest.raises(FaceDenoiseError, match="facedenoise prepare"):
        evaluate(model=tiny_run, data_dir=tmp_path / "data", out=tmp_path / "out")


def test_unknown_split(tiny_run, prepared, tmp_path):
    with pytest.raises(FaceDenoiseError, match="choose one of: .*(val, test|test, val)"):
        evaluate(model=tiny_run, data_dir=prepared, split="train", out=tmp_path / "out")


def test_missing_model_file(prepared, tmp_path):
    with pytest.raises(FaceDenoiseError, match="does not exist"):
        evaluate(model=tmp_path / "nope.keras", data_dir=prepared, out=tmp_path / "out")


def test_not_a_facedenoise_model(prepared, tmp_path):
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a keras archive")
    with pytest.raises(FaceDenoiseError, match="not a facedenoise model"):
        evaluate(model=fake, data_dir=prepared, out=tmp_path / "out")


def test_no_model_anywhere(prepared, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "packaged_weights", lambda: None)
    with pytest.raises(FaceDenoiseError, match="facedenoise train"):
        evaluate(data_dir=prepared, runs_dir=tmp_path / "runs", out=tmp_path / "out")


def test_unknown_baseline_fails_before_loading_anything(tmp_path):
    with pytest.raises(FaceDenoiseError, match="Unknown baseline"):
        evaluate(data_dir=tmp_path / "nothing", baselines="median")


def test_cli_json(prepared, tiny_run, tmp_path):
    result = cli.invoke(app, ["evaluate", "--data", str(prepared), "--model", str(tiny_run),
                              "--out", str(tmp_path / "out"), "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == 2
    assert summary["ranking"][0] in ("input", "model")


def test_cli_error_is_one_red_line(tiny_run, tmp_path):
    result = cli.invoke(app, ["evaluate", "--data", str(tmp_path / "missing"),
                              "--model", str(tiny_run)])
    assert result.exit_code == 1
    assert "facedenoise prepare" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_samples_always_show_the_best_and_the_worst(count):
    from facedenoise.evaluate import _example_indices

    psnr = np.arange(count, dtype=float)[::-1]  # image 0 best, image count-1 worst
    chosen = _example_indices(psnr)
    assert chosen[0] == ("best", 0)
    if count > 1:
        assert chosen[-1] == ("worst", count - 1)
    assert len({index for _, index in chosen}) == len(chosen) == min(count, 5)


# --- settings, progress and the default model ---------------------------------------------


def test_settings_come_from_evaluate_config(prepared, tiny_run, tmp_path):
    from facedenoise.config import EvaluateConfig

    calls = []
    result = evaluate(model=tiny_run, data_dir=prepared, out=tmp_path / "out",
                      config=EvaluateConfig(split="val", limit=1, baselines="gaussian"),
                      on_progress=lambda done, total: calls.append((done, total)))
    assert result.info["split"] == "val" and len(result.image_names) == 1
    assert [method.name for method in result.methods] == ["input", "model", "gaussian"]
    # One unit per image and method run (model, gaussian); done only grows and ends at total.
    assert calls[-1] == (2, 2)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    with pytest.raises(TypeError, match="no_such_setting"):
        evaluate(model=tiny_run, data_dir=prepared, no_such_setting=1)


def test_cli_uses_and_prints_the_same_default_model_as_denoise(prepared, tiny_run, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(tiny_run, runs_dir / tiny_run.name)
    result = cli.invoke(app, ["evaluate", "--data", str(prepared), "--runs", str(runs_dir),
                              "--out", str(tmp_path / "out"), "--limit", "1"])
    assert result.exit_code == 0, result.output
    chosen = runs.default_model(runs_dir)  # the rule `denoise` uses
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert Path(summary["model"]) == chosen
    assert "Model:" in result.output and tiny_run.name in result.output


# --- the terminal table and the help ------------------------------------------------------


def test_table_is_readable_at_80_columns(report):
    from rich.console import Console

    from facedenoise.cli.evaluate_command import ranking_table

    console = Console(width=80, record=True)
    console.print(ranking_table(report.summary()))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    for method in report.ranked():  # each method on one line with its numbers unbroken
        row = next(line for line in lines if line.split()[1:2] == method.label.split()[:1])
        assert f"{np.mean(method.psnr):.2f}" in row
        assert f"{np.mean(method.ssim):.3f}" in row
    labels = [next(i for i, line in enumerate(lines) if method.label.split()[0] in line)
              for method in report.ranked()]
    assert labels == sorted(labels)


@pytest.mark.parametrize("command", ["evaluate", "models"])
def test_help_shows_no_bool_placeholder_for_flags(command):
    result = cli.invoke(app, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    flag_lines = [line for line in result.output.splitlines()
                  if "--" in line and "--help" not in line]
    assert flag_lines and not any("<bool>" in line for line in flag_lines)


# --- hostile and unusual input ------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _malformed_exif_png(valid_png: bytes) -> bytes:
    """A valid PNG with a 6-byte eXIf chunk after IHDR (Pillow raised struct.error on it)."""
    end_of_ihdr = 8 + 25
    exif = _png_chunk(b"eXIf", b"MM\x00*\x00\x00")
    return valid_png[:end_of_ihdr] + exif + valid_png[end_of_ihdr:]


def _bomb_png(side: int = 15_000) -> bytes:
    """A small PNG whose header declares side x side RGBA pixels (225 MP): a decompression bomb."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side * 4 + 1) * 8, 9)  # 8 rows of data, the rest missing
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows)
            + _png_chunk(b"IEND", b""))


def test_pairs_skip_malformed_and_bomb_images_with_a_reason(tiny_run, sample_faces, tmp_path):
    noisy_dir, clean_dir = _write_pair_folders(tmp_path, sample_faces, [(64, 64)] * 4)
    (noisy_dir / "photo1.png").write_bytes(
        _malformed_exif_png((noisy_dir / "photo1.png").read_bytes()))
    (noisy_dir / "photo2.png").write_bytes(_bomb_png())
    (noisy_dir / "photo3.png").write_bytes((noisy_dir / "photo3.png").read_bytes()[:120])
    result = evaluate(model=tiny_run, pairs=(noisy_dir, clean_dir), out=tmp_path / "out")
    # The broken EXIF block may be ignored (the pixels are fine) or the file skipped; never
    # a traceback. The bomb and the truncated file cannot be scored.
    skipped = [item["image"] for item in result.skipped]
    assert skipped in (["photo2", "photo3"], ["photo1", "photo2", "photo3"])
    assert sorted(result.image_names + skipped) == [f"photo{i}" for i in range(4)]
    assert all(item["reason"] for item in result.skipped)
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [item["image"] for item in summary["skipped"]] == skipped
    assert "photo3" in (tmp_path / "out" / "report.html").read_text()

    shown = cli.invoke(app, ["evaluate", "--model", str(tiny_run), "--out", str(tmp_path / "b"),
                             "--pairs", str(noisy_dir), str(clean_dir)])
    assert shown.exit_code == 0, shown.output
    assert "skipped photo2" in shown.output and "skipped photo3" in shown.output
    assert "Traceback" not in shown.output


def test_a_pair_whose_sizes_differ_is_skipped_among_others(tiny_run, sample_faces, tmp_path):
    noisy_dir, clean_dir = _write_pair_folders(tmp_path, sample_faces, [(64, 64), (64, 64)])
    write_image(clean_dir / "photo1.png", read_image(sample_faces[1]).pixels[:64, :60])
    result = evaluate(model=tiny_run, pairs=(noisy_dir, clean_dir), out=tmp_path / "out")
    assert result.image_names == ["photo0"]
    assert "same size" in result.skipped[0]["reason"]


def test_unwritable_out_is_one_red_line(prepared, tiny_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the report folder should go")
    result = cli.invoke(app, ["evaluate", "--data", str(prepared), "--model", str(tiny_run),
                              "--out", str(blocker / "report"), "--limit", "1"])
    assert result.exit_code == 1
    assert "Cannot write the report" in result.output and "--out" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_full_disk_while_writing_is_a_clear_error(prepared, tiny_run, tmp_path, monkeypatch):
    import errno

    from facedenoise import report as report_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_module, "atomic_write_text", full)
    with pytest.raises(FaceDenoiseError, match="No space left on device.*--out"):
        evaluate(model=tiny_run, data_dir=prepared, out=tmp_path / "out", limit=1)


def test_user_strings_are_printed_verbatim(prepared, tiny_run, tmp_path):
    out = tmp_path / "holiday [draft]" / "a[/bold]b"
    result = cli.invoke(app, ["evaluate", "--data", str(prepared), "--model", str(tiny_run),
                              "--out", str(out), "--limit", "1"], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "holiday [draft]" in result.output and "a[/bold]b" in result.output


def test_install_hint_keeps_its_brackets(monkeypatch):
    import importlib.util

    from facedenoise import baselines

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(baselines.importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "bm3d" else real_find_spec(name))
    result = cli.invoke(app, ["evaluate", "--baselines", "bm3d"], terminal_width=200)
    assert result.exit_code == 1
    assert "pip install 'facedenoise[bm3d]'" in result.output


# --- the noise sweep ----------------------------------------------------------------------

SWEEP_LEVELS = (0.0, 0.1, 0.3)


@pytest.fixture(scope="module")
def sweep_report(prepared, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "report"
    return evaluate(model=tiny_run, data_dir=prepared, out=out, limit=3, baselines="gaussian",
                    noise_levels=SWEEP_LEVELS)


def test_sweep_json_has_every_level_and_method(sweep_report):
    summary = json.loads((sweep_report.out_dir / "metrics.json").read_text())
    assert [entry["noise_level"] for entry in summary["sweep"]] == list(SWEEP_LEVELS)
    assert summary["noise_levels"] == list(SWEEP_LEVELS)
    for entry in summary["sweep"]:
        assert entry["images"] == 3
        # A model without a noise input: no "told the level" method.
        assert list(entry["methods"]) == ["input", "model", "gaussian"]
    clean_input = summary["sweep"][0]["methods"]["input"]
    assert clean_input["psnr"]["mean"] is None  # inf: level 0 feeds the clean image itself
    assert clean_input["identical_images"] == 3
    assert clean_input["ssim"]["mean"] == pytest.approx(1.0)
    assert summary["sweep"][0]["methods"]["gaussian"]["identical_images"] == 3
    noisy_psnr = [entry["methods"]["input"]["psnr"]["mean"] for entry in summary["sweep"][1:]]
    assert noisy_psnr[0] > noisy_psnr[1] + 5  # 0.1 is far cleaner than 0.3
    assert summary["sweep"][1]["methods"]["model"]["identical_images"] == 0


def test_sweep_files_plot_and_html(sweep_report):
    for name in ("noise_sweep.png", "sweep_per_image.csv"):
        assert (sweep_report.out_dir / name).stat().st_size > 0
    with open(sweep_report.out_dir / "sweep_per_image.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * len(SWEEP_LEVELS)
    assert {row["input_psnr"] for row in rows if row["noise_level"] == "0"} == {"inf"}
    page = (sweep_report.out_dir / "report.html").read_text()
    assert "Noise sweep" in page and page.count("data:image/png;base64,") == 3


def test_a_run_without_a_sweep_removes_an_earlier_runs_sweep_files(prepared, tiny_run,
                                                                     tmp_path):
    out = tmp_path / "report"
    evaluate(model=tiny_run, data_dir=prepared, out=out, limit=1, baselines="",
             noise_levels=(0.1,))
    assert (out / "noise_sweep.png").is_file() and (out / "sweep_per_image.csv").is_file()
    evaluate(model=tiny_run, data_dir=prepared, out=out, limit=1, baselines="")
    assert not (out / "noise_sweep.png").exists() and not (out / "sweep_per_image.csv").exists()
    assert json.loads((out / "metrics.json").read_text())["sweep"] == []


def test_sweep_noise_at_0_3_matches_the_fixed_files_statistically(sweep_report):
    """The sweep's 0.3 noise is drawn like prepare's (other seeds): input PSNR within 0.3 dB."""
    fixed = float(np.mean(sweep_report.input.psnr[:3]))
    swept = float(np.mean(sweep_report.sweep[2].methods[0].psnr))
    assert swept == pytest.approx(fixed, abs=0.3)


def test_sweep_noise_is_seeded_per_level_and_image(sample_faces):
    from facedenoise.evaluate import sweep_noisy

    clean = read_image(sample_faces[0]).pixels
    first = sweep_noisy(clean, 0.1, 7, "face")
    assert np.array_equal(first, sweep_noisy(clean, 0.1, 7, "face"))  # regenerable alone
    assert not np.array_equal(first, sweep_noisy(clean, 0.1, 7, "other"))
    assert not np.array_equal(first, sweep_noisy(clean, 0.1, 8, "face"))
    # Another level is another draw, not the same draw scaled.
    scaled = np.clip(clean + (sweep_noisy(clean, 0.2, 7, "face") - clean), 0, 1)
    assert not np.allclose(scaled, np.clip(clean + 2 * (first - clean), 0, 1), atol=0.05)
    assert sweep_noisy(clean, 0.0, 7, "face") is clean
    assert np.all(np.abs(first * 255 - np.rint(first * 255)) < 1e-3)  # 8-bit, like the files


def test_sweep_with_a_noise_conditional_model(prepared, tiny_conditional_run, tmp_path):
    result = evaluate(model=tiny_conditional_run, data_dir=prepared, out=tmp_path / "out",
                      limit=2, noise_levels=(0.0, 0.2))
    names = [method.name for method in result.sweep[0].methods]
    assert names == ["input", "model", "model_given_level"]
    given = result.sweep[1].methods[2]
    assert np.allclose(given.levels_used, 0.2)
    estimated = result.sweep[1].methods[1].levels_used
    assert estimated.shape == (2,) and np.all((estimated >= 0) & (estimated <= 1))
    assert "model_given_level" in result.summary()["methods"]

    from rich.console import Console

    from facedenoise.cli.evaluate_command import estimate_table

    console = Console(width=80, record=True)
    console.print(estimate_table(result.summary()))
    rows = [line.split() for line in console.export_text().splitlines()]
    assert [row[0] for row in rows if row and row[0] in ("0", "0.2")] == ["0", "0.2"]


@pytest.mark.parametrize("text", ["0,abc", "0.1,1.5", "-0.1", "auto", "nan"])
def test_bad_noise_levels_are_one_line(text):
    result = cli.invoke(app, ["evaluate", "--noise-levels", text])
    assert result.exit_code == 1
    assert "noise level" in result.output.lower()
    assert "Traceback" not in result.output


def test_noise_levels_parse_sorted_and_unique():
    from facedenoise.evaluate import parse_noise_levels

    assert parse_noise_levels("0.3, 0,0.05,0.3") == (0.0, 0.05, 0.3)
    assert parse_noise_levels("") == ()


def test_cli_prints_the_sweep_tables(prepared, tiny_run, tmp_path):
    result = cli.invoke(app, ["evaluate", "--data", str(prepared), "--model", str(tiny_run),
                              "--out", str(tmp_path / "out"), "--limit", "2",
                              "--noise-levels", "0,0.2"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "Noise sweep: mean PSNR" in result.output and "Noise sweep: mean SSIM" in result.output
    assert "inf" in result.output
    json_result = cli.invoke(app, ["evaluate", "--data", str(prepared), "--model", str(tiny_run),
                                   "--out", str(tmp_path / "out2"), "--limit", "2",
                                   "--noise-levels", "0.2", "--json"])
    assert json_result.exit_code == 0, json_result.output
    assert json.loads(json_result.stdout)["sweep"][0]["noise_level"] == 0.2


# --- figures ------------------------------------------------------------------------------


def test_psnr_gain_plot_shows_every_image(report, monkeypatch):
    """With 5 images each method is a row of 5 points (a histogram of 5 images was mostly
    empty bins)."""
    from facedenoise import report as report_module

    figures = []
    monkeypatch.setattr(report_module, "_save_figure", lambda figure, path: figures.append(figure))
    report_module.plot_psnr_gain(report, report.out_dir / "unused.png")
    axis = figures[0].axes[0]
    point_counts = sorted(len(c.get_offsets()) for c in axis.collections)
    # Per method: one scatter of every image and one of its mean.
    assert point_counts == sorted([5] * 3 + [1] * 3)
    assert len(axis.get_yticklabels()) == 3


def test_sweep_plot_has_a_line_per_method_and_marks_infinity(sweep_report, monkeypatch):
    from facedenoise import report as report_module

    figures = []
    monkeypatch.setattr(report_module, "_save_figure", lambda figure, path: figures.append(figure))
    report_module.plot_noise_sweep(sweep_report, sweep_report.out_dir / "unused.png")
    psnr_axis, ssim_axis = figures[0].axes
    labels = [line.get_label() for line in ssim_axis.get_lines() if not line.get_label()[0] == "_"]
    assert labels == [method.label for method in sweep_report.sweep[0].methods]
    top = psnr_axis.get_ylim()[1]
    triangles = [line for line in psnr_axis.get_lines() if line.get_marker() == "^"]
    assert triangles and all(np.allclose(line.get_ydata(), top) for line in triangles)


def test_sweep_plot_keeps_near_identical_outputs_off_the_scale(sweep_report, monkeypatch):
    # A model that leaves a clean image alone scores ~126 dB at level 0: drawn as a point, it
    # squashed every other level into the bottom sixth of the panel.
    import copy

    from facedenoise import report as report_module

    report = copy.deepcopy(sweep_report)  # the fixture is shared by other tests
    model = next(method for method in report.sweep[0].methods if method.name == "model")
    model.psnr = np.full(len(model.psnr), 126.0)
    figures = []
    monkeypatch.setattr(report_module, "_save_figure", lambda figure, path: figures.append(figure))
    report_module.plot_noise_sweep(report, report.out_dir / "unused.png")
    psnr_axis = figures[0].axes[0]
    top = psnr_axis.get_ylim()[1]
    assert top <= report_module.PSNR_CEILING + 2
    triangles = [line for line in psnr_axis.get_lines() if line.get_marker() == "^"]
    assert len(triangles) == 3  # input, model and gaussian at level 0, all on the top edge


def test_every_method_has_its_own_colour_and_only_the_input_is_grey():
    # With seven methods and more, matplotlib's eighth colour (grey) made BM3D look like the
    # noisy input.
    from facedenoise.report import INPUT, _method_color

    colours = [_method_color(position, f"method{position}") for position in range(1, 10)]
    assert len(set(colours)) == len(colours) and "C7" not in colours
    assert _method_color(0, INPUT) == "grey"


def test_an_onnx_model_scores_like_its_keras_original(prepared, tiny_run, tmp_path):
    """The ONNX path of the Denoiser: the same weights give the same PSNR (float32 round-off
    between TensorFlow and onnxruntime moves outputs by ~1e-6, far below 0.01 dB)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from facedenoise.export import export_model

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    export_model(run, format="onnx", out=run / "model.onnx")
    keras_report = evaluate(model=run, data_dir=prepared, out=tmp_path / "k", limit=2)
    onnx_report = evaluate(model=run / "model.onnx", data_dir=prepared, out=tmp_path / "o",
                           limit=2)
    assert onnx_report.info["architecture"] == keras_report.info["architecture"] == "unet"
    assert onnx_report.info["parameters"] is None  # ONNX Runtime does not count them
    assert np.allclose(onnx_report.method("model").psnr, keras_report.method("model").psnr,
                       atol=0.01)
