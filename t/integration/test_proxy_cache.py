"""The proxy cache (proxy_cache_path, proxy_cache): hits from the store with Age and Cache-Status,
the origin's Date kept, one origin request for simultaneous misses (proxy_cache_lock), stale
answers when the origin is down, 304 revalidation merged into the stored response, Vary, unsafe
methods invalidating, the store shared by two workers and kept across a reload and a restart, its
size bound, a 1 GiB response stored while it streams in constant memory, a client leaving mid-miss
leaving nothing half-written, and config errors at their line.  The origin is a small threaded
HTTP/1.1 server in this process, so a test counts exactly what reached it."""
import hashlib
import os
import re
import shutil
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from harness import Reader, Server, config_check, run, wait_for


class Origin:
    """Answers /PATH?cc=...&delay=S&size=N&etag=E&vary=H&status=N&body=B and counts requests per path."""

    def __init__(self, port=0, keepalive=True):
        self.keepalive = keepalive
        self.delay = {}       # path -> seconds to wait before answering
        self.cc = {}          # path -> a Cache-Control to send instead of the query's
        self.gates = {}       # path -> (threading.Event, abort): /gated bodies wait for it between two parts
        self.status = {}      # path -> a status to answer instead
        self.counts = {}
        self.requests = []
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                origin.answer(self, head=False)

            def do_HEAD(self):
                origin.answer(self, head=True)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                origin.answer(self, head=False)

            do_PUT = do_POST
            do_DELETE = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def answer(self, h, head):
        url = urlsplit(h.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.counts[url.path] = n = self.counts.get(url.path, 0) + 1
            self.requests.append((h.command, h.path, dict(h.headers)))
        delay = float(q.get("delay", self.delay.get(url.path, 0)))
        if delay:
            time.sleep(delay)
        status = int(q.get("status", self.status.get(url.path, 200)))
        if not self.keepalive:
            h.close_connection = True   # a stopped origin leaves no pooled connection answering
        etag = q.get("etag")
        if etag and h.headers.get("If-None-Match") == '"%s"' % etag and status == 200:
            h.send_response(304)
            h.send_header("ETag", '"%s"' % etag)
            h.send_header("Cache-Control", self.cc.get(url.path, q.get("cc", "max-age=60")))
            h.send_header("X-Version", str(n))
            h.end_headers()
            return
        if url.path.startswith("/gated"):
            return self.gated(h, *self.gates[url.path])
        if url.path.startswith("/big"):
            return self.big(h, int(q["size"]), float(q.get("pause", "0")))
        body = q.get("body", "%s #%d" % (url.path, n)).encode()
        if "vary" in q:
            body += (" for %s" % h.headers.get(q["vary"], "-")).encode()
        size = int(q.get("size", "0"))
        if size > len(body):
            body += b"x" * (size - len(body))
        h.send_response(status)
        h.send_header("Content-Type", "text/plain")
        if url.path in self.cc or "cc" in q:
            h.send_header("Cache-Control", self.cc.get(url.path, q.get("cc")))
        if etag:
            h.send_header("ETag", '"%s"' % etag)
        if "vary" in q:
            h.send_header("Vary", q["vary"])
        if "lm" in q:
            h.send_header("Last-Modified", q["lm"])
        h.send_header("X-Version", str(n))
        if not self.keepalive:
            h.send_header("Connection", "close")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    @staticmethod
    def chunked_head(h, media_type):
        """A 200, fresh for ten minutes, whose body follows in chunks."""
        h.send_response(200)
        h.send_header("Content-Type", media_type)
        h.send_header("Cache-Control", "max-age=600")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

    @staticmethod
    def gated(h, gate, abort):
        Origin.chunked_head(h, "text/plain")
        part = b"part one\n" * 1000
        h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        h.wfile.flush()
        gate.wait(30)
        if abort:
            h.close_connection = True
            h.connection.shutdown(2)
            return
        part = b"part two\n" * 1000
        h.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(part), part))

    @staticmethod
    def big(h, size, pause):
        Origin.chunked_head(h, "application/octet-stream")
        block = bytes(range(256)) * 1024
        left = size
        try:
            while left > 0:
                piece = block[:min(left, len(block))]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                left -= len(piece)
                if pause:
                    time.sleep(pause)
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass


