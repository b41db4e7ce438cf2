// Manager: the session life cycle after launch (transitions, failure, teardown, pause and resume,
// keep-alive, activity, exec).

#include "kasm/manager/manager.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {

void Manager::Impl::noteClosed(const Session& s) {
  if (!options.on_session_closed) return;
  switch (s.state) {
    case SessionState::kStopping:
    case SessionState::kStopped:
    case SessionState::kPaused:
    case SessionState::kDestroyed:
    case SessionState::kFailed: try { options.on_session_closed(s.id, s.state);
      } catch (...) {
        // A listener's failure must not undo a stored change.
      }
      break;
    default: break;
  }
}

Result<Versioned<Session>> Manager::Impl::transition(const SessionId& id, SessionState next, std::string reason,
                                                     const std::function<void(Session&)>& mutate) {
  for (int attempt = 0; attempt < options.max_cas_retries; ++attempt) {
    KASM_ASSIGN_OR_RETURN(auto cur, repo.get<Session>(id.str()));
    if (cur.value.state != next) {
      KASM_RETURN_IF_ERROR(cur.value.transitionTo(next, reason, clock.now()));
    }
    if (mutate) mutate(cur.value);
    auto w = repo.update(cur.value, cur.version);
    if (w.ok()) {
      noteClosed(cur.value);
      return Versioned<Session>{cur.value, *w};
    }
    if (w.error().code() != ErrorCode::kAborted) return w.error();
  }
  return aborted("session " + id.str() + " kept changing");
}

Result<Session> Manager::Impl::failSession(Versioned<Session> s, std::string reason) {
  const bool held = holdsReservation(s.value.state);
  if (s.value.state == SessionState::kFailed || s.value.state == SessionState::kDestroyed) return s.value;
  if (!isAllowedTransition(s.value.state, SessionState::kFailed)) {
    return failedPrecondition("session " + s.value.id.str() + " cannot fail from " +
                              std::string(enumName(s.value.state)));
  }
  KASM_RETURN_IF_ERROR(s.value.transitionTo(SessionState::kFailed, std::move(reason), clock.now()));
  s.value.operational_message = s.value.state_reason;
  if (held && s.value.agent_id) {
    KASM_RETURN_IF_ERROR(commitWithReservation(s.value, s.version, *s.value.agent_id, s.value.resources, -1, false));
  } else if (held && s.value.server_id) {
    KASM_RETURN_IF_ERROR(commitServerEnd(s.value, s.version));
  } else {
    KASM_RETURN_IF_ERROR(repo.update(s.value, s.version));
    noteClosed(s.value);
  }
  unlockProfile(s.value);
  return s.value;
}

Result<Session> Manager::Impl::finishTeardown(Versioned<Session> s) {
  std::shared_ptr<spi::AgentLink> link = s.value.agent_id ? linkFor(*s.value.agent_id) : nullptr;
  const bool destroy = s.value.teardown == ExpirationAction::kDelete;
  if (link) {
    auto r = destroy ? link->destroy(s.value.id) : link->stop(s.value.id);
    if (!r.ok() && r.error().code() != ErrorCode::kNotFound) {
      // Leave it in `stopping`; the next tick or recovery retries. Nothing is released yet.
      return r.error().withContext("tearing down session " + s.value.id.str());
    }
  } else if (s.value.agent_id) {
    return unavailable("agent " + s.value.agent_id->str() + " is not connected; teardown of session " +
                       s.value.id.str() + " will be retried");
  }
  const SessionState end = destroy ? SessionState::kDestroyed : SessionState::kStopped;
  // The container is gone; the row may have changed meanwhile (activity, a share, another
  // server): commit the end on the current version, unless someone else already did.
  for (int attempt = 0;; ++attempt) {
    Session done = s.value;
    KASM_RETURN_IF_ERROR(done.transitionTo(end, done.state_reason, clock.now()));
    done.operational_message = std::string(enumName(end));
    auto committed = done.agent_id ? commitWithReservation(done, s.version, *done.agent_id, done.resources, -1, false)
                     : done.server_id ? commitServerEnd(done, s.version)
                                      : repo.update(done, s.version);
    if (committed.ok()) {
      if (end == SessionState::kDestroyed) unlockProfile(done);
      return done;
    }
    if (committed.error().code() != ErrorCode::kAborted || attempt + 1 >= options.max_cas_retries) {
      return committed.error();
    }
    KASM_ASSIGN_OR_RETURN(s, repo.get<Session>(s.value.id.str()));
    if (s.value.state != SessionState::kStopping) return s.value;
  }
}

