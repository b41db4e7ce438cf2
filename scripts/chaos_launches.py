#!/usr/bin/env python3
"""Chaos check of acknowledged launches (issue 19): kasm-server on its embedded default is killed
with SIGKILL every 1-4 s and restarted while launches go through the developer API one after
another; every launch that request_kasm acknowledged must end running (none failed, none lost),
and no container is left once they are destroyed.

    scripts/chaos_launches.py [--launches 60] [--seed 11] [--kill server|agent] [--remote-agent]
                              [--max-minutes 7]

With --kill agent the server runs without its in-process agent and a kasm-agent process (dialling
in, as on another Docker host) is the one killed, every 0.5-2 s. With --remote-agent (and --kill
server) that kasm-agent keeps running while the server is killed and restarted (every 2-6 s): every running
session must also have a container of its own (a restarted server's commands must never be taken
for ones the agent answered before).

Needs dockerd and the desktop image (scripts/build-images.sh desktop) and a built kasm-server.
Connects to 127.0.0.1 only. Prints the outcome of every acknowledged launch, counted by state.
"""
import argparse, json, os, random, signal, socket, subprocess, tempfile, threading, time
import urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--launches", type=int, default=60)
ap.add_argument("--seed", type=int, default=11)
ap.add_argument("--server", default=os.path.join(ROOT, "build", "reference-server", "kasm-server"))
ap.add_argument("--agent", default=os.path.join(ROOT, "build", "reference-server", "kasm-agent"))
ap.add_argument("--kill", choices=["server", "agent"], default="server")
ap.add_argument("--remote-agent", action="store_true", help="with --kill server: a kasm-agent that stays up")
ap.add_argument("--max-minutes", type=float, default=7, help="stop launching after this long")
args = ap.parse_args()
random.seed(args.seed)
SERVER = args.server
DATA = tempfile.mkdtemp(prefix="kasm-chaos-")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); PORT = s.getsockname()[1]
BASE = f"http://127.0.0.1:{PORT}"
LOG = os.path.join(DATA, "server.log")
env = dict(os.environ, KASM_ADMIN_PASSWORD="chaos-" + os.urandom(6).hex(), KASM_WEB_ROOT=os.path.join(ROOT, "web", "dist"))
lock = threading.Lock(); state = {"proc": None, "kills": 0, "stop": False}
AGENT_MODE = args.kill == "agent"
REMOTE = AGENT_MODE or args.remote_agent
def start_server():
    extra = ["--no-local-agent", "--allow-loopback-upstreams"] if REMOTE else []
    return subprocess.Popen([SERVER, "--http", "--port", str(PORT), "--data-dir", DATA] + extra, env=env,
                            stdout=open(LOG, "a"), stderr=subprocess.STDOUT)
server = start_server(); time.sleep(2)
key = json.loads(subprocess.check_output([SERVER, "api-key", "create", "--name", "chaos", "--data-dir", DATA]))
def rest(method, path, body=None, headers={}):
    req = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers=dict({"Content-Type": "application/json"}, **headers))
    return json.load(urllib.request.urlopen(req, timeout=20))
if REMOTE:
    # A remote agent, registered as an administrator would, dialling in on loopback.
    login = urllib.request.urlopen(urllib.request.Request(
        BASE + "/api/v1/auth/login", data=json.dumps({"username": "admin@kasm.local",
                                                      "password": env["KASM_ADMIN_PASSWORD"]}).encode(),
        headers={"Content-Type": "application/json"}), timeout=20)
    auth = {"Cookie": login.headers["Set-Cookie"].split(";")[0], "X-CSRF-Token": json.load(login)["csrf_token"]}
    zone = rest("GET", "/api/v1/zones", headers=auth)["items"][0]["id"]
    reg = rest("POST", "/api/v1/agents", {"hostname": "chaos-agent", "zone_id": zone,
                                           "publish_networks": ["127.0.0.1"]}, auth)
    AGENT_ARGS = [args.agent, "--server", BASE, "--agent-id", reg["agent"]["id"], "--token", reg["token"],
                  "--checkin-seconds", "1"]
    def start(): return subprocess.Popen(AGENT_ARGS, stdout=open(LOG + ".agent", "a"), stderr=subprocess.STDOUT)
    agent = start()
