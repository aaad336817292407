"""inference: tiling arithmetic, the Denoiser API on every array kind, and denoise_paths."""

from __future__ import annotations

import os

import numpy as np
import pytest

from facedenoise import runs
from facedenoise.config import DenoiseConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import decode_stored, read_image, write_image
from facedenoise.inference import (
    Denoiser,
    blend_weights,
    denoise_paths,
    denoise_tiled,
    plan_jobs,
    tile_starts,
)


@pytest.fixture(scope="module")
def denoiser(tiny_run) -> Denoiser:
    """The tiny run's one-input model with seeded weights (the fixture's are unseeded)."""
    loaded = Denoiser.load(tiny_run, config=DenoiseConfig(tile=512, batch_size=4))
    rng = np.random.default_rng(5)
    loaded.model.set_weights(
        [rng.normal(0, 0.2, w.shape).astype(np.float32) for w in loaded.model.get_weights()]
    )
    return loaded


@pytest.fixture(scope="module")
def mosaic(sample_faces) -> np.ndarray:
    """Four real faces in a 2x2 mosaic, cropped to an odd 203x250: float32 RGB in [0, 1]."""
    faces = [read_image(path).pixels for path in sample_faces[:4]]
    rows = [np.concatenate(faces[:2], axis=1), np.concatenate(faces[2:4], axis=1)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:203, :250])


# --- Tiling arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "padded_length, tile_length, step",
    [(64, 64, 48), (200, 64, 48), (208, 32, 16), (1000, 512, 480)],
)
def test_tiles_cover_the_image_with_equal_aligned_tiles(padded_length, tile_length, step):
    starts = tile_starts(padded_length, tile_length, step)
    assert starts[0] == 0 and starts[-1] + tile_length == padded_length
    gaps = np.diff(starts)
    assert (gaps > 0).all() and (gaps <= step).all()


def test_tiles_start_on_the_network_grid():
    # Lengths that are multiples of the network's multiple give starts on its grid.
    assert all(start % 16 == 0 for start in tile_starts(1008, 512, 480, multiple=16))


