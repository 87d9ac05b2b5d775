"""The app_layout module: one read says whether the service account and the app root are as app_host makes them,
each difference named, so a deploy skips the user, group and directory tasks when nothing differs."""

from __future__ import annotations

import grp
import os
import pwd

import pytest

from ansible_collections.shipshape.ops.plugins.modules import app_layout

ME = pwd.getpwuid(os.getuid())
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def make_root(tmp_path, shared=("log", "uploads")):
    """An app root laid out as app_host does, owned by whoever runs the test (its user stands in for root)."""
    root = tmp_path / "app"
    for path in (root, root / "releases", root / "shared"):
        path.mkdir()
        path.chmod(0o755)
    for name in shared:
        (root / "shared" / name).mkdir()
        (root / "shared" / name).chmod(0o750)
    return root


@pytest.fixture
def as_root_owner(monkeypatch):
    """The directories app_host makes for root are owned by the test's own user here."""
    real = app_layout.directory_drift

    def drift(path, uid, gid, mode):
        return real(path, os.getuid() if uid == 0 else uid, gid, mode)
    monkeypatch.setattr(app_layout, "directory_drift", drift)


def args(root, **extra):
    return {"root": str(root), "user": ME.pw_name, "group": MY_GROUP, "shell": ME.pw_shell,
            "shared_dirs": ["log", "uploads"], **extra}


def test_a_layout_in_place_has_no_drift(tmp_path, run_module, as_root_owner, monkeypatch):
    root = make_root(tmp_path)
    real = pwd.getpwnam
    at_root = pwd.struct_passwd((ME.pw_name, ME.pw_passwd, ME.pw_uid, ME.pw_gid, ME.pw_gecos, str(root), ME.pw_shell))
    monkeypatch.setattr(app_layout.pwd, "getpwnam", lambda name: at_root if name == ME.pw_name else real(name))
    failed, result = run_module(app_layout, args(root))
    assert not failed and result["changed"] is False
    assert result["drift"] == []


def test_each_difference_is_named(tmp_path, run_module, as_root_owner):
    root = make_root(tmp_path, shared=("log",))
    (root / "releases").chmod(0o777)
    (root / "shared" / "log").chmod(0o755)
    failed, result = run_module(app_layout, args(root))
    assert not failed
    drift = result["drift"]
    assert f"user {ME.pw_name}: home {ME.pw_dir}, expected {root}" in drift
    assert f"{root}/releases: mode 0777, expected 0755" in drift
    assert f"{root}/shared/log: mode 0755, expected 0750" in drift
    assert f"{root}/shared/uploads does not exist" in drift


def test_a_blank_host_lacks_the_account_and_every_directory(tmp_path, run_module):
    root = tmp_path / "app"
    failed, result = run_module(app_layout, {"root": str(root), "user": "shipshape-nobody-x", "group": "shipshape-nogroup-x",
                                             "shared_dirs": ["log"]})
    assert not failed
    assert result["drift"][:2] == ["group shipshape-nogroup-x does not exist", "user shipshape-nobody-x does not exist"]
    assert f"{root} does not exist" in result["drift"]
    assert f"{root}/shared/log does not exist" in result["drift"]


def test_a_link_in_place_of_a_directory_is_drift(tmp_path, run_module, as_root_owner):
    root = make_root(tmp_path, shared=())
    (root / "shared").rmdir()
    os.symlink("/tmp", root / "shared")
    failed, result = run_module(app_layout, args(root, shared_dirs=[]))
    assert not failed
    assert f"{root}/shared is not a directory" in result["drift"]


@pytest.mark.parametrize("extra, expected", [
    ({"root": "relative/app"}, "root 'relative/app' must be an absolute path"),
    ({"root": "/"}, "root '/' must be an absolute path other than /"),
    ({"root_mode": "755; rm"}, "root_mode '755; rm' must be an octal mode"),
    ({"shared_dirs": ["../etc"]}, "shared_dirs entry '../etc' must be one path component"),
])
def test_bad_options_are_refused_naming_them(tmp_path, run_module, extra, expected):
    failed, result = run_module(app_layout, {**args(tmp_path / "app"), **extra})
    assert failed
    assert expected in result["msg"]
