"""HTTP/2 (RFC 9113): ALPN h2 on TLS and prior knowledge on h2c listeners, with curl, nghttp and
frame by frame with Debian's python3-h2.  Every bundled module over h2 in the seam configuration;
malformed requests refused as stream errors and broken framing as connection errors; flow
control; the 2023-2025 floods (Rapid Reset, CONTINUATION, MadeYouReset, SETTINGS, PING, PRIORITY,
empty DATA, zero window, too many streams) cut off while other clients are served; GOAWAY on
reloads with the streams in flight finished, and h2load through five reloads without a failure."""
import base64
import collections
import gzip
import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import h2.settings
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame, PingFrame, PriorityFrame, RstStreamFrame,
                              SettingsFrame, WindowUpdateFrame)

from h2client import H2, PREFACE
from harness import Server, curl, run, wait_for
from seam import Seam, stop_app
from test_sign import rfc_headers

PROTOCOL_ERROR, REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM, NO_ERROR = 1, 7, 9, 11, 0


def teardown_module():
    stop_app()


def h2c_server(extra="", workers=1, locations=None, flags="h2c", log_level="info"):
    srv = Server(workers=workers)
    srv.listen = ["127.0.0.1:%d %s" % (srv.port, flags)]
    srv.globals_text = 'access_log_buffer = "0"\nerror_log_level = "%s"\n' % log_level + extra
    srv.locations = locations.replace("@ROOT@", srv.root) if locations else ('location "/echo" { handler = "echo" }\n'
                                  'location "/" { handler = "static"  root = "%s" }\n' % srv.root)
    srv.file("index.html", "hello over h2\n")
    srv.write_config()
    # A bare TCP connect is not an HTTP/2 client: wait on the pid file and a real request instead.
    srv.answering = lambda: os.path.exists(srv.pid_file) and h2_alive(srv.port)
    try:
        return srv.start()
    except BaseException:
        srv.cleanup()   # a server that started but does not answer is not left running
        raise


def h2_alive(port):
    try:
        c = H2(port, timeout=2)
        ok = c.get("/index.html", timeout=2).status is not None
        c.close()
        return ok
    except (OSError, AssertionError):
        return False


def still_served(port, path="/index.html"):
    c = H2(port)
    try:
        r = c.get(path)
        return r.status == 200
    finally:
        c.close()