if AGENT_MODE:
    state["proc"] = agent
else:
    start = start_server; state["proc"] = server
T0 = time.monotonic()
def killer():
    while not state["stop"]:
        # A server with an agent dialling in lives a little longer: the agent has to find each new
        # process (its poll) before a command can reach it.
        time.sleep(random.uniform(0.5, 2) if AGENT_MODE else random.uniform(2, 6) if REMOTE else random.uniform(1, 4))
        if state["stop"]: break
        with lock:
            state["proc"].send_signal(signal.SIGKILL); state["proc"].wait(); state["kills"] += 1
            print("killed", args.kill, "at", round(time.monotonic() - T0, 1), "s", flush=True)
            state["proc"] = start()
def call(verb, **body):
    body.update(api_key=key["api_key"], api_key_secret=key["api_key_secret"])
    r = urllib.request.urlopen(urllib.request.Request(BASE + "/api/public/" + verb, data=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"}), timeout=20)
    return json.load(r)
def retry(verb, **body):
    for _ in range(600):
        try: return call(verb, **body)
        except urllib.error.HTTPError as e:
            if e.code < 500: raise
        except Exception: pass
        time.sleep(0.1)
    raise SystemExit(f"{verb} never answered")
image = next(i for i in retry("get_images")["images"] if i["friendly_name"] == "Desktop")["image_id"]
threading.Thread(target=killer, daemon=True).start()
outcomes = []
deadline = time.monotonic() + args.max_minutes * 60
while len(outcomes) < args.launches and time.monotonic() < deadline:
    try:
        r = call("request_kasm", image_id=image)   # acknowledged only when this answers
    except Exception:
        time.sleep(0.2); continue
    kid, uid = r["kasm_id"], r["user_id"]
    t0 = time.monotonic()
    while True:
        st = retry("get_kasm_status", kasm_id=kid, user_id=uid)
        s = st["operational_status"]
        if s in ("running", "failed", "deleted", "stopped") or time.monotonic() - t0 > 120:
            own = subprocess.run(["docker", "ps", "-q", "--filter", "label=kasm.session_id=" + kid],
                                 capture_output=True, text=True).stdout.split()
            if s == "running" and not own:
                s = "running without a container of its own"
            outcomes.append((s, st.get("kasm", {}).get("state_reason", "") if isinstance(st.get("kasm"), dict) else ""))
            break
        time.sleep(0.3)
    for _ in range(20):
        try: retry("destroy_kasm", kasm_id=kid, user_id=uid); break
        except Exception: time.sleep(0.2)
state["stop"] = True
with lock:
    if REMOTE:
        # Sessions a killed agent left are removed once a live one reconciles: give it a moment.
        for _ in range(100):
            if not subprocess.run(["docker", "ps", "-aq", "--filter", "label=kasm.managed=true"],
                                  capture_output=True, text=True).stdout.split(): break
            time.sleep(0.3)
        for p in {id(agent): agent, id(state["proc"]): state["proc"]}.values():
            p.send_signal(signal.SIGTERM); p.wait()
        if AGENT_MODE:
            server.send_signal(signal.SIGTERM); server.wait()
    else:
        state["proc"].send_signal(signal.SIGTERM); state["proc"].wait()
from collections import Counter
print(args.kill, "SIGKILLed", state["kills"], "times;", len(outcomes), "acknowledged launches")
for k, v in Counter(outcomes).items(): print(v, k)
left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=kasm.managed=true"], capture_output=True, text=True).stdout.split()
print("kasm containers left:", len(left), "; server log:", LOG)
failed = sum(1 for s, _ in outcomes if s != "running")
raise SystemExit(1 if failed or left else 0)
