#!/usr/bin/env python3
"""Chaos check of the container engine (issue 19): kasm-server's agent runs on a private dockerd
that this script starts (its own data root, socket and bridge, so the other tests' engine is never
touched) and restarts twice:

  1. with sessions running: three running sessions, one paused, and a launch acknowledged while
     the engine is down. Afterwards every running session runs again (its container started again,
     its disk kept, answering on the address the server now holds), the paused one is stopped and
     resumes, and the launch made during the outage ends running.
  2. during a pull: a workspace added whose image (200 MB, in the local registry) is not on the
     host, and a launch of it; the engine is restarted while the image is being pulled (by the
     agent keeping its images pulled, and the launch). The launch ends running.

Then every session is destroyed. It counts lost sessions (acknowledged, not running when they
should be), failed acknowledged launches and orphan containers (left on the engine), and exits 1
unless all three are zero.

    scripts/chaos_dockerd.py [--server build/reference-server/kasm-server]

Needs root, dockerd, busybox-static, the docker CLI, iproute2 and a registry on loopback
(KASM_TEST_REGISTRY, as scripts/lib-services.sh starts it). Connects to 127.0.0.1 only.
"""
import argparse, json, os, random, shutil, signal, socket, sqlite3, subprocess, tempfile, time
import urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--server", default=os.path.join(ROOT, "build", "reference-server", "kasm-server"))
ap.add_argument("--blob-mib", type=int, default=200)
args = ap.parse_args()
REGISTRY = os.environ.get("KASM_TEST_REGISTRY", "")
for need, why in ((os.geteuid() == 0, "root (it starts a dockerd)"), (shutil.which("dockerd"), "dockerd"),
                  (os.access("/bin/busybox", os.X_OK), "busybox-static"), (shutil.which("ip"), "iproute2"),
                  (REGISTRY, "a registry (KASM_TEST_REGISTRY)")):
    if not need:
        print(f"chaos_dockerd: needs {why}", flush=True)
        raise SystemExit(1 if os.environ.get("KASM_REQUIRE_SERVICES") == "1" else 77)  # 77: skipped.

TMP = tempfile.mkdtemp(prefix="kasm-chaos-dockerd-")
RUN = os.urandom(3).hex()
SOCK = os.path.join(TMP, "docker.sock")
BRIDGE = "kchaos" + RUN
SUBNET = f"10.254.{random.randint(1, 250)}"
ENV = dict(os.environ, DOCKER_HOST="unix://" + SOCK)
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def docker(*argv, check_rc=True, **kw):
    r = subprocess.run(["docker", *argv], env=ENV, capture_output=True, text=True, **kw)
    if check_rc and r.returncode != 0:
        raise SystemExit(f"docker {' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout.strip()


class Engine:
    """The private dockerd."""

    def __init__(self):
        self.proc = None
        subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", SUBNET + ".1/24", "dev", BRIDGE], check=True)
        subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)

    def start(self):
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(TMP, "root"), "--exec-root", os.path.join(TMP, "exec"),
             "--pidfile", os.path.join(TMP, "docker.pid"), "-H", "unix://" + SOCK, "--bridge", BRIDGE,
             "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--insecure-registry", REGISTRY],
            stdout=open(os.path.join(TMP, "dockerd.log"), "a"), stderr=subprocess.STDOUT)
        for _ in range(300):
            if subprocess.run(["docker", "version"], env=ENV, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("the private dockerd did not start; see " + os.path.join(TMP, "dockerd.log"))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self, during=None):
        t0 = time.monotonic()
        self.stop()
        if during:
            during()
        self.start()
        return time.monotonic() - t0

    def close(self):
        self.stop()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(hostport, timeout=3):
    try:
        with urllib.request.urlopen(f"http://{hostport}/", timeout=timeout) as r:
            return r.read().decode(errors="replace")
    except Exception as e:
        return f"<{e}>"


def import_web_image(ref):
    """The busybox test image of scripts/lib-services.sh: httpd on 8080 serving a marker page."""
    root = os.path.join(TMP, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "www"))
    os.makedirs(os.path.join(root, "tmp"))
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "httpd", "sleep", "echo", "cat", "ls", "true"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "www", "index.html"), "w") as f:
        f.write("kasm chaos page\n")
    tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-c", 'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]',
                    "-c", "EXPOSE 8080", "-", ref], env=ENV, stdin=tar.stdout, check=True, capture_output=True)
    tar.wait()
    shutil.rmtree(root)