@pytest.mark.parametrize(
    "padded_length, tile_length, step, multiple",
    [(1008, 512, 480, 16), (4000, 512, 480, 16), (3008, 512, 496, 16), (208, 32, 16, 4)],
)
def test_tiles_are_spread_evenly(padded_length, tile_length, step, multiple):
    # Issue 13.9: the old rule gave [0, 480, 496] for 1008: one overlap of 32, one of 496.
    starts = tile_starts(padded_length, tile_length, step, multiple)
    gaps = np.diff(starts)
    assert gaps.max() - gaps.min() <= multiple and gaps.max() <= step
    assert starts[-1] + tile_length == padded_length
    assert len(starts) == -(-(padded_length - tile_length) // step) + 1  # no extra tile


@pytest.mark.parametrize("overlap", [24, 31, 48])
def test_neighbouring_ramps_sum_to_one(overlap):
    tile_length = 64
    step = tile_length - overlap
    left = blend_weights(tile_length, 0, overlap)
    right = blend_weights(tile_length, overlap, 0)
    shared = left[step:] + right[:overlap]
    np.testing.assert_allclose(shared, 1.0, atol=1e-6)
    assert left[0] == 1.0 and right[-1] == 1.0  # image borders are not faded
    assert right[: overlap // 3].max() == 0.0  # the outer third is context only
    assert right[overlap // 3] > 0.0


@pytest.mark.parametrize(
    "height, width, tile, tile_overlap, multiple",
    [
        (31, 37, 16, 4, 4),
        (65, 129, 32, 8, 16),
        (203, 250, 64, 32, 4),
        (37, 300, 32, 0, 16),
        (64, 96, 32, 31, 32),
    ],
)
def test_tiling_an_identity_returns_the_image(height, width, tile, tile_overlap, multiple):
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    calls = []

    def identity(batch):
        calls.append(batch.shape)
        return batch

    result = denoise_tiled(
        image, identity, tile=tile, tile_overlap=tile_overlap, multiple=multiple, batch_size=3
    )
    np.testing.assert_allclose(result, image, atol=1e-6)
    assert len({shape[1:] for shape in calls}) == 1  # every tile has the same size
    assert max(shape[0] for shape in calls) <= 3


def test_a_failing_model_call_stops_the_tiling_and_leaves_no_thread():
    # Model calls run on a worker thread: its error must reach the caller, and the thread
    # must end with it.
    import threading

    image = np.random.default_rng(0).random((300, 300, 3), dtype=np.float32)
    calls = []

    def fails_second(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise FaceDenoiseError("model failed")
        return batch

    with pytest.raises(FaceDenoiseError, match="model failed"):
        denoise_tiled(image, fails_second, tile=64, tile_overlap=16, batch_size=2)
    assert len(calls) <= 3  # the failure surfaces at most one call late
    assert not [t for t in threading.enumerate() if t.name.startswith("facedenoise-model")]


def test_tiled_result_matches_the_untiled_result(tiny_run, mosaic):
    # The tiny run's U-Net (depth 2) sees at most ~23 px to each side (2x2 fold, two 3x3
    # convolutions at 1/2 and 1/4 resolution each way, output conv). With overlap 96 each
    # tile's outer 24 px (overlap // 4) get weight 0, so every blended pixel has its full
    # receptive field inside the tile, and tiles start on the network's 4-px grid: the tiled
    # result equals the whole-image one up to float rounding (~1e-6), far inside 1e-3.
    whole = Denoiser.load(tiny_run, config=DenoiseConfig(tile=512)).denoise_pixels(mosaic)
    tiled_denoiser = Denoiser.load(tiny_run, config=DenoiseConfig(tile=128, tile_overlap=96))
    assert tiled_denoiser.needs_tiles(mosaic.shape)
    tiled = tiled_denoiser.denoise_pixels(mosaic)
    assert tiled.shape == mosaic.shape and tiled.dtype == np.float32
    assert np.abs(tiled - whole).max() < 1e-3


# --- The Python API ---------------------------------------------------------------------------


def test_public_import():
    import facedenoise

    assert facedenoise.Denoiser is Denoiser


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255), (np.uint16, 65535)])
def test_integers_in_same_integers_out(denoiser, mosaic, dtype, scale):
    # Issue 13.15: this compared against `array / 65535` while imageio multiplies by
    # 1/65535; one float32 ulp apart, the unseeded model's output sometimes crossed a
    # rounding boundary. The expected value now goes through the same conversion, so the
    # model sees bit-identical input and the only difference left is rounding to the
    # integer type: at most half a step (plus float32 rounding of the comparison).
    from facedenoise.imageio import image_from_array

    array = np.rint(mosaic * scale).astype(dtype)
    result = denoiser.denoise(array)
    assert result.dtype == dtype and result.shape == array.shape
    expected = denoiser.denoise_pixels(image_from_array(array).pixels)
    assert np.abs(result / scale - expected).max() <= 0.5 / scale + 1e-6


def test_float_in_float32_out_and_grey_stays_grey(denoiser, mosaic):
    rgb = denoiser.denoise(mosaic.astype(np.float64))
    assert rgb.dtype == np.float32 and rgb.shape == mosaic.shape
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    grey = denoiser.denoise(mosaic[:, :, 1])
    assert grey.shape == mosaic.shape[:2] and grey.dtype == np.float32
    assert denoiser.denoise(mosaic[:, :, 1:2]).shape == (203, 250, 1)


def test_alpha_is_passed_through_untouched(denoiser, mosaic):
    rgb = np.rint(mosaic * 255).astype(np.uint8)
    alpha = np.random.default_rng(3).integers(0, 256, mosaic.shape[:2], dtype=np.uint8)
    result = denoiser.denoise(np.dstack([rgb, alpha]))
    assert result.shape == (203, 250, 4) and result.dtype == np.uint8
    np.testing.assert_array_equal(result[:, :, 3], alpha)
    np.testing.assert_array_equal(result[:, :, :3], denoiser.denoise(rgb))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5, 3), (2, 700, 3), (600, 7, 4)])
def test_any_size_works(tiny_run, shape):
    denoiser = Denoiser.load(tiny_run, config=DenoiseConfig(tile=256, tile_overlap=32))
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert denoiser.denoise(array).shape == shape


def test_float_arrays_on_the_wrong_scale_are_refused(denoiser):
    with pytest.raises(FaceDenoiseError, match="divide"):
        denoiser.denoise(np.full((16, 16, 3), 128.0))


def test_batch_keeps_order_and_shares_model_calls(tiny_run, mosaic, monkeypatch):
    denoiser = Denoiser.load(
        tiny_run, config=DenoiseConfig(tile=128, tile_overlap=32, batch_size=8)
    )
    images = [mosaic[:40, :50], mosaic[:64, :64], mosaic[40:80, 50:100], mosaic]
    singles = [denoiser.denoise_pixels(image) for image in images]
    calls = []
    predict = denoiser._predict
    monkeypatch.setattr(
        denoiser,
        "_predict",
        lambda batch, levels: calls.append(len(batch)) or predict(batch, levels),
    )
    results = denoiser.denoise_batch(images)
    for single, result in zip(singles, results, strict=True):
        np.testing.assert_allclose(result, single, atol=1e-5)
    # One call per size; the mosaic's 2x3 tiles (128 px, 96 px apart over 204x252) share one.
    assert sorted(calls) == [1, 2, 6]


def test_load_latest_and_default(tiny_run, monkeypatch):
    monkeypatch.setattr(runs, "packaged_weights", lambda: None)
    assert Denoiser.load("latest", runs_dir=tiny_run.parent).source.parent == tiny_run
    assert Denoiser.load(None, runs_dir=tiny_run.parent).source.parent == tiny_run


def test_no_model_anywhere_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "packaged_weights", lambda: None)
    with pytest.raises(FaceDenoiseError, match="facedenoise train"):
        Denoiser.load(None, runs_dir=tmp_path)


