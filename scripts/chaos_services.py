#!/usr/bin/env python3
"""Chaos checks of kasm-server's storage (issue 19), each bounded in count and time:

  scripts/chaos_services.py postgres   PostgreSQL (a private instance) restarted twice while users
                                        are created and read through the developer API: requests
                                        during the outage answer 503 (never 5xx garbage, never a
                                        crash), succeed afterwards, and every write that was
                                        acknowledged is there at the end.
  scripts/chaos_services.py sqlite-full the embedded default's disk "fills" (the server's file
                                        size limit is set below the database's next growth):
                                        writes are refused with a clear error, reads keep working,
                                        the server stays up, and once space is back the database
                                        is intact (integrity_check) with every acknowledged write.

Needs a built kasm-server (--server) and, for postgres, PostgreSQL's server binaries. Connects to
127.0.0.1 only. Exit status 0 when every check holds.
"""
import argparse, glob, json, os, resource, shutil, signal, socket, sqlite3, subprocess, tempfile, time
import urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["postgres", "sqlite-full"])
ap.add_argument("--server", default=os.path.join(ROOT, "build", "reference-server", "kasm-server"))
ap.add_argument("--writes", type=int, default=300)
args = ap.parse_args()
TMP = tempfile.mkdtemp(prefix="kasm-chaos-" + args.mode + "-")
os.chmod(TMP, 0o755)
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, extra, preexec=None):
        self.port = free_port()
        self.log = os.path.join(TMP, "server.log")
        env = dict(os.environ, KASM_ADMIN_PASSWORD="chaos-" + os.urandom(6).hex())
        self.proc = subprocess.Popen([args.server, "--http", "--no-local-agent", "--port", str(self.port)] + extra,
                                     env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT,
                                     preexec_fn=preexec)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise SystemExit("kasm-server exited at start; see " + self.log)
                time.sleep(0.1)
        raise SystemExit("kasm-server did not start; see " + self.log)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def call(self, key, verb, **body):
        """(status, answer) of one developer API call; status 0 when nothing answered."""
        body.update(api_key=key["api_key"], api_key_secret=key["api_key_secret"])
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/public/{verb}",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.load(e)
            except Exception:
                return e.code, {}
        except Exception:
            return 0, {}


def api_key(store_args):
    return json.loads(subprocess.check_output([args.server, "api-key", "create", "--name", "chaos"] + store_args))


# ---- postgres -------------------------------------------------------------------------------------

def pg_bin():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin")):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")


def as_pg(cmd):
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True)