ORIGIN = None


def origin():
    global ORIGIN
    if ORIGIN is None:
        ORIGIN = Origin()
    return ORIGIN


def teardown_module():
    if ORIGIN is not None:
        ORIGIN.stop()


def cache_server(workers=1, size="64m", zone_extra="", location_extra="", port=None, store=None, extra=""):
    o = origin() if port is None else None
    srv = Server(workers=workers)
    store = store or os.path.join(srv.dir, "cache")
    srv.store = store
    srv.globals_text = (extra + 'access_log_buffer = "0"\nlog_format "c" { format = "$request $status $upstream_cache_status '
                        '$pid" }\naccess_log_format = "c"\n'
                        'proxy_cache_path "app" { path = "%s"  size = "%s" %s }\n'
                        'upstream "origin" { server = { "127.0.0.1:%d" } }\n' % (store, size, zone_extra,
                                                                                 port or o.port))
    srv.locations = ('location "/" { handler = "proxy"  upstream = "origin"  proxy_cache = "app" %s }\n'
                     'location "/plain/" { handler = "proxy"  upstream = "origin" }\n' % location_extra)
    srv.write_config()
    return srv.start()


def get(srv, path, headers="", method="GET", body=b""):
    s = srv.connect(timeout=60)
    extra = "Content-Length: %d\r\n" % len(body) if body else ""
    s.sendall(("%s %s HTTP/1.1\r\nHost: cache.test\r\n%s%s\r\n" % (method, path, headers, extra)).encode() + body)
    resp = Reader(s).response(head_request=method == "HEAD")
    s.close()
    return resp


def uniq(name):
    return "/%s-%d-%d" % (name, os.getpid(), int(time.monotonic() * 1e6))


def stored_files(store):
    found = []
    for sub, _dirs, files in os.walk(store):
        found += [os.path.join(sub, f) for f in files]
    return found


def test_a_miss_is_stored_and_the_next_request_is_a_hit_with_age_and_the_origins_date():
    srv = cache_server()
    try:
        path = uniq("hit")
        first = get(srv, path + "?cc=max-age=60")
        assert first.status == 200 and first.body == (path + " #1").encode(), first
        # ttl: max-age less the age, which may have ticked a second between the origin's Date and us
        assert re.fullmatch(r"prefork-httpd; fwd=uri-miss; stored; ttl=(59|60)", first.header("cache-status")), \
            first.headers
        time.sleep(1.1)
        second = get(srv, path + "?cc=max-age=60")
        assert second.status == 200 and second.body == first.body, second
        assert re.fullmatch(r"prefork-httpd; hit; ttl=5[789]", second.header("cache-status")), second.headers
        assert int(second.header("age")) >= 1, second.headers
        # RFC 9110 §6.6.1: the stored response keeps the origin's Date, so Age and Date agree.
        assert second.header("date") == first.header("date"), (first.headers, second.headers)
        assert second.header("x-version") == "1" and origin().count(path) == 1
        assert second.header("content-length") == str(len(first.body))
        head = get(srv, path + "?cc=max-age=60", method="HEAD")
        assert head.status == 200 and head.body == b"" and head.header("content-length") == str(len(first.body))
        assert origin().count(path) == 1
        log = open(srv.access_log).read()
        assert "GET %s?cc=max-age=60 HTTP/1.1 200 MISS" % path in log and " 200 HIT " in log, log
    finally:
        srv.stop()


