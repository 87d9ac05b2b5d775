"""The rules every role's variables are held to (module_utils/var_rules): each kind accepts what it should and
refuses with one message naming the variable, the value (never an env value) and what is expected."""

from __future__ import annotations

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils.var_rules import check, problem, problems


@pytest.mark.parametrize("rule, value", [
    ({"kind": "choice", "choices": ["git", "archive"]}, "git"),
    ({"kind": "int", "min": 2}, 2),
    ({"kind": "int", "min": 2}, "10"),
    ({"kind": "int", "min": 0, "max": 100}, "100"),
    ({"kind": "int", "min": 1}, 129600.0),
    ({"kind": "number", "min": 0}, "2.5"),
    ({"kind": "number", "min": 0}, 0),
    ({"kind": "bool"}, True),
    ({"kind": "bool"}, "no"),
    ({"kind": "account"}, "sample_app"),
    ({"kind": "app_name"}, "sample_app"),
    ({"kind": "component", "max": 128}, "2.0.0-03f406f7"),
    ({"kind": "component", "max": 128, "empty_ok": True}, ""),
    ({"kind": "dir_name"}, "venv"),
    ({"kind": "dir_names"}, ["log", "uploads", "media.cache"]),
    ({"kind": "dir_names"}, []),
    ({"kind": "abs_path"}, "/srv/sample_app/"),
    ({"kind": "abs_path", "suffix": ".prom"}, "/var/lib/node_exporter/textfile/deploy.prom"),
    ({"kind": "rel_path"}, "db/alembic.ini"),
    ({"kind": "service_name"}, "app"),
    ({"kind": "unit_name"}, "sample_app-worker.service"),
    ({"kind": "pg_ident"}, "sample_app"),
    ({"kind": "pg_database"}, "sample_app"),
    ({"kind": "pg_database"}, "sales-ottenok"),
    ({"kind": "env_name"}, "MAINTENANCE_MODE"),
    ({"kind": "docker_tag"}, "v2.0.0"),
    ({"kind": "compose_project"}, "sample-app"),
    ({"kind": "nonempty"}, "registry/app"),
    ({"kind": "line"}, "/srv/app/current/venv/bin/gunicorn -c gunicorn.conf.py"),
    ({"kind": "line"}, 8000),
    ({"kind": "env"}, {"DATABASE_URL": "postgresql://u:p@db/app", "EMPTY": None}),
    ({"kind": "unit_settings"}, {"MemoryMax": "512M", "TasksMax": 64}),
    ({"kind": "workers"}, {}),
    ({"kind": "workers"}, {"outbox": "/srv/app/current/venv/bin/python -m app.outbox_worker", "mail-2": "/bin/mail"}),
    ({"kind": "git_ref"}, "v2.0.0"),
    ({"kind": "git_ref"}, "feature/x-1"),
    ({"kind": "git_ref"}, "03f406f7c1d2"),
    ({"kind": "list"}, []),
    ({"kind": "string"}, ""),
])
def test_a_good_value_passes(rule, value):
    assert problem("v", value, rule) is None


