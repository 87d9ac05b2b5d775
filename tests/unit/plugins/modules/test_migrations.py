"""shipshape.ops.migrations: the tool's commands are argv lists, hostile values are refused before anything
runs, and each tool's output is read the way the role used to read it."""

from __future__ import annotations

import threading

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.modules import migrations

BASE = {"path": "/srv/app/releases/1.0.0-abc", "env_file": "/srv/app/shared/app.env", "user": "app"}


class FakeTool(object):
    """Answers run_command by the tool's subcommand; records every argv it was given."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, **kwargs):
        assert isinstance(argv, list), "commands must be argv lists, never a shell string"
        self.calls.append(argv)
        for key, answer in self.answers.items():
            if key in argv:
                return answer
        raise AssertionError("unexpected command %r" % (argv,))


@pytest.fixture
def tool(monkeypatch):
    def install(answers):
        fake = FakeTool(answers)
        monkeypatch.setattr(AnsibleModule, "run_command", lambda self, argv, **kw: fake(argv, **kw))
        return fake
    return install


@pytest.mark.parametrize("name, value", [
    ("path", "/srv/app/$(touch /tmp/pwned)"),
    ("path", "/srv/app/../../etc"),
    ("path", "relative/path"),
    ("env_file", "/srv/app/a b"),
    ("user", "root; id"),
    ("user", "-p"),
    ("venv_dir", "../venv"),
    ("alembic_config", "/etc/alembic.ini"),
    ("lock_file", "/run/lock/x`id`"),
    ("lock_timeout", 0),
])
def test_hostile_values_are_refused_before_anything_runs(run_module, tool, name, value):
    fake = tool({})
    failed, result = run_module(migrations, dict(BASE, **{name: value}))
    assert failed
    assert result["msg"].startswith("migrations: %s " % name)
    assert repr(value) in result["msg"]
    assert fake.calls == []


def test_compose_env_keys_and_newlines_are_refused(run_module, tool):
    fake = tool({})
    failed, result = run_module(migrations, dict(BASE, runner="compose", compose_project_dir="/srv/app/compose",
                                                 compose_service="web", compose_env={"A B": "x"}))
    assert failed and "compose_env keys" in result["msg"] and "'A B'" in result["msg"]
    failed, result = run_module(migrations, dict(BASE, runner="compose", compose_project_dir="/srv/app/compose",
                                                 compose_service="web", compose_env={"TAG": "1\nExecStart=/bin/sh"}))
    assert failed and "no newline" in result["msg"]
    assert fake.calls == []


def test_alembic_status_reads_pending_oldest_first(run_module, tool):
    fake = tool({
        "current": (0, "0001_init\n", "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\n"),
        "heads": (0, "0003_c (head)\n", ""),
        "history": (0, "0002_b -> 0003_c (head), c\n0001_init -> 0002_b, b\n", ""),
    })
    failed, result = run_module(migrations, dict(BASE, action="status"))
    assert not failed and not result["changed"]
    assert result["migrations"] == {"tool": "alembic", "before": "0001_init", "after": "0001_init",
                                    "pending": ["0002_b", "0003_c"], "applied": False}
    systemd_run = fake.calls[0]
    assert systemd_run[:2] == ["systemd-run", "--quiet"]
    assert "WorkingDirectory=/srv/app/releases/1.0.0-abc" in systemd_run
    assert "EnvironmentFile=/srv/app/shared/app.env" in systemd_run and "User=app" in systemd_run
    assert fake.calls[2][-2:] == ["-r", "0001_init:heads"]


def test_alembic_reads_the_revision_and_the_heads_at_once(run_module, monkeypatch):
    # `current` answers only once `heads` has started: read one after the other, the first would wait in vain.
    heads_started = threading.Event()

    def run_command(self, argv, **kw):
        if "heads" in argv:
            heads_started.set()
            return 0, "0002_b (head)\n", ""
        assert "current" in argv, argv
        if not heads_started.wait(5):
            return 1, "", "heads was never started while current ran"
        return 0, "0002_b (head)\n", ""

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    failed, result = run_module(migrations, dict(BASE, action="status"))
    assert not failed, result
    assert result["migrations"]["before"] == "0002_b" and result["migrations"]["pending"] == []


def test_heads_that_cannot_be_read_fail_with_their_message(run_module, tool):
    tool({"current": (0, "0001_init\n", ""), "heads": (1, "", "FAILED: No config file 'alembic.ini' found\n")})
    failed, result = run_module(migrations, dict(BASE, action="status"))
    assert failed and "Cannot read the alembic heads" in result["msg"] and "alembic.ini" in result["msg"]


def test_apply_is_locked_and_reports_after(run_module, tool, monkeypatch):
    state = {"applied": False}

    def current(argv, **kw):
        return (0, "0002_b (head)\n" if state["applied"] else "0001_init\n", "")

    answers = {"heads": (0, "0002_b (head)\n", ""), "history": (0, "0001_init -> 0002_b (head), b\n", "")}
    fake = tool(answers)

    def dispatch(argv, **kw):
        if "current" in argv:
            fake.calls.append(argv)
            return current(argv)
        if "upgrade" in argv:
            fake.calls.append(argv)
            state["applied"] = True
            return (0, "", "INFO Running upgrade 0001_init -> 0002_b, b\n")
        return fake(argv, **kw)

    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, argv, **kw: dispatch(argv, **kw))
    failed, result = run_module(migrations, dict(BASE, action="apply", lock_timeout=30))
    assert not failed and result["changed"]
    assert result["migrations"]["before"] == "0001_init" and result["migrations"]["after"] == "0002_b"
    upgrade = next(c for c in fake.calls if "upgrade" in c)
    assert upgrade[:5] == ["flock", "--exclusive", "--wait", "30", "/run/lock/shipshape-migrations.lock"]


def test_apply_failure_names_the_migration(run_module, tool):
    tool({
        "current": (0, "0001_init\n", ""),
        "heads": (0, "0002_b (head)\n", ""),
        "history": (0, "0001_init -> 0002_b (head), b\n", ""),
        "upgrade": (1, "", "INFO Running upgrade 0001_init -> 0002_b, b\nsqlalchemy.exc.ProgrammingError: boom\n"),
    })
    failed, result = run_module(migrations, dict(BASE, action="apply"))
    assert failed
    assert "migration 0002_b" in result["msg"] and "ProgrammingError: boom" in result["msg"]


def test_check_mode_reads_but_never_applies(run_module, tool):
    fake = tool({
        "current": (0, "0001_init\n", ""),
        "heads": (0, "0002_b (head)\n", ""),
        "history": (0, "0001_init -> 0002_b (head), b\n", ""),
    })
    failed, result = run_module(migrations, dict(BASE, action="apply"), check_mode=True)
    assert not failed and not result["changed"]
    assert result["migrations"]["pending"] == ["0002_b"]
    assert not any("upgrade" in c for c in fake.calls)


def test_database_ahead_of_the_release(run_module, tool):
    tool({"current": (255, "", "FAILED: Can't locate revision identified by '0009_future'\n")})
    failed, result = run_module(migrations, dict(BASE))
    assert not failed and result["ahead"]
    assert result["migrations"]["before"] == "newer than this release" and result["migrations"]["pending"] == []


def test_compose_runs_in_a_one_off_container_with_env_as_environment(monkeypatch, run_module):
    seen = []

    def run_command(self, argv, environ_update=None, **kw):
        seen.append((argv, environ_update))
        return (0, "[X]  notes.0001_initial\n[ ]  notes.0002_tags\n", "")

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    failed, result = run_module(migrations, dict(BASE, tool="django", runner="compose",
                                                 compose_project_dir="/srv/app/compose", compose_service="web",
                                                 compose_env={"APP_IMAGE_TAG": "1.0.0; touch /tmp/pwned"}))
    assert not failed and result["migrations"]["pending"] == ["notes.0002_tags"]
    argv, env = seen[0]
    assert argv[:3] == ["docker", "compose", "--progress"]
    assert argv[-4:] == ["/srv/app/releases/1.0.0-abc/venv/bin/python", "manage.py", "showmigrations", "--plan"]
    assert "web" in argv and "--rm" in argv
    assert env == {"APP_IMAGE_TAG": "1.0.0; touch /tmp/pwned"}
    assert not any("APP_IMAGE_TAG" in word for word in argv)


@pytest.mark.parametrize("lines, rc, expected", [
    (["Following migrations have not yet been applied:", "", "    20261101000000_init", ""], 1,
     ["20261101000000_init"]),
    (["Database schema is up to date!"], 0, []),
])
def test_prisma_status(lines, rc, expected):
    assert migrations.parse_prisma(lines, rc) == expected
