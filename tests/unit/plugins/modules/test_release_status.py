"""shipshape.ops.release_status: a release layout on disk (real files), systemctl and docker through a fake
run_command, the listening port from /proc for real, commits from a real git repository, never an env value."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.shipshape.ops.plugins.modules import release_status

SECRET = "s3cret-Pa55word"
SHOW = ("ActiveState=active\nSubState=running\nActiveEnterTimestamp=Wed 2026-12-02 14:00:00 UTC\nMainPID=4242\n"
        "UnitFileState=enabled\nLoadState=loaded\n")


def release(root, rid, version, sha, built_at, ref="v1.0.0", failed=False):
    path = root / "releases" / rid
    path.mkdir(parents=True)
    (path / "release.json").write_text(json.dumps({
        "id": rid, "app": "sample_app", "version": version, "sha": sha,
        "source": "git /dist/sample_app.git %s" % ref, "built_at": built_at, "built_by": "ops@ctl"}))
    if failed:
        (path / ".shipshape-failed").write_text('{"reason": "gate", "at": "x"}')


@pytest.fixture
def app_root(tmp_path):
    root = tmp_path / "sample_app"
    release(root, "1.0.0-aaaaaaaa", "1.0.0", "a" * 40, "2026-11-01T00:00:00Z")
    release(root, "2.0.0-bbbbbbbb", "2.0.0", "b" * 40, "2026-11-02T00:00:00Z", ref="main")
    release(root, "2.0.1-cccccccc", "2.0.1", "c" * 40, "2026-11-03T00:00:00Z", failed=True)
    (root / "releases" / "3.0.0-dddddddd").mkdir()
    (root / "releases" / "3.0.0-dddddddd" / ".shipshape-unfinished").write_text("building")
    os.symlink("releases/2.0.0-bbbbbbbb", root / "current")
    os.symlink("releases/2.0.0-bbbbbbbb", root / ".shipshape-running")
    (root / "shared").mkdir()
    env = root / "shared" / "app.env"
    env.write_text("# managed\nDATABASE_URL=postgresql://app:%s@db/app\nexport REDIS_URL='redis://db'\n"
                   "SECRET_KEY=%s\n\nnot a line\n" % (SECRET, SECRET))
    env.chmod(0o600)
    return root


class Fake:
    """Canned answers per command (the first words of argv)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, **kw):  # set on the class, it is not bound to the module
        self.calls.append(list(argv))
        for prefix, answer in self.answers.items():
            if " ".join(argv).startswith(prefix):
                return answer
        return 1, "", "unexpected command %s" % argv


def params(**kw):
    base = {"action": "status", "root": None, "strategy": "systemd", "unit": "", "project_dir": None, "service": "app",
            "image": "", "env_file": None, "port": 0, "ref": "", "mirror": None, "sha": "", "max_commits": 50}
    base.update(kw)
    return base


def test_systemd_status_reads_release_unit_releases_and_env_keys(run_module, monkeypatch, app_root):
    fake = Fake({"systemctl show": (0, SHOW, "")})
    monkeypatch.setattr(AnsibleModule, "run_command", fake)
    failed, result = run_module(release_status, {"root": str(app_root), "unit": "sample_app.service"},
                                check_mode=True)
    assert not failed and result["changed"] is False
    assert fake.calls == [["systemctl", "show", "--property",
                           "ActiveState,SubState,ActiveEnterTimestamp,MainPID,UnitFileState,LoadState",
                           "--", "sample_app.service"]]
    assert (result["current"], result["running"]) == ("2.0.0-bbbbbbbb", "2.0.0-bbbbbbbb")
    assert result["release"] == {"id": "2.0.0-bbbbbbbb", "version": "2.0.0", "sha": "b" * 40, "ref": "main",
                                 "source": "git /dist/sample_app.git main", "built_at": "2026-11-02T00:00:00Z",
                                 "built_by": "ops@ctl"}
    assert result["service"]["since"] == "Wed 2026-12-02 14:00:00 UTC"
    assert result["service"]["active_state"] == "active" and result["service"]["main_pid"] == 4242
    assert [(r["id"], r["status"]) for r in result["releases"]] == [
        ("3.0.0-dddddddd", "unfinished"), ("1.0.0-aaaaaaaa", "complete"), ("2.0.0-bbbbbbbb", "complete"),
        ("2.0.1-cccccccc", "failed")]
    assert result["env_keys"] == ["DATABASE_URL", "REDIS_URL", "SECRET_KEY"]
    assert SECRET not in json.dumps(result)
    assert "env %s/shared/app.env: DATABASE_URL, REDIS_URL, SECRET_KEY" % app_root in result["report"]
    assert "release: 2.0.0-bbbbbbbb" in result["report"]
    assert result["disk"]["total_mb"] > 0 and result["memory"]["total_mb"] > 0 and result["uptime"]["seconds"] > 0