def test_bad_tile_settings_are_user_errors(denoiser):
    with pytest.raises(FaceDenoiseError, match="tile-overlap"):
        Denoiser(denoiser.model, DenoiseConfig(tile=64, tile_overlap=64))


@pytest.mark.parametrize("tile, tile_overlap, overlap", [
    (512, None, 96), (1024, None, 96),
    (256, None, 64), (64, None, 16),  # a small tile alone is not an error: a quarter of it
    (64, 8, 8), (512, 0, 0),  # given, it is used as given
])
def test_the_default_overlap_follows_the_tile(denoiser, tile, tile_overlap, overlap):
    config = DenoiseConfig(tile=tile, tile_overlap=tile_overlap)
    assert config.overlap == overlap
    Denoiser(denoiser.model, config)  # accepted


# --- Files ------------------------------------------------------------------------------------


def _write_faces(folder, sample_faces, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name, face in zip(names, sample_faces, strict=False):
        write_image(folder / name, read_image(face).pixels)
    return [folder / name for name in names]


def test_one_path_writes_beside_and_skips_earlier_outputs(tmp_path, sample_faces):
    _write_faces(tmp_path / "in", sample_faces, ["a.png", "b.jpg", "c.denoised.png"])
    jobs = plan_jobs([str(tmp_path / "in")], ".denoised", recursive=False)
    assert [(job.source.name, job.target.name) for job in jobs] == [
        ("a.png", "a.denoised.png"),
        ("b.jpg", "b.denoised.jpg"),
    ]
    # Named directly, an earlier output is an input like any other.
    jobs = plan_jobs([str(tmp_path / "in" / "c.denoised.png")], ".denoised", recursive=False)
    assert jobs[0].target.name == "c.denoised.denoised.png"


def test_output_folder_mirrors_sub_folders(tmp_path, sample_faces, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_faces(tmp_path / "in", sample_faces, ["a.png"])
    _write_faces(tmp_path / "in" / "sub", sample_faces, ["b.png"])
    jobs = plan_jobs(["in", "out"], ".denoised", recursive=True)
    assert [str(job.target) for job in jobs] == ["out/a.png", "out/sub/b.png"]
    jobs = plan_jobs(["in/**/*.png", "out"], ".denoised", recursive=False)
    assert [str(job.target) for job in jobs] == ["out/a.png", "out/sub/b.png"]
    # An output folder inside the input folder is not read back as input.
    _write_faces(tmp_path / "in" / "clean", sample_faces, ["a.png"])
    jobs = plan_jobs(["in", "in/clean"], ".denoised", recursive=True)
    assert [str(job.target) for job in jobs] == ["in/clean/a.png", "in/clean/sub/b.png"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["in/a.png", "in/a.png"], "never overwritten"),
        (["in/a.png", "out"], "image extension"),
        (["in", "in"], "never overwritten"),
        (["in/a.png", "other/a.png", "out"], "both be written"),
        (["in", "in/a.png"], "must be a folder"),
        (["in/missing.png", "out"], "does not exist"),
        ([], "at least one"),
    ],
)
def test_planning_refuses_mistakes(tmp_path, sample_faces, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    _write_faces(tmp_path / "in", sample_faces, ["a.png", "b.png"])
    _write_faces(tmp_path / "other", sample_faces, ["a.png"])
    with pytest.raises(FaceDenoiseError, match=message):
        plan_jobs(arguments, ".denoised", recursive=False)
    with pytest.raises(FaceDenoiseError, match="never overwritten"):
        plan_jobs(["in/a.png"], "", recursive=False)


def test_the_input_under_another_name_is_never_written_over(tmp_path, sample_faces,
                                                            monkeypatch):
    # On a case-insensitive file system (macOS, Windows) `denoise a.png A.PNG` names the
    # input itself, and the rename would replace it; the same file behind another name
    # (here a hard link, which a case-sensitive system can show) is refused, even with force.
    monkeypatch.chdir(tmp_path)
    _write_faces(tmp_path / "in", sample_faces, ["a.png", "b.png"])
    os.link(tmp_path / "in" / "a.png", tmp_path / "A.PNG")
    with pytest.raises(FaceDenoiseError, match=r"over the input in/a.png; .* never overwritten"):
        plan_jobs(["in/a.png", "A.PNG"], ".denoised", recursive=False)
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "in" / "b.png", tmp_path / "out" / "b.png")
    with pytest.raises(FaceDenoiseError, match="over the input in/b.png"):
        plan_jobs(["in", "out"], ".denoised", recursive=False)
    assert [str(job.target) for job in plan_jobs(["in/a.png", "B.PNG"], ".denoised",
                                                 recursive=False)] == ["B.PNG"]


