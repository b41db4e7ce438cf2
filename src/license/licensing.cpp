#include "kasm/license/licensing.hpp"

#include <algorithm>
#include <charconv>

#include "kasm/license/installation.hpp"
#include "kasm/license/text.hpp"
#include "license/armor.hpp"
#include "license/licensing_impl.hpp"

namespace kasm::license {
namespace {

// The high-water mark is written at most this often, so it is not a hot row.
constexpr Duration kHighWaterStep = std::chrono::minutes(1);
constexpr std::size_t kVerifiedCacheMax = 256;

std::string describe(const LicenseDocument& d) {
  return "license " + d.id.str() + " of " + d.customer;
}

std::string unitName(LicenseType t) {
  return t == LicenseType::kNamedUsers ? "named users" : "concurrent sessions";
}

Result<std::int64_t> parseCounter(const Setting& s) {
  std::int64_t v = 0;
  const auto* end = s.value.data() + s.value.size();
  auto [p, ec] = std::from_chars(s.value.data(), end, v);
  if (ec != std::errc() || p != end || v < 0) {
    return dataLoss("the setting " + s.key + " should hold a count but holds '" + s.value.substr(0, 40) + "'");
  }
  return v;
}

std::int64_t daysBetween(TimePoint from, TimePoint to) {
  if (to <= from) return 0;
  return std::chrono::duration_cast<std::chrono::hours>(to - from).count() / 24;
}

}  // namespace

std::string namedUserKey(const LicenseId& license, const UserId& user) {
  return "license_user_" + detail::sha256Hex(license.str() + "\n" + user.str()).substr(0, 40);
}

std::string namedUserCountKey(const LicenseId& license) {
  return "license_users_" + detail::sha256Hex(license.str()).substr(0, 32);
}

LicensePolicy LicensePolicy::unlimited() {
  LicensePolicy p;
  p.community_session_limit = kUnlimited;
  p.community_features = features::all();
  return p;
}

// ---- Impl ----------------------------------------------------------------------------------------

Result<LicenseDocument> Licensing::Impl::verify(const std::string& armored) {
  {
    std::lock_guard lock(mu);
    auto it = verified.find(armored);
    if (it != verified.end()) return it->second;
  }
  auto doc = readLicense(armored, policy.verifying_keys);
  std::lock_guard lock(mu);
  if (verified.size() >= kVerifiedCacheMax) verified.clear();
  verified.emplace(armored, doc);
  return doc;
}

Result<std::int64_t> Licensing::Impl::counterValue(std::string_view key, std::optional<std::int64_t>* version) {
  auto row = repo.get<Setting>(std::string(key));
  if (!row.ok()) {
    if (row.error().code() != ErrorCode::kNotFound) return row.error();
    if (version) version->reset();
    return 0;
  }
  if (version) *version = row->version;
  return parseCounter(row->value);
}

Result<TimePoint> Licensing::Impl::observeClock(TimePoint now) {
  const std::string key(settings::kLastSeenTime);
  auto row = repo.get<Setting>(key);
  if (!row.ok()) {
    if (row.error().code() != ErrorCode::kNotFound) return row.error();
    (void)repo.insert(Setting{key, std::to_string(toUnixMillis(now)), now});  // Losing a race is fine.
    return now;
  }
  auto seen = parseCounter(row->value);
  if (!seen.ok()) return seen.error();
  const TimePoint high = fromUnixMillis(*seen);
  if (now >= high + kHighWaterStep) {
    Setting s = row->value;
    s.value = std::to_string(toUnixMillis(now));
    s.updated_at = now;
    (void)repo.update(s, row->version);  // A lost race means someone else moved it forward.
  }
  return high;
}

Result<Grant> Licensing::Impl::grant(std::vector<LicenseProblem>* problems) {
  const TimePoint now = clock.now();
  KASM_ASSIGN_OR_RETURN(auto records, repo.list<LicenseRecord>());
  KASM_ASSIGN_OR_RETURN(TimePoint high_water, observeClock(now));

  Grant community;
  community.state = LicenseState::kCommunity;
  community.type = LicenseType::kConcurrentSessions;
  community.limit = policy.community_session_limit;
  community.features = policy.community_features;
  community.holder = "the community edition (no license)";
  community.message = policy.community_session_limit == LicensePolicy::kUnlimited
                          ? "No license is needed: sessions are not limited."
                          : "No license: the community edition allows " +
                                std::to_string(policy.community_session_limit) + " concurrent sessions.";
  if (records.empty()) return community;

  KASM_ASSIGN_OR_RETURN(std::string installation, license::installationId(store, clock));
  std::vector<LicenseDocument> usable;
  for (const auto& r : records) {
    auto doc = verify(r.value.armored);
    if (!doc.ok()) {
      if (problems) problems->push_back({r.value.id, doc.error().message()});
      continue;
    }
    if (doc->installation_id != installation) {
      if (problems) {
        problems->push_back({r.value.id, "bound to installation " + doc->installation_id +
                                             ", but this installation is " + installation});
      }
      continue;
    }
    usable.push_back(std::move(doc).value());
  }
  if (usable.empty()) return community;

  auto later = [](const LicenseDocument& a, const LicenseDocument& b) {
    return std::pair(a.validUntil(), a.limit) < std::pair(b.validUntil(), b.limit);
  };
  if (now + policy.clock_tolerance < high_water) {
    Grant g;
    g.state = LicenseState::kClockBehind;
    g.doc = *std::max_element(usable.begin(), usable.end(), later);
    g.type = g.doc->type;
    g.limit = g.doc->limit;
    g.holder = describe(*g.doc);
    g.message = "The system clock reads " + detail::formatTime(now) + ", before " + detail::formatTime(high_water) +
                ", a time this installation has already seen: new sessions are refused until the clock is corrected.";
    g.refusal = failedPrecondition("license: " + g.message);
    return g;
  }

  std::vector<LicenseDocument> valid, ended;
  for (auto& d : usable) {
    if (now >= d.validUntil())
      ended.push_back(d);
    else if (now >= d.not_before)
      valid.push_back(d);
  }
  if (!valid.empty()) {
    Grant g;
    g.doc = *std::max_element(valid.begin(), valid.end(), later);
    const TimePoint until = g.doc->validUntil();
    g.state = until - now <= policy.expiry_warning ? LicenseState::kExpiring : LicenseState::kValid;
    g.type = g.doc->type;
    g.limit = g.doc->limit;
    g.features = g.doc->features;
    g.holder = describe(*g.doc);
    const bool renewal = until < g.doc->expires_at;
    g.message = "Licensed to " + g.doc->customer + " for " + std::to_string(g.limit) + " " + unitName(g.type) +
                (g.state == LicenseState::kExpiring
                     ? std::string("; it ") + (renewal ? "must be renewed" : "expires") + " in " +
                           std::to_string(daysBetween(now, until)) + " day(s), on " + detail::formatTime(until) + "."
                     : ", valid until " + detail::formatTime(until) + ".");
    return g;
  }
  if (!ended.empty()) {
    Grant g;
    g.state = LicenseState::kExpired;
    g.doc = *std::max_element(ended.begin(), ended.end(), later);
    g.type = g.doc->type;
    g.limit = g.doc->limit;
    g.holder = describe(*g.doc);
    const TimePoint until = g.doc->validUntil();
    g.message = describe(*g.doc) + (until < g.doc->expires_at ? " needed renewal by " : " expired on ") +
                detail::formatTime(until) +
                ": new sessions are refused (running ones continue); add a renewed license.";
    g.refusal = failedPrecondition("license: " + g.message);
    return g;
  }
  // Only licences that start later: the community limits apply until then.
  const auto next = *std::min_element(usable.begin(), usable.end(),
                                      [](const auto& a, const auto& b) { return a.not_before < b.not_before; });
  community.message += " " + describe(next) + " starts on " + detail::formatTime(next.not_before) + ".";
  return community;
}

Result<std::vector<spi::Mutation>> Licensing::Impl::usageMutations(const Grant* g, const Session& session,
                                                                   int session_delta, bool count_user) {
  std::vector<spi::Mutation> out;
  const TimePoint now = clock.now();
  if (session_delta > 0 || count_user) {
    if (!g) return internalError("a session start was checked without a license grant");
    if (g->refusal) return *g->refusal;
  }
  if (session_delta != 0) {
    std::optional<std::int64_t> version;
    KASM_ASSIGN_OR_RETURN(std::int64_t in_use, counterValue(kSessionsInUseKey, &version));
    if (session_delta > 0 && g->type == LicenseType::kConcurrentSessions && in_use + session_delta > g->limit) {
      return resourceExhausted("license limit reached: " + std::to_string(in_use) + " of " + std::to_string(g->limit) +
                               " concurrent sessions are in use under " + g->holder +
                               "; end a session or add a license for more");
    }
    Setting row{std::string(kSessionsInUseKey), std::to_string(std::max<std::int64_t>(0, in_use + session_delta)), now};
    KASM_ASSIGN_OR_RETURN(spi::Mutation m, version ? Repository::updateOp(row, *version) : Repository::insertOp(row));
    out.push_back(std::move(m));
  }
  if (count_user && g->type == LicenseType::kNamedUsers && g->doc && !session.user_id.empty()) {
    const std::string user_key = namedUserKey(g->doc->id, session.user_id);
    auto known = repo.get<Setting>(user_key);
    if (!known.ok()) {
      if (known.error().code() != ErrorCode::kNotFound) return known.error();
      const std::string count_key = namedUserCountKey(g->doc->id);
      std::optional<std::int64_t> version;
      KASM_ASSIGN_OR_RETURN(std::int64_t named, counterValue(count_key, &version));
      if (named >= g->limit) {
        return resourceExhausted("license limit reached: " + g->holder + " allows " + std::to_string(g->limit) +
                                 " named users and all of them have had sessions in this license period; user '" +
                                 session.user_id.str() + "' is not one of them");
      }
      KASM_ASSIGN_OR_RETURN(spi::Mutation um, Repository::insertOp(Setting{
                                                  user_key, g->doc->id.str() + " " + session.user_id.str(), now}));
      Setting count{count_key, std::to_string(named + 1), now};
      KASM_ASSIGN_OR_RETURN(spi::Mutation cm,
                            version ? Repository::updateOp(count, *version) : Repository::insertOp(count));
      out.push_back(std::move(um));
      out.push_back(std::move(cm));
    }
  }
  return out;
}

Result<void> Licensing::Impl::initCounters() {
  auto existing = repo.get<Setting>(std::string(kSessionsInUseKey));
  if (existing.ok()) return {};
  if (existing.error().code() != ErrorCode::kNotFound) return existing.error();
  KASM_ASSIGN_OR_RETURN(auto sessions, repo.list<Session>(spi::Query().whereIn(
                                           "state", {"provisioning", "running", "paused", "stopping"})));
  auto inserted = repo.insert(
      Setting{std::string(kSessionsInUseKey), std::to_string(static_cast<std::int64_t>(sessions.size())), clock.now()});
  if (!inserted.ok() && inserted.error().code() != ErrorCode::kAlreadyExists) return inserted.error();
  return {};
}

// ---- Licensing -----------------------------------------------------------------------------------

Licensing::Licensing(spi::Store& store, Clock& clock, LicensePolicy policy)
    : impl_(std::make_unique<Impl>(store, clock, std::move(policy))) {}
Licensing::~Licensing() = default;

const LicensePolicy& Licensing::policy() const {
  return impl_->policy;
}

Result<std::string> Licensing::installationId() {
  return license::installationId(impl_->store, impl_->clock);
}

Result<LicenseRecord> Licensing::addLicense(std::string_view armored) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(LicenseDocument doc, readLicense(armored, im.policy.verifying_keys));
  KASM_ASSIGN_OR_RETURN(std::string installation, installationId());
  if (doc.installation_id != installation) {
    return invalidArgument("this license is for installation " + doc.installation_id + ", but this installation is " +
                           installation + "; activate the license for this installation id");
  }
  const TimePoint now = im.clock.now();
  if (now >= doc.validUntil()) {
    return failedPrecondition(describe(doc) +
                              (doc.validUntil() < doc.expires_at ? " needed renewal by " : " expired on ") +
                              detail::formatTime(doc.validUntil()) + "; ask for a renewed license");
  }
  LicenseRecord rec;
  rec.id = doc.id;
  rec.armored = std::string(armored);
  rec.customer = doc.customer;
  rec.installation_id = doc.installation_id;
  rec.type = doc.type;
  rec.limit = doc.limit;
  rec.features.assign(doc.features.begin(), doc.features.end());
  rec.not_before = doc.not_before;
  rec.expires_at = doc.expires_at;
  rec.added_at = now;