def test_h2c_prior_knowledge_and_alpn_h2_with_curl_and_nghttp():
    srv = Seam()
    try:
        rc, out, err = curl("--http2-prior-knowledge", "-i", "http://127.0.0.1:%d/" % srv.h2c_port)
        assert rc == 0 and out.startswith(b"HTTP/2 200") and b"the seam site" in out, (out, err)
        rc, out, err = curl("--http2", "-w", "\n%{http_version}", "--cacert", srv.ca.cert,
                            "--resolve", "a.test:%d:127.0.0.1" % srv.tls_port, "https://a.test:%d/" % srv.tls_port)
        assert rc == 0 and out.endswith(b"\n2") and b"the seam site" in out, (out, err)
        # ALPN without h2 stays on HTTP/1.1 on the same port
        rc, out, err = curl("--http1.1", "-w", "\n%{http_version}", "--cacert", srv.ca.cert,
                            "--resolve", "a.test:%d:127.0.0.1" % srv.tls_port, "https://a.test:%d/" % srv.tls_port)
        assert rc == 0 and out.endswith(b"\n1.1"), (out, err)
        proc = subprocess.run(["nghttp", "-s", "http://127.0.0.1:%d/healthz" % srv.h2c_port],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        assert proc.returncode == 0, proc.stdout
        # $server_protocol and $request say HTTP/2.0
        assert wait_for(lambda: "GET / HTTP/2.0" in open(srv.access_log).read()), open(srv.access_log).read()
    finally:
        srv.cleanup()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test_every_module_over_h2_in_the_seam():
    srv = Seam(start=False)
    srv.extra_locations = ('location "/listing/" { handler = "static"  root = "%s/site"  autoindex = true }'
                           % srv.root)
    srv.write_config()
    srv.start()
    c = H2(srv.h2c_port)
    try:
        big = os.urandom(3 * 1024 * 1024 + 17)
        srv.file("site/big.bin", big)
        # static: a large file whole, HEAD, a range, a conditional
        r = c.get("/big.bin")
        assert r.status == 200 and bytes(r.body) == big, r
        etag = r.header("etag")
        r = c.response(c.request("HEAD", "/big.bin"))
        assert r.status == 200 and r.header("content-length") == str(len(big)) and not r.body, r
        r = c.get("/big.bin", headers=[("range", "bytes=10-19")])
        assert r.status == 206 and bytes(r.body) == big[10:20], r
        r = c.get("/big.bin", headers=[("if-none-match", etag)])
        assert r.status == 304 and not r.body, r
        # gzip filter, a precompressed file, a listing
        srv.file("site/text.html", "<p>compress me</p>\n" * 500)
        r = c.get("/text.html", headers=[("accept-encoding", "gzip")])
        assert r.status == 200 and r.header("content-encoding") == "gzip", r
        assert gzip.decompress(bytes(r.body)) == b"<p>compress me</p>\n" * 500
        srv.file("site/pre.css", "body{}\n" * 100)
        srv.file("site/pre.css.gz", gzip.compress(b"precompressed\n"))
        r = c.get("/pre.css", headers=[("accept-encoding", "gzip")])
        assert r.header("content-encoding") == "gzip" and gzip.decompress(bytes(r.body)) == b"precompressed\n", r
        srv.file("site/sub/a.txt", "a")
        srv.file("site/sub/b.txt", "b")
        r = c.get("/listing/sub/")
        assert r.status == 200 and b"a.txt" in r.body and b"b.txt" in r.body, r
        # issue 37's directives: return, a rewrite's redirect, try_files, expires, add_header, a regex refusal
        r = c.get("/robots.txt")
        assert r.status == 200 and bytes(r.body) == b"User-agent: *" and r.header("x-frame-options") == "DENY", r
        r = c.get("/old-site/spa/")
        assert r.status == 301 and r.header("location") == "/spa/", r
        r = c.get("/spa/deep/link")
        assert r.status == 200 and bytes(r.body) == b"<main>spa</main>\n", r
        assert r.header("cache-control") == "max-age=3600" and r.header("x-content-type-options") == "nosniff", r
        assert c.response(c.request("PUT", "/uploads/x.php", body=b"<?php")).status == 403
        # echo: a body of 1 MiB comes back
        body = os.urandom(1 << 20)
        r = c.response(c.request("POST", "/echo", headers=[("accept", "application/json")], body=body))
        d = json.loads(bytes(r.body))
        assert r.status == 200 and d["version"] == "HTTP/2.0" and d["body_length"] == len(body), r
        assert base64.b64decode(d["body_base64"]) == body
        # upload: PUT, GET it back, DELETE
        r = c.response(c.request("PUT", "/uploads/h2.bin", body=big))
        assert r.status in (200, 201, 204), r
        assert bytes(c.get("/uploads/h2.bin").body) == big
        assert c.response(c.request("DELETE", "/uploads/h2.bin")).status in (200, 204)
        assert c.get("/uploads/h2.bin").status == 404
        # download
        r = c.get("/downloads/report.csv")
        assert r.status == 200 and "attachment" in (r.header("content-disposition") or ""), r
        # proxy: a body up, a large body down, HEAD's length from the upstream
        up = os.urandom(2 * 1024 * 1024)
        r = c.response(c.request("POST", "/app/h2-upload", body=up))
        d = json.loads(bytes(r.body))
        assert r.status == 200 and d["body_len"] == len(up) and d["body_sha256"] == sha(up), r
        # no length given: the stream's end is the body's end, sent on chunked
        assert [v for k, v in d["headers"] if k.lower() == "transfer-encoding"] == ["chunked"], d["headers"]
        r = c.get("/app/bulk?size=5000000")
        assert r.status == 200 and len(r.body) == 5000000, r
        r = c.response(c.request("HEAD", "/app/bulk?size=12345"))
        assert r.status == 200 and r.header("content-length") == "12345" and not r.body, r
        # sign: @authority and @target-uri from the pseudo-headers
        h = [(k.lower(), v) for k, v in rfc_headers("GET", "/api/h2", port=srv.h2c_port)]
        r = c.get("/api/h2", headers=h, authority="127.0.0.1:%d" % srv.h2c_port)
        assert r.status == 200, r
        h = [(k.lower(), v) for k, v in rfc_headers("GET", "/api/h2", port=srv.h2c_port, tamper=True)]
        r = c.get("/api/h2", headers=h, authority="127.0.0.1:%d" % srv.h2c_port)
        assert r.status == 401, r
        # status, health, auth_basic
        r = c.get("/status?format=json")
        assert r.status == 200 and json.loads(bytes(r.body))["workers"], r
        assert c.get("/healthz").status == 200
        r = c.get("/staff/index.html")
        assert r.status == 401 and r.header("www-authenticate"), r
        cred = base64.b64encode(b"alice:staff password").decode()
        r = c.get("/staff/index.html", headers=[("authorization", "Basic " + cred)])
        assert r.status == 200, r
        log = open(srv.access_log).read()
        assert "alice" in log and "POST /echo HTTP/2.0" in log, log
    finally:
        c.close()
        srv.cleanup()


def test_real_ip_proxy_protocol_and_misdirected_requests_over_h2():
    srv = Seam()
    try:
        # real_ip_from: 127.0.0.2 is trusted, its X-Forwarded-For names the client
        c = H2(srv.h2c_port, source="127.0.0.2")
        r = c.get("/echo", headers=[("accept", "application/json"), ("x-forwarded-for", "203.0.113.7")])
        assert json.loads(bytes(r.body))["client"] == "203.0.113.7", r
        c.close()
        # TLS: a connection for a.test may not be reused for b.test, whose certificate differs (§9.1.1)
        c = H2(srv.tls_port, tls_name="a.test", cafile=srv.ca.cert)
        assert c.get("/", authority="a.test").status == 200
        assert c.get("/", authority="www.a.test").status == 200
        r = c.get("/", authority="b.test")
        assert r.status == 421, r
        c.close()
    finally:
        srv.cleanup()
    # a PROXY preamble in front of cleartext HTTP/2
    srv = Server()
    srv.listen = ["127.0.0.1:%d proxy_protocol h2c" % srv.port]
    srv.globals_text = 'proxy_protocol_from = { "127.0.0.1" }\n'
    srv.locations = 'location "/echo" { handler = "echo" }\n'
    srv.write_config()
    srv.answering = lambda: os.path.exists(srv.pid_file)
    try:
        srv.start()
        time.sleep(0.3)
        c = H2(srv.port, preamble=b"PROXY TCP4 198.51.100.4 127.0.0.1 5555 80\r\n")
        r = c.get("/echo", headers=[("accept", "application/json")])
        assert r.status == 200 and json.loads(bytes(r.body))["client"] == "198.51.100.4", r
        c.close()
    finally:
        srv.cleanup()


def test_cookie_crumbs_are_one_field_for_modules_and_the_upstream():
    """Browsers split Cookie into one field per cookie over HTTP/2 (RFC 9113 §8.2.3, for HPACK).  The
    crumbs are joined with "; " before anything else sees them: the echo module sees one field, and
    the HTTP/1.1 upstream behind the proxy one Cookie line (two lines would reach gunicorn as one
    cookie whose value has a comma in it)."""
    srv = Seam()
    try:
        c = H2(srv.h2c_port)
        crumbs = [("cookie", "a=1"), ("x-between", "y"), ("cookie", "b=2"), ("cookie", "sid=abc")]
        r = c.get("/echo", authority="a.test", headers=crumbs)
        text = bytes(r.body).decode()
        assert r.status == 200 and text.lower().count("cookie:") == 1 and "cookie: a=1; b=2; sid=abc\n" in text, text
        r = c.get("/app/cookies", authority="a.test", headers=crumbs)
        seen = json.loads(bytes(r.body))
        cookies = [v for k, v in seen["headers"] if k.lower() == "cookie"]
        assert r.status == 200 and cookies == ["a=1; b=2; sid=abc"], seen["headers"]
        r = c.get("/app/one", authority="a.test", headers=[("cookie", "only=1")])
        assert [v for k, v in json.loads(bytes(r.body))["headers"] if k.lower() == "cookie"] == ["only=1"]
        c.close()
    finally:
        srv.cleanup()


def test_expect_100_continue_over_h2_after_every_check():
    """RFC 9110 §10.1.1 over HTTP/2: a client that asks waits for an interim 100 (HEADERS) before its
    body (until this, one that waited got nothing and sent after its own timeout).  It comes only once
    the checks passed: a signed location
    refuses an unsigned request with its final answer, and no 100; another expectation is 417."""
    srv = Seam()
    try:
        c = H2(srv.h2c_port)
        body = os.urandom(100000)
        sid = c.request("PUT", "/uploads/expected.bin", headers=[("expect", "100-continue"),
                                                                 ("content-length", str(len(body)))],
                        authority="a.test", end=False)
        assert c.wait(lambda: c.responses.get(sid) is not None and c.responses[sid].interim), c.responses.get(sid)
        assert c.responses[sid].interim[0] == [(":status", "100")] and c.responses[sid].status is None
        c.send_body(sid, body)
        r = c.response(sid)
        assert r.status == 201, r
        with open(os.path.join(srv.root, "uploads", "expected.bin"), "rb") as f:
            assert f.read() == body
        # the signed API: an unsigned request is refused before its body, and gets no 100
        sid = c.request("POST", "/api/items", headers=[("expect", "100-continue"), ("content-length", "10")],
                        authority="a.test", end=False)
        r = c.response(sid)
        assert r.status == 401 and r.interim == [], r
        r = c.response(c.request("POST", "/echo", headers=[("expect", "something-else")], body=b"x",
                                 authority="a.test"))
        assert r.status == 417, r
        c.close()
    finally:
        srv.cleanup()


def test_websocket_over_h2_through_the_proxy_to_an_http1_backend():
    from test_proxy import RawBackend, ws_frame, ws_parse
    ws = RawBackend("websocket")
    srv = h2c_server(locations='location "/ws" { handler = "proxy"  proxy_to = "http://127.0.0.1:%d"  '
                               'read_timeout = 5 }\nlocation "/" { handler = "static"  root = "%s" }\n'
                               % (ws.port, "@ROOT@"))
    try:
        c = H2(srv.port, validate=False)
        # RFC 8441 §3: the server says it takes extended CONNECT
        assert c.wait(lambda: c.conn.remote_settings.get(8) == 1), dict(c.conn.remote_settings)
        sid = c.open([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                      (":path", "/ws/chat"), (":authority", "t"), ("sec-websocket-version", "13")], end=False)
        r = c.responses[sid]
        assert c.wait(lambda: r.status is not None or r.reset is not None), r
        assert r.status == 200 and r.header("sec-websocket-accept") is None and r.header("content-length") is None, r
        # the backend's greeting, then an echo of each frame, small and large, both ways through the stream
        def next_frame():
            while True:
                frame, rest = ws_parse(bytes(r.body))
                if frame is not None:
                    r.body = bytearray(rest)
                    return frame
                assert c.wait(lambda: len(r.body) > 0 and ws_parse(bytes(r.body))[0] is not None or r.ended), r
        assert next_frame() == (1, b"hello")
        for payload in (b"ping", os.urandom(300000)):
            c.send_body(sid, ws_frame(payload, opcode=2), end=False)
            assert next_frame() == (2, payload)
        c.send_body(sid, ws_frame(b"\x03\xe8", opcode=8), end=False)
        assert next_frame() == (8, b"\x03\xe8")
        assert c.wait(lambda: r.ended or r.reset is not None), r   # the backend closed: so did the stream
        head = ws.request_head.lower()
        # the backend got the HTTP/1.1 handshake it knows, with a key HTTP/2 does not carry
        assert head.startswith(b"get /ws/chat http/1.1") and b"upgrade: websocket" in head, head
        assert re.search(rb"sec-websocket-key: [a-z0-9+/]{22}==", head), head
        # another stream on the same connection is served meanwhile and after
        assert c.get("/index.html").status == 200
        # a location that does not switch protocols cannot say 2xx to an extended CONNECT (its tunnel would not be)
        sid = c.open([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                      (":path", "/index.html"), (":authority", "t"), ("sec-websocket-version", "13")], end=False)
        r = c.responses[sid]
        assert c.wait(lambda: r.status is not None or r.reset is not None) and r.status == 501, r
        c.close()
    finally:
        ws.close()
        srv.cleanup()


def raw_conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(PREFACE + SettingsFrame(0).serialize())
    return s


def read_until_closed(s, timeout=10):
    data = b""
    s.settimeout(timeout)
    try:
        while True:
            piece = s.recv(65536)
            if not piece:
                return data, True
            data += piece
    except socket.timeout:
        return data, False
    except ConnectionResetError:
        return data, True


def frames(data):
    """(type, flags, stream id, payload) for each whole frame in data."""
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        if i + 9 + length > len(data):
            return
        yield data[i + 3], data[i + 4], int.from_bytes(data[i + 5:i + 9], "big") & 0x7fffffff, data[i + 9:i + 9 + length]
        i += 9 + length


def goaway_code(data):
    """The error code of the first GOAWAY frame in data, or None."""
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        ftype = data[i + 3]
        if ftype == 7 and i + 9 + 8 <= len(data):
            return int.from_bytes(data[i + 13:i + 17], "big")
        i += 9 + length
    return None


def test_malformed_requests_are_stream_errors_the_connection_lives_on():
    srv = h2c_server(extra='max_request_line = 4096\nmax_header_size = "8k"\n')
    c = H2(srv.port, validate=False)
    try:
        cases = [
            ("no :path", [(":method", "GET"), (":scheme", "http"), (":authority", "x")], PROTOCOL_ERROR),
            ("upper case name", [(":method", "GET"), (":path", "/"), (":scheme", "http"), ("X-Up", "1")],
             PROTOCOL_ERROR),
            ("connection-specific", [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                     ("connection", "keep-alive")], PROTOCOL_ERROR),
            ("te other than trailers", [(":method", "GET"), (":path", "/"), (":scheme", "http"), ("te", "gzip")],
             PROTOCOL_ERROR),
            ("pseudo after regular", [(":method", "GET"), ("x", "1"), (":path", "/"), (":scheme", "http")],
             PROTOCOL_ERROR),
            ("host differs from :authority", [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                              (":authority", "a.example"), ("host", "b.example")], 400),
            ("absolute URI in :path", [(":method", "GET"), (":path", "http://x/"), (":scheme", "http"),
                                       (":authority", "x")],
             (400, PROTOCOL_ERROR)),
            ("bad escape", [(":method", "GET"), (":path", "/%zz"), (":scheme", "http"), (":authority", "x")], 400),
            ("header list past max_header_size", [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                                  (":authority", "x")]
             + [("x-big-%d" % i, "v" * 500) for i in range(20)], 431),
        ]
        for name, headers, want in cases:
            r = c.response(c.open(headers))
            got = r.status if r.reset is None else r.reset
            assert got in (want if isinstance(want, tuple) else (want,)), (name, r)
        # Content-Length promises more than DATA brings
        sid = c.open([(":method", "POST"), (":path", "/echo"), (":scheme", "http"), (":authority", "x"),
                      ("content-length", "10")], end=False, flush=False)
        c.conn.send_data(sid, b"12345", end_stream=True)
        c.flush()
        r = c.response(sid)
        assert r.reset == PROTOCOL_ERROR or r.status == 400, r
        # and the connection still serves
        assert c.get("/index.html").status == 200 and not c.closed
    finally:
        c.close()
    try:
        # connection errors: DATA on stream 0, a bad HPACK index, an HTTP/1.1 request on an h2c port
        s = raw_conn(srv.port)
        s.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
        data, closed = read_until_closed(s)
        assert goaway_code(data) == PROTOCOL_ERROR and closed, data
        s = raw_conn(srv.port)
        hf = HeadersFrame(1, flags=["END_HEADERS", "END_STREAM"])
        hf.data = b"\xff\xff\x7f"   # indexed field far past any table
        s.sendall(hf.serialize())
        data, closed = read_until_closed(s)
        assert goaway_code(data) == COMPRESSION_ERROR and closed, data
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data, closed = read_until_closed(s)
        assert closed and not data.startswith(b"HTTP/1.1 200"), data
        assert still_served(srv.port)
    finally:
        srv.cleanup()


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def test_rfc9113_connection_errors_one_rule_each():
    FRAME_SIZE_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED = 6, 3, 5
    srv = h2c_server()
    get = headers_block()
    cases = [
        # (section, bytes after the preface and an empty SETTINGS, the GOAWAY code expected)
        ("4.2 DATA longer than SETTINGS_MAX_FRAME_SIZE",
         frame(1, 4, 1, headers_block("/echo", "POST")) + frame(0, 0, 1, b"x" * 16385), FRAME_SIZE_ERROR),
        ("4.2 PING of 7 octets", frame(6, 0, 0, b"1234567"), FRAME_SIZE_ERROR),
        ("5.1 DATA on an idle stream", frame(0, 0, 3, b"x"), PROTOCOL_ERROR),
        ("5.1.1 a client-initiated stream with an even identifier", frame(1, 5, 2, get), PROTOCOL_ERROR),
        # (HEADERS on a lower, never-opened stream after stream 5 is ignored by libnghttp2 1.52 as if the
        # stream had closed: RFC 9113 §5.1.1 asks for PROTOCOL_ERROR; it opens nothing and answers nothing.)
        ("6.1 DATA on stream 0", frame(0, 0, 0, b"x"), PROTOCOL_ERROR),
        ("6.2 HEADERS on stream 0", frame(1, 5, 0, get), PROTOCOL_ERROR),
        ("6.4 RST_STREAM on an idle stream", frame(3, 0, 7, b"\x00\x00\x00\x08"), PROTOCOL_ERROR),
        ("6.5 SETTINGS ACK with a payload", frame(4, 1, 0, b"\x00\x04\x00\x00\xff\xff"), FRAME_SIZE_ERROR),
        ("6.5 SETTINGS on a stream", frame(4, 0, 1, b""), PROTOCOL_ERROR),
        ("6.5.2 ENABLE_PUSH of 2", frame(4, 0, 0, b"\x00\x02\x00\x00\x00\x02"), PROTOCOL_ERROR),
        ("6.5.2 INITIAL_WINDOW_SIZE past 2^31-1", frame(4, 0, 0, b"\x00\x04\x80\x00\x00\x00"), FLOW_CONTROL_ERROR),
        ("6.5.2 MAX_FRAME_SIZE below 16384", frame(4, 0, 0, b"\x00\x05\x00\x00\x10\x00"), PROTOCOL_ERROR),
        ("6.7 PING on a stream", frame(6, 0, 1, b"12345678"), PROTOCOL_ERROR),
        ("6.8 GOAWAY on a stream", frame(7, 0, 1, b"\x00" * 8), PROTOCOL_ERROR),
        ("6.9 WINDOW_UPDATE of 0 on the connection", frame(8, 0, 0, b"\x00\x00\x00\x00"), PROTOCOL_ERROR),
        ("6.9.1 the connection window past 2^31-1", frame(8, 0, 0, b"\x7f\xff\xff\xff"), FLOW_CONTROL_ERROR),
        ("6.10 CONTINUATION without HEADERS", frame(9, 4, 1, get), PROTOCOL_ERROR),
        ("6.10 another frame inside a header block",
         frame(1, 0, 1, get[:2]) + frame(0, 0, 1, b"x"), PROTOCOL_ERROR),
        ("RFC 7541 6.1 an index past the tables", frame(1, 5, 1, b"\xff\x7f\x7f"), COMPRESSION_ERROR),
        ("RFC 7541 6.3 a table size past SETTINGS_HEADER_TABLE_SIZE",
         frame(1, 5, 1, b"\x3f\xe1\xff\x03" + get), COMPRESSION_ERROR),
        ("RFC 7541 5.2 Huffman padding longer than 7 bits",
         frame(1, 5, 1, b"\x82\x86\x84\x41\x82\xff\xff"), COMPRESSION_ERROR),
    ]
    try:
        for name, data, code in cases:
            s = raw_conn(srv.port)
            s.sendall(data)
            got, closed = read_until_closed(s)
            assert closed and goaway_code(got) == code, (name, goaway_code(got), closed)
            s.close()
        # one stream error among them, the connection going on: DATA after the client's END_STREAM
        s = raw_conn(srv.port)
        s.sendall(frame(1, 5, 1, get) + frame(0, 0, 1, b"late"))
        got, _ = read_until_closed(s, timeout=2)
        resets = [int.from_bytes(p, "big") for t, _, sid, p in frames(got) if t == 3 and sid == 1]
        assert resets == [STREAM_CLOSED] or goaway_code(got) == STREAM_CLOSED, (resets, got[-80:])
        assert still_served(srv.port)
    finally:
        srv.cleanup()


def test_flow_control_holds_the_response_to_the_client_window():
    srv = h2c_server()
    try:
        data = os.urandom(1 << 20)
        srv.file("big.bin", data)
        c = H2(srv.port, auto_ack=False)
        sid = c.request("GET", "/big.bin")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                c.pump(timeout=0.3)
            except socket.timeout:
                pass
        # RFC 9113 §6.9: no more than the client's 65,535-byte windows before it opens them
        assert len(c.responses[sid].body) == 65535, len(c.responses[sid].body)
        c.auto_ack = True
        c.conn.acknowledge_received_data(65535, sid)
        c.flush()
        r = c.response(sid)
        assert bytes(r.body) == data
        c.close()
    finally:
        srv.cleanup()


def test_a_file_cut_short_while_sent_over_tls_resets_its_stream_and_the_connection_serves_on():
    """Over TLS a file's DATA is read straight into the frames: a file that shrinks meanwhile ends its
    stream with INTERNAL_ERROR (never a hang, never bytes from elsewhere) and the connection goes on."""
    srv = Seam()
    try:
        data = os.urandom(1 << 20)
        srv.file("site/shrinks.bin", data)
        c = H2(srv.tls_port, tls_name="a.test", cafile=srv.ca.cert, auto_ack=False)
        sid = c.request("GET", "/shrinks.bin", authority="a.test", scheme="https")
        assert c.wait(lambda: len(c.responses[sid].body) == 65535), c.responses[sid]   # the window, unopened
        with open(os.path.join(srv.root, "site/shrinks.bin"), "r+b") as f:
            f.truncate(100000)
        c.auto_ack = True
        c.conn.acknowledge_received_data(65535, sid)
        c.flush()
        r = c.response(sid)
        assert r.reset == 2 and not r.ended, r                # RST_STREAM INTERNAL_ERROR
        assert bytes(r.body) == data[:len(r.body)] and len(r.body) <= 100000, len(r.body)
        again = c.get("/index.html", authority="a.test", scheme="https")
        assert again.status == 200 and bytes(again.body) == b"<h1>the seam site</h1>\n", again
        c.close()
        assert "truncated while being sent" in srv.log(), srv.log()
    finally:
        srv.cleanup()


def test_records_gathered_over_tls_reach_a_client_that_stops_reading_whole_and_in_order():
    """Over TLS the records of one write are made together and sent at once; what the socket does not
    take is held and goes first.  A client that stops reading with 12 MiB under way (so the socket
    fills mid-send), writes a PING meanwhile (read while records are held), then reads on, gets every
    byte of every file in order, the PING's answer, and a next request on the same connection."""
    srv = Seam()
    try:
        files = {"/big%d.bin" % i: os.urandom(4 << 20) for i in range(3)}
        for path, data in files.items():
            srv.file("site" + path, data)
        c = H2(srv.tls_port, tls_name="a.test", cafile=srv.ca.cert,
               settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1})
        c.conn.increment_flow_control_window((1 << 31) - 1 - 65535)
        c.flush()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sids = {path: c.request("GET", path, authority="a.test", scheme="https") for path in files}
        time.sleep(1)   # not reading: the server's sends fill the socket and the rest is held
        c.conn.ping(b"heldping")
        c.flush()
        for path, sid in sids.items():
            r = c.response(sid, timeout=60)
            assert r.status == 200 and len(r.body) == len(files[path]) and bytes(r.body) == files[path], \
                (path, r.status, len(r.body))
        assert c.wait(lambda: c.pings_acked >= 1), "the PING sent while records were held went unanswered"
        again = c.get("/index.html", authority="a.test", scheme="https")
        assert again.status == 200 and bytes(again.body) == b"<h1>the seam site</h1>\n", again
        c.close()
        assert "HTTP/2:" not in srv.log() and "TLS write failed" not in srv.log(), srv.log()
    finally:
        srv.cleanup()