Result<Session> Manager::getSession(const SessionId& id) {
  KASM_ASSIGN_OR_RETURN(auto s, impl_->repo.get<Session>(id.str()));
  return s.value;
}

Result<std::vector<Session>> Manager::listSessions(const spi::Query& query) {
  KASM_ASSIGN_OR_RETURN(auto rows, impl_->repo.list<Session>(query));
  std::vector<Session> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r.value));
  return out;
}

Result<Session> Manager::Impl::teardownAs(const SessionId& id, ExpirationAction action, std::string reason) {
  auto& im = *this;
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Session>(id.str()));
  if (cur.value.state == SessionState::kDestroyed) return cur.value;
  if (cur.value.state == SessionState::kRequested) {
    KASM_ASSIGN_OR_RETURN(auto v, im.transition(id, SessionState::kDestroyed, reason));
    return v.value;
  }
  // A fixed server's session has no container to keep: stopping it ends it.
  if (cur.value.server_id) action = ExpirationAction::kDelete;
  if (cur.value.state == SessionState::kStopped && action == ExpirationAction::kStop) return cur.value;
  if (cur.value.state == SessionState::kStopped || cur.value.state == SessionState::kFailed) {
    // Nothing reserved: remove what may remain of the container, then end.
    if (cur.value.agent_id) {
      if (auto link = im.linkFor(*cur.value.agent_id)) (void)link->destroy(id);
    }
    KASM_ASSIGN_OR_RETURN(auto v, im.transition(id, SessionState::kDestroyed, reason));
    return v.value;
  }
  KASM_ASSIGN_OR_RETURN(auto stopping,
                        im.transition(id, SessionState::kStopping, reason, [&](Session& s) { s.teardown = action; }));
  return im.finishTeardown(std::move(stopping));
}

Result<Session> Manager::destroySession(const SessionId& id, std::string reason) {
  return impl_->teardownAs(id, ExpirationAction::kDelete, std::move(reason));
}

Result<Session> Manager::stopSession(const SessionId& id, std::string reason) {
  return impl_->teardownAs(id, ExpirationAction::kStop, std::move(reason));
}

Result<Session> Manager::pauseSession(const SessionId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Session>(id.str()));
  if (cur.value.state == SessionState::kPaused) return cur.value;
  if (!isAllowedTransition(cur.value.state, SessionState::kPaused)) {
    return failedPrecondition("session " + id.str() + " is " + std::string(enumName(cur.value.state)) +
                              "; only a running session can be paused");
  }
  auto link = cur.value.agent_id ? im.linkFor(*cur.value.agent_id) : nullptr;
  if (!link) return unavailable("the session's agent is not connected");
  KASM_RETURN_IF_ERROR(link->pause(id));
  KASM_ASSIGN_OR_RETURN(auto v, im.transition(id, SessionState::kPaused, "paused"));
  return v.value;
}

