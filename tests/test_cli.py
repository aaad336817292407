"""The CLI contract: commands, --version, --help without TensorFlow, one-line errors."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facedenoise import __version__
from facedenoise.cli import app

runner = CliRunner()
COMMANDS = ("prepare", "train", "evaluate", "denoise", "models")


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_bool_type_in_help(command):
    # Issue 13: `--dry-run <bool>` read as if the flag took a value.
    result = runner.invoke(app, [command, "--help"], terminal_width=120)
    assert result.exit_code == 0 and "<bool>" not in result.output and "--" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"facedenoise {__version__}"


def test_cli_import_and_help_do_not_import_tensorflow():
    code = (
        "import sys; from typer.testing import CliRunner; import facedenoise.cli as cli; "
        "assert CliRunner().invoke(cli.app, ['train', '--help']).exit_code == 0; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "facedenoise", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_unknown_option_is_a_usage_error():
    result = runner.invoke(app, ["train", "--no-such-option"])
    assert result.exit_code == 2


@pytest.mark.parametrize("arguments, pointer", [
    (["train", "--no-such-option"], "facedenoise train --help"),
    # an option short of its values is found by the parser, which names no command
    (["evaluate", "--pairs", "x"], "facedenoise evaluate --help"),
    (["no-such-command"], "facedenoise --help"),
])
def test_usage_errors_point_to_the_right_help(arguments, pointer):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2 and f"(see '{pointer}')" in result.output, result.output


def test_train_without_prepared_data_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "missing"),
                                 "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "facedenoise prepare" in result.output
    assert "Traceback" not in result.output


def test_unknown_architecture_is_one_line(tmp_path):
    result = runner.invoke(app, ["train", "--dry-run", "--arch", "resnet"])
    assert result.exit_code == 1
    assert "unet, original" in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_models_lists_parameters_and_gmacs():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "4,581,507" in result.output
    assert "14.60" in result.output


def test_models_does_not_import_training():
    """`facedenoise models` builds the architectures only: training (and its tf.data, loss and
    callback modules) stays unimported."""
    code = (
        "import sys; from typer.testing import CliRunner; import facedenoise.cli as cli; "
        "result = CliRunner().invoke(cli.app, ['models', '--size', '32']); "
        "assert result.exit_code == 0, result.output; "
        "assert 'GMACs' in result.output; "
        "assert 'facedenoise.train' not in sys.modules, 'facedenoise.train was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_into_a_closed_pipe_ends_without_a_traceback():
    # `facedenoise evaluate --help | head -0`: the reader is gone before the help is written.
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "facedenoise", "evaluate", "--help"],
            stdout=write_end, stderr=subprocess.PIPE, timeout=60,
        )
    finally:
        os.close(write_end)
    assert b"Traceback" not in result.stderr
    assert result.returncode != 0


def test_help_paragraphs_flow_to_the_terminal_width():
    # Typer 0.29 keeps the docstring's source line breaks; at 80 columns that left ragged
    # half-empty lines. The sentence below spans a source line break in export's docstring.
    result = CliRunner().invoke(app, ["export", "--help"], terminal_width=80,
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0
    # Before: "...compared with the Keras model" / "on a real" / "noisy face (max ...".
    assert "on a real noisy face" in result.output


def test_train_init_takes_the_width_of_its_weights(tiny_conditional_run, prepared_sample):
    # The packaged starter is wider than the default resunet: `--init` alone must fine-tune
    # it, not fail on a shape mismatch. The tiny run is width 4, depth 2.
    from facedenoise.config import ModelConfig
    from facedenoise.models import build_model

    expected = build_model(ModelConfig(arch="resunet", width=4, depth=2)).count_params()
    common = ["train", "--dry-run", "--data", str(prepared_sample), "--depth", "2",
              "--init", str(tiny_conditional_run)]
    result = runner.invoke(app, common, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"{expected:,}" in result.output
    wider = runner.invoke(app, [*common, "--width", "6"], terminal_width=200)
    assert wider.exit_code == 0 and f"{expected:,}" not in wider.output  # --width still wins


def test_train_init_starter_takes_its_level_modulation(prepared_sample):
    # The packaged starter modulates every block by the level (FiLM) since its sixth polish;
    # the README's first command (`train --init starter`) failed on the plain network's
    # shapes ("a different architecture").
    from facedenoise.models import build_model
    from facedenoise.runs import packaged_weights, stored_model_config

    starter = build_model(stored_model_config(packaged_weights())).count_params()
    result = runner.invoke(app, ["train", "--dry-run", "--data", str(prepared_sample),
                                 "--init", "starter"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"{starter:,}" in result.output


def _readme_main_job() -> list[list[str]]:
    """The `facedenoise ...` commands of the README's first code block, as argument lists."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [shlex.split(part) for part in block.replace("\\\n", " ").split("&&")]
    return [command[1:] for command in commands if command[:1] == ["facedenoise"]]


