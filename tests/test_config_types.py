"""Typed configuration at the boundary: coercion rules, YAML files, runtime settings."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from energizer_hf.config_types import (
    PRECISIONS,
    check_kwargs,
    check_runtime,
    coerce_dataclass,
    coerce_fields,
    coerce_value,
    load_yaml_mapping,
    single_split_files,
)
from energizer_hf.errors import (
    AcceleratorUnavailableError,
    ConfigError,
    ConfigFileError,
    EnergizerError,
)

OK = [
    # booleans: real ones and the usual spellings, any case
    (bool, True, True),
    (bool, "no", False),
    (bool, "No", False),
    (bool, "YES", True),
    (bool, "on", True),
    (bool, " off ", False),
    (bool, "true", True),
    (bool, "False", False),
    (bool, "1", True),
    (bool, "0", False),
    (bool, 1, True),
    (bool, 0, False),
    (bool, np.bool_(True), True),
    # integers: whole numbers from numbers and numeric strings
    (int, 3, 3),
    (int, "3", 3),
    (int, " 12 ", 12),
    (int, "1e3", 1000),
    (int, 3.0, 3),
    (int, np.int64(7), 7),
    (int, "-1", -1),
    # floats: numbers and numeric strings (PyYAML's "1e-3")
    (float, "1e-3", 0.001),
    (float, "5E-5", 5e-05),
    (float, 2, 2.0),
    (float, np.float32(0.5), 0.5),
    (float, "inf", float("inf")),
    # strings
    (str, "train", "train"),
    (str, 2020, "2020"),
    (str, Path("runs/x"), "runs/x"),
    # optional
    (int | None, None, None),
    (int | None, "null", None),
    (int | None, "None", None),
    (int | None, "5", 5),
    (str | None, "~", None),
    (typing.Optional[float], "1e-2", 0.01),  # noqa: UP045 - the typing spelling must work too
    # containers
    (list[str], ["a", "b"], ["a", "b"]),
    (list[int], ("1", 2), [1, 2]),
    (list[str] | None, None, None),
    (dict[str, str], {"train": "a.csv"}, {"train": "a.csv"}),
    (dict[str, int], {"a": "1"}, {"a": 1}),
    (dict[str, Any] | None, {"base": "badge", "k": [1]}, {"base": "badge", "k": [1]}),
    (tuple[int, ...], [1, "2"], (1, 2)),
    (list[Any], [{"name": "x"}, "y"], [{"name": "x"}, "y"]),
    # literal choices, case-insensitive for strings
    (Literal["random", "stratified"], "Random", "random"),
    (Literal["error", "drop"], "drop", "drop"),
    # anything
    (Any, object, object),
    (int | str, 3, 3),
    (int | str, "x", "x"),
]

BAD = [
    # (hint, value, words the message must contain)
    (bool, "nope", ["a boolean", "'nope'"]),
    (bool, 2, ["a boolean"]),
    (bool, "", ["a boolean"]),
    (bool, None, ["a boolean"]),
    (int, 2.5, ["an integer", "not a whole number"]),
    (int, "2.5", ["an integer", "not a whole number"]),
    (int, True, ["an integer", "boolean is not a number"]),
    (int, "three", ["an integer", "not a number"]),
    (int, None, ["an integer"]),
    (float, True, ["a number", "boolean"]),
    (float, "abc", ["a number", "'abc' is not a number"]),
    (float, "nan", ["NaN"]),
    (float, [1], ["a number"]),
    (str, True, ["a string", "quote"]),
    (str, 1.10, ["a string", "quote"]),
    (str, ["a"], ["a string"]),
    (int | None, "x", ["an integer", "or null"]),
    (list[str], "a,b", ["a list of str", "YAML list"]),
    (list[int], [1, "x"], ["[1]", "an integer"]),
    (dict[str, str], "train.csv", ["a mapping of str to str"]),
    (dict[str, int], {"a": "x"}, ["['a']", "an integer"]),
    (tuple[int, int], [1], ["expected 2 items"]),
    (
        Literal["random", "stratified"],
        "stratifed",
        ["one of 'random', 'stratified'", "did you mean 'stratified'"],
    ),
]


@pytest.mark.parametrize("hint, value, expected", OK)
def test_coerce_accepts(hint, value, expected):
    out = coerce_value(value, hint, "f")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("hint, value, words", BAD)
def test_coerce_refuses_with_the_field_value_and_type(hint, value, words):
    with pytest.raises(ConfigError) as info:
        coerce_value(value, hint, "the_field")
    message = str(info.value)
    assert message.startswith("the_field"), message
    for word in words:
        assert word in message, message
    assert isinstance(info.value, EnergizerError)


@dataclass
class Cfg:
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate."})
    reset_weights: bool = True
    rounds: int | None = 5
    data_files: dict[str, str] | None = field(
        default=None, metadata={"help": "Split name → local file, e.g. {train: a.csv}."}
    )
    label_names: list[str] | None = None
    mode: Literal["error", "drop"] = "error"
    anything: Any = None


def test_all_errors_in_one_message_with_unknown_fields_named():
    data = {
        "learning_rate": "fast",
        "reset_weights": "nope",
        "rounds": 2.5,
        "data_files": "train.csv",
        "learnig_rate": 1,
        "mode": "dorp",
    }
    with pytest.raises(ConfigError) as info:
        coerce_fields(Cfg, data, source="cfg.yaml")
    err = info.value
    assert len(err.errors) == 6
    text = str(err)
    assert text.startswith("cfg.yaml: 6 configuration values are wrong:")
    for piece in (
        "learning_rate: got 'fast' (str), expected a number",
        "[learning_rate: Peak learning rate]",
        "reset_weights: got 'nope'",
        "rounds: got 2.5 (float), expected an integer, or null",
        "data_files: got 'train.csv' (str), expected a mapping of str to str",
        "e.g. {train: a.csv}",
        "learnig_rate: not a known field (did you mean 'learning_rate'?)",
        "mode: got 'dorp'",
        "did you mean 'drop'?",
    ):
        assert piece in text, text


def test_data_files_hook_follows_the_datasets_convention():
    out = coerce_fields(Cfg, {"data_files": "train.csv"}, hooks={"data_files": single_split_files})
    assert out == {"data_files": {"train": "train.csv"}}
    assert single_split_files({"train": "a", "test": "b"}) == {"train": "a", "test": "b"}


def test_the_yaml_strings_of_issue_14_are_coerced():
    out = coerce_fields(Cfg, {"learning_rate": "1e-3", "reset_weights": "no", "rounds": "3"})
    assert out == {"learning_rate": 0.001, "reset_weights": False, "rounds": 3}


def test_a_token_in_a_bad_value_is_not_echoed():
    token = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    with pytest.raises(ConfigError) as info:
        coerce_fields(Cfg, {"rounds": token, token: 1})
    assert token not in str(info.value) and "hf_***" in str(info.value)


def test_coerce_dataclass_in_place_and_post_init_use():
    @dataclass
    class Validated(Cfg):
        def __post_init__(self) -> None:
            coerce_dataclass(self)

    cfg = Validated(learning_rate="1e-3", reset_weights="off", rounds="null")
    assert (cfg.learning_rate, cfg.reset_weights, cfg.rounds) == (0.001, False, None)
    again = dataclasses.replace(cfg, rounds="4")  # the command line's path
    assert again.rounds == 4
    with pytest.raises(ConfigError) as info:
        Validated(reset_weights="maybe", rounds=[1])
    assert len(info.value.errors) == 2


def test_every_runconfig_field_type_is_understood():
    """RunConfig's own hints: its defaults pass, and YAML strings are coerced."""
    from energizer_hf.learner import RunConfig

    hints = typing.get_type_hints(RunConfig)
    defaults = {f.name: getattr(RunConfig(), f.name) for f in dataclasses.fields(RunConfig)}
    assert coerce_fields(RunConfig, defaults) == defaults
    out = coerce_fields(
        RunConfig,
        {"learning_rate": "1e-3", "reset_weights": "no", "max_rounds": "3", "hub_private": "off"},
    )
    assert out == {
        "learning_rate": 0.001,
        "reset_weights": False,
        "max_rounds": 3,
        "hub_private": False,
    }
    assert hints["data_files"] == (dict[str, str] | None)


