// The autoscaler's REST calls (/api/v1/autoscale, permission agents:manage): configurations that
// keep machines running in a zone through a VM provider, the machines made for each, and the
// decisions taken with their reasons. Fields and their meaning: include/kasm/model/autoscale.hpp.
// Durations are milliseconds, times Unix milliseconds, capacities millicores and bytes.

import { call, data, enc, listAll, type Resources, type ServerConnectionType } from './api';

// A window in which the standby is kept, in the configuration's time zone: `days` 0 (Sunday) to 6
// (Saturday), empty = every day; "HH:MM" times, end "24:00" = midnight, an end at or before the
// start runs into the next day.
export interface AutoscaleSchedule {
  days: number[];
  start: string;
  end: string;
}

// What a machine's agent is told it has, instead of what it measures (absent or null: measured).
export interface ResourceOverrides {
  millicores?: number | null;
  memory_bytes?: number | null;
  gpus?: number | null;
}

// The autoscaler's latest word on a configuration: why it did, or did not, make or remove a machine.
export interface AutoscaleStatus {
  summary: string;
  error: string;
  at: number;
  // After a provider failure: no new try before then.
  backoff_until: number | null;
}

export interface AutoscaleConfig {
  id: string;
  name: string;
  zone_id: string;
  // Set: the machines become servers of this server pool; unset: Docker agents.
  pool_id?: string | null;
  enabled: boolean;
  provider: string;
  // A JSON object as a string; secret members come back as "********" (sending that keeps them).
  provider_config_json: string;
  standby: Resources;
  min_standby_sessions: number;
  min_instances: number;
  max_instances: number;
  downscale_backoff: number;
  provision_timeout: number;
  require_checkin: boolean;
  reusable: boolean;
  agent_overrides: ResourceOverrides;
  agent_labels: Record<string, string>;
  agent_publish_networks: string[];
  startup_script: string;
  server_connection_type: ServerConnectionType;
  server_port: number;
  server_max_sessions: number;
  server_connection_username: string;
  time_zone: string;
  schedules: AutoscaleSchedule[];
  created_at?: number;
  // Absent until the autoscaler has looked at the configuration.
  status?: AutoscaleStatus;
}

// What a create or an update sends. Objects are merged into what is stored (agent_labels too: a
// label is removed by sending it as null); arrays replace.
export type AutoscaleConfigWrite = Partial<Omit<AutoscaleConfig, 'id' | 'created_at' | 'status' | 'agent_labels'>> & {
  agent_labels?: Record<string, string | null>;
};

export type MachinePhase = 'creating' | 'booting' | 'ready' | 'draining' | 'destroying' | 'missing';

export interface AutoscaleMachine {
  id: string;
  config_id: string;
  zone_id: string;
  provider: string;
  instance_id: string;
  private_address: string;
  phase: MachinePhase | string;
  agent_id?: string | null;
  server_id?: string | null;
  // Why it is in its phase ("created; waiting for its agent to check in").
  reason: string;
  served?: boolean;
  created_at: number;
  ready_at?: number | null;
  idle_since?: number | null;
  updated_at?: number;
}

export interface AutoscaleDecision {
  id: string;
  config_id: string;
  zone_id: string;
  at: number;
  summary: string;
  // One line per machine made, drained or destroyed.
  actions: string[];
  // A provider failure, in the provider's words.
  error: string;
}

export const listAutoscale = () => listAll<AutoscaleConfig>('/autoscale');
export const getAutoscale = (id: string) => data(call<AutoscaleConfig>('GET', `/autoscale/${enc(id)}`));
export const createAutoscale = (c: AutoscaleConfigWrite) => data(call<AutoscaleConfig>('POST', '/autoscale', { body: c }));
export const patchAutoscale = (id: string, c: AutoscaleConfigWrite) =>
  data(call<AutoscaleConfig>('PATCH', `/autoscale/${enc(id)}`, { body: c }));
export const deleteAutoscale = (id: string) => data(call<void>('DELETE', `/autoscale/${enc(id)}`));

// Newest first.
export const listAutoscaleDecisions = (id: string, limit = 50) =>
  data(call<{ items: AutoscaleDecision[]; total: number }>('GET', `/autoscale/${enc(id)}/decisions`, { query: { limit } }));
// Oldest first.
export const listAutoscaleMachines = async (id: string) =>
  (await data(call<{ items: AutoscaleMachine[]; total: number }>('GET', `/autoscale/${enc(id)}/machines`))).items;

// The providers kasm-server registers itself (an embedder may add others; the API does not list them).
export const KNOWN_PROVIDERS = ['command', 'aws-ec2'];

// The value secret members of provider_config_json come back as; sending it keeps the stored secret.
export const SECRET_MASK = '********';
