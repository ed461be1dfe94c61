"""deploy.cli.settings: each setting's flag, DEPLOY_* variable and make variable come from one
table, and errors name a setting the way the user typed it (flag, or make variable)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deploy import config as deploy_config
from deploy.cli import build_parser, main
from deploy.cli import settings as cli_settings

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::123456789012:role/reranker"


def _flags(command: str) -> set[str]:
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return {a.dest for a in sub._actions if a.dest in deploy_config.FIELDS}


def test_every_setting_belongs_to_a_command_and_each_parser_takes_exactly_its_own():
    taken = {f for fields in cli_settings.COMMANDS.values() for f in fields}
    assert taken == set(deploy_config.FIELDS)
    for command, fields in cli_settings.COMMANDS.items():
        assert _flags(command) == set(fields), command
    assert "transform_input" not in cli_settings.COMMANDS["deploy"]
    assert "mode" not in cli_settings.COMMANDS["transform"]


def test_help_names_the_make_variable_and_the_environment_variable(capsys):
    with pytest.raises(SystemExit):
        main(["transform", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "make INPUT=, env DEPLOY_TRANSFORM_INPUT" in text
    assert "make IMAGE_URI=, env DEPLOY_IMAGE" in text


def test_the_makefile_lists_no_setting_itself():
    """make/deploy.mk hands settings over as make variables; no per-command flag lists."""
    text = (ROOT / "make" / "deploy.mk").read_text()
    passed = set(re.findall(r"\$\(call flag,(\w+),", text))
    names = {deploy_config.make_name(f) for f in deploy_config.FIELDS}
    assert not passed & names, passed & names


def test_make_variables_are_read_and_errors_name_them(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODE", "serverless")
    monkeypatch.setenv("MEMORY_MB", "1000")
    assert main(["--make-variables", "deploy", "--print-trust-policy"]) == 2
    assert "error: MEMORY_MB must be 1024" in capsys.readouterr().err
    # Without --make-variables the same environment is not read at all.
    assert main(["deploy", "--print-trust-policy"]) == 0
    assert json.loads(capsys.readouterr().out)["Statement"]
    # A flag still wins over a make variable, and errors then name the flag's setting.
    assert main(["--make-variables", "deploy", "--memory-mb", "2048",
                 "--print-trust-policy"]) == 0
    capsys.readouterr()


def test_errors_name_flags_outside_make(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = main(["transform", "--role", ROLE, "--transform-input", "in/",
                 "--transform-output", "s3://b/out/", "--print-role-policy"])
    assert code == 2 and "--transform-input must be an s3:// URI" in capsys.readouterr().err
    monkeypatch.setenv("INPUT", "in/")
    monkeypatch.setenv("OUTPUT", "s3://b/out/")
    monkeypatch.setenv("ROLE", ROLE)
    assert main(["--make-variables", "transform", "--print-role-policy"]) == 2
    assert "error: INPUT must be an s3:// URI" in capsys.readouterr().err


def test_the_documented_table_is_the_generated_one():
    """docs/deploy.md shows cli_settings.markdown_table(); regenerate it after a change."""
    assert cli_settings.markdown_table() in (ROOT / "docs" / "deploy.md").read_text()


def test_role_policy_needs_a_region_only_for_the_dlc(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("ROLE", ROLE)
    assert main(["--make-variables", "deploy", "--print-role-policy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no AWS region: set REGION=") and "IMAGE_URI" in err
    monkeypatch.setenv("IMAGE_URI", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/r:cpu")
    monkeypatch.setenv("BUCKET", "models")
    assert main(["--make-variables", "deploy", "--print-role-policy"]) == 0
    statements = {s["Sid"]: s for s in json.loads(capsys.readouterr().out)["Statement"]}
    assert statements["PullImage"]["Resource"].endswith(":repository/r")
