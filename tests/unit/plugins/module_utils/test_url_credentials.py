"""The credentials a URL carries (module_utils/url_credentials): masked in messages, taken out of records, named
for masking wherever a module's result could show them."""

from __future__ import annotations

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils.url_credentials import (
    mask_passwords, url_secrets, without_credentials,
)


@pytest.mark.parametrize("text, expected", [
    ("GET https://ci:s3cret@host/x failed", "GET https://ci:***@host/x failed"),
    ("redis://:p@ss@db:6379/0 refused", "redis://:***@db:6379/0 refused"),  # a raw @ in the password
    ("'postgres://app:pw@db/app'", "'postgres://app:***@db/app'"),
    ("https://host/path and ssh://git@host/x", "https://host/path and ssh://git@host/x"),  # no password, no change
])
def test_a_urls_password_is_masked_and_its_user_kept(text, expected):
    assert mask_passwords(text, "***") == expected


def test_a_mask_is_inserted_as_it_is():
    assert mask_passwords("http://u:p@h/", r"\1[REDACTED]") == r"http://u:\1[REDACTED]@h/"


@pytest.mark.parametrize("text, expected", [
    ("git https://ci:tok@host/app.git v1", "git https://host/app.git v1"),
    ("https://ghp_tokenAsUserName0123@github.com/a/b", "https://github.com/a/b"),
    ("/srv/git/app.git", "/srv/git/app.git"),
])
def test_a_record_keeps_no_user_information(text, expected):
    assert without_credentials(text) == expected


@pytest.mark.parametrize("url, expected", [
    ("https://ci:s3cr%40t@host/app.git", ["s3cr%40t", "s3cr@t"]),
    ("https://ghp_tokenAsUserName0123@host/app.git", ["ghp_tokenAsUserName0123"]),
    ("ssh://git@host/app.git", []),  # a short user name alone is a user name, not a token
    ("/srv/git/app.git", []),
    ("http://[::1/x", []),  # not a URL that can be read
])
def test_what_a_url_holds_that_must_not_be_shown(url, expected):
    assert url_secrets(url) == expected
