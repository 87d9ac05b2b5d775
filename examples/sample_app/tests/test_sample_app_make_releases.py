"""make_releases.py: reproducible git history, tags, archives and checksums."""

import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

from sa_helpers import SAMPLE_DIR

import make_releases


def git(repo, *args):
    return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("releases")
    proc = subprocess.run([sys.executable, str(SAMPLE_DIR / "make_releases.py"), str(out), "--no-wheelhouse"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_summary_file(built):
    out, summary = built
    assert json.loads((out / "releases.json").read_text()) == summary
    assert set(summary) == {"v1.0.0", "v2.0.0", "broken", "broken-migration"}
    assert {k: v["version"] for k, v in summary.items()} == {
        "v1.0.0": "1.0.0", "v2.0.0": "2.0.0", "broken": "2.0.1-broken",
        "broken-migration": "2.0.2-broken-migration"}


def test_tags_and_branches(built):
    out, summary = built
    repo = out / "sample_app.git"
    tags = set(git(repo, "tag").split())
    assert {"v1.0.0", "v2.0.0", "v2.0.1-broken", "v2.0.2-broken-migration"} <= tags
    branches = set(git(repo, "branch", "--format=%(refname:short)").split())
    assert branches == {"main", "broken", "broken-migration"}
    for name, info in summary.items():
        assert git(repo, "rev-parse", f"{info['tag']}^{{commit}}").strip() == info["sha"]
    assert git(repo, "rev-parse", "main").strip() == summary["v2.0.0"]["sha"]
    assert git(repo, "rev-parse", "broken").strip() == summary["broken"]["sha"]
    assert git(repo, "rev-parse", "v2.0.0^").strip() == summary["v1.0.0"]["sha"]
    assert git(repo, "rev-parse", "broken-migration^").strip() == summary["v2.0.0"]["sha"]
    assert git(repo, "log", "-1", "--format=%an <%ae> %ad", "--date=unix", "v1.0.0").strip() == \
        "shipshape release bot <releases@shipshape.invalid> 1704067200"


def test_trees_differ_as_intended(built):
    out, _ = built
    repo = out / "sample_app.git"
    diff = git(repo, "diff", "--name-status", "v1.0.0", "v2.0.0").split("\n")
    assert sorted(filter(None, diff)) == sorted([
        "A\tmigrations/versions/0002_note_tags.py",
        "M\tsample_app/__init__.py",
        "M\tsample_app/notes.py",
    ])
    assert '__version__ = "1.0.0"' in git(repo, "show", "v1.0.0:sample_app/__init__.py")
    assert '__version__ = "2.0.0"' in git(repo, "show", "v2.0.0:sample_app/__init__.py")
    v1_files = set(git(repo, "ls-tree", "-r", "--name-only", "v1.0.0").split())
    assert {"alembic.ini", "gunicorn.conf.py", "requirements.txt", "sample_app/wsgi.py",
            "migrations/env.py", "migrations/versions/0001_initial.py"} <= v1_files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in v1_files)
    assert "migrations/versions/0002_note_tags.py" not in v1_files
    broken = git(repo, "diff", "--name-only", "v2.0.0", "broken").split()
    assert sorted(broken) == ["sample_app/__init__.py", "sample_app/probes.py"]
    bm = git(repo, "diff", "--name-only", "v2.0.0", "broken-migration").split()
    assert sorted(bm) == ["migrations/versions/0003_broken.py", "sample_app/__init__.py"]


def test_archives_and_checksums(built):
    out, summary = built
    for name, info in summary.items():
        archive = out / "archives" / f"sample_app-{info['version']}.tar.gz"
        assert info["archive"] == str(archive)
        data = archive.read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"]
        sidecar = (archive.parent / (archive.name + ".sha256")).read_text()
        assert sidecar == f"{info['sha256']}  {archive.name}\n"
        check = subprocess.run(["sha256sum", "-c", archive.name + ".sha256"], cwd=archive.parent,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with tarfile.open(archive) as tar:
            names = [m.name for m in tar.getmembers() if m.name != "pax_global_header"]
            top = {n.split("/")[0] for n in names}
            assert top == {f"sample_app-{info['version']}"}
            init = tar.extractfile(f"sample_app-{info['version']}/sample_app/__init__.py").read().decode()
            assert f'__version__ = "{info["version"]}"' in init


def test_idempotent_and_reproducible(built, tmp_path):
    out, summary = built
    before = {p: p.read_bytes() for p in (out / "archives").iterdir()}
    again = subprocess.run([sys.executable, str(SAMPLE_DIR / "make_releases.py"), str(out), "--no-wheelhouse"],
                           capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(again.stdout) == summary
    assert {p: p.read_bytes() for p in (out / "archives").iterdir()} == before
    other = tmp_path / "elsewhere"
    make_releases.main([str(other), "--no-wheelhouse"])
    second = json.loads((other / "releases.json").read_text())
    for name in summary:
        assert (second[name]["sha"], second[name]["sha256"]) == (summary[name]["sha"], summary[name]["sha256"])


def test_wheel_compatibility_rules():
    ok = make_releases.wheel_ok_for_bookworm
    assert ok("flask-3.1.3-py3-none-any.whl")
    assert ok("psycopg_binary-3.3.9-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl")
    assert ok("markupsafe-3.0.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert not ok("x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert not ok("x-1.0-cp311-cp311-manylinux_2_39_x86_64.whl")
    assert not ok("x-1.0-cp311-cp311-musllinux_1_2_x86_64.whl")
    assert not ok("x-1.0-cp311-cp311-macosx_11_0_arm64.whl")


def test_requirements_are_exact_pins():
    pins = make_releases.pinned_requirements(SAMPLE_DIR / "app" / "requirements.txt")
    names = {n for n, _ in pins}
    assert {"flask", "gunicorn", "psycopg", "psycopg_binary", "redis", "alembic", "sqlalchemy"} <= names
    # redis requires it on python < 3.11.3 (Debian bookworm ships 3.11.2)
    assert "async_timeout" in names


def test_the_wheelhouse_tar_is_reproducible_and_holds_the_wheels(tmp_path):
    wdir = tmp_path / "wheelhouse"
    wdir.mkdir()
    for name, body in (("b-1.0-py3-none-any.whl", b"bee"), ("a-2.0-py3-none-any.whl", b"ay")):
        (wdir / name).write_bytes(body)
    first = make_releases.pack_wheelhouse(wdir, ["b-1.0-py3-none-any.whl", "a-2.0-py3-none-any.whl"], tmp_path / "w.tar")
    data = first.read_bytes()
    os.utime(wdir / "a-2.0-py3-none-any.whl", (1, 1))  # a touched wheel: same bytes, same tar
    again = make_releases.pack_wheelhouse(wdir, ["a-2.0-py3-none-any.whl", "b-1.0-py3-none-any.whl"], tmp_path / "w2.tar")
    assert again.read_bytes() == data
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["a-2.0-py3-none-any.whl", "b-1.0-py3-none-any.whl"]
        assert tar.extractfile("b-1.0-py3-none-any.whl").read() == b"bee"