def test_a_corrupt_file_fails_alone(tmp_path, sample_faces, denoiser):
    _write_faces(tmp_path / "in", sample_faces, ["a.png", "b.png", "c.png"])
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    progress = []
    summary = denoise_paths(
        [str(tmp_path / "in"), str(tmp_path / "new" / "out")],
        model=denoiser,
        on_progress=lambda *state: progress.append(state),
    )
    assert [result.source.name for result in summary.done] == ["a.png", "c.png"]
    assert [result.source.name for result in summary.failed] == ["b.png"]
    assert "not a readable image" in summary.failed[0].message
    assert sorted(path.name for path in (tmp_path / "new" / "out").iterdir()) == ["a.png", "c.png"]
    assert progress[0] == (0, 3) and progress[-1] == (3, 3)
    assert "Failed 1" in str(summary.describe())


def test_existing_outputs(tmp_path, sample_faces, denoiser):
    sources = _write_faces(tmp_path / "in", sample_faces, ["a.png", "b.png"])
    out = tmp_path / "out"
    _write_faces(out, sample_faces[5:], ["a.png"])
    before = (out / "a.png").read_bytes()
    with pytest.raises(FaceDenoiseError, match="--force"):
        denoise_paths([str(sources[0]), str(out / "a.png")], model=denoiser)
    summary = denoise_paths([str(tmp_path / "in"), str(out)], model=denoiser)
    assert [result.target.name for result in summary.skipped] == ["a.png"]
    assert [result.target.name for result in summary.done] == ["b.png"]
    assert (out / "a.png").read_bytes() == before and not summary.failed
    summary = denoise_paths([str(tmp_path / "in"), str(out)], model=denoiser, force=True)
    assert len(summary.done) == 2 and (out / "a.png").read_bytes() != before


def test_files_keep_depth_grey_and_alpha(tmp_path, sample_faces, denoiser):
    pixels = read_image(sample_faces[0]).pixels
    alpha = np.tile(np.arange(128, dtype=np.uint16) * 500, (128, 1))
    write_image(tmp_path / "deep.png", pixels, dtype="uint16", alpha=alpha)
    write_image(tmp_path / "grey.jpg", pixels, grey=True)
    write_image(tmp_path / "grey16.tif", pixels, grey=True, dtype="uint16")
    summary = denoise_paths([str(tmp_path)], model=denoiser)
    assert len(summary.done) == 3
    deep = decode_stored((tmp_path / "deep.denoised.png").read_bytes())
    assert deep.dtype == np.uint16 and deep.shape == (128, 128, 4)
    np.testing.assert_array_equal(deep[:, :, 3], alpha)
    assert decode_stored((tmp_path / "grey.denoised.jpg").read_bytes()).shape == (128, 128)
    grey16 = decode_stored((tmp_path / "grey16.denoised.tif").read_bytes())
    assert grey16.shape == (128, 128) and grey16.dtype == np.uint16


def test_format_follows_the_output_extension(tmp_path, sample_faces, denoiser):
    summary = denoise_paths([str(sample_faces[0]), str(tmp_path / "clean.webp")], model=denoiser)
    assert summary.done[0].target == tmp_path / "clean.webp"
    assert (tmp_path / "clean.webp").read_bytes()[8:12] == b"WEBP"


# --- Noise levels -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def level_model_file(tmp_path_factory):
    """A two-input stand-in whose output is `noisy + level` per pixel: it shows exactly which
    level reached the model (inputs `noisy` (N, H, W, 3) and `noise_level` (N, 1)). Tests
    that read the level off the output turn the chroma stage off: it would change colour."""
    import keras
    from keras import layers

    noisy = keras.Input(shape=(None, None, 3), name="noisy")
    level = keras.Input(shape=(1,), name="noise_level")
    shift = layers.Dense(3, kernel_initializer="ones", bias_initializer="zeros")(level)
    output = layers.Add()([noisy, layers.Reshape((1, 1, 3))(shift)])
    path = tmp_path_factory.mktemp("level_model") / "level.keras"
    keras.Model([noisy, level], output, name="level_stand_in").save(path)
    return path


@pytest.fixture
def fake_estimates(monkeypatch):
    """Replace the estimator by one that returns 0.07 and records each image it is given;
    at half scale the level reads the same, as white noise does (`levels._half_scale`)."""
    from facedenoise.inference import levels

    seen = []

    def estimate(pixels):
        seen.append(pixels.shape)
        return 0.07

    monkeypatch.setattr(levels, "_estimator", lambda: estimate)
    monkeypatch.setattr(levels, "_half_scale", lambda pixels, fine: fine)
    return seen


@pytest.fixture
def without_top_up(monkeypatch):
    """Told levels reach the model on the image as it is (no noise topped up first)."""
    from facedenoise.inference import levels

    monkeypatch.setattr(levels, "TOP_UP_FROM", 1.0)


def test_a_given_level_reaches_the_model(level_model_file, mosaic, without_top_up):
    denoiser = Denoiser.load(level_model_file, config=DenoiseConfig(tile=64, tile_overlap=16,
                                                                    chroma_filter=False))
    assert denoiser.takes_noise_level
    for level in (0.0, 0.15, 1.0):
        np.testing.assert_allclose(denoiser.denoise_pixels(mosaic, level), mosaic + level,
                                   atol=1e-6)  # float32 rounding of one addition