def postgres():
    b = pg_bin()
    data = os.path.join(TMP, "pg")
    os.makedirs(data)
    if os.getuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    pw = "chaos-" + os.urandom(8).hex()
    pwfile = os.path.join(TMP, "pw")
    with open(pwfile, "w") as f:
        f.write(pw)
    os.chmod(pwfile, 0o644)
    r = as_pg([f"{b}/initdb", "-D", data + "/d", "-U", "kasm", f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
               "--auth-local=trust", "-E", "UTF8"])
    if r.returncode:
        raise SystemExit("initdb failed: " + r.stderr)
    port = free_port()
    ctl = lambda *a: as_pg([f"{b}/pg_ctl", "-D", data + "/d", "-l", data + "/log", "-w", "-t", "60"] + list(a))
    opts = ["-o", f"-k {data} -h 127.0.0.1 -p {port} -c fsync=off"]
    if ctl(*opts, "start").returncode:
        raise SystemExit("PostgreSQL did not start")
    url = f"postgresql://kasm:{pw}@127.0.0.1:{port}/postgres"
    server = Server(["--database", url, "--data-dir", os.path.join(TMP, "data")])
    try:
        key = api_key(["--database", url])
        acknowledged, statuses, outage_statuses = [], {}, set()
        outages = {args.writes // 3, 2 * args.writes // 3}
        for i in range(args.writes):
            if i in outages:
                # Down for a while (immediate: as a crash), with requests arriving meanwhile.
                ctl("-m", "immediate", "stop")
                for j in range(10):
                    s, _ = server.call(key, "create_user", target_user={"username": f"during-{i}-{j}@chaos"})
                    outage_statuses.add(s)
                    if s == 200:
                        acknowledged.append(f"during-{i}-{j}@chaos")
                    s, _ = server.call(key, "get_users")
                    outage_statuses.add(s)
                ctl(*opts, "start")
            name = f"user-{i}@chaos"
            for attempt in range(100):  # Bounded: a client that retries, as clients do after a 503.
                s, _ = server.call(key, "create_user", target_user={"username": name})
                statuses[s] = statuses.get(s, 0) + 1
                if s == 200:
                    acknowledged.append(name)
                    break
                if s == 400 or s == 409:  # Created by the attempt whose answer was lost.
                    acknowledged.append(name)
                    break
                time.sleep(0.1)
        check(outage_statuses <= {503, 200}, f"requests during the outages answer 503 (saw {sorted(outage_statuses)})")
        check(503 in outage_statuses, "the outages were seen (503)")
        check(server.proc.poll() is None, "kasm-server stayed up through two database restarts")
        s, users = server.call(key, "get_users")
        names = {u["username"] for u in users.get("users", [])}
        lost = [n for n in acknowledged if n not in names]
        check(s == 200 and not lost,
              f"every acknowledged write is there ({len(acknowledged)} acknowledged, {len(lost)} lost)")
        print("answers outside the outages:", statuses)
    finally:
        server.stop()
        ctl("-m", "immediate", "stop")


# ---- sqlite-full ----------------------------------------------------------------------------------

def sqlite_full():
    data = os.path.join(TMP, "data")
    # First start: the database as an installation has it, then its size is the disk's capacity.
    server = Server(["--data-dir", data])
    key = api_key(["--data-dir", data])
    acknowledged = []
    for i in range(20):
        s, _ = server.call(key, "create_user", target_user={"username": f"before-{i}@chaos"})
        if s == 200:
            acknowledged.append(f"before-{i}@chaos")
    server.stop()
    db = os.path.join(data, "kasm.db")
    limit = os.path.getsize(db) + os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else os.path.getsize(db)
    limit += 64 * 1024  # A little room: the disk fills during the run, not at start.

    def small_disk():
        # Writes past the limit fail with EFBIG (the signal that would kill the process is ignored),
        # which SQLite reports as a full disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    server = Server(["--data-dir", data], preexec=small_disk)
    refused = None
    try:
        for i in range(args.writes * 10):
            s, answer = server.call(key, "create_user", target_user={"username": f"filling-{i}@chaos-" + "x" * 200})
            if s == 200:
                acknowledged.append(f"filling-{i}@chaos-" + "x" * 200)
                continue
            refused = (s, answer.get("error_message", ""))
            break
        check(refused is not None, "the disk filled within the run")
        if refused:
            print("refused with", refused)
            check(refused[0] in (503, 507, 500) and refused[1] != "", "a full disk is a clear error")
        s, _ = server.call(key, "get_users")
        check(s == 200, "reads keep working on a full disk")
        check(server.proc.poll() is None, "kasm-server stays up on a full disk")
    finally:
        server.stop()
    # Space is back.
    server = Server(["--data-dir", data])
    try:
        s, _ = server.call(key, "create_user", target_user={"username": "after@chaos"})
        check(s == 200, "writes work again once there is space")
        s, users = server.call(key, "get_users")
        names = {u["username"] for u in users.get("users", [])}
        lost = [n for n in acknowledged if n not in names]
        check(not lost, f"every acknowledged write survived ({len(acknowledged)} acknowledged, {len(lost)} lost)")
    finally:
        server.stop()
    ok = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
    check(ok == "ok", "the database is intact (integrity_check: " + ok + ")")


try:
    postgres() if args.mode == "postgres" else sqlite_full()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
print("chaos", args.mode + ":", "FAILED: " + "; ".join(failures) if failures else "all checks hold")
raise SystemExit(1 if failures else 0)
