"""module_utils/release_files.path_problem: the one check of an app root (and of the paths beside it) that
release_state, compose_release_state, app_layout and release_status share."""

from __future__ import annotations

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils.release_files import path_problem


@pytest.mark.parametrize("path", ["/srv/app", "/srv/app/", "/opt/my-app_2.0/x"])
def test_an_absolute_clean_path_is_accepted(path):
    assert path_problem(path) is None


@pytest.mark.parametrize("path, why", [
    ("srv/app", "must be an absolute path"),
    ("", "must be an absolute path"),
    (None, "must be an absolute path"),
    ("/", "must be an absolute path other than /"),
    ("//", "must be an absolute path other than /"),
    ("/srv/../etc", "without '.' or '..' components"),
    ("/srv/./app", "without '.' or '..' components"),
    ("/srv/app/..", "without '.' or '..' components"),
    ("/srv/app\nx", "control characters"),
])
def test_a_path_that_could_land_elsewhere_is_refused_with_the_reason(path, why):
    assert why in path_problem(path)


def test_the_root_itself_is_accepted_where_asked():
    assert path_problem("/", allow_root=True) is None