def test_auto_estimates_once_per_image_and_tiles_share_it(level_model_file, mosaic,
                                                          fake_estimates):
    denoiser = Denoiser.load(level_model_file, config=DenoiseConfig(tile=64, tile_overlap=16,
                                                                    chroma_filter=False))
    assert denoiser.needs_tiles(mosaic.shape)  # 203x250 in 64-px tiles
    np.testing.assert_allclose(denoiser.denoise_pixels(mosaic), mosaic + 0.07, atol=1e-6)
    assert fake_estimates == [mosaic.shape]  # the whole image, once
    array = np.rint(mosaic * 255).astype(np.uint8)
    result = denoiser.denoise(array, noise_level="auto")
    expected = np.minimum(array.astype(int) + round(0.07 * 255), 255)  # the output is clipped
    assert np.abs(result.astype(int) - expected).max() <= 1  # 0.07 * 255 = 17.85 rounds


def test_large_arrays_are_estimated_from_the_same_pixels_on_every_path(level_model_file,
                                                                        fake_estimates):
    # Above 4 megapixels the banded path (denoise, the CLI) estimates from a centre band; the
    # whole-array paths (denoise_pixels, denoise_batch) read the same band, so a letterboxed
    # frame gets one level whichever path it takes.
    denoiser = Denoiser.load(level_model_file, config=DenoiseConfig(chroma_filter=False))
    large = np.zeros((2100, 2000, 3), np.float32)
    for level_of in (denoiser.noise_level_for,
                     lambda pixels: denoiser.denoise_batch([pixels], return_levels=True)[1][0]):
        assert level_of(large) == 0.07
    assert fake_estimates[0] == fake_estimates[1] == (1024, 2000, 3)


def test_the_config_level_is_the_default(level_model_file, mosaic, without_top_up):
    denoiser = Denoiser.load(level_model_file, config=DenoiseConfig(noise_level=0.2,
                                                                    chroma_filter=False))
    np.testing.assert_allclose(denoiser.denoise_pixels(mosaic), mosaic + 0.2, atol=1e-6)
    np.testing.assert_allclose(denoiser.denoise_pixels(mosaic, 0.1), mosaic + 0.1, atol=1e-6)


def test_batch_levels_per_image(level_model_file, mosaic, fake_estimates, without_top_up):
    denoiser = Denoiser.load(level_model_file, config=DenoiseConfig(batch_size=4,
                                                                    chroma_filter=False))
    images = [mosaic[:32, :32], mosaic[32:64, :32], mosaic[:40, :50]]
    outputs, used = denoiser.denoise_batch(images, [0.1, "auto", None], return_levels=True)
    assert used == [0.1, 0.07, 0.07]
    for image, output, level in zip(images, outputs, used, strict=True):
        np.testing.assert_allclose(output, image + level, atol=1e-6)
    assert len(denoiser.denoise_batch(images, 0.3)) == 3
    with pytest.raises(FaceDenoiseError, match="one per image"):
        denoiser.denoise_batch(images, [0.1, 0.2])


@pytest.mark.parametrize("told, own, expected", [
    (0.05, 0.0, 0.0),  # at or below TOP_UP_FROM: never
    (0.1, 0.0, 0.08),
    (0.3, 0.3, 0.0),
    (0.3, 0.24, 0.0),  # the image already carries told / 1.25
    (0.3, 0.0, 0.24),
    (0.5, 0.3, 0.264575),  # sqrt(0.4^2 - 0.3^2): variances add (0.4 - 0.3 = 0.1 would not)
])
def test_top_up_adds_noise_in_variance_up_to_the_told_level_over_the_ratio(told, own, expected):
    from facedenoise.inference.levels import top_up_std

    assert top_up_std(told, own) == pytest.approx(expected, abs=1e-6)  # 6 digits given


def _correlated_noise(clean: np.ndarray, std: float, seed: int) -> np.ndarray:
    """White noise blurred by a Gaussian of sigma 0.7 and rescaled to `std`: a stand-in for
    camera noise after demosaicing."""
    import cv2

    white = np.random.default_rng(seed).standard_normal(clean.shape).astype(np.float32)
    noise = cv2.GaussianBlur(white, (0, 0), 0.7)
    return np.clip(clean + std * noise / noise.std(), 0, 1)


def test_noise_already_there_reads_correlated_noise_that_the_estimate_reads_low(sample_faces):
    # Told 0.15 of such noise, the fine estimate alone (0.03) topped it up with 0.11 more
    # noise: -0.5 dB on faces (bench_told_levels.py); white noise and clean faces read alike.
    from facedenoise.inference.levels import estimate_level, noise_already_there
    from facedenoise.noise import add_gaussian_noise

    faces = [read_image(path).pixels for path in sample_faces[:4]]
    correlated = [_correlated_noise(face, 0.1, seed) for seed, face in enumerate(faces)]
    assert max(estimate_level(image) for image in correlated) < 0.05
    assert min(noise_already_there(image) for image in correlated) > 0.07
    for seed, face in enumerate(faces):
        white = add_gaussian_noise(face, 0.1, np.random.default_rng(seed))
        assert noise_already_there(white) == pytest.approx(0.1, abs=0.015)  # estimator MAE
        assert noise_already_there(face) < 0.02  # film grain: 0.015 at half scale, Einstein


