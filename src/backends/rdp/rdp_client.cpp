// RdpClient's connection side: FreeRDP's context and settings, the connect and logon sequence with
// its deadline, certificate pinning, and the update callbacks that feed the RFB side (paints, resizes,
// pointer shapes). Input is in rdp_input.cpp, the clipboard channel in rdp_clipboard.cpp.

#include "backends/rdp/rdp_client.hpp"

#include <freerdp/channels/channels.h>
#include <freerdp/client/cmdline.h>
#include <freerdp/codec/clear.h>
#include <freerdp/codec/color.h>
#include <freerdp/codec/h264.h>
#include <freerdp/codec/progressive.h>
#include <freerdp/codecs.h>
#include <freerdp/error.h>
#include <freerdp/event.h>
#include <freerdp/gdi/gdi.h>
#include <freerdp/graphics.h>
#include <freerdp/primitives.h>
#include <freerdp/settings.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <winpr/synch.h>
#include <winpr/wlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "backends/rdp/keyboard_map.hpp"
#include "backends/rdp/rdp_client_impl.hpp"

namespace kasm::rdp::detail {

namespace {

using Clock = std::chrono::steady_clock;

// How long after the first paint a session must show itself (logon notification or clipboard)
// before the connection counts as sitting at the server's login screen.
constexpr auto kLogonGrace = std::chrono::seconds(6);

struct KasmPointer {
  rdpPointer base;
  std::uint8_t* rgba;  // width * height * 4, malloc'd (FreeRDP frees the struct itself).
};

std::string hexOf(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

// FreeRDP's own fingerprints are "aa:bb:..."; pins are "sha256:aabb...".
std::string normaliseFingerprint(const char* freerdp_fp) {
  std::string out = "sha256:";
  for (const char* p = freerdp_fp ? freerdp_fp : ""; *p; ++p) {
    if (*p != ':') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(*p))));
  }
  return out;
}

// The pin decision shared by the certificate callbacks: 2 = accept for this session, 0 = refuse.
int checkPin(RdpClient::Impl& impl, const std::string& fingerprint) {
  if (impl.request.certificate_policy == "ignore") return 2;
  if (fingerprint.size() <= 7) {
    impl.failure = "the RDP server's certificate could not be read";
    return 0;
  }
  const std::string key = "rdp:" + impl.request.host + ":" + std::to_string(impl.request.port);
  auto checked = impl.pins.check(key, fingerprint);
  if (checked.ok()) return 2;
  impl.failure = checked.error().code() == ErrorCode::kPermissionDenied
                     ? "the server's certificate changed: " + checked.error().message()
                     : "the server's certificate could not be checked: " + checked.error().message();
  return 0;
}

int onVerifyX509(freerdp* instance, const BYTE* data, size_t length, const char*, UINT16, DWORD) {
  auto& impl = implOf(instance->context);
  return checkPin(impl, certificateFingerprint(data, length));
}

DWORD onVerifyCertificate(freerdp* instance, const char*, UINT16, const char*, const char*, const char*,
                          const char* fingerprint, DWORD) {
  return static_cast<DWORD>(checkPin(implOf(instance->context), normaliseFingerprint(fingerprint)));
}

DWORD onVerifyChangedCertificate(freerdp* instance, const char*, UINT16, const char*, const char*, const char*,
                                 const char* fingerprint, const char*, const char*, const char*, DWORD) {
  return static_cast<DWORD>(checkPin(implOf(instance->context), normaliseFingerprint(fingerprint)));
}

// Credentials come from the request only; FreeRDP asking for more means there are none to give.
BOOL onAuthenticate(freerdp*, char**, char**, char**) {
  return FALSE;
}

int onLogonError(freerdp* instance, UINT32 data, UINT32 type) {
  auto& impl = implOf(instance->context);
  if (type == LOGON_FAILED_BAD_PASSWORD) {
    impl.failure = "RDP logon failed: wrong user name or password";
  } else if (type == LOGON_FAILED_UPDATE_PASSWORD) {
    impl.failure = "RDP logon failed: the password must be changed";
  } else if (type == LOGON_FAILED_OTHER) {
    impl.failure = "RDP logon failed";
  } else if (data == LOGON_MSG_SESSION_TERMINATE) {
    impl.failure = "the RDP server ended the session";
  }
  return 1;
}

