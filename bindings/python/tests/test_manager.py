"""The manager without Docker: registration, errors, closing and lifetimes, licensing, staging."""

from __future__ import annotations

import gc
import threading

import pytest

import kasm
from kasm.staging import get_pool_size, set_pool_size


def add_workspace(m: kasm.Manager) -> None:
    m.upsert_workspace(
        {"id": "web", "friendly_name": "Web", "image": "nginx:1", "port": 80, "protocol": "http",
         "resources": {"millicores": 500, "memory_bytes": 64 << 20, "gpus": 0}}
    )


def test_zones_workspaces_and_agents_register(manager: kasm.Manager, store: kasm.Store) -> None:
    add_workspace(manager)
    assert store.get("workspace", "web").value["friendly_name"] == "Web"
    agent, token = manager.register_agent({"hostname": "h1", "zone_id": "local"})
    assert agent["status"] == "pending" and token and agent["id"]
    assert "token" not in agent and agent["token_hash"] != token
    drained = manager.set_agent_availability(agent["id"], draining=True)
    assert drained["draining"] is True


def test_unknown_ids_are_not_found(manager: kasm.Manager) -> None:
    with pytest.raises(kasm.NotFound):
        manager.get_session("no-such-session")
    with pytest.raises(kasm.NotFound):
        manager.destroy_session("no-such-session")
    with pytest.raises(kasm.NotFound):
        manager.keepalive("no-such-session")
    with pytest.raises(kasm.NotFound, match="zone 'mars'"):
        manager.register_agent({"hostname": "h", "zone_id": "mars"})


def test_bad_input_is_invalid_argument(manager: kasm.Manager) -> None:
    with pytest.raises(kasm.InvalidArgument, match="session_id"):
        manager.get_session("not a valid id!")
    with pytest.raises(kasm.InvalidArgument):
        manager.upsert_workspace({"id": "w", "image": "", "port": -1})
    with pytest.raises(kasm.InvalidArgument, match="load_strategy"):
        manager.upsert_zone({"id": "z", "name": "Z", "load_strategy": "random-ish"})


def test_wrong_python_types_raise_type_error(manager: kasm.Manager, store: kasm.Store) -> None:
    with pytest.raises(TypeError, match="session_id must be a str, not int"):
        manager.get_session(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="environment must map str to str"):
        manager.request_session("alice", "web", environment={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="zone must be a mapping"):
        manager.upsert_zone("local")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store must be a kasm.Store"):
        kasm.Manager("memory")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="states must be a collection of str"):
        manager.list_sessions(states="running")


def test_no_agent_means_resource_exhausted_and_nothing_left_running(manager: kasm.Manager, store: kasm.Store) -> None:
    add_workspace(manager)
    store.insert("user", {"id": "alice", "username": "alice"})
    with pytest.raises(kasm.ResourceExhausted):
        manager.request_session("alice", "web")
    assert manager.list_sessions(states=["requested", "provisioning", "running"]) == []
    assert manager.licensing.status().sessions_in_use == 0


def test_idempotency_keys_are_checked_and_a_refused_launch_takes_none(manager: kasm.Manager, store: kasm.Store) -> None:
    add_workspace(manager)
    store.insert("user", {"id": "alice", "username": "alice"})
    with pytest.raises(kasm.InvalidArgument, match="idempotency_key"):
        manager.request_session("alice", "web", idempotency_key="k" * 256)
    with pytest.raises(kasm.InvalidArgument, match="printable ASCII"):
        manager.request_session("alice", "web", idempotency_key="line\nbreak")
    with pytest.raises(TypeError, match="idempotency_key must be a str, not int"):
        manager.request_session("alice", "web", idempotency_key=7)  # type: ignore[arg-type]
    for _ in range(2):  # No agent: refused each time, nothing stored under the key.
        with pytest.raises(kasm.ResourceExhausted):
            manager.request_session("alice", "web", idempotency_key="k")
    assert manager.list_sessions() == []