def test_a_level_told_of_correlated_noise_is_not_topped_up(level_model_file, sample_faces):
    denoiser = Denoiser.load(level_model_file)
    face = read_image(sample_faces[0]).pixels
    assert denoiser.level_and_top_up(_correlated_noise(face, 0.1, 0), 0.1) == (0.1, 0.0)
    assert denoiser.level_and_top_up(face, 0.1)[1] == pytest.approx(0.08, abs=0.005)  # clean


def test_a_level_told_well_above_the_image_noise_is_topped_up_alike_in_every_path(
    level_model_file, mosaic, monkeypatch
):
    # A clean image (estimate 0) told 0.3: noise of 0.3 / 1.25 is added first, seeded per
    # image row, so whole, tiled and banded runs see the same noisy image.
    from facedenoise.inference import levels

    monkeypatch.setattr(levels, "_estimator", lambda: lambda pixels: 0.0)
    expected = levels.add_top_up(mosaic, 0, 0.24) + 0.3
    assert np.abs(expected - mosaic - 0.3).std() > 0.1  # noise was added
    for tile in (512, 64):
        denoiser = Denoiser.load(level_model_file, config=DenoiseConfig(
            tile=tile, tile_overlap=16, chroma_filter=False))
        np.testing.assert_allclose(denoiser.denoise_pixels(mosaic, 0.3), expected, atol=1e-6)
        np.testing.assert_allclose(denoiser.denoise(mosaic, 0.3), np.minimum(expected, 1),
                                   atol=1e-6)  # denoise returns a clipped image
        outputs, used = denoiser.denoise_batch([mosaic], 0.3, return_levels=True)
        np.testing.assert_allclose(outputs[0], expected, atol=1e-6)  # float32 rounding
        assert used == [0.3]


def test_grey_images_come_back_grey_on_every_path(level_model_file, mosaic, monkeypatch):
    # A black-and-white face told 0.3 came back with green and purple blotches (the topped-up
    # noise is coloured, as the models were trained on), and the network draws faint colour
    # on grey input anyway: the output of a grey image is made grey.
    from facedenoise.inference import levels

    monkeypatch.setattr(levels, "_estimator", lambda: lambda pixels: 0.0)
    grey = np.repeat(mosaic.mean(axis=2, keepdims=True), 3, axis=2)
    topped = levels.add_top_up(grey, 0, 0.24)  # what the model gets told 0.3
    tint = np.array([0.02, 0.0, -0.02], np.float32)  # a model that draws colour
    expected = np.repeat(np.clip(topped + 0.3 + tint, None, None).mean(axis=2, keepdims=True),
                         3, axis=2)
    for tile in (512, 64):  # whole and tiled (banded for the stored array)
        denoiser = Denoiser.load(level_model_file, config=DenoiseConfig(
            tile=tile, tile_overlap=16, chroma_filter=False))
        model = denoiser.runtime
        denoiser.runtime = lambda batch, column, model=model: model(batch, column) + tint
        outputs = [denoiser.denoise_pixels(grey, 0.3), denoiser.denoise(grey, 0.3),
                   denoiser.denoise_batch([grey], 0.3)[0]]
        for output in outputs:
            assert np.abs(output[..., 0] - output[..., 2]).max() < 1e-6
        np.testing.assert_allclose(outputs[0], expected, atol=1e-5)
        colour = denoiser.denoise_pixels(mosaic, 0.3)  # colour input keeps the model's tint
        shift = (colour[..., 0] - colour[..., 2]) - (mosaic[..., 0] - mosaic[..., 2])
        assert float(np.mean(shift)) == pytest.approx(0.04, abs=0.01)  # noise, clipping


@pytest.mark.parametrize("value", [-0.01, 1.5, float("nan"), float("inf"), "loud", True, [0.1]])
def test_bad_levels_are_one_line_errors(value):
    from facedenoise.inference import check_noise_level

    with pytest.raises(FaceDenoiseError, match="noise level must be 'auto' or a number") as error:
        check_noise_level(value)
    assert "\n" not in str(error.value)


def test_good_levels_are_accepted():
    from facedenoise.inference import check_noise_level

    assert check_noise_level(None) == "auto" and check_noise_level(" AUTO ") == "auto"
    assert check_noise_level("0.15") == 0.15 and check_noise_level(0) == 0.0
    assert check_noise_level(1) == 1.0


def test_a_level_for_a_model_without_noise_input_is_refused(denoiser, mosaic, fake_estimates):
    assert not denoiser.takes_noise_level
    with pytest.raises(FaceDenoiseError, match="no noise-level input"):
        denoiser.denoise(mosaic, noise_level=0.1)
    assert denoiser.denoise(mosaic, noise_level="auto").shape == mosaic.shape
    assert fake_estimates == []  # nothing to estimate for: the model takes no level
    with pytest.raises(FaceDenoiseError, match="no noise-level input"):
        Denoiser(denoiser.model, DenoiseConfig(noise_level=0.3))


