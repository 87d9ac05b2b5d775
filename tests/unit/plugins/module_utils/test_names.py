"""module_utils/names: the one check of a systemd unit name and of a compose service name that release_state,
release_status, service_env, log_search, compose_release_state and the variable rules share."""

from __future__ import annotations

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils.names import (
    UNIT_SUFFIXES, is_compose_service, is_unit_name,
)


@pytest.mark.parametrize("name", ["sample_app.service", "sample_app.socket", "getty@tty1.service",
                                  "app-worker:2.timer", "a", "x" * 255])
def test_a_unit_name_is_accepted(name):
    assert is_unit_name(name)


@pytest.mark.parametrize("name", [
    "", "-H", "--no-pager", ":x.service", ".hidden.service", "_x.service",  # could read as an option, or not a name
    "a b.service", "a;rm -rf /", "$(id).service", "a/b.service", "mnt-a\\x2db.mount", "a\n.service",
    "sample_app.service\n", "x" * 256, None, 3,
])
def test_a_name_that_is_not_a_unit_or_could_read_as_an_option_is_refused(name):
    assert not is_unit_name(name)


def test_a_unit_suffix_is_checked_only_when_asked():
    assert is_unit_name("sample_app", None)
    assert not is_unit_name("sample_app", UNIT_SUFFIXES)
    assert not is_unit_name("sample_app.mount", UNIT_SUFFIXES)
    assert is_unit_name("sample_app.timer", UNIT_SUFFIXES)


@pytest.mark.parametrize("name, ok", [
    ("web", True), ("email-worker", True), ("api_2.x", True), ("x" * 63, True),
    ("x" * 64, False), ("-web", False), ("web app", False), ("web;id", False), ("web:1", False), ("", False),
    ("web\n", False), (None, False),
])
def test_a_compose_service_name(name, ok):
    assert is_compose_service(name) is ok
