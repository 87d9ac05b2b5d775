"""The release_build module: start (the release directory, marked unfinished), venv (where the venv is, shared by a
key of what decides its content, or the release's own) and finish (links, release.json, the marker removed)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat

import pytest

from ansible_collections.shipshape.ops.plugins.modules import release_build

RID = "2.0.0-1a2b3c4d"


@pytest.fixture
def app(tmp_path):
    """An app root and a fake interpreter (its path and content are part of the venv key; it never runs)."""
    python = tmp_path / "python3"
    python.write_bytes(b"\x7fELF fake interpreter 3.11\n")
    return {"root": tmp_path / "app", "python": python, "release": tmp_path / "app" / "releases" / RID}


def params(app, action, **extra):
    base = {"action": action, "root": str(app["root"]), "id": RID, "venvs_dir": str(app["root"] / "shared" / "venvs"),
            "python": str(app["python"])}
    return dict(base, **extra)


def unpacked(app, requirements="flask==3.0.3\nrequests==2.32.3\n"):
    """A started release with its source unpacked: the requirements file."""
    release = app["release"]
    release.mkdir(parents=True)
    (release / ".shipshape-unfinished").write_text("building since then\n")
    (release / "requirements.txt").write_text(requirements)
    return release


# --- start -----------------------------------------------------------------------------------------------------------

def test_start_creates_the_release_marked_unfinished_and_a_second_run_changes_nothing(app, run_module):
    failed, result = run_module(release_build, params(app, "start"))
    release = app["release"]
    assert not failed and result["changed"] is True and result["path"] == str(release)
    assert stat.S_IMODE(release.stat().st_mode) == 0o755
    marker = (release / ".shipshape-unfinished").read_text()
    assert marker.startswith("building since ")
    failed, result = run_module(release_build, params(app, "start"))
    assert not failed and result["changed"] is False
    assert (release / ".shipshape-unfinished").read_text() == marker  # not re-stamped


def test_start_in_check_mode_reports_the_change_and_creates_nothing(app, run_module):
    failed, result = run_module(release_build, params(app, "start"), check_mode=True)
    assert not failed and result["changed"] is True
    assert not app["root"].exists()


@pytest.mark.parametrize("wheels, present", [("none", False), ("no-marker", False), ("unpacked", True)])
def test_start_says_whether_the_wheelhouse_is_complete_on_the_host(app, run_module, wheels, present):
    wheel_dir = app["root"] / "shared" / "wheelhouse-0123456789abcdef"
    if wheels != "none":
        wheel_dir.mkdir(parents=True)
        (wheel_dir / "flask-3.0.3-py3-none-any.whl").write_text("wheel")  # a killed unpack: wheels, no marker
    if wheels == "unpacked":
        (wheel_dir / ".shipshape-unpacked").write_text("wheels.tar.gz sha1:abc\n")
    wheel_arg = str(wheel_dir) if wheels != "none" else ""
    failed, result = run_module(release_build, params(app, "start", wheel_dir=wheel_arg))
    assert not failed and result["wheels_present"] is present


# --- venv ------------------------------------------------------------------------------------------------------------

def test_a_shared_venv_lies_under_venvs_dir_and_is_built_only_with_its_marker(app, run_module):
    unpacked(app)
    failed, result = run_module(release_build, params(app, "venv"))
    assert not failed and result["changed"] is False
    assert re.fullmatch(r"[0-9a-f]{16}", result["key"])
    venv = app["root"] / "shared" / "venvs" / result["key"]
    assert result["venv"] == str(venv) and result["shares"] is True and result["built"] is False
    (venv / "bin").mkdir(parents=True)  # a killed build: the venv is there, its marker is not
    assert run_module(release_build, params(app, "venv"))[1]["built"] is False
    (venv / ".shipshape-complete").write_text(RID + "\n")
    assert run_module(release_build, params(app, "venv"))[1]["built"] is True


@pytest.mark.parametrize("change", ["requirements", "wheel_dir", "python path", "python content", "pip_extra_args"])
def test_the_venv_key_is_stable_and_follows_what_decides_the_venv(app, run_module, change):
    unpacked(app)
    wheel_dir = str(app["root"] / "shared" / "wheelhouse-0123456789abcdef")
    first = run_module(release_build, params(app, "venv", wheel_dir=wheel_dir))[1]["key"]
    assert run_module(release_build, params(app, "venv", wheel_dir=wheel_dir))[1]["key"] == first
    extra = {"wheel_dir": wheel_dir}
    if change == "requirements":
        (app["release"] / "requirements.txt").write_text("flask==3.0.3\nrequests==2.32.4\n")
    elif change == "wheel_dir":
        extra["wheel_dir"] = str(app["root"] / "shared" / "wheelhouse-fedcba9876543210")
    elif change == "python path":  # the same bytes elsewhere: the path is part of the key
        other = app["python"].parent / "python3.11"
        other.write_bytes(app["python"].read_bytes())
        extra["python"] = str(other)
    elif change == "python content":  # an upgraded interpreter in place
        app["python"].write_bytes(b"\x7fELF fake interpreter 3.12\n")
    else:
        extra["pip_extra_args"] = ["--no-deps"]
    failed, result = run_module(release_build, params(app, "venv", **extra))
    assert not failed and result["key"] != first
    assert result["venv"] == str(app["root"] / "shared" / "venvs" / result["key"])


@pytest.fixture(autouse=True)
def no_pip_configuration(monkeypatch):
    """The machine running the tests may have a pip configuration of its own; the tests name theirs."""
    monkeypatch.setattr(release_build, "PIP_CONFIG_FILES", ())
    for name in release_build.PIP_CHOICE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("where", ["config file", "PIP_CONSTRAINT", "constraints content", "PIP_FIND_LINKS"])
def test_pip_configuration_on_the_host_is_part_of_the_key(app, run_module, monkeypatch, tmp_path, where):
    unpacked(app)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("flask==3.0.3\n")
    conf = tmp_path / "pip.conf"
    conf.write_text("[install]\nconstraint = %s\n" % constraints)
    if where == "constraints content":
        monkeypatch.setattr(release_build, "PIP_CONFIG_FILES", (str(conf),))
    first = run_module(release_build, params(app, "venv"))[1]["key"]
    if where == "config file":
        monkeypatch.setattr(release_build, "PIP_CONFIG_FILES", (str(conf),))
    elif where == "PIP_CONSTRAINT":
        monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
    elif where == "constraints content":  # the same config, naming a constraints file that changed
        constraints.write_text("flask==3.0.2\n")
    else:
        monkeypatch.setenv("PIP_FIND_LINKS", "/srv/more-wheels")
    failed, result = run_module(release_build, params(app, "venv"))
    assert not failed and result["shares"] is True and result["key"] != first


def test_a_pip_conf_in_the_home_directory_is_read(app, run_module, monkeypatch, tmp_path):
    unpacked(app)
    monkeypatch.setattr(release_build, "PIP_CONFIG_FILES", ("~/.config/pip/pip.conf",))
    monkeypatch.setenv("HOME", str(tmp_path))
    first = run_module(release_build, params(app, "venv"))[1]["key"]
    (tmp_path / ".config" / "pip").mkdir(parents=True)
    (tmp_path / ".config" / "pip" / "pip.conf").write_text("[global]\nfind-links = /srv/more-wheels\n")
    assert run_module(release_build, params(app, "venv"))[1]["key"] != first


def test_variables_that_do_not_change_what_pip_installs_keep_the_key(app, run_module, monkeypatch):
    unpacked(app)
    first = run_module(release_build, params(app, "venv"))[1]["key"]
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "180")
    monkeypatch.setenv("PIP_CACHE_DIR", "/srv/app/shared/.pip-cache")
    assert run_module(release_build, params(app, "venv"))[1]["key"] == first


@pytest.mark.parametrize("wheel_dir", ["", "{root}/shared/wheelhouse-0123456789abcdef"])
def test_the_venv_key_keeps_the_roles_formula_so_venvs_on_hosts_keep_their_name(app, run_module, wheel_dir):
    # The role's Jinja joined the parts with the two characters backslash and n (Ansible escapes backslashes in
    # templates); a different formula would rebuild every shared venv on every host once.
    text = "flask==3.0.3\n# pinned\nrequests==2.32.3\n"
    unpacked(app, text)
    wheel_dir = wheel_dir.format(root=app["root"])
    python_sha1 = hashlib.sha1(app["python"].read_bytes()).hexdigest()
    parts = [text, wheel_dir or "index", str(app["python"]), python_sha1, '["--no-deps", "--prefer-binary"]']
    expected = hashlib.sha256("\\n".join(parts).encode()).hexdigest()[:16]
    failed, result = run_module(release_build, params(app, "venv", wheel_dir=wheel_dir,
                                                      pip_extra_args=["--no-deps", "--prefer-binary"]))
    assert not failed and result["key"] == expected


@pytest.mark.parametrize("requirements, shared", [
    ("flask==3.0.3\n.\n", True),
    ("flask==3.0.3\n  -e ./plugins/x\n", True),
    ("--editable x\n", True),
    ("/srv/wheels/app-1.0-py3-none-any.whl\n", True),
    ("~/src/app\n", True),
    ("file:lib/app\n", True),
    ("flask==3.0.3\napp @ file:///srv/wheels/app-1.0-py3-none-any.whl\n", True),
    ("app@file:lib/app ; python_version >= '3.9'\n", True),
    ("flask==3.0.3\n", False),
])
def test_a_local_install_or_shared_false_gives_the_release_its_own_venv(app, run_module, requirements, shared):
    unpacked(app, requirements)
    failed, result = run_module(release_build, params(app, "venv", shared=shared, venv_dir=".venv"))
    assert not failed
    assert result == dict(result, venv=str(app["release"] / ".venv"), shares=False, built=False, key="")


def test_a_direct_reference_to_an_index_url_or_a_comment_naming_file_still_shares(app, run_module):
    unpacked(app, "flask==3.0.3  # built @ file:/tmp once\napp @ https://example.com/app-1.0-py3-none-any.whl\n")
    failed, result = run_module(release_build, params(app, "venv"))
    assert not failed and result["shares"] is True and re.fullmatch(r"[0-9a-f]{16}", result["key"])


def test_a_missing_requirements_file_fails_naming_its_path(app, run_module):
    release = unpacked(app)
    failed, result = run_module(release_build, params(app, "venv", requirements="requirements/prod.txt"))
    assert failed and "cannot read requirements 'requirements/prod.txt' (%s)" % (release / "requirements" / "prod.txt") \
        in result["msg"], result["msg"]


@pytest.mark.parametrize("requirements", ["../requirements.txt", "a/../../x.txt", "/etc/passwd"])
def test_a_requirements_path_that_is_not_inside_the_release_is_refused(app, run_module, requirements):
    unpacked(app)
    (app["root"] / "releases" / "requirements.txt").write_text("flask\n")  # what '..' would reach
    failed, result = run_module(release_build, params(app, "venv", requirements=requirements))
    assert failed and f"requirements '{requirements}' must be a path inside the release" in result["msg"]


def test_a_requirements_link_out_of_the_release_is_refused(app, run_module, tmp_path):
    release = unpacked(app)
    (tmp_path / "elsewhere.txt").write_text("flask\n")
    (release / "requirements.txt").unlink()
    (release / "requirements.txt").symlink_to(tmp_path / "elsewhere.txt")  # a source could ship such a link
    failed, result = run_module(release_build, params(app, "venv"))
    expected = "requirements 'requirements.txt' leads outside the release (to %s)" % (tmp_path / "elsewhere.txt")
    assert failed and expected in result["msg"]


def test_venv_in_check_mode_without_the_release_says_nothing_is_built(app, run_module):
    # A check run never unpacked the source: there is no requirements file to read, and that is not an error.
    failed, result = run_module(release_build, params(app, "venv"), check_mode=True)
    assert not failed and result["built"] is False and result["venv"] == "" and result["key"] == ""
    assert not app["root"].exists()


# --- finish ----------------------------------------------------------------------------------------------------------

def finishing(app):
    """A started release whose source ships a file and an empty directory where shared directories are linked."""
    release = unpacked(app)
    (release / "log").write_text("shipped by mistake\n")
    (release / "uploads").mkdir()
    wheel_dir = app["root"] / "shared" / "wheelhouse-0123456789abcdef"
    venv = app["root"] / "shared" / "venvs" / "3f9a0c2b7d1e4a65"
    return release, params(app, "finish", shared_dirs=["log", "uploads", "cache"], wheel_dir=str(wheel_dir),
                           venv=str(venv), venv_dir=".venv",
                           release={"id": RID, "app": "sample_app", "version": "2.0.0", "sha": "1a2b3c4d5e6f"})


def test_finish_links_describes_and_marks_the_release_finished_once(app, run_module):
    release, args = finishing(app)
    failed, result = run_module(release_build, args)
    assert not failed and result["changed"] is True
    shared = app["root"] / "shared"
    for name in ("log", "uploads", "cache"):
        assert os.readlink(release / name) == str(shared / name)
    assert os.readlink(release / ".shipshape-wheelhouse") == args["wheel_dir"]
    assert os.readlink(release / ".venv") == args["venv"]
    text = (release / "release.json").read_text()
    meta = json.loads(text)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta.pop("built_at"))
    assert meta == args["release"]
    assert list(json.loads(text)) == sorted(json.loads(text))  # sorted keys: the same release, the same file
    assert stat.S_IMODE((release / "release.json").stat().st_mode) == 0o644
    assert not os.path.lexists(release / ".shipshape-unfinished")
    before = (release / "release.json").stat().st_ino  # a rewrite replaces the file, and would change built_at
    failed, result = run_module(release_build, args)
    assert not failed and result["changed"] is False
    assert (release / "release.json").stat().st_ino == before and (release / "release.json").read_text() == text


def test_finish_without_wheel_dir_or_venv_links_neither(app, run_module):
    release = unpacked(app)
    failed, result = run_module(release_build, params(app, "finish"))
    assert not failed and result["changed"] is True
    assert sorted(p.name for p in release.iterdir()) == ["release.json", "requirements.txt"]


def test_finish_refuses_a_shared_dir_shipped_with_files_and_leaves_the_release_unfinished(app, run_module):
    release, args = finishing(app)
    (release / "uploads" / "avatar.png").write_text("png")
    failed, result = run_module(release_build, args)
    assert failed and "%s is a directory in the release" % (release / "uploads") in result["msg"]
    assert (release / "uploads" / "avatar.png").read_text() == "png"
    assert (release / ".shipshape-unfinished").is_file() and not (release / "release.json").exists()


def test_finish_in_check_mode_reports_the_change_and_changes_nothing(app, run_module):
    release, args = finishing(app)
    before = sorted(p.name for p in release.iterdir())
    failed, result = run_module(release_build, args, check_mode=True)
    assert not failed and result["changed"] is True
    assert sorted(p.name for p in release.iterdir()) == before
    assert (release / "log").is_file() and (release / "uploads").is_dir() and not (release / "uploads").is_symlink()


@pytest.mark.parametrize("check_mode", [False, True])
def test_finish_of_a_release_that_does_not_exist_fails_except_in_check_mode(app, run_module, check_mode):
    failed, result = run_module(release_build, params(app, "finish"), check_mode=check_mode)
    if check_mode:  # a check run started nothing: finishing is what a real run would do
        assert not failed and result["changed"] is True
    else:
        assert failed and "release %s does not exist" % app["release"] in result["msg"]
    assert not app["root"].exists()


# --- refusals --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value, why", [
    ("root", "srv/app", "must be an absolute path"),
    ("root", "{tmp}/app/../etc", "must be an absolute path without '.' or '..' components"),
    ("id", "a/b", "must be one path component"),
    ("id", "..", "must be one path component"),
    ("id", "1..2", "must not contain '..'"),
    ("venvs_dir", "{tmp}/venvs", "must lie inside the app root"),
    ("venvs_dir", "{tmp}/app/../venvs", "must be an absolute path without '.' or '..' components"),
    ("wheel_dir", "/srv/wheelhouse", "must lie inside the app root"),
    ("wheel_dir", "{tmp}/app-wheels", "must lie inside the app root"),  # a sibling sharing the root's prefix
    ("venv", "/opt/venv", "must lie inside the app root"),
    ("python", "python3", "must be an absolute path"),
])
def test_a_bad_option_is_refused_by_name_and_nothing_is_created(app, run_module, tmp_path, option, value, why):
    value = value.format(tmp=tmp_path)
    failed, result = run_module(release_build, params(app, "start", **{option: value}))
    assert failed and f"{option} '{value}' {why}" in result["msg"], result["msg"]
    assert not app["root"].exists() and sorted(p.name for p in tmp_path.iterdir()) == ["python3"]


@pytest.mark.parametrize("option", ["venv_dir", "shared_dirs"])
@pytest.mark.parametrize("name", ["..", "a/b", ".shipshape-unfinished", "release.json"])
def test_an_entry_name_that_is_not_one_of_the_release_is_refused(app, run_module, option, name):
    release = unpacked(app)
    value = [name] if option == "shared_dirs" else name
    failed, result = run_module(release_build, params(app, "finish", **{option: value}))
    assert failed and f"'{name}' must be one path component naming an entry of the release" in result["msg"]
    # nothing was linked or written, the marker is untouched
    assert sorted(p.name for p in release.iterdir()) == [".shipshape-unfinished", "requirements.txt"]
    assert (release / ".shipshape-unfinished").read_text() == "building since then\n"


@pytest.mark.parametrize("option", ["venv_dir", "shared_dirs"])
def test_an_entry_name_refusal_names_its_option(app, run_module, option):
    unpacked(app)
    value = ["a/b"] if option == "shared_dirs" else "a/b"
    failed, result = run_module(release_build, params(app, "finish", **{option: value}))
    assert failed and f"{option} 'a/b'" in result["msg"], result["msg"]


def test_an_empty_venvs_dir_is_refused(app, run_module):
    unpacked(app)
    failed, result = run_module(release_build, params(app, "venv", venvs_dir=""))
    assert failed and "venvs_dir ''" in result["msg"], result


@pytest.mark.parametrize("option", ["venvs_dir", "wheel_dir", "venv"])
def test_the_app_root_itself_is_not_a_place_for_venvs_or_wheels(app, run_module, option):
    # keep-N and a killed build remove these directories whole: the root itself must never be one.
    unpacked(app)
    failed, result = run_module(release_build, params(app, "venv", **{option: str(app["root"])}))
    assert failed and f"{option} '{app['root']}' must lie inside the app root" in result["msg"], result["msg"]


def key_of(app, run_module):
    failed, result = run_module(release_build, params(app, "venv"))
    assert not failed, result
    return result["key"]


def test_files_read_with_r_or_c_are_part_of_the_key(app, run_module):
    # pip reads them, so an edit to one of them must build another venv, not reuse a stale one.
    release = unpacked(app, "-r requirements/base.txt\n--constraint=constraints.txt\nflask==3.0.3\n")
    (release / "requirements").mkdir()
    (release / "requirements" / "base.txt").write_text("-c ../constraints.txt\nrequests==2.32.3\n")
    (release / "constraints.txt").write_text("urllib3<3\n")
    first = key_of(app, run_module)
    (release / "requirements" / "base.txt").write_text("-c ../constraints.txt\nrequests==2.32.4\n")
    second = key_of(app, run_module)
    (release / "constraints.txt").write_text("urllib3<2\n")
    third = key_of(app, run_module)
    assert len({first, second, third}) == 3, (first, second, third)


def test_a_plain_requirements_file_keeps_its_key_when_includes_are_supported(app, run_module):
    # No -r/-c line: the key is the one computed from the file's text alone (venvs on hosts keep their name).
    unpacked(app, "flask==3.0.3\n")
    python_sha1 = hashlib.sha1(app["python"].read_bytes()).hexdigest()
    expected = release_build.venv_key("flask==3.0.3\n", "", str(app["python"]), python_sha1, [])
    assert key_of(app, run_module) == expected


@pytest.mark.parametrize("line", ["-r ../../../outside.txt", "-r missing.txt"])
def test_an_included_file_outside_the_release_or_missing_is_refused_by_name(app, run_module, line):
    unpacked(app, line + "\nflask==3.0.3\n")
    (app["root"].parent / "outside.txt").write_text("evil==1\n")
    failed, result = run_module(release_build, params(app, "venv"))
    name = line.split()[1]
    assert failed and f"'{name}', included by requirements.txt" in result["msg"], result["msg"]


@pytest.mark.parametrize("repo, shown", [
    ("https://ci:s3cr3t-t0ken@git.example.com/app.git", "https://git.example.com/app.git"),
    ("https://s3cr3t-t0ken@git.example.com/app.git", "https://git.example.com/app.git"),
    ("https://x:p@ss:s3cr3t-t0ken@git.example.com/app.git", "https://git.example.com/app.git"),
    ("/dist/app.git", "/dist/app.git"),
    ("git@git.example.com:org/app.git", "git@git.example.com:org/app.git"),
])
def test_the_credentials_of_a_repository_url_never_reach_release_json(app, run_module, repo, shown):
    # release.json is 0644 on every host: before, it kept 'git https://ci:<token>@host/app.git main' as it was given.
    release, args = finishing(app)
    args["release"] = dict(args["release"], source="git %s main" % repo)
    failed, result = run_module(release_build, args)
    assert not failed
    text = (release / "release.json").read_text()
    assert "s3cr3t" not in text
    assert json.loads(text)["source"] == "git %s main" % shown


@pytest.mark.parametrize("where", ["requirements.txt", "base.txt"], ids=["top", "included"])
def test_a_fifo_shipped_as_a_requirements_file_is_refused_not_waited_on(app, run_module, where):
    # An archive source can carry a FIFO; before, opening it waited for a writer forever.
    release = unpacked(app, "-r base.txt\nflask==3.0.3\n")
    if where == "requirements.txt":
        (release / "requirements.txt").unlink()
    os.mkfifo(str(release / where))

    def hung(signum, frame):
        raise AssertionError("release_build waited on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        failed, result = run_module(release_build, params(app, "venv"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert failed and "is not a regular file" in result["msg"] and str(release / where) in result["msg"], result["msg"]


@pytest.mark.parametrize("shared_dirs, venv_dir, clash", [
    (["log", "venv"], "venv", "venv"),
    (["log", ".shipshape-wheelhouse"], ".venv", ".shipshape-wheelhouse"),
    (["log"], ".shipshape-wheelhouse", ".shipshape-wheelhouse"),
])
def test_two_links_of_the_same_name_are_refused_before_anything_is_linked(app, run_module, shared_dirs, venv_dir, clash):
    # Before: both were linked in turn, the last one won, and every run moved the link twice and reported a change.
    release, args = finishing(app)
    args.update(shared_dirs=shared_dirs, venv_dir=venv_dir)
    failed, result = run_module(release_build, args)
    assert failed and "'%s'" % clash in result["msg"] and "expected" in result["msg"], result["msg"]
    assert not any(os.path.islink(p) for p in release.iterdir())
    assert os.path.exists(release / ".shipshape-unfinished")
