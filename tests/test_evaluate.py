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


def test_table_lists_methods_in_rank_order(report):
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(report.table())
    text = console.export_text()
    positions = [text.index(method.label) for method in report.ranked()]
    assert positions == sorted(positions)


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
    with pytest.raises(FaceDenoiseError, match="test, val"):
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
