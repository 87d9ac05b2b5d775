"""module_utils/release_files: the one check of an app root (and of the paths beside it) that release_state,
compose_release_state, app_layout and release_status share, and the link and containment helpers of release_build
and release_state."""

from __future__ import annotations

import os

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils.release_files import lies_under, path_problem, replace_symlink


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


@pytest.mark.parametrize("path, root, expected", [
    ("/srv/app/shared/venvs", "/srv/app", True),
    ("/srv/app/shared/venvs", "/srv/app/", True),
    ("/srv/app", "/srv/app", False),         # the root itself: keep-N removes these directories whole
    ("/srv/app-wheels", "/srv/app", False),  # a sibling that only shares the root's name as a prefix
    ("/srv", "/srv/app", False),
])
def test_lies_under_excludes_the_root_and_its_namesakes(path, root, expected):
    assert lies_under(path, root) is expected


def test_replace_symlink_swaps_a_link_or_a_file_and_leaves_no_temporary(tmp_path):
    link = tmp_path / "current"
    (tmp_path / ".current.new").symlink_to("stale")  # what a run killed between symlink and rename leaves
    replace_symlink(str(link), "releases/a")
    assert os.readlink(link) == "releases/a"
    replace_symlink(str(link), "releases/b")
    assert os.readlink(link) == "releases/b"
    shipped = tmp_path / "log"
    shipped.write_text("a file the source shipped")
    replace_symlink(str(shipped), "/srv/app/shared/log")
    assert os.readlink(shipped) == "/srv/app/shared/log"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "log"]
