#pragma once

// Internal to kasm::net: HTTP reads and writes that finish in the calling handler when they can.
//
// An asynchronous operation that completes at once (the bytes are already buffered, or the kernel
// takes a small write whole) still posts its completion, and every post is another pass through the
// scheduler and an epoll_wait. A proxied keep-alive request used to cost nine of those. These
// helpers parse what is already buffered and send with a non-blocking write first, so a request
// that fits the socket buffers costs one wait per side: the client's bytes arriving and the
// upstream's answer arriving. They keep Beast's contracts (need_buffer, end_of_stream, partial
// message), so callers treat them as http::async_read_some / async_read_header / async_write.
// TLS goes through the stream, where a partial record cannot be written synchronously.

#include <algorithm>

#include "net/net_detail.hpp"

namespace kasm::net::detail {

// Read size for a flat_buffer: its free room, at least 4 KiB, at most 64 KiB. The proxy gives its
// buffers back between messages (releaseIfEmpty), so a read often starts from nothing: 4 KiB takes
// a typical head (and a small response) in one read where Beast's 512-byte minimum took several.
inline std::size_t readRoom(const beast::flat_buffer& b) {
  return std::clamp<std::size_t>(b.capacity() - b.size(), 4096, 64 * 1024);
}

// One step of parsing, as http::async_read_some: feeds `p` from `b`, reading from `in` only when the
// buffered bytes make no progress.
template <bool isRequest>
Awaitable<beast::error_code> parseSome(Transport& in, beast::flat_buffer& b, http::basic_parser<isRequest>& p) {
  for (;;) {
    if (b.size() > 0) {
      beast::error_code ec;
      const std::size_t n = p.put(b.data(), ec);
      b.consume(n);
      if (ec != http::error::need_more) co_return ec;  // Progress, need_buffer or a parse error.
      if (n > 0) co_return beast::error_code{};
    }
    auto [ec, n] = co_await in.async_read_some(b.prepare(readRoom(b)), kAwaitTuple);
    if (ec == asio::error::eof) {
      if (!p.got_some()) co_return http::error::end_of_stream;
      beast::error_code eof_ec;
      p.put_eof(eof_ec);
      co_return eof_ec;
    }
    if (ec) co_return ec;
    b.commit(n);
  }
}

// As http::async_read_header.
template <bool isRequest>
Awaitable<beast::error_code> parseHeader(Transport& in, beast::flat_buffer& b, http::basic_parser<isRequest>& p) {
  while (!p.is_header_done()) {
    if (auto ec = co_await parseSome(in, b, p); ec) co_return ec;
  }
  co_return beast::error_code{};
}

// As http::async_read: the whole message into the parser's body.
template <bool isRequest>
Awaitable<beast::error_code> parseMessage(Transport& in, beast::flat_buffer& b, http::basic_parser<isRequest>& p) {
  while (!p.is_done()) {
    if (auto ec = co_await parseSome(in, b, p); ec) co_return ec;
  }
  co_return beast::error_code{};
}

// Waits until `out` takes more bytes.
inline Awaitable<beast::error_code> waitWritable(Transport& out) {
  auto [ec] = co_await out.tcp().async_wait(tcp::socket::wait_write, kAwaitTuple);
  co_return ec;
}

// Writes all of `buffers`.
template <class ConstBuffers>
Awaitable<beast::error_code> writeAll(Transport& out, const ConstBuffers& buffers) {
  if (out.secure()) {
    auto [ec, n] = co_await asio::async_write(out, buffers, kAwaitTuple);
    co_return ec;
  }
  beast::buffers_suffix<ConstBuffers> rest(buffers);
  while (beast::buffer_bytes(rest) > 0) {
    beast::error_code ec;
    const std::size_t n = out.tcp().writeSomeNow(rest, ec);
    if (ec == asio::error::would_block) {
      if (auto wec = co_await waitWritable(out); wec) co_return wec;
      continue;
    }
    if (ec) co_return ec;
    rest.consume(n);
  }
  co_return beast::error_code{};
}

// As http::async_write: the serializer until it is done or needs the next body buffer
// (http::error::need_buffer, which callers of a buffer_body relay treat as success).
template <bool isRequest, class Body, class Fields>
Awaitable<beast::error_code> writeMessage(Transport& out, http::serializer<isRequest, Body, Fields>& sr) {
  if (out.secure()) {
    auto [ec, n] = co_await http::async_write(out, sr, kAwaitTuple);
    co_return ec;
  }
  while (!sr.is_done()) {
    beast::error_code ec;
    std::size_t n = 0;
    // Visiting the same state again after would_block hands back the same buffers.
    sr.next(ec, [&](beast::error_code& vec, const auto& buffers) { n = out.tcp().writeSomeNow(buffers, vec); });
    if (ec == asio::error::would_block) {
      if (auto wec = co_await waitWritable(out); wec) co_return wec;
      continue;
    }
    if (ec) co_return ec;
    sr.consume(n);
  }
  co_return beast::error_code{};
}

}  // namespace kasm::net::detail