BOOL onSaveSessionInfo(rdpContext* context, UINT32, void*) {
  implOf(context).logon_confirmed = true;
  return TRUE;
}

BOOL onBeginPaint(rdpContext*) {
  return TRUE;
}

// GDI collects what each update drew in the primary surface's invalid region; it is handed on as
// dirty rectangles and reset here.
BOOL onEndPaint(rdpContext* context) {
  auto& impl = implOf(context);
  HGDI_WND hwnd = context->gdi->primary->hdc->hwnd;
  if (hwnd->invalid->null) return TRUE;
  std::vector<DirtyRect> rects;
  rects.reserve(static_cast<std::size_t>(hwnd->ninvalid));
  for (INT32 i = 0; i < hwnd->ninvalid; ++i) {
    const auto& r = hwnd->cinvalid[i];
    if (r.w > 0 && r.h > 0) rects.push_back({r.x, r.y, r.w, r.h});
  }
  if (rects.empty()) rects.push_back({hwnd->invalid->x, hwnd->invalid->y, hwnd->invalid->w, hwnd->invalid->h});
  hwnd->invalid->null = TRUE;
  hwnd->ninvalid = 0;
  impl.painted = true;
  impl.events.onPaint(rects);
  return TRUE;
}

BOOL onDesktopResize(rdpContext* context) {
  auto& impl = implOf(context);
  const auto w = freerdp_settings_get_uint32(context->settings, FreeRDP_DesktopWidth);
  const auto h = freerdp_settings_get_uint32(context->settings, FreeRDP_DesktopHeight);
  if (!gdi_resize(context->gdi, w, h)) return FALSE;
  impl.events.onResize(static_cast<std::uint16_t>(w), static_cast<std::uint16_t>(h));
  return TRUE;
}

BOOL onPointerNew(rdpContext* context, rdpPointer* pointer) {
  auto* p = reinterpret_cast<KasmPointer*>(pointer);
  const std::size_t size = std::size_t{pointer->width} * pointer->height * 4;
  p->rgba = static_cast<std::uint8_t*>(std::malloc(size ? size : 1));
  if (!p->rgba) return FALSE;
  if (size == 0) return TRUE;
  return freerdp_image_copy_from_pointer_data(
      p->rgba, PIXEL_FORMAT_RGBA32, pointer->width * 4, 0, 0, pointer->width, pointer->height, pointer->xorMaskData,
      pointer->lengthXorMask, pointer->andMaskData, pointer->lengthAndMask, pointer->xorBpp, &context->gdi->palette);
}

void onPointerFree(rdpContext*, rdpPointer* pointer) {
  auto* p = reinterpret_cast<KasmPointer*>(pointer);
  std::free(p->rgba);
  p->rgba = nullptr;
}

BOOL onPointerSet(rdpContext* context, const rdpPointer* pointer) {
  const auto* p = reinterpret_cast<const KasmPointer*>(pointer);
  CursorImage cursor;
  cursor.width = static_cast<std::uint16_t>(pointer->width);
  cursor.height = static_cast<std::uint16_t>(pointer->height);
  cursor.hot_x = static_cast<std::uint16_t>(pointer->xPos);
  cursor.hot_y = static_cast<std::uint16_t>(pointer->yPos);
  cursor.rgba.assign(p->rgba, p->rgba + std::size_t{cursor.width} * cursor.height * 4);
  implOf(context).events.onCursor(cursor);
  return TRUE;
}

BOOL onPointerSetNull(rdpContext* context) {
  implOf(context).events.onCursor(CursorImage{});
  return TRUE;
}

BOOL onPointerSetDefault(rdpContext*) {
  return TRUE;
}

BOOL onPointerSetPosition(rdpContext*, UINT32, UINT32) {
  return TRUE;
}

UINT onDisplayControlCaps(DispClientContext* disp, UINT32, UINT32, UINT32) {
  static_cast<RdpClient::Impl*>(disp->custom)->disp_ready = true;
  return CHANNEL_RC_OK;
}

