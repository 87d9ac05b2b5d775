#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrations
short_description: Read or apply the schema migrations of a release (alembic, prisma, django or custom)
description:
  - Runs the migration tool inside a release with the service's view of the world, built as argv lists and
    never through a shell string; through C(systemd-run) (the release as working directory, the service's
    environment file parsed by systemd, the service user) or in a one-off container of the service's image
    (C(docker compose run --rm --no-deps)).
  - O(action=status) reads the current revision and what is pending, and changes nothing.
  - O(action=apply) reads the status, then applies what is pending under an exclusive C(flock), and reads the
    revision after. Nothing pending is no change. In check mode it only reads the status.
  - Every path, the user, the compose service and the compose environment's keys are validated before
    anything runs.
version_added: 0.2.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  action:
    description: C(status) reads, C(apply) applies what is pending.
    type: str
    choices: [status, apply]
    default: status
  tool:
    description: The migration tool.
    type: str
    choices: [alembic, prisma, django, custom]
    default: alembic
  runner:
    description: Where the tool runs (C(systemd) through systemd-run, C(compose) in a one-off container).
    type: str
    choices: [systemd, compose]
    default: systemd
  path:
    description: The release directory the tool runs in (compose, the directory inside the image). Absolute,
      letters, digits and C(._-/) only, without C(..).
    type: str
    required: true
  env_file:
    description: Environment file the tool reads (systemd runner), the same one the service reads.
    type: str
    default: ""
  user:
    description: User the tool runs as (systemd runner).
    type: str
    default: root
  venv_dir:
    description: Python venv of the release, relative to O(path) (alembic, django).
    type: str
    default: venv
  alembic_config:
    description: alembic config file, relative to O(path).
    type: str
    default: alembic.ini
  status_command:
    description: custom, a shell command (run as C(sh -c <command>)) printing the pending migrations, one a line.
    type: str
    default: ""
  apply_command:
    description: custom, a shell command applying the pending migrations.
    type: str
    default: ""
  revision_command:
    description: custom, a shell command printing the current revision (optional).
    type: str
    default: ""
  lock_file:
    description: The lock file (C(flock --exclusive)) that keeps two runs from applying at once.
    type: str
    default: /run/lock/shipshape-migrations.lock
  lock_timeout:
    description: Seconds to wait for the lock (>= 1).
    type: int
    default: 120
  compose_project_dir:
    description: compose, the project directory.
    type: str
    default: ""
  compose_service:
    description: compose, the service whose image runs the tool.
    type: str
    default: ""
  compose_env:
    description: compose, environment of the C(docker compose) process (keys C([A-Za-z_][A-Za-z0-9_]*), values
      without newline), passed as the process environment, never on a command line.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    details: Reading the status runs the tool's read-only commands; nothing is applied in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Read the migration status of the current release
  shipshape.ops.migrations:
    action: status
    path: /srv/sample_app/current
    env_file: /srv/sample_app/shared/app.env
    user: sample_app

- name: Apply what is pending, locked
  shipshape.ops.migrations:
    action: apply
    path: /srv/sample_app/releases/20261202T070000Z
    env_file: /srv/sample_app/shared/app.env
"""

RETURN = r"""
migrations:
  description: What the deploy role records (C(migrations_result)).
  returned: always
  type: dict
  contains:
    tool:
      description: The tool.
      type: str
    before:
      description: Revision(s) before, comma-separated; C(newer than this release) when the database is ahead.
      type: str
    after:
      description: Revision(s) after, comma-separated (C(before) when nothing was applied).
      type: str
    pending:
      description: The pending migrations, oldest first.
      type: list
      elements: str
    applied:
      description: Whether migrations were applied.
      type: bool
ahead:
  description: alembic, the database holds a revision this release does not know.
  returned: always
  type: bool
output:
  description: The apply's output lines (stdout, then stderr).
  returned: when applied
  type: list
  elements: str
