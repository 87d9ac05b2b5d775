"""The app host reaches the db host's services across the network, by name."""

testinfra_hosts = ["app_servers"]

PROBE = """
import socket, sys
for port in (5432, 6379):
    s = socket.create_connection((sys.argv[1], port), timeout=3)
    if port == 6379:
        s.sendall(b"PING\\r\\n")
        print(s.recv(16).decode().strip())
    else:
        print("pg-open")
    s.close()
"""


def test_systemd_is_pid1_and_running(host):
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")


def test_app_host_reaches_postgresql_and_redis(host):
    db_host = host.ansible("ansible.builtin.debug", "msg={{ shipshape_db_host }}")["msg"]
    cmd = host.run("python3 -c '%s' %s" % (PROBE.replace("'", "'\"'\"'"), db_host))
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.split() == ["pg-open", "+PONG"]
