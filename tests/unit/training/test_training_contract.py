"""SageMaker contract parsing: environment, command line, typed hyperparameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmops_training.contract import (
    DEFAULT_BASE_MODEL,
    Hyperparameters,
    TrainingEnv,
    failure_file,
    parse_cli_args,
    parse_hyperparameters,
)
from fmops_training.errors import ContractError, HyperparameterError


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_CHANNEL_TRAIN": str(tmp_path / "train"),
        "SM_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
    }
    env.update(extra)
    return env


def test_defaults() -> None:
    hps = parse_hyperparameters({})
    assert hps == Hyperparameters()
    assert (hps.epochs, hps.learning_rate, hps.batch_size, hps.max_length, hps.seed) == (1, 5e-5, 32, 32, 42)
    assert (hps.warmup_ratio, hps.weight_decay, hps.eval_steps) == (0.1, 0.01, 0)
    assert hps.base_model == DEFAULT_BASE_MODEL == "sentence-transformers/all-MiniLM-L6-v2"


def test_string_and_json_encoded_values_are_typed() -> None:
    hps = parse_hyperparameters(
        {"epochs": '"3"', "learning_rate": "2e-4", "batch_size": 16, "max_length": "64.0", "base_model": '"x/y"'}
    )
    assert hps.epochs == 3 and isinstance(hps.epochs, int)
    assert hps.learning_rate == pytest.approx(2e-4)
    assert hps.batch_size == 16
    assert hps.max_length == 64
    assert hps.base_model == "x/y"


def test_warmup_steps() -> None:
    assert parse_hyperparameters({"warmup_steps": "5"}).warmup_steps == 5
    assert Hyperparameters().warmup_steps == 0


def test_base_model_channel_names(tmp_path: Path) -> None:
    assert TrainingEnv.from_environ(_env(tmp_path, SM_CHANNEL_MODEL="/m")).model_channel_dir == Path("/m")
    env = _env(tmp_path, SM_CHANNEL_MODEL="/m", SM_CHANNEL_BASE_MODEL="/b")
    assert TrainingEnv.from_environ(env).model_channel_dir == Path("/b")


def test_sagemaker_keys_are_ignored() -> None:
    hps = parse_hyperparameters({"sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://b/k"})
    assert hps == Hyperparameters()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("learning_rate", "abc", "hyperparameter learning_rate: could not parse 'abc' as a float"),
        ("epochs", "abc", "hyperparameter epochs: could not parse 'abc' as an int"),
        ("batch_size", "2.5", "hyperparameter batch_size: could not parse '2.5' as an int"),
        ("epochs", "0", "hyperparameter epochs: must be between 1 and 1000, got 0"),
        ("learning_rate", "-1", "hyperparameter learning_rate: must be > 0 and <= 1, got -1.0"),
        ("learning_rate", "nan", "hyperparameter learning_rate: must be a finite number"),
        ("warmup_ratio", "1.5", "hyperparameter warmup_ratio: must be between 0 and 0.99"),
        ("eval_steps", "-3", "hyperparameter eval_steps: must be >= 0"),
        ("base_model", " ", "hyperparameter base_model: must be a non-empty string"),
        ("lerning_rate", "1e-4", "hyperparameter lerning_rate: unknown hyperparameter (known: base_model,"),
    ],
)
def test_bad_hyperparameters_name_the_culprit(key: str, value: str, message: str) -> None:
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters({key: value})
    assert str(info.value).startswith(message)
    assert info.value.name == key


def test_cli_args_forms() -> None:
    assert parse_cli_args(["--epochs", "2", "--learning-rate=1e-4", "--base_model", "m"]) == {
        "epochs": "2",
        "learning_rate": "1e-4",
        "base_model": "m",
    }


@pytest.mark.parametrize(("argv", "text"), [(["--epochs"], "has no value"), (["epochs", "2"], "unexpected")])
def test_cli_args_errors(argv: list[str], text: str) -> None:
    with pytest.raises(ContractError, match=text):
        parse_cli_args(argv)


def test_env_and_args_merge_args_win(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        SM_HPS=json.dumps({"epochs": "2", "learning_rate": "1e-4", "sagemaker_program": "train.py"}),
        SM_CHANNEL_VALIDATION=str(tmp_path / "val"),
        SM_HOSTS='["algo-1","algo-2"]',
        SM_CURRENT_HOST="algo-2",
        SM_NUM_GPUS="1",
    )
    te = TrainingEnv.from_environ(env, ["--learning_rate", "3e-4", "--seed", "7"])
    assert te.hyperparameters.epochs == 2
    assert te.hyperparameters.learning_rate == pytest.approx(3e-4)
    assert te.hyperparameters.seed == 7
    assert te.model_dir == tmp_path / "model"
    assert te.train_dir == tmp_path / "train"
    assert te.validation_dir == tmp_path / "val"
    assert te.model_channel_dir is None
    assert te.output_data_dir == tmp_path / "output" / "data"
    assert te.failure_file == tmp_path / "output" / "failure" == failure_file(env)
    assert te.hosts == ("algo-1", "algo-2") and te.current_host == "algo-2" and te.num_gpus == 1
    assert te.checkpoint_dir == tmp_path / "ckpt" and te.checkpoint_dir.is_dir()


def test_unwritable_checkpoint_dir_is_disabled(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    te = TrainingEnv.from_environ(_env(tmp_path, SM_CHECKPOINT_DIR=str(blocker / "ckpt")))
    assert te.checkpoint_dir is None


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        ({"SM_HPS": "{not json"}, "SM_HPS is not valid JSON"),
        ({"SM_HPS": "[1]"}, "SM_HPS must be a JSON object"),
        ({"SM_HOSTS": "[]"}, "SM_HOSTS must be a non-empty JSON list"),
        ({"SM_CURRENT_HOST": "algo-9"}, "SM_CURRENT_HOST 'algo-9' is not in SM_HOSTS"),
        ({"SM_NUM_GPUS": "many"}, "SM_NUM_GPUS must be an integer"),
        ({"SM_HPS": '{"learning_rate": "abc"}'}, "hyperparameter learning_rate: could not parse 'abc' as a float"),
    ],
)
def test_bad_environment(tmp_path: Path, extra: dict[str, str], text: str) -> None:
    with pytest.raises((ContractError, HyperparameterError), match=text):
        TrainingEnv.from_environ(_env(tmp_path, **extra))


def test_train_channel_is_required(tmp_path: Path) -> None:
    env = _env(tmp_path)
    del env["SM_CHANNEL_TRAIN"]
    with pytest.raises(ContractError, match="SM_CHANNEL_TRAIN is not set"):
        TrainingEnv.from_environ(env)


def test_default_checkpoint_dir_only_inside_a_container(tmp_path: Path) -> None:
    if Path("/opt/ml").exists():
        pytest.skip("this machine has /opt/ml")
    env = _env(tmp_path)
    del env["SM_CHECKPOINT_DIR"]
    assert TrainingEnv.from_environ(env).checkpoint_dir is None
    assert not Path("/opt/ml").exists()
