"""The db host serves PostgreSQL and Redis, and the app host can use both over the network."""

import pytest

testinfra_hosts = ["db_servers"]


def test_postgresql_is_active(host):
    assert host.service("postgresql@15-main").is_running
    assert host.service("postgresql@15-main").is_enabled


def test_redis_is_active(host):
    assert host.service("redis-server").is_running


def test_database_accepts_a_query_as_the_app_user(host):
    # Over TCP with the app's password, as the app will connect: proves pg_hba and the role.
    cmd = host.run(
        "PGPASSWORD=molecule-db-password psql -h 127.0.0.1 -U sample_app -d sample_app -tAc "
        "\"SELECT current_user || ':' || current_database() || ':' || 6*7\""
    )
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "sample_app:sample_app:42"


def test_redis_answers_ping_and_stores_a_value(host):
    assert host.run("redis-cli PING").stdout.strip() == "PONG"
    assert host.run("redis-cli SET shipshape:molecule ok").rc == 0
    assert host.run("redis-cli GET shipshape:molecule").stdout.strip() == "ok"


@pytest.mark.parametrize("port", [5432, 6379])
def test_services_listen_on_all_addresses(host, port):
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening
