#!/usr/bin/env python3
"""Launch one session on the local Docker engine and print its URL.

    PYTHONPATH=build/bindings/python python3 examples/python/launch_session.py --image kasm-test/busybox:1

The image must serve HTTP on --port (kasm-test/busybox:1 serves on 8080). The session is destroyed
on exit unless --keep is given. ctest runs it (examples.python.launch_session, labels docker;python).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import urllib.request

import kasm

# ctest's SKIP_RETURN_CODE; CI sets KASM_REQUIRE_SERVICES=1 so a missing engine fails instead.
SKIP = 1 if os.environ.get("KASM_REQUIRE_SERVICES") == "1" else 77


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", default=os.environ.get("KASM_TEST_IMAGE", ""), help="image to run (default $KASM_TEST_IMAGE)")
    p.add_argument("--port", type=int, default=8080, help="port the image serves HTTP on")
    p.add_argument("--store", default="memory", help="store URL: memory, sqlite:///path, postgresql://...")
    p.add_argument("--keep", action="store_true", help="leave the session running")
    args = p.parse_args()
    if not args.image:
        print("launch_session: no image (pass --image or set KASM_TEST_IMAGE)", file=sys.stderr)
        return SKIP

    store = kasm.open_store(args.store)
    with kasm.Manager(store) as manager:
        manager.upsert_zone({"id": "local", "name": "Local"})
        manager.upsert_workspace(
            {"id": "example", "friendly_name": "Example", "image": args.image, "port": args.port, "protocol": "http",
             "resources": {"millicores": 500, "memory_bytes": 128 << 20, "gpus": 0}}
        )
        store.upsert("user", {"id": "demo", "username": "demo"})
        try:
            manager.add_docker_agent("local", agent_id="example-" + secrets.token_hex(4))
        except kasm.Unavailable as e:
            print(f"launch_session: {e}", file=sys.stderr)
            return SKIP
        session = manager.request_session("demo", "example")
        print(f"session {session.id} {session.state}")
        print(f"url {session.url}")
        with urllib.request.urlopen(session.url, timeout=10) as resp:
            print(f"answered HTTP {resp.status}")
        if not args.keep:
            print(f"session {manager.destroy_session(session.id).state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
