#pragma once

// kasm::command: the "command" VM provider (kasm/spi/vm_provider.hpp). It plugs any hypervisor or
// cloud (Proxmox, vSphere, libvirt, a script) into the autoscaler through executables that an
// administrator configures, one per operation. scripts/vm-providers/directory-vms.py is a reference
// implementation to read and adapt.
//
// Configuration (the provider_config_json object; unknown fields are refused):
//   "create", "destroy", "list": required; "status": optional. Each an array of strings: the first
//       is the ABSOLUTE path of an executable file (checked when the configuration is read), the
//       others are its arguments, passed verbatim (never through a shell).
//       Without "status", status() runs "list" with no tags and picks the machine by its id.
//   "timeout_seconds": 1..3600, default 120. The time one run may take.
//   "environment": {"NAME": "value", ...}, extra environment variables.
//   "working_directory": an absolute path to an existing directory, default "/".
//
// How an executable is run:
//   - Its environment is ONLY PATH=/usr/sbin:/usr/bin:/sbin:/bin plus "environment" (which may
//     replace PATH). Nothing of the server's own environment, and so none of its secrets, is passed.
//   - It runs in a new process group, with default signal dispositions and an empty signal mask.
//   - It reads ONE JSON object (UTF-8) on stdin, the request, then sees end of file.
//   - It writes ONE JSON object on stdout, the answer (at most 4 MiB; only what it wrote before it
//     exited counts), and exits. Diagnostics go to stderr (the last 64 KiB are kept).
//   - Once "timeout_seconds" passes, its process group gets SIGTERM, and SIGKILL 5 s later if it has
//     not exited; what remains of the group when it exits is then killed. A script that starts a
//     long-lived process (a "machine") must start it in a session of its own (setsid) with its
//     stdio redirected, or a timeout would take that process down with it.
//   - Calls may run concurrently (the autoscaler serialises those of one configuration, but several
//     configurations may share the scripts); scripts must lock what they share.
//
// Exit status:
//   0   success; the answer on stdout is used.
//   2   InvalidArgument: the request or the configuration is wrong; an administrator must act.
//   3   NotFound: status of an unknown id (for destroy, 3 means success: the machine is gone).
//   4   ResourceExhausted: a quota or throttling; retried after a longer backoff.
//   75  (EX_TEMPFAIL) Unavailable: try again later.
//   any other non-zero status, or death by a signal: Unavailable.
// Error messages name the operation, the executable, the exit status and the last 2 KiB of stderr.
// A timeout is Unavailable ("timed out after N s"); an answer that is not a JSON object, a field of
// the wrong type or an unknown state is Unavailable naming the field; an executable missing at run
// time is FailedPrecondition.
//
// Requests and answers (fields marked ? may be absent or null; unknown answer fields are ignored):
//   create   {"operation": "create", "name": "kasm-east-1a2b3c", "client_token": "...",
//             "user_data": "#!/bin/sh ...", "tags": {"kasm:installation": "...", ...}}
//         -> {"id": "...", "state"?: "pending", "private_address"?: "10.0.0.7", "tags"?: {...},
//             "launched_at"?: 1700000000000}
//            The machine must carry all the tags, so that list finds it. client_token is an
//            idempotency key: a second create with the same token must answer the machine the first
//            one made (and make no other). state defaults to "pending"; tags default to the request's.
//   destroy  {"operation": "destroy", "id": "..."}  ->  {} (or nothing at all)
//            An unknown or already destroyed id is success.
//   list     {"operation": "list", "tags": {"key": "value", ...}}
//         -> {"instances": [instance, ...]}
//            Every machine carrying all the tags (key and value); terminated ones may be included for
//            a while. The provider also drops any instance not carrying them, so a script may list
//            all its machines. An empty "tags" object asks for every machine.
//   status   {"operation": "status", "id": "..."}  ->  instance, or exit status 3 when not found.
//   instance {"id": "...", "state": "running", "private_address"?: "10.0.0.7",
//             "tags"?: {"key": "value", ...}, "launched_at"?: 1700000000000}
//            "id" is a non-empty string (in a status answer it may be omitted, and must otherwise be
//            the id asked for). "state" is one of pending, running, stopping, stopped, terminated,
//            unknown. "launched_at" is Unix time in milliseconds, as every kasm time.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kasm/core/result.hpp"
#include "kasm/spi/vm_provider.hpp"

namespace kasm::command {

// The name the provider registers under.
inline constexpr const char* kCommandProviderName = "command";

struct CommandProviderOptions {
  std::vector<std::string> create;                 // argv; argv[0] an absolute path to an executable file.
  std::vector<std::string> destroy;                // argv.
  std::vector<std::string> list;                   // argv.
  std::vector<std::string> status;                 // argv; empty: status() runs list and picks the id.
  std::chrono::seconds timeout{120};               // 1..3600 s.
  std::map<std::string, std::string> environment;  // Extra variables; names [A-Za-z_][A-Za-z0-9_]*.
  std::string working_directory = "/";             // Absolute, an existing directory.
};

// Reads the provider_config_json object described above. InvalidArgument naming the field for
// malformed JSON, a missing required field, an unknown field, a wrong type, a timeout out of range,
// a relative path, or an executable (or working directory) that does not exist or cannot be run.
Result<CommandProviderOptions> parseCommandProviderOptions(const std::string& json);

// Checks options built in code by the rules parseCommandProviderOptions applies.
Result<void> validateCommandProviderOptions(const CommandProviderOptions& options);

// A provider running the configured executables. InvalidArgument when the options are invalid.
// The provider is thread-safe: concurrent calls each run their own process.
Result<std::unique_ptr<spi::VmProvider>> makeCommandProvider(CommandProviderOptions options);

// Registers "command": parseCommandProviderOptions then makeCommandProvider. AlreadyExists when the
// name is taken.
Result<void> registerCommandProvider(spi::VmProviderRegistry& registry);

}  // namespace kasm::command
