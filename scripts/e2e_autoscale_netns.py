#!/usr/bin/env python3
"""End-to-end check of autoscaling (issue 17) with machines that are network namespaces.

kasm-server runs with an autoscale configuration whose "command" provider is
scripts/vm-providers/netns-vms.py: every machine it makes is a network namespace this test owns
(kasm-e2e-<run>-<n>, a veth pair, 10.231.B.4n+1 on the host side and .4n+2 inside), and the
machine's user data, the configuration's startup script rendered by the server, starts a real
kasm-agent inside it with `ip netns exec`. The server listens only on an address of a bridge this
test adds (10.231.B.1, no ports): a namespace has a route to that address through its veth and no
other route, so the agent reaches the server only through its own link, as on a real machine.

The Docker engine is the host's (over its unix socket). Session ports are published on the
machine's host-side veth address (--publish-host "$KASM_VM_PUBLISH_HOST", agent_publish_networks
10.231.B.0/24): an address both the server's proxy (on the host) and the agent's readiness probe
(inside the namespace) reach. 127.0.0.1 would not do: the engine publishes on the host's loopback,
which a namespace does not see, so the agent's probe would never find the session ready. Nothing
here connects to a container's bridge address; the test connects only to the bridge address and
veth addresses it made itself.

Steps (each wait bounded):
  1. standby 1.5 cores, machines of 1 core (agent_overrides): the server makes two machines; the
     provider boots nothing in the first (NETNS_VMS_SILENT=1), the second's agent boots in its
     namespace, checks in with its single-use token, writes its lasting token to --token-file, and
     a second check-in with the registration token is refused; the decision log says
     "+2 agents, standby cores 0 < 1.5".
  2. a session of the busybox test image (KASM_TEST_IMAGE) lands on that agent and runs; it
     answers on the machine's address from inside the namespace.
  3. standby 0 and downscale_backoff 0 (the smallest values validate() allows) through PATCH: for
     two autoscaler passes the machine with the session stays (row, agent, process, namespace).
  4. the session destroyed, the idle machine is drained and destroyed: agent process gone,
     namespace and veth deleted, no container left, "idle 0 s >= backoff 0 s" in the log.
  5. the silent machine is destroyed after provision_timeout (1 minute, the minimum allowed):
     "did not check in within 1 min (provision timeout)". It runs alongside steps 1-4, so the
     whole test takes about 70 s (the provision timeout sets the pace).

    scripts/e2e_autoscale_netns.py [--server PATH] [--agent PATH] [--keep]

Needs root, iproute2 (`ip netns`), a Docker engine (DOCKER_HOST or /var/run/docker.sock) with
KASM_TEST_IMAGE (scripts/lib-services.sh builds it), and built kasm-server and kasm-agent
(KASM_SERVER_BIN, KASM_AGENT_BIN or the flags). Exits 77 (skipped) when one is missing, or 1 when
KASM_REQUIRE_SERVICES=1. Everything it made (namespaces, links, processes, containers) is removed
in the end, also on Ctrl-C or SIGTERM; the temporary directory is kept when a check failed.
"""
import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVIDER = os.path.join(ROOT, "scripts", "vm-providers", "netns-vms.py")
ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--server", default=os.environ.get("KASM_SERVER_BIN") or
                os.path.join(ROOT, "build", "reference-server", "kasm-server"))
ap.add_argument("--agent", default=os.environ.get("KASM_AGENT_BIN") or
                os.path.join(ROOT, "build", "reference-server", "kasm-agent"))
ap.add_argument("--keep", action="store_true", help="keep the temporary directory (server log, machines' logs)")
args = ap.parse_args()
T0 = time.monotonic()


def say(text):
    print("[%5.1f s] %s" % (time.monotonic() - T0, text), flush=True)


def skip(why):
    required = os.environ.get("KASM_REQUIRE_SERVICES") == "1"
    print("e2e_autoscale_netns: %s: %s" % ("failed (KASM_REQUIRE_SERVICES=1)" if required else "skipped", why),
          flush=True)
    raise SystemExit(1 if required else 77)


def answers(*argv):
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---- what it needs --------------------------------------------------------------------------
if os.geteuid() != 0:
    skip("needs root (it makes network namespaces)")
if not shutil.which("ip") or not answers("ip", "netns", "list"):
    skip("needs iproute2 with `ip netns` (apt-get install iproute2)")
for path, what in ((args.server, "kasm-server"), (args.agent, "kasm-agent")):
    if not os.access(path, os.X_OK):
        skip("%s not found at %s (build it, or pass --server/--agent)" % (what, path))