def test_check_kwargs_names_unknown_strategy_arguments():
    from energizer_hf.query_strategies.registry import get_strategy_class

    with pytest.raises(ConfigError) as info:
        check_kwargs(get_strategy_class("entropy"), {"temperature": 2}, "strategy_args of entropy")
    assert "unknown argument 'temperature'" in str(info.value) and "accepted: model" in str(
        info.value
    )
    check_kwargs(get_strategy_class("random_subset"), {"subpool_size": 5, "x": 1}, "s")  # **kwargs

    def fn(a, *, subpool_size=1):
        return a

    with pytest.raises(ConfigError, match="did you mean 'subpool_size'"):
        check_kwargs(fn, {"subpool_sise": 3}, "strategy_args")
    check_kwargs(fn, {"a": 1, "subpool_size": 2}, "strategy_args")


# ---------------------------------------------------------------------- YAML files
YAML_BAD = [
    ("tab indentation", "stopping:\n\t- name: x\n", ["indented with a tab on line 2", "spaces"]),
    ("tab in a mapping", "strategy_args:\n  base: badge\n\tk: 1\n", ["tab on line 3"]),
    ("unclosed list", "label_names: [a, b\nrounds: 3\n", ["not valid YAML", "line", "column"]),
    ("bad mapping", "rounds: 3\n  seed: 1\n", ["not valid YAML on line 2", "2 |   seed: 1", "^"]),
    ("duplicate key", "rounds: 3\nseed: 1\nrounds: 4\n", ["'rounds' twice", "line 1", "line 3"]),
    ("list top level", "- rounds: 3\n", ["must be a mapping", "a list"]),
    ("scalar top level", "just text\n", ["must be a mapping", "str"]),
    ("non-string key", "1: x\n", ["must be strings"]),
]