void onChannelConnected(void* context, ChannelConnectedEventArgs* e) {
  auto& impl = implOf(static_cast<rdpContext*>(context));
  if (std::strcmp(e->name, CLIPRDR_SVC_CHANNEL_NAME) == 0) {
    attachClipboard(impl, static_cast<CliprdrClientContext*>(e->pInterface));
  } else if (std::strcmp(e->name, DISP_DVC_CHANNEL_NAME) == 0) {
    impl.disp = static_cast<DispClientContext*>(e->pInterface);
    impl.disp->custom = &impl;
    impl.disp->DisplayControlCaps = onDisplayControlCaps;
  }
}

void onChannelDisconnected(void* context, ChannelDisconnectedEventArgs* e) {
  auto& impl = implOf(static_cast<rdpContext*>(context));
  if (std::strcmp(e->name, CLIPRDR_SVC_CHANNEL_NAME) == 0) {
    impl.cliprdr = nullptr;
    impl.clipboard_ready = false;
  } else if (std::strcmp(e->name, DISP_DVC_CHANNEL_NAME) == 0) {
    impl.disp_ready = false;
    impl.disp = nullptr;
  }
}

BOOL onPreConnect(freerdp* instance) {
  rdpContext* context = instance->context;
  PubSub_SubscribeChannelConnected(context->pubSub, onChannelConnected);
  PubSub_SubscribeChannelDisconnected(context->pubSub, onChannelDisconnected);
  instance->update->SaveSessionInfo = onSaveSessionInfo;
  return freerdp_client_load_addins(context->channels, context->settings);
}

BOOL onPostConnect(freerdp* instance) {
  if (!gdi_init(instance, PIXEL_FORMAT_RGBX32)) return FALSE;
  // gdi_init prepares every codec FreeRDP has. Those only the graphics pipeline uses (H.264,
  // progressive, ClearCodec) cannot be reached with the pipeline off, and their buffers are sized
  // for the whole desktop: freed here, they cost a connection nothing.
  rdpCodecs* codecs = instance->context->codecs;
  h264_context_free(codecs->h264);
  codecs->h264 = nullptr;
  progressive_context_free(codecs->progressive);
  codecs->progressive = nullptr;
  clear_context_free(codecs->clear);
  codecs->clear = nullptr;
  rdpUpdate* update = instance->update;
  update->BeginPaint = onBeginPaint;
  update->EndPaint = onEndPaint;
  update->DesktopResize = onDesktopResize;
  rdpPointer pointer{};
  pointer.size = sizeof(KasmPointer);
  pointer.New = onPointerNew;
  pointer.Free = onPointerFree;
  pointer.Set = onPointerSet;
  pointer.SetNull = onPointerSetNull;
  pointer.SetDefault = onPointerSetDefault;
  pointer.SetPosition = onPointerSetPosition;
  graphics_register_pointer(instance->context->graphics, &pointer);
  return TRUE;
}

void onPostDisconnect(freerdp* instance) {
  gdi_free(instance);
}

BOOL onClientNew(freerdp* instance, rdpContext*) {
  instance->PreConnect = onPreConnect;
  instance->PostConnect = onPostConnect;
  instance->PostDisconnect = onPostDisconnect;
  instance->Authenticate = onAuthenticate;
  instance->VerifyX509Certificate = onVerifyX509;
  instance->VerifyCertificateEx = onVerifyCertificate;
  instance->VerifyChangedCertificateEx = onVerifyChangedCertificate;
  instance->LogonErrorInfo = onLogonError;
  return TRUE;
}

void onClientFree(freerdp*, rdpContext*) {}