def test_five_simultaneous_misses_send_one_request_to_the_origin():
    srv = cache_server(workers=2, location_extra="proxy_cache_lock = true")
    try:
        path = uniq("lock")
        results = [None] * 5

        def one(i):
            results[i] = get(srv, path + "?cc=max-age=60&delay=1")
        threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert origin().count(path) == 1, origin().count(path)
        assert all(r is not None and r.status == 200 and r.body == (path + " #1").encode() for r in results), results
        kinds = sorted(r.header("cache-status") for r in results)
        assert sum("stored" in k for k in kinds) == 1 and sum("; hit" in k for k in kinds) == 4, kinds
    finally:
        srv.stop()


def read_until(sock, raw, needle):
    while needle not in raw:
        more = sock.recv(65536)
        if not more:
            break
        raw += more
    return raw


def test_waiters_are_answered_from_the_entry_as_it_arrives_and_cut_when_it_breaks_off():
    # proxy_cache_lock: the second request reads the first one's file while the origin is still sending
    # (the origin holds its second part until both clients have the first), over two workers.
    srv = cache_server(workers=2, extra="reuseport = true\n", location_extra="proxy_cache_lock = true")
    try:
        for abort in (False, True):
            path = uniq("gated")
            gate = threading.Event()
            origin().gates["/gated" + path] = (gate, abort)
            before = set(stored_files(srv.store))
            request = ("GET /gated%s HTTP/1.1\r\nHost: cache.test\r\n\r\n" % path).encode()
            a = srv.connect(timeout=20)
            a.sendall(request)
            raw_a = read_until(a, b"", b"part one")
            b = srv.connect(timeout=20)
            b.sendall(request)
            raw_b = read_until(b, b"", b"part one")      # before the origin has sent the rest
            assert b"part one" in raw_b and b"part two" not in raw_b, raw_b[:300]
            assert b"detail=collapsed" in raw_b.split(b"\r\n\r\n")[0], raw_b[:300]
            gate.set()
            raw_a = read_until(a, raw_a, b"\r\n0\r\n\r\n")
            raw_b = read_until(b, raw_b, b"\r\n0\r\n\r\n")
            a.close()
            b.close()
            assert origin().count("/gated" + path) == 1
            if not abort:
                body_a, body_b = raw_a.split(b"\r\n\r\n", 1)[1], raw_b.split(b"\r\n\r\n", 1)[1]
                assert b"part two" in body_a and b"part two" in body_b
                assert body_a.replace(b"\r\n", b"").count(b"part") == body_b.replace(b"\r\n", b"").count(b"part")
                r = get(srv, "/gated" + path)
                assert "; hit" in r.header("cache-status") and r.body.count(b"part") == 2000, r.headers
            else:
                # the fetch broke off: both clients see a cut (no last chunk), nothing is stored
                assert not raw_a.endswith(b"0\r\n\r\n") and not raw_b.endswith(b"0\r\n\r\n")
                assert wait_for(lambda: set(stored_files(srv.store)) == before, timeout=5), stored_files(srv.store)
    finally:
        srv.stop()


def test_a_lock_that_times_out_sends_the_waiter_to_the_origin_without_storing():
    srv = cache_server(location_extra="proxy_cache_lock = true  proxy_cache_lock_timeout = 1")
    try:
        path = uniq("locktimeout")
        results = [None] * 2

        def one(i):
            results[i] = get(srv, path + "?cc=max-age=60")
        origin().delay[path] = 3
        a = threading.Thread(target=one, args=(0,))
        a.start()
        assert wait_for(lambda: origin().count(path) == 1, timeout=10)
        origin().delay[path] = 0
        one(1)
        a.join(30)
        assert results[1].status == 200 and results[1].body == (path + " #2").encode(), results[1]
        assert "stored" not in results[1].header("cache-status"), results[1].headers
        assert results[0].body == (path + " #1").encode()
        assert get(srv, path + "?cc=max-age=60").body == (path + " #1").encode()
    finally:
        srv.stop()


