"""The compose strategy as a release engineer sees it: HTTP answers of the app's containers, the tag in
.env and on the running container, rows and the alembic revision on the db host, the deploy history, the
host engine's containers. Deploy, migrations in a one-off container, rollback to the previous tag, a broken
image rolled back by itself, maintenance and read-only modes. The tests run in file order."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time

import pytest
import testinfra

import conftest
from conftest import run_playbook

NAME = os.environ.get("MOLECULE_SCENARIO_NAME", "compose")
testinfra_hosts = ["app_servers"]  # every test takes `host`, so pytest keeps them in file order
ROOT_DIR = "/srv/sample_app"
PROJECT = "shipshape-molecule-compose"
IMAGE = "shipshape-molecule/sample_app"
APP = "http://web:8000"


@pytest.fixture(autouse=True)
def _one_line_results(monkeypatch):
    """The scenario's yaml result format wraps long messages: read results as one-line JSON instead."""
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host(f"ansible://db-{NAME}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def http(host, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
    """One request from the app host to the app's container (web:8000 on the scenario's network)."""
    return conftest.http(host, method, path, body, base=APP)


def sql(db, query: str) -> list[str]:
    cmd = db.run(f"sudo -u postgres psql -X -d sample_app -tAc {shlex.quote(query)}")
    assert cmd.rc == 0, cmd.stderr
    return [line for line in cmd.stdout.splitlines() if line]


def docker(*args: str) -> str:
    """The docker CLI on the controller, against the same host engine the app host drives."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def project_containers(oneoff: bool) -> list[str]:
    return docker("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
                  "--filter", f"label=com.docker.compose.oneoff={'True' if oneoff else 'False'}",
                  "--format", "{{.Names}} {{.Image}} {{.State}}").splitlines()


def running_image() -> str:
    """The image (repository:tag) of the service's container that runs now."""
    lines = [line.split() for line in project_containers(oneoff=False)]
    running = [image for _, image, state in lines if state == "running"]
    assert len(running) == 1, lines
    return running[0]


def deployed_tag(host) -> str:
    text = host.file(f"{ROOT_DIR}/.env").content_string
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("APP_TAG=")][0]