def test_a_key_update_asked_for_mid_transfer_is_answered_in_order_over_h2():
    """TLS 1.3 KeyUpdate (RFC 8446 §4.6.3) while gathered records are under way: openssl s_client stops
    reading with 16 MiB in flight, then sends a KeyUpdate that asks for one back.  OpenSSL writes the
    answer at the server's next write, among the records gathered into one send: it must follow
    every record made with the old key and precede every record made with the new one, and any
    other order leaves the client unable to decrypt.  The client gets the whole file, byte for
    byte, and sees the server's KeyUpdate."""
    srv = Seam()
    msgs = os.path.join(srv.root, "s_client.msg")
    try:
        data = os.urandom(16 << 20)
        srv.file("site/huge.bin", data)
        client = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port,
                                   "-servername", "a.test", "-CAfile", srv.ca.cert, "-alpn", "h2", "-tls1_3",
                                   "-brief", "-msg", "-msgfile", msgs],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            block = hpack.Encoder().encode([(":method", "GET"), (":path", "/huge.bin"), (":scheme", "https"),
                                            (":authority", "a.test")])
            client.stdin.write(PREFACE + SettingsFrame(0, settings={4: (1 << 31) - 1}).serialize() +
                               WindowUpdateFrame(0, window_increment=(1 << 31) - 1 - 65535).serialize() +
                               HeadersFrame(1, block, flags=["END_STREAM", "END_HEADERS"]).serialize())
            client.stdin.flush()
            time.sleep(1)                        # not reading: the server's socket fills and records are held
            got = client.stdout.read1(65536)
            client.stdin.write(b"K\n")           # s_client's command: KeyUpdate, update_requested
            client.stdin.flush()
            body, ended = bytearray(), False
            deadline = time.monotonic() + 60
            while not ended and time.monotonic() < deadline:
                piece = client.stdout.read1(1 << 20)
                if not piece:
                    break
                got += piece
                body, ended = bytearray(), False
                for ftype, flags, sid, payload in frames(got):
                    if ftype == 0 and sid == 1:
                        body += payload
                        ended = ended or bool(flags & 1)
        finally:
            client.stdin.close()
            client.wait(timeout=10)
        assert ended and len(body) == len(data) and bytes(body) == data, (ended, len(body))
        with open(msgs) as f:
            trace = f.read()
        assert re.search(r">>> TLS 1\.3, Handshake \[length [0-9a-f]+\], KeyUpdate", trace), trace[-2000:]
        assert re.search(r"<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], KeyUpdate", trace), trace[-2000:]
        assert "TLS write failed" not in srv.log() and "TLS read failed" not in srv.log(), srv.log()
    finally:
        srv.cleanup()