  auto existing = im.repo.get<LicenseRecord>(rec.id.str());
  if (existing.ok()) {
    auto old = im.verify(existing->value.armored);
    if (old.ok() && old->issued_at >= doc.issued_at) {
      if (old.value() == doc) return existing->value;  // The same licence again.
      return failedPrecondition(describe(doc) + " issued " + detail::formatTime(doc.issued_at) +
                                " is not newer than the one already added (issued " +
                                detail::formatTime(old->issued_at) + ")");
    }
    KASM_RETURN_IF_ERROR(im.repo.update(rec, existing->version));
    return rec;
  }
  if (existing.error().code() != ErrorCode::kNotFound) return existing.error();
  KASM_RETURN_IF_ERROR(im.repo.insert(rec));
  return rec;
}

Result<void> Licensing::removeLicense(const LicenseId& id) {
  auto r = impl_->repo.remove<LicenseRecord>(id.str());
  if (!r.ok() && r.error().code() == ErrorCode::kNotFound) return notFound("license '" + id.str() + "' does not exist");
  return r;
}

Result<std::vector<LicenseRecord>> Licensing::listLicenses() {
  KASM_ASSIGN_OR_RETURN(auto rows, impl_->repo.list<LicenseRecord>());
  std::vector<LicenseRecord> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r.value));
  return out;
}

