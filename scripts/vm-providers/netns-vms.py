#!/usr/bin/env python3
"""A provider for kasm's "command" VM provider whose "machines" are Linux network namespaces.

Each machine is a namespace with a veth pair to the host and an address of its own; its user data
(the configuration's startup script, rendered by kasm-server) runs inside it with `ip netns exec`,
so a kasm-agent started there reaches the server only through its veth, as an agent on a real
machine reaches it only through the network. It serves tests on one host
(scripts/e2e_autoscale_netns.py); read scripts/vm-providers/directory-vms.py first for the protocol
(include/kasm/command/command_provider.hpp has it in full). Needs root and iproute2.

Configuration (provider_config_json of an autoscale configuration):

    {"create":  ["/usr/bin/python3", "/opt/kasm/netns-vms.py"], "destroy": [...same...],
     "list": [...same...], "status": [...same...],
     "environment": {"NETNS_VMS_DIR": "/tmp/kasm-netns-vms", "NETNS_VMS_NAME": "kasm-e2e-1a2b",
                     "NETNS_VMS_LINK": "kae1a2b", "NETNS_VMS_SUBNET": "10.231.7",
                     "NETNS_VMS_SERVER": "10.231.7.1"}}

Environment:

    NETNS_VMS_DIR     Required. The state directory: <id>.json per machine (kept, "terminated", after
                      destroy) and a directory <id>/ holding its user-data (mode 0600), the log of
                      what the user data started (boot.log) and whatever that writes there.
    NETNS_VMS_NAME    Required. Namespaces are named <NAME>-<n>, n = 1..62.
    NETNS_VMS_LINK    Required, at most 9 characters. The veth pair of machine n is <LINK>h<n> (host
                      side) and <LINK>n<n> (inside the namespace). Interface names have 15 at most.
    NETNS_VMS_SUBNET  Required. The first three octets of a /24 ("10.231.7"): machine n gets the /30
                      at 4n, the host side .4n+1 and the namespace side .4n+2 (its private_address).
    NETNS_VMS_SERVER  Optional. An address on the host (where kasm-server listens). The namespace gets
                      a route to it through its veth and no other route: besides its own /30 (the
                      host side address included) it reaches nothing else.
    NETNS_VMS_SILENT  Optional, a number N. The first N machines made here boot nothing: the
                      namespace is made but the user data never runs (an agent that never checks in).

The user data runs as `/bin/sh <id>/user-data` inside the namespace, in a session of its own, its
working directory <id>/, with this script's environment plus KASM_VM_ID, KASM_VM_DIR (<id>/),
KASM_VM_ADDRESS (the namespace side address) and KASM_VM_PUBLISH_HOST (the host side address: where
a Docker engine of the host can publish ports that both the host and the namespace reach).

Destroy sends SIGTERM to the process group of the user data (SIGKILL after 5 s), kills whatever else
still runs in the namespace, and deletes the veth pair and the namespace.

Exit statuses: 0 success, 2 bad request or configuration, 3 status of an unknown id, 4 no address
left, 75 try again later (an `ip` command failed).
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid

MAX_MACHINES = 62


def fail(status, message):
    print(message, file=sys.stderr)
    sys.exit(status)


def setting(name, required=True):
    value = os.environ.get(name, "")
    if required and not value:
        fail(2, name + " must be set")
    return value


def ip(*argv, check=True):
    r = subprocess.run(["ip", *argv], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(argv), r.stderr.strip()))
    return r


def state_dir():
    directory = setting("NETNS_VMS_DIR")
    if not directory.startswith("/"):
        fail(2, "NETNS_VMS_DIR must be an absolute path")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return directory


def machines(directory):
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                yield json.load(f)


def save(directory, machine):
    path = os.path.join(directory, machine["id"] + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(machine, f)
    os.replace(path + ".tmp", path)


def load(directory, request):
    machine_id = request.get("id")
    if not isinstance(machine_id, str) or not machine_id or "/" in machine_id or machine_id.startswith("."):
        fail(2, "the request needs an id naming a machine, got %r" % machine_id)
    try:
        with open(os.path.join(directory, machine_id + ".json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def namespace_exists(name):
    return os.path.exists(os.path.join("/run/netns", name))


def public(machine):
    """The instance object of the protocol. A namespace deleted behind our back is a terminated machine."""
    state = machine["state"]
    if state != "terminated" and not namespace_exists(machine["netns"]):
        state = "terminated"
    answer = {k: machine[k] for k in ("id", "private_address", "tags", "launched_at")}
    answer["state"] = state
    return answer


def process_start_time(pid):
    """Field 22 of /proc/<pid>/stat (tells a process from a later one with the same pid); None when
    the process is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def teardown(machine):
    """Deletes the veth pair and the namespace; killing what runs there first. Idempotent."""
    ns = machine["netns"]
    if namespace_exists(ns):
        pids = ip("netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    ip("link", "del", machine["host_link"], check=False)  # Deletes both ends.
    if namespace_exists(ns):
        ip("netns", "del", ns)


def boot(directory, machine, user_data):
    vm_dir = os.path.join(directory, machine["id"])
    os.makedirs(vm_dir, mode=0o700, exist_ok=True)
    data_path = os.path.join(vm_dir, "user-data")
    # User data holds the agent's registration token: readable by the owner only.
    with open(os.open(data_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(user_data)
    if machine["silent"]:
        return
    env = dict(os.environ, KASM_VM_ID=machine["id"], KASM_VM_DIR=vm_dir, KASM_VM_ADDRESS=machine["private_address"],
               KASM_VM_PUBLISH_HOST=machine["publish_host"])
    with open(os.path.join(vm_dir, "boot.log"), "ab") as log:
        # A session of its own: the provider's timeout kills this script's process group, not the
        # machine. `ip netns exec` execs the shell, which execs what the user data names, so the pid
        # stays the machine's main process.
        child = subprocess.Popen(["ip", "netns", "exec", machine["netns"], "/bin/sh", data_path], cwd=vm_dir, env=env,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    machine["pid"] = child.pid
    machine["pid_start"] = process_start_time(child.pid)


def create(directory, request):
    token = request.get("client_token") or ""
    known = list(machines(directory))
    for machine in known:
        if token and machine.get("client_token") == token:
            return public(machine)  # The same key: the machine made before, not a new one.
    name, link, subnet = setting("NETNS_VMS_NAME"), setting("NETNS_VMS_LINK"), setting("NETNS_VMS_SUBNET")
    if len(link) > 9:
        fail(2, "NETNS_VMS_LINK must have at most 9 characters (interface names have 15)")
    used = {m["n"] for m in known if m["state"] != "terminated" or namespace_exists(m["netns"])}
    free = [n for n in range(1, MAX_MACHINES + 1) if n not in used and not namespace_exists("%s-%d" % (name, n))]
    if not free:
        fail(4, "all %d addresses of %s.0/24 are in use" % (MAX_MACHINES, subnet))
    n = free[0]
    serial = len(known) + 1
    silent = serial <= int(os.environ.get("NETNS_VMS_SILENT") or "0")
    machine = {
        "id": "netns-%d-%s" % (n, uuid.uuid4().hex[:8]),
        "name": request.get("name", ""),
        "client_token": token,
        "state": "running",
        "n": n,
        "serial": serial,
        "silent": silent,
        "netns": "%s-%d" % (name, n),
        "host_link": "%sh%d" % (link, n),
        "publish_host": "%s.%d" % (subnet, 4 * n + 1),
        "private_address": "%s.%d" % (subnet, 4 * n + 2),
        "tags": request.get("tags", {}),
        "launched_at": int(time.time() * 1000),
    }
    ns, host, inner = machine["netns"], machine["host_link"], "%sn%d" % (link, n)
    try:
        ip("netns", "add", ns)
        ip("link", "add", host, "type", "veth", "peer", "name", inner, "netns", ns)
        ip("addr", "add", machine["publish_host"] + "/30", "dev", host)
        ip("link", "set", host, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", machine["private_address"] + "/30", "dev", inner)
        ip("-n", ns, "link", "set", inner, "up")
        server = os.environ.get("NETNS_VMS_SERVER", "")
        if server:
            ip("-n", ns, "route", "add", server + "/32", "via", machine["publish_host"])
        boot(directory, machine, request.get("user_data", ""))
    except Exception as e:  # An `ip` failure, or the boot: nothing half made is left.
        try:
            teardown(machine)
        except Exception:
            pass
        fail(75, "making %s failed: %s" % (ns, e))
    save(directory, machine)
    return public(machine)


def destroy(directory, request):
    machine = load(directory, request)
    if machine is None:
        return {}  # Unknown: already gone, which is success.
    pid = machine.get("pid")
    if pid and process_start_time(pid) is not None and process_start_time(pid) == machine.get("pid_start"):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and process_start_time(pid) == machine.get("pid_start"):
            time.sleep(0.1)
        if process_start_time(pid) == machine.get("pid_start"):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        teardown(machine)
    except Exception as e:
        fail(75, "destroying %s: %s" % (machine["netns"], e))
    machine["state"] = "terminated"  # Kept, as clouds list terminated machines for a while.
    machine["terminated_at"] = int(time.time() * 1000)
    save(directory, machine)
    return {}


def list_machines(directory, request):
    wanted = (request.get("tags") or {}).items()
    found = [public(m) for m in machines(directory) if all(m["tags"].get(k) == v for k, v in wanted)]
    return {"instances": found}


def status(directory, request):
    machine = load(directory, request)
    if machine is None:
        fail(3, "no machine %s" % request["id"])
    return public(machine)


OPERATIONS = {"create": create, "destroy": destroy, "list": list_machines, "status": status}


def main():
    try:
        request = json.load(sys.stdin)
    except ValueError as e:
        fail(2, "the request is not JSON: %s" % e)
    if not isinstance(request, dict):
        fail(2, "the request is not a JSON object")
    operation = OPERATIONS.get(request.get("operation"))
    if operation is None:
        fail(2, "unknown operation %r" % request.get("operation"))
    directory = state_dir()
    # One operation at a time per directory: two creates with one client_token make one machine,
    # and two machines never get the same number.
    with open(os.path.join(directory, ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as e:
            fail(75, "cannot lock the state directory: %s" % e)
        answer = operation(directory, request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