Result<Session> Manager::resumeSession(const SessionId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Session>(id.str()));
  if (cur.value.state == SessionState::kRunning) return cur.value;
  if (cur.value.state == SessionState::kPaused) {
    auto link = cur.value.agent_id ? im.linkFor(*cur.value.agent_id) : nullptr;
    if (!link) return unavailable("the session's agent is not connected");
    KASM_RETURN_IF_ERROR(link->resume(id));
    KASM_ASSIGN_OR_RETURN(auto v, im.transition(id, SessionState::kRunning, "resumed"));
    return v.value;
  }
  if (cur.value.state == SessionState::kStopped && cur.value.agent_id) {
    // A stopped container restarts on its own agent: reserve there again first.
    Session s = cur.value;
    KASM_RETURN_IF_ERROR(s.transitionTo(SessionState::kProvisioning, "resuming", im.clock.now()));
    // Restarting a stopped container is a new start for the licence.
    KASM_ASSIGN_OR_RETURN(license::Grant grant, im.licensing.impl().grant());
    if (!grant.allowsNewSessions()) return *grant.refusal;
    {
      std::lock_guard lock(im.mu);
      KASM_RETURN_IF_ERROR(im.scheduler.reserve(*s.agent_id, s.resources));
    }
    auto committed = im.commitWithReservation(s, cur.version, *s.agent_id, s.resources, 1, true, &grant);
    if (!committed.ok()) {
      std::lock_guard lock(im.mu);
      (void)im.scheduler.release(*s.agent_id, s.resources);
      return committed.error();
    }
    // A restarted container gets a new host port from the engine, and the old one may soon belong
    // to another user's container: provision (idempotent, it starts the existing container) answers
    // with the new upstream, which replaces the stored one in the same write that makes it running.
    auto link = im.linkFor(*s.agent_id);
    auto ws = im.repo.get<Workspace>(s.workspace_id.str());
    Result<spi::ProvisionResult> r =
        !link      ? Result<spi::ProvisionResult>(unavailable("the session's agent is not connected"))
        : !ws.ok() ? Result<spi::ProvisionResult>(ws.error().withContext("the session's workspace"))
                   : link->provision(im.provisionRequestFor(s, ws->value, {}));
    if (!r.ok()) {
      KASM_ASSIGN_OR_RETURN(auto now_cur, im.repo.get<Session>(id.str()));
      (void)im.failSession(std::move(now_cur), "resume failed: " + r.error().message());
      return r.error();
    }
    KASM_ASSIGN_OR_RETURN(auto v, im.transition(id, SessionState::kRunning, "resumed", [&](Session& x) {
      x.container_id = r->container_id;
      x.container_name = r->container_name;
      x.upstream = r->upstream;
    }));
    return v.value;
  }
  return failedPrecondition("session " + id.str() + " is " + std::string(enumName(cur.value.state)) +
                            " and cannot be resumed");
}

Result<Session> Manager::keepalive(const SessionId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Session>(id.str()));
  if (!isLive(cur.value.state) || cur.value.isStaged()) {
    return failedPrecondition("session " + id.str() + " is " + std::string(enumName(cur.value.state)) +
                              "; keepalive needs a live session");
  }
  KASM_ASSIGN_OR_RETURN(GroupSettings settings, effectiveSettings(cur.value.user_id));
  KASM_ASSIGN_OR_RETURN(auto v, im.transition(id, cur.value.state, cur.value.state_reason, [&](Session& s) {
    const auto now = im.clock.now();
    s.keepalive_at = now;
    s.expires_at = now + settings.keepalive_expiration;
    if (s.hard_expires_at && *s.expires_at > *s.hard_expires_at) s.expires_at = s.hard_expires_at;
  }));
  return v.value;
}

Result<void> Manager::recordActivity(const SessionId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Session>(id.str()));
  KASM_ASSIGN_OR_RETURN(
      auto v, im.transition(id, cur.value.state, "", [&](Session& s) { s.last_activity_at = im.clock.now(); }));
  (void)v;
  return {};
}

Result<spi::ExecResult> Manager::execInSession(const SessionId& id, const spi::ExecRequest& request) {
  auto& im = *impl_;
  if (request.command.empty()) return invalidArgument("exec: command must not be empty");
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Session>(id.str()));
  if (cur.value.state != SessionState::kRunning) {
    return failedPrecondition("session " + id.str() + " is " + std::string(enumName(cur.value.state)) +
                              "; exec needs it running");
  }
  auto link = cur.value.agent_id ? im.linkFor(*cur.value.agent_id) : nullptr;
  if (!link) return unavailable("the session's agent is not connected");
  return link->exec(id, request);
}

}  // namespace kasm