@pytest.mark.parametrize("rule, value, expected", [
    ({"kind": "choice", "choices": ["alembic", "prisma", "custom"]}, "make",
     "v 'make' must be alembic, prisma or custom"),
    ({"kind": "int", "min": 2, "note": "current and the one before it"}, "1",
     "v '1' must be a whole number of at least 2 (current and the one before it)"),
    ({"kind": "int", "min": 1}, "ten", "v 'ten' must be a whole number of at least 1"),
    ({"kind": "int", "min": 1}, True, "v true must be a whole number of at least 1"),
    ({"kind": "int", "min": 0, "max": 100}, 101, "v '101' must be a whole number from 0 to 100"),
    ({"kind": "int", "min": 1}, 1.5, "v '1.5' must be a whole number of at least 1"),
    ({"kind": "number", "min": 0, "note": "percent"}, "-1", "v '-1' must be a number of at least 0 (percent)"),
    ({"kind": "number", "min": 0}, "lots", "v 'lots' must be a number of at least 0"),
    ({"kind": "account", "what": "group"}, "Root", "v 'Root' must be a system group name"),
    ({"kind": "account"}, "root$(touch /tmp/x)", "v 'root$(touch /tmp/x)' must be a system user name"),
    ({"kind": "account"}, "root\nx", 'v "root\\nx" must be a system user name'),
    ({"kind": "app_name"}, "sample_app; touch /tmp/m", "v 'sample_app; touch /tmp/m' must be a lowercase name"),
    ({"kind": "component", "max": 128}, "../../tmp/pwn", "v '../../tmp/pwn' must be one path component"),
    ({"kind": "component", "max": 128}, "1.0..0", "v '1.0..0' must be one path component"),
    ({"kind": "component", "max": 4}, "12345", "then at most 3 letters"),
    ({"kind": "dir_name"}, ".venv", "v '.venv' must be one directory name"),
    ({"kind": "dir_names"}, ["log", "../../etc"], """v ["log", "../../etc"] must be a list of directory names"""),
    ({"kind": "dir_names"}, "log", "v 'log' must be a list of directory names"),
    ({"kind": "dir_names"}, ["log", 7], "must be a list of directory names"),
    ({"kind": "abs_path"}, "/", "v '/' must be an absolute path other than /"),
    ({"kind": "abs_path"}, "/srv/../etc", "without '.' or '..' components"),
    ({"kind": "abs_path"}, "/srv/./etc", "without '.' or '..' components"),
    ({"kind": "abs_path"}, "srv/app", "must be an absolute path"),
    ({"kind": "abs_path"}, "/srv/a b", "v '/srv/a b' must be an absolute path"),
    ({"kind": "abs_path", "about": "(x_root unless set)"}, "/a;b", "v '/a;b' (x_root unless set) must be"),
    ({"kind": "abs_path", "suffix": ".prom"}, "/var/lib/x.txt", "must be an absolute path ending in .prom"),
    ({"kind": "rel_path"}, "../../../etc/passwd", "v '../../../etc/passwd' must be a relative path"),
    ({"kind": "rel_path"}, "/etc/passwd", "must be a relative path"),
    ({"kind": "service_name"}, "app;x", "v 'app;x' must be a service name"),
    ({"kind": "unit_name"}, "app.service; touch /x", "must be a systemd unit name"),
    ({"kind": "pg_ident"}, "app; drop", "must be a PostgreSQL identifier"),
    ({"kind": "pg_ident"}, "sales-ottenok", "must be a PostgreSQL identifier"),
    ({"kind": "pg_database"}, "-d", "v '-d' must be a database name"),
    ({"kind": "pg_database"}, "--file=/tmp/pwn", "must be a database name"),
    ({"kind": "pg_database"}, "host=evil dbname=x", "must be a database name"),
    ({"kind": "pg_database"}, "1db", "must be a database name"),
    ({"kind": "pg_database"}, "d" * 64, "must be a database name"),
    ({"kind": "unit_name", "suffix": ".service"}, "app.socket", "must be a systemd unit name"),
    ({"kind": "env_name"}, "MODE|.*", "v 'MODE|.*' must be an environment variable name"),
    ({"kind": "docker_tag"}, "-v1", "v '-v1' must be a docker tag"),
    ({"kind": "compose_project"}, "App", "v 'App' must be a compose project name"),
    ({"kind": "nonempty"}, " ", "v ' ' must be a non-empty string"),
    ({"kind": "line", "note": "one setting a line"}, "/bin/true\nExecStartPre=/bin/x",
     'v contains a line break or a control character ("/bin/true\\nExecStartPre=/bin/x"); one setting a line'),
    ({"kind": "env"}, {"BAD NAME": "x"}, "v key 'BAD NAME' must be an environment variable name"),
    ({"kind": "env"}, "A=1", "v must be a mapping of names to values"),
    ({"kind": "unit_settings"}, {"Exec Start": "x"}, "v key 'Exec Start' must be a unit setting name"),
    ({"kind": "unit_settings"}, {"MemoryMax": "1G\rx"}, "v['MemoryMax'] contains a line break or a control character"),
    ({"kind": "workers"}, {"../x": "/bin/true"}, "v key '../x' must be a worker name"),
    ({"kind": "workers"}, {"Outbox": "/bin/true"}, "v key 'Outbox' must be a worker name"),
    ({"kind": "workers"}, {"outbox": "/bin/true\nExecStartPre=/bin/touch /x"},
     'v[\'outbox\'] "/bin/true\\nExecStartPre=/bin/touch /x" must be one command line, not empty, without a line break'),
    ({"kind": "workers"}, {"outbox": " "}, "v['outbox'] \" \" must be one command line, not empty"),
    ({"kind": "workers"}, ["outbox"], "v must be a mapping of names to values"),
    ({"kind": "git_ref"}, "", "v is empty; name a branch, a tag or a commit sha"),
    ({"kind": "git_ref"}, "--upload-pack=touch /x", "v '--upload-pack=touch /x' must not start with '-'"),
    ({"kind": "git_ref"}, "v2..v1", "v 'v2..v1' must not contain '..'"),
    ({"kind": "git_ref"}, "@", "must not contain '@{' or be '@'"),
    ({"kind": "git_ref"}, "$(touch /x)", 'v "$(touch /x)" must not contain a space'),
    ({"kind": "git_ref"}, "`touch /x`", 'v "`touch /x`" must not contain a space'),
    ({"kind": "git_ref"}, "x.lock", "must not have an empty component"),
    ({"kind": "git_ref"}, "a//b", "must not have an empty component"),
    ({"kind": "list"}, "a,b", "v 'a,b' must be a list"),
    ({"kind": "string"}, ["x"], 'v ["x"] must be a string'),
    ({"kind": "bool"}, "maybe", "v 'maybe' must be true or false"),
])
def test_a_bad_value_is_named_with_what_is_expected(rule, value, expected):
    assert expected in problem("v", value, rule)