def test_a_switch_that_did_not_finish_shows_both(monkeypatch, app_root):
    os.unlink(app_root / "current")
    os.symlink("releases/1.0.0-aaaaaaaa", app_root / "current")
    monkeypatch.setattr(AnsibleModule, "run_command", Fake({"systemctl show": (0, SHOW, "")}))
    result = run_status(monkeypatch, root=str(app_root))
    assert (result["current"], result["running"], result["release"]["version"]) == \
        ("1.0.0-aaaaaaaa", "2.0.0-bbbbbbbb", "2.0.0")
    assert result["report"][0] == "release: 2.0.0-bbbbbbbb (current names 1.0.0-aaaaaaaa: a switch not finished)"


def test_a_stopped_unit_runs_nothing(monkeypatch, app_root):
    monkeypatch.setattr(AnsibleModule, "run_command",
                        Fake({"systemctl show": (0, SHOW.replace("=active", "=inactive"), "")}))
    result = run_status(monkeypatch, root=str(app_root))
    assert result["running"] == "" and result["release"]["id"] == "2.0.0-bbbbbbbb"
    assert result["report"][0] == "release: none running (current names 2.0.0-bbbbbbbb)"


def run_status(monkeypatch, **kw):
    module = AnsibleModule.__new__(AnsibleModule)
    return release_status.status(module, params(**kw))


def test_listening_port_from_proc():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        assert release_status.listening(port) == ["127.0.0.1:%d" % port]
    assert release_status.listening(port) == []
    assert release_status.listening(0) == []


@pytest.mark.parametrize(
    ("hexaddr", "text"),
    [("0100007F", "127.0.0.1"), ("00000000", "0.0.0.0"), ("00000000000000000000000000000000", "[::]"),
     ("0000000000000000FFFF00000100007F", "127.0.0.1"), ("00000000000000000000000001000000", "[::1]")],
)
def test_proc_addresses(hexaddr, text):
    assert release_status.hex_address(hexaddr) == text


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"root": "srv/app"}, "release_status: root 'srv/app' is not acceptable"),
        ({"root": "/srv/../etc"}, "release_status: root '/srv/../etc' is not acceptable"),
        ({"root": "/srv/app", "unit": "a b"}, "release_status: unit 'a b' is not a systemd unit name"),
        ({"root": "/srv/app", "unit": "a\\b"}, "release_status: unit 'a\\b' is not a systemd unit name"),
        ({"root": "/srv/app", "port": 70000}, "release_status: port is 70000; expected 0"),
        ({"root": "/srv/app", "ref": "--upload-pack=x"}, "release_status: ref '--upload-pack=x' is not a git ref"),
        ({"root": "/srv/app", "ref": "a..b"}, "release_status: ref 'a..b' is not a git ref"),
        ({"root": "/srv/app", "strategy": "compose", "service": "$(id)"},
         "release_status: service '$(id)' is not a compose service name"),
        ({"action": "commits", "sha": "HEAD", "ref": "main", "mirror": "/m"},
         "release_status: sha 'HEAD' is not a commit sha"),
        ({}, "release_status: root is required with action=status"),
    ],
)
def test_bad_input(run_module, kw, message):
    failed, result = run_module(release_status, kw)
    assert failed and result["msg"].startswith(message), result["msg"]


@pytest.fixture
def mirror(tmp_path):
    work = tmp_path / "work"
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")

    def git(*args, cwd=work):
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    work.mkdir()
    git("init", "-q", "-b", "main")
    shas = []
    for i in range(4):
        (work / "f").write_text(str(i))
        git("add", "f")
        git("commit", "-q", "-m", "change %d" % i)
        shas.append(git("rev-parse", "HEAD"))
    git("tag", "v1", shas[0])
    bare = tmp_path / "mirror.git"
    git("clone", "-q", "--mirror", str(work), str(bare), cwd=tmp_path)
    return str(bare), shas


def test_commits_between_running_sha_and_ref(run_module, mirror):
    path, shas = mirror
    failed, result = run_module(release_status, {"action": "commits", "sha": shas[0], "ref": "main", "mirror": path})
    assert not failed
    c = result["commits"]
    assert c["checked"] and c["count"] == 3 and c["to"] == shas[3]
    assert [(i["sha"], i["subject"]) for i in c["list"]] == [(shas[3], "change 3"), (shas[2], "change 2"),
                                                             (shas[1], "change 1")]
    assert result["report"][0] == "commits from %s to main: 3" % shas[0][:12]
    failed, result = run_module(release_status, {"action": "commits", "sha": shas[0], "ref": "main", "mirror": path,
                                                 "max_commits": 2})
    assert result["commits"]["truncated"] and len(result["commits"]["list"]) == 2
    assert result["report"][-1] == "  ... (1 more)"