if not shutil.which("docker"):
    skip("needs the docker CLI")
IMAGE = os.environ.get("KASM_TEST_IMAGE", "")
if not IMAGE:
    skip("KASM_TEST_IMAGE is not set (scripts/lib-services.sh start_docker_services builds it)")
if not answers("docker", "image", "inspect", IMAGE):
    skip("the Docker engine does not answer or has no image %s" % IMAGE)
if "{" in args.agent or "}" in args.agent:
    skip("the kasm-agent path holds a brace, which the startup script template cannot carry")


class Failed(Exception):
    pass


failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def require(ok, what):
    if not check(ok, what):
        raise Failed(what)


def wait_for(what, seconds, probe, interval=0.5):
    """probe() until it returns something true; that value, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            say("gave up waiting %d s for %s" % (seconds, what))
            return None
        time.sleep(interval)


def run(*argv, **kw):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, **kw)


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # Unwinds through `finally`, as Ctrl-C does.


signal.signal(signal.SIGTERM, on_sigterm)

# ---- names of this run ----------------------------------------------------------------------
RUN = os.urandom(2).hex()
NS_PREFIX = "kasm-e2e-" + RUN          # namespaces kasm-e2e-<run>-<n>
LINK_PREFIX = "kae" + RUN              # links kae<run>h<n> (host), kae<run>n<n> (inside), kae<run>s (bridge)
BRIDGE = LINK_PREFIX + "s"
taken = run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route", "show", "table", "all").stdout
free_b = [b for b in range(2, 250) if "10.231.%d." % b not in taken]
if not free_b:
    skip("no free /24 left in 10.231.0.0/16")
SUBNET = "10.231.%d" % random.choice(free_b)
SERVER_ADDR = SUBNET + ".1"
TMP = tempfile.mkdtemp(prefix="kasm-e2e-netns-")
VMS = os.path.join(TMP, "vms")
DATA = os.path.join(TMP, "data")
LOG = os.path.join(TMP, "server.log")

server = None
exit_code = None  # Set when interrupted.
agent_ids, session_ids = set(), set()


def provider_records():
    out = {}
    if os.path.isdir(VMS):
        for name in os.listdir(VMS):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(VMS, name)) as f:
                        r = json.load(f)
                    out[r["id"]] = r
                except (OSError, ValueError):
                    pass
    return out


def alive(record):
    """The machine's main process (the agent) still runs: same pid, same start time, not a zombie."""
    pid = record.get("pid")
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == record.get("pid_start")


def netns_exists(name):
    return os.path.exists("/run/netns/" + name)


def link_exists(name):
    return run("ip", "link", "show", name).returncode == 0


def our_containers():
    """Session containers of this run: kasm.managed=true and an agent or session of this run."""
    ids = run("docker", "ps", "-aq", "--filter", "label=kasm.managed=true").stdout.split()
    if not ids:
        return []
    found = []
    for c in json.loads(run("docker", "inspect", *ids).stdout or "[]"):
        labels = c.get("Config", {}).get("Labels") or {}
        if labels.get("kasm.agent_id") in agent_ids or labels.get("kasm.session_id") in session_ids:
            found.append(c["Id"])
    return found