SEAM_PATHS = ["/", "/index.html", "/echo", "/echo?q=1", "/status", "/status?format=prometheus", "/healthz",
              "/uploads/f.txt", "/signed-uploads/f.txt", "/downloads/x.bin", "/staff/", "/login", "/spa/a/b",
              "/robots.txt", "/uploads/x.php", "/api/items", "/cached/a", "/v1/x", "/old-site/a", "/%2e%2e/etc",
              "/a/../../b", "*", "", "/\x00", "http://a.test/"]


def random_frames(rnd):
    """Bytes of one random HTTP/2 conversation.  Each frame is well-formed nine times in ten (so the
    conversation reaches past the framing checks into the streams, the requests and the seam's
    modules) and wrong the tenth: stream ids old, even or idle; windows of 0 and past 2^31-1;
    settings out of range; padding past the end; lengths that lie; CONTINUATION out of place."""
    enc = hpack.Encoder()
    out = bytearray(PREFACE if rnd.random() < 0.99 else rnd.randbytes(24))
    sid, sending = 1, []   # the next stream id; streams whose body the client has not ended

    def bad():
        return rnd.random() < 0.1

    def frame_bytes(ftype, flags, stream, payload):
        length = len(payload) if rnd.random() < 0.99 else rnd.choice([0, len(payload) + 1, 16385, (1 << 24) - 1])
        return length.to_bytes(3, "big") + bytes([ftype, flags]) + (stream & 0xffffffff).to_bytes(4, "big") + payload

    def any_stream():
        return rnd.choice([sid, sid - 2 if sid > 2 else 1, sid + 1, 0, 2, (1 << 31) - 1, rnd.randrange(1 << 31)])

    def request_block():
        method = rnd.choice(["GET", "GET", "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "CONNECT"] +
                            (["get", ""] if bad() else []))
        fields = [(":method", method), (":scheme", "http" if not bad() else "ftp"),
                  (":path", rnd.choice(SEAM_PATHS)), (":authority", rnd.choice(["a.test", "a.test", "b.test", "x"]))]
        if method == "CONNECT" and rnd.random() < 0.7:
            fields.append((":protocol", "websocket"))
        if bad():
            rnd.shuffle(fields)
        if bad():
            del fields[rnd.randrange(len(fields))]
        for _ in range(rnd.randrange(5)):
            fields.append(rnd.choice([("content-length", str(rnd.choice([0, 1, 5, 100000]))), ("te", "trailers"),
                                      ("cookie", "a=1"), ("cookie", "b=2"), ("x-forwarded-for", "10.0.0.9"),
                                      ("if-none-match", '"x"'), ("range", "bytes=0-10"), ("expect", "100-continue"),
                                      ("accept-encoding", "gzip, br, zstd"), ("accept", "application/json"),
                                      ("signature-input", 'sig1=("@method");created=1'), ("priority", "u=0, i"),
                                      ("authorization", "Basic YWxpY2U6eA=="), ("x-long", "v" * 5000)]))
        if bad():
            fields.append(rnd.choice([("connection", "close"), ("te", "gzip"), ("Upper", "x"), ("host", "b.test"),
                                      ("content-length", "-1"), ("x", "a\r\nb")]))
        try:
            return enc.encode(fields) if not bad() else rnd.randbytes(rnd.randrange(40))
        except Exception:   # hpack refuses some of what we ask for: send garbage instead
            return rnd.randbytes(20)

    if rnd.random() < 0.97:   # the preface's SETTINGS (§3.4)
        out += frame_bytes(4, 0, 0, b"" if rnd.random() < 0.5 else
                           (4).to_bytes(2, "big") + rnd.choice([0, 100, 65535, (1 << 31) - 1]).to_bytes(4, "big"))
    for _ in range(rnd.randrange(1, 16)):
        kind = rnd.choice(["headers"] * 6 + ["data"] * 4 + ["settings", "window", "window", "rst", "priority",
                                                            "ping", "goaway", "unknown", "prio_update"])
        if (kind == "data" and not sending or kind == "rst" and sid == 1) and not bad():
            kind = "headers"   # nothing open to send on: open something
        if kind == "headers":
            block, ended = request_block(), rnd.random() < 0.5
            flags = 0x1 if ended else 0
            split = len(block) > 4 and rnd.random() < 0.15
            if not split:
                flags |= 0x4
            if rnd.random() < 0.1:
                flags |= 0x8
                pad = rnd.randrange(4) if not bad() else 200
                block = bytes([pad]) + block + b"\0" * min(pad, 3)
            out += frame_bytes(1, flags, sid if not bad() else any_stream(), block if not split else block[:3])
            if split:   # the rest in CONTINUATION, the last one ending the block
                out += frame_bytes(9, 0x4, sid if not bad() else any_stream(), block[3:])
            if not ended:
                sending.append(sid)
            sid += 2
        elif kind == "data":
            body = rnd.randbytes(rnd.choice([0, 1, 10, 1000, 16384]))
            ended = rnd.random() < 0.5
            stream = rnd.choice(sending) if sending and not bad() else any_stream()
            flags = 0x1 if ended else 0
            if rnd.random() < 0.1:
                flags |= 0x8
                body = bytes([0 if not bad() else 255]) + body
            out += frame_bytes(0, flags, stream, body)
            if ended and stream in sending:
                sending.remove(stream)
        elif kind == "settings":
            good = [(1, rnd.choice([0, 4096, 65536])), (2, 0), (3, rnd.choice([0, 100, 1000])),
                    (4, rnd.choice([0, 1, 65535, (1 << 31) - 1])), (5, rnd.choice([16384, 1 << 20])),
                    (6, rnd.choice([100, 1 << 20])), (8, 0), (0x99, 7)]
            wrong = [(2, 2), (4, 1 << 31), (5, 100), (5, 1 << 24), (8, 5)]
            payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big")
                               for k, v in (rnd.sample(good, rnd.randrange(4)) + ([rnd.choice(wrong)] if bad() else [])))
            out += frame_bytes(4, 0x1 if bad() else 0, 0 if not bad() else 1, payload)
        elif kind == "window":
            inc = rnd.choice([1, 1000, 65535, (1 << 31) - 1] if not bad() else [0, 1 << 31])
            out += frame_bytes(8, 0, rnd.choice([0] + sending) if not bad() else any_stream(), inc.to_bytes(4, "big"))
        elif kind == "rst":
            stream = rnd.randrange(1, sid, 2) if sid > 1 and not bad() else any_stream()
            out += frame_bytes(3, 0, stream, rnd.choice([0, 1, 2, 5, 8, 13]).to_bytes(4, "big"))
            if stream in sending:
                sending.remove(stream)
        elif kind == "priority":
            stream = rnd.randrange(1, sid + 10, 2)
            dep = rnd.choice([0, stream - 2 if stream > 2 else 0]) if not bad() else stream
            out += frame_bytes(2, 0, stream, dep.to_bytes(4, "big") + bytes([rnd.randrange(256)]))
        elif kind == "ping":
            out += frame_bytes(6, 0 if not bad() else 0x1, 0, rnd.randbytes(8 if not bad() else 7))
        elif kind == "goaway":
            out += frame_bytes(7, 0, 0, (0 if not bad() else rnd.randrange(sid + 1)).to_bytes(4, "big") +
                               rnd.randrange(14).to_bytes(4, "big"))
        elif kind == "prio_update":
            out += frame_bytes(16, 0, 0, rnd.randrange(1, sid + 4, 2).to_bytes(4, "big") +
                               rnd.choice([b"u=0", b"u=7, i", b"i", b"u=9", b"\xff"]))
        else:
            out += frame_bytes(rnd.randrange(10, 256), rnd.randrange(256), any_stream(), rnd.randbytes(rnd.randrange(20)))
    return bytes(out)