@pytest.mark.parametrize("case, text, words", YAML_BAD, ids=[c[0] for c in YAML_BAD])
def test_yaml_errors_are_named_with_where_and_what_to_do(tmp_path, case, text, words):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as info:
        load_yaml_mapping(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_yaml_missing_file_directory_and_encoding(tmp_path):
    with pytest.raises(ConfigFileError, match="does not exist"):
        load_yaml_mapping(tmp_path / "nope.yaml")
    with pytest.raises(ConfigFileError, match="is a directory"):
        load_yaml_mapping(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("dataset: caf\xe9.csv\n".encode("latin-1"))
    with pytest.raises(ConfigFileError, match="not UTF-8 .*line 1"):
        load_yaml_mapping(latin)


def test_yaml_good_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("\ufeff# a comment\nlearning_rate: 1e-3\nreset_weights: 'no'\nrounds: 3\n")
    data = load_yaml_mapping(path)
    assert data == {"learning_rate": "1e-3", "reset_weights": "no", "rounds": 3}  # PyYAML's view
    assert coerce_fields(Cfg, data) == {"learning_rate": 0.001, "reset_weights": False, "rounds": 3}
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert load_yaml_mapping(tmp_path / "empty.yaml") == {}


def test_yaml_error_does_not_echo_a_token(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("hub_repo_id: [hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345\n")
    with pytest.raises(ConfigFileError) as info:
        load_yaml_mapping(path)
    assert "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345" not in str(info.value)


# ---------------------------------------------------------------------- runtime
def test_precision_list_is_lightnings():
    from lightning_fabric.plugins.precision.precision import _PRECISION_INPUT

    values = set()
    for literal in typing.get_args(_PRECISION_INPUT):
        values |= {str(v) for v in typing.get_args(literal)}
    assert values == set(PRECISIONS)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed", "32", 32, "bf16", 16])
def test_valid_precisions(precision):
    check_runtime(precision, "cpu", 1)


@pytest.mark.parametrize(
    "precision, close",
    [
        ("bf16x", "bf16"),
        ("fp16", "16"),
        ("32-mixed", "32-true"),
        ("mixed", None),
        (True, None),
        (None, None),
    ],
)
def test_precision_typos_name_the_valid_values(precision, close):
    with pytest.raises(ConfigError) as info:
        check_runtime(precision, "cpu", 1)
    text = str(info.value)
    assert "precision" in text and "bf16-mixed" in text and "32-true" in text
    if close:
        assert "did you mean" in text


@pytest.mark.parametrize("accelerator", ["gpus", "cuda:0", "cpus", ""])
def test_accelerator_typos(accelerator):
    with pytest.raises(ConfigError, match="not a Lightning accelerator|expected one of") as info:
        check_runtime("32-true", accelerator, 1)
    assert not isinstance(info.value, AcceleratorUnavailableError)


@pytest.mark.parametrize("devices", [0, -2, "x", [], [0, -1], True, 1.5, "0,a"])
def test_malformed_devices(devices):
    with pytest.raises(ConfigError, match="devices"):
        check_runtime("32-true", "cpu", devices)


@pytest.mark.parametrize("devices", [1, 4, -1, "auto", "2", [0, 1], "0,1"])
def test_cpu_takes_any_number_of_processes(devices):
    check_runtime("32-true", "cpu", devices)
    check_runtime("32-true", "auto", devices)


def test_gpu_accelerator_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for accelerator in ("gpu", "cuda", "GPU", "mps"):
        with pytest.raises(AcceleratorUnavailableError, match="has no .*accelerator: cpu"):
            check_runtime("32-true", accelerator, 1)


@pytest.mark.gpu
def test_gpu_accelerator_and_device_count():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    n = torch.cuda.device_count()
    check_runtime("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed", "gpu", n)
    check_runtime("16-mixed", "cuda", [n - 1])
    with pytest.raises(AcceleratorUnavailableError, match=f"has {n}"):
        check_runtime("32-true", "cuda", n + 1)
    with pytest.raises(AcceleratorUnavailableError):
        check_runtime("32-true", "gpu", list(range(n + 1)))
