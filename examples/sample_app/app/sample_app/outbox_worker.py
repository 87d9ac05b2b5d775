"""Outbox delivery: `python -m sample_app.outbox_worker --once` delivers the pending outbox rows once (here delivery
marks a row sent, attempts + 1); without --once it repeats every --interval seconds.

While the Redis key OUTBOX_PAUSE_KEY exists, delivery is paused: nothing is delivered, and the pass says who paused it
(the key's value). This is the Loyalty runbook's "Outbox pause" in the admin panel, which an operator sets with
`shipshape recover outbox_pause` and clears with `outbox_resume`. A pause flag that cannot be read stops the pass:
delivering while an operator may have paused it is the one thing a worker must not do.

Each pass prints one JSON line: {"paused": bool, "paused_by": str | null, "delivered": int}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sample_app import db
from sample_app.config import Config


def deliver_once(cfg: Config, limit: int = 100) -> dict:
    rconn = db.redis_client(cfg.redis_url)
    try:
        paused_by = rconn.get(cfg.outbox_pause_key)
    finally:
        rconn.close()
    if paused_by is not None:
        return {"paused": True, "paused_by": paused_by, "delivered": 0}
    with db.connect(cfg.database_url) as conn:
        rows = conn.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, updated_at = now() "
            "WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING id",
            (limit,),
        ).fetchall()
    return {"paused": False, "paused_by": None, "delivered": len(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sample_app.outbox_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between passes (without --once)")
    parser.add_argument("--limit", type=int, default=100, help="rows delivered per pass")
    args = parser.parse_args(argv)
    cfg = Config.from_env()
    while True:
        try:
            print(json.dumps(deliver_once(cfg, args.limit)), flush=True)
        except Exception as exc:  # the pause flag or the database cannot be read: deliver nothing
            print(json.dumps({"error": cfg.redact(f"{type(exc).__name__}: {exc}")}), file=sys.stderr, flush=True)
            if args.once:
                return 1
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
