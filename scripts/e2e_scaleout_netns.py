#!/usr/bin/env python3
"""End-to-end check of scale-out (issue 18): two kasm-servers on one PostgreSQL behind nginx, three
kasm-agents in two zones, each agent in a network namespace of its own; the primary is killed with
SIGKILL in the middle of 200 launches.

Layout (everything made by this test, removed at the end):
  - a bridge with no ports carries 10.231.B.1, where nginx (scripts/nginx/kasm-scale-out.conf)
    listens; the two servers listen on 127.0.0.1 behind it;
  - agent n runs in namespace kasm-so-<run>-<n> with a veth pair 10.231.B.4n+1 (host) / .4n+2
    (inside) and one route, to the balancer's address: an agent reaches the installation only
    through nginx, so its polls land on either server, as behind a real balancer;
  - sessions publish on the agent's host-side veth address, inside the agent's publish_networks;
  - agent 4 (zone nat) runs with --tunnel and publishes on 10.231.B.200, an address of this host
    that nothing on this host may connect to (an iptables REJECT of locally made connections,
    matched on the original destination): only its own namespace reaches its sessions, and the
    servers reach them through the WebSocket it keeps open to nginx (kasm/tunnel).
No server has an agent of its own: a launch placed by server A on an agent whose poll waits on
server B reaches it only through the store (kasm/cluster/agent_commands.hpp).

Checks: 200 launches through nginx (REST, 2/3 in zone east, 1/3 in west), 8 at a time; after the
60th acknowledgement the primary of zone east is SIGKILLed; every acknowledged launch ends running
(0 lost), the failover time is printed, launches placed by each server ran on agents polling
through either, every session is destroyed and no container of this run is left (0 orphans).
Launches carry an Idempotency-Key, so a retry after the killed server's 502 answers the session it
had stored instead of starting a second one. Agent 4's desktop is served through its tunnel by
both servers (one holds the tunnel, the other goes through the holder's gateway) and by nginx,
while this host cannot connect to it directly; after the kill it is served again (the agent
reattaches to the survivor when its tunnel was on the victim).

    scripts/e2e_scaleout_netns.py [--launches 200] [--keep]

Needs root, iproute2, iptables, nginx, psql with KASM_TEST_POSTGRES_URL, a Docker engine with
KASM_TEST_IMAGE (scripts/lib-services.sh), built kasm-server, kasm-agent and kasm-license
(KASM_SERVER_BIN, KASM_AGENT_BIN, KASM_LICENSE_BIN). Exits 77 (skipped) when one is missing, or 1
when KASM_REQUIRE_SERVICES=1.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--launches", type=int, default=200)
ap.add_argument("--keep", action="store_true")
args = ap.parse_args()
SERVER_BIN = os.environ.get("KASM_SERVER_BIN") or os.path.join(BUILD, "reference-server", "kasm-server")
AGENT_BIN = os.environ.get("KASM_AGENT_BIN") or os.path.join(BUILD, "reference-server", "kasm-agent")
LICENSE_BIN = os.environ.get("KASM_LICENSE_BIN") or os.path.join(BUILD, "tools", "kasm-license", "kasm-license")
T0 = time.monotonic()


def say(text):
    print("[%5.1f s] %s" % (time.monotonic() - T0, text), flush=True)


def skip(why):
    required = os.environ.get("KASM_REQUIRE_SERVICES") == "1"
    print("e2e_scaleout_netns: %s: %s" % ("failed (KASM_REQUIRE_SERVICES=1)" if required else "skipped", why),
          flush=True)
    raise SystemExit(1 if required else 77)


def run(*argv, **kw):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, **kw)


if os.geteuid() != 0:
    skip("needs root (it makes network namespaces)")
if not shutil.which("ip") or run("ip", "netns", "list").returncode != 0:
    skip("needs iproute2 with `ip netns`")
if not shutil.which("iptables"):
    skip("needs iptables (an unreachable address for the tunnel agent)")
for path in (SERVER_BIN, AGENT_BIN, LICENSE_BIN, "/usr/sbin/nginx"):
    if not os.access(path, os.X_OK):
        skip("%s is missing" % path)
PG_URL = os.environ.get("KASM_TEST_POSTGRES_URL", "")
if not PG_URL or not shutil.which("psql"):
    skip("needs KASM_TEST_POSTGRES_URL and psql (scripts/test.sh starts PostgreSQL)")
IMAGE = os.environ.get("KASM_TEST_IMAGE", "")
if not IMAGE or run("docker", "image", "inspect", IMAGE).returncode != 0:
    skip("needs the Docker engine with KASM_TEST_IMAGE (scripts/lib-services.sh builds it)")

failures = []


class Failed(Exception):
    pass


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def require(ok, what):
    if not check(ok, what):
        raise Failed(what)


def wait_for(what, seconds, probe, interval=0.5):
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            if not value:
                say("gave up waiting %d s for %s" % (seconds, what))
            return value
        time.sleep(interval)


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_sigterm)

RUN = os.urandom(2).hex()
NS = "kasm-so-%s-" % RUN
LINK = "kso" + RUN
BRIDGE = LINK + "s"
taken = run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route", "show", "table", "all").stdout
free_b = [b for b in range(2, 250) if "10.231.%d." % b not in taken]
if not free_b:
    skip("no free /24 left in 10.231.0.0/16")
SUBNET = "10.231.%d" % random.choice(free_b)
LB_ADDR = SUBNET + ".1"
TMP = tempfile.mkdtemp(prefix="kasm-e2e-scaleout-")
DB = "kasm_e2e_so_" + RUN
parts = urllib.parse.urlsplit(PG_URL)
DB_URL = urllib.parse.urlunsplit(parts._replace(path="/" + DB))
procs = {}  # name -> Popen
agent_ids = set()
rules = []  # Addresses with a REJECT rule of this run.
tunnel_session = None


def reject_rule(addr):
    # Matched on the original destination: Docker's NAT rewrites a published address before the
    # filter table sees it. Only connections this host makes; replies to agent 4 are not touched.
    return ["-p", "tcp", "-m", "conntrack", "--ctorigdst", addr, "--ctdir", "ORIGINAL", "-m", "comment",
            "--comment", "kasm-e2e-" + RUN, "-j", "REJECT", "--reject-with", "tcp-reset"]



def free_port(addr="127.0.0.1"):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def http(method, base, path, body=None, headers=None, timeout=30):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            try:
                return r.status, (json.loads(raw) if raw else {})
            except ValueError:
                return r.status, raw.decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def our_containers():
    ids = run("docker", "ps", "-aq", "--filter", "label=kasm.managed=true").stdout.split()
    if not ids:
        return []
    out = []
    for c in json.loads(run("docker", "inspect", *ids).stdout or "[]"):
        if (c.get("Config", {}).get("Labels") or {}).get("kasm.agent_id") in agent_ids:
            out.append(c["Id"])
    return out


try:
    r = run("psql", PG_URL, "-c", "CREATE DATABASE " + DB)
    require(r.returncode == 0, "scratch database %s: %s" % (DB, r.stderr.strip() or "made"))
    for argv in (["link", "add", BRIDGE, "type", "bridge"], ["addr", "add", LB_ADDR + "/32", "dev", BRIDGE],
                 ["link", "set", BRIDGE, "up"]):
        r = run("ip", *argv)
        require(r.returncode == 0, "ip %s: %s" % (" ".join(argv), r.stderr.strip() or "ok"))

    # ---- licence: the vendor tool's keys; both servers verify with the public one -----------
    priv, pub = os.path.join(TMP, "vendor.pem"), os.path.join(TMP, "vendor.pub")
    require(run(LICENSE_BIN, "keygen", "--private-key", priv, "--public-key", pub).returncode == 0, "licence keys")

    admin_pw = "scaleout-" + os.urandom(6).hex()
    senv = dict(os.environ, KASM_ADMIN_PASSWORD=admin_pw)
    ports = {}

    def start_server(name):
        ports[name] = free_port()
        procs[name] = subprocess.Popen(
            [SERVER_BIN, "--http", "--listen", "127.0.0.1", "--port", str(ports[name]), "--database", DB_URL,
             "--data-dir", os.path.join(TMP, name), "--no-local-agent", "--gateway", "off", "--drain-seconds", "1",
             "--max-connections-per-address", "0", "--license-public-key", pub],
            env=senv, stdout=open(os.path.join(TMP, name + ".log"), "a"), stderr=subprocess.STDOUT)
        base = "http://127.0.0.1:%d" % ports[name]
        require(wait_for(name, 40, lambda: http("GET", base, "/healthz")[0] == 200, 0.2), "server %s answers" % name)
        return base

    A = start_server("a")  # First alone: it makes the schema and the admin.
    B = start_server("b")
    key = json.loads(run(SERVER_BIN, "api-key", "create", "--name", "so", "--database", DB_URL, "--data-dir",
                         os.path.join(TMP, "a"), env=senv).stdout)
    AUTH = {"Authorization": "Bearer %s:%s" % (key["api_key"], key["api_key_secret"])}

    # ---- nginx in front, with the documented configuration --------------------------------------
    LB_PORT = free_port(LB_ADDR)
    conf = open(os.path.join(ROOT, "scripts", "nginx", "kasm-scale-out.conf")).read()
    for old, new in (("10.0.0.11:8443", "127.0.0.1:%d" % ports["a"]), ("10.0.0.12:8443", "127.0.0.1:%d" % ports["b"]),
                     ("listen 443 ssl;", "listen %s:%d;" % (LB_ADDR, LB_PORT)),
                     ("ssl_certificate     /etc/nginx/kasm.crt;", ""), ("ssl_certificate_key /etc/nginx/kasm.key;", "")):
        require(old in conf, "nginx configuration has " + old)
        conf = conf.replace(old, new)
    ndir = os.path.join(TMP, "nginx")
    os.makedirs(ndir)
    open(os.path.join(ndir, "kasm.conf"), "w").write(conf)
    open(os.path.join(ndir, "nginx.conf"), "w").write(
        "daemon off;\npid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n access_log off;\n"
        " client_body_temp_path %s;\n proxy_temp_path %s;\n include %s/kasm.conf;\n}\n" % ((ndir,) * 5))
    procs["nginx"] = subprocess.Popen(["/usr/sbin/nginx", "-p", ndir, "-c", os.path.join(ndir, "nginx.conf")])
    LB = "http://%s:%d" % (LB_ADDR, LB_PORT)
    require(wait_for("nginx", 20, lambda: http("GET", LB, "/healthz")[0] == 200, 0.1), "nginx answers on " + LB)

    st, lic = http("GET", LB, "/api/v1/licenses", headers=AUTH)
    require(st == 200, "licence status: %s" % st)
    installation = lic["status"]["installation_id"]
    act, licf = os.path.join(TMP, "act.txt"), os.path.join(TMP, "lic.txt")
    require(run(LICENSE_BIN, "issue", "--private-key", priv, "--customer", "e2e", "--type", "concurrent_sessions",
                "--limit", str(args.launches + 50), "--days", "1", "--out", act).returncode == 0, "activation key")
    require(run(LICENSE_BIN, "activate", "--private-key", priv, "--activation-key", act, "--installation-id",
                installation, "--out", licf).returncode == 0, "licence for installation " + installation)
    st, body = http("POST", LB, "/api/v1/licenses", {"license": open(licf).read()}, AUTH)
    require(st == 201, "licence added: %s %s" % (st, body if st != 201 else ""))

    # ---- zones, agents in namespaces ------------------------------------------------------------
    st, zones = http("GET", LB, "/api/v1/zones", headers=AUTH)
    east = zones["items"][0]["id"]
    st, west = http("POST", LB, "/api/v1/zones", {"name": "west-" + RUN}, AUTH)
    require(st == 201, "zone west made: %s" % st)
    west = west["id"]
    agent_zone = {1: east, 2: east, 3: west}
    for n, zone in agent_zone.items():
        ns, host, inside = NS + str(n), "%sh%d" % (LINK, n), "%sn%d" % (LINK, n)
        host_ip, ns_ip = "%s.%d" % (SUBNET, 4 * n + 1), "%s.%d" % (SUBNET, 4 * n + 2)
        for argv in (["netns", "add", ns], ["link", "add", host, "type", "veth", "peer", "name", inside],
                     ["link", "set", inside, "netns", ns], ["addr", "add", host_ip + "/30", "dev", host],
                     ["link", "set", host, "up"], ["-n", ns, "addr", "add", ns_ip + "/30", "dev", inside],
                     ["-n", ns, "link", "set", inside, "up"], ["-n", ns, "link", "set", "lo", "up"],
                     ["-n", ns, "route", "add", LB_ADDR + "/32", "via", host_ip]):
            r = run("ip", *argv)
            require(r.returncode == 0, "ip %s: %s" % (" ".join(argv), r.stderr.strip() or "ok"))
        st, reg = http("POST", LB, "/api/v1/agents", {"hostname": "agent%d-%s" % (n, RUN), "zone_id": zone,
                                                     "publish_networks": [SUBNET + ".0/24"]}, AUTH)
        require(st == 201, "agent %d registered: %s" % (n, st))
        agent_ids.add(reg["agent"]["id"])
        procs["agent%d" % n] = subprocess.Popen(
            ["ip", "netns", "exec", ns, AGENT_BIN, "--server", LB, "--agent-id", reg["agent"]["id"], "--token",
             reg["token"], "--publish-host", host_ip, "--checkin-seconds", "2"],
            stdout=open(os.path.join(TMP, "agent%d.log" % n), "a"), stderr=subprocess.STDOUT)

    def agents_ok():
        st, page = http("GET", LB, "/api/v1/agents", headers=AUTH)
        return st == 200 and sum(1 for a in page["items"] if a["id"] in agent_ids and a["status"] == "ok") == 3

    require(wait_for("three agents", 40, agents_ok), "three agents check in through nginx")
    st, groups = http("GET", LB, "/api/v1/groups", headers=AUTH)
    st, ws = http("POST", LB, "/api/v1/workspaces", {
        "friendly_name": "so-web-" + RUN, "image": IMAGE, "port": 8080, "protocol": "http",
        "group_ids": [g["id"] for g in groups["items"]], "resources": {"millicores": 10, "memory_bytes": 16 << 20}},
        AUTH)
    require(st == 201, "workspace: %s %s" % (st, ws if st != 201 else ""))
    for g in groups["items"]:  # One user launches them all.
        st, body = http("PATCH", LB, "/api/v1/groups/" + g["id"], {"settings": {"max_sessions_per_user": 0}}, AUTH)
        require(st == 200, "group %s without a per-user limit: %s %s" % (g["name"], st, body if st != 200 else ""))
    st, users = http("GET", LB, "/api/v1/users", headers=AUTH)
    admin = users["items"][0]["id"]

    # ---- an agent the proxy cannot reach: its desktop through its reverse tunnel ---------------
    # Agent 4 publishes its sessions on HIDDEN, an address of this host that nothing on this host
    # may connect to (a REJECT rule on locally made connections): only connections that come in
    # from agent 4's namespace reach it. The servers reach its sessions through the WebSocket agent
    # 4 keeps open to the balancer (--tunnel), whichever server the viewer and the tunnel land on.
    HIDDEN = SUBNET + ".200"
    r = run("ip", "addr", "add", HIDDEN + "/32", "dev", BRIDGE)
    require(r.returncode == 0, "ip addr add %s/32 dev %s: %s" % (HIDDEN, BRIDGE, r.stderr.strip() or "ok"))
    r = run("iptables", "-I", "OUTPUT", *reject_rule(HIDDEN))
    require(r.returncode == 0, "iptables: nothing on this host connects to %s: %s" % (HIDDEN, r.stderr.strip() or "ok"))
    rules.append(HIDDEN)
    st, nat = http("POST", LB, "/api/v1/zones", {"name": "nat-" + RUN}, AUTH)
    require(st == 201, "zone nat made: %s" % st)
    ns4, host4, inside4 = NS + "4", LINK + "h4", LINK + "n4"
    host_ip4, ns_ip4 = "%s.%d" % (SUBNET, 17), "%s.%d" % (SUBNET, 18)
    for argv in (["netns", "add", ns4], ["link", "add", host4, "type", "veth", "peer", "name", inside4],
                 ["link", "set", inside4, "netns", ns4], ["addr", "add", host_ip4 + "/30", "dev", host4],
                 ["link", "set", host4, "up"], ["-n", ns4, "addr", "add", ns_ip4 + "/30", "dev", inside4],
                 ["-n", ns4, "link", "set", inside4, "up"], ["-n", ns4, "link", "set", "lo", "up"],
                 ["-n", ns4, "route", "add", LB_ADDR + "/32", "via", host_ip4],
                 ["-n", ns4, "route", "add", HIDDEN + "/32", "via", host_ip4]):
        r = run("ip", *argv)
        require(r.returncode == 0, "ip %s: %s" % (" ".join(argv), r.stderr.strip() or "ok"))
    st, reg4 = http("POST", LB, "/api/v1/agents", {"hostname": "agent4-" + RUN, "zone_id": nat["id"],
                                                  "publish_networks": [HIDDEN + "/32"]}, AUTH)
    require(st == 201, "agent 4 registered: %s" % st)
    agent4 = reg4["agent"]["id"]
    agent_ids.add(agent4)
    procs["agent4"] = subprocess.Popen(
        ["ip", "netns", "exec", ns4, AGENT_BIN, "--server", LB, "--agent-id", agent4, "--token", reg4["token"],
         "--publish-host", HIDDEN, "--tunnel", "--checkin-seconds", "2"],
        stdout=open(os.path.join(TMP, "agent4.log"), "a"), stderr=subprocess.STDOUT)

    def tunnel_of_agent4():
        st, a = http("GET", LB, "/api/v1/agents/" + agent4, headers=AUTH)
        return a.get("tunnel_gateway") if st == 200 and a.get("status") == "ok" else None

    gateway = wait_for("agent 4's tunnel", 40, tunnel_of_agent4)
    require(bool(gateway), "agent 4 checks in and its tunnel is attached (gateway %s)" % gateway)
    st, s4 = http("POST", LB, "/api/v1/sessions", {"workspace_id": ws["id"], "user_id": admin, "zone_id": nat["id"]},
                  AUTH, timeout=120)
    require(st in (200, 201, 202), "a session on agent 4: %s %s" % (st, s4 if st not in (200, 201, 202) else ""))
    tunnel_session = s4["id"]

    def running4():
        st, s = http("GET", LB, "/api/v1/sessions/" + tunnel_session, headers=AUTH)
        return s if st == 200 and s.get("state") == "running" else None

    s4 = wait_for("the session on agent 4", 60, running4)
    cid = run("docker", "ps", "-q", "--filter", "label=kasm.session_id=" + tunnel_session).stdout.split()
    published = run("docker", "port", cid[0]).stdout.split()[-1] if cid else ""
    require(bool(s4) and s4.get("agent_id") == agent4 and published.startswith(HIDDEN + ":"),
            "the session runs on agent 4, published at %s" % published)
    try:
        socket.create_connection((HIDDEN, int(published.rsplit(":", 1)[1])), timeout=3).close()
        direct = "connected"
    except OSError as e:
        direct = str(e)
    check(direct != "connected", "this host cannot connect to the session's published address %s (%s)"
          % (published, direct))

    def desktop_page(base=None):
        base = base or LB
        st, status = http("POST", LB, "/api/public/get_kasm_status",
                          {"api_key": key["api_key"], "api_key_secret": key["api_key_secret"],
                           "kasm_id": tunnel_session, "user_id": admin})
        if st != 200 or "kasm_url" not in status:
            return 0, "get_kasm_status: %s %s" % (st, status)
        url = status["kasm_url"]
        path = url[url.index("/", url.index("//") + 2):] if "//" in url else url
        return http("GET", base, path, timeout=20)

    # Straight to each server (one holds the tunnel, the other reaches it through the holder's
    # gateway), then through nginx.
    pages = [desktop_page(b) for b in ("http://127.0.0.1:%d" % ports["a"], "http://127.0.0.1:%d" % ports["b"], LB)
             for _ in range(2)]
    served = sum(1 for st, body in pages if st == 200 and "kasm test page" in str(body))
    check(served == 6, "the desktop of agent 4 served through its tunnel (gateway %s): %d of 6 requests, two to "
          "each server and two through nginx (%s)" % (gateway, served, [st for st, _ in pages]))

    def managers():
        st, page = http("GET", LB, "/api/v1/managers", headers=AUTH, timeout=5)
        return page["items"] if st == 200 else []

    def primary_of(zone, other_than=None):
        # A killed manager's row keeps the zones it led at its last heartbeat: look for another.
        for m in managers():
            if zone in m["leading"] and m["id"] != other_than:
                return m
        return None

    lead = wait_for("a primary of east", 20, lambda: primary_of(east))
    require(lead is not None, "zone east has a primary")
    victim = "a" if lead["url"].endswith(":%d" % ports["a"]) else "b"
    survivor = "b" if victim == "a" else "a"
    say("primary of east: server %s (%s)" % (victim, lead["id"]))

    # ---- 200 launches, the primary killed after the 60th acknowledgement ------------------------
    acknowledged, refused, lock = [], [], threading.Lock()
    todo = list(range(args.launches))
    killed = {}

    def launcher():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop(0)
            zone = west if i % 3 == 2 else east
            # One key per launch, sent again on every retry: a launch whose answer was lost (a 502 from
            # the killed server after it stored the session) answers that session instead of a second.
            headers = dict(AUTH, **{"Idempotency-Key": "e2e-launch-%d-%s" % (i, os.urandom(8).hex())})
            for attempt in range(20):
                st, body = http("POST", LB, "/api/v1/sessions",
                                {"workspace_id": ws["id"], "user_id": admin, "zone_id": zone}, headers, timeout=60)
                if st in (200, 201, 202):
                    with lock:
                        acknowledged.append(body["id"])
                        if len(acknowledged) == 60 and not killed:
                            procs[victim].kill()
                            killed["at"] = time.monotonic()
                            say("SIGKILL to server %s, the primary of east" % victim)
                    break
                if st in (0, 502, 503, 504):
                    time.sleep(0.5)  # The balancer moves on; try again.
                    continue
                with lock:
                    refused.append("%s %s" % (st, body))
                break

    began = time.monotonic()
    threads = [threading.Thread(target=launcher) for _ in range(8)]
    for t in threads:
        t.start()
    failover = None
    while any(t.is_alive() for t in threads):
        if killed and failover is None:
            m = primary_of(east, lead["id"])
            if m:
                failover = time.monotonic() - killed["at"]
                say("zone east led by %s after %.1f s" % (m["id"], failover))
        time.sleep(0.2)
    for t in threads:
        t.join()
    say("%d launches acknowledged, %d refused, in %.0f s" % (len(acknowledged), len(refused), time.monotonic() - began))
    check(bool(killed), "the primary was killed during the launches")
    if failover is None:
        m = wait_for("a new primary", 30, lambda: primary_of(east, lead["id"]))
        failover = time.monotonic() - killed["at"] if m else None
    check(failover is not None and failover < 10.5, "failover after SIGKILL of the primary: %s s" %
          ("%.1f" % failover if failover is not None else "none"))
    check(not refused, "no launch refused (%s)" % "; ".join(refused[:3]))
    dead = [m for m in managers() if m["id"] == lead["id"]]
    check(bool(dead) and dead[0].get("alive") is False and not dead[0]["leading"],
          "the killed manager is listed as not alive, leading nothing: %s" %
          ({k: dead[0].get(k) for k in ("alive", "leading")} if dead else "not listed"))

    def states():
        out = {}
        for sid in acknowledged:
            st, s = http("GET", LB, "/api/v1/sessions/" + sid, headers=AUTH)
            out[sid] = s.get("state") if st == 200 else "http %d" % st
        return out

    final = wait_for("every acknowledged launch running", 240,
                     lambda: (lambda s: s if all(v == "running" for v in s.values()) else None)(states()), 2)
    final = final or states()
    counts = {}
    for v in final.values():
        counts[v] = counts.get(v, 0) + 1
    check(counts.get("running", 0) == len(acknowledged),
          "%d of %d acknowledged launches running, 0 lost (%s)" % (counts.get("running", 0), len(acknowledged), counts))
    check(len(acknowledged) == args.launches, "every launch acknowledged")

    # Where they ran: agents of both zones.
    by_agent = {}
    for sid in acknowledged:
        st, sess = http("GET", LB, "/api/v1/sessions/" + sid, headers=AUTH)
        a = sess.get("agent_id") if st == 200 else None
        by_agent[a] = by_agent.get(a, 0) + 1
    check(len([a for a in by_agent if a in agent_ids]) == 3, "sessions on all three agents: %s" % by_agent)
    relay_errors = [line for line in open(os.path.join(TMP, survivor + ".log"))
                    if re.search(r'"event":"(agent_commands_failed|agent_commands_sweep_failed|agent_command_result_lost)"',
                                 line)]
    check(not relay_errors, "no relay failure in the survivor's log (%s)" % "".join(relay_errors[:2]).strip())

    # The tunnel survives the kill: agent 4 reattaches to the survivor if it was on the victim.
    ok_after = wait_for("agent 4's desktop after the kill", 30,
                        lambda: desktop_page()[0] == 200 and desktop_page()[0] == 200)
    check(bool(ok_after), "the desktop of agent 4 still served through its tunnel after the kill (gateway now %s)"
          % tunnel_of_agent4())

    # ---- teardown: every session destroyed, no container left ----------------------------------
    delete_errors = []
    for sid in [s for s in acknowledged + [tunnel_session] if s]:
        began = time.monotonic()
        st, body = http("DELETE", LB, "/api/v1/sessions/" + sid, headers=AUTH, timeout=60)
        if st not in (200, 204):
            delete_errors.append("DELETE %s: %s after %.1f s %s" % (sid, st, time.monotonic() - began, body))
    left = wait_for("no container of this run", 120, lambda: not our_containers(), 2)
    check(bool(left) or not our_containers(), "0 orphan containers (%d left)" % len(our_containers()))
    for line in delete_errors[:5] if our_containers() else []:
        print("  " + line[:300], flush=True)
    for c in json.loads(run("docker", "inspect", *our_containers()).stdout or "[]") if our_containers() else []:
        sid = (c.get("Config", {}).get("Labels") or {}).get("kasm.session_id", "")
        st, sess = http("GET", LB, "/api/v1/sessions/" + sid, headers=AUTH) if sid else (0, {})
        print("  left: %s %s created %s, session %s: %s" % (
            c.get("Name"), c.get("State", {}).get("Status"), c.get("Created"), sid,
            json.dumps({k: sess.get(k) for k in ("state", "state_reason", "agent_id", "created_at", "operational_message")}
                       if isinstance(sess, dict) else sess)), flush=True)
        # What the servers and agents said about it, for a failure seen only in CI.
        agent = sess.get("agent_id", "") if isinstance(sess, dict) else ""
        for name in sorted(f for f in os.listdir(TMP) if f.endswith(".log")):
            lines = open(os.path.join(TMP, name), errors="replace").read().splitlines()
            about = [l for l in lines if (sid and sid in l) or (agent and agent in l)]
            if name.startswith("agent"):
                about += lines[-12:]
            for line in about[-25:]:
                print("  %s: %s" % (name, line[:300]), flush=True)
except Failed:
    pass
except (KeyboardInterrupt, SystemExit):
    failures.append("interrupted")
    print("interrupted; cleaning up", flush=True)
except Exception:
    failures.append("an error in the test itself")
    traceback.print_exc()
finally:
    for name, p in procs.items():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM if name == "nginx" else signal.SIGKILL)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    for n in (1, 2, 3, 4):
        ns = NS + str(n)
        if os.path.exists("/run/netns/" + ns):
            for pid in run("ip", "netns", "pids", ns).stdout.split():
                run("kill", "-9", pid)
            run("ip", "netns", "del", ns)
        run("ip", "link", "del", "%sh%d" % (LINK, n))
    run("ip", "link", "del", BRIDGE)
    for addr in rules:
        run("iptables", "-D", "OUTPUT", *reject_rule(addr))
    for c in our_containers():
        run("docker", "rm", "-f", c)
    run("psql", PG_URL, "-c", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
    elapsed = time.monotonic() - T0
    if failures:
        print("e2e_scaleout_netns: %d check(s) failed in %.0f s; logs kept in %s" % (len(failures), elapsed, TMP),
              flush=True)
        raise SystemExit(1)
    if not args.keep:
        shutil.rmtree(TMP, ignore_errors=True)
    print("e2e_scaleout_netns: all checks passed in %.0f s" % elapsed, flush=True)
