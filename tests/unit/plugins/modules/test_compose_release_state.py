"""The compose_release_state module: a compose app's deployed tag, its image tags and the failed ones in one read, and
keep-N over the image tags (never the deployed tag, a protected one, or an image a container uses), against a fake
docker CLI that records every argv."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.shipshape.ops.plugins.modules import compose_release_state

IMAGE = "registry.example.com/sample_app"


class FakeDocker:
    """`docker image ls` of the given tags ({tag: created}), `docker compose ps`, and `docker image rm` (refused for
    the tags in `in_use`); every argv is kept."""

    def __init__(self, tags, running=True, in_use=()):
        self.tags = dict(tags)
        self.running = running
        self.in_use = set(in_use)
        self.calls = []

    def __call__(self, argv, **_kwargs):  # set on the class: not bound, no module argument
        self.calls.append(list(argv))
        if argv[:3] == ["docker", "image", "ls"]:
            assert argv[-1] == IMAGE
            lines = [f"{tag}\tsha256:{i:064x}\t{created}" for i, (tag, created) in enumerate(self.tags.items())]
            return 0, "\n".join(lines + ["<none>\tsha256:dead\t2026-01-01 00:00:00 +0000 UTC"]) + "\n", ""
        if argv[:2] == ["docker", "compose"]:
            return 0, ("abc123\n" if self.running else ""), ""
        if argv[:3] == ["docker", "image", "rm"]:
            tag = argv[3].rsplit(":", 1)[1]
            if tag in self.in_use:
                return 1, "", f"Error response from daemon: conflict: unable to remove repository reference \"{argv[3]}\""
            del self.tags[tag]
            return 0, f"Untagged: {argv[3]}\n", ""
        raise AssertionError(f"unexpected command {argv}")

    def removed(self):
        return [c[3] for c in self.calls if c[:3] == ["docker", "image", "rm"]]


def created(day):
    return f"2026-11-{day:02d} 10:00:00 +0000 UTC"


def project(tmp_path, tag="v5", failed=()):
    root = tmp_path / "app"
    root.mkdir()
    if tag:
        (root / ".env").write_text(f"# written by shipshape\nAPP_TAG={tag}\n")
    if failed:
        (root / "failed").mkdir()
        for name in failed:
            (root / "failed" / f"{name}.json").write_text(json.dumps({"reason": f"{name} broke", "at": "2026-11-20T10:00:00Z"}))
    return root


@pytest.fixture
def docker(monkeypatch):
    def install(*args, **kwargs):
        fake = FakeDocker(*args, **kwargs)
        monkeypatch.setattr(AnsibleModule, "run_command", fake)
        return fake
    return install


def test_one_read_gives_the_deployed_tag_the_tags_and_the_failed_ones(tmp_path, run_module, docker):
    root = project(tmp_path, tag="v2", failed=["v3-broken"])
    fake = docker({"v1": created(1), "v2": created(2), "v3-broken": created(3)})
    failed, result = run_module(compose_release_state, {"root": str(root), "image": IMAGE, "service": "app"})
    assert not failed and result["changed"] is False
    assert (result["current"], result["running"]) == ("v2", True)
    statuses = [(r["id"], r["status"]) for r in result["releases"]]
    assert statuses == [("v1", "complete"), ("v2", "complete"), ("v3-broken", "failed")]
    assert result["failed_tags"] == {"v3-broken": {"reason": "v3-broken broke", "at": "2026-11-20T10:00:00Z"}}
    assert result["releases"][2]["failed"]["reason"] == "v3-broken broke"
    assert result["prune"] == []
    # argv only, the project directory named, nothing removed by a read
    assert ["docker", "compose", "--project-directory", str(root), "ps", "--quiet", "--status", "running", "app"] in fake.calls
    assert fake.removed() == []


def test_before_the_first_deploy_there_is_no_tag_and_nothing_runs(tmp_path, run_module, docker):
    root = project(tmp_path, tag="")
    docker({}, running=False)
    failed, result = run_module(compose_release_state, {"root": str(root), "image": IMAGE, "service": "app"})
    assert not failed
    assert (result["current"], result["running"], result["releases"], result["failed_tags"]) == ("", False, [], {})


def test_keep_n_removes_the_oldest_tags_never_the_deployed_or_protected_ones(tmp_path, run_module, docker):
    # v1 (oldest) is protected (the last good release); v2 is deployed although older than v3..v6.
    root = project(tmp_path, tag="v2", failed=["f1", "f2", "f3"])
    tags = {"v1": created(1), "v2": created(2), "v3": created(3), "v4": created(4), "v5": created(5), "v6": created(6),
            "f1": created(7), "f2": created(8), "f3": created(9)}
    fake = docker(tags)
    failed, result = run_module(compose_release_state, {"root": str(root), "image": IMAGE, "action": "prune",
                                                        "keep": 2, "keep_failed": 1, "protect": ["v1", ""]})
    assert not failed and result["changed"] is True
    # complete: newest two (v6, v5) stay, v2 (deployed) and v1 (protected) stay; failed: the newest one (f3) stays
    assert result["pruned"] == ["v3", "v4", "f1", "f2"]
    assert fake.removed() == [f"{IMAGE}:v3", f"{IMAGE}:v4", f"{IMAGE}:f1", f"{IMAGE}:f2"]
    assert sorted(fake.tags) == ["f3", "v1", "v2", "v5", "v6"]
    assert [r["id"] for r in result["releases"]] == ["f3", "v1", "v2", "v5", "v6"]
    assert result["prune"] == []
    # the failed markers stay: a pruned tag that comes back is still refused
    assert sorted(p.name for p in (root / "failed").iterdir()) == ["f1.json", "f2.json", "f3.json"]


def test_a_second_prune_changes_nothing(tmp_path, run_module, docker):
    root = project(tmp_path, tag="v3")
    fake = docker({"v1": created(1), "v2": created(2), "v3": created(3)})
    args = {"root": str(root), "image": IMAGE, "action": "prune", "keep": 2}
    assert run_module(compose_release_state, args)[1]["pruned"] == ["v1"]
    failed, result = run_module(compose_release_state, args)
    assert not failed and result["changed"] is False and result["pruned"] == []
    assert fake.removed() == [f"{IMAGE}:v1"]


def test_check_mode_names_what_would_go_and_removes_nothing(tmp_path, run_module, docker):
    root = project(tmp_path, tag="v3")
    fake = docker({"v1": created(1), "v2": created(2), "v3": created(3)})
    failed, result = run_module(compose_release_state, {"root": str(root), "image": IMAGE, "action": "prune", "keep": 1},
                                check_mode=True)
    assert not failed and result["changed"] is True
    assert result["pruned"] == ["v1", "v2"]
    assert fake.removed() == [] and sorted(fake.tags) == ["v1", "v2", "v3"]


def test_an_image_a_container_uses_is_kept_with_a_warning(tmp_path, run_module, docker):
    root = project(tmp_path, tag="v3")
    fake = docker({"v1": created(1), "v2": created(2), "v3": created(3)}, in_use=["v1"])
    failed, result = run_module(compose_release_state, {"root": str(root), "image": IMAGE, "action": "prune", "keep": 1})
    assert not failed
    assert result["pruned"] == ["v2"] and result["prune"] == ["v1"]
    assert "v1" in fake.tags
    assert any("kept registry.example.com/sample_app:v1" in str(w) and "conflict" in str(w) for w in result["warnings"])


@pytest.mark.parametrize("extra, named", [
    ({"root": "relative/app"}, "root 'relative/app' must be an absolute path"),
    ({"root": "/srv/app/../etc"}, "root '/srv/app/../etc'"),
    ({"image": "sample_app:v1"}, "image 'sample_app:v1' must be an image repository without tag"),
    ({"image": "--help"}, "image '--help'"),
    ({"image": "Sample_App"}, "image 'Sample_App'"),
    ({"service": "app;id"}, "service 'app;id' must be a compose service name"),
    ({"keep": 0}, "keep (0) must be at least 1"),
    ({"keep_failed": -1}, "keep_failed (-1) at least 0"),
    ({"protect": ["v1", "../etc"]}, "protect entry '../etc' must be an image tag"),
], ids=["relative-root", "dotdot-root", "image-with-tag", "image-option", "image-upper", "service", "keep", "keep-failed",
        "protect"])
def test_bad_input_is_refused_naming_it_and_runs_nothing(tmp_path, run_module, docker, extra, named):
    fake = docker({"v1": created(1)})
    args = {"root": str(project(tmp_path)), "image": IMAGE, "action": "prune", **extra}
    failed, result = run_module(compose_release_state, args)
    assert failed and named in result["msg"], result["msg"]
    assert fake.calls == []


def test_a_docker_that_fails_is_one_clear_error(tmp_path, run_module, monkeypatch):
    monkeypatch.setattr(AnsibleModule, "run_command",
                        lambda module, argv, **kw: (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"))
    failed, result = run_module(compose_release_state, {"root": str(project(tmp_path)), "image": IMAGE})
    assert failed
    assert result["msg"] == ("compose_release_state: docker image ls registry.example.com/sample_app failed: "
                             "Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
