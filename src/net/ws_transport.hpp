#pragma once

// Beast's WebSocket stream over our Transport: its timeout and teardown paths close the lowest
// layer through these functions, found by argument-dependent lookup. Included by every file that
// makes a websocket::stream<Transport&>.

#include <boost/beast/websocket.hpp>

#include "net/net_detail.hpp"

namespace kasm::net::detail {

inline void beast_close_socket(Transport& t) {
  t.close();
}

// The WebSocket closing handshake on a Transport ends by closing the socket.
inline void teardown(beast::role_type, Transport& t, beast::error_code& ec) {
  t.close();
  ec = {};
}
template <class Handler>
void async_teardown(beast::role_type, Transport& t, Handler&& handler) {
  t.close();
  asio::post(t.get_executor(), beast::bind_front_handler(std::forward<Handler>(handler), beast::error_code{}));
}

}  // namespace kasm::net::detail
