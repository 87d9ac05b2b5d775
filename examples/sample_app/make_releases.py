#!/usr/bin/env python3
"""Build the sample_app releases that shipshape's deploy/backup/restore tests act on.

    python3 make_releases.py OUTDIR [--no-wheelhouse]

Creates, idempotently and reproducibly (same inputs -> same shas):

  OUTDIR/sample_app.git          bare repo: v1.0.0 -> v2.0.0 on main, plus branches
                                 `broken` and `broken-migration` (each one commit on v2.0.0)
                                 and annotated tags for every version
  OUTDIR/archives/sample_app-<version>.tar.gz (+ .sha256, sha256sum format)
  OUTDIR/wheelhouse/             pip wheel -r app/requirements.txt (current interpreter)
  OUTDIR/wheelhouse.tar          the same wheels as one reproducible tar (what the sandbox deploys from)
  OUTDIR/releases.json           {name: {version, tag, branch, sha, archive, sha256, ...}}

Standard library only; needs the `git` command.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP_DIR = HERE / "app"
OVERLAYS_DIR = HERE / "overlays"

AUTHOR_NAME = "shipshape release bot"
AUTHOR_EMAIL = "releases@shipshape.invalid"

# name -> how it is built. Order matters: parents come first.
VERSIONS = [
    {
        "name": "v1.0.0", "version": "1.0.0", "overlays": [], "parent": None,
        "tag": "v1.0.0", "branch": None, "date": "1704067200 +0000",  # 2024-01-01
        "alembic_head": "0001_initial",
        "message": "sample_app 1.0.0: notes API, outbox, health/readiness probes",
    },
    {
        "name": "v2.0.0", "version": "2.0.0", "overlays": ["v2"], "parent": "v1.0.0",
        "tag": "v2.0.0", "branch": "main", "date": "1706745600 +0000",  # 2024-02-01
        "alembic_head": "0002_note_tags",
        "message": "sample_app 2.0.0: notes.tag (migration 0002_note_tags), new greeting",
    },
    {
        "name": "broken", "version": "2.0.1-broken", "overlays": ["v2", "broken"], "parent": "v2.0.0",
        "tag": "v2.0.1-broken", "branch": "broken", "date": "1709251200 +0000",  # 2024-03-01
        "alembic_head": "0002_note_tags",
        "message": "sample_app 2.0.1-broken: starts, but /healthz always answers 503",
    },
    {
        "name": "broken-migration", "version": "2.0.2-broken-migration",
        "overlays": ["v2", "broken_migration"], "parent": "v2.0.0",
        "tag": "v2.0.2-broken-migration", "branch": "broken-migration", "date": "1709337600 +0000",
        "alembic_head": "0003_broken",
        "message": "sample_app 2.0.2-broken-migration: migration 0003_broken fails (SQL error)",
    },
]

EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", "venv", ".venv", "wheelhouse"}
EXCLUDED_FILES = {"release.json", ".DS_Store"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


def git_env(date: str | None = None, index: str | None = None, git_dir: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_AUTHOR_NAME": AUTHOR_NAME, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME, "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C", "TZ": "UTC",
    })
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    if index:
        env["GIT_INDEX_FILE"] = index
    if git_dir:
        env["GIT_DIR"] = str(git_dir)
    return env


def git(args: list, *, env: dict, input: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", *args], env=env, input=input, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def collect(root: Path) -> dict:
    """relative posix path -> absolute Path of every file under root (sorted, filtered)."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for name in sorted(filenames):
            if name in EXCLUDED_FILES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(dirpath) / name
            files[path.relative_to(root).as_posix()] = path
    return files


def tree_files(spec: dict) -> dict:
    """The files of a version: app/ with each overlay copied over it."""
    files = collect(APP_DIR)
    for overlay in spec["overlays"]:
        odir = OVERLAYS_DIR / overlay
        if not odir.is_dir():
            raise SystemExit(f"missing overlay directory {odir}")
        files.update(collect(odir))
    init = files.get("sample_app/__init__.py")
    m = re.search(r'^__version__\s*=\s*"([^"]+)"', init.read_text(encoding="utf-8") if init else "", re.M)
    if not m or m.group(1) != spec["version"]:
        raise SystemExit(f"{spec['name']}: sample_app/__init__.py declares {m and m.group(1)!r}, "
                         f"expected {spec['version']!r}")
    return files