def test_manager_after_close_raises_never_crashes(store: kasm.Store) -> None:
    m = kasm.Manager(store)
    lic = m.licensing
    m.close()
    assert m.closed
    with pytest.raises(kasm.FailedPrecondition, match="manager is closed"):
        m.get_session("x")
    with pytest.raises(kasm.FailedPrecondition, match="manager is closed"):
        m.tick()
    with pytest.raises(kasm.FailedPrecondition, match="manager is closed"):
        lic.status()
    m.close()  # Idempotent.


def test_store_closed_or_collected_before_its_manager_is_safe() -> None:
    s = kasm.open_store("memory")
    m = kasm.Manager(s, now_ms=1_700_000_000_000)
    m.upsert_zone({"id": "local", "name": "Local"})
    s.close()
    del s
    gc.collect()
    # The manager holds its own reference to the store.
    assert m.upsert_zone({"id": "second", "name": "Second"})["id"] == "second"
    m.tick()
    m.close()


def test_manager_collected_while_licensing_view_lives() -> None:
    m = kasm.Manager(kasm.open_store("memory"))
    lic = m.licensing
    del m
    gc.collect()
    assert lic.status().state == "community"


def test_close_while_another_thread_calls() -> None:
    m = kasm.Manager(kasm.open_store("memory"))
    errors: list = []

    def hammer() -> None:
        for _ in range(2000):
            try:
                m.tick()
            except kasm.FailedPrecondition:
                return
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)
                return

    t = threading.Thread(target=hammer)
    t.start()
    m.close()
    t.join()
    assert errors == []


def test_injected_clock_moves_only_when_told(manager: kasm.Manager) -> None:
    assert manager.now_ms() == 1_700_000_000_000
    manager.advance(1.5)
    assert manager.now_ms() == 1_700_000_001_500
    with pytest.raises(kasm.FailedPrecondition, match="system clock"):
        kasm.Manager(kasm.open_store("memory")).advance(1)


def test_licensing_status_of_the_community_edition(manager: kasm.Manager) -> None:
    status = manager.licensing.status()
    assert status.state == "community"
    assert status.limit == 5 and status.used == 0
    assert status.allows_new_session
    assert status.installation_id == manager.licensing.installation_id()
    assert not manager.licensing.has_feature("staging")
    with pytest.raises(kasm.PermissionDenied, match="staging"):
        manager.licensing.require_feature("staging")
    with pytest.raises(kasm.InvalidArgument):
        manager.licensing.add_license("garbage")


def test_unlimited_policy_has_no_limit() -> None:
    with kasm.Manager(kasm.open_store("memory"), unlimited_license=True) as m:
        status = m.licensing.status()
        assert status.limit is None and "staging" in status.features


def test_staging_pool_rows(manager: kasm.Manager, store: kasm.Store) -> None:
    add_workspace(manager)
    set_pool_size(store, "web-pool", workspace_id="web", zone_id="local", desired=3)
    assert get_pool_size(store, "web-pool") == 3
    set_pool_size(store, "web-pool", workspace_id="web", zone_id="local", desired=1)
    assert get_pool_size(store, "web-pool") == 1
    assert get_pool_size(store, "other") is None
    with pytest.raises(kasm.InvalidArgument):
        set_pool_size(store, "bad", workspace_id="web", zone_id="local", desired=-2)


def test_session_url_names_the_workspaces_protocol(manager: kasm.Manager, store: kasm.Store) -> None:
    # A desktop's upstream speaks RFB, not HTTP: its url says vnc://, a web workspace's http://.
    manager.upsert_workspace({"id": "desk", "friendly_name": "Desk", "image": "kasm/desktop:1", "port": 5901,
                              "protocol": "vnc", "resources": {"millicores": 500, "memory_bytes": 256 << 20}})
    add_workspace(manager)
    for ws, expected in (("desk", "vnc://127.0.0.1:40001"), ("web", "http://127.0.0.1:40001/")):
        store.insert("session", {"id": "s-" + ws, "user_id": "alice", "workspace_id": ws, "state": "running", "agent_id": "a1",
                                 "upstream": "127.0.0.1:40001"})
        assert manager.get_session("s-" + ws).url == expected
    assert kasm.Session.from_json('{"id": "x", "state": "running", "upstream": "h:1"}').url == "http://h:1/"