// The user's reading of FreeRDP's last error when nothing more precise is known.
std::string describeError(UINT32 error, const std::string& security) {
  switch (error) {
    case FREERDP_ERROR_AUTHENTICATION_FAILED:
    case FREERDP_ERROR_CONNECT_LOGON_FAILURE:
    case FREERDP_ERROR_CONNECT_WRONG_PASSWORD: return "RDP logon failed: wrong user name or password";
    case FREERDP_ERROR_CONNECT_ACCOUNT_LOCKED_OUT: return "RDP logon failed: the account is locked out";
    case FREERDP_ERROR_CONNECT_ACCOUNT_DISABLED: return "RDP logon failed: the account is disabled";
    case FREERDP_ERROR_CONNECT_ACCOUNT_EXPIRED: return "RDP logon failed: the account has expired";
    case FREERDP_ERROR_CONNECT_PASSWORD_EXPIRED:
    case FREERDP_ERROR_CONNECT_PASSWORD_CERTAINLY_EXPIRED:
    case FREERDP_ERROR_CONNECT_PASSWORD_MUST_CHANGE: return "RDP logon failed: the password has expired";
    case FREERDP_ERROR_CONNECT_NO_OR_MISSING_CREDENTIALS: return "RDP logon failed: no user name or password given";
    case FREERDP_ERROR_DNS_ERROR:
    case FREERDP_ERROR_DNS_NAME_NOT_FOUND: return "the RDP server's host name could not be resolved";
    case FREERDP_ERROR_CONNECT_FAILED: return "the RDP server could not be reached (connection refused or timed out)";
    case FREERDP_ERROR_CONNECT_TRANSPORT_FAILED: return "the RDP server could not be reached or closed the connection";
    case FREERDP_ERROR_TLS_CONNECT_FAILED: return "the TLS connection to the RDP server failed";
    case FREERDP_ERROR_SECURITY_NEGO_CONNECT_FAILED:
      return "the RDP server does not accept the requested security mode \"" + security + "\"";
    case FREERDP_ERROR_CONNECT_CANCELLED: return "the RDP connection was cancelled";
    case FREERDP_ERROR_SERVER_DENIED_CONNECTION: return "the RDP server denied the connection";
    default: break;
  }
  const char* text = freerdp_get_last_error_string(error);
  return std::string("the RDP connection failed: ") + (text ? text : "unknown error");
}

}  // namespace

std::string certificateFingerprint(const std::uint8_t* pem, std::size_t length) {
  BIO* bio = BIO_new_mem_buf(pem, static_cast<int>(length));
  if (!bio) return {};
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) return {};
  unsigned char* der = nullptr;
  const int der_len = i2d_X509(cert, &der);
  X509_free(cert);
  if (der_len <= 0) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  const bool ok = EVP_Digest(der, static_cast<std::size_t>(der_len), digest, &digest_len, EVP_sha256(), nullptr) == 1;
  OPENSSL_free(der);
  return ok ? "sha256:" + hexOf(digest, digest_len) : std::string();
}

void prepareFreeRdp() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!std::getenv("WLOG_LEVEL")) WLog_SetLogLevel(WLog_GetRoot(), WLOG_OFF);
    (void)primitives_get();
  });
}

RdpClient::RdpClient(const spi::GatewayRequest& request, spi::GatewayPins& pins, RdpEvents& events)
    : impl_(std::make_unique<Impl>(request, pins, events)) {}

RdpClient::~RdpClient() {
  if (impl_->context) {
    if (impl_->connected) {
      freerdp_disconnect(impl_->context->instance);
    } else if (impl_->context->gdi) {
      // freerdp_connect can fail after PostConnect set up the GDI (a late activation error), and
      // nothing else frees it then.
      gdi_free(impl_->context->instance);
    }
    freerdp_client_context_free(impl_->context);
  }
  if (impl_->inbox_event) CloseHandle(impl_->inbox_event);
}

namespace {

// Hands the clipboard channel's findings to the RFB side, on the serve() thread.
void drainInbox(RdpClient::Impl& impl) {
  std::vector<std::string> texts;
  {
    std::lock_guard lock(impl.mu);
    ResetEvent(impl.inbox_event);
    texts.swap(impl.inbox_text);
  }
  for (auto& t : texts) impl.events.onClipboardText(std::move(t));
}

}  // namespace