CONVERSATIONS = 500   # per thread


def test_random_frame_conversations_in_the_seam_never_crash_a_worker():
    """2,000 conversations of random frames (seeded, so a failure can be replayed), four at a time,
    on the seam's h2c listener and (one thread in four) over TLS with ALPN h2, against every module
    of the seam configuration.  Each gets whatever
    answer is right for it, or a stream or connection error; none may crash or wedge a worker (under
    the sanitizers in CI, none may touch memory it should not).  Afterwards the same workers serve
    HTTP/2 and HTTP/1.1 as before."""
    srv = Seam()
    try:
        pids_before = sorted(srv.worker_pids())
        failures = []

        tls = ssl.create_default_context(cafile=srv.ca.cert)
        tls.set_alpn_protocols(["h2"])

        def talk(seed, over_tls):
            rnd = random.Random(seed)
            for i in range(CONVERSATIONS):
                data = random_frames(rnd)
                try:
                    s = socket.create_connection(("127.0.0.1", srv.tls_port if over_tls else srv.h2c_port), timeout=5)
                    if over_tls:
                        s = tls.wrap_socket(s, server_hostname="a.test")
                except OSError as e:
                    failures.append("connect %d/%d: %s" % (seed, i, e))
                    return
                try:
                    s.sendall(data)
                    if over_tls:
                        s = s.unwrap()   # close_notify: the TLS way to say the client is done
                    s.shutdown(socket.SHUT_WR)
                    read_until_closed(s, timeout=5)
                except (OSError, ValueError):
                    pass   # a reset is one of the right answers to garbage
                finally:
                    s.close()

        threads = [threading.Thread(target=talk, args=(seed, seed == 9218)) for seed in (9113, 7541, 8441, 9218)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in threads), "a conversation never ended"
        assert not failures, failures
        log = srv.log()
        assert "killed by signal" not in log and "exited with status" not in log, log[-3000:]
        assert sorted(srv.worker_pids()) == pids_before, "a worker was replaced"
        c = H2(srv.h2c_port)
        r = c.get("/index.html", authority="a.test")
        assert r.status == 200 and bytes(r.body) == b"<h1>the seam site</h1>\n", r
        c.close()
        out = subprocess.run(["curl", "-s", "--http1.1", "-H", "Host: a.test", "http://127.0.0.1:%d/index.html" % srv.port],
                             stdout=subprocess.PIPE, timeout=30).stdout
        assert out == b"<h1>the seam site</h1>\n", out
    finally:
        srv.cleanup()


