#!/usr/bin/env python3
"""Runs examples/portal.cpp for a few seconds (no Docker) and drives its developer API: the key it
prints works, get_images lists its one workspace, a wrong secret is refused, and it exits cleanly
when its --run-for time is up. Standard library only; ctest: examples.portal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main() -> int:
    proc = subprocess.Popen([sys.argv[1], "--no-docker", "--run-for", "4"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = key = secret = None
    for line in proc.stdout:
        print(line, end="")
        if m := re.match(r"portal: listening (\S+)", line):
            url = m.group(1)
        if m := re.match(r"portal: api_key=(\S+) api_key_secret=(\S+)", line):
            key, secret = m.group(1), m.group(2)
            break
    assert url and key and secret, "the portal did not print its URL and key"

    status, images = post(f"{url}/api/public/get_images", {"api_key": key, "api_key_secret": secret})
    print("get_images:", status, images)
    assert status == 200, images
    assert any(i.get("image_id") == "web" or i.get("id") == "web" for i in images.get("images", [])), images

    status, refused = post(f"{url}/api/public/get_images", {"api_key": key, "api_key_secret": "wrong"})
    print("wrong secret:", status, refused)
    assert status in (401, 403) and refused.get("error_message"), refused

    rest = proc.stdout.read()
    print(rest, end="")
    assert proc.wait(timeout=30) == 0
    assert "portal: stopped" in rest
    print("portal_test: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
