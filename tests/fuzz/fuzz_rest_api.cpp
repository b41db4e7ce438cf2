// Fuzzes the REST API (include/kasm/api/rest_api.hpp): method, path, query parameters and JSON body
// as any client may send them, with or without credentials.
//
// Input: [method][credentials][path?query LF body]. Credentials: 0 none; 1, 2, 3 the admin,
// sessions-only and read-only API keys as a bearer header; 4, 5 the login cookie and CSRF token of
// alice and of root (an admin); 6 root's cookie without the CSRF token. The query is split at '&'
// and '=' as the HTTP layer does (after it decoded them). Checked: a status between 200 and 599,
// never 500, and a body that is empty or a JSON value.

#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api_world.hpp"
#include "fuzz_check.hpp"
#include "kasm/api/rest_api.hpp"

namespace {

namespace json = boost::json;

constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  kasm::fuzzing::ApiWorld world;

  kasm::api::RestRequest req;
  req.method = std::string(kMethods[data[0] % std::size(kMethods)]);
  const auto lf = rest.find('\n');
  const std::string_view target = rest.substr(0, lf);
  req.body = lf == std::string_view::npos ? std::string() : std::string(rest.substr(lf + 1));
  const auto q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const auto part = query.substr(0, amp);
      const auto eq = part.find('=');
      req.query.emplace_back(std::string(part.substr(0, eq)),
                             eq == std::string_view::npos ? std::string() : std::string(part.substr(eq + 1)));
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
  }
  req.content_type = "application/json";
  req.remote_address = "192.0.2.1";
  auto browser = [&](const char* user, bool csrf) {
    req.cookie_token = world.web_signer.issue(kasm::UserId(user), std::chrono::hours(1), "nonce");
    if (csrf) req.csrf_token = world.web_signer.csrfToken(req.cookie_token);
  };
  switch (data[1] % 7) {
    case 1: req.authorization = "Bearer admin-key:admin-secret"; break;
    case 2: req.authorization = "Bearer sessions-key:sessions-secret"; break;
    case 3: req.authorization = "Bearer ro-key:ro-secret"; break;
    case 4: browser("alice", true); break;
    case 5: browser("root", true); break;
    case 6: browser("root", false); break;
    default: break;
  }

  kasm::api::RestApiOptions options;
  options.verify_password = &kasm::fuzzing::ApiWorld::passwordMatches;
  kasm::api::RestApi api(*world.manager, *world.store, world.clock, world.signer, world.web_signer, options);
  const auto r = api.handle(req);
  FUZZ_CHECK(r.status >= 200 && r.status <= 599);
  FUZZ_CHECK(r.status != 500);
  if (!r.body.empty()) {
    boost::system::error_code ec;
    (void)json::parse(r.body, ec);
    if (ec) std::fprintf(stderr, "status %d, body: %s\n", r.status, r.body.c_str());
    FUZZ_CHECK(!ec);
  }
  return 0;
}
