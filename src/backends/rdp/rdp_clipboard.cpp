// The clipboard between the viewer and the RDP server over cliprdr ([MS-RDPECLIP]), text only
// (CF_UNICODETEXT). The viewer's text is offered to the server as a format list and sent when the
// server asks for it; the server's new format list is answered with a request for its text, which
// reaches the viewer as ServerCutText. The server's "monitor ready" is also the sign that a desktop
// session is running behind the connection (xrdp starts its clipboard with the session), which
// RdpClient::connect uses to tell a logon from a login screen.

#include <freerdp/channels/cliprdr.h>
#include <winpr/synch.h>

#include <cstring>

#include "backends/rdp/clipboard_text.hpp"
#include "backends/rdp/rdp_client_impl.hpp"

namespace kasm::rdp::detail {

namespace {

constexpr UINT32 kUnicodeText = 13;  // CF_UNICODETEXT

RdpClient::Impl& implOf(CliprdrClientContext* cliprdr) {
  return *static_cast<RdpClient::Impl*>(cliprdr->custom);
}

UINT sendFormatList(RdpClient::Impl& impl) {
  bool have_text = false;
  {
    std::lock_guard lock(impl.mu);
    have_text = !impl.local_text_utf16.empty();
  }
  CLIPRDR_FORMAT format{};
  format.formatId = kUnicodeText;
  CLIPRDR_FORMAT_LIST list{};
  list.msgType = CB_FORMAT_LIST;
  list.numFormats = have_text ? 1 : 0;
  list.formats = list.numFormats ? &format : nullptr;
  return impl.cliprdr->ClientFormatList(impl.cliprdr, &list);
}

UINT onMonitorReady(CliprdrClientContext* cliprdr, const CLIPRDR_MONITOR_READY*) {
  auto& impl = implOf(cliprdr);
  CLIPRDR_GENERAL_CAPABILITY_SET general{};
  general.capabilitySetType = CB_CAPSTYPE_GENERAL;
  general.capabilitySetLength = CB_CAPSTYPE_GENERAL_LEN;
  general.version = CB_CAPS_VERSION_2;
  general.generalFlags = CB_USE_LONG_FORMAT_NAMES;
  CLIPRDR_CAPABILITIES caps{};
  caps.cCapabilitiesSets = 1;
  caps.capabilitySets = reinterpret_cast<CLIPRDR_CAPABILITY_SET*>(&general);
  if (const UINT rc = cliprdr->ClientCapabilities(cliprdr, &caps); rc != CHANNEL_RC_OK) return rc;
  impl.clipboard_ready = true;
  impl.logon_confirmed = true;
  return sendFormatList(impl);
}

UINT onServerCapabilities(CliprdrClientContext*, const CLIPRDR_CAPABILITIES*) {
  return CHANNEL_RC_OK;
}

UINT onServerFormatList(CliprdrClientContext* cliprdr, const CLIPRDR_FORMAT_LIST* list) {
  auto& impl = implOf(cliprdr);
  CLIPRDR_FORMAT_LIST_RESPONSE response{};
  response.msgType = CB_FORMAT_LIST_RESPONSE;
  response.msgFlags = CB_RESPONSE_OK;
  if (const UINT rc = cliprdr->ClientFormatListResponse(cliprdr, &response); rc != CHANNEL_RC_OK) return rc;
  for (UINT32 i = 0; i < list->numFormats; ++i) {
    if (list->formats[i].formatId != kUnicodeText) continue;
    CLIPRDR_FORMAT_DATA_REQUEST request{};
    request.msgType = CB_FORMAT_DATA_REQUEST;
    request.requestedFormatId = kUnicodeText;
    impl.requested_server_text = true;
    return cliprdr->ClientFormatDataRequest(cliprdr, &request);
  }
  return CHANNEL_RC_OK;
}

UINT onServerFormatListResponse(CliprdrClientContext*, const CLIPRDR_FORMAT_LIST_RESPONSE*) {
  return CHANNEL_RC_OK;
}

UINT onServerFormatDataRequest(CliprdrClientContext* cliprdr, const CLIPRDR_FORMAT_DATA_REQUEST* request) {
  auto& impl = implOf(cliprdr);
  std::string text;
  {
    std::lock_guard lock(impl.mu);
    text = impl.local_text_utf16;
  }
  CLIPRDR_FORMAT_DATA_RESPONSE response{};
  response.msgType = CB_FORMAT_DATA_RESPONSE;
  if (request->requestedFormatId == kUnicodeText && !text.empty()) {
    response.msgFlags = CB_RESPONSE_OK;
    response.dataLen = static_cast<UINT32>(text.size());
    response.requestedFormatData = reinterpret_cast<const BYTE*>(text.data());
  } else {
    response.msgFlags = CB_RESPONSE_FAIL;
  }
  return cliprdr->ClientFormatDataResponse(cliprdr, &response);
}

UINT onServerFormatDataResponse(CliprdrClientContext* cliprdr, const CLIPRDR_FORMAT_DATA_RESPONSE* response) {
  auto& impl = implOf(cliprdr);
  if (!impl.requested_server_text.exchange(false)) return CHANNEL_RC_OK;
  if ((response->msgFlags & CB_RESPONSE_OK) == 0 || response->requestedFormatData == nullptr) return CHANNEL_RC_OK;
  std::string text = utf16leToLatin1(
      std::string_view(reinterpret_cast<const char*>(response->requestedFormatData), response->dataLen));
  {
    std::lock_guard lock(impl.mu);
    impl.inbox_text.push_back(std::move(text));
  }
  SetEvent(impl.inbox_event);
  return CHANNEL_RC_OK;
}

}  // namespace

void attachClipboard(RdpClient::Impl& impl, CliprdrClientContext* cliprdr) {
  impl.cliprdr = cliprdr;
  cliprdr->custom = &impl;
  cliprdr->MonitorReady = onMonitorReady;
  cliprdr->ServerCapabilities = onServerCapabilities;
  cliprdr->ServerFormatList = onServerFormatList;
  cliprdr->ServerFormatListResponse = onServerFormatListResponse;
  cliprdr->ServerFormatDataRequest = onServerFormatDataRequest;
  cliprdr->ServerFormatDataResponse = onServerFormatDataResponse;
}

void offerClipboardText(RdpClient::Impl& impl) {
  if (impl.cliprdr && impl.clipboard_ready) (void)sendFormatList(impl);
}

}  // namespace kasm::rdp::detail
