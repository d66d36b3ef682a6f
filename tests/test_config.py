"""radflow._config: the one YAML/JSON reader and the rules every input is checked with."""

from __future__ import annotations

import math

import pytest
import yaml

from radflow._config import (
    Rule,
    YAML12Loader,
    check_mapping,
    check_value,
    describe,
    load_config,
    parse_yaml,
    suggest,
)
from radflow.errors import SettingsError

# -- reading -------------------------------------------------------------------------------------


def test_duplicate_yaml_key_refused_with_file_and_line(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("jobqueue:\n  cores: 4\n  memory: 8GB\n  cores: 8\n")
    with pytest.raises(SettingsError) as info:
        load_config(path, what="cluster configuration")
    assert str(info.value) == f"{path}: line 4: duplicate key 'cores'"


def test_duplicate_json_key_refused(tmp_path):
    path = tmp_path / "params.json"
    path.write_text('{"setting": {"binWidth": 5, "binWidth": 6}}')
    with pytest.raises(SettingsError, match=r"params\.json: duplicate key 'binWidth'"):
        load_config(path)


def test_syntax_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(SettingsError, match=r"bad\.yaml: not valid YAML: line \d+: "):
        load_config(path)
    path = tmp_path / "bad.json"
    path.write_text('{\n"a": 1,\n}')
    with pytest.raises(SettingsError, match=r"bad\.json: not valid JSON: line 3: "):
        load_config(path)
    with pytest.raises(SettingsError, match="spec.yaml: not valid YAML"):
        parse_yaml("a: [", "spec.yaml")


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(SettingsError, match="study spec not found"):
        load_config(tmp_path / "none.yaml", what="study spec")
    other = tmp_path / "x.txt"
    other.write_text("a: 1\n")
    with pytest.raises(SettingsError, match=r"unknown parameter file type '\.txt'"):
        load_config(other, what="parameter file")
    with pytest.raises(SettingsError, match=r"expected \.yaml, \.yml"):
        load_config(tmp_path / "x.txt", suffixes=(".yaml", ".yml"))


def test_yaml_1_2_core_scalars():
    data = parse_yaml("a: yes\nb: 1e-5\nc: on\nd: true\ne: 0x1F\nf: .nan\ng: ~\n")
    assert data["a"] == "yes" and data["c"] == "on" and data["d"] is True
    assert data["b"] == 1e-5 and data["e"] == 31 and math.isnan(data["f"]) and data["g"] is None
    assert yaml.load("a: 1\n", Loader=YAML12Loader) == {"a": 1}  # a SafeLoader subclass


# -- checking ------------------------------------------------------------------------------------

RULES = {
    "binWidth": Rule("float", nullable=True, low=0, low_exclusive=True),
    "label": Rule("int", low=0, low_exclusive=True),
    "correctMask": Rule("bool"),
    "resegmentMode": Rule("str", choices=("absolute", "relative", "sigma")),
    "distances": Rule("int", sequence=True, min_length=1, low=0, low_exclusive=True),
    "spacing": Rule("float", sequence=True, lengths=(2, 3), low=0),
    "initValue": Rule("float", finite=False),
}


@pytest.mark.parametrize(
    "key, value",
    [
        ("binWidth", "25"),  # a string is not a number, though the README once let it pass
        ("binWidth", True),
        ("binWidth", 0),
        ("binWidth", math.inf),
        ("label", 1.0),
        ("label", "1"),
        ("label", True),
        ("correctMask", 1),
        ("correctMask", "true"),
        ("resegmentMode", "Absolute"),
        ("distances", []),
        ("distances", 1),
        ("distances", [1, 1.5]),
        ("spacing", [1, 1, 1, 1]),
        ("initValue", "1"),
    ],
)
def test_wrong_type_or_value_refused(key, value):
    with pytest.raises(SettingsError, match=rf"setting '{key}': .* is not allowed; expected "):
        check_mapping({key: value}, RULES, "setting")


def test_values_normalised():
    out = check_mapping(
        {
            "binWidth": 25,
            "distances": [1, 2],
            "spacing": (1, 2.5),
            "initValue": "nan",
            "label": 2,
            "correctMask": False,
        },
        RULES,
        "setting",
    )
    assert out["binWidth"] == 25 and isinstance(out["binWidth"], int)  # ints stay ints
    assert out["distances"] == (1, 2) and out["spacing"] == (1, 2.5)
    assert math.isnan(out["initValue"]) and out["label"] == 2 and out["correctMask"] is False
    assert check_mapping({"binWidth": None}, RULES, "setting") == {"binWidth": None}
    assert check_mapping(None, RULES, "setting") == {}


def test_null_refused_unless_nullable():
    with pytest.raises(
        SettingsError, match="'label': None is not allowed.*null is not allowed here"
    ):
        check_mapping({"label": None}, RULES, "setting")


def test_unknown_key_with_did_you_mean():
    with pytest.raises(SettingsError) as info:
        check_mapping({"binwidth": 25}, RULES, "params.yaml: setting")
    message = str(info.value)
    assert message.startswith(
        "params.yaml: setting: unknown key 'binwidth' (did you mean 'binWidth'?)"
    )
    assert message.endswith("valid keys: " + ", ".join(RULES))
    with pytest.raises(SettingsError, match=r"unknown key 'zzz'; valid keys"):
        check_mapping({"zzz": 1}, RULES, "setting")
    with pytest.raises(SettingsError, match="belongs elsewhere"):
        check_mapping(
            {"kernelRadius": 1}, RULES, "setting", hint=lambda key: f"{key} belongs elsewhere"
        )


def test_required_keys_and_not_a_mapping():
    rules = {"table": Rule("str", required=True, min_length=1), "seed": Rule("int", low=0)}
    with pytest.raises(SettingsError, match=r"spec 'table' is required \(non-empty text\)"):
        check_mapping({"seed": 1}, rules, "spec")
    with pytest.raises(SettingsError, match="spec must be a mapping"):
        check_mapping([1, 2], rules, "spec")


def test_convert_and_expected():
    codes = {1: "one", 2: "two"}
    rule = Rule(
        "any",
        convert=lambda v: codes[v] if v in codes else v if v in codes.values() else int("x"),
        expected="one, two or a code 1-2",
    )
    assert check_value(rule, 1, "n") == "one" and check_value(rule, "two", "n") == "two"
    with pytest.raises(SettingsError, match="n: 3 is not allowed; expected one, two or a code 1-2"):
        check_value(rule, 3, "n")


def test_describe_and_suggest():
    assert describe(RULES["binWidth"]) == "a number > 0, or null"
    assert describe(RULES["distances"]) == "a non-empty list of integers, each > 0"
    assert describe(RULES["spacing"]) == "a list of numbers, each >= 0, of length 2 or 3"
    assert describe(Rule("int", low=0, high=2)) == "an integer >= 0 and <= 2"
    assert suggest("BINWIDTH", ["binWidth", "binCount"]) == " (did you mean 'binWidth'?)"
    assert suggest("xyz", ["binWidth"]) == ""
