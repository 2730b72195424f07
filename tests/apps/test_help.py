"""`linquant --help` and `linquant CMD --help`: exit 0, every command listed, examples shown."""
import pytest

from conftest import run

COMMANDS = ["train", "quantize", "export", "inspect"]


def test_root_help_lists_commands_and_examples():
    done = run("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout
    assert "Examples:" in done.stdout


def test_no_arguments_prints_help():
    done = run()
    assert done.returncode == 0
    assert "train" in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_has_examples(command):
    done = run(command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"linquant {command}" in done.stdout
    assert "Examples:" in done.stdout


def test_train_help_documents_options():
    text = run("train", "--help").stdout
    for option in ["--data", "--config", "--model", "--epochs", "--qat-epochs", "--batch-size", "--lr",
                   "--seed", "--threads", "--output", "--quick", "--milestones", "--milestone-unit"]:
        assert option in text, option


def test_export_help_documents_options():
    text = run("export", "--help").stdout
    for option in ["--format", "--target", "--precision", "--output", "--input-shape"]:
        assert option in text, option


def test_unknown_option_is_one_line_exit_2():
    done = run("train", "--no-such-option")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "--no-such-option" in done.stderr