try:
    # ---- the host side: a bridge with no ports carries the server's address -----------------
    for argv in (["link", "add", BRIDGE, "type", "bridge"], ["addr", "add", SERVER_ADDR + "/32", "dev", BRIDGE],
                 ["link", "set", BRIDGE, "up"]):
        r = run("ip", *argv)
        require(r.returncode == 0, "ip %s: %s" % (" ".join(argv), r.stderr.strip() or "ok"))
    with socket.socket() as s:
        s.bind((SERVER_ADDR, 0))
        PORT = s.getsockname()[1]
    BASE = "http://%s:%d" % (SERVER_ADDR, PORT)
    say("run %s: server on %s (bridge %s), machines in %s.0/24, state in %s" % (RUN, BASE, BRIDGE, SUBNET, TMP))

    admin_pw = "netns-" + os.urandom(6).hex()
    senv = dict(os.environ, KASM_ADMIN_PASSWORD=admin_pw)
    # No local agent: only the autoscaled agents can take sessions. Agents dial --agent-url.
    server = subprocess.Popen([args.server, "--http", "--listen", SERVER_ADDR, "--port", str(PORT), "--data-dir", DATA,
                               "--no-local-agent", "--gateway", "off", "--agent-url", BASE],
                              env=senv, stdout=open(LOG, "a"), stderr=subprocess.STDOUT)

    def healthy():
        if server.poll() is not None:
            raise Failed("kasm-server exited with %s; see %s" % (server.returncode, LOG))
        try:
            with urllib.request.urlopen(BASE + "/healthz", timeout=2):
                return True
        except Exception:
            return False

    require(wait_for("the server", 30, healthy, 0.1), "kasm-server answers on " + BASE)
    login = urllib.request.urlopen(urllib.request.Request(
        BASE + "/api/v1/auth/login", data=json.dumps({"username": "admin@kasm.local", "password": admin_pw}).encode(),
        headers={"Content-Type": "application/json"}), timeout=20)
    AUTH = {"Cookie": login.headers["Set-Cookie"].split(";")[0], "X-CSRF-Token": json.load(login)["csrf_token"]}
    key = json.loads(run(args.server, "api-key", "create", "--name", "netns", "--data-dir", DATA, env=senv).stdout)

    def rest(method, path, body=None):
        req = urllib.request.Request(BASE + "/api/v1" + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers=dict({"Content-Type": "application/json"}, **AUTH))
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raise Failed("%s %s: HTTP %d: %s" % (method, path, e.code, e.read().decode(errors="replace")))

    def call(verb, **body):
        body.update(api_key=key["api_key"], api_key_secret=key["api_key_secret"])
        req = urllib.request.Request(BASE + "/api/public/" + verb, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise Failed("%s: HTTP %d: %s" % (verb, e.code, e.read().decode(errors="replace")))

    zone = rest("GET", "/zones")["items"][0]
    everyone = [g["id"] for g in rest("GET", "/groups")["items"]]
    workspace = rest("POST", "/workspaces", {"friendly_name": "netns-web-" + RUN, "image": IMAGE, "port": 8080,
                                             "protocol": "http", "group_ids": everyone,
                                             "resources": {"millicores": 100, "memory_bytes": 64 << 20}})["id"]

    # The startup script, rendered by the server per machine; netns-vms.py runs it inside the
    # machine's namespace with KASM_VM_DIR and KASM_VM_PUBLISH_HOST set.
    startup = ("#!/bin/sh\n"
               "# kasm agent {server_id} of configuration {config_name} (zone {zone_name})\n"
               "KASM_AGENT_TOKEN='{registration_token}'\n"
               "export KASM_AGENT_TOKEN\n"
               "exec %s --server {upstream_address} --agent-id {server_id} --token-file \"$KASM_VM_DIR/agent.token\" "
               "--publish-host \"$KASM_VM_PUBLISH_HOST\" --checkin-seconds 2\n" % shlex.quote(args.agent))
    provider_env = {"NETNS_VMS_DIR": VMS, "NETNS_VMS_NAME": NS_PREFIX, "NETNS_VMS_LINK": LINK_PREFIX,
                    "NETNS_VMS_SUBNET": SUBNET, "NETNS_VMS_SERVER": SERVER_ADDR, "NETNS_VMS_SILENT": "1"}
    if os.environ.get("DOCKER_HOST"):
        provider_env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    provider_argv = [sys.executable, PROVIDER]
    config = rest("POST", "/autoscale", {
        "name": "netns-" + RUN, "zone_id": zone["id"], "provider": "command",
        "provider_config_json": json.dumps({"create": provider_argv, "destroy": provider_argv, "list": provider_argv,
                                            "status": provider_argv, "timeout_seconds": 60,
                                            "environment": provider_env}),
        "standby": {"millicores": 1500, "memory_bytes": 0, "gpus": 0},
        "agent_overrides": {"millicores": 1000},  # A machine brings 1 core: 1.5 cores need two.
        "min_instances": 0, "max_instances": 3,
        "downscale_backoff": 10 * 60 * 1000,  # Nothing goes before step 3 lowers it.
        "provision_timeout": 60 * 1000,       # The minimum validate() allows.
        "agent_publish_networks": [SUBNET + ".0/24"],
        "startup_script": startup,
    })
    CID = config["id"]
    say("autoscale configuration %s: standby 1.5 cores, 1 core per machine, first machine silent" % CID)

    def machines():
        items = rest("GET", "/autoscale/%s/machines" % CID)["items"]
        for m in items:
            if m.get("agent_id"):
                agent_ids.add(m["agent_id"])
        return items

    def decisions():
        return rest("GET", "/autoscale/%s/decisions?limit=100" % CID)["items"]

    def actions_with(text):
        return [a for d in decisions() for a in d.get("actions", []) if text in a]

    # ---- 1. machines made, agents boot in their namespaces, single-use tokens -----------------
    t1 = time.monotonic()
    two = wait_for("two machines with a ready one", 45, lambda: (lambda ms: ms if len(ms) == 2 and any(
        m["phase"] == "ready" for m in ms) else None)(machines()))
    require(two, "the server made two machines and one of them became ready")
    ready = next(m for m in two if m["phase"] == "ready")
    silent = next(m for m in two if m["id"] != ready["id"])
    say("machines: %s" % ", ".join("%s %s (%s) %s: %s" % (m["id"][:8], m["instance_id"], m["private_address"],
                                                            m["phase"], m["reason"]) for m in two))
    records = provider_records()
    rec_b, rec_a = records.get(ready["instance_id"]), records.get(silent["instance_id"])
    require(rec_b is not None and rec_a is not None, "the provider holds both machines as namespaces")
    check(rec_a["silent"] and "pid" not in rec_a and rec_a["serial"] == 1,
          "the first machine made (%s) booted nothing" % rec_a["netns"])
    check(netns_exists(rec_a["netns"]) and netns_exists(rec_b["netns"]), "both namespaces exist")
    check(ready["private_address"] == rec_b["private_address"],
          "the ready machine's private address is its namespace's: " + ready["private_address"])
    check(alive(rec_b), "the ready machine's agent process runs (pid %s)" % rec_b.get("pid"))
    try:
        in_ns = os.stat("/proc/%d/ns/net" % rec_b["pid"]).st_ino == os.stat("/run/netns/" + rec_b["netns"]).st_ino
        exe = os.readlink("/proc/%d/exe" % rec_b["pid"])
    except OSError as e:
        in_ns, exe = False, str(e)
    check(in_ns, "the agent runs inside namespace %s" % rec_b["netns"])
    check(os.path.realpath(exe) == os.path.realpath(args.agent), "the machine's process is kasm-agent (%s)" % exe)
    conns = run("ip", "netns", "exec", rec_b["netns"], "ss", "-Htn", "state", "established").stdout
    check("%s:%d" % (SERVER_ADDR, PORT) in conns and rec_b["private_address"] in conns,
          "the agent's connections go from %s to %s:%d through its veth" % (rec_b["private_address"], SERVER_ADDR, PORT))
    agent_b = ready["agent_id"]
    agent_row = rest("GET", "/agents/%s" % agent_b)
    agent_row = agent_row.get("agent", agent_row)
    check(agent_row.get("status") == "ok" and agent_row.get("kind") == "autoscaled",
          "its agent %s is checked in: status %s, kind %s" % (agent_b[:8], agent_row.get("status"), agent_row.get("kind")))
    vm_dir = os.path.join(VMS, rec_b["id"])
    user_data = open(os.path.join(vm_dir, "user-data")).read()
    m = re.search(r"KASM_AGENT_TOKEN='([^']+)'", user_data)
    registration = m.group(1) if m else ""
    check(registration and agent_b in user_data and BASE in user_data,
          "the server rendered the startup script with the agent id, the token and %s" % BASE)
    token_file = os.path.join(vm_dir, "agent.token")
    lasting = wait_for("the token file", 10, lambda: os.path.exists(token_file) and open(token_file).read().strip())
    check(bool(lasting) and lasting != registration and stat.S_IMODE(os.stat(token_file).st_mode) == 0o600,
          "the agent exchanged its registration token and wrote the lasting one to --token-file (mode 0600)")
    reuse = urllib.request.Request(BASE + "/api/agent/v1/checkin", headers={"Content-Type": "application/json"},
                                   data=json.dumps({"agent_id": agent_b, "token": registration,
                                                    "reported": {"millicores": 1000, "memory_bytes": 1 << 30,
                                                                 "gpus": 0}}).encode())
    try:
        with urllib.request.urlopen(reuse, timeout=10) as r:
            reused = (r.status, r.read().decode(errors="replace"))
    except urllib.error.HTTPError as e:
        reused = (e.code, e.read().decode(errors="replace"))
    check(reused[0] == 401, "a second check-in with the registration token is refused: HTTP %d %s" % reused)
    made = [d for d in decisions() if d["summary"].startswith("zone ") and "+2 agents" in d["summary"]]
    check(bool(made) and "standby cores 0 < 1.5" in made[-1]["summary"] and
          sum("standby cores 0 < 1.5" in a for a in made[-1]["actions"]) == 2,
          "the decision log says why: %s / %s" % (made[-1]["summary"] if made else "(none)",
                                                  made[-1]["actions"] if made else []))
    say("step 1 took %.1f s" % (time.monotonic() - t1))

    # ---- 2. a session lands on the autoscaled agent and runs ------------------------------------
    t2 = time.monotonic()
    session = call("request_kasm", image_id=workspace)
    session_ids.add(session["kasm_id"])

    def status():
        return call("get_kasm_status", kasm_id=session["kasm_id"], user_id=session["user_id"])["operational_status"]

    def stored():
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(DATA, "kasm.db"), uri=True, timeout=10)
        try:
            row = db.execute("SELECT data FROM sessions WHERE id = ?", (session["kasm_id"],)).fetchone()
            return json.loads(row[0]) if row else {}
        finally:
            db.close()

    st = wait_for("the session to run", 60, lambda: (lambda s: s if s in ("running", "failed", "deleted") else None)(
        status()))
    row = stored()
    require(st == "running", "the session runs: %s %s" % (st, row.get("state_reason", "")))
    check(row.get("agent_id") == agent_b, "it runs on the autoscaled agent %s" % agent_b[:8])
    upstream = row.get("upstream", "")
    check(upstream.startswith(rec_b["publish_host"] + ":"), "its upstream %s is on the machine's address" % upstream)
    page = run("ip", "netns", "exec", rec_b["netns"], sys.executable, "-c",
               "import sys, urllib.request; print(urllib.request.urlopen('http://' + sys.argv[1] + '/', "
               "timeout=5).read().decode())", upstream)
    check("kasm test page" in page.stdout, "it answers on %s from inside the machine's namespace: %s" %
          (upstream, (page.stdout or page.stderr).strip()[-120:]))
    containers = our_containers()
    check(len(containers) == 1, "one container of this run on the engine: %d" % len(containers))
    say("step 2 took %.1f s" % (time.monotonic() - t2))

    # ---- 3. standby 0, backoff 0: the machine with a session stays ------------------------------
    t3 = time.monotonic()
    patched_ms = int(time.time() * 1000)
    p = rest("PATCH", "/autoscale/" + CID, {"standby": {"millicores": 0, "memory_bytes": 0, "gpus": 0},
                                            "downscale_backoff": 0})
    check(p["standby"]["millicores"] == 0 and p["downscale_backoff"] == 0, "PATCH set standby 0 and backoff 0")
    seen_ticks = set()

    def two_passes():
        st = rest("GET", "/autoscale/" + CID).get("status") or {}
        if st.get("at", 0) > patched_ms:
            seen_ticks.add(st["at"])
        return len(seen_ticks) >= 2 and st

    last = wait_for("two autoscaler passes", 35, two_passes)
    check(bool(last), "the autoscaler looked twice since: %s" % (last or {}).get("summary"))
    ms = {m["id"]: m for m in machines()}
    check(ready["id"] in ms and ms[ready["id"]]["phase"] == "ready",
          "the machine with the session is still there: %s" % (ms.get(ready["id"], {}).get("phase", "gone")))
    check(alive(rec_b) and netns_exists(rec_b["netns"]), "its agent process and namespace are still there")
    check(status() == "running", "the session still runs")
    touched = [a for d in decisions() if d["at"] > patched_ms for a in d.get("actions", []) if ready["id"][:8] in a]
    check(not touched, "no decision touched it: %s" % touched)
    say("step 3 took %.1f s" % (time.monotonic() - t3))

    # ---- 4. the session ends: the idle machine is drained and destroyed -------------------------
    t4 = time.monotonic()
    call("destroy_kasm", kasm_id=session["kasm_id"], user_id=session["user_id"])
    check(wait_for("the session to end", 30, lambda: status() in ("deleted", "destroyed")) is not None,
          "the session is destroyed")
    gone = wait_for("the idle machine to go", 35, lambda: ready["id"] not in {m["id"] for m in machines()})
    check(bool(gone), "the idle machine's row is gone %.1f s after the session" % (time.monotonic() - t4))
    drained = actions_with("drained %s and destroyed it" % ready["id"][:8])
    check(bool(drained) and "idle" in drained[0] and ">= backoff 0 s" in drained[0],
          "the decision log says why: %s" % drained)
    check(wait_for("the agent to exit", 10, lambda: not alive(rec_b)) is not None,
          "its agent process (pid %s) is gone" % rec_b.get("pid"))
    check(not netns_exists(rec_b["netns"]) and not link_exists(rec_b["host_link"]),
          "its namespace %s and veth %s are deleted" % (rec_b["netns"], rec_b["host_link"]))
    check(provider_records()[rec_b["id"]]["state"] == "terminated", "the provider holds it as terminated")
    check(agent_b not in {a["id"] for a in rest("GET", "/agents")["items"]}, "its agent is unregistered")
    left = our_containers()
    check(not left, "no container of this run is left: %d" % len(left))
    say("step 4 took %.1f s" % (time.monotonic() - t4))

    # ---- 5. the machine that never checked in goes after the provision timeout ------------------
    t5 = time.monotonic()
    created_s = silent["created_at"] / 1000.0
    budget = max(5.0, created_s + 60 + 30 - time.time())  # timeout, two autoscaler passes and a margin
    gone = wait_for("the silent machine to go", budget, lambda: silent["id"] not in {m["id"] for m in machines()}, 1)
    check(bool(gone), "the machine that never checked in is destroyed %.0f s after it was made" %
          (time.time() - created_s))
    timed_out = actions_with("destroyed %s: did not check in within 1 min (provision timeout)" % silent["id"][:8])
    check(bool(timed_out), "the decision log says why: %s" % timed_out)
    check(not netns_exists(rec_a["netns"]) and not link_exists(rec_a["host_link"]),
          "its namespace %s and veth %s are deleted" % (rec_a["netns"], rec_a["host_link"]))
    check(silent["agent_id"] not in {a["id"] for a in rest("GET", "/agents")["items"]},
          "its never-used agent registration is removed")
    say("step 5 took %.1f s" % (time.monotonic() - t5))
    final = rest("GET", "/autoscale/" + CID)
    say("last word: %s" % (final.get("status") or {}).get("summary"))
    for d in reversed(decisions()):
        say("decision: %s%s%s" % (d["summary"], "".join("\n             " + a for a in d.get("actions", [])),
                                  ("\n             error: " + d["error"]) if d.get("error") else ""))
