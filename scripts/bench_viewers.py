#!/usr/bin/env python3
"""CPU per extra viewer of one desktop: kasm-server and the desktop's Xvnc with 1, 2, 4, 8 viewers.

Starts kasm-server (plain HTTP on a free loopback port, a temporary data directory), makes an API
key with `kasm-server api-key create`, launches the Desktop workspace (kasm/desktop:latest) with
the developer API's request_kasm, and starts an xterm that prints a line every 50 ms on the
desktop (exec_command_kasm), so the screen keeps changing a little, like someone typing (--scene
busy: a full-screen xterm printing 4 KiB of random hex every 20 ms). Then, for
each viewer count, connects that many raw RFB viewers through the session proxy's WebSocket
(<kasm_url path>websockify?token=...; the proxy offers security None and sends ServerInit), each
asking for an incremental FramebufferUpdate every 50 ms with the encodings noVNC asks for (Tight,
ZRLE, CopyRect, Raw) and draining what comes back, and measures over a fixed window the CPU time
(/proc/<pid>/stat utime + stime) of kasm-server and of the container's Xvnc. Prints CPU% per
viewer count and the marginal CPU per extra viewer (least-squares slope over the counts).

Only 127.0.0.1. Needs dockerd and the image. Every wait is bounded; the session and the server are
ended on exit.

Usage: scripts/bench_viewers.py [--server build/reference-server/kasm-server] [--window 10]
                                [--counts 0,1,2,4,8] [--rate 20] [--scene text|busy]
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from urllib.parse import urlsplit

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # Fields 14 and 15, counted from field 3.


def container_pids(container_id, name):
    """Host pids of the processes called `name` inside the container."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/{entry}/cgroup") as f:
                if container_id in f.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


class DeveloperApi:
    def __init__(self, base, key, secret):
        self.base, self.key, self.secret = base, key, secret

    def call(self, verb, **fields):
        body = json.dumps({"api_key": self.key, "api_key_secret": self.secret, **fields}).encode()
        req = urllib.request.Request(self.base + "/api/public/" + verb, data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read() or b"{}")


