"""shipshape.ops.release_source_git against a real repository: a mirror made once and fetched after, a ref resolved to
its commit and exported once, a new tag seen on the next run, a ref that names nothing refused by its variable, and
values that look like options taken as values."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import git_source
from ansible_collections.shipshape.ops.plugins.modules import release_source_git as module

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], env={**os.environ, **ENV}, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path):
    path = tmp_path / "app"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("print('v1')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "v1")
    git(path, "tag", "v1.0.0")
    return path


def test_resolves_exports_once_and_sees_new_tags(run_module, repo, tmp_path):
    cache = tmp_path / "cache"
    args = {"repo": str(repo), "ref": "v1.0.0", "cache": str(cache)}
    failed, first = run_module(module, args)
    assert not failed and first["changed"] and first["cloned"] and first["exported"]
    assert first["sha"] == git(repo, "rev-parse", "v1.0.0^{commit}") and first["describe"] == "v1.0.0"
    with tarfile.open(first["artifact"]) as archive:
        assert "src/app.py" in archive.getnames()
    assert oct(os.stat(cache / "artifacts").st_mode & 0o777) == "0o700"

    failed, again = run_module(module, args)
    assert not failed and not again["changed"] and again["artifact"] == first["artifact"]

    (repo / "app.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    git(repo, "tag", "v2.0.0")
    failed, second = run_module(module, dict(args, ref="v2.0.0"))
    assert not failed and second["exported"] and not second["cloned"], "the mirror is fetched, not cloned again"
    assert second["sha"] == git(repo, "rev-parse", "v2.0.0^{commit}") and second["describe"] == "v2.0.0"
    assert not list(cache.glob("artifacts/*.part")), "no partial archive left"


def test_a_ref_that_names_nothing_is_refused_by_its_variable(run_module, repo, tmp_path):
    failed, result = run_module(module, {"repo": str(repo), "ref": "no-such-tag", "cache": str(tmp_path / "c"),
                                         "ref_variable": "systemd_release_git_ref"})
    assert failed
    assert result["msg"] == f"systemd_release_git_ref 'no-such-tag' names no commit in {repo}"
    assert not list((tmp_path / "c" / "artifacts").iterdir())


@pytest.mark.parametrize("ref", ["--upload-pack=touch /tmp/pwned", "--output=/tmp/pwned"])
def test_a_ref_that_looks_like_an_option_is_only_a_value(run_module, repo, tmp_path, ref):
    failed, result = run_module(module, {"repo": str(repo), "ref": ref, "cache": str(tmp_path / "c")})
    assert failed and "names no commit" in result["msg"]
    assert not os.path.exists("/tmp/pwned")


def test_a_repository_that_looks_like_an_option_is_refused(run_module, tmp_path):
    failed, result = run_module(module, {"repo": "--upload-pack=touch /tmp/pwned", "ref": "v1",
                                         "cache": str(tmp_path / "c")})
    assert failed and "must not start with '-'" in result["msg"]
    assert not (tmp_path / "c").exists() and not os.path.exists("/tmp/pwned")


# What a git archive leaves out: a release built from it would lack files the checkout has.
@pytest.fixture()
def repo_with_submodule_and_lfs(repo, tmp_path):
    theme = tmp_path / "theme"
    theme.mkdir()
    git(theme, "init", "-q", "-b", "main")
    (theme / "style.css").write_text("body {}\n")
    git(theme, "add", ".")
    git(theme, "commit", "-q", "-m", "theme")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(theme), "vendor/theme")
    (repo / "assets").mkdir()
    (repo / "assets" / ".gitattributes").write_text("# big files\n*.psd filter=lfs diff=lfs merge=lfs -text\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "theme and assets")
    git(repo, "tag", "v3.0.0")
    return repo


def test_a_commit_with_submodules_or_lfs_files_is_refused_naming_them(run_module, repo_with_submodule_and_lfs, tmp_path):
    failed, result = run_module(module, {
        "repo": str(repo_with_submodule_and_lfs), "ref": "v3.0.0", "cache": str(tmp_path / "c"),
        "ref_variable": "systemd_release_git_ref", "allow_missing_variable": "systemd_release_git_allow_missing"})
    assert failed
    assert result["msg"].startswith("systemd_release_git_ref 'v3.0.0' (commit ")
    assert "git submodules (vendor/theme), whose files a git archive does not hold" in result["msg"]
    assert "files stored in Git LFS (assets/*.psd), which a git archive holds as pointers" in result["msg"]
    assert result["msg"].endswith("set systemd_release_git_allow_missing to ['submodules', 'lfs']")
    assert not list((tmp_path / "c" / "artifacts").iterdir()), "nothing exported"


def test_what_is_allowed_to_be_left_out_is_a_warning(run_module, repo_with_submodule_and_lfs, tmp_path):
    args = {"repo": str(repo_with_submodule_and_lfs), "ref": "v3.0.0", "cache": str(tmp_path / "c")}
    failed, result = run_module(module, dict(args, allow_missing=["submodules"]))
    assert failed and "Git LFS" in result["msg"] and "submodules (" not in result["msg"]
    failed, result = run_module(module, dict(args, allow_missing=["submodules", "lfs"]))
    assert not failed and result["exported"]
    assert result["left_out"] == {"submodules": ["vendor/theme"], "lfs": ["assets/*.psd"]}
    assert any("leaves out its submodules: vendor/theme" in str(w) for w in result["warnings"])


def test_a_plain_commit_leaves_nothing_out(run_module, repo, tmp_path):
    (repo / ".gitattributes").write_text("*.sh text eol=lf\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "attributes without lfs")
    failed, result = run_module(module, {"repo": str(repo), "ref": "main", "cache": str(tmp_path / "c")})
    assert not failed and result["left_out"] == {"submodules": [], "lfs": []}


def test_left_out_reads_lfs_through_a_macro_and_ignores_other_filters():
    blobs = {".gitattributes": "[attr]big filter=lfs diff=lfs merge=lfs\n*.bin big\n*.sh text eol=lf\n# *.x filter=lfs\n",
             "data/.gitattributes": "*.csv filter=lfs\n*.txt !filter\n"}
    entries = [("blob", ".gitattributes"), ("blob", "app.py"), ("blob", "data/.gitattributes"), ("commit", "lib/x")]
    assert git_source.left_out(entries, blobs.get) == {"submodules": ["lib/x"], "lfs": ["*.bin", "data/*.csv"]}


@pytest.mark.parametrize("userinfo, secret", [
    ("ci:s3cr%40t-token", "s3cr@t-token"), ("ghp_tokenAsUserName0123", "ghp_tokenAsUserName0123"),
])
def test_the_credentials_of_a_repository_url_are_returned_nowhere(run_module, tmp_path, userinfo, secret):
    # Nothing listens on port 9: git fails, and its message quotes the URL it was given.
    repo = f"https://{userinfo}@127.0.0.1:9/acme/app.git"
    failed, result = run_module(module, {"repo": repo, "ref": "v1", "cache": str(tmp_path / "c")})
    assert failed and "cloning https://127.0.0.1:9/acme/app.git failed" in result["msg"], result["msg"]
    assert result["repo"] == "https://127.0.0.1:9/acme/app.git"
    assert secret not in json.dumps(result) and "s3cr%40t" not in json.dumps(result)


def test_the_repository_a_release_comes_from_is_returned_without_credentials(run_module, repo, tmp_path):
    failed, result = run_module(module, {"repo": str(repo), "ref": "v1.0.0", "cache": str(tmp_path / "c")})
    assert not failed and result["repo"] == str(repo)


def test_the_action_plugins_path_keeps_the_credentials_out_too(tmp_path):
    # The action plugin runs git_source.resolve in the controller's process: no module machinery masks anything there.
    repo = "https://deploy:hunter2-token@git.example.com/acme/app.git"

    def run(args):
        return 128, "", "fatal: unable to access '%s/': Could not resolve host (hunter2-token)" % repo

    warnings = []
    with pytest.raises(git_source.GitSourceError) as refused:
        git_source.resolve({"repo": repo, "ref": "v1", "cache": str(tmp_path / "c"), "ref_variable": "ref",
                            "allow_missing": [], "allow_missing_variable": "allow_missing"}, run, warnings.append)
    assert "hunter2" not in refused.value.msg and "https://git.example.com/acme/app.git" in refused.value.msg
    assert refused.value.extra["repo"] == "https://git.example.com/acme/app.git"