"""

import re
import threading
import traceback

from ansible.module_utils.basic import AnsibleModule

ABS_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")
REL_PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
SERVICE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A revision line of `alembic current` / `alembic heads`: "0002_note_tags (head)".
REV_RE = re.compile(r"^([0-9A-Za-z_]+)( \(head\))?( \(mergepoint\))?$")
HISTORY_RE = re.compile(r"^.*->\s*([0-9A-Za-z_]+).*$")
FAILED_REV_RE = re.compile(r"^.*Running upgrade\s+\S*\s*->\s*(\S+?),?\s.*$")
PRISMA_RE = re.compile(r"^\s+\d{14}_")
AHEAD = "newer than this release"


class MigrationError(Exception):
    """A failure with a message for the user."""


# --- validation -------------------------------------------------------------------------------------------

def _abs_path_ok(value):
    return bool(ABS_PATH_RE.match(value)) and "/../" not in value + "/" and "/./" not in value + "/"


def _rel_path_ok(value):
    return bool(REL_PATH_RE.match(value)) and ".." not in value.split("/")


def validate(params):
    """Return the first rule the options break, naming the option and the value, or None."""
    if not _abs_path_ok(params["path"]):
        return "path must be an absolute path of letters, digits and . _ - / without '..' (got %r)" % params["path"]
    if params["env_file"] and not _abs_path_ok(params["env_file"]):
        return "env_file must be empty or an absolute path of letters, digits and . _ - / without '..' (got %r)" % params["env_file"]
    if not USER_RE.match(params["user"]):
        return "user must be a user name ([a-z_][a-z0-9_-]*, at most 32 characters; got %r)" % params["user"]
    for name in ("venv_dir", "alembic_config"):
        if not _rel_path_ok(params[name]):
            return "%s must be a relative path of letters, digits and . _ - / without '..' (got %r)" % (name, params[name])
    if not _abs_path_ok(params["lock_file"]):
        return "lock_file must be an absolute path of letters, digits and . _ - / without '..' (got %r)" % params["lock_file"]
    if params["lock_timeout"] < 1:
        return "lock_timeout must be >= 1 (got %r)" % params["lock_timeout"]
    if params["tool"] == "custom" and not (params["status_command"] and params["apply_command"]):
        return "tool custom needs status_command and apply_command (got %r and %r)" % (
            params["status_command"], params["apply_command"])
    if params["runner"] == "compose":
        if not _abs_path_ok(params["compose_project_dir"]):
            return "compose_project_dir must be an absolute path of letters, digits and . _ - / without '..' (got %r)" % (
                params["compose_project_dir"])
        if not SERVICE_RE.match(params["compose_service"]):
            return "compose_service must be a service name ([a-zA-Z0-9][a-zA-Z0-9_.-]*; got %r)" % params["compose_service"]
    for key, value in (params["compose_env"] or {}).items():
        if not ENV_KEY_RE.match(str(key)):
            return "compose_env keys must match [A-Za-z_][A-Za-z0-9_]* (got %r)" % key
        if any(c in str(value) for c in "\r\n\x00"):
            return "compose_env values must hold no newline (got one for %r)" % key
    return None


# --- command lines ----------------------------------------------------------------------------------------

def runner_argv(params):
    """The argv prefix that runs a program as the service would."""
    if params["runner"] == "compose":
        return ["docker", "compose", "--progress", "quiet", "--project-directory", params["compose_project_dir"],
                "run", "--rm", "--no-deps", "--no-TTY", "--quiet-pull", "--workdir", params["path"],
                "--env", "PYTHONDONTWRITEBYTECODE=1", params["compose_service"]]
    argv = ["systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--service-type=exec",
            "-p", "WorkingDirectory=" + params["path"]]
    if params["env_file"]:
        argv += ["-p", "EnvironmentFile=" + params["env_file"]]
    return argv + ["-p", "User=" + params["user"], "--setenv=PYTHONDONTWRITEBYTECODE=1", "--"]


def tool_commands(params):
    """argv per step (revision, heads, status, apply) of the tool; None where the tool has no such step."""
    bin_dir = "%s/%s/bin" % (params["path"], params["venv_dir"])
    tool = params["tool"]
    if tool == "alembic":
        alembic = [bin_dir + "/alembic", "-c", params["alembic_config"]]
        return {"revision": alembic + ["current"], "heads": alembic + ["heads"], "status": None,
                "apply": alembic + ["upgrade", "head"], "history": alembic + ["history", "-r"]}
    if tool == "prisma":
        prisma = ["npx", "--no-install", "prisma", "migrate"]
        return {"revision": None, "heads": None, "status": prisma + ["status"], "apply": prisma + ["deploy"]}
    if tool == "django":
        manage = [bin_dir + "/python", "manage.py"]
        return {"revision": None, "heads": None, "status": manage + ["showmigrations", "--plan"],
                "apply": manage + ["migrate", "--noinput"]}

    def shell(cmd):  # custom commands are shell commands by definition: one argv item to sh -c
        return ["sh", "-c", cmd] if cmd else None
    return {"revision": shell(params["revision_command"]), "heads": None,
            "status": shell(params["status_command"]), "apply": shell(params["apply_command"])}


# --- parsers ----------------------------------------------------------------------------------------------

def parse_revisions(lines):
    """Revision ids from `alembic current`/`heads` (or a custom revision command), log lines skipped."""
    return [m.group(1) for m in (REV_RE.match(line.strip()) for line in lines) if m]


def parse_alembic_history(lines, before):
    """Pending revisions from `alembic history -r <before>:heads` (newest first), oldest first."""
    found = [HISTORY_RE.sub(r"\1", line) for line in lines if "->" in line]
    return [rev for rev in reversed(found) if rev not in before]


def parse_django(lines):
    """Unapplied entries of `showmigrations --plan`: '[ ]  app.0002_x'."""
    return [re.sub(r"^\[ \]\s*", "", line).strip() for line in lines if line.startswith("[ ]")]


def parse_prisma(lines, rc):
    """`prisma migrate status` lists pending migrations (indented timestamps) and exits non-zero."""
    if rc == 0:
        return []
    return [line.strip() for line in lines if PRISMA_RE.match(line)]


def parse_custom(lines):
    return [line.strip() for line in lines if line.strip()]


def failed_revision(lines):
    """The revision alembic was running when the apply failed, or ''."""
    running = [line for line in lines if "Running upgrade" in line]
    if not running:
        return ""
    match = FAILED_REV_RE.match(running[-1])
    return match.group(1) if match else ""


# --- running ----------------------------------------------------------------------------------------------

class Answer(object):
    """What a command run in another thread answered, or the exception it raised."""

    def __init__(self):
        self.value = None
        self.error = None

    def get(self):
        if self.error is not None:
            raise self.error
        return self.value


class Migrations:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.prefix = runner_argv(self.params)
        self.commands = tool_commands(self.params)

    def run(self, argv, locked=False):
        full = self.prefix + argv
        if locked:
            full = ["flock", "--exclusive", "--wait", str(self.params["lock_timeout"]), self.params["lock_file"]] + full
        env = {str(k): str(v) for k, v in (self.params["compose_env"] or {}).items()}
        try:
            # handle_exceptions=False: a program that cannot start raises here (also in run_together's thread),
            # instead of run_command answering for the whole module.
            rc, out, err = self.module.run_command(full, environ_update=env or None, handle_exceptions=False)
        except OSError as exc:
            raise MigrationError("Cannot run %s: %s" % (full[0], exc))
        return rc, out.splitlines(), err.splitlines()

    def run_together(self, first, second):
        """Two independent reads at once, (rc, out, err) of each; a failure of the second is raised only when
        its answer is used (Answer.get)."""
        answer = Answer()

        def run_second():
            try:
                answer.value = self.run(second)
            except Exception as exc:  # pylint: disable=broad-except  # handed to the caller's thread
                answer.error = exc

        worker = threading.Thread(target=run_second)
        worker.start()
        try:
            return self.run(first), answer
        finally:
            worker.join()

    def status(self):
        """(before, pending, ahead)."""
        tool = self.params["tool"]
        if tool == "alembic":
            return self.alembic_status()
        before = []
        if self.commands["revision"]:
            rc, out, err = self.run(self.commands["revision"])
            lines = out + err
            if rc != 0:
                raise MigrationError("Cannot read the schema revision with %s: %s" % (tool, " | ".join(lines[-3:])))
            before = parse_revisions(lines)
        rc, out, err = self.run(self.commands["status"])
        if tool == "prisma":
            return ",".join(before), parse_prisma(out, rc), False
        if rc != 0:
            raise MigrationError("Cannot read the pending migrations with %s (exit %d): %s" % (
                tool, rc, " | ".join((out + err)[-3:])))
        pending = parse_django(out) if tool == "django" else parse_custom(out)
        return ",".join(before), pending, False

    def alembic_status(self):
        """(before, pending, ahead) from alembic. The database's revision (`current`) and the release's heads
        (`heads`) are independent reads, each a start-up of alembic under the runner: they run at once."""
        (rc, out, err), heads_answer = self.run_together(self.commands["revision"], self.commands["heads"])
        lines = out + err
        if rc != 0:
            if any("locate revision" in line for line in lines):
                return AHEAD, [], True
            raise MigrationError("Cannot read the schema revision with alembic: %s" % " | ".join(lines[-3:]))
        before = parse_revisions(lines)
        rc, out, err = heads_answer.get()
        if rc != 0:
            raise MigrationError("Cannot read the alembic heads: %s" % " | ".join((out + err)[-3:]))
        heads = parse_revisions(out + err)
        if sorted(before) == sorted(heads):
            return ",".join(before), [], False
        rc, out, err = self.run(self.commands["history"] + ["%s:heads" % (",".join(before) or "base")])
        if rc != 0:
            raise MigrationError("Cannot read the alembic history: %s" % " | ".join((out + err)[-3:]))
        return ",".join(before), parse_alembic_history(out + err, before), False

    def apply(self, before, pending):
        rc, out, err = self.run(self.commands["apply"], locked=True)
        lines = out + err
        if rc != 0:
            rev = failed_revision(lines)
            raise MigrationError("Migration failed (%s, from '%s' towards %s)%s. Last lines: %s" % (
                self.params["tool"], before or "none", ", ".join(pending), (": migration " + rev) if rev else "",
                " | ".join(lines[-4:])))
        after = before
        if self.commands["revision"]:
            rc, rout, rerr = self.run(self.commands["revision"])
            if rc == 0:
                after = ",".join(parse_revisions(rout + rerr))
        return after, lines


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["status", "apply"], default="status"),
            tool=dict(type="str", choices=["alembic", "prisma", "django", "custom"], default="alembic"),
            runner=dict(type="str", choices=["systemd", "compose"], default="systemd"),
            path=dict(type="str", required=True),
            env_file=dict(type="str", default=""),
            user=dict(type="str", default="root"),
            venv_dir=dict(type="str", default="venv"),
            alembic_config=dict(type="str", default="alembic.ini"),
            status_command=dict(type="str", default=""),
            apply_command=dict(type="str", default=""),
            revision_command=dict(type="str", default=""),
            lock_file=dict(type="str", default="/run/lock/shipshape-migrations.lock"),
            lock_timeout=dict(type="int", default=120),
            compose_project_dir=dict(type="str", default=""),
            compose_service=dict(type="str", default=""),
            compose_env=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    problem = validate(module.params)
    if problem:
        module.fail_json(msg="migrations: " + problem)
    tool = module.params["tool"]
    try:
        runner = Migrations(module)
        before, pending, ahead = runner.status()
        result = dict(changed=False, ahead=ahead,
                      migrations=dict(tool=tool, before=before, after=before, pending=pending, applied=False))
        if module.params["action"] == "apply" and pending and not module.check_mode:
            after, output = runner.apply(before, pending)
            result.update(changed=True, output=output)
            result["migrations"].update(after=after, applied=True)
    except MigrationError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
