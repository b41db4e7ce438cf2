"""A real session on dockerd through the public package (label docker): request, inspect, keepalive,
exec, destroy. Needs KASM_TEST_IMAGE (kasm-test/busybox:1 serves HTTP on 8080)."""

from __future__ import annotations

import secrets
import urllib.request

import pytest

import kasm

pytestmark = pytest.mark.docker


def test_session_launch_keepalive_and_destroy(docker_image: str) -> None:
    run = secrets.token_hex(4)
    store = kasm.open_store("memory")
    with kasm.Manager(store) as m:
        m.upsert_zone({"id": "local", "name": "Local"})
        m.upsert_workspace(
            {
                "id": "busybox",
                "friendly_name": "Busybox web",
                "image": docker_image,
                "port": 8080,
                "protocol": "http",
                "resources": {"millicores": 500, "memory_bytes": 64 * 1024 * 1024, "gpus": 0},
            }
        )
        store.insert("user", {"id": "alice", "username": "alice"})
        agent = m.add_docker_agent("local", agent_id=f"py-agent-{run}", probe_attempts=600)
        assert agent["status"] == "ok" and agent["reported"]["millicores"] > 0

        session = m.request_session("alice", "busybox", environment={"KASM_PY_TEST": run})
        try:
            assert session.is_running and session.agent_id == f"py-agent-{run}"
            assert session.url and session.url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(session.url, timeout=10) as resp:
                assert resp.status == 200

            assert m.get_session(session.id).state == "running"
            assert [s.id for s in m.list_sessions(states=["running"], user_id="alice")] == [session.id]
            before = session.expires_at_ms
            kept = m.keepalive(session.id)
            assert kept.expires_at_ms is not None and (before is None or kept.expires_at_ms >= before)
            code, output = m.exec_in_session(session.id, ["sh", "-c", "echo $KASM_PY_TEST"])
            assert code == 0 and run in output
            assert m.wait_for_session(session.id, timeout=5).id == session.id
        finally:
            gone = m.destroy_session(session.id)
        assert gone.state == "destroyed"
        with pytest.raises(kasm.FailedPrecondition):
            m.keepalive(session.id)


def test_unreachable_engine_is_unavailable() -> None:
    with kasm.Manager(kasm.open_store("memory")) as m:
        m.upsert_zone({"id": "local", "name": "Local"})
        with pytest.raises(kasm.Unavailable):
            m.add_docker_agent("local", docker_host="unix:///nonexistent/docker.sock")