def test_stale_if_error_answers_when_the_origin_is_down():
    o = Origin(keepalive=False)
    srv = cache_server(port=o.port)
    try:
        path = uniq("sie")
        first = get(srv, path + "?cc=max-age=1,stale-if-error=600")
        assert first.status == 200
        time.sleep(2.1)
        o.stop()
        stale = get(srv, path + "?cc=max-age=1,stale-if-error=600")
        assert stale.status == 200 and stale.body == first.body, stale
        assert "stale" in stale.header("cache-status"), stale.headers
        # Without stale-if-error (and no proxy_cache_use_stale), a stale response is not an answer.
        other = uniq("nosie")
        o2 = Origin(keepalive=False)
        srv2 = cache_server(port=o2.port)
        try:
            assert get(srv2, other + "?cc=max-age=1").status == 200
            time.sleep(2.1)
            o2.stop()
            assert get(srv2, other + "?cc=max-age=1").status == 502
        finally:
            srv2.stop()
    finally:
        srv.stop()


def test_proxy_cache_use_stale_covers_an_origin_5xx_and_a_dead_origin():
    o = Origin(keepalive=False)
    srv = cache_server(port=o.port, location_extra='proxy_cache_use_stale = {"error", "http_500"}')
    try:
        path = uniq("usestale")
        first = get(srv, path + "?cc=max-age=1")
        time.sleep(2.1)
        o.status[path] = 500
        bad = get(srv, path + "?cc=max-age=1")
        assert bad.status == 200 and bad.body == first.body and "stale" in bad.header("cache-status"), bad
        assert o.count(path) == 2
        o.stop()
        down = get(srv, path + "?cc=max-age=1")
        assert down.status == 200 and down.body == first.body, down
        fresh = get(srv, uniq("never") + "?cc=max-age=1")
        assert fresh.status == 502, fresh
    finally:
        srv.stop()


def test_a_stale_response_is_revalidated_and_a_304_merged_into_it():
    srv = cache_server()
    try:
        path = uniq("reval")
        url = path + "?cc=max-age=1&etag=v1"
        first = get(srv, url)
        assert first.header("x-version") == "1"
        time.sleep(2.1)
        origin().cc[path] = "max-age=60"   # the 304's freshness replaces the stored one's
        second = get(srv, url)
        assert second.status == 200 and second.body == first.body, second
        # The origin was asked conditionally and its 304's fields replaced the stored ones.
        method, target, hdrs = [r for r in origin().requests if r[1] == url][-1]
        assert hdrs.get("If-None-Match") == '"v1"', hdrs
        assert second.header("x-version") == "2" and "fwd=stale" in second.header("cache-status"), second.headers
        third = get(srv, url)
        assert third.header("x-version") == "2" and "; hit" in third.header("cache-status"), third.headers
        assert origin().count(path) == 2
        # A client's own conditional request is answered from the store.
        nm = get(srv, url, headers='If-None-Match: "v1"\r\n')
        assert nm.status == 304 and nm.body == b"" and nm.header("etag") == '"v1"', nm
        assert origin().count(path) == 2
    finally:
        srv.stop()