def test_an_env_value_is_never_shown():
    secret = "postgresql://app:S3cret@db/app\nExecStartPre=/bin/touch /tmp/x"
    said = problem("x_env", {"DATABASE_URL": secret}, {"kind": "env", "note": "one line of app.env"})
    assert said == "x_env['DATABASE_URL'] contains a newline, a carriage return or a NUL (value not shown); " \
                   "one line of app.env"
    assert "S3cret" not in said


def test_a_secret_rule_never_shows_the_value():
    said = problem("x_token", "bad token\n", {"kind": "line", "secret": True})
    assert said is not None
    said = problem("x_password", "a b", {"kind": "account", "secret": True})
    assert said == "x_password (value not shown) must be a system user name (a lowercase letter or '_', then at " \
                   "most 31 lowercase letters, digits, '_' or '-')"


def test_problems_come_in_the_order_of_the_rules_and_a_string_is_a_kind():
    rules = {"b_root": "abs_path", "a_keep": {"kind": "int", "min": 2}, "c_user": "account"}
    found = problems({"b_root": "x", "a_keep": 1, "c_user": "ok"}, rules)
    assert [f.split()[0] for f in found] == ["b_root", "a_keep"]


def test_a_missing_variable_is_refused_not_skipped():
    assert problems({}, {"x_root": "abs_path"}) == ["x_root null must be an absolute path other than / of letters, "
                                                    "digits, '.', '_', '+', '-' and '/', without '.' or '..' "
                                                    "components"]