@pytest.mark.parametrize(
    ("kw", "note"),
    [
        ({"mirror": "/nonexistent/mirror.git"}, "no git mirror at /nonexistent/mirror.git"),
        ({"ref": "nosuch"}, "ref 'nosuch' names no commit in "),
        ({"sha": "e" * 40}, "the running sha eeeeeeeeeeee is not in "),
    ],
)
def test_commits_not_checked_say_why(run_module, mirror, kw, note):
    path, shas = mirror
    args = {"action": "commits", "sha": shas[0], "ref": "main", "mirror": path}
    args.update(kw)
    failed, result = run_module(release_status, args)
    assert not failed and not result["commits"]["checked"]
    assert result["commits"]["note"].startswith(note), result["commits"]["note"]


def test_status_without_mirror_says_so(monkeypatch, app_root):
    monkeypatch.setattr(AnsibleModule, "run_command", Fake({"systemctl show": (0, SHOW, "")}))
    result = run_status(monkeypatch, root=str(app_root), ref="main", mirror="/nonexistent.git")
    assert result["report"][-1] == "commits to main: not checked (no git mirror at /nonexistent.git)"


def test_compose_status(monkeypatch, tmp_path):
    root = tmp_path / "shop"
    (root / "failed").mkdir(parents=True)
    (root / "failed" / "1.1.0.json").write_text("{}")
    (root / ".env").write_text("# managed\nAPP_TAG=1.2.0\n")
    (root / "shared").mkdir()
    (root / "shared" / "app.env").write_text("TOKEN=%s\n" % SECRET)
    ps = "\n".join(json.dumps(c) for c in [
        {"Name": "shop-app-1", "Service": "app", "State": "running", "Status": "Up 2 hours (healthy)",
         "Health": "healthy", "Image": "registry.local/shop:1.2.0"},
    ])
    inspect = json.dumps([{"Name": "/shop-app-1", "State": {"StartedAt": "2026-12-02T13:00:00.5Z"}}])
    labels = json.dumps([{"Config": {"Labels": {"org.opencontainers.image.version": "1.2.0",
                                                "org.opencontainers.image.revision": "f" * 40}}}])
    fake = Fake({"docker compose": (0, ps, ""), "docker inspect": (0, inspect, ""),
                 "docker image inspect": (0, labels, "")})
    monkeypatch.setattr(AnsibleModule, "run_command", fake)
    result = run_status(monkeypatch, root=str(root), strategy="compose")
    assert fake.calls[0] == ["docker", "compose", "--project-directory", str(root), "ps", "--all", "--format", "json",
                             "--", "app"]
    assert fake.calls[2] == ["docker", "image", "inspect", "--", "registry.local/shop:1.2.0"]
    assert (result["current"], result["running"]) == ("1.2.0", "1.2.0")
    assert result["release"]["sha"] == "f" * 40 and result["release"]["version"] == "1.2.0"
    assert result["service"]["since"] == "2026-12-02T13:00:00.5Z"
    assert result["service"]["containers"][0]["health"] == "healthy"
    assert [(r["id"], r["status"]) for r in result["releases"]] == [("1.1.0", "failed"), ("1.2.0", "complete")]
    assert result["env_keys"] == ["TOKEN"] and SECRET not in json.dumps(result)
    assert "  container shop-app-1: running (Up 2 hours (healthy)) registry.local/shop:1.2.0" in result["report"]


def test_the_apps_worker_units_are_shown_with_the_service(run_module, monkeypatch, app_root, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    # This app's workers (systemd_release_workers), and another app's whose name starts the same way.
    for name in ("sample_app.worker-outbox.service", "sample_app.worker-mail.service", "sample_app2.worker-x.service",
                 "sample_app.service"):
        (units / name).write_text("[Service]\n")
    monkeypatch.setattr(release_status, "UNIT_DIR", str(units))
    fake = Fake({"systemctl show": (0, SHOW, "")})
    monkeypatch.setattr(AnsibleModule, "run_command", fake)
    failed, result = run_module(release_status, {"root": str(app_root), "unit": "sample_app.service"}, check_mode=True)
    assert not failed, result
    assert [call[-1] for call in fake.calls] == [
        "sample_app.service", "sample_app.worker-mail.service", "sample_app.worker-outbox.service"]
    assert [w["name"] for w in result["service"]["workers"]] == [
        "sample_app.worker-mail.service", "sample_app.worker-outbox.service"]
    assert ("unit: sample_app.worker-outbox.service active (running) since Wed 2026-12-02 14:00:00 UTC, enabled: enabled"
            in result["report"])


def test_the_credentials_of_a_repository_url_in_release_json_are_never_returned(monkeypatch, app_root):
    # A release.json written before release_build took them out still holds them: the status never shows them.
    meta = app_root / "releases" / "2.0.0-bbbbbbbb" / "release.json"
    record = json.loads(meta.read_text())
    record["source"] = "git https://ci:s3cr3t-t0ken@git.example.com/app.git main"
    meta.write_text(json.dumps(record))
    monkeypatch.setattr(AnsibleModule, "run_command", Fake({"systemctl show": (0, SHOW, "")}))
    result = run_status(monkeypatch, root=str(app_root))
    assert "s3cr3t" not in json.dumps(result)
    assert result["release"]["source"] == "git https://git.example.com/app.git main"
    assert result["release"]["ref"] == "main"
