"""A planted secret never reaches the terminal, the reports or the kept artifacts."""

from __future__ import annotations

from cli_paths import LOCAL_INVENTORY, PLAYBOOKS, PRODUCTION_INVENTORY

SECRET = "S3cr3t-planted-XYZ"
TOKEN = "T0ken-planted-ABC"


def files_containing(root, needle):
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_planted_secret_is_nowhere(cli, state_dir, tmp_path):
    reports = tmp_path / "reports"
    (tmp_path / "out").mkdir()
    outputs = []
    for extra in ([], ["--json"]):
        result = cli("playbook", str(PLAYBOOKS / "secret.yml"), "-i", str(LOCAL_INVENTORY), "--diff",
                     "-e", f"db_password={SECRET}", "-e", f'{{"api_token": "{TOKEN}"}}',
                     "-e", f"secret_file={tmp_path / 'out' / 'secret.conf'}", "--report-dir", str(reports), *extra)
        assert result.code == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    for needle in (SECRET, TOKEN):
        assert all(needle not in output for output in outputs)
        assert files_containing(state_dir, needle) == []
        assert files_containing(reports, needle) == []
    assert "********" in outputs[0]
    # The secret did reach the play (the file it wrote holds it): the run really used it.
    assert SECRET in (tmp_path / "out" / "secret.conf").read_text()
    # Kept artifacts exist and were searched.
    assert list(state_dir.rglob("job_events/*.json"))
    assert list(state_dir.rglob("artifacts/main/stdout"))


def test_inventory_secrets_are_masked(cli, state_dir):
    # -y: the production inventory would ask; its inventory_api_token must not leak either.
    result = cli("deploy", "-y", "-i", str(PRODUCTION_INVENTORY), "-e", "shown={{ inventory_api_token }}")
    assert result.code == 0, result.stderr
    assert "Inv3ntory-token-planted-QQ" not in result.stdout + result.stderr
    assert files_containing(state_dir, "Inv3ntory-token-planted-QQ") == []
