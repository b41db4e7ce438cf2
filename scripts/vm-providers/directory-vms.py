#!/usr/bin/env python3
"""A reference provider for kasm's "command" VM provider: "machines" are JSON files in a directory.

Read it to learn the protocol (include/kasm/command/command_provider.hpp has it in full), then adapt
it to a hypervisor or a cloud: replace the file operations by API calls.

Configuration (provider_config_json of an autoscale configuration):

    {"create":  ["/usr/bin/python3", "/opt/kasm/directory-vms.py"],
     "destroy": ["/usr/bin/python3", "/opt/kasm/directory-vms.py"],
     "list":    ["/usr/bin/python3", "/opt/kasm/directory-vms.py"],
     "status":  ["/usr/bin/python3", "/opt/kasm/directory-vms.py"],
     "environment": {"KASM_VMS_DIR": "/var/lib/kasm-vms"}}

The operation comes in the request on stdin ({"operation": "create", ...}), so one script serves all
four. Environment:

    KASM_VMS_DIR            Required. The state directory: one <id>.json per machine.
    KASM_VMS_START_COMMAND  Optional. A program started for each machine at create, in a session of
                            its own, as: <program> <id> <state dir>/<id>.user-data, with its output
                            in <id>.log; its process id is recorded and SIGTERM'd at destroy. This is
                            where a real provider would boot the machine with its user data. If it
                            writes <state dir>/<id>.address, that is the machine's private_address
                            (127.0.0.1 until then).

Exit statuses: 0 success, 2 bad request, 3 status of an unknown id, 75 try again later.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid


def fail(status, message):
    print(message, file=sys.stderr)
    sys.exit(status)


def state_dir():
    directory = os.environ.get("KASM_VMS_DIR", "")
    if not directory.startswith("/"):
        fail(2, "KASM_VMS_DIR must be set to an absolute path")
    os.makedirs(directory, exist_ok=True)
    return directory


def machines(directory):
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                yield json.load(f)


def save(directory, machine):
    # Write then rename, so a reader never sees half a file.
    path = os.path.join(directory, machine["id"] + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(machine, f)
    os.replace(path + ".tmp", path)


def machine_path(directory, request, suffix=".json"):
    machine_id = request.get("id")
    if not isinstance(machine_id, str) or not machine_id or "/" in machine_id or machine_id.startswith("."):
        fail(2, "the request needs an id naming a machine, got %r" % machine_id)
    return os.path.join(directory, machine_id + suffix)


def public(directory, machine):
    """The instance object of the protocol (the file also keeps private fields)."""
    keys = ("id", "state", "private_address", "tags", "launched_at")
    answer = {k: machine[k] for k in keys if k in machine}
    try:
        with open(os.path.join(directory, machine["id"] + ".address")) as f:
            answer["private_address"] = f.read().strip()
    except FileNotFoundError:
        pass
    return answer


def start(directory, machine, user_data):
    command = os.environ.get("KASM_VMS_START_COMMAND")
    if not command:
        return
    data_path = os.path.join(directory, machine["id"] + ".user-data")
    # User data may hold secrets (an agent's registration token): readable by the owner only.
    with open(os.open(data_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(user_data)
    with open(os.path.join(directory, machine["id"] + ".log"), "ab") as log:
        # A session of its own: the provider's timeout kills the script's process group, not this.
        child = subprocess.Popen([command, machine["id"], data_path], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=log, start_new_session=True)
    machine["pid"] = child.pid


def create(directory, request):
    token = request.get("client_token") or ""
    for machine in machines(directory):
        if token and machine.get("client_token") == token:
            return public(directory, machine)  # The same key: the machine made before, not a new one.
    machine = {
        "id": "vm-" + uuid.uuid4().hex[:12],
        "name": request.get("name", ""),
        "client_token": token,
        "state": "running",
        "private_address": "127.0.0.1",
        "tags": request.get("tags", {}),
        "launched_at": int(time.time() * 1000),
    }
    start(directory, machine, request.get("user_data", ""))
    save(directory, machine)
    return public(directory, machine)


def destroy(directory, request):
    path = machine_path(directory, request)
    if not os.path.exists(path):
        return {}  # Unknown: already gone, which is success.
    with open(path) as f:
        machine = json.load(f)
    if "pid" in machine and machine["state"] != "terminated":
        try:
            os.kill(machine["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    machine["state"] = "terminated"  # Kept, as clouds list terminated machines for a while.
    save(directory, machine)
    return {}


def list_machines(directory, request):
    wanted = request.get("tags", {}).items()
    found = [public(directory, m) for m in machines(directory) if all(m["tags"].get(k) == v for k, v in wanted)]
    return {"instances": found}


def status(directory, request):
    path = machine_path(directory, request)
    if not os.path.exists(path):
        fail(3, "no machine " + request["id"])
    with open(path) as f:
        return public(directory, json.load(f))


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
    # One operation at a time per directory: two creates with one client_token make one machine.
    with open(os.path.join(directory, ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as e:
            fail(75, "cannot lock the state directory: %s" % e)
        answer = operation(directory, request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