def test_the_readme_main_job_trains_from_the_starter(prepared_sample, tmp_path):
    # The README's first command fine-tunes the packaged weights; after they gained the level
    # in every block it failed at once ("a different architecture"), and only a person
    # running it saw. Its train command runs here as written, shortened to two small steps.
    train = next(command for command in _readme_main_job() if command[0] == "train")
    assert "--init" in train and "starter" in train
    result = runner.invoke(app, [*train, "--data", str(prepared_sample), "--runs",
                                 str(tmp_path / "runs"), "--epochs", "1",
                                 "--steps-per-epoch", "2", "--batch-size", "2"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "runs").glob("*/best.keras"))


def test_options_a_resumed_run_ignores_are_named(tmp_path):
    # --resume continues with the run's stored settings: a new learning rate or batch size
    # given beside it was dropped without a word.
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "gone"), "--lr", "5",
                                 "--batch-size", "2", "--epochs", "3"])
    output = " ".join(result.output.split())
    assert "ignored: --lr, --batch-size." in output
    assert "--epochs" not in output.split("ignored:")[1]  # extending a run is allowed
    assert result.exit_code == 1 and "is not a run folder" in output


def test_clean_fraction_without_a_range_is_named_as_ignored(tmp_path):
    result = runner.invoke(app, ["train", "--clean-fraction", "0.2", "--data", str(tmp_path)])
    assert "--clean-fraction applies only with --noise-range; ignored." in (
        " ".join(result.output.split()))
    plain = runner.invoke(app, ["train", "--data", str(tmp_path)])
    assert "ignored" not in plain.output
    power = runner.invoke(app, ["train", "--level-weight-power", "1", "--data", str(tmp_path)])
    assert "--level-weight-power applies only with --noise-range; ignored." in (
        " ".join(power.output.split()))


def test_a_negative_level_weight_power_is_refused(prepared_sample):
    result = runner.invoke(app, ["train", "--dry-run", "--data", str(prepared_sample),
                                 "--noise-range", "0:0.5", "--level-weight-power", "-1"],
                           terminal_width=200)
    assert result.exit_code == 1
    assert result.output.strip() == "error: --level-weight-power must be a number >= 0, not -1.0."


def test_dry_run_refuses_settings_the_model_cannot_use(tmp_path):
    # --dry-run said nothing about these; the real run refused them after loading TensorFlow.
    result = runner.invoke(app, ["train", "--arch", "original", "--loss-after-chroma",
                                 "--dry-run", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "needs a noise-conditional model" in " ".join(result.output.split())


@pytest.mark.parametrize("arch, extra", [("nafunet", []), ("resunet", ["--no-noise-input"])])
def test_level_modulation_is_refused_where_no_block_could_take_it(prepared_sample, arch, extra):
    result = runner.invoke(app, ["train", "--dry-run", "--data", str(prepared_sample),
                                 "--arch", arch, "--level-modulation", *extra],
                           terminal_width=200)
    assert result.exit_code == 1
    assert result.output.startswith("error: --level-modulation works with --arch resunet")
    assert len(result.output.strip().splitlines()) == 1


def test_level_modulation_adds_its_parameters(prepared_sample):
    common = ["train", "--dry-run", "--data", str(prepared_sample), "--width", "8"]
    plain = runner.invoke(app, common, terminal_width=200)
    modulated = runner.invoke(app, [*common, "--level-modulation"], terminal_width=200)
    assert plain.exit_code == modulated.exit_code == 0, modulated.output
    assert "272,227" in plain.output and "295,523" in modulated.output


def test_dry_run_refuses_a_patch_larger_than_the_training_images(prepared_sample):
    # The real run refused it after loading TensorFlow and the data; --dry-run printed a model.
    result = runner.invoke(app, ["train", "--dry-run", "--data", str(prepared_sample),
                                 "--patch-size", "256"], terminal_width=200)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: --patch-size 256 is larger than the training images (128 pixels); choose at "
        "most 128."]
    fits = runner.invoke(app, ["train", "--dry-run", "--data", str(prepared_sample),
                               "--patch-size", "96"])
    assert fits.exit_code == 0, fits.output


def test_dry_run_of_a_resume_describes_the_runs_model(tiny_run):
    # The run's stored model (a tiny one), not the command line's default architecture.
    from facedenoise.config import load_run_config
    from facedenoise.models import build_model

    stored = load_run_config(tiny_run / "config.json").model
    result = runner.invoke(app, ["train", "--resume", str(tiny_run), "--dry-run"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"{build_model(stored).count_params():,}" in result.output
    assert f"│ {stored.arch} " in result.output
