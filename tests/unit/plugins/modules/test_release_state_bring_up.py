"""release_state's switch with manage_units: one module run from the links to the restarted service. systemd is a
fake that keeps each unit's state, records every call and, as the unit's ExecStartPre does, copies current into
<root>/.shipshape-running when the service starts."""

from __future__ import annotations

import grp
import json
import os
import pwd

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.shipshape.ops.plugins.modules import release_state

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
SERVICE, SOCKET = "app.service", "app.socket"
UP = {"active": "active", "enabled": "enabled"}
CONTENT = {SERVICE: "[Service]\nExecStart=/srv/app/current/bin/app\n", SOCKET: "[Socket]\nListenStream=8000\n"}
MUTATING = ("restart", "start", "stop", "enable", "disable", "daemon-reload")


def app(tmp_path):
    """Two releases, current at the first; units/ stands for /etc/systemd/system."""
    root = tmp_path / "app"
    for rid, built_at in (("1.0.0-a", "2026-11-01T00:00:00Z"), ("2.0.0-b", "2026-11-02T00:00:00Z")):
        (root / "releases" / rid).mkdir(parents=True)
        (root / "releases" / rid / "release.json").write_text(json.dumps({"id": rid, "built_at": built_at}))
    os.symlink("releases/1.0.0-a", root / "current")
    (tmp_path / "units").mkdir()
    return root, tmp_path / "units"


class FakeSystemd:
    def __init__(self, root, units_dir, states, fail=()):
        self.root, self.units_dir, self.states, self.fail = root, units_dir, states, set(fail)
        self.calls = []

    def __call__(self, argv, **kwargs):  # AnsibleModule.run_command, set on the class: no self of the module
        assert argv[0] == "systemctl", argv
        self.calls.append(argv[1:])
        args = argv[1:]
        names = args[args.index("--") + 1:] if "--" in args else []
        verb = args[0]
        if verb == "show" and "MainPID" in args:
            return 0, "4242\n" if self.state(names[0])["active"] == "active" else "0\n", ""
        if verb == "show":
            return 0, "\n".join("ActiveState=%(active)s\nUnitFileState=%(enabled)s\n" % self.state(n) for n in names), ""
        for name in names:
            if (verb, name) in self.fail:
                return 1, "", "Job for %s failed because the control process exited with error code." % name
        for name in names:
            state = self.states.setdefault(name, dict(self.state(name)))
            if verb in ("restart", "start"):
                state["active"] = "active"
                if name == SERVICE:  # the unit's ExecStartPre
                    marker = self.root / ".shipshape-running"
                    if os.path.lexists(marker):
                        os.unlink(marker)
                    os.symlink(os.readlink(self.root / "current"), marker)
            elif verb == "stop":
                state["active"] = "inactive"
            elif verb == "enable":
                state["enabled"] = "enabled"
            elif verb == "disable":
                state.update(active="inactive", enabled="disabled")
        return 0, "", ""

    def state(self, name):
        if name in self.states:
            return self.states[name]
        return {"active": "inactive", "enabled": "disabled" if (self.units_dir / name).exists() else ""}

    def changes(self):
        return [call for call in self.calls if call[0] in MUTATING]


@pytest.fixture
def host(tmp_path, monkeypatch):
    """An app whose service runs 1.0.0-a with its socket, both up and their unit files as the switch writes them."""
    root, units = app(tmp_path)
    os.symlink("releases/1.0.0-a", root / ".shipshape-running")
    for name in (SERVICE, SOCKET):
        (units / name).write_text(CONTENT[name])
    fake = FakeSystemd(root, units, {SERVICE: dict(UP), SOCKET: dict(UP)})
    monkeypatch.setattr(AnsibleModule, "run_command", fake)
    monkeypatch.setattr(os, "readlink", _no_proc(os.readlink))  # /proc/<pid>/cwd: the marker says it
    return root, units, fake


