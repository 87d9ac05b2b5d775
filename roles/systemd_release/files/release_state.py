#!/usr/bin/python3
"""Print the state of an app's releases as JSON, and which ones keep-N would remove.

Usage: release_state.py ROOT KEEP KEEP_FAILED
Runs on the target with the standard library only. Order is by built_at from release.json (never by
mtime); current and the release before it are never pruned; failed and unfinished releases do not
take the slots of complete ones.
"""

import json
import os
import sys

UNFINISHED = ".shipshape-unfinished"
FAILED = ".shipshape-failed"


def read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def link_target(path):
    try:
        return os.path.basename(os.readlink(path).rstrip("/"))
    except OSError:
        return None


def main():
    root, keep, keep_failed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    releases_dir = os.path.join(root, "releases")
    current = link_target(os.path.join(root, "current")) or ""
    previous = link_target(os.path.join(root, "previous")) or ""
    releases = []
    for name in sorted(os.listdir(releases_dir)) if os.path.isdir(releases_dir) else []:
        path = os.path.join(releases_dir, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        meta = read_json(os.path.join(path, "release.json")) or {}
        failed = read_json(os.path.join(path, FAILED))
        if os.path.exists(os.path.join(path, UNFINISHED)) or not meta:
            status = "unfinished"
        elif failed is not None:
            status = "failed"
        else:
            status = "complete"
        releases.append({
            "id": name,
            "path": path,
            "status": status,
            "version": meta.get("version"),
            "sha": meta.get("sha"),
            "built_at": meta.get("built_at", ""),
            "failed": failed,
            "current": name == current,
        })
    releases.sort(key=lambda r: (r["built_at"], r["id"]))
    protected = {current, previous}
    prune = []
    for status, limit in (("complete", keep), ("failed", keep_failed)):
        group = [r for r in releases if r["status"] == status]
        excess = len(group) - limit
        for r in group:  # oldest first
            if excess <= 0:
                break
            if r["id"] in protected:
                continue
            prune.append(r["id"])
            excess -= 1
    json.dump({
        "root": root,
        "current": current,
        "previous": previous,
        "releases": releases,
        "unfinished": [r["id"] for r in releases if r["status"] == "unfinished" and r["id"] not in protected],
        "prune": prune,
    }, sys.stdout)


if __name__ == "__main__":
    main()