def parked(srv, c, times):
    """Reads c (its SETTINGS acknowledged) until the server's log says a connection was parked this many times."""
    return c.wait(lambda: srv.log().count("its session parked") >= times, timeout=10)


def test_an_idle_connection_parks_its_session_and_resumes_where_it_stopped():
    """A quiet connection gives back its libnghttp2 session.  The client's HPACK table is emptied first
    (SETTINGS_HEADER_TABLE_SIZE to 0 and back, RFC 7541 §4.2); the session that resumes it knows the
    client's settings, the windows either way and the streams before, so nothing the client does next
    can tell: a big download and upload, many streams, indexed headers, a PING, and the GOAWAY of a
    reload naming the last stream."""
    srv = h2c_server(log_level="debug")
    try:
        big = os.urandom(1 << 20)
        srv.file("big.bin", big)
        c = H2(srv.port)
        hdrs = [("x-long-indexed-header", "v" * 200), ("user-agent", "parking-test/1")]
        assert c.get("/index.html", headers=hdrs).status == 200
        # The client's table holds entries: the server asks for it empty, then parks.
        assert c.wait(lambda: (1, 0) in c.settings_seen and c.settings_seen[-1] == (1, 4096)), c.settings_seen
        assert parked(srv, c, 1), srv.log()
        # What needs the old session's state: the window it gave (1 MiB takes many updates), HPACK
        # both ways (the client refers to new entries of its own, we to ours), and stream ids going on.
        r = c.get("/big.bin", headers=hdrs)
        assert r.status == 200 and bytes(r.body) == big, r
        sids = [c.request("GET", "/index.html", headers=hdrs) for _ in range(30)]
        for sid in sids:
            r = c.response(sid)
            assert r.status == 200 and bytes(r.body) == b"hello over h2\n", r
        assert parked(srv, c, 2), srv.log()
        body = os.urandom(600000)   # past the stream's 256 KiB window: the server must open it again
        r = c.response(c.request("POST", "/echo", headers=[("accept", "application/json")], body=body))
        assert r.status == 200 and json.loads(bytes(r.body))["body_length"] == len(body), r
        assert parked(srv, c, 3), srv.log()
        c.conn.ping(b"parked!!")
        c.flush()
        assert c.wait(lambda: srv.log().count("resumed from its parked session") >= 3), srv.log()
        assert parked(srv, c, 4), srv.log()
        last = sids[-1] + 2   # the echo's stream
        srv.signal(signal.SIGHUP)
        assert c.wait_closed(), "the reload's GOAWAY should end the quiet connection"
        assert c.terminated == NO_ERROR and c.last_stream_id == last, (c.terminated, c.last_stream_id, last)
        c.close()
        assert "cannot resume" not in srv.log() and "HTTP/2:" not in srv.log(), srv.log()
    finally:
        srv.cleanup()