def history(host) -> list[dict]:
    text = host.file(f"{ROOT_DIR}/deploy-history.jsonl").content_string
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class OneOffWatch:
    """docker events of the project's one-off containers (docker compose run) while a playbook runs."""

    def __enter__(self):
        self.proc = subprocess.Popen(
            ["docker", "events", "--filter", "type=container",
             "--filter", f"label=com.docker.compose.project={PROJECT}",
             "--filter", "label=com.docker.compose.oneoff=True",
             "--format", "{{.Action}} {{index .Actor.Attributes \"image\"}}"],
            stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        # "<action> <image>": an action may hold spaces ("exec_start: sh -c ..."), an image name never does.
        self.events = [tuple(line.rsplit(" ", 1)) for line in self.proc.communicate(timeout=10)[0].splitlines()
                       if line.strip()]
        return False


def test_v2_is_live_with_its_migration(host, db):
    status, body = http(host, "GET", "/version")
    assert status == 200, body
    assert (body["release_id"], body["version"]) == ("v2.0.0", "2.0.0")
    assert deployed_tag(host) == "v2.0.0"
    assert running_image() == f"{IMAGE}:v2.0.0"
    status, ready = http(host, "GET", "/readyz")
    assert status == 200 and ready["alembic_revision"] == "0002_note_tags", ready
    # The migration ran against the database, before the switch.
    assert sql(db, "select version_num from alembic_version") == ["0002_note_tags"]
    assert "tag" in sql(db, "select column_name from information_schema.columns where table_name = 'notes'")


def test_notes_written_on_v1_survive_and_v2_feature_works(host):
    status, body = http(host, "GET", "/notes")
    assert status == 200
    assert {"note 1 written on v1", "note 2 written on v1"} <= {n["body"] for n in body["notes"]}
    status, created = http(host, "POST", "/notes", {"body": "tagged on v2", "tag": "v2"})
    assert status == 201 and created["tag"] == "v2", created


def test_history_records_both_tags_and_no_one_off_container_is_left(host):
    deploys = [e for e in history(host) if e["kind"] == "deploy" and e["result"] == "success"]
    assert [e["to"] for e in deploys][-2:] == ["v1.0.0", "v2.0.0"]
    assert [e["version"] for e in deploys][-2:] == ["1.0.0", "2.0.0"]
    assert deploys[-1]["from"] == "v1.0.0"
    assert project_containers(oneoff=True) == []


def test_secrets_stay_in_the_env_file(host):
    env = host.file(f"{ROOT_DIR}/shared/app.env")
    assert env.mode == 0o600 and env.user == "root"
    assert "molecule-db-password" in env.content_string
    assert "molecule-db-password" not in host.file(f"{ROOT_DIR}/compose.yaml").content_string
    logs = host.run(f"docker compose --project-directory {ROOT_DIR} logs --no-color web").stdout
    assert logs and "molecule-db-password" not in logs


# compose_release_env's SAMPLE_APP_SIGNATURE (molecule/compose/group_vars/app_servers.yml): what naive quoting breaks.
SIGNATURE = "pa$word \"q\" 'single' back\\slash `cmd` ${HOME} Grüße\ttab"


def test_every_environment_value_reaches_the_container_byte_for_byte():
    """compose_release_env is written so that compose's env_file parser gives each value back unchanged: a '$' is not
    expanded as a variable (a password with one was cut), quotes, a backslash, a backquote, non-ASCII, a tab."""
    running = [line.split()[0] for line in project_containers(oneoff=False) if line.split()[2] == "running"]
    assert len(running) == 1, running
    entries = json.loads(docker("inspect", "--format", "{{json .Config.Env}}", running[0]))
    env = dict(entry.split("=", 1) for entry in entries)
    assert env["SAMPLE_APP_SIGNATURE"] == SIGNATURE, env["SAMPLE_APP_SIGNATURE"]


def test_a_failing_migration_runs_in_a_one_off_container_of_the_new_image_and_changes_nothing(host, db):
    with OneOffWatch() as watch:
        proc = run_playbook("deploy.yml", "-e", "compose_release_tag=v2.0.2-broken-migration", check=False)
    assert proc.returncode != 0
    assert "Migration failed" in proc.output and "0003_broken" in proc.output, proc.output[-3000:]
    # The migration ran in one-off containers of the new image, each removed afterwards.
    image = f"{IMAGE}:v2.0.2-broken-migration"
    assert ("create", image) in watch.events and ("destroy", image) in watch.events, watch.events
    assert watch.events.count(("create", image)) == watch.events.count(("destroy", image))
    assert {img for _, img in watch.events} == {image}
    assert project_containers(oneoff=True) == []
    # Nothing was switched: the live release and the schema are as they were.
    assert http(host, "GET", "/version")[1]["release_id"] == "v2.0.0"
    assert running_image() == f"{IMAGE}:v2.0.0"
    assert sql(db, "select version_num from alembic_version") == ["0002_note_tags"]
    assert history(host)[-1]["result"] == "failed"


def test_rollback_serves_the_previous_tag_from_the_history(host):
    run_playbook("rollback.yml", check=True)
    status, body = http(host, "GET", "/version")
    assert status == 200 and (body["release_id"], body["version"]) == ("v1.0.0", "1.0.0")
    assert deployed_tag(host) == "v1.0.0"
    assert running_image() == f"{IMAGE}:v1.0.0"
    last = history(host)[-1]
    assert (last["kind"], last["result"], last["from"], last["to"]) == ("rollback", "success", "v2.0.0", "v1.0.0")
    # v1 runs on the newer schema (expand-first migrations) and says so.
    assert http(host, "GET", "/readyz")[1].get("schema") == "ahead"


def test_a_broken_image_is_rolled_back_automatically(host):
    before = http(host, "GET", "/version")[1]
    assert before["release_id"] == "v1.0.0"  # after the rollback
    proc = run_playbook("deploy.yml", "-e", "compose_release_tag=v2.0.1-broken", "-e", "deploy_health_retries=3",
                        check=False)
    out = proc.output
    assert proc.returncode != 0
    assert "Release v2.0.1-broken failed on" in out and "rolled back to v1.0.0, which is ok" in out, out[-3000:]
    # The live version is the one from before, on a container of the previous image.
    status, after = http(host, "GET", "/version")
    assert status == 200 and after == before
    assert deployed_tag(host) == "v1.0.0"
    assert running_image() == f"{IMAGE}:v1.0.0"
    last = history(host)[-1]
    assert (last["to"], last["result"], last["version"]) == ("v2.0.1-broken", "rolled_back", "2.0.1-broken")
    marker = json.loads(host.file(f"{ROOT_DIR}/failed/v2.0.1-broken.json").content_string)
    assert "unhealthy" in marker["reason"] or "health" in marker["reason"], marker
    # Marked failed: refused next time unless forced (compose_release_force).
    assert host.file(f"{ROOT_DIR}/failed").listdir() == ["v2.0.1-broken.json"]


def container_modes() -> set[str]:
    name = [line.split()[0] for line in project_containers(oneoff=False)][0]
    env = docker("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", name).splitlines()
    return {line for line in env if line.startswith(("MAINTENANCE_MODE=", "READ_ONLY_MODE="))}


def test_maintenance_on_recreates_the_container_and_answers_503(host):
    proc = run_playbook("maintenance.yml", "-e", "maintenance_state=maintenance", check=True)
    assert "live -> maintenance (compose, restarted)" in proc.output, proc.output[-2000:]
    status, body = http(host, "GET", "/notes")
    assert status == 503 and body["error"] == "maintenance"
    assert http(host, "GET", "/healthz")[0] == 200
    assert container_modes() == {"MAINTENANCE_MODE=1"}


def test_read_only_then_live(host):
    run_playbook("maintenance.yml", "-e", "maintenance_state=read_only", check=True)
    assert http(host, "GET", "/notes")[0] == 200
    status, body = http(host, "POST", "/notes", {"body": "refused"})
    assert status == 503 and body["error"] == "read_only"
    assert container_modes() == {"READ_ONLY_MODE=1"}
    run_playbook("maintenance.yml", "-e", "maintenance_state=live", check=True)
    assert http(host, "GET", "/notes")[0] == 200
    assert http(host, "POST", "/notes", {})[0] == 400  # writes accepted again (an invalid body is rejected)
    assert container_modes() == set()
    assert not host.file(f"{ROOT_DIR}/shared/modes.env").exists
    assert http(host, "GET", "/version")[1]["release_id"] == "v1.0.0"


def image_tags() -> set[str]:
    return set(docker("image", "ls", "--format", "{{.Tag}}", IMAGE).split()) - {"<none>"}


def test_keep_n_removes_the_image_tags_beyond_the_keep_counts(host):
    # A keep count of 0 is refused before anything changes (keep-N runs after the switch).
    refused = run_playbook("deploy.yml", "-e", "compose_release_tag=v2.0.0", "-e", "compose_release_keep=0", check=False)
    assert "compose_release_keep '0' must be a whole number of at least 1" in " ".join(refused.output.split()), \
        refused.output[-2000:]
    assert deployed_tag(host) == "v1.0.0" and running_image() == f"{IMAGE}:v1.0.0"
    # An older tag of the same image (an earlier release), beside v1.0.0, v2.0.0, v2.0.2-broken-migration (the newest
    # build) and v2.0.1-broken (marked failed).
    docker("tag", f"{IMAGE}:v1.0.0", f"{IMAGE}:v0.9.0")
    assert {"v0.9.0", "v1.0.0", "v2.0.0", "v2.0.1-broken", "v2.0.2-broken-migration"} <= image_tags()
    proc = run_playbook("deploy.yml", "-e", "compose_release_tag=v2.0.0", "-e", "compose_release_keep=2",
                        "-e", "compose_release_keep_failed=0", check=True)
    assert "pruned v0.9.0, v2.0.1-broken" in proc.output, proc.output[-3000:]
    # Kept: the two newest complete builds (v2.0.2-broken-migration and v2.0.0, the deployed tag) and v1.0.0, the tag
    # it switched from (a rollback goes there).
    assert image_tags() == {"v1.0.0", "v2.0.0", "v2.0.2-broken-migration"}
    assert running_image() == f"{IMAGE}:v2.0.0"
    assert http(host, "GET", "/version")[1]["release_id"] == "v2.0.0"
    last = history(host)[-1]
    assert (last["result"], last["from"], last["to"], last["pruned"]) == (
        "success", "v1.0.0", "v2.0.0", ["v0.9.0", "v2.0.1-broken"])
    # The failed marker stays: the tag is still refused if its image comes back.
    assert host.file(f"{ROOT_DIR}/failed/v2.0.1-broken.json").exists
    # Nothing left to prune: a second deploy removes nothing.
    again = run_playbook("deploy.yml", "-e", "compose_release_tag=v2.0.0", "-e", "compose_release_keep=2",
                         "-e", "compose_release_keep_failed=0", check=True)
    assert "pruned" not in history(host)[-1] and "; pruned" not in again.output
    assert image_tags() == {"v1.0.0", "v2.0.0", "v2.0.2-broken-migration"}


def service_health(tmp_path) -> dict:
    """playbooks/health.yml on the app host with one compose_service check of the app's service: its result."""
    report = tmp_path / "health.json"
    checks = {"preflight_checks": [{"name": "web", "kind": "compose_service", "project_dir": ROOT_DIR, "service": "web"}]}
    run_playbook("health.yml", "--limit", "app_servers", "-e", json.dumps(checks), "-e", f"health_report_path={report}",
                 "-e", "health_fail_on=never")
    [result] = json.loads(report.read_text()).values()
    return result["checks"][0]


def test_a_stopped_service_is_seen_and_restarted_by_recover_restart_service(host, tmp_path):
    recover = ["-e", "recovery_hosts=app_servers", "-e", "recovery_action=restart_service",
               "-e", f"recovery_compose_project_dir={ROOT_DIR}", "-e", "recovery_compose_service=web"]
    check = service_health(tmp_path)
    assert check["status"] == "ok" and check["message"].startswith("compose service web: "), check
    assert check["message"].endswith(" running (healthy)") or check["message"].endswith(" running"), check
    # A service that runs healthy is refused, and nothing is restarted.
    [(name, _image, _state)] = [line.split() for line in project_containers(oneoff=False)]
    started = docker("inspect", "--format", "{{.State.StartedAt}}", name).strip()
    proc = run_playbook("recovery.yml", *recover, check=False)
    assert proc.returncode != 0 and "it runs, so it is not restarted" in " ".join(proc.output.split()), proc.output[-2000:]
    assert docker("inspect", "--format", "{{.State.StartedAt}}", name).strip() == started
    # Stopped (as a crashed worker is): the check says so, and the recovery brings it back.
    docker("stop", "-t", "1", name)
    check = service_health(tmp_path)
    assert check["status"] == "failed" and "exited" in check["message"], check
    assert http(host, "GET", "/version")[0] != 200
    proc = run_playbook("recovery.yml", *recover, check=True)
    said = " ".join(proc.output.split())
    assert "Restarted web (compose service web: " in said and " exited" in said, proc.output[-2000:]
    for _ in range(60):
        if http(host, "GET", "/version")[0] == 200:
            break
        time.sleep(1)
    assert http(host, "GET", "/version")[1]["release_id"] == "v2.0.0"
    assert service_health(tmp_path)["status"] in ("ok", "degraded")  # healthy once its healthcheck has passed
    # `shipshape logs` reads the service's containers (logs_source is compose for a compose app): the request above.
    logs = tmp_path / "logs.json"
    run_playbook("logs.yml", "-e", "logs_since=10m", "-e", json.dumps({"logs_grep": "GET /version"}), "-e", f"logs_report_path={logs}",
                 check=True)
    [found] = json.loads(logs.read_text()).values()
    assert found["matched"] >= 1 and all("GET /version" in line["text"] for line in found["lines"]), found
    record = json.loads(host.file("/var/log/shipshape/recovery.jsonl").content_string.splitlines()[-1])
    assert (record["action"], record["result"], record["restarted"]) == ("restart_service", "done", True), record