def materialize(name: str, dest: Path) -> Path:
    """Write the tree of version `name` into dest (used by the tests)."""
    spec = next(s for s in VERSIONS if s["name"] == name)
    dest = Path(dest)
    for rel, src in tree_files(spec).items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())
    return dest


def write_tree(repo: Path, files: dict) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = git_env(index=os.path.join(tmp, "index"), git_dir=repo)
        paths = list(files)
        out = git(["hash-object", "-w", "--no-filters", "--stdin-paths"], env=env,
                  input="".join(f"{files[p]}\n" for p in paths).encode())
        blobs = out.decode().split()
        if len(blobs) != len(paths):
            raise SystemExit("git hash-object returned an unexpected number of blobs")
        index_info = "".join(f"100644 {sha}\t{p}\n" for p, sha in zip(paths, blobs))
        git(["update-index", "--add", "--index-info"], env=env, input=index_info.encode())
        return git(["write-tree"], env=env).decode().strip()


def build_repo(outdir: Path) -> dict:
    repo = outdir / "sample_app.git"
    env = git_env(git_dir=repo)
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(["init", "--bare", "--quiet", str(repo)], env={k: v for k, v in env.items() if k != "GIT_DIR"})
    git(["symbolic-ref", "HEAD", "refs/heads/main"], env=env)
    result = {}
    for spec in VERSIONS:
        tree = write_tree(repo, tree_files(spec))
        cenv = git_env(date=spec["date"], git_dir=repo)
        parent_args = ["-p", result[spec["parent"]]["sha"]] if spec["parent"] else []
        commit = git(["commit-tree", tree, *parent_args, "-m", spec["message"]], env=cenv).decode().strip()
        tag_obj = (
            f"object {commit}\ntype commit\ntag {spec['tag']}\n"
            f"tagger {AUTHOR_NAME} <{AUTHOR_EMAIL}> {spec['date']}\n\n{spec['message']}\n"
        )
        tag = git(["mktag"], env=cenv, input=tag_obj.encode()).decode().strip()
        refs = [(f"refs/tags/{spec['tag']}", tag)]
        if spec["branch"]:
            refs.append((f"refs/heads/{spec['branch']}", commit))
        for ref, sha in refs:
            old = subprocess.run(["git", "rev-parse", "-q", "--verify", ref], env=env,
                                 capture_output=True, text=True).stdout.strip()
            if old != sha:
                git(["update-ref", ref, sha], env=env)
                log(f"{ref}: {old[:12] or '(new)'} -> {sha[:12]}")
        result[spec["name"]] = {"sha": commit, "tree": tree, "tag_object": tag}
    return result


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_archives(outdir: Path, commits: dict) -> dict:
    repo = outdir / "sample_app.git"
    adir = outdir / "archives"
    adir.mkdir(parents=True, exist_ok=True)
    out = {}
    for spec in VERSIONS:
        base = f"sample_app-{spec['version']}"
        tar = git(["archive", "--format=tar", f"--prefix={base}/", commits[spec["name"]]["sha"]],
                  env=git_env(git_dir=repo))
        data = gzip_bytes(tar)
        digest = hashlib.sha256(data).hexdigest()
        path = adir / f"{base}.tar.gz"
        write_if_changed(path, data)
        write_if_changed(adir / f"{base}.tar.gz.sha256", f"{digest}  {path.name}\n".encode())
        out[spec["name"]] = {"archive": str(path), "sha256": digest, "top_dir": base}
    return out


# ---- wheelhouse --------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def pinned_requirements(path: Path) -> list:
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*([A-Za-z0-9_.+!-]+)$", line)
        if not m:
            raise SystemExit(f"{path}: not an exact pin: {line!r}")
        pins.append((_norm(m.group(1)), m.group(3)))
    return pins