def test_rfc9218_urgency_decides_whose_data_goes_first():
    srv = h2c_server()
    try:
        srv.file("big.bin", os.urandom(1 << 20))
        srv.file("mid.bin", os.urandom(60000))
        c = H2(srv.port, auto_ack=False)
        c.pump(timeout=5)   # the server's SETTINGS: it takes RFC 9218 priorities (SETTINGS_NO_RFC7540_PRIORITIES)
        # Both requests in one write: the big one first, at the lowest urgency; the other urgent.
        low = c.open([(":method", "GET"), (":path", "/big.bin"), (":scheme", "http"),
                      (":authority", "x"), ("priority", "u=7")], flush=False)
        high = c.open([(":method", "GET"), (":path", "/mid.bin"), (":scheme", "http"),
                       (":authority", "x"), ("priority", "u=0")])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                c.pump(timeout=0.3)
            except socket.timeout:
                pass
        # The connection's 65,535-byte window, unopened: the urgent response took it whole, first.
        got_high, got_low = len(c.responses[high].body), len(c.responses[low].body)
        assert got_high == 60000 and got_low == 65535 - 60000, (got_high, got_low)
        c.close()
    finally:
        srv.cleanup()


def flood_test(srv, attack, code=ENHANCE_YOUR_CALM):
    """Runs attack on a raw connection; it must be closed (with GOAWAY code when given) while another
    client is served, and the error log names the client."""
    s = raw_conn(srv.port)
    attack(s)
    data, closed = read_until_closed(s, timeout=15)
    assert closed, "%s: the attacker's connection is still open" % attack.__name__
    if code is not None:
        assert goaway_code(data) == code, (attack.__name__, goaway_code(data), data[-64:])
    assert still_served(srv.port)
    s.close()


def headers_block(path="/index.html", method="GET"):
    return hpack.Encoder().encode([(":method", method), (":path", path), (":scheme", "http"),
                                   (":authority", "127.0.0.1")])