engine = Engine()
server = None
try:
    engine.start()
    WEB = "kasm-chaos/web:" + RUN
    BIG = f"{REGISTRY}/kasm-chaos/big-{RUN}:1"
    import_web_image(WEB)
    # A large image in the registry, not on the host: a pull long enough to be cut.
    ctx = os.path.join(TMP, "big")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "blob"), "wb") as f:
        for _ in range(args.blob_mib):
            f.write(os.urandom(1 << 20))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(f"FROM {WEB}\nCOPY blob /blob\n")
    docker("build", "-q", "-t", BIG, ctx)
    docker("push", BIG)
    docker("rmi", BIG)
    shutil.rmtree(ctx)

    # kasm-server on its embedded default, its in-process agent on the private engine.
    DATA = os.path.join(TMP, "data")
    PORT = free_port()
    BASE = f"http://127.0.0.1:{PORT}"
    admin_pw = "chaos-" + os.urandom(6).hex()
    senv = dict(ENV, KASM_ADMIN_PASSWORD=admin_pw)
    LOG = os.path.join(TMP, "server.log")
    server = subprocess.Popen([args.server, "--http", "--port", str(PORT), "--data-dir", DATA],
                              env=senv, stdout=open(LOG, "a"), stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            urllib.request.urlopen(BASE + "/healthz", timeout=2)
            break
        except Exception:
            time.sleep(0.1)
    key = json.loads(subprocess.check_output([args.server, "api-key", "create", "--name", "chaos", "--data-dir", DATA],
                                             env=senv))
    login = urllib.request.urlopen(urllib.request.Request(
        BASE + "/api/v1/auth/login", data=json.dumps({"username": "admin@kasm.local", "password": admin_pw}).encode(),
        headers={"Content-Type": "application/json"}), timeout=20)
    AUTH = {"Cookie": login.headers["Set-Cookie"].split(";")[0], "X-CSRF-Token": json.load(login)["csrf_token"]}

    def rest(method, path, body=None):
        req = urllib.request.Request(BASE + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers=dict({"Content-Type": "application/json"}, **AUTH))
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else {}

    def call(verb, **body):
        body.update(api_key=key["api_key"], api_key_secret=key["api_key_secret"])
        req = urllib.request.Request(BASE + "/api/public/" + verb, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{verb}: HTTP {e.code}: {e.read().decode(errors='replace')}")

    everyone = [g["id"] for g in rest("GET", "/api/v1/groups")["items"]]
    ws = {}

    def add_workspace(name, image):
        created = rest("POST", "/api/v1/workspaces", {"friendly_name": name, "image": image, "port": 8080,
                                                      "protocol": "http", "group_ids": everyone,
                                                      "resources": {"millicores": 100, "memory_bytes": 64 << 20}})
        ws[name] = created["id"]

    add_workspace("chaos-web", WEB)

    def status(s):
        return call("get_kasm_status", kasm_id=s["kasm_id"], user_id=s["user_id"])["operational_status"]

    def wait_for(s, states, seconds):
        deadline = time.monotonic() + seconds
        st = None
        while time.monotonic() < deadline:
            try:
                st = status(s)
            except Exception:
                st = None
            if st in states:
                return st
            time.sleep(0.3)
        return st

    def stored(s):
        """The session row as the server stored it (its upstream is not in any API answer)."""
        db = sqlite3.connect(f"file:{os.path.join(DATA, 'kasm.db')}?mode=ro", uri=True, timeout=10)
        try:
            row = db.execute("SELECT data FROM sessions WHERE id = ?", (s["kasm_id"],)).fetchone()
            return json.loads(row[0]) if row else {}
        finally:
            db.close()

    def container_of(s):
        ids = docker("ps", "-aq", "--filter", f"label=kasm.session_id={s['kasm_id']}").split()
        if not ids:
            return None
        return json.loads(docker("inspect", ids[0]))[0]

    acknowledged = []  # Every launch request_kasm answered, with what it must end as.

    def launch(workspace):
        s = call("request_kasm", image_id=ws[workspace])
        acknowledged.append(s)
        return s

    # ---- 1. the engine restarts under running sessions ----------------------------------------
    running = [launch("chaos-web") for _ in range(3)]
    paused = launch("chaos-web")
    for s in running + [paused]:
        check(wait_for(s, {"running"}, 60) == "running", f"session {s['kasm_id'][:8]} runs before the restart")
    before = {s["kasm_id"]: stored(s).get("upstream") for s in running}
    for s in running:
        docker("exec", container_of(s)["Id"], "sh", "-c", f"echo {s['kasm_id']} > /tmp/kept")
    rest("POST", f"/api/v1/sessions/{paused['kasm_id']}/pause")
    during_outage = {}

    def launch_during_outage():
        during_outage["s"] = launch("chaos-web")

    took = engine.restart(during=launch_during_outage)
    print(f"engine restarted in {took:.1f} s (a launch acknowledged while it was down)", flush=True)
    for s in running:
        st = wait_for(s, {"running"}, 5)
        ok = False
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            c = container_of(s)
            up = stored(s).get("upstream", "")
            if c and c["State"]["Running"] and "kasm chaos page" in http_get(up):
                ok = True
                break
            time.sleep(0.5)
        check(ok, f"session {s['kasm_id'][:8]} runs again and answers on its stored address "
                  f"({before[s['kasm_id']]} -> {stored(s).get('upstream')}): {stored(s).get('state_reason')}")
        kept = docker("exec", container_of(s)["Id"], "cat", "/tmp/kept", check_rc=False)
        check(kept == s["kasm_id"], f"session {s['kasm_id'][:8]} kept its disk")
    check(wait_for(paused, {"stopped"}, 60) == "stopped",
          f"the paused session is stopped: {stored(paused).get('state_reason')}")
    rest("POST", f"/api/v1/sessions/{paused['kasm_id']}/resume")
    check(wait_for(paused, {"running"}, 60) == "running" and "kasm chaos page" in http_get(stored(paused)["upstream"]),
          "the stopped session resumes and answers")
    s = during_outage["s"]
    check(wait_for(s, {"running"}, 120) == "running",
          f"the launch acknowledged during the outage ends running: {stored(s).get('state_reason')}")

    # The community licence allows five sessions: end these (counted first) before the next part.
    lost = [s["kasm_id"][:8] for s in acknowledged if status(s) != "running"]

    destroyed = set()

    def destroy_all():
        ending = [s for s in acknowledged if s["kasm_id"] not in destroyed]
        for s in ending:
            call("destroy_kasm", kasm_id=s["kasm_id"], user_id=s["user_id"])
            destroyed.add(s["kasm_id"])
        for s in ending:
            wait_for(s, {"deleted", "destroyed"}, 60)

    destroy_all()

    # ---- 2. the engine restarts during a pull -------------------------------------------------
    # Only now: the agent pulls a new workspace's image at once (ahead of launches), and this pull
    # is the one to cut. The launch made right after joins it.
    add_workspace("chaos-big", BIG)
    big = launch("chaos-big")
    tmpdir = os.path.join(TMP, "root", "tmp")
    cut = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not cut:
        pulled = 0
        for dirpath, _, files in os.walk(tmpdir):
            for f in files:
                try:
                    pulled += os.path.getsize(os.path.join(dirpath, f))
                except OSError:
                    pass
        if pulled > (20 << 20):  # The layer is coming in.
            took = engine.restart()
            cut = True
            print(f"engine restarted in {took:.1f} s with {pulled >> 20} MiB of the layer pulled", flush=True)
        time.sleep(0.05)
    check(cut, "the pull was cut by the restart")
    st = wait_for(big, {"running", "failed"}, 240)
    check(st == "running", f"the launch whose pull was cut ends running: {stored(big).get('state_reason')}")

    # ---- the count ------------------------------------------------------------------------------
    lost += [s["kasm_id"][:8] for s in [big] if status(s) != "running"]
    destroy_all()
    time.sleep(1)
    orphans = docker("ps", "-aq", "--filter", "label=kasm.managed=true").split()
    print(f"{len(acknowledged)} acknowledged launches; not running at the end: {len(lost)} {lost}; "
          f"orphan containers: {len(orphans)}", flush=True)
    check(not lost, "no acknowledged session lost or failed")
    check(not orphans, "no container left on the engine")
finally:
    if server:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    try:
        for c in docker("ps", "-aq", check_rc=False).split():
            docker("rm", "-f", c, check_rc=False)
    except Exception:
        pass
    engine.close()
    if not failures:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("kept for a look:", TMP)
raise SystemExit(1 if failures else 0)