class WebSocket:
    """A minimal RFC 6455 client: binary frames out (masked), frames in (ping answered)."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: binary\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the WebSocket handshake")
            head += chunk
        head, self.pending = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("WebSocket refused: " + head.split(b"\r\n")[0].decode(errors="replace"))
        self.data = b""  # Payload bytes received and not yet consumed.
        self.received = 0
        self.lock = threading.Lock()

    def _recv_exact(self, n):
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.pending += chunk
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def send(self, payload, opcode=2):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self.lock:
            self.sock.sendall(head + mask + masked)

    def frame(self):
        """The next data frame's payload (control frames handled here)."""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            mask = self._recv_exact(4) if b1 & 0x80 else None
            payload = self._recv_exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            self.received += n
            opcode = b0 & 0x0F
            if opcode == 9:
                self.send(payload, opcode=10)
            elif opcode == 8:
                raise ConnectionError("closed by the server")
            elif opcode in (0, 1, 2):
                return payload

    def read(self, n):
        """Exactly n payload bytes across frames (for the RFB handshake)."""
        while len(self.data) < n:
            self.data += self.frame()
        out, self.data = self.data[:n], self.data[n:]
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Viewer:
    """An RFB 3.8 viewer through the proxy: handshake, then incremental update requests at `rate`/s."""

    def __init__(self, port, path, rate):
        self.ws = WebSocket(port, path)
        version = self.ws.read(12)
        if not version.startswith(b"RFB 003."):
            raise ConnectionError(f"not RFB: {version!r}")
        self.ws.send(b"RFB 003.008\n")
        count = self.ws.read(1)[0]
        types = self.ws.read(count)
        if 1 not in types:
            raise ConnectionError(f"the proxy offers security types {list(types)}, not None")
        self.ws.send(b"\x01")
        if struct.unpack("!I", self.ws.read(4))[0] != 0:
            raise ConnectionError("security None refused")
        self.ws.send(b"\x01")  # ClientInit, shared.
        self.width, self.height = struct.unpack("!HH", self.ws.read(4))
        self.ws.read(16)  # Pixel format.
        self.ws.read(struct.unpack("!I", self.ws.read(4))[0])  # Desktop name.
        encodings = [7, 16, 1, 0]  # Tight, ZRLE, CopyRect, Raw.
        self.ws.send(struct.pack("!BxH", 2, len(encodings)) + b"".join(struct.pack("!i", e) for e in encodings))
        self.ws.send(struct.pack("!BBHHHH", 3, 0, 0, 0, self.width, self.height))  # The first full frame.
        self.rate = rate
        self.stop = threading.Event()
        self.error = None
        self.threads = [threading.Thread(target=self._drain, daemon=True),
                        threading.Thread(target=self._request, daemon=True)]
        for t in self.threads:
            t.start()

    def _drain(self):
        try:
            while not self.stop.is_set():
                self.ws.frame()
        except (OSError, ConnectionError) as e:
            if not self.stop.is_set():
                self.error = e

    def _request(self):
        period = 1.0 / self.rate
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                self.ws.send(struct.pack("!BBHHHH", 3, 1, 0, 0, self.width, self.height))
                next_at += period
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        except OSError as e:
            if not self.stop.is_set():
                self.error = e

    def close(self):
        self.stop.set()
        self.ws.close()


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default=os.path.join(repo, "build/reference-server/kasm-server"))
    ap.add_argument("--window", type=float, default=10.0, help="seconds measured per viewer count")
    ap.add_argument("--counts", default="0,1,2,4,8")
    ap.add_argument("--scene", choices=["text", "busy"], default="text", help="what changes on the desktop")
    ap.add_argument("--rate", type=float, default=20.0, help="update requests per viewer per second")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if max(counts) > 32 or args.window > 120 or not 0 < args.rate <= 100:
        sys.exit("bounded: at most 32 viewers, a 120 s window, 100 requests/s")
    if shutil.which("docker") is None or subprocess.run(["docker", "ps"], capture_output=True).returncode != 0:
        sys.exit("dockerd does not answer (docker ps)")

    tmp = tempfile.mkdtemp(prefix="kasm-bench-viewers.")
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "w")
    env = dict(os.environ, KASM_ADMIN_PASSWORD="bench-" + os.urandom(8).hex())
    server = subprocess.Popen([args.server, "--http", "--port", str(port), "--data-dir", os.path.join(tmp, "data")],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    api = kasm_id = None
    viewers = []
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit("kasm-server exited; see " + log.name)
                time.sleep(0.2)
        else:
            sys.exit("kasm-server was not ready within 30 s")
        key = json.loads(subprocess.run([args.server, "api-key", "create", "--name", "bench-viewers", "--data-dir",
                                         os.path.join(tmp, "data")], check=True, capture_output=True,
                                        text=True).stdout)
        api = DeveloperApi(base, key["api_key"], key["api_key_secret"])
        desktop = next(i for i in api.call("get_images")["images"] if i["friendly_name"] == "Desktop")
        started = api.call("request_kasm", image_id=desktop["image_id"])
        kasm_id, user_id = started["kasm_id"], started["user_id"]
        deadline = time.monotonic() + 180
        while (status := api.call("get_kasm_status", kasm_id=kasm_id, user_id=user_id)).get(
                "operational_status") != "running":
            if time.monotonic() > deadline:
                sys.exit(f"the desktop did not start: {status}")
            time.sleep(1)
        url = urlsplit(status["kasm_url"])
        ws_path = url.path + "websockify?" + url.query
        container = status.get("container_id") or status.get("kasm", {}).get("container_id")
        if not container:
            sys.exit(f"get_kasm_status names no container: {status}")
        container = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", container], capture_output=True, text=True,
                                   check=True).stdout.strip()
        xvnc = container_pids(container, "Xvnc")
        if len(xvnc) != 1:
            sys.exit(f"expected one Xvnc in container {container[:12]}, found {xvnc}")
        xvnc = xvnc[0]
        # Something that changes on the screen: an xterm printing a line every 50 ms ("text"), or a
        # full-screen one printing 4 KiB of random hex every 20 ms ("busy": most of the screen changes).
        loops = {
            "text": "-geometry 100x30+40+40 -e sh -c "
                    "'i=0; while :; do i=$((i+1)); echo \"line $i $(date +%T.%N)\"; sleep 0.05; done'",
            "busy": "-geometry 200x60+0+0 -e sh -c 'while :; do od -An -tx1 -N4096 /dev/urandom; sleep 0.02; done'",
        }
        api.call("exec_command_kasm", kasm_id=kasm_id, user_id=user_id, exec_config={
            "cmd": f"DISPLAY=:1 nohup xterm {loops[args.scene]} >/dev/null 2>&1 &"})
        time.sleep(3)

        print(f"kasm-server pid {server.pid}, Xvnc pid {xvnc} (container {container[:12]}), "
              f"scene {args.scene}, {args.window:.0f} s per count, {args.rate:.0f} update requests/s per viewer")
        print(f"{'viewers':>7} {'kasm-server CPU%':>17} {'Xvnc CPU%':>10} {'MB/s to viewers':>16}")
        rows = []
        for n in counts:
            while len(viewers) < n:
                viewers.append(Viewer(port, ws_path, args.rate))
            while len(viewers) > n:
                viewers.pop().close()
            time.sleep(2)  # The first full frames go out before the window.
            s0, x0, t0 = cpu_seconds(server.pid), cpu_seconds(xvnc), time.monotonic()
            b0 = sum(v.ws.received for v in viewers)
            time.sleep(args.window)
            s1, x1, t1 = cpu_seconds(server.pid), cpu_seconds(xvnc), time.monotonic()
            b1 = sum(v.ws.received for v in viewers)
            errors = [v.error for v in viewers if v.error]
            if errors:
                sys.exit(f"a viewer failed: {errors[0]}")
            srv, xv = 100 * (s1 - s0) / (t1 - t0), 100 * (x1 - x0) / (t1 - t0)
            rows.append((n, srv, xv))
            print(f"{n:>7} {srv:>17.1f} {xv:>10.1f} {(b1 - b0) / (t1 - t0) / 1e6:>16.2f}", flush=True)

        def slope(i):
            mx = sum(r[0] for r in rows) / len(rows)
            my = sum(r[i] for r in rows) / len(rows)
            den = sum((r[0] - mx) ** 2 for r in rows)
            return sum((r[0] - mx) * (r[i] - my) for r in rows) / den if den else 0.0

        print(f"marginal CPU per extra viewer (least-squares slope): kasm-server {slope(1):.2f}% of a core, "
              f"Xvnc {slope(2):.2f}%")
    finally:
        for v in viewers:
            v.close()
        if api and kasm_id:
            try:
                api.call("destroy_kasm", kasm_id=kasm_id)
            except OSError as e:
                print(f"destroy_kasm failed: {e}", file=sys.stderr)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
