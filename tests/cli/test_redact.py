"""The redaction layer."""

from __future__ import annotations

import json

import pytest
from cli_paths import ROOT

from shipshape.redact import MASK, Redactor, is_secret_key, no_log_options


@pytest.mark.parametrize("key", ["password", "db_password", "DB_PASSWORD", "api_token", "client_secret",
                                 "ssh_key", "key", "apiKey", "redis_server_password", "vault_passwd"])
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["monkey", "keyboard", "restore_redis_keys", "release", "host", "_ansible_no_log",
                                 "lock_held", 3])
def test_not_secret_keys(key):
    assert not is_secret_key(key)


def test_no_log_options_of_the_roles():
    assert "redis_server_password" in no_log_options(ROOT)


def test_values_and_keys_are_masked():
    redactor = Redactor(secret_names={"redis_server_password"})
    redactor.add_vars({"db_password": "S3cr3t-planted-XYZ", "redis_server_password": "redis-pw-1",
                       "release": "2.0.0", "nested": {"api_secret": "nested-secret-9", "key": "events"},
                       "short_token": "ab"})
    data = redactor.data({
        "msg": "login with S3cr3t-planted-XYZ failed",
        "res": {"password": "anything", "cmd": ["echo", "redis-pw-1"], "key": "events", "changed": True},
        "list": ["nested-secret-9", "events"],
        "token": "", "no_log": True,
    })
    assert data["msg"] == f"login with {MASK} failed"
    assert data["res"] == {"password": MASK, "cmd": ["echo", MASK], "key": MASK, "changed": True}
    assert data["list"] == [MASK, "events"]  # a nested "key:" is masked by key, its value is not learnt
    assert data["token"] == "" and data["no_log"] is True
    assert "ab" not in redactor.values  # too short to replace inside text


def test_templates_are_not_secret_values():
    redactor = Redactor()
    redactor.add_vars({"password": "{{ vault_db_password }}"})
    assert redactor.values == set()


def test_scrub_in_place_and_files(tmp_path):
    redactor = Redactor(["S3cr3t-planted-XYZ", 'quote"d-secret'])
    event = {"stdout": "x S3cr3t-planted-XYZ y", "event_data": {"res": {"msg": "S3cr3t-planted-XYZ"}}}
    assert redactor.scrub_in_place(event) is event
    assert "S3cr3t" not in json.dumps(event)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "1-x.json").write_text(json.dumps({"a": 'quote"d-secret', "password": "p"}))
    (tmp_path / "stdout").write_text("S3cr3t-planted-XYZ\n")
    (tmp_path / "clean").write_text("nothing here\n")
    assert redactor.scrub_tree(tmp_path) == 2
    assert json.loads((tmp_path / "sub" / "1-x.json").read_text()) == {"a": MASK, "password": MASK}
    assert (tmp_path / "stdout").read_text() == MASK + "\n"
