"""The recovery procedures as an operator runs them: counts before and after, --check changing nothing, the
confirmation threshold, a dead-letter replay resumed without duplicates, key deletion and a failed unit's
restart. The tests run in file order on the db host; each sets up its own data."""

from __future__ import annotations

import json

import pytest

from conftest import run_playbook

testinfra_hosts = ["db_servers"]

LOG = "/var/log/shipshape/recovery.jsonl"


def sh(host, cmd: str) -> str:
    out = host.run(cmd)
    assert out.rc == 0, f"{cmd}: {out.stderr}"
    return out.stdout.strip()


def sql(host, query: str) -> str:
    return sh(host, f"sudo -u postgres psql -X -d sample_app -tAc \"{query}\"")


def redis(host, *args: str) -> str:
    return sh(host, "redis-cli " + " ".join(f"'{a}'" for a in args))


def outbox_counts(host) -> dict[str, int]:
    rows = sql(host, "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
    return {s: int(n) for s, n in (line.split("|") for line in rows.splitlines() if line)}


def last_log(host) -> dict:
    return json.loads(host.file(LOG).content_string.strip().splitlines()[-1])


def recovery(*args: str, check: bool | None = True):
    """playbooks/recovery.yml; .output with whitespace squeezed (the YAML callback wraps long messages)."""
    proc = run_playbook("recovery.yml", *args, check=check)
    proc.output = " ".join(proc.output.split())
    return proc


@pytest.fixture()
def outbox(host):
    """5 failed rows (attempts 1, 3, 3, 5, 5; two of them 10 days old) and 3 pending ones."""
    sql(host, "TRUNCATE outbox; "
              "INSERT INTO outbox (event_type, status, attempts, created_at) VALUES "
              "('a', 'failed', 1, now()), ('b', 'failed', 3, now()), ('c', 'failed', 3, now() - interval '10 days'), "
              "('d', 'failed', 5, now()), ('e', 'failed', 5, now() - interval '10 days'), "
              "('f', 'pending', 0, now()), ('g', 'pending', 0, now()), ('h', 'pending', 0, now())")
    assert outbox_counts(host) == {"failed": 5, "pending": 3}


def fill_dlq(host, n: int):
    redis(host, "DEL", "events:dead", "events:dead:replayed")
    for i in range(1, n + 1):
        redis(host, "XADD", "events:dead", f"{i}-1", "type", "order.created", "order_id", str(i))


def test_converge_replayed_the_dead_letters_once(host):
    assert redis(host, "XLEN", "events:dead") == "0"
    assert redis(host, "XLEN", "events") == "4"  # converge and idempotence: no duplicates
    assert redis(host, "HLEN", "events:dead:replayed") == "4"
    entry = last_log(host)
    assert entry["action"] == "stream_replay" and entry["changed"] is False and entry["count"] == 0
    first = [json.loads(line) for line in host.file(LOG).content_string.splitlines()][0]
    assert first["replayed"] == 4 and first["before"]["source_length"] == 4 and first["after"]["target_length"] == 4
    assert first["after"]["groups"][0]["name"] == "workers"


def test_outbox_check_mode_counts_and_changes_nothing(host, outbox):
    proc = recovery("-e", "recovery_action=outbox_requeue", "-e", "recovery_confirm_threshold=2", "--check")
    assert "Would requeue 5 failed rows of outbox" in proc.output
    assert "the real run needs -e recovery_confirm=true" in proc.output
    assert outbox_counts(host) == {"failed": 5, "pending": 3}


def test_outbox_refuses_above_the_threshold_without_confirmation(host, outbox):
    proc = recovery("-e", "recovery_action=outbox_requeue", "-e", "recovery_confirm_threshold=2", check=False)
    assert proc.returncode != 0
    assert "outbox_requeue would touch 5 failed rows of outbox, more than recovery_confirm_threshold (2)" in proc.output
    assert "recovery_confirm=true" in proc.output
    assert outbox_counts(host) == {"failed": 5, "pending": 3}
    entry = last_log(host)
    assert entry["refused"] is True and entry["count"] == 5 and entry["changed"] is False


def test_outbox_requeue_with_confirmation_then_nothing_left(host, outbox):
    proc = recovery("-e", "recovery_action=outbox_requeue", "-e", "recovery_confirm_threshold=2",
                    "-e", "recovery_confirm=true")
    assert "Requeued 5 failed rows" in proc.output
    assert outbox_counts(host) == {"pending": 8}
    assert sql(host, "SELECT count(*) FROM outbox WHERE attempts <> 0") == "0"
    entry = last_log(host)
    assert entry["requeued"] == 5 and entry["counts_before"] == {"failed": 5, "pending": 3}
    assert entry["counts_after"] == {"pending": 8} and entry["changed"] is True

    again = recovery("-e", "recovery_action=outbox_requeue")
    assert "changed=0" in again.output and "failed=0" in again.output
    assert last_log(host)["count"] == 0


def test_outbox_filters(host, outbox):
    recovery("-e", "recovery_action=outbox_requeue", "-e", "recovery_outbox_min_attempts=3",
             "-e", "recovery_outbox_max_age='7 days'")
    assert outbox_counts(host) == {"failed": 3, "pending": 5}
    assert sql(host, "SELECT event_type FROM outbox WHERE status = 'failed' ORDER BY 1").split() == ["a", "c", "e"]


def test_stream_replay_check_mode_changes_nothing(host):
    fill_dlq(host, 3)
    before = redis(host, "XLEN", "events")
    proc = recovery("-e", "recovery_action=stream_replay", "--check")
    assert "Would replay 3 entries of events:dead" in proc.output
    assert redis(host, "XLEN", "events:dead") == "3" and redis(host, "XLEN", "events") == before


def test_stream_replay_interrupted_and_resumed_without_duplicates(host):
    fill_dlq(host, 5)
    # as if killed between XADD and XDEL: 1-1 was added to events and recorded, but is still in the DLQ
    new_id = redis(host, "XADD", "events", "*", "type", "order.created", "order_id", "1")
    redis(host, "HSET", "events:dead:replayed", "1-1", new_id)
    start = int(redis(host, "XLEN", "events"))

    recovery("-e", "recovery_action=stream_replay", "-e", "recovery_stream_max_entries=2")
    assert redis(host, "XLEN", "events:dead") == "3"
    assert int(redis(host, "XLEN", "events")) == start + 1  # 1-1 only deleted, 2-1 replayed
    entry = last_log(host)
    assert (entry["replayed"], entry["already_replayed"], entry["deleted"]) == (1, 1, 2)

    recovery("-e", "recovery_action=stream_replay")
    assert redis(host, "XLEN", "events:dead") == "0"
    assert int(redis(host, "XLEN", "events")) == start + 4  # only the 4 not yet replayed
    lines = redis(host, "XRANGE", "events", "-", "+").splitlines()
    order_ids = [lines[i + 1] for i, line in enumerate(lines) if line == "order_id"]
    assert sorted(order_ids[-5:]) == ["1", "2", "3", "4", "5"]


def test_stream_replay_refuses_above_the_threshold(host):
    fill_dlq(host, 3)
    proc = recovery("-e", "recovery_action=stream_replay", "-e", "recovery_confirm_threshold=2", check=False)
    assert proc.returncode != 0 and "would touch 3 entries of events:dead" in proc.output
    assert redis(host, "XLEN", "events:dead") == "3"
    recovery("-e", "recovery_action=stream_replay", "-e", "recovery_confirm_threshold=2", "-e", "recovery_confirm=true")
    assert redis(host, "XLEN", "events:dead") == "0"


def test_delete_keys_counts_and_deletes(host):
    for jti in ("a1", "b2", "c3"):
        redis(host, "SET", f"owner:botlink:jti:{jti}", "1")
    redis(host, "SET", "owner:session:keep", "1")
    redis(host, "SET", "cache:single", "1")
    proc = recovery("-e", "recovery_action=delete_keys",
                    "-e", '{"recovery_delete_patterns": ["owner:botlink:jti:*"], "recovery_delete_keys": ["cache:single"]}',
                    "--check")
    assert "Would delete 4 keys" in proc.output
    assert redis(host, "EXISTS", "owner:botlink:jti:a1") == "1"

    recovery("-e", "recovery_action=delete_keys",
             "-e", '{"recovery_delete_patterns": ["owner:botlink:jti:*"], "recovery_delete_keys": ["cache:single"]}')
    entry = last_log(host)
    assert entry["deleted"] == 4 and entry["per_source"] == {"owner:botlink:jti:*": 3, "cache:single": 1}
    assert redis(host, "EXISTS", "owner:botlink:jti:a1", "owner:botlink:jti:b2", "cache:single") == "0"
    assert redis(host, "EXISTS", "owner:session:keep") == "1"


def test_restart_unit_captures_the_failed_units_log(host):
    host.run("systemctl reset-failed recovery-broken.service")
    host.run("systemd-run --unit=recovery-broken --property=CollectMode=inactive "
             "/bin/sh -c 'echo recovery-marker-boom; exit 1'")
    assert host.run("for i in $(seq 20); do systemctl is-failed -q recovery-broken && exit 0; sleep 0.5; done; exit 1").rc == 0

    recovery("-e", "recovery_action=restart_unit", "-e", "recovery_unit=recovery-broken.service")
    entry = last_log(host)
    assert entry["restarted"] is True and entry["before"]["ActiveState"] == "failed"
    assert any("recovery-marker-boom" in line for line in entry["log_lines"])


def test_restart_unit_refuses_an_active_unit(host):
    host.run("systemctl stop recovery-sleeper.service")
    sh(host, "systemd-run --unit=recovery-sleeper /bin/sleep 600")
    proc = recovery("-e", "recovery_action=restart_unit", "-e", "recovery_unit=recovery-sleeper.service", check=False)
    assert proc.returncode != 0
    assert "Unit recovery-sleeper.service is active (running), not failed: not restarting it" in proc.output
    entry = last_log(host)
    assert entry["refused"] is True and entry["before"]["ActiveState"] == "active" and entry["log_lines"] is not None
    pid = sh(host, "systemctl show -p MainPID --value recovery-sleeper")
    recovery("-e", "recovery_action=restart_unit", "-e", "recovery_unit=recovery-sleeper.service", "-e", "recovery_force=true")
    assert sh(host, "systemctl show -p MainPID --value recovery-sleeper") != pid
    host.run("systemctl stop recovery-sleeper.service")


@pytest.mark.parametrize("pattern", ["*", "**", "?*", "*?*", "[^]*"])
@pytest.mark.parametrize("confirm", ["false", "true"])
def test_delete_keys_refuses_a_pattern_matching_every_key(host, pattern, confirm):
    """A pattern that matches every key is a FLUSHDB under another name: refused, even with recovery_confirm
    (which confirms a count, not a flush), naming the variable and the pattern; no key is deleted."""
    for i in range(3):
        redis(host, "SET", f"hostile:key:{i}", "1")
    keys = redis(host, "DBSIZE")
    log = host.file(LOG).content_string
    proc = recovery("-e", "recovery_action=delete_keys", "-e", json.dumps({"recovery_delete_patterns": ["cache:*", pattern]}),
                    "-e", f"recovery_confirm={confirm}", check=False)
    assert proc.returncode != 0
    assert f"recovery_delete_patterns: '{pattern}' matches every key, as a FLUSHDB would" in proc.output
    assert "recovery_delete_match_all=true" in proc.output
    assert redis(host, "DBSIZE") == keys
    assert redis(host, "EXISTS", "hostile:key:0", "hostile:key:1", "hostile:key:2") == "3"
    assert host.file(LOG).content_string == log  # refused in preflight, before anything was counted


def test_delete_keys_refuses_above_the_threshold(host):
    """Above recovery_confirm_threshold keys, nothing is deleted without recovery_confirm (the delete itself gets
    the threshold as max_keys, so keys that appear after the count cannot push it past what was confirmed)."""
    redis(host, "SET", "hostile:only", "1")
    keys = redis(host, "DBSIZE")
    proc = recovery("-e", "recovery_action=delete_keys", "-e", json.dumps({"recovery_delete_patterns": ["hostile:*"]}),
                    "-e", "recovery_confirm_threshold=1", check=False)
    assert proc.returncode != 0 and "would touch" in proc.output
    assert redis(host, "DBSIZE") == keys


@pytest.fixture()
def runbook_outbox(host):
    """A Loyalty-style outbox with last_error and scheduled_at: failed rows 'a' (1 attempt, today), 'b' (3 attempts,
    today), 'c' (1 attempt, 3 days old)."""
    sql(host, "DROP TABLE IF EXISTS loyalty_outbox; "
              "CREATE TABLE loyalty_outbox (id serial PRIMARY KEY, event_type text, status text, attempts int, "
              "last_error text, scheduled_at timestamptz, created_at timestamptz, updated_at timestamptz); "
              "INSERT INTO loyalty_outbox (event_type, status, attempts, last_error, created_at) VALUES "
              "('a', 'failed', 1, 'smtp timeout', now()), ('b', 'failed', 3, 'smtp timeout', now()), "
              "('c', 'failed', 1, 'smtp timeout', now() - interval '3 days')")
    yield
    sql(host, "DROP TABLE IF EXISTS loyalty_outbox")


def test_outbox_requeue_with_the_runbook_conditions(host, runbook_outbox):
    recovery("-e", "recovery_action=outbox_requeue", "-e", "recovery_outbox_table=loyalty_outbox",
             "-e", "recovery_outbox_max_attempts=3", "-e", "recovery_outbox_max_age='1 day'",
             "-e", '{"recovery_outbox_null_columns": ["last_error"], "recovery_outbox_now_columns": ["scheduled_at"]}',
             "-e", "recovery_outbox_reset_attempts=false")
    rows = sql(host, "SELECT event_type, status, attempts, coalesce(last_error, '-'), scheduled_at IS NOT NULL "
                     "FROM loyalty_outbox ORDER BY 1")
    assert rows.splitlines() == ["a|pending|1|-|t", "b|failed|3|smtp timeout|f", "c|failed|1|smtp timeout|f"]
    assert last_log(host)["requeued"] == 1


def test_delete_keys_then_publish_reaches_a_subscriber(host):
    redis(host, "SET", "authz:user:42", "cached")
    host.run("rm -f /tmp/recovery-sub.out")
    # A subscriber as another app instance would be: it prints what it receives, for 30 s at most.
    host.run("nohup timeout 30 redis-cli SUBSCRIBE authz.user.updated > /tmp/recovery-sub.out 2>&1 &")
    host.run("for i in $(seq 50); do grep -q subscribe /tmp/recovery-sub.out && break; sleep 0.1; done")
    proc = recovery("-e", "recovery_action=delete_keys", "-e", '{"recovery_delete_keys": ["authz:user:42"]}',
                    "-e", "recovery_publish_channel=authz.user.updated", "-e", "recovery_publish_message=42",
                    "-e", "recovery_publish_min_receivers=1")
    assert "Published on authz.user.updated (1 subscribers received it)" in proc.output
    assert redis(host, "EXISTS", "authz:user:42") == "0"
    received = sh(host, "for i in $(seq 50); do grep -q '^42$' /tmp/recovery-sub.out && break; sleep 0.1; done; "
                        "cat /tmp/recovery-sub.out").splitlines()
    assert received[-3:] == ["message", "authz.user.updated", "42"]
    entry = last_log(host)
    assert entry["deleted"] == 1 and entry["published"] == {"channel": "authz.user.updated", "receivers": 1, "sent": True}


def test_publish_with_nobody_listening_fails_when_a_receiver_is_required(host):
    proc = recovery("-e", "recovery_action=publish", "-e", "recovery_publish_channel=nobody.listens",
                    "-e", "recovery_publish_message=x", "-e", "recovery_publish_min_receivers=1", check=False)
    assert proc.returncode != 0 and "fewer than min_receivers (1)" in proc.output


@pytest.fixture()
def audit_rows(host):
    """audit_events: 120 rows 100 to 219 days old, 5 from today."""
    sql(host, "DROP TABLE IF EXISTS audit_events; CREATE TABLE audit_events (id serial, kind text, created_at timestamptz); "
              "INSERT INTO audit_events (kind, created_at) SELECT 'old', now() - (100 + i) * interval '1 day' "
              "FROM generate_series(0, 119) i; "
              "INSERT INTO audit_events (kind, created_at) SELECT 'new', now() FROM generate_series(1, 5)")
    host.run("rm -rf /var/backups/shipshape/archive")
    yield
    sql(host, "DROP TABLE IF EXISTS audit_events")


def test_archive_rows_moves_old_rows_into_a_checksummed_file(host, audit_rows):
    args = ("-e", "recovery_action=archive_rows", "-e", "recovery_archive_table=audit_events",
            "-e", "recovery_archive_older_than='90 days'", "-e", "recovery_archive_batch_size=50")
    proc = recovery(*args, "--check")
    assert "Would archive 120 rows of audit_events older than 90 days" in proc.output
    assert sql(host, "SELECT count(*) FROM audit_events") == "125"

    refused = recovery(*args, check=False)
    assert refused.returncode != 0 and "would touch 120 rows of audit_events older than 90 days, more than" in refused.output
    assert sql(host, "SELECT count(*) FROM audit_events") == "125"

    recovery(*args, "-e", "recovery_confirm=true")
    entry = last_log(host)
    assert entry["archived"] == 120 and entry["vacuumed"] is True
    assert sql(host, "SELECT kind, count(*) FROM audit_events GROUP BY 1") == "new|5"
    archive = entry["file"]
    assert archive.startswith("/var/backups/shipshape/archive/audit_events-") and archive.endswith(".csv.gz")
    assert sh(host, f"zcat {archive} | wc -l") == "121", "a header and the 120 rows"
    assert sh(host, f"zcat {archive} | tail -n +2 | cut -d, -f2 | sort -u") == "old"
    assert sh(host, f"cd /var/backups/shipshape/archive && sha256sum --check {archive.rsplit('/', 1)[1]}.sha256").endswith("OK")
    assert host.file(archive).mode == 0o600 and host.file("/var/backups/shipshape/archive").mode == 0o700

    again = recovery(*args)
    assert "Would archive" not in again.output and last_log(host)["count"] == 0 and last_log(host)["changed"] is False


def test_a_failed_procedure_is_told_to_the_configured_webhook(host, tmp_path):
    """The notify role at the end of playbooks/recovery.yml: a listener on the controller receives the failure."""
    import http.server
    import threading

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        targets = json.dumps({"notify_targets": [{"type": "json", "url": f"http://127.0.0.1:{server.server_port}/hook"}]})
        proc = recovery("-e", "recovery_action=publish", "-e", "recovery_publish_channel=nobody.listens",
                        "-e", "recovery_publish_message=x", "-e", "recovery_publish_min_receivers=1",
                        "-e", targets, check=False)
    finally:
        server.shutdown()
    assert proc.returncode != 0
    (event,) = received
    assert event["kind"] == "recovery" and event["result"] == "failed" and event["outcome"] == "failure", event
    entry = last_log(host)
    assert entry["result"] == "failed" and "fewer than min_receivers (1)" in entry["error"], entry
    assert str(server.server_port) not in proc.output, "the webhook's URL is a secret: never in the output"


@pytest.mark.parametrize("kind", ["alive", "dead"])
def test_a_second_procedure_is_refused_by_the_recovery_lock(host, outbox, kind):
    from lockfixture import holder, plant

    lock = "/var/lib/shipshape/locks/recovery.lock"
    info = holder(kind, version="delete_keys", what="recovery")
    plant(host, lock, info)
    lines_before = host.file(LOG).content_string.count("\n") if host.file(LOG).exists else 0
    try:
        proc = recovery("-e", "recovery_action=outbox_requeue", "-e", "recovery_confirm=true", check=False)
        assert proc.returncode != 0
        assert f"Refused: the lock {lock} is held by alice@here (run {info['controller_pid']} on" in proc.output
        if kind == "alive":
            assert "is still running" in proc.output
        else:
            assert "That run is gone" in proc.output and "-e recovery_lock_break=true" in proc.output
        assert outbox_counts(host) == {"failed": 5, "pending": 3}  # nothing requeued
        assert json.loads(host.file(f"{lock}/owner.json").content_string)["token"] == "theirs"
        assert (host.file(LOG).content_string.count("\n") if host.file(LOG).exists else 0) == lines_before
    finally:
        host.run(f"rm -rf {lock}")

    if kind == "dead":  # break alone breaks a dead holder's lock; the procedure runs and releases it
        plant(host, lock, info)
        recovery("-e", "recovery_action=outbox_requeue", "-e", "recovery_confirm=true", "-e", "recovery_lock_break=true")
        assert outbox_counts(host) == {"pending": 8}
        assert not host.file(lock).exists


def test_db_report_names_unused_indexes_grants_and_missing_roles_and_changes_nothing(host, tmp_path):
    # shipshape db-report's playbook: read-only diagnostics of the app's database (module pg_diagnostics).
    sql(host, "CREATE INDEX IF NOT EXISTS outbox_event_type_idx ON outbox (event_type)")
    report = tmp_path / "db.json"
    try:
        proc = run_playbook("db_report.yml", "-e", json.dumps({"db_report_roles": ["sample_app", "ghost"]}),
                            "-e", f"db_report_report_path={report}", check=True)
    finally:
        sql(host, "DROP INDEX IF EXISTS outbox_event_type_idx")
    assert " changed=0 " in " ".join(proc.output.split()), proc.output[-2000:]
    (result,) = json.loads(report.read_text()).values()
    outbox = next(t for t in result["tables"] if t["name"] == "outbox")
    assert (outbox["schema"], outbox["kind"], outbox["owner"]) == ("public", "table", "sample_app")
    indexes = {i["name"]: i for i in result["indexes"] if i["table"] == "outbox"}
    assert indexes["outbox_pkey"]["primary"] and not indexes["outbox_pkey"]["unused"]
    assert indexes["outbox_event_type_idx"]["unused"] and indexes["outbox_event_type_idx"]["valid"]
    grants = next(a["grants"] for a in result["access"] if a["table"] == "outbox")
    assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= set(grants["sample_app"]), grants
    assert result["missing_roles"] == ["ghost"]
    # the db host runs no pg_stat_statements: said, not failed
    assert result["slow_queries"] == [] and any("pg_stat_statements" in n for n in result["notes"])
    output = " ".join(proc.output.split())
    assert "unused index public.outbox_event_type_idx on outbox" in output and "no such role: ghost" in output
