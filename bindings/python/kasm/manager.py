"""The manager: places sessions on agents and runs their life cycle."""

from __future__ import annotations

import json
import time
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _core
from ._handle import ClosingHandle
from ._checks import check_int, check_optional_str, check_str, check_str_map, model_json
from .errors import DeadlineExceeded, KasmError
from .licensing import Licensing
from .models import Model, Session
from .store import Store

__all__ = ["Manager"]

_TERMINAL = frozenset({"destroyed", "failed"})


class Manager(ClosingHandle):
    """A kasm manager over a store, with in-process Docker agents.

    Every method may block (store, Docker) and releases the GIL while it runs, so other Python
    threads keep going. A blocking call cannot be interrupted half-way: Ctrl-C (KeyboardInterrupt)
    is raised as soon as the call returns. Loops in this package (:meth:`wait_for_session`) sleep in
    short steps, so Ctrl-C stops them at once.

    The manager holds its own reference to the store, so closing or dropping the :class:`Store`
    first is safe. After :meth:`close`, every call raises FailedPrecondition ("manager is closed").

    ``now_ms`` injects a manual clock starting at that Unix time in milliseconds (tests and
    simulations move it with :meth:`advance`); without it the system clock is used.
    ``unlimited_license`` lifts the community limits (5 sessions, no staging pools) for embedders
    that do not license per seat.
    """

    def __init__(
        self,
        store: Store,
        *,
        now_ms: Optional[int] = None,
        unlimited_license: bool = False,
        session_secret_key: str = "",
        community_session_limit: Optional[int] = None,
    ) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a kasm.Store, not {type(store).__name__}")
        if now_ms is not None:
            check_int(now_ms, "now_ms")
        if community_session_limit is not None:
            check_int(community_session_limit, "community_session_limit")
        self._h = _core.Manager(
            store._h,
            now_ms,
            bool(unlimited_license),
            check_str(session_secret_key, "session_secret_key"),
            -1 if community_session_limit is None else community_session_limit,
        )
        self._licensing = Licensing(_core.Licensing(self._h))
        self._store = store

    def _session(self, text: str) -> Session:
        """A session with its workspace's protocol, so that ``Session.url`` names the right scheme."""
        workspace_id = json.loads(text).get("workspace_id", "")
        protocol: Optional[str] = None
        try:
            protocol = self._store.get("workspace", workspace_id).value.get("protocol")
        except KasmError:
            pass  # A deleted workspace: the url falls back to http.
        return Session.from_json(text, protocol)

    # ---- life ----
    def __repr__(self) -> str:
        return f"<kasm.Manager {'closed' if self.closed else 'open'}>"

    # ---- clock ----
    def now_ms(self) -> int:
        return self._h.now_ms()

    def set_now_ms(self, now_ms: int) -> None:
        """Sets the injected clock (FailedPrecondition on the system clock)."""
        self._h.set_now_ms(check_int(now_ms, "now_ms"))

    def advance(self, seconds: float) -> None:
        """Moves the injected clock forward (FailedPrecondition on the system clock)."""
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
        self._h.advance_ms(int(seconds * 1000))

    # ---- zones, workspaces, agents ----
    def upsert_zone(self, zone: Mapping[str, Any]) -> Model:
        """Creates or replaces a zone (``{"id": "local", "name": "Local"}``)."""
        return json.loads(self._h.upsert_zone(model_json(zone, "zone")))

    def upsert_workspace(self, workspace: Mapping[str, Any]) -> Model:
        """Creates or replaces a workspace; an empty id gets a generated one."""
        return json.loads(self._h.upsert_workspace(model_json(workspace, "workspace")))

    def register_agent(self, agent: Mapping[str, Any]) -> Tuple[Model, str]:
        """Registers a (remote) agent; returns it and its token, which is shown only once."""
        text, token = self._h.register_agent(model_json(agent, "agent"))
        return json.loads(text), token

    def set_agent_availability(self, agent_id: str, *, enabled: bool = True, draining: bool = False) -> Model:
        return json.loads(self._h.set_agent_availability(check_str(agent_id, "agent_id"), bool(enabled), bool(draining)))

    def add_docker_agent(
        self,
        zone_id: str,
        *,
        hostname: str = "localhost",
        docker_host: Optional[str] = None,
        publish_host: str = "127.0.0.1",
        probe_attempts: int = 600,
        agent_id: Optional[str] = None,
    ) -> Model:
        """Runs an in-process agent on a Docker engine (``docker_host`` or DOCKER_HOST, default the
        local socket), registers it in ``zone_id``, links it and checks it in. Returns the agent.
        Unavailable when the engine does not answer."""
        return json.loads(
            self._h.add_docker_agent(
                check_str(zone_id, "zone_id"),
                check_str(hostname, "hostname"),
                check_optional_str(docker_host, "docker_host") or "",
                check_str(publish_host, "publish_host"),
                check_int(probe_attempts, "probe_attempts"),
                check_optional_str(agent_id, "agent_id") or "",
            )
        )

    def check_in_docker_agents(self) -> List[Model]:
        """Reports each Docker agent's capacity and images to the manager (a server does this every
        few seconds; agents that stay silent turn missing, then dead)."""
        return [json.loads(t) for t in self._h.check_in_docker_agents()]

    def reconcile_docker_agents(self) -> None:
        """Fails sessions whose container vanished and removes containers the store does not know."""
        self._h.reconcile_docker_agents()

    # ---- sessions ----
    def request_session(
        self,
        user_id: str,
        workspace_id: str,
        *,
        zone_id: Optional[str] = None,
        environment: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Session:
        """Places and starts a session; returns it ``running``. Blocks until the container answers.
        ResourceExhausted when no agent fits or a licence limit is reached. With
        ``idempotency_key`` (at most 255 printable ASCII characters), a retry with the key of an
        earlier launch of the user starts nothing and returns that session as it is now."""
        return self._session(
            self._h.request_session(
                check_str(user_id, "user_id"),
                check_str(workspace_id, "workspace_id"),
                check_optional_str(zone_id, "zone_id"),
                check_str_map(environment, "environment"),
                check_optional_str(idempotency_key, "idempotency_key") or "",
            )
        )

    def get_session(self, session_id: str) -> Session:
        return self._session(self._h.get_session(check_str(session_id, "session_id")))

    def list_sessions(
        self,
        *,
        states: Optional[Collection[str]] = None,
        user_id: Optional[str] = None,
        workspace_id: Optional[str] = None,
    ) -> List[Session]:
        where: Dict[str, str] = {}
        if user_id is not None:
            where["user_id"] = check_str(user_id, "user_id")
        if workspace_id is not None:
            where["workspace_id"] = check_str(workspace_id, "workspace_id")
        if isinstance(states, str):
            raise TypeError("states must be a collection of str, not a str")
        state_list = [check_str(s, "states[]") for s in (states or [])]
        return [self._session(t) for t in self._h.list_sessions(where, state_list)]

    def keepalive(self, session_id: str) -> Session:
        """Extends the session's keepalive expiry (never past its hard limit)."""
        return self._session(self._h.keepalive(check_str(session_id, "session_id")))

    def destroy_session(self, session_id: str, reason: str = "deleted by request") -> Session:
        return self._session(self._h.destroy_session(check_str(session_id, "session_id"), check_str(reason, "reason")))

    def stop_session(self, session_id: str, reason: str = "stopped by request") -> Session:
        return self._session(self._h.stop_session(check_str(session_id, "session_id"), check_str(reason, "reason")))

    def pause_session(self, session_id: str) -> Session:
        return self._session(self._h.pause_session(check_str(session_id, "session_id")))

    def resume_session(self, session_id: str) -> Session:
        return self._session(self._h.resume_session(check_str(session_id, "session_id")))

    def exec_in_session(self, session_id: str, command: Sequence[str]) -> Tuple[int, str]:
        """Runs argv in the session's container; returns (exit code, output)."""
        if isinstance(command, str) or not all(isinstance(a, str) for a in command):
            raise TypeError("command must be a sequence of str (argv), e.g. ['sh', '-c', 'echo hi']")
        return tuple(self._h.exec_in_session(check_str(session_id, "session_id"), list(command)))  # type: ignore[return-value]

    def wait_for_session(
        self, session_id: str, states: Collection[str] = ("running",), *, timeout: float = 60.0, poll: float = 0.1
    ) -> Session:
        """Polls until the session reaches one of ``states``; DeadlineExceeded after ``timeout``
        seconds, or as soon as it ends in a state it can never leave. Ctrl-C interrupts it at once."""
        deadline = time.monotonic() + timeout
        while True:
            session = self.get_session(session_id)
            if session.state in states:
                return session
            if session.state in _TERMINAL:
                raise DeadlineExceeded(f"session {session_id} ended {session.state}: {session.state_reason}")
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(f"session {session_id} is still {session.state} after {timeout} s")
            time.sleep(poll)

    def vnc_password(self, session_id: str) -> Optional[str]:
        return self._h.vnc_password(check_str(session_id, "session_id"))

    # ---- background work ----
    def tick(self) -> Dict[str, int]:
        """Agent liveness, session expiry and staging pools, once. A server calls it every few
        seconds; returns what changed (``agents_missing``, ``sessions_expired``, ``staged_launched``, ...)."""
        return dict(self._h.tick())

    @property
    def licensing(self) -> Licensing:
        return self._licensing
