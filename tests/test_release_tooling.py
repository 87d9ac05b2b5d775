"""The ecosystem's release gates: the execution environment definition is valid for ansible-builder,
and the changelog fragments are valid for antsibull-changelog."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_execution_environment_definition_builds_a_context(tmp_path):
    # ansible-builder copies additional_build_files: give it a collection tarball to copy.
    work = tmp_path / "src"
    shutil.copy(ROOT / "execution-environment.yml", tmp_path / "execution-environment.yml")
    build = subprocess.run(["ansible-galaxy", "collection", "build", "--force", "--output-path", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    out = subprocess.run(["ansible-builder", "create", "-f", str(tmp_path / "execution-environment.yml"), "-c", str(work)],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    containerfile = next(work.glob("Containerfile*"), None) or next(work.glob("Dockerfile*"))
    text = containerfile.read_text()
    assert "ansible-core==2.19.14" in (work / "_build" / "requirements.txt").read_text() or "ansible-core==2.19.14" in text
    assert "shipshape-ops-" in text
    assert list((work / "_build" / "collections").glob("shipshape-ops-*.tar.gz"))


def test_changelog_fragments_are_valid():
    out = subprocess.run(["antsibull-changelog", "lint"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_changelog_is_built_from_the_fragments(tmp_path):
    # The committed CHANGELOG.md must be what antsibull-changelog makes of changelogs/ now.
    copy = tmp_path / "c"
    shutil.copytree(ROOT / "changelogs", copy / "changelogs")
    shutil.copy(ROOT / "galaxy.yml", copy / "galaxy.yml")
    out = subprocess.run(["antsibull-changelog", "generate"], capture_output=True, text=True, check=False, cwd=copy)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (copy / "CHANGELOG.md").read_text() == (ROOT / "CHANGELOG.md").read_text(), "run: antsibull-changelog generate"