Result<void> RdpClient::connect(int client_fd, int timeout_ms) {
  Impl& impl = *impl_;
  const auto& r = impl.request;
  RDP_CLIENT_ENTRY_POINTS entry{};
  entry.Size = sizeof(entry);
  entry.Version = RDP_CLIENT_INTERFACE_VERSION;
  entry.ContextSize = sizeof(KasmRdpContext);
  entry.ClientNew = onClientNew;
  entry.ClientFree = onClientFree;
  impl.inbox_event = CreateEventA(nullptr, TRUE, FALSE, nullptr);
  if (!impl.inbox_event) return internalError("WinPR could not create an event");
  impl.context = freerdp_client_context_new(&entry);
  if (!impl.context) return internalError("FreeRDP could not create a client context");
  reinterpret_cast<KasmRdpContext*>(impl.context)->impl = &impl;

  rdpSettings* s = impl.context->settings;
  const auto layout = detail::keyboardLayoutId(r.keyboard_layout).value_or(0x409);
  const bool any = r.security == "any";
  // "any" means TLS or NLA, never standard RDP security: that has no certificate to pin, so it
  // must be asked for by name.
  const bool settings_ok =
      freerdp_settings_set_string(s, FreeRDP_ServerHostname, r.host.c_str()) &&
      freerdp_settings_set_uint32(s, FreeRDP_ServerPort, r.port) &&
      freerdp_settings_set_string(s, FreeRDP_Username, r.username.c_str()) &&
      freerdp_settings_set_string(s, FreeRDP_Password, r.password.c_str()) &&
      (r.domain.empty() || freerdp_settings_set_string(s, FreeRDP_Domain, r.domain.c_str())) &&
      freerdp_settings_set_uint32(s, FreeRDP_DesktopWidth, r.width) &&
      freerdp_settings_set_uint32(s, FreeRDP_DesktopHeight, r.height) &&
      freerdp_settings_set_uint32(s, FreeRDP_ColorDepth, 32) &&
      freerdp_settings_set_uint32(s, FreeRDP_KeyboardLayout, layout) &&
      freerdp_settings_set_bool(s, FreeRDP_NlaSecurity, any || r.security == "nla") &&
      freerdp_settings_set_bool(s, FreeRDP_TlsSecurity, any || r.security == "tls") &&
      freerdp_settings_set_bool(s, FreeRDP_RdpSecurity, r.security == "rdp") &&
      freerdp_settings_set_bool(s, FreeRDP_ExtSecurity, FALSE) &&
      freerdp_settings_set_bool(s, FreeRDP_NegotiateSecurityLayer, TRUE) &&
      freerdp_settings_set_bool(s, FreeRDP_ExternalCertificateManagement, TRUE) &&
      freerdp_settings_set_bool(s, FreeRDP_AutoLogonEnabled, TRUE) &&
      freerdp_settings_set_bool(s, FreeRDP_SoftwareGdi, TRUE) &&
      freerdp_settings_set_uint32(s, FreeRDP_TcpConnectTimeout, static_cast<UINT32>(timeout_ms)) &&
      // Only what a desktop in a browser needs: clipboard and resizing. No sound, drives, printers,
      // RemoteFX, graphics pipeline or H.264, which would each cost memory per connection.
      freerdp_settings_set_bool(s, FreeRDP_RedirectClipboard, TRUE) &&
      freerdp_settings_set_bool(s, FreeRDP_SupportDisplayControl, TRUE) &&
      freerdp_settings_set_bool(s, FreeRDP_DynamicResolutionUpdate, TRUE) &&
      freerdp_settings_set_bool(s, FreeRDP_AudioPlayback, FALSE) &&
      freerdp_settings_set_bool(s, FreeRDP_AudioCapture, FALSE) &&
      freerdp_settings_set_bool(s, FreeRDP_DeviceRedirection, FALSE) &&
      freerdp_settings_set_bool(s, FreeRDP_RemoteFxCodec, FALSE) &&
      freerdp_settings_set_bool(s, FreeRDP_NSCodec, FALSE) &&
      freerdp_settings_set_bool(s, FreeRDP_SupportGraphicsPipeline, FALSE) &&
      freerdp_settings_set_bool(s, FreeRDP_GfxH264, FALSE) &&
      freerdp_settings_set_uint32(s, FreeRDP_GlyphSupportLevel, GLYPH_SUPPORT_NONE) &&
      freerdp_settings_set_bool(s, FreeRDP_HasExtendedMouseEvent, TRUE) &&
      freerdp_settings_set_bool(s, FreeRDP_HasHorizontalWheel, TRUE);
  if (!settings_ok) return internalError("FreeRDP refused the connection settings");

  // FreeRDP's connect blocks; a watchdog aborts it at the deadline or when the viewer goes away.
  // It is the only other thread a connection ever has, and it ends before connect() returns.
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) return internalError("eventfd failed");
  bool viewer_left = false;
  std::thread watchdog([&] {
    pollfd fds[2] = {{client_fd, POLLRDHUP, 0}, {stop_fd, POLLIN, 0}};
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || poll(fds, 2, static_cast<int>(left)) != 1 || (fds[1].revents & POLLIN)) {
        if (!(fds[1].revents & POLLIN)) freerdp_abort_connect(impl.context->instance);
        return;
      }
      if (fds[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
        viewer_left = true;
        freerdp_abort_connect(impl.context->instance);
        return;
      }
    }
  });
  const BOOL ok = freerdp_connect(impl.context->instance);
  const std::uint64_t one = 1;
  (void)!write(stop_fd, &one, sizeof(one));
  watchdog.join();
  close(stop_fd);
  if (viewer_left) return unavailable("the viewer went away while the RDP connection was being made");
  if (!ok) {
    if (!impl.failure.empty()) return unauthenticated(impl.failure);
    if (Clock::now() >= deadline) return deadlineExceeded("the RDP server did not answer in time");
    const UINT32 error = freerdp_get_last_error(impl.context);
    if (((error >> 16) & 0xFFFF) == FREERDP_ERROR_ERRINFO_CLASS) {
      // An "error info" from the server before the desktop exists (xrdp 0.9 sends "logged off"
      // when it cannot verify standard RDP security's checksums): the setup itself failed.
      std::string why = "the RDP server closed the connection while it was being set up (" +
                        std::string(freerdp_get_last_error_string(error)) + ")";
      if (r.security == "rdp") why += "; standard RDP security may not work with this server, try \"tls\"";
      return unavailable(why);
    }
    return unavailable(describeError(error, r.security));
  }
  impl.connected = true;

  // Connected is not logged on: a server without NLA (xrdp) checks the password after the
  // connection and shows its own login screen when it is wrong. A running session shows itself by
  // a logon notification or its clipboard; until one of them, nothing is shown to the viewer.
  std::optional<Clock::time_point> first_paint;
  while (!impl.logon_confirmed) {
    if (!impl.failure.empty()) return unauthenticated(impl.failure);
    const auto now = Clock::now();
    if (impl.painted && !first_paint) first_paint = now;
    if (first_paint && now - *first_paint > kLogonGrace) {
      return unauthenticated(
          "RDP logon failed: the server showed its login screen instead of a desktop (wrong user name or password?)");
    }
    if (now >= deadline) return deadlineExceeded("RDP logon did not complete in time");
    HANDLE handles[64];
    const DWORD n = freerdp_get_event_handles(impl.context, handles, 64);
    if (n == 0) return internalError("FreeRDP has no event handles");
    WaitForMultipleObjects(n, handles, FALSE, 100);
    drainInbox(impl);
    if (!freerdp_check_event_handles(impl.context) || freerdp_shall_disconnect(impl.context->instance)) {
      if (!impl.failure.empty()) return unauthenticated(impl.failure);
      return unavailable("the RDP server ended the connection during logon: " +
                         describeError(freerdp_get_last_error(impl.context), r.security));
    }
    pollfd viewer{client_fd, POLLRDHUP, 0};
    if (poll(&viewer, 1, 0) == 1 && (viewer.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      return unavailable("the viewer went away during the RDP logon");
    }
  }
  return okResult();
}

std::size_t RdpClient::eventHandles(void** handles, std::size_t capacity) {
  if (capacity < 2) return 0;
  const DWORD n = freerdp_get_event_handles(impl_->context, handles, static_cast<DWORD>(capacity - 1));
  if (n == 0) return 0;
  handles[n] = impl_->inbox_event;
  return n + 1;
}

bool RdpClient::processEvents() {
  if (!freerdp_check_event_handles(impl_->context)) return false;
  drainInbox(*impl_);
  return !freerdp_shall_disconnect(impl_->context->instance);
}

std::string RdpClient::reason() const {
  if (!impl_->failure.empty()) return impl_->failure;
  return describeError(freerdp_get_last_error(impl_->context), impl_->request.security);
}

RdpFrame RdpClient::frame() const {
  rdpGdi* gdi = impl_->context->gdi;
  return {gdi->primary_buffer, gdi->stride, static_cast<std::uint16_t>(gdi->width),
          static_cast<std::uint16_t>(gdi->height)};
}

}  // namespace kasm::rdp::detail