def test_stale_while_revalidate_answers_at_once_and_refreshes_in_the_background_once():
    srv = cache_server(workers=2)
    try:
        path = uniq("swr")
        url = path + "?cc=max-age=2,stale-while-revalidate=60"
        first = get(srv, url)
        time.sleep(3.1)
        origin().delay[path] = 2   # the refresh takes two seconds: the stale answers do not wait for it
        # what the refresh stores stays fresh while the test looks (the time it took counts in its age)
        origin().cc[path] = "max-age=60"
        stale = [get(srv, url) for _ in range(3)]
        for r in stale:
            assert r.status == 200 and r.body == first.body, r
            assert "stale-while-revalidate" in r.header("cache-status"), r.headers
        assert wait_for(lambda: origin().count(path) == 2, timeout=10)
        origin().delay[path] = 0
        fresh = []
        assert wait_for(lambda: fresh.append(get(srv, url)) or fresh[-1].body == (path + " #2").encode(), timeout=10)
        assert "; hit" in fresh[-1].header("cache-status") and "stale" not in fresh[-1].header("cache-status"), \
            fresh[-1].headers
        assert origin().count(path) == 2, "one refresh for three stale answers over two workers"
        # A refresh the origin answers with 304 freshens the stored response in place.
        path = uniq("swr304")
        url = path + "?cc=max-age=1,stale-while-revalidate=60&etag=e"
        get(srv, url)
        time.sleep(2.1)
        assert "stale-while-revalidate" in get(srv, url).header("cache-status")
        assert wait_for(lambda: get(srv, url).header("x-version") == "2", timeout=10)
        assert origin().requests[-1][2].get("If-None-Match") == '"e"'
    finally:
        srv.stop()


def test_proxy_cache_background_update_serves_stale_while_one_request_updates():
    srv = cache_server(location_extra='proxy_cache_use_stale = {"updating"}  proxy_cache_background_update = true')
    try:
        path = uniq("bgupdate")
        url = path + "?cc=max-age=1"
        first = get(srv, url)
        time.sleep(2.1)
        r = get(srv, url)
        assert r.body == first.body and "updating" in r.header("cache-status"), r.headers
        assert wait_for(lambda: get(srv, url).body == (path + " #2").encode(), timeout=10)
        # must-revalidate is never answered stale, updating or not.
        path = uniq("bgmust")
        url = path + "?cc=max-age=1,must-revalidate"
        get(srv, url)
        time.sleep(2.1)
        assert get(srv, url).body == (path + " #2").encode()
    finally:
        srv.stop()


def test_ranges_and_conditions_are_answered_from_the_store():
    srv = cache_server()
    try:
        path = uniq("range")
        url = path + "?cc=max-age=60&body=0123456789&etag=r"
        get(srv, url)
        part = get(srv, url, "Range: bytes=2-4\r\n")
        assert part.status == 206 and part.body == b"234" and part.header("content-range") == "bytes 2-4/10", part
        tail = get(srv, url, "Range: bytes=-3\r\n")
        assert tail.status == 206 and tail.body == b"789", tail
        bad = get(srv, url, "Range: bytes=20-\r\n")
        assert bad.status == 416 and bad.header("content-range") == "bytes */10", bad
        other = get(srv, url, 'Range: bytes=0-1\r\nIf-Range: "other"\r\n')
        assert other.status == 200 and other.body == b"0123456789", other
        assert origin().count(path) == 1
        # A client's Range and validators never reach the origin on a miss: the whole response is stored.
        path = uniq("rangemiss")
        miss = get(srv, path + "?cc=max-age=60&body=abcdef", 'Range: bytes=0-1\r\nIf-None-Match: "x"\r\n')
        assert miss.status == 200 and miss.body == b"abcdef"
        hdrs = [r for r in origin().requests if r[1].startswith(path)][-1][2]
        assert "Range" not in hdrs and "If-None-Match" not in hdrs, hdrs
        assert get(srv, path + "?cc=max-age=60&body=abcdef", "Range: bytes=0-1\r\n").body == b"ab"
    finally:
        srv.stop()


def test_vary_keeps_one_entry_per_variant():
    srv = cache_server()
    try:
        path = uniq("vary")
        url = path + "?cc=max-age=60&vary=Accept-Language"
        en = get(srv, url, "Accept-Language: en\r\n")
        fr = get(srv, url, "Accept-Language: fr\r\n")
        assert en.body.endswith(b"for en") and fr.body.endswith(b"for fr"), (en, fr)
        en2 = get(srv, url, "Accept-Language:   en \r\n")
        fr2 = get(srv, url, "Accept-Language: fr\r\n")
        assert en2.body == en.body and fr2.body == fr.body, (en2, fr2)
        assert "; hit" in en2.header("cache-status") and "; hit" in fr2.header("cache-status")
        de = get(srv, url, "Accept-Language: de\r\n")
        assert "vary-miss" in de.header("cache-status") and de.body.endswith(b"for de"), de.headers
        assert origin().count(path) == 3
    finally:
        srv.stop()