def _no_proc(readlink):
    def wrapped(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise PermissionError(13, "Permission denied")
        return readlink(path, *args, **kwargs)
    return wrapped


def unit_file(units, name, content=None):
    return {"path": str(units / name), "content": content or CONTENT.get(name, "[Service]\nExecStart=/bin/true\n"),
            "mode": "0644", "owner": OWNER, "group": GROUP}


def switch(run_module, root, units_dir, target, check_mode=False, files=(SERVICE, SOCKET), extra_units=(), **options):
    unit_files = [unit_file(units_dir, f) if isinstance(f, str) else f for f in files]
    args = {"root": str(root), "action": "switch", "target": target, "service": SERVICE, "manage_units": True,
            "units": [SOCKET, SERVICE, *extra_units], "unit_files": unit_files,
            "unit_files_others": str(units_dir / "app.worker-*.service")}
    args.update(options)
    return run_module(release_state, args, check_mode=check_mode)


def test_a_rollback_is_the_switch_and_one_restart_in_one_run(host, run_module):
    root, units, fake = host
    failed, result = switch(run_module, root, units, "2.0.0-b")
    assert not failed, result
    assert result["switched"] is True and result["changed"] is True and result["running"] == "1.0.0-a"
    assert fake.changes() == [["restart", "--", SERVICE]]  # unchanged units: no reload, no socket restart
    assert result["restarted"] == [SERVICE] and result["started"] == [] and result["enabled"] == []
    assert result["daemon_reloaded"] is False and result["retired"] == []
    assert os.readlink(root / ".shipshape-running") == "releases/2.0.0-b"  # the service runs the target
    assert result["units"] == {SOCKET: UP, SERVICE: UP}

    fake.calls.clear()
    failed, again = switch(run_module, root, units, "2.0.0-b")
    assert not failed and again["changed"] is False and fake.changes() == [], fake.calls
    assert again["restarted"] == [] and again["running"] == "2.0.0-b"


def test_a_changed_socket_unit_reloads_systemd_and_restarts_the_socket_then_the_service(host, run_module):
    root, units, fake = host
    socket = unit_file(units, SOCKET, "[Socket]\nListenStream=9000\n")
    failed, result = switch(run_module, root, units, "1.0.0-a", files=(SERVICE, socket))
    assert not failed and result["switched"] is False and result["changed"] is True
    assert fake.changes() == [["daemon-reload"], ["restart", "--", SOCKET], ["restart", "--", SERVICE]]
    assert (units / SOCKET).read_text() == "[Socket]\nListenStream=9000\n"


def test_the_environment_changed_restarts_the_service_alone(host, run_module):
    root, units, fake = host
    failed, result = switch(run_module, root, units, "1.0.0-a", restart=True)
    assert not failed and result["changed"] is True and fake.changes() == [["restart", "--", SERVICE]]


def test_a_service_on_another_release_than_current_is_restarted_onto_it(host, run_module):
    # A run killed between the switch and the restart: current names 2.0.0-b, the service still runs 1.0.0-a.
    root, units, fake = host
    os.unlink(root / "current")
    os.symlink("releases/2.0.0-b", root / "current")
    failed, result = switch(run_module, root, units, "2.0.0-b")
    assert not failed and result["switched"] is False and result["running"] == "1.0.0-a"
    assert fake.changes() == [["restart", "--", SERVICE]]
    assert os.readlink(root / ".shipshape-running") == "releases/2.0.0-b"


def test_a_stopped_and_disabled_service_is_started_and_enabled_not_restarted(host, run_module):
    root, units, fake = host
    fake.states[SERVICE] = {"active": "failed", "enabled": "disabled"}
    failed, result = switch(run_module, root, units, "1.0.0-a")
    assert not failed and result["changed"] is True
    assert fake.changes() == [["start", "--", SERVICE], ["enable", "--", SERVICE]]
    assert result["started"] == [SERVICE] and result["restarted"] == [] and result["units"][SERVICE] == UP


def test_workers_are_installed_started_and_retired_around_a_service_that_keeps_running(host, run_module):
    root, units, fake = host
    (units / "app.worker-mailer.service").write_text("[Service]\nExecStart=/bin/mailer\n")  # no longer configured
    fake.states["app.worker-mailer.service"] = dict(UP)
    outbox = "app.worker-outbox.service"
    failed, result = switch(run_module, root, units, "1.0.0-a", files=(SERVICE, SOCKET, outbox), extra_units=[outbox])
    assert not failed and result["switched"] is False
    assert fake.changes() == [
        ["disable", "--now", "--", "app.worker-mailer.service"], ["daemon-reload"],
        ["start", "--", outbox], ["enable", "--", outbox]]
    assert not (units / "app.worker-mailer.service").exists() and (units / outbox).exists()
    assert result["retired"] == ["app.worker-mailer.service"] and result["unit_files_others"] == [str(units / "app.worker-mailer.service")]
    assert result["units"][outbox] == UP

    # Its unit changed while the service keeps running: the worker alone is restarted.
    fake.calls.clear()
    changed = unit_file(units, outbox, "[Service]\nExecStart=/bin/outbox --fast\n")
    failed, result = switch(run_module, root, units, "1.0.0-a", files=(SERVICE, SOCKET, changed), extra_units=[outbox])
    assert not failed and fake.changes() == [["daemon-reload"], ["restart", "--", outbox]]

    # At a switch the service's restart restarts it (PartOf): no restart of its own.
    fake.calls.clear()
    changed = unit_file(units, outbox, "[Service]\nExecStart=/bin/outbox --slow\n")
    failed, result = switch(run_module, root, units, "2.0.0-b", files=(SERVICE, SOCKET, changed), extra_units=[outbox])
    assert not failed and fake.changes() == [["daemon-reload"], ["restart", "--", SERVICE]]


def test_socket_activation_turned_off_retires_the_socket_and_restarts_the_service(host, run_module):
    root, units, fake = host
    failed, result = switch(run_module, root, units, "1.0.0-a", files=(unit_file(units, SERVICE, "[Service]\nExecStart=/bin/app --bind\n"),),
                            units=[SERVICE], unit_files_absent=[str(units / SOCKET)])
    assert not failed and result["retired"] == [SOCKET]
    assert fake.changes() == [["disable", "--now", "--", SOCKET], ["daemon-reload"], ["restart", "--", SERVICE]]
    assert not (units / SOCKET).exists()
    fake.calls.clear()
    failed, again = switch(run_module, root, units, "1.0.0-a", files=(unit_file(units, SERVICE, "[Service]\nExecStart=/bin/app --bind\n"),),
                           units=[SERVICE], unit_files_absent=[str(units / SOCKET)])
    assert not failed and again["changed"] is False and fake.changes() == []


def test_socket_activation_turned_on_stops_the_service_that_holds_the_port_before_the_socket_listens(host, run_module):
    root, units, fake = host
    os.unlink(units / SOCKET)
    del fake.states[SOCKET]
    failed, result = switch(run_module, root, units, "1.0.0-a")
    assert not failed and result["changed"] is True
    assert fake.changes() == [["daemon-reload"], ["stop", "--", SERVICE], ["start", "--", SOCKET],
                              ["start", "--", SERVICE], ["enable", "--", SOCKET]]
    assert result["restarted"] == [SERVICE] and result["started"] == [SOCKET] and result["enabled"] == [SOCKET]
    assert result["units"] == {SOCKET: UP, SERVICE: UP}


def test_a_restart_that_fails_fails_the_run_naming_the_unit_and_where_current_points(host, run_module):
    root, units, fake = host
    fake.fail = {("restart", SERVICE)}
    failed, result = switch(run_module, root, units, "2.0.0-b")
    assert failed
    assert result["msg"].startswith("release_state: systemctl restart -- app.service failed: Job for app.service failed")
    assert result["msg"].endswith("(current names 2.0.0-b)")
    assert os.readlink(root / "current") == "releases/2.0.0-b"  # the caller switches back (the deploy's rescue)


def test_check_mode_says_what_it_would_do_and_calls_no_systemctl_that_changes_anything(host, run_module):
    root, units, fake = host
    (units / "app.worker-mailer.service").write_text("[Service]\n")
    failed, result = switch(run_module, root, units, "2.0.0-b", check_mode=True,
                            files=(unit_file(units, SERVICE, "[Service]\nExecStart=/new\n"), SOCKET))
    assert not failed and result["changed"] is True
    assert result["retired"] == ["app.worker-mailer.service"] and result["daemon_reloaded"] is True
    assert result["restarted"] == [SERVICE]
    assert fake.changes() == []
    assert os.readlink(root / "current") == "releases/1.0.0-a" and (units / "app.worker-mailer.service").exists()
    assert (units / SERVICE).read_text() == CONTENT[SERVICE]


@pytest.mark.parametrize("make, options, expected", [
    (lambda units: (units / "app.worker-a b.service").write_text(""), {},
     "unit_files_others: '%s/app.worker-a b.service' is not an absolute path to a systemd unit file; expected one "
     "such as /etc/systemd/system/app.socket"),
    (None, {"unit_files_absent": ["{units}/app.service"]},
     "unit_files_absent: '%s/app.service' is in unit_files too; expected a file either written or retired"),
    (None, {"unit_files_absent": ["relative/app.socket"]},
     "unit_files_absent: 'relative/app.socket' is not an absolute path to a systemd unit file; expected one such "
     "as /etc/systemd/system/app.socket"),
    (lambda units: (units / "app.worker-dir.service").mkdir(), {},
     "unit_files_others: '%s/app.worker-dir.service' is a directory; expected a unit file"),
])
def test_a_unit_file_to_retire_that_is_not_one_is_refused_before_any_link_moves(host, run_module, make, options, expected):
    root, units, fake = host
    if make:
        make(units)
    options = {k: [v.format(units=units) for v in vs] for k, vs in options.items()}
    failed, result = switch(run_module, root, units, "2.0.0-b", **options)
    assert failed and result["msg"] == "release_state: " + (expected % units if "%s" in expected else expected)
    assert os.readlink(root / "current") == "releases/1.0.0-a" and fake.changes() == []


@pytest.mark.parametrize("args, expected", [
    ({"action": "switch", "target": "2.0.0-b", "manage_units": True}, "manage_units needs service"),
    ({"action": "switch", "target": "2.0.0-b", "restart": True}, "unit_files_absent and restart go with manage_units"),
    ({"manage_units": True, "service": SERVICE}, "go with action=switch, not action=read"),
])
def test_the_options_of_the_bring_up_go_together(host, run_module, args, expected):
    root, units, fake = host
    failed, result = run_module(release_state, dict(args, root=str(root)))
    assert failed and expected in result["msg"], result["msg"]
    assert os.readlink(root / "current") == "releases/1.0.0-a" and fake.changes() == []


@pytest.mark.parametrize("name, option", [("app", "unit_files_absent"), ("app.worker-x", "unit_files_others"),
                                          ("app.conf", "unit_files_absent")])
def test_a_file_to_retire_without_a_unit_suffix_is_refused_and_no_unit_is_stopped(host, run_module, name, option):
    # Before: 'app' passed as a unit name; `systemctl disable --now -- app` reads it as app.service, so the app's own
    # service was stopped and disabled (and the file removed) for a path that was not a unit file at all.
    root, units, fake = host
    (units / name).write_text("not a unit\n")
    options = {"unit_files_absent": [str(units / name)]} if option == "unit_files_absent" else \
        {"unit_files_others": str(units / "app.worker-*")}
    failed, result = switch(run_module, root, units, "2.0.0-b", **options)
    assert failed and result["msg"] == (
        "release_state: %s: '%s' is not an absolute path to a systemd unit file; expected one such as "
        "/etc/systemd/system/app.socket" % (option, units / name)), result["msg"]
    assert os.readlink(root / "current") == "releases/1.0.0-a" and fake.changes() == []
    assert (units / name).exists()


@pytest.mark.parametrize("spelling", ["{units}//{name}", "{units}/./{name}"])
def test_a_worker_written_under_another_spelling_of_its_path_is_never_retired(host, run_module, spelling):
    # Before: '/etc/systemd/system//app.worker-outbox.service' (a directory variable with a trailing '/') was not
    # the path the pattern found, so the worker just written was retired: stopped, disabled and its file removed.
    root, units, fake = host
    outbox = "app.worker-outbox.service"
    worker = dict(unit_file(units, outbox), path=spelling.format(units=units, name=outbox))
    (units / outbox).write_text(worker["content"])  # written by the run before
    fake.states[outbox] = dict(UP)
    failed, result = switch(run_module, root, units, "2.0.0-b", files=(SERVICE, SOCKET, worker), extra_units=[outbox])
    assert not failed, result["msg"]
    assert result["unit_files_others"] == [] and result["retired"] == []
    assert (units / outbox).exists() and ["disable", "--now", "--", outbox] not in fake.changes()
    assert result["units"][outbox] == UP


def test_a_unit_file_both_written_and_absent_under_two_spellings_is_refused(host, run_module):
    root, units, fake = host
    failed, result = switch(run_module, root, units, "2.0.0-b", unit_files_absent=["%s//%s" % (units, SERVICE)])
    assert failed and "is in unit_files too" in result["msg"], result["msg"]
    assert os.readlink(root / "current") == "releases/1.0.0-a" and fake.changes() == []


@pytest.mark.parametrize("options", [
    {"files": (SOCKET,), "unit_files_others": "{units}/app*.service"},
    {"files": (SERVICE,), "unit_files_absent": ["{units}/app.socket"]},
], ids=["pattern-matches-the-service", "absent-names-a-unit-to-run"])
def test_a_unit_to_retire_that_is_also_one_to_run_is_refused_before_anything_moves(host, run_module, options):
    # Before: a pattern that also matched the service's own file (not listed in unit_files) retired it: the service
    # was stopped, disabled and its unit file removed, then the run failed starting a unit that no longer existed.
    root, units, fake = host
    options = {k: ([v.format(units=units) for v in vs] if isinstance(vs, list) else
                   vs.format(units=units) if isinstance(vs, str) else vs) for k, vs in options.items()}
    failed, result = switch(run_module, root, units, "2.0.0-b", **options)
    assert failed and "is also one of the units to run" in result["msg"] and "expected" in result["msg"], result
    assert os.readlink(root / "current") == "releases/1.0.0-a" and fake.changes() == []
    assert (units / SERVICE).exists() and (units / SOCKET).exists()
