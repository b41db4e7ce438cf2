#pragma once

// Field lists of the model types, written once and used by the JSON codec in both directions.
// Private to the library.

#include "kasm/model/model.hpp"

namespace kasm {

template <class V>
void describe(Resources& r, V& v) {
  v("millicores", r.millicores);
  v("memory_bytes", r.memory_bytes);
  v("gpus", r.gpus);
}
template <class V>
void describe(ExecHook& h, V& v) {
  v("cmd", h.cmd);
  v("user", h.user);
  v("privileged", h.privileged);
  v("workdir", h.workdir);
  v("environment", h.environment);
}
template <class V>
void describe(ExecConfig& c, V& v) {
  v("first_launch", c.first_launch);
  v("go", c.go);
  v("assign", c.assign);
}
template <class V>
void describe(VolumeMapping& m, V& v) {
  v("source", m.source);
  v("target", m.target);
  v("mode", m.mode);
  v("uid", m.uid);
  v("gid", m.gid);
}
template <class V>
void describe(Workspace& w, V& v) {
  v("id", w.id);
  v("type", w.type);
  v("enabled", w.enabled);
  v("friendly_name", w.friendly_name);
  v("description", w.description);
  v("categories", w.categories);
  v("thumbnail_url", w.thumbnail_url);
  v("image", w.image);
  v("resources", w.resources);
  v("cpu_allocation", w.cpu_allocation);
  v("run_config_json", w.run_config_json);
  v("exec_config", w.exec_config);
  v("volumes", w.volumes);
  v("port", w.port);
  v("protocol", w.protocol);
  v("path", w.path);
  v("persistent_profile_path", w.persistent_profile_path);
  v("persistent_profile_target", w.persistent_profile_target);
  v("restrict_to_zone", w.restrict_to_zone);
  v("restrict_to_agent", w.restrict_to_agent);
  v("restrict_to_network", w.restrict_to_network);
  v("include_labels", w.include_labels);
  v("exclude_labels", w.exclude_labels);
  v("server_id", w.server_id);
  v("server_pool_id", w.server_pool_id);
  v("link_url", w.link_url);
  v("session_time_limit", w.session_time_limit);
  v("group_ids", w.group_ids);
  v("created_at", w.created_at);
  v("updated_at", w.updated_at);
}
template <class V>
void describe(ZoneProxySettings& p, V& v) {
  v("hostname", p.hostname);
  v("port", p.port);
  v("path", p.path);
}
template <class V>
void describe(Zone& z, V& v) {
  v("id", z.id);
  v("name", z.name);
  v("load_strategy", z.load_strategy);
  v("search_alternate_zones", z.search_alternate_zones);
  v("prioritize_static_agents", z.prioritize_static_agents);
  v("proxy", z.proxy);
  v("gateway", z.gateway);
  v("created_at", z.created_at);
}
template <class V>
void describe(ResourceOverrides& o, V& v) {
  v("millicores", o.millicores);
  v("memory_bytes", o.memory_bytes);
  v("gpus", o.gpus);
}
template <class V>
void describe(Agent& a, V& v) {
  v("id", a.id);
  v("hostname", a.hostname);
  v("zone_id", a.zone_id);
  v("kind", a.kind);
  v("autoscale_config_id", a.autoscale_config_id);
  v("labels", a.labels);
  v("enabled", a.enabled);
  v("draining", a.draining);
  v("status", a.status);
  v("overrides", a.overrides);
  v("reported", a.reported);
  v("reserved", a.reserved);
  v("session_count", a.session_count);
  v("cpu_utilization", a.cpu_utilization);
  v("memory_used_bytes", a.memory_used_bytes);
  v("images", a.images);
  v("api_address", a.api_address);
  v("publish_networks", a.publish_networks);
  v("tunnel_gateway", a.tunnel_gateway);
  v("token_hash", a.token_hash);
  v("token_expires_at", a.token_expires_at);
  v("agent_version", a.agent_version);
  v("registered_at", a.registered_at);
  v("last_checkin", a.last_checkin);
}
template <class V>
void describe(Session& s, V& v) {
  v("id", s.id);
  v("user_id", s.user_id);
  v("workspace_id", s.workspace_id);
  v("zone_id", s.zone_id);
  v("agent_id", s.agent_id);
  v("server_id", s.server_id);
  v("staging_config_id", s.staging_config_id);
  v("state", s.state);
  v("state_reason", s.state_reason);
  v("teardown", s.teardown);
  v("operational_message", s.operational_message);
  v("progress", s.progress);
  v("resources", s.resources);
  v("container_id", s.container_id);
  v("container_name", s.container_name);
  v("upstream", s.upstream);
  v("connection_sealed", s.connection_sealed);
  v("profile", s.profile);
  v("share", s.share);
  v("permissions", s.permissions);
  v("launch_environment", s.launch_environment);
  v("launch_key", s.launch_key);
  v("created_at", s.created_at);
  v("state_changed_at", s.state_changed_at);
  v("started_at", s.started_at);
  v("keepalive_at", s.keepalive_at);
  v("last_activity_at", s.last_activity_at);
  v("expires_at", s.expires_at);
  v("hard_expires_at", s.hard_expires_at);
}
template <class V>
void describe(SessionShare& s, V& v) {
  v("sealed_id", s.sealed_id);
  v("lookup", s.lookup);
  v("created_by", s.created_by);
  v("created_at", s.created_at);
  v("expires_at", s.expires_at);
}
template <class V>
void describe(SessionPermission& p, V& v) {
  v("user_id", p.user_id);
  v("username", p.username);
  v("access", p.access);
  v("granted_at", p.granted_at);
}
template <class V>
void describe(ShareIndex& s, V& v) {
  v("lookup", s.lookup);
  v("session_id", s.session_id);
  v("created_at", s.created_at);
}
template <class V>
void describe(GroupSettings& g, V& v) {
  v("max_sessions_per_user", g.max_sessions_per_user);
  v("keepalive_expiration", g.keepalive_expiration);
  v("keepalive_expiration_action", g.keepalive_expiration_action);
  v("session_time_limit", g.session_time_limit);
  v("idle_disconnect", g.idle_disconnect);
  v("allow_sharing", g.allow_sharing);
  v("shared_session_full_control", g.shared_session_full_control);
  v("allow_clipboard_down", g.allow_clipboard_down);
  v("allow_clipboard_up", g.allow_clipboard_up);
  v("allow_downloads", g.allow_downloads);
  v("allow_uploads", g.allow_uploads);
  v("allow_audio", g.allow_audio);
  v("allow_microphone", g.allow_microphone);
  v("file_transfer_limit_mb", g.file_transfer_limit_mb);
  v("allow_persistent_profile", g.allow_persistent_profile);
  v("default_workspace", g.default_workspace);
}
template <class V>
void describe(Group& g, V& v) {
  v("id", g.id);
  v("name", g.name);
  v("description", g.description);
  v("priority", g.priority);
  v("permissions", g.permissions);
  v("settings", g.settings);
  v("created_at", g.created_at);
}
template <class V>
void describe(User& u, V& v) {
  v("id", u.id);
  v("username", u.username);
  v("first_name", u.first_name);
  v("last_name", u.last_name);
  v("email", u.email);
  v("organization", u.organization);
  v("phone", u.phone);
  v("password_hash", u.password_hash);
  v("group_ids", u.group_ids);
  v("disabled", u.disabled);
  v("locked", u.locked);
  v("created_at", u.created_at);
  v("last_login_at", u.last_login_at);
  v("sessions_valid_after", u.sessions_valid_after);
  v("attributes", u.attributes);
}
template <class V>
void describe(UserAttributes& a, V& v) {
  v("ssh_public_key", a.ssh_public_key);
  v("show_tips", a.show_tips);
  v("toggle_control_panel", a.toggle_control_panel);
  v("chat_sfx", a.chat_sfx);
  v("default_image", a.default_image);
  v("auto_login_kasm", a.auto_login_kasm);
  v("preferred_language", a.preferred_language);
  v("preferred_timezone", a.preferred_timezone);
}
template <class V>
void describe(ApiKey& k, V& v) {
  v("id", k.id);
  v("name", k.name);
  v("key", k.key);
  v("secret_hash", k.secret_hash);
  v("permissions", k.permissions);
  v("read_only", k.read_only);
  v("enabled", k.enabled);
  v("owner", k.owner);
  v("expires_at", k.expires_at);
  v("created_at", k.created_at);
  v("last_used_at", k.last_used_at);
}
template <class V>
void describe(ServerSlot& s, V& v) {
  v("session_id", s.session_id);
  v("user_id", s.user_id);
}
template <class V>
void describe(Server& s, V& v) {
  v("id", s.id);
  v("friendly_name", s.friendly_name);
  v("hostname", s.hostname);
  v("port", s.port);
  v("connection_type", s.connection_type);
  v("zone_id", s.zone_id);
  v("pool_id", s.pool_id);
  v("enabled", s.enabled);
  v("max_simultaneous_sessions", s.max_simultaneous_sessions);
  v("connection_username", s.connection_username);
  v("connection_domain", s.connection_domain);
  v("connection_password_sealed", s.connection_password_sealed);
  v("connection_private_key_sealed", s.connection_private_key_sealed);
  v("rdp_security", s.rdp_security);
  v("certificate_policy", s.certificate_policy);
  v("keyboard_layout", s.keyboard_layout);
  v("assigned_user_id", s.assigned_user_id);
  v("slots", s.slots);
  v("status", s.status);
  v("status_reason", s.status_reason);
  v("last_checked_at", s.last_checked_at);
  v("last_seen_at", s.last_seen_at);
  v("created_at", s.created_at);
}
template <class V>
void describe(ServerPool& p, V& v) {
  v("id", p.id);
  v("name", p.name);
  v("type", p.type);
  v("created_at", p.created_at);
}
template <class V>
void describe(StagingConfig& c, V& v) {
  v("id", c.id);
  v("workspace_id", c.workspace_id);
  v("zone_id", c.zone_id);
  v("desired", c.desired);
  v("expiration", c.expiration);
  v("enabled", c.enabled);
  v("created_at", c.created_at);
}
template <class V>
void describe(AutoscaleSchedule& s, V& v) {
  v("days", s.days);
  v("start", s.start);
  v("end", s.end);
}
template <class V>
void describe(AutoscaleConfig& c, V& v) {
  v("id", c.id);
  v("name", c.name);
  v("zone_id", c.zone_id);
  v("pool_id", c.pool_id);
  v("enabled", c.enabled);
  v("provider", c.provider);
  v("provider_config_json", c.provider_config_json);
  v("standby", c.standby);
  v("min_standby_sessions", c.min_standby_sessions);
  v("min_instances", c.min_instances);
  v("max_instances", c.max_instances);
  v("downscale_backoff", c.downscale_backoff);
  v("provision_timeout", c.provision_timeout);
  v("require_checkin", c.require_checkin);
  v("reusable", c.reusable);
  v("agent_overrides", c.agent_overrides);
  v("agent_labels", c.agent_labels);
  v("agent_publish_networks", c.agent_publish_networks);
  v("startup_script", c.startup_script);
  v("server_connection_type", c.server_connection_type);
  v("server_port", c.server_port);
  v("server_max_sessions", c.server_max_sessions);
  v("server_connection_username", c.server_connection_username);
  v("time_zone", c.time_zone);
  v("schedules", c.schedules);
  v("created_at", c.created_at);
}
template <class V>
void describe(AutoscaleVm& m, V& v) {
  v("id", m.id);
  v("config_id", m.config_id);
  v("zone_id", m.zone_id);
  v("provider", m.provider);
  v("instance_id", m.instance_id);
  v("private_address", m.private_address);
  v("phase", m.phase);
  v("agent_id", m.agent_id);
  v("server_id", m.server_id);
  v("reason", m.reason);
  v("served", m.served);
  v("registration_token_sealed", m.registration_token_sealed);
  v("created_at", m.created_at);
  v("ready_at", m.ready_at);
  v("idle_since", m.idle_since);
  v("updated_at", m.updated_at);
}
template <class V>
void describe(AutoscaleDecision& d, V& v) {
  v("id", d.id);
  v("config_id", d.config_id);
  v("zone_id", d.zone_id);
  v("at", d.at);
  v("summary", d.summary);
  v("actions", d.actions);
  v("error", d.error);
}
template <class V>
void describe(ManagerNode& m, V& v) {
  v("id", m.id);
  v("hostname", m.hostname);
  v("url", m.url);
  v("enabled", m.enabled);
  v("zones", m.zones);
  v("leading", m.leading);
  v("version", m.version);
  v("started_at", m.started_at);
  v("heartbeat_at", m.heartbeat_at);
}
template <class V>
void describe(Lease& l, V& v) {
  v("name", l.name);
  v("holder", l.holder);
  v("expires_at", l.expires_at);
  v("acquired_at", l.acquired_at);
  v("epoch", l.epoch);
}
template <class V>
void describe(AgentCommandRow& c, V& v) {
  v("id", c.id);
  v("agent_id", c.agent_id);
  v("issuer", c.issuer);
  v("state", c.state);
  v("command", c.command);
  v("result", c.result);
  v("sent_by", c.sent_by);
  v("agent_boot", c.agent_boot);
  v("deliveries", c.deliveries);
  v("queued_at", c.queued_at);
  v("sent_at", c.sent_at);
  v("expires_at", c.expires_at);
}
template <class V>
void describe(LicenseRecord& l, V& v) {
  v("id", l.id);
  v("armored", l.armored);
  v("customer", l.customer);
  v("installation_id", l.installation_id);
  v("type", l.type);
  v("limit", l.limit);
  v("features", l.features);
  v("not_before", l.not_before);
  v("expires_at", l.expires_at);
  v("added_at", l.added_at);
}
template <class V>
void describe(Setting& s, V& v) {
  v("key", s.key);
  v("value", s.value);
  v("updated_at", s.updated_at);
}

}  // namespace kasm