def test_check_gives_one_message_for_all_and_lists_each():
    failed, result = check({"a": "abs_path", "b": {"kind": "int", "min": 1}}, {"a": "rel", "b": 0})
    assert failed and result["msg"].startswith("2 variables refused: a 'rel' must be")
    assert len(result["problems"]) == 2 and result["checked"] == ["a", "b"] and result["changed"] is False
    failed, result = check({"a": "abs_path"}, {"a": "/srv"})
    assert not failed and result["problems"] == [] and "msg" not in result


def test_an_unknown_kind_is_a_mistake_in_the_role_and_says_so():
    failed, result = check({"a": "nosuch"}, {"a": "/srv"})
    assert failed and "unknown rule kind 'nosuch' for a" in result["msg"]


@pytest.mark.parametrize("rule, value, expected", [
    ({"kind": "path"}, "/var/backups/app/../../../tmp/pwn", "must be an absolute path other than /"),
    ({"kind": "path"}, "relative/dir", "v 'relative/dir' must be an absolute path"),
    ({"kind": "paths"}, [], "v [] must be a non-empty list of absolute paths"),
    ({"kind": "paths"}, ["/srv/app/shared", "--checkpoint-action=exec=touch /tmp/pwn"], "--checkpoint-action"),
    ({"kind": "pg_tables"}, ["public.notes", "a.b.c"], "must be a list of [schema.]table names"),
    ({"kind": "choice", "choices": ["", "controller"]}, "s3", "v 's3' must be '' or controller"),
])
def test_the_lenient_path_and_list_kinds(rule, value, expected):
    assert expected in problem("v", value, rule)


def test_a_lenient_path_may_hold_spaces():
    assert problem("v", "/srv/app/shared/user uploads", {"kind": "path"}) is None
    assert problem("v", ["/srv/app/shared/user uploads"], {"kind": "paths"}) is None
    assert problem("v", ["public.notes", "users"], {"kind": "pg_tables"}) is None


REDIS_RULE = {"kind": "redis_patterns", "confirm": "restore_redis_match_all", "match_all_ok": False}


@pytest.mark.parametrize("pattern", ["*", "?*", "*?*", "[^]*", "*[^", "**"])
def test_a_pattern_matching_every_key_is_refused_as_the_modules_refuse_it(pattern):
    # '[^]*' is a FLUSHDB too: the roles' old Jinja check (wildcards only) let it through to the module.
    message = problem("restore_redis_patterns", ["cache:*", pattern], REDIS_RULE)
    assert message == ("restore_redis_patterns: '%s' matches every key, as a FLUSHDB would; expected a narrower "
                       "pattern such as 'cache:*' or restore_redis_match_all=true to delete every key" % pattern)


@pytest.mark.parametrize("allowed", [True, "true", "True", "yes"])
def test_a_pattern_matching_every_key_passes_when_the_rule_allows_it(allowed):
    assert problem("v", ["*"], dict(REDIS_RULE, match_all_ok=allowed)) is None


@pytest.mark.parametrize("allowed", [False, "false", "", None, "no"])
def test_only_a_true_value_allows_a_pattern_matching_every_key(allowed):
    assert "matches every key" in problem("v", ["*"], dict(REDIS_RULE, match_all_ok=allowed))


@pytest.mark.parametrize("value, expected", [
    (["cache:*", ""], "v: an empty pattern ('') matches no key to delete; expected a glob such as 'x:*'; say why"),
    ("cache:*", "v must be a list of key patterns (globs such as 'x:*'), got 'cache:*'"),
    ([1], "v must be a list of key patterns (globs such as 'x:*'), got [1]"),
])
def test_an_empty_pattern_or_a_value_that_is_no_list_of_patterns_is_refused(value, expected):
    assert problem("v", value, {"kind": "redis_patterns", "example": "x:*", "note": "say why"}) == expected


@pytest.mark.parametrize("value", [[], ["cache:*"], ["[a-z]*", "user:?"], ["\\*"]])
def test_narrow_patterns_pass(value):
    assert problem("v", value, REDIS_RULE) is None