def test_files_record_the_level_they_used(tmp_path, sample_faces, level_model_file,
                                          fake_estimates, denoiser):
    _write_faces(tmp_path / "in", sample_faces, ["a.png", "b.png", "c.png"])
    given = denoise_paths([str(tmp_path / "in"), str(tmp_path / "given")],
                          model=level_model_file, noise_level=0.25)
    assert [(r.noise_level, r.level_estimated) for r in given.done] == [(0.25, False)] * 3
    assert given.noise_levels() == {"min": 0.25, "median": 0.25, "max": 0.25, "estimated": False}
    auto = denoise_paths([str(tmp_path / "in"), str(tmp_path / "auto")], model=level_model_file)
    assert [(r.noise_level, r.level_estimated) for r in auto.done] == [(0.07, True)] * 3
    assert "Noise level (estimated): min 0.070" in str(auto.describe())
    plain = denoise_paths([str(tmp_path / "in"), str(tmp_path / "plain")], model=denoiser)
    assert {r.noise_level for r in plain.done} == {None} and plain.noise_levels() is None
    with pytest.raises(FaceDenoiseError, match="no noise-level input"):
        denoise_paths([str(tmp_path / "in"), str(tmp_path / "refused")], model=denoiser,
                      noise_level=0.1)
    assert not (tmp_path / "refused").exists()


# --- Loading: foreign files versus bugs (issue 13.13) -----------------------------------------


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"\x00" * 64])
def test_foreign_or_damaged_files_are_not_facedenoise_models(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(FaceDenoiseError, match="not a facedenoise model"):
        runs.load_model(path)


def test_a_bug_while_loading_is_not_called_a_foreign_file(tiny_run, monkeypatch):
    import keras

    def buggy(*arguments, **options):
        raise AttributeError("'NoneType' object has no attribute 'shape'")  # a real bug

    monkeypatch.setattr(keras.saving, "load_model", buggy)
    with pytest.raises(AttributeError):
        runs.load_model(tiny_run)


def test_one_default_model_rule(tiny_run, tmp_path, monkeypatch):
    # Issue 13.10: the newest run in --runs, else the packaged starter, for every command.
    assert runs.default_model(tiny_run.parent).parent == tiny_run
    assert runs.default_model(tmp_path / "no-runs") == runs.packaged_weights()
    assert "packaged starter" in runs.describe_model(runs.packaged_weights())
    assert "newest run" in runs.describe_model(runs.default_model(tiny_run.parent),
                                               tiny_run.parent)
    # The packaged starter runs through its ONNX twin; run folders stay Keras.
    assert runs.fast_model_file(runs.packaged_weights()).suffix == ".onnx"
    assert runs.fast_model_file(tiny_run / "best.keras") == tiny_run / "best.keras"


# --- Memory and seams on large photos (issues 13.2 and 13.9) ----------------------------------


def test_memory_grows_with_the_tile_not_the_image():
    # 3000x2000 RGB uint8 is 18 MB stored; as float32 it would be 72 MB, and the old tiler
    # held the image, an accumulator and a weight map in float32 (~39 bytes per pixel:
    # measured 224 MiB here). Now: the 18 MB output plus a band of tile rows and one batch
    # of tiles. The model (an identity, so that the test is quick) allocates in TensorFlow,
    # which tracemalloc does not see; NumPy's allocations are all it counts.
    import tracemalloc

    import keras

    noisy = keras.Input(shape=(None, None, 3))
    identity = keras.Model(noisy, keras.layers.Identity()(noisy))
    config = DenoiseConfig(tile=256, tile_overlap=32, batch_size=4)
    large = Denoiser(identity, config)
    array = np.random.default_rng(0).integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        result = large.denoise(array)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.shape == array.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)  # the identity, tiled and blended
    band = (256 + 256) * 3000 * 3 * 4 * 3  # float32 rows read, blended and converted
    assert peak < array.nbytes + band, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.slow
