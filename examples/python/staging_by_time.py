#!/usr/bin/env python3
"""Keep a staging pool sized by time of day.

Office hours want sessions ready before people ask; nights want none. This script looks at the
clock, picks the pool size from a schedule and writes it to the pool's staging_config row; the
manager's tick() then launches or expires staged sessions to match. Run it from cron every few
minutes, or with --every to loop:

    PYTHONPATH=build/bindings/python python3 examples/python/staging_by_time.py \
        --store sqlite:///var/lib/kasm/kasm.db --workspace desktop --zone local

--now injects the time (ISO 8601), which is how ctest checks it (examples.python.staging_by_time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import kasm
from kasm.staging import PoolWindow, desired_for, set_pool_size

SCHEDULE = [
    PoolWindow(dt.time(8, 0), dt.time(10, 0), desired=10),  # Everyone logs in.
    PoolWindow(dt.time(10, 0), dt.time(18, 0), desired=4),  # Working day.
    PoolWindow(dt.time(18, 0), dt.time(22, 0), desired=1),  # Evening stragglers.
]
NIGHT = 0


def apply_once(store: kasm.Store, pool: str, workspace: str, zone: str, now: dt.datetime) -> int:
    desired = desired_for(SCHEDULE, now, default=NIGHT)
    set_pool_size(store, pool, workspace_id=workspace, zone_id=zone, desired=desired)
    print(f"{now.isoformat(timespec='minutes')} pool {pool}: desired {desired}", flush=True)
    return desired


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default="memory")
    p.add_argument("--pool", default="desktop-pool")
    p.add_argument("--workspace", default="desktop")
    p.add_argument("--zone", default="local")
    p.add_argument("--now", action="append", help="ISO time to use instead of the clock (repeatable)")
    p.add_argument("--every", type=float, default=0.0, help="repeat every N seconds (0 = once)")
    args = p.parse_args()

    store = kasm.open_store(args.store)
    if args.store == "memory":
        # A throwaway store for trying it out: the zone and workspace the pool refers to.
        store.upsert("zone", {"id": args.zone, "name": args.zone})
        store.upsert("workspace", {"id": args.workspace, "friendly_name": args.workspace, "image": "kasm/desktop:1",
                                   "port": 5901, "protocol": "vnc",
                                   "resources": {"millicores": 2000, "memory_bytes": 2 << 30, "gpus": 0}})
    if args.now:
        for text in args.now:
            apply_once(store, args.pool, args.workspace, args.zone, dt.datetime.fromisoformat(text))
        return 0
    while True:
        apply_once(store, args.pool, args.workspace, args.zone, dt.datetime.now())
        if args.every <= 0:
            return 0
        time.sleep(args.every)  # Ctrl-C stops the loop at once.


if __name__ == "__main__":
    sys.exit(main())
