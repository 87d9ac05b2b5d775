"""shipshape.ops.env_file_value (module_utils/env_files): values of an environment file, quoted for their reader."""

from __future__ import annotations

import json
import subprocess

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.shipshape.ops.plugins.filter.env_file import FilterModule, env_file_value
from ansible_collections.shipshape.ops.plugins.module_utils.env_files import quote_value

TRICKY = 'pa$word "q" \'s\' back\\slash `cmd` ${HOME} Grüße\ttab'


def read_double_quoted(quoted: str, escapes: str) -> str:
    """What a reader of the file gets from a double-quoted value whose backslash escapes only ESCAPES (systemd's
    env-file parser keeps any other backslash as it is); no expansion (the expansion compose would do is what its
    escaped '$' prevents)."""
    assert quoted.startswith('"') and quoted.endswith('"')
    body, out, i = quoted[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in escapes:
            out.append(body[i + 1])
            i += 2
            continue
        assert body[i] != '"', f"an unescaped quote ends the value early: {quoted}"
        out.append(body[i])
        i += 1
    return "".join(out)


@pytest.mark.parametrize("value, systemd, compose", [
    ("plain", '"plain"', '"plain"'),
    ("", '""', '""'),
    ('say "hi"', '"say \\"hi\\""', '"say \\"hi\\""'),
    ("C:\\path", '"C:\\\\path"', '"C:\\\\path"'),
    ("pa$word", '"pa\\$word"', '"pa\\$word"'),
    ("`id`", '"\\`id\\`"', '"`id`"'),
    ("Grüße", '"Grüße"', '"Grüße"'),  # not JSON's \u00fc, which systemd would keep as six characters
    ("a\tb", '"a\tb"', '"a\tb"'),  # a real tab, not JSON's \t
])
def test_each_syntax_escapes_what_its_reader_unescapes(value, systemd, compose):
    assert quote_value(value, "systemd") == systemd
    assert quote_value(value, "compose") == compose


def test_a_tricky_value_reads_back_unchanged():
    assert read_double_quoted(quote_value(TRICKY, "systemd"), '"\\$`') == TRICKY
    compose = quote_value(TRICKY, "compose")
    assert read_double_quoted(compose, '"\\$') == TRICKY
    # every '$' compose would expand is escaped
    assert compose.count("\\$") == TRICKY.count("$")


def test_json_compatible_for_plain_ascii():
    """Values of printable ASCII without a '$' or a backquote are written as before (JSON), so an upgrade does not
    rewrite their file and restart the service."""
    for value in ("postgresql://app:secret@db:5432/app", 'a "quoted" \\ value', "redis://db:6379/0"):
        assert quote_value(value, "systemd") == json.dumps(value)


def test_a_posix_shell_sourcing_the_systemd_file_reads_the_same_value(tmp_path):
    """Runbooks run one-off commands with `set -a; . app.env`: the shell must read what systemd reads (no '$'
    expanded, no backquoted command run)."""
    marker = tmp_path / "ran"
    value = TRICKY + f" `touch {marker}` $(touch {marker})"
    env_file = tmp_path / "app.env"
    env_file.write_text(f"SIGNATURE={quote_value(value, 'systemd')}\n", encoding="utf-8")
    out = subprocess.run(["/bin/sh", "-c", 'set -a; . "$1"; printf %s "$SIGNATURE"', "sh", str(env_file)],
                         capture_output=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert out.stdout.decode("utf-8") == value
    assert not marker.exists()


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\0b"])
def test_a_line_break_or_nul_is_refused(value):
    for syntax in ("systemd", "compose"):
        with pytest.raises(ValueError, match="line break, a carriage return or a NUL"):
            quote_value(value, syntax)
    with pytest.raises(AnsibleFilterError, match="env_file_value: "):
        env_file_value(value, "systemd")


def test_an_unknown_syntax_is_refused_naming_the_choices():
    with pytest.raises(AnsibleFilterError, match="unknown environment file syntax 'dotenv' \\(expected one of: systemd, compose\\)"):
        env_file_value("x", "dotenv")


def test_the_filter_turns_values_into_strings():
    assert env_file_value(5432, "systemd") == '"5432"'
    assert env_file_value(None, "compose") == '""'
    assert FilterModule().filters()["env_file_value"] is env_file_value