@pytest.mark.parametrize("width, height", [(1000, 1000), (1920, 1080), (1400, 1000)])
def test_tiles_leave_no_seams_with_the_packaged_model(sample_faces, width, height):
    # Issue 13.9: at the default settings a 1000x1000 photo tiled vs whole differed by up to
    # 5-10/255 along seams ([0, 480, 496]: uneven overlaps); evenly spread tiles fixed that
    # size. With a 32-pixel overlap and its outer quarter as context, 1920x1080 still
    # differed by 9.1/255 and 1400x1000 by 5.8/255 (the starter's output is off by 5.2/255
    # 32 pixels from a tile's edge); the default 96 with the outer third: 0.28 and 0.03.
    # The photo: bundled faces in a mosaic with noise 0.2 (seeded).
    from facedenoise.noise import add_gaussian_noise

    faces = [read_image(path).pixels for path in sample_faces]
    columns = width // 128 + 1
    rows = [np.concatenate([faces[(r * columns + c) % len(faces)] for c in range(columns)],
                           axis=1) for r in range(height // 128 + 1)]
    photo = np.concatenate(rows, axis=0)[:height, :width]
    noisy = add_gaussian_noise(photo, 0.2, np.random.default_rng(0))
    tiled = Denoiser.load("starter").denoise_pixels(noisy)
    whole = Denoiser.load("starter", config=DenoiseConfig(tile=2048)).denoise_pixels(noisy)
    assert np.abs(tiled - whole).max() <= 1 / 255  # below one 8-bit level


def test_the_python_api_prints_no_tensorflow_start_up_lines(tiny_run, mosaic):
    # Issue 13.16: TensorFlow logs (oneDNN, CUDA probing) before its log level applies; the
    # API loads it quietly, as the CLI does. Run without the test suite's log settings.
    import os
    import subprocess
    import sys

    code = (f"import numpy as np; from facedenoise import Denoiser; "
            f"d = Denoiser.load({str(tiny_run)!r}); "
            f"print(d.denoise(np.zeros((40, 40, 3), np.uint8)).shape)")
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    assert "(40, 40, 3)" in result.stdout
    assert result.stderr.strip() == ""


def test_outputs_never_leave_the_output_folder(tmp_path, sample_faces, monkeypatch):
    # Issue 13.5: '*/../../*.png' matched files above the working folder and their outputs
    # were written (and overwritten) outside `out`.
    work = tmp_path / "work"
    _write_faces(tmp_path, sample_faces, ["victim.png"])
    _write_faces(work / "a", sample_faces, ["face.png"])
    monkeypatch.chdir(work)
    with pytest.raises(FaceDenoiseError, match="outside"):
        plan_jobs(["*/../../*.png", "out"], ".denoised", recursive=False)
    # A symbolic link inside the output folder cannot lead the output elsewhere either.
    _write_faces(work / "in" / "sub", sample_faces, ["b.png"])
    (work / "out").mkdir()
    (work / "elsewhere").mkdir()
    (work / "out" / "sub").symlink_to(work / "elsewhere")
    with pytest.raises(FaceDenoiseError, match="outside"):
        plan_jobs(["in", "out"], ".denoised", recursive=True)
    assert list((work / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("suffix", ["/x", "\\x", "..", "a/../b"])
def test_suffixes_with_separators_are_refused(tmp_path, sample_faces, suffix):
    _write_faces(tmp_path, sample_faces, ["a.png"])
    with pytest.raises(FaceDenoiseError, match="--suffix"):
        plan_jobs([str(tmp_path / "a.png")], suffix, recursive=False)


def test_auto_reads_correlated_noise_at_up_to_twice_its_fine_estimate(sample_faces):
    # Told nothing, correlated noise of std 0.1 read 0.029 and gained 1.0 dB on held-out
    # faces (told 0.1: 6 dB); taking the half-scale reading up to twice the fine one gains
    # 2.5 dB more there (docs/noise_estimation.md). White noise and clean faces read as before.
    from facedenoise.inference.levels import (
        CLEAN_BELOW,
        CORRELATED_RATIO,
        auto_level,
        estimate_level,
    )
    from facedenoise.noise import add_gaussian_noise

    faces = [read_image(path).pixels for path in sample_faces[:4]]
    for seed, face in enumerate(faces):
        correlated = _correlated_noise(face, 0.1, seed)
        fine = estimate_level(correlated)
        assert auto_level(correlated) == pytest.approx(CORRELATED_RATIO * fine, rel=1e-6)
        assert 0.05 < auto_level(correlated) < 0.1  # still below the noise's own std
        white = add_gaussian_noise(face, 0.1, np.random.default_rng(seed))
        assert auto_level(white) == pytest.approx(0.1, abs=0.01)  # issue 10's estimator MAE
        assert auto_level(face) < 0.01  # clean (issue 10); film grain reads 0.002-0.004
    clean_readings = [estimate_level(face) for face in faces]
    assert sum(fine < CLEAN_BELOW for fine in clean_readings) >= 2
    for face, fine in zip(faces, clean_readings, strict=True):
        assert fine >= CLEAN_BELOW or auto_level(face) == fine  # below it: one reading only
    denoiser = Denoiser.load("starter")
    correlated = _correlated_noise(faces[0], 0.1, 0)
    used = denoiser.noise_level_for(correlated, "auto")
    assert used == pytest.approx(auto_level(correlated), abs=1e-6)
    small = correlated[:30, :30]  # too small to read at half scale: the fine reading alone
    assert auto_level(small) == estimate_level(small)


def test_auto_never_reads_above_the_highest_level(monkeypatch):
    # Doubling a high fine reading must not leave the levels a model can be told.
    from facedenoise.config import NOISE_LEVEL_RANGE
    from facedenoise.inference import levels

    monkeypatch.setattr(levels, "_estimator", lambda: lambda pixels: 0.6)
    monkeypatch.setattr(levels, "_half_scale", lambda pixels, fine: 1.5)
    assert levels.auto_level(np.zeros((64, 64, 3), np.float32)) == NOISE_LEVEL_RANGE[1]
