"""Core HTTP/1.1 behaviour over raw sockets: keep-alive, pipelining, framing, errors, limits."""
import os
import sys
import time

from harness import Reader, Server, exchange, preloaded, run, wait_for

SERVER = None


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server(workers=2, globals_text='max_body_size = "64k"\nheader_timeout = 2\n')
        SERVER.file("a.txt", b"AAAA")
        SERVER.file("b.txt", b"BBBBBBBB")
        SERVER.start()
    return SERVER


def teardown_module():
    if SERVER is not None:
        SERVER.cleanup()


def request(path="/a.txt", method="GET", extra=""):
    return ("%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (method, path, extra)).encode()


def test_keepalive_two_requests_one_connection():
    s = server().connect()
    reader = Reader(s)
    s.sendall(request("/a.txt"))
    assert reader.response().body == b"AAAA"
    s.sendall(request("/b.txt"))
    assert reader.response().body == b"BBBBBBBB"
    s.close()


def test_pipelined_requests_answered_in_order():
    s = server().connect()
    s.sendall(request("/a.txt") + request("/b.txt") + request("/missing") + request("/a.txt"))
    reader = Reader(s)
    got = [reader.response() for _ in range(4)]
    assert [r.status for r in got] == [200, 200, 404, 200]
    assert got[0].body == b"AAAA" and got[1].body == b"BBBBBBBB" and got[3].body == b"AAAA"


def test_keepalive_request_is_read_once():
    # A short read empties the socket; after the answer, the next request is rarely there yet, so
    # reading again finds nothing: one wasted syscall per keep-alive request (measured: 2 recv per
    # request on ka-1k).  The server waits for epoll's next edge instead.  A shim logs what each of
    # the server's reads found: 'r' data, 'e' nothing (EAGAIN), '0' end of stream.
    srv = Server()
    srv.file("a.txt", b"AAAA")
    log = os.path.join(srv.dir, "reads")
    with open(log, "w"):
        os.chmod(log, 0o666)   # the worker writes it as the unprivileged user
    try:
        with preloaded("recv_shim", HTTPD_TEST_RECV_COUNT_PORT=srv.port, HTTPD_TEST_RECV_COUNT_FILE=log):
            srv.start()
        s = srv.connect()
        reader = Reader(s)
        for _ in range(5):
            s.sendall(request("/a.txt"))
            assert reader.response().body == b"AAAA"
            time.sleep(0.05)
        # pipelined requests in one read are still all answered from the buffer
        s.sendall(request("/a.txt") + request("/a.txt"))
        assert [reader.response().body for _ in range(2)] == [b"AAAA", b"AAAA"]
        # and a request split over two packets is read when its second half comes
        s.sendall(request("/a.txt")[:10])
        time.sleep(0.1)
        s.sendall(request("/a.txt")[10:])
        assert reader.response().body == b"AAAA"
        s.close()
        assert wait_for(lambda: open(log).read().endswith("0")), open(log).read()
        reads = open(log).read()
        # (the harness's start-up probe connects and closes: a "0" first)  At most the first read of
        # the fresh connection may come before its request does; before, every answer was followed
        # by an empty read: "0rerererererrere0".
        assert reads.count("e") <= 1, reads
        assert reads.count("r") >= 8, reads
    finally:
        srv.cleanup()


def test_connection_close_ends_pipeline():
    s = server().connect()
    s.sendall(request("/a.txt", extra="Connection: close\r\n") + request("/b.txt"))
    reader = Reader(s)
    r = reader.response()
    assert r.status == 200 and r.header("Connection") == "close"
    assert reader.closed()


def test_http10_closes_unless_keepalive():
    r, reader = exchange(server(), b"GET /a.txt HTTP/1.0\r\n\r\n")
    assert r.status == 200 and r.header("Connection") == "close" and reader.closed()
    r, reader = exchange(server(), b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert r.header("Connection") == "keep-alive"
    reader.sock.sendall(b"GET /b.txt HTTP/1.0\r\n\r\n")
    assert reader.response().body == b"BBBBBBBB"


def test_request_split_byte_by_byte():
    s = server().connect()
    for b in request("/a.txt"):
        s.sendall(bytes([b]))
    assert Reader(s).response().body == b"AAAA"


def test_many_concurrent_connections():
    socks = []
    for _ in range(300):
        socks.append(server().connect(timeout=10))
    for s in socks:
        s.sendall(request("/a.txt"))
    for s in socks:
        assert Reader(s).response().body == b"AAAA"
        s.close()


def test_malformed_requests_get_400_and_close():
    for raw in [b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
                b"GET / HTTP/1.1\r\n\r\n",
                b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
                b"GET / HTTP/1.1\nHost: t\n\n",
                b"GET /a#frag HTTP/1.1\r\nHost: t\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: t:abc\r\n\r\n"]:
        r, reader = exchange(server(), raw)
        assert r.status == 400, (raw, r)
        assert r.header("Connection") == "close", raw
        assert reader.closed(), raw


def test_extension_method_405_and_version_505():
    r, _ = exchange(server(), b"BREW /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 405 and "GET" in r.header("Allow")
    r, _ = exchange(server(), b"GET /a.txt HTTP/2.0\r\nHost: t\r\n\r\n")
    assert r.status == 505


def test_method_not_allowed_has_allow():
    r, reader = exchange(server(), request("/a.txt", method="DELETE"))
    assert r.status == 405, r
    assert r.header("Allow") == "GET, HEAD, OPTIONS"
    reader.sock.sendall(request("/a.txt"))
    assert reader.response().body == b"AAAA", "405 keeps the connection"


def test_trace_off_by_default():
    r, _ = exchange(server(), request("/a.txt", method="TRACE"))
    assert r.status == 405


def test_options_answers_allow():
    r, _ = exchange(server(), request("/a.txt", method="OPTIONS"))
    assert r.status == 200 and r.header("Allow") == "GET, HEAD, OPTIONS" and r.body == b""
    r, _ = exchange(server(), b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 200 and "GET" in r.header("Allow")


def test_unwanted_body_is_consumed_not_parsed_as_request():
    body = b"GET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = request("/a.txt", extra="Content-Length: %d\r\n" % len(body)) + body + request("/a.txt")
    rs, _ = exchange(server(), raw, count=2)
    assert [r.body for r in rs] == [b"AAAA", b"AAAA"], "a body must never become a request"


def test_chunked_body_consumed():
    raw = (request("/a.txt", extra="Transfer-Encoding: chunked\r\n")
           + b"4\r\nGET \r\n0\r\nX-Trailer: 1\r\n\r\n" + request("/b.txt"))
    rs, _ = exchange(server(), raw, count=2)
    assert [r.body for r in rs] == [b"AAAA", b"BBBBBBBB"]


def test_body_over_limit_413_and_close():
    r, reader = exchange(server(), request("/a.txt", extra="Content-Length: 100000\r\n"))
    assert r.status == 413 and reader.closed()
    raw = request("/a.txt", extra="Transfer-Encoding: chunked\r\n") + b"20000\r\n" + b"x" * 70000
    r, reader = exchange(server(), raw)
    assert r.status == 413 and reader.closed()


def test_expect_100_continue():
    s = server().connect()
    s.sendall(request("/a.txt", extra="Content-Length: 5\r\nExpect: 100-continue\r\n"))
    reader = Reader(s)
    first = reader.response()
    assert first.status == 100, first
    s.sendall(b"hello")
    assert reader.response().body == b"AAAA"


def test_expect_other_417():
    r, _ = exchange(server(), request("/a.txt", extra="Expect: teapot\r\n"))
    assert r.status == 417


def test_uri_too_long_414_header_too_large_431():
    r, _ = exchange(server(), request("/" + "a" * 9000))
    assert r.status == 414
    r, _ = exchange(server(), request("/a.txt", extra="X-Big: %s\r\n" % ("b" * 17000)))
    assert r.status == 431
    r, _ = exchange(server(), request("/" + "a" * 7990))
    assert r.status == 404, "8000-octet request lines are accepted"


def test_slow_header_gets_408_and_close():
    s = server().connect(timeout=15)
    s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n")
    reader = Reader(s)
    r = reader.response()
    assert r.status == 408
    assert reader.closed()


def test_keepalive_idle_connection_survives_then_serves():
    s = server().connect()
    reader = Reader(s)
    s.sendall(request("/a.txt"))
    reader.response()
    time.sleep(0.5)
    s.sendall(request("/b.txt"))
    assert reader.response().body == b"BBBBBBBB"


if __name__ == "__main__":
    sys.exit(run(globals()))