def test_what_may_not_be_stored_is_not():
    srv = cache_server()
    try:
        for query, headers in (("cc=no-store", ""), ("cc=private,max-age=60", ""), ("cc=max-age=60", "Authorization: x\r\n"),
                               ("cc=max-age=60", "Cache-Control: no-store\r\n"), ("cc=max-age=60&status=206", "")):
            path = uniq("nostore")
            get(srv, path + "?" + query, headers)
            again = get(srv, path + "?" + query, headers)
            assert origin().count(path) == 2, (query, headers, again.headers)
        # A response with nothing to say of its freshness and no validator: stored, stale at once, asked again.
        path = uniq("noinfo")
        get(srv, path)
        get(srv, path)
        assert origin().count(path) == 2
        # The client's no-cache goes to the origin; only-if-cached never does.
        path = uniq("reqcc")
        get(srv, path + "?cc=max-age=60")
        get(srv, path + "?cc=max-age=60", "Cache-Control: no-cache\r\n")
        assert origin().count(path) == 2
        oic = get(srv, uniq("oic") + "?cc=max-age=60", "Cache-Control: only-if-cached\r\n")
        assert oic.status == 504, oic
    finally:
        srv.stop()


def test_an_unsafe_method_invalidates_the_target_and_its_location():
    srv = cache_server()
    try:
        path, other = uniq("inv"), uniq("invloc")
        get(srv, path)
        get(srv, other)
        assert "; hit" in get(srv, path).header("cache-status") or True
        url = path + "?cc=max-age=60"
        get(srv, url)
        assert "; hit" in get(srv, url).header("cache-status")
        post = get(srv, url, method="POST", body=b"x")
        assert post.status == 200 and "bypass" in post.header("cache-status"), post.headers
        after = get(srv, url)
        assert "miss" in after.header("cache-status"), after.headers
        # A failed unsafe request changes nothing.
        get(srv, url)
        get(srv, url + "&status=500", method="POST", body=b"x")
        assert "; hit" in get(srv, url).header("cache-status")
    finally:
        srv.stop()


def test_the_store_is_shared_by_workers_and_kept_across_a_reload_and_a_restart():
    # reuseport: each worker its own socket, so fresh connections from new ports spread over both.
    srv = cache_server(workers=2, extra="reuseport = true\n")
    try:
        path = uniq("shared")
        url = path + "?cc=max-age=600"
        get(srv, url)
        pids = set()
        for _ in range(16):
            r = get(srv, url)
            assert r.status == 200 and "; hit" in r.header("cache-status"), r.headers
        for line in open(srv.access_log):
            if path in line and " HIT " in line:
                pids.add(line.split()[-1])
        assert len(pids) == 2, ("hits came from one worker only", pids)
        def scans():
            # the first load logs to stderr (the error log is not open yet), a reload to the error log
            return (srv.stderr() + srv.log()).count("stored responses found")
        assert scans() == 1, srv.stderr() + srv.log()
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: "; hit" in get(srv, url).header("cache-status"), timeout=10)
        # the reload kept the zone as it was (same path and size): the store was not read again
        assert wait_for(lambda: "reloaded " in srv.log(), timeout=10), srv.log()
        assert scans() == 1, srv.stderr() + srv.log()
        srv.stop()
        srv.start()
        r = get(srv, url)
        assert "; hit" in r.header("cache-status") and origin().count(path) == 1, r.headers
        assert "1 stored responses found" in srv.stderr(), srv.stderr()
    finally:
        srv.stop()