def test_floods_are_cut_off_and_others_still_served():
    srv = h2c_server()
    try:
        def rapid_reset(s):
            block = headers_block()
            out = b""
            for i in range(1, 4000, 2):
                hf = HeadersFrame(i, flags=["END_HEADERS", "END_STREAM"])
                hf.data = block
                out += hf.serialize() + RstStreamFrame(i, error_code=8).serialize()
                if len(out) > 60000:
                    s.sendall(out)
                    out = b""
            s.sendall(out)

        def continuation_flood(s):
            hf = HeadersFrame(1)
            hf.data = headers_block()[:1]
            s.sendall(hf.serialize())
            for _ in range(2000):
                cf = ContinuationFrame(1)
                cf.data = b"\x00"
                try:
                    s.sendall(cf.serialize())
                except OSError:
                    return

        def ping_flood(s):
            try:
                s.sendall(b"".join(PingFrame(0, opaque_data=b"12345678").serialize() for _ in range(20000)))
            except OSError:
                pass

        def settings_flood(s):
            try:
                s.sendall(b"".join(SettingsFrame(0, settings={4: 65535}).serialize() for _ in range(5000)))
            except OSError:
                pass

        def priority_flood(s):
            try:
                s.sendall(b"".join(PriorityFrame(i, depends_on=0, stream_weight=16).serialize()
                                   for i in range(1, 20000, 2)))
            except OSError:
                pass

        def empty_data_flood(s):
            hf = HeadersFrame(1, flags=["END_HEADERS"])
            hf.data = headers_block("/echo", "POST")
            try:
                s.sendall(hf.serialize() + b"".join(DataFrame(1).serialize() for _ in range(5000)))
            except OSError:
                pass

        def made_you_reset(s):
            # Each stream's window pushed past 2^31-1: the server has to reset it (FLOW_CONTROL_ERROR).
            out = b""
            for i in range(1, 2000, 2):
                hf = HeadersFrame(i, flags=["END_HEADERS"])
                hf.data = headers_block("/echo", "POST")
                out += hf.serialize() + WindowUpdateFrame(i, window_increment=0x7fffffff).serialize()
            try:
                s.sendall(out)
            except OSError:
                pass

        for attack in (rapid_reset, ping_flood, settings_flood, priority_flood, empty_data_flood, made_you_reset):
            flood_test(srv, attack)
        flood_test(srv, continuation_flood, code=None)   # libnghttp2 closes it (max_continuations)
        assert "HTTP/2 connection closed" in srv.log() and "127.0.0.1" in srv.log(), srv.log()
    finally:
        srv.cleanup()


def test_too_many_streams_are_refused_and_a_zero_window_times_out():
    srv = h2c_server(extra='http2_max_concurrent_streams = 4\nsend_timeout = 2\n')
    try:
        c = H2(srv.port)
        c.pump(timeout=5)   # the server's SETTINGS
        sids = [c.request("POST", "/echo", end=False) for _ in range(4)]
        # pretend we did not read the server's SETTINGS: python3-h2 would refuse to open it
        c.conn.remote_settings._settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = collections.deque([100])
        extra = c.open([(":method", "GET"), (":path", "/index.html"), (":scheme", "http"), (":authority", "x")])
        r = c.response(extra)
        # past a limit the client acknowledged: libnghttp2 makes it a connection error (RFC 9113 §5.1.2)
        assert r.reset in (REFUSED_STREAM, PROTOCOL_ERROR) or c.terminated == PROTOCOL_ERROR, (r, c.terminated)
        c.close()
        # within the limit, four streams at once are all answered
        c = H2(srv.port)
        c.pump(timeout=5)
        sids = [c.request("POST", "/echo", end=False) for _ in range(4)]
        for sid in sids:
            c.conn.send_data(sid, b"x", end_stream=True)
            c.flush()
        assert all(c.response(sid).status == 200 for sid in sids)
        c.close()
        # a client that opens no window holds nothing for longer than send_timeout
        srv.file("big.bin", os.urandom(1 << 20))
        z = H2(srv.port, settings={4: 0}, auto_ack=False)
        z.request("GET", "/big.bin")
        assert z.wait_closed(timeout=20), "a zero-window connection stays open"
        assert still_served(srv.port)
    finally:
        srv.cleanup()


def test_reload_sends_goaway_and_streams_in_flight_finish():
    srv = Seam()
    try:
        # Raw frames: python3-h2 stops reading at a GOAWAY, which RFC 9113 §6.8 lets streams outlive.
        s = raw_conn(srv.h2c_port)
        hf = HeadersFrame(1, flags=["END_HEADERS", "END_STREAM"])
        hf.data = headers_block("/app/slow?s=2")
        s.sendall(hf.serialize())
        time.sleep(0.5)
        srv.signal(signal.SIGHUP)
        data, closed = read_until_closed(s, timeout=30)
        got = list(frames(data))
        goaway = [p for t, _, _, p in got if t == 7]
        assert goaway and int.from_bytes(goaway[0][:4], "big") == 1 and int.from_bytes(goaway[0][4:8], "big") == 0, got
        # The stream in flight was answered in full; the GOAWAY came once the connection was quiet
        # (a drain spreads them, as it spreads HTTP/1.1 closes), then the close.
        status = hpack.Decoder().decode([p for t, _, sid, p in got if t == 1 and sid == 1][0])
        assert (":status", "200") in status and closed, (status, closed)
        assert any(t == 0 and sid == 1 and f & 1 for t, f, sid, _ in got), got
    finally:
        srv.cleanup()


def h2load_done(out):
    """h2load's requests line (total, done, succeeded, failed, errored), asserting that none failed."""
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                  out)
    assert m and m.group(4) == "0" and m.group(5) == "0", out
    return m


def test_h2load_through_five_reloads_sees_no_failed_request():
    srv = h2c_server(extra="keepalive_requests = 1000000\n", workers=2)
    try:
        # h2load through five reloads: not one request fails
        srv.file("small.html", "x" * 1024)
        # -D: a run of 3 s, so the five reloads fall inside it
        proc = subprocess.Popen(["h2load", "-D", "3", "-c", "4", "-m", "8", "-T", "30",
                                 "http://127.0.0.1:%d/small.html" % srv.port],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(5):
            time.sleep(0.4)
            srv.signal(signal.SIGHUP)
        out = proc.communicate(timeout=120)[0].decode()
        done = h2load_done(out)
        assert int(done.group(3)) == int(done.group(1)) and int(done.group(1)) > 1000, out
        assert wait_for(lambda: srv.log().count("reloaded") == 5), srv.log()
    finally:
        srv.cleanup()


def test_binary_upgrade_under_h2load_sees_no_failed_request():
    from test_upgrade import replace_binary, server_with_own_binary, start
    srv = server_with_own_binary(globals_text="keepalive_requests = 1000000\n")
    srv.listen = ["127.0.0.1:%d h2c" % srv.port]
    srv.write_config()
    srv.answering = lambda: os.path.exists(srv.pid_file) and h2_alive(srv.port)
    try:
        start(srv, foreground=False)
        old = srv.master_pid()
        replace_binary(srv, srv.binary)
        proc = subprocess.Popen(["h2load", "-D", "3", "-c", "4", "-m", "8", "-T", "30",
                                 "http://127.0.0.1:%d/f.bin" % srv.port],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        os.kill(old, signal.SIGUSR2)
        assert wait_for(lambda: srv.master_pid() != old, timeout=30), srv.log()
        out = proc.communicate(timeout=120)[0].decode()
        assert int(h2load_done(out).group(3)) > 1000, out
        # the old master's workers told their clients GOAWAY once quiet, and it went
        assert wait_for(lambda: not os.path.exists("/proc/%d" % old), timeout=30), srv.log()
        assert h2_alive(srv.port)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