Result<LicenseStatus> Licensing::status() {
  auto& im = *impl_;
  LicenseStatus st;
  KASM_ASSIGN_OR_RETURN(Grant g, im.grant(&st.problems));
  KASM_ASSIGN_OR_RETURN(st.installation_id, installationId());
  const TimePoint now = im.clock.now();
  st.state = g.state;
  st.active = g.doc;
  st.type = g.type;
  st.limit = g.limit;
  st.features = g.allowsNewSessions() ? g.features : std::set<std::string>{};
  st.message = g.message;
  KASM_ASSIGN_OR_RETURN(st.sessions_in_use, im.counterValue(kSessionsInUseKey, nullptr));
  st.used = st.sessions_in_use;
  if (g.doc) {
    st.valid_until = g.doc->validUntil();
    st.days_left = daysBetween(now, *st.valid_until);
    if (g.type == LicenseType::kNamedUsers) {
      KASM_ASSIGN_OR_RETURN(st.used, im.counterValue(namedUserCountKey(g.doc->id), nullptr));
    }
  }
  return st;
}

Result<void> Licensing::requireFeature(std::string_view feature) {
  KASM_ASSIGN_OR_RETURN(Grant g, impl_->grant());
  if (!g.allowsNewSessions()) return permissionDenied(g.refusal->message());
  if (g.hasFeature(feature)) return {};
  return permissionDenied("license: the feature '" + std::string(feature) + "' is not included in " + g.holder);
}

}  // namespace kasm::license
