// bench_proxy's clients: HTTP and WebSocket throughput (g_connections connections for g_seconds)
// and latency (one connection, kLatencySamples sequential round trips). See bench_proxy.cpp.

#include <algorithm>
#include <atomic>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_proxy.hpp"

namespace kasm::bench {

tcp::socket connectTo(asio::io_context& ioc, std::uint16_t port) {
  tcp::socket s(ioc);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  s.set_option(tcp::no_delay(true));
  return s;
}

namespace {

Latency summarize(std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  if (us.empty()) return {};
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

}  // namespace

// C connections, each doing keep-alive GETs of `target` until the time is up.
Throughput httpThroughput(std::uint16_t port, const std::string& target) {
  std::atomic<long> done{0};
  std::atomic<long> bytes{0};
  std::vector<std::thread> threads;
  const auto deadline = Clock::now() + std::chrono::duration<double>(g_seconds);
  const auto start = Clock::now();
  const double cpu0 = totalCpuSeconds();
  for (int c = 0; c < g_connections; ++c) {
    threads.emplace_back([&] {
      try {
        asio::io_context ioc;
        auto s = connectTo(ioc, port);
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "127.0.0.1");
        beast::flat_buffer buffer;
        for (long i = 0; i < kMaxRequestsPerConnection && Clock::now() < deadline; ++i) {
          http::write(s, req);
          http::response_parser<http::string_body> p;
          p.body_limit(8 * 1024 * 1024);
          http::read(s, buffer, p);
          if (p.get().result_int() != 200) throw std::runtime_error("status " + std::to_string(p.get().result_int()));
          bytes += static_cast<long>(p.get().body().size());
          ++done;
        }
      } catch (const std::exception& e) {
        std::cerr << "client error (port " << port << ", request " << done.load() << "): " << e.what() << "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = totalCpuSeconds() - cpu0;
  return {done / secs, bytes / secs / 1e6, done > 0 ? cpu * 1e6 / static_cast<double>(done) : 0};
}

Latency httpLatency(std::uint16_t port, const std::string& target) {
  asio::io_context ioc;
  auto s = connectTo(ioc, port);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  beast::flat_buffer buffer;
  std::vector<double> us;
  for (int i = 0; i < kLatencySamples + 100; ++i) {
    auto t0 = Clock::now();
    http::write(s, req);
    http::response<http::string_body> res;
    http::read(s, buffer, res);
    if (i >= 100) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return summarize(us);
}

std::unique_ptr<websocket::stream<tcp::socket>> openWs(asio::io_context& ioc, std::uint16_t port,
                                                       const std::string& target) {
  auto ws = std::make_unique<websocket::stream<tcp::socket>>(connectTo(ioc, port));
  ws->handshake("127.0.0.1", target);
  ws->binary(true);
  return ws;
}

Throughput wsThroughput(std::uint16_t port, const std::string& target) {
  std::atomic<long> done{0};
  std::vector<std::thread> threads;
  const auto deadline = Clock::now() + std::chrono::duration<double>(g_seconds);
  const auto start = Clock::now();
  const double cpu0 = totalCpuSeconds();
  for (int c = 0; c < g_connections; ++c) {
    threads.emplace_back([&] {
      try {
        asio::io_context ioc;
        auto ws = openWs(ioc, port, target);
        std::string msg(64, 'm');
        beast::flat_buffer b;
        for (long i = 0; i < kMaxRequestsPerConnection && Clock::now() < deadline; ++i) {
          ws->write(asio::buffer(msg));
          b.clear();
          ws->read(b);
          ++done;
        }
        ws->close(websocket::close_code::normal);
      } catch (const std::exception& e) {
        std::cerr << "ws client error: " << e.what() << "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = totalCpuSeconds() - cpu0;
  return {done / secs, done * 64.0 / secs / 1e6, done > 0 ? cpu * 1e6 / static_cast<double>(done) : 0};
}

Latency wsLatency(std::uint16_t port, const std::string& target) {
  asio::io_context ioc;
  auto ws = openWs(ioc, port, target);
  std::string msg(64, 'm');
  beast::flat_buffer b;
  std::vector<double> us;
  for (int i = 0; i < kLatencySamples + 100; ++i) {
    auto t0 = Clock::now();
    ws->write(asio::buffer(msg));
    b.clear();
    ws->read(b);
    if (i >= 100) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  beast::error_code ec;
  ws->close(websocket::close_code::normal, ec);
  return summarize(us);
}

}  // namespace kasm::bench