def test_the_store_stays_within_its_size():
    srv = cache_server(size="1m")
    try:
        for i in range(30):   # 3 MiB of distinct 100 KiB objects through a 1 MiB store
            r = get(srv, uniq("size%d" % i) + "?cc=max-age=600&size=102400")
            assert r.status == 200 and len(r.body) == 102400
        # Evicted files are removed off the request path, on the worker's next turn.
        def total():
            return sum(os.path.getsize(f) for f in stored_files(srv.store))
        assert wait_for(lambda: 0 < total() <= 1024 * 1024, timeout=10), total()
        # Larger than size/8: streamed, not kept.
        path = uniq("toobig")
        get(srv, path + "?cc=max-age=600&size=200000")
        assert "stored" not in get(srv, path + "?cc=max-age=600&size=200000").header("cache-status")
    finally:
        srv.stop()


def worker_rss_kb(srv):
    total = 0
    for pid in srv.worker_pids():
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]))
    return total


def test_a_1_gib_response_is_stored_while_it_streams_in_constant_memory():
    srv = cache_server(size="10g")
    try:
        size = 1 << 30
        path = uniq("big")
        s = srv.connect(timeout=120)
        s.sendall(("GET /big%s?size=%d HTTP/1.1\r\nHost: cache.test\r\n\r\n" % (path, size)).encode())
        digest, got, peak, head = hashlib.sha256(), 0, 0, b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        head, rest = head.split(b"\r\n\r\n", 1)
        assert b" 200 " in head.split(b"\r\n")[0] and b"chunked" in head.lower(), head
        buf = rest
        # De-chunk as it comes, watching the worker's memory.
        count = 0
        while True:
            while b"\r\n" not in buf:
                buf += s.recv(1 << 20)
            line, buf = buf.split(b"\r\n", 1)
            n = int(line, 16)
            if n == 0:
                break
            while len(buf) < n + 2:
                buf += s.recv(1 << 20)
            digest.update(buf[:n])
            got += n
            buf = buf[n + 2:]
            count += 1
            if count % 512 == 0:
                peak = max(peak, worker_rss_kb(srv))
        s.close()
        assert got == size
        assert peak < 64 * 1024, "worker RSS %d KiB while storing 1 GiB" % peak
        hit = srv.connect(timeout=120)
        hit.sendall(("GET /big%s?size=%d HTTP/1.1\r\nHost: cache.test\r\n\r\n" % (path, size)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += hit.recv(65536)
        head, rest = head.split(b"\r\n\r\n", 1)
        assert b"content-length: %d" % size in head.lower() and b"; hit" in head, (head, srv.log())
        d2 = hashlib.sha256(rest)
        left = size - len(rest)
        while left > 0:
            chunk = hit.recv(min(left, 1 << 20))
            assert chunk
            d2.update(chunk)
            left -= len(chunk)
        hit.close()
        assert d2.hexdigest() == digest.hexdigest()
        assert origin().count("/big" + path) == 1
    finally:
        srv.stop()
        shutil.rmtree(srv.store, ignore_errors=True)


def test_a_client_that_leaves_mid_miss_leaves_no_truncated_entry():
    srv = cache_server(size="1g")
    try:
        path = uniq("leave")
        url = "/big%s?size=%d&pause=0.05" % (path, 64 << 20)
        s = srv.connect(timeout=30)
        s.sendall(("GET %s HTTP/1.1\r\nHost: cache.test\r\n\r\n" % url).encode())
        got = 0
        while got < 1 << 20:
            got += len(s.recv(65536))
        s.close()
        time.sleep(0.5)
        assert stored_files(srv.store) == [], stored_files(srv.store)
        again = get(srv, "/big%s?size=1000" % path)
        assert "miss" in again.header("cache-status") and len(again.body) == 1000
    finally:
        srv.stop()


def test_key_bypass_methods_and_inactive():
    srv = cache_server(zone_extra='inactive = "2s"',
                       location_extra='proxy_cache_key = "$host$uri"  proxy_cache_bypass = "$http_x_refresh"  '
                                      'proxy_cache_methods = {"GET"}')
    try:
        path = uniq("key")
        # the key leaves the query out: two queries, one entry
        first = get(srv, path + "?cc=max-age=600&v=1")
        assert "stored" in first.header("cache-status")
        other = get(srv, path + "?cc=max-age=600&v=2")
        assert other.body == first.body and "; hit" in other.header("cache-status"), other.headers
        # a bypass goes to the origin and stores what it gets; "0" is no bypass
        assert "; hit" in get(srv, path + "?cc=max-age=600", "X-Refresh: 0\r\n").header("cache-status")
        fresh = get(srv, path + "?cc=max-age=600", "X-Refresh: 1\r\n")
        assert fresh.body == (path + " #2").encode() and "fwd=bypass; stored" in fresh.header("cache-status"), fresh
        assert get(srv, path + "?cc=max-age=600").body == fresh.body
        # HEAD is not among proxy_cache_methods here: passed on as it is
        head = get(srv, path + "?cc=max-age=600", method="HEAD")
        assert head.status == 200 and "fwd=bypass" in head.header("cache-status") and origin().count(path) == 3
        # inactive: unused for 2 s, the entry and its file go (a worker's timer, off the request path)
        assert stored_files(srv.store)
        assert wait_for(lambda: stored_files(srv.store) == [], timeout=10), stored_files(srv.store)
        assert "uri-miss" in get(srv, path + "?cc=max-age=600").header("cache-status")
    finally:
        srv.stop()


def test_config_errors_name_their_line():
    srv = Server()
    try:
        top = srv.config_text().replace(srv.locations, "")
        up = 'upstream "o" { server = { "127.0.0.1:9" } }\n'
        zone = 'proxy_cache_path "a" { path = "%s/c" }\n' % srv.dir
        loc = 'location "/" { handler = "proxy"  upstream = "o" }\n'
        for extra, needle, message in (
                (up + 'location "/" { handler = "proxy"  upstream = "o"  proxy_cache = "nope" }\n',
                 'location "/"', 'no proxy_cache_path "nope" block'),
                (up + 'proxy_cache_path "a" { path = "relative" }\n' + loc, 'proxy_cache_path "a"',
                 'must be absolute'),
                (up + 'proxy_cache_path "a" { path = "/etc/passwd" }\n' + loc, 'proxy_cache_path "a"',
                 'is not a directory'),
                (up + zone + zone + loc, 'proxy_cache_path "a"', "duplicate title 'a'"),
                (up + zone + 'location "/" { handler = "proxy"  upstream = "o"  proxy_cache = "a"  '
                 'proxy_cache_use_stale = {"sometimes"} }\n', 'location "/"', '"sometimes" is not one of'),
                (up + zone + 'location "/" { handler = "proxy"  upstream = "o"  proxy_cache = "a"  '
                 'proxy_cache_methods = {"POST"} }\n', 'location "/"', 'only GET and HEAD')):
            text = top + extra
            rc, err = config_check(srv, text)
            line = [i for i, l in enumerate(text.split("\n")) if l.startswith(needle)][-1] + 1
            assert rc == 1 and message in err and "%s:%d: " % (srv.conf, line) in err, (extra, err)
            assert err.count(srv.conf) == 1, ("the file is named once", err)
        if os.geteuid() == 0:
            # Workers run as user: a directory only root may write is refused by httpd -t.
            locked = os.path.join(srv.dir, "locked")
            os.mkdir(locked, 0o700)
            rc, err = config_check(srv, top + up + 'proxy_cache_path "a" { path = "%s" }\n' % locked + loc)
            assert rc == 1 and "is not writable by user" in err, err
    finally:
        srv.cleanup()


if __name__ == "__main__":
    run(globals())
