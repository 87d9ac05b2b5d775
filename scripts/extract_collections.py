"""Extract named collections from the `ansible` wheel into a collections path.

Usage: extract_collections.py WHEEL DEST < list of namespace/name lines
Galaxy is not reachable from here, and collections are not on PyPI on their own; the pinned `ansible`
package carries them.
"""

import shutil
import sys
import zipfile
from pathlib import Path


def main() -> int:
    wheel, dest = Path(sys.argv[1]), Path(sys.argv[2])
    wanted = [line.strip() for line in sys.stdin if line.strip()]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        for coll in wanted:
            prefix = f"ansible_collections/{coll}/"
            members = [n for n in names if n.startswith(prefix)]
            if not members:
                print(f"collection {coll} is not in {wheel.name}", file=sys.stderr)
                return 1
            target = dest / coll
            if target.exists():
                shutil.rmtree(target)
            for member in members:
                rel = member[len("ansible_collections/"):]
                out = dest / rel
                if member.endswith("/"):
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            print(f"extracted {coll} ({len(members)} files)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