except Failed as e:
    if str(e) not in failures:
        failures.append(str(e))
        print("FAIL " + str(e), flush=True)
except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C, or SIGTERM (on_sigterm): clean up, then go.
    exit_code = e.code if isinstance(e, SystemExit) and isinstance(e.code, int) else 130
    failures.append("interrupted")
    print("e2e_autoscale_netns: interrupted; cleaning up", flush=True)
finally:
    # ---- cleanup: everything of this run, by name (not to be cut short by a second Ctrl-C) ----
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if server is not None and server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    for r in provider_records().values():
        if alive(r):
            try:
                os.killpg(r["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    for line in run("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX + "-"):
            for pid in run("ip", "netns", "pids", name).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", name)
            say("cleanup: deleted namespace " + name)
    for line in run("ip", "-o", "link", "show").stdout.splitlines():
        parts = line.split(": ")
        name = parts[1].split("@")[0] if len(parts) > 1 else ""
        if name.startswith(LINK_PREFIX):
            run("ip", "link", "del", name)
            if name != BRIDGE:
                say("cleanup: deleted link " + name)
    # Agents of this run, also those only the user data names (a machine never seen as a row).
    for r in provider_records().values():
        try:
            m = re.search(r"--agent-id (\S+)", open(os.path.join(VMS, r["id"], "user-data")).read())
            if m:
                agent_ids.add(m.group(1))
        except OSError:
            pass
    try:
        for c in our_containers():
            run("docker", "rm", "-f", c)
            say("cleanup: removed container " + c[:12])
    except Exception as e:
        say("cleanup: containers: %s" % e)
    elapsed = time.monotonic() - T0
    if failures:
        print("e2e_autoscale_netns: %d check(s) failed in %.0f s; kept for a look: %s (server log %s)" %
              (len(failures), elapsed, TMP, LOG), flush=True)
        try:
            print("---- server log (last 40 lines) ----\n" + "".join(open(LOG).readlines()[-40:]), flush=True)
        except OSError:
            pass
    elif args.keep:
        print("e2e_autoscale_netns: all checks passed in %.0f s; kept: %s" % (elapsed, TMP), flush=True)
    else:
        print("e2e_autoscale_netns: all checks passed in %.0f s" % elapsed, flush=True)
        shutil.rmtree(TMP, ignore_errors=True)
raise SystemExit(exit_code or (1 if failures else 0))
