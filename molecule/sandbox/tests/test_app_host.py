"""The app host reaches the db host's services across the network, by name."""

testinfra_hosts = ["shipshape-mol-app"]

PROBE = """
import socket, sys
for port in (5432, 6379):
    s = socket.create_connection(("shipshape-mol-db", port), timeout=3)
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
    cmd = host.run("python3 -c '%s'" % PROBE.replace("'", "'\"'\"'"))
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.split() == ["pg-open", "+PONG"]