def wheel_ok_for_bookworm(filename: str) -> bool:
    """cp311 (or py3/abi3) wheel for manylinux x86_64 with glibc <= 2.36, or pure python."""
    parts = filename[:-4].split("-")
    if len(parts) < 5:
        return False
    pys, abis, plats = parts[-3].split("."), parts[-2].split("."), parts[-1].split(".")
    py_ok = any(p in ("py3", "py2.py3", "cp311") or p == "py311" for p in pys) or (
        "abi3" in abis and any(re.fullmatch(r"cp3(\d+)", p) and int(p[3:]) <= 11 for p in pys))
    abi_ok = any(a in ("none", "abi3", "cp311") for a in abis)
    plat_ok = False
    for p in plats:
        if p == "any" or p in ("manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"):
            plat_ok = True
        m = re.fullmatch(r"manylinux_2_(\d+)_x86_64", p)
        if m and int(m.group(1)) <= 36:
            plat_ok = True
    return py_ok and abi_ok and plat_ok


def build_wheelhouse(outdir: Path) -> dict:
    req = APP_DIR / "requirements.txt"
    wdir = outdir / "wheelhouse"
    wdir.mkdir(parents=True, exist_ok=True)
    pins = pinned_requirements(req)

    def have():
        wheels = {}
        for w in wdir.glob("*.whl"):
            parts = w.name.split("-")
            wheels.setdefault((_norm(parts[0]), parts[1]), []).append(w.name)
        return wheels

    missing = [p for p in pins if p not in have()]
    if missing:
        log(f"building wheelhouse ({len(missing)} missing: {', '.join(n for n, _ in missing)})")
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "-r", str(req), "-w", str(wdir)])
        if proc.returncode != 0:
            raise SystemExit("pip wheel failed (is pip available for this interpreter?)")
        missing = [p for p in pins if p not in have()]
        if missing:
            raise SystemExit(f"wheelhouse still lacks: {missing}")
    wheels = sorted(n for p in pins for n in have()[p])
    bad = [w for w in wheels if not wheel_ok_for_bookworm(w)]
    if bad:
        raise SystemExit(f"wheels not installable on Debian bookworm's python3.11 (x86_64): {bad}")
    archive = pack_wheelhouse(wdir, wheels, outdir / "wheelhouse.tar")
    return {"path": str(wdir), "wheels": wheels, "archive": str(archive)}


def pack_wheelhouse(wdir: Path, wheels: list, dest: Path) -> Path:
    """The wheels as one tar, byte for byte the same for the same wheels (names sorted, no times or owners), so a
    deploy copies one file, once per content, instead of one file per wheel per release."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(wheels):
            data = (wdir / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    write_if_changed(dest, buf.getvalue())
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--no-wheelhouse", action="store_true", help="skip building OUTDIR/wheelhouse")
    args = ap.parse_args(argv)
    outdir = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)

    # Test lanes that run side by side share one OUTDIR: the second run waits, then finds everything up to date.
    with open(outdir / ".build.lock", "w", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        commits = build_repo(outdir)
        archives = build_archives(outdir, commits)
        wheelhouse = None if args.no_wheelhouse else build_wheelhouse(outdir)

    summary = {}
    for spec in VERSIONS:
        name = spec["name"]
        summary[name] = {
            "version": spec["version"],
            "tag": spec["tag"],
            "branch": spec["branch"],
            "sha": commits[name]["sha"],
            "tree": commits[name]["tree"],
            "parent": spec["parent"],
            "overlays": spec["overlays"],
            "alembic_head": spec["alembic_head"],
            "repo": str(outdir / "sample_app.git"),
            "archive": archives[name]["archive"],
            "archive_top_dir": archives[name]["top_dir"],
            "sha256": archives[name]["sha256"],
            "wheelhouse": wheelhouse["path"] if wheelhouse else None,
        }
    text = json.dumps(summary, indent=2) + "\n"
    write_if_changed(outdir / "releases.json", text.encode())
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
