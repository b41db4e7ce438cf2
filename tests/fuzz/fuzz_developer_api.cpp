// Fuzzes Kasm's developer API (include/kasm/api/developer_api.hpp): JSON bodies of
// POST /api/public/<verb> as any client may send them.
//
// Input: [verb][credentials][body]. The verb is picked among DeveloperApi::verbs() (or, past them,
// an unknown name). Credentials: 0 leaves the body as it is; 1, 2, 3 set api_key/api_key_secret of
// the admin, sessions-only and read-only keys when the body is a JSON object, so the fuzzer reaches
// the verbs' argument parsing without having to find a key; 4 sends the admin key as HTTP Basic.
// Checked: a status between 200 and 599, never 500 (bad input is the caller's error), and a JSON
// body (an object) whenever the content type says JSON.

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api_world.hpp"
#include "fuzz_check.hpp"
#include "kasm/api/developer_api.hpp"

namespace {

namespace json = boost::json;

std::string withKey(std::string_view body, const char* key, const char* secret) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::string(body);
  v.as_object()["api_key"] = key;
  v.as_object()["api_key_secret"] = secret;
  return json::serialize(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const auto verbs = kasm::api::DeveloperApi::verbs();
  const std::size_t pick = data[0] % (verbs.size() + 1);
  const std::string_view verb = pick < verbs.size() ? verbs[pick].name : std::string_view("no_such_verb");
  std::string body(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::string authorization;
  switch (data[1] % 5) {
    case 1: body = withKey(body, "admin-key", "admin-secret"); break;
    case 2: body = withKey(body, "sessions-key", "sessions-secret"); break;
    case 3: body = withKey(body, "ro-key", "ro-secret"); break;
    case 4: authorization = "Basic YWRtaW4ta2V5OmFkbWluLXNlY3JldA=="; break;  // admin-key:admin-secret
    default: break;
  }

  kasm::fuzzing::ApiWorld world;
  kasm::api::DeveloperApi api(*world.manager, *world.store, world.clock, world.signer);
  const auto r = api.handle(verb, body, authorization);
  FUZZ_CHECK(r.status >= 200 && r.status <= 599);
  FUZZ_CHECK(r.status != 500);
  if (r.content_type == "application/json") {
    boost::system::error_code ec;
    const json::value v = json::parse(r.body, ec);
    FUZZ_CHECK(!ec && v.is_object());
  }
  return 0;
}
