"""A fleet: two instances sharing one real redis-server (started here, on a loopback port, without
persistence), with Debian's haproxy in front.  The nonce store's "redis" backend: a signature
accepted by one instance is a replay on the other, one of eight copies sent at once wins, Redis
stopped or paused fails closed (503 nonce-store-unavailable) while static requests on the same
worker go on, Redis back is used again without a reload, a Redis that forgot its data refuses
older signatures as "restarted"; over HTTP/2 too, and for classic signatures that wait for the
body.  Skipped, saying so, only where redis-server is not installed (CI installs it)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import curl, free_port, helper_stop, HTTPD, Reader, run, Server, wait_for
from redisutil import PREFIX, REDIS_SERVER, Redis, settled
from test_haproxy import HAPROXY
from test_sign import classic_headers, raw_request, rfc_headers, write_key


def store_text(redis, extra=""):
    return ('sign_nonce_store { backend = "redis"  redis = "127.0.0.1:%d"  prefix = "%s"  timeout = "250ms"  %s }\n'
            % (redis.port, PREFIX, extra))


def instance(redis, workers=2, store=None, h2c=False):
    srv = Server(workers=workers)
    key = write_key(srv, "app-1.key")
    srv.listen = ["127.0.0.1:%d" % srv.port]
    if h2c:
        srv.h2c_port = free_port()
        srv.listen.append("127.0.0.1:%d h2c" % srv.h2c_port)
    srv.globals_text = 'access_log_buffer = "0"\n' + (store if store is not None else store_text(redis))
    srv.locations = ('location "/api/" {\n  handler = "echo"\n  check = {"sign"}\n'
                     '  sign { key "app-1" { secret_file = "%s" }  skew = 2 }\n}\n'
                     'location "/classic/" {\n  handler = "echo"\n  check = {"sign"}\n'
                     '  sign { key "app-1" { secret_file = "%s" }  mode = "classic"  skew = 2 }\n}\n'
                     'location "/readyz" { handler = "health" ready = true }\n'
                     'location "/metrics" { handler = "status"  format = "prometheus" }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % (key, key, srv.root))
    srv.write_config()
    srv.file("page.txt", b"page\n" * 10)
    return srv.start()


def ask(srv, raw, timeout=10):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    try:
        s.sendall(raw)
        return Reader(s).response()
    finally:
        s.close()


def signed(path="/api/orders", **kw):
    return raw_request("GET", path, rfc_headers("GET", path, **kw))


def stop_all(*things):
    for t in things:
        if t is not None:
            if isinstance(t, Server):
                t.stop()
            t.cleanup()


def test_a_signature_one_instance_accepted_is_a_replay_on_the_other():
    redis = Redis()
    a = b = None
    try:
        settled(redis)
        a, b = instance(redis), instance(redis)
        req = signed()
        r = ask(a, req)
        assert r.status == 200, (r, a.log()[-2000:])
        r = ask(b, req)
        assert r.status == 401 and r.header("Sign-Error") == "replay", r
        r = ask(a, req)
        assert r.status == 401 and r.header("Sign-Error") == "replay", r
        # the key is the prefix, the key id and the nonce, with a time to live of window + skew
        keys = [k for k in redis.command("KEYS", PREFIX + "app-1:*").split()]
        ttl = int(redis.command("PTTL", PREFIX + "app-1:" + req.split(b'nonce="')[1].split(b'"')[0].decode())[1:])
        assert keys and 290000 < ttl <= 302000, (keys, ttl)
    finally:
        stop_all(a, b, redis)


def test_eight_copies_at_once_four_to_each_instance_exactly_one_accepted():
    redis = Redis()
    a = b = None
    try:
        settled(redis)
        a, b = instance(redis), instance(redis)
        for _ in range(3):
            req = signed("/api/race")
            socks = []
            for i in range(8):
                s = socket.create_connection(("127.0.0.1", (a if i % 2 else b).port), timeout=10)
                socks.append(s)
            barrier = threading.Barrier(8)
            statuses = [None] * 8

            def go(i):
                barrier.wait()
                socks[i].sendall(req)
                statuses[i] = Reader(socks[i]).response().status
            threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            for s in socks:
                s.close()
            assert sorted(statuses) == [200] + [401] * 7, statuses
    finally:
        stop_all(a, b, redis)


class HAProxy:
    def __init__(self, a, b):
        self.dir = tempfile.mkdtemp(prefix="haproxy-test-")
        self.port = free_port()
        conf = os.path.join(self.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write("""global
    maxconn 200
defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
frontend fe
    bind 127.0.0.1:%(port)d
    default_backend be
backend be
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host lb
    default-server inter 200ms fall 1 rise 1
    server a 127.0.0.1:%(a)d check
    server b 127.0.0.1:%(b)d check
""" % {"port": self.port, "a": a.port, "b": b.port})
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", conf], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        assert wait_for(up, timeout=15), "haproxy did not start"

    def cleanup(self):
        helper_stop(self.proc, self.log, self.dir)


def test_through_haproxy_twenty_signed_requests_pass_once_and_their_replays_are_refused():
    redis = Redis()
    a = b = lb = None
    try:
        settled(redis)
        a, b = instance(redis), instance(redis)
        lb = HAProxy(a, b)
        time.sleep(0.5)   # both servers seen up by the health checks
        reqs = [signed("/api/item-%d" % i) for i in range(20)]

        def through(req):
            s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
            try:
                s.sendall(req)
                return Reader(s).response()
            finally:
                s.close()
        first = [through(req) for req in reqs]
        assert [r.status for r in first] == [200] * 20, [(r.status, r.header("Sign-Error")) for r in first]
        again = [through(req) for req in reqs]
        assert [(r.status, r.header("Sign-Error")) for r in again] == [(401, "replay")] * 20, again
        # round robin: both instances took part, and each refused replays of what the other accepted
        served = [len([line for line in open(s.access_log) if "/api/item-" in line]) for s in (a, b)]
        assert served[0] >= 10 and served[1] >= 10, served
    finally:
        stop_all(lb, a, b, redis)


def test_redis_stopped_or_paused_fails_closed_and_the_worker_serves_others_then_recovers():
    redis = Redis()
    srv = None
    try:
        settled(redis)
        srv = instance(redis, workers=1)
        assert ask(srv, signed()).status == 200
        # stopped: 503 at once (refused connections), never accepted
        redis.stop()
        for _ in range(3):
            r = ask(srv, signed(), timeout=5)
            assert r.status == 503 and r.header("Sign-Error") == "nonce-store-unavailable", r
            assert r.header("Retry-After") == "1", r
        assert ask(srv, b"GET /page.txt HTTP/1.1\r\nHost: x\r\n\r\n").status == 200
        # back: accepted again without a reload, once the backoff (at most 2 s) has passed
        redis.start()
        settled(redis)
        deadline = time.monotonic() + 10
        while True:
            r = ask(srv, signed(), timeout=5)
            if r.status == 200 or time.monotonic() > deadline:
                break
            assert r.status == 503, r
            time.sleep(0.2)
        assert r.status == 200, (r, srv.log()[-2000:])
        # paused (SIGSTOP): the connection is open and nothing answers.  A signed request waits for
        # the timeout, holding no thread: 50 static requests on the same (only) worker complete
        # meanwhile, and the signed one is refused.
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            waiting = []
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                s.sendall(signed())
                waiting.append(s)
            for _ in range(50):
                r = ask(srv, b"GET /page.txt HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
                assert r.status == 200, r
            for s in waiting:
                r = Reader(s).response()
                s.close()
                assert r.status == 503 and r.header("Sign-Error") == "nonce-store-unavailable", r
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while True:
            r = ask(srv, signed(), timeout=5)
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status == 200, (r, srv.log()[-2000:])
        # logged with the address and why, once a second at most, and counted
        assert wait_for(lambda: "no answer within the timeout: Connection timed out" in open(srv.error_log).read(),
                        timeout=5), open(srv.error_log).read()
        log = open(srv.error_log).read()
        assert "redis 127.0.0.1:%d: Server closed the connection" % redis.port in log, log[-3000:]
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n")
        metrics = Reader(s).response().body.decode()
        s.close()
        errors = [line for line in metrics.splitlines() if line.startswith("httpd_redis_errors_total ")]
        assert errors and int(errors[0].split()[1]) >= 7, errors
        count = [line for line in metrics.splitlines()
                 if line.startswith("httpd_redis_request_duration_seconds_count ")]
        assert count and int(count[0].split()[1]) >= 10, count
    finally:
        stop_all(srv, redis)


def test_a_redis_that_forgot_refuses_signatures_from_before_it_as_restarted():
    redis = Redis()
    a = None
    try:
        settled(redis)
        a = instance(redis)
        assert ask(a, signed()).status == 200
        # restarted without persistence: every nonce of the window is gone, and so is the epoch
        redis.stop()
        redis.start()
        old = signed(created=int(time.time()) - 10)
        deadline = time.monotonic() + 10
        while True:
            r = ask(a, old)
            if r.status != 503 or time.monotonic() > deadline:
                break
            old = signed(created=int(time.time()) - 10)
            time.sleep(0.2)
        assert r.status == 401 and r.header("Sign-Error") == "restarted", r
        epoch = int(redis.command("GET", PREFIX + "epoch"))
        assert abs(epoch - time.time()) < 30, epoch
        # created after the new epoch plus the skew (2 s): accepted
        time.sleep(max(0.0, epoch + 3 - time.time()))
        r = ask(a, signed())
        assert r.status == 200, r
    finally:
        stop_all(a, redis)


def test_over_http2_and_for_a_classic_signature_that_waits_for_its_body():
    redis = Redis()
    a = b = None
    try:
        settled(redis)
        a, b = instance(redis, h2c=True), instance(redis)
        h = rfc_headers("GET", "/api/h2")
        args = ["--http2-prior-knowledge", "-sS", "-o", "-", "-w", "%{http_code}",
                "http://127.0.0.1:%d/api/h2" % a.h2c_port, "-H", "Host: 127.0.0.1"]
        for k, v in h:
            args += ["-H", "%s: %s" % (k, v)]
        rc, out, err = curl(*args)
        assert rc == 0 and out.endswith(b"200"), (rc, out, err)
        r = ask(b, raw_request("GET", "/api/h2", h))
        assert r.status == 401 and r.header("Sign-Error") == "replay", r
        # classic: the HMAC covers the body's hash, so the claim waits for the end of the body
        body = b'{"order": 42}' * 1000
        h = classic_headers("POST", "/classic/orders", body)
        r = ask(a, raw_request("POST", "/classic/orders", h, body))
        assert r.status == 200 and r.body.endswith(body), r
        r = ask(b, raw_request("POST", "/classic/orders", h, body))
        assert r.status == 401 and r.header("Sign-Error") == "replay", r
        # RFC 9421 with a body: claimed at the head, the digest checked as the body streams
        h = rfc_headers("POST", "/api/up", body)
        r = ask(b, raw_request("POST", "/api/up", h, body))
        assert r.status == 200 and r.body.endswith(body), r
        r = ask(a, raw_request("POST", "/api/up", h, body))
        assert r.status == 401 and r.header("Sign-Error") == "replay", r
    finally:
        stop_all(a, b, redis)


def test_the_password_file_is_read_by_the_master_and_checked():
    redis = Redis(password="fleet secret")
    srv = None
    secrets = tempfile.mkdtemp(prefix="redis-pass-")
    try:
        settled(redis)
        pw = os.path.join(secrets, "redis.pass")
        with open(pw, "w") as f:
            f.write("fleet secret\n")
        os.chmod(pw, 0o600)
        srv = instance(redis, workers=1, store=store_text(redis, 'password_file = "%s"' % pw))
        r = ask(srv, signed())
        assert r.status == 200, (r, srv.log()[-2000:])
        # a wrong password: Redis refuses every command, and so the signature is refused (503)
        with open(pw, "w") as f:
            f.write("not the secret\n")
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: ask(srv, signed()).status == 503, timeout=15), srv.log()[-2000:]
        # a password file others may read is a configuration error at its line
        os.chmod(pw, 0o644)
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        assert proc.returncode == 1 and b"httpd.conf:" in proc.stderr and b"chmod 600" in proc.stderr, proc.stderr
    finally:
        stop_all(srv, redis)
        shutil.rmtree(secrets, ignore_errors=True)


def test_config_checks_need_no_redis_and_name_the_line():
    srv = Server(workers=1)
    try:
        port = free_port()   # nothing listens there: httpd -t does not connect
        for text, ok, needle in (
                ('sign_nonce_store { backend = "redis"  redis = "127.0.0.1:%d" }\n' % port, True, b""),
                ('sign_nonce_store { backend = "redis"  redis = "unix:/run/redis/redis.sock" }\n', True, b""),
                ('sign_nonce_store { backend = "redis"  redis = "127.0.0.1" }\n', False, b"HOST:PORT"),
                ('sign_nonce_store { backend = "redis"  redis = "127.0.0.1:99999" }\n', False, b"HOST:PORT"),
                ('sign_nonce_store { backend = "memcached" }\n', False, b"backend"),
                ('sign_nonce_store { backend = "redis"  redis = "unix:relative" }\n', False, b"absolute"),
                ('sign_nonce_store { backend = "redis"  redis = "127.0.0.1:6379"  password_file = "/nonexistent" }\n',
                 False, b"/nonexistent")):
            srv.globals_text = text
            srv.locations = ('location "/api/" {\n  handler = "echo"\n  check = {"sign"}\n'
                             '  sign { key "app-1" { secret_file = "%s" } }\n}\n' % write_key(srv, "k"))
            srv.write_config()
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=30)
            if ok:
                assert proc.returncode == 0, (text, proc.stderr)
            else:
                assert proc.returncode == 1 and b"httpd.conf:" in proc.stderr and needle in proc.stderr, \
                    (text, proc.stderr)
    finally:
        srv.cleanup()


def limited(redis, rate="1r/m", failure="closed", workers=2, burst=0):
    srv = Server(workers=workers)
    srv.globals_text = ('access_log_buffer = "0"\n'
                        'limit_req_zone "fleet" { key = "$remote_addr"  rate = "%s"  backend = "redis"  '
                        'redis = "127.0.0.1:%d"  timeout = "250ms" }\n'
                        'limit_req_zone "local" { key = "$remote_addr"  rate = "%s" }\n' % (rate, redis.port, rate))
    srv.locations = ('location "/limited/" { handler = "echo"  limit_req "fleet" { burst = %d  nodelay = true }  '
                     'limit_req_redis_failure = "%s" }\n'
                     'location "/local/" { handler = "echo"  limit_req "local" { } }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % (burst, failure, srv.root))
    srv.write_config()
    srv.file("page.txt", b"page\n")
    return srv.start()


def get(srv, path, timeout=10):
    return ask(srv, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode(), timeout=timeout)


def test_a_fleet_wide_rate_admits_one_of_ten_requests_spread_over_both_instances():
    redis = Redis()
    a = b = None
    try:
        a, b = limited(redis), limited(redis)
        statuses = [get(a if i % 2 else b, "/limited/x").status for i in range(10)]
        assert sorted(statuses) == [200] + [429] * 9, statuses
        # the same zone in each machine's memory admits one per instance
        statuses = [get(a if i % 2 else b, "/local/x").status for i in range(10)]
        assert sorted(statuses) == [200, 200] + [429] * 8, statuses
        r = get(a, "/limited/x")
        assert r.status == 429 and int(r.header("Retry-After")) > 1, r
        # one bucket per key, in Redis, expiring once it would have drained
        ttl = int(redis.command("PTTL", "httpd:limit:fleet:127.0.0.1")[1:])
        assert 0 < ttl <= 64000, ttl   # drained after a minute (the rate in whole requests per 1000 s)
    finally:
        stop_all(a, b, redis)


def test_a_fleet_wide_rate_fails_closed_or_open_as_configured():
    redis = Redis()
    closed = opened = None
    try:
        closed = limited(redis, rate="100r/s", burst=50)
        opened = limited(redis, rate="100r/s", failure="open", burst=50)
        assert get(closed, "/limited/x").status == 200 and get(opened, "/limited/x").status == 200
        redis.stop()
        r = get(closed, "/limited/x")
        assert r.status == 503 and r.header("Retry-After") == "1", r
        assert get(opened, "/limited/x").status == 200
        assert get(closed, "/page.txt").status == 200
        redis.start()
        assert wait_for(lambda: get(closed, "/limited/x").status == 200, timeout=10)
    finally:
        stop_all(closed, opened, redis)


def test_the_default_shm_backend_stays_one_machines_memory():
    # Two instances, each with its own shared-memory store: each accepts the signature once (today's
    # per-machine behaviour, which is why a fleet needs the redis backend).
    a = instance(None, store="")
    b = instance(None, store="")
    try:
        time.sleep(1.1)   # a new store refuses signatures created in its first second as "restarted"
        req = signed()
        assert ask(a, req).status == 200
        assert ask(b, req).status == 200
        assert ask(a, req).header("Sign-Error") == "replay"
        assert ask(b, req).header("Sign-Error") == "replay"
    finally:
        stop_all(a, b)


if __name__ == "__main__":
    if not os.path.exists(REDIS_SERVER):
        print("1..0 # SKIP redis-server is not installed (apt-get install redis-server)")
        sys.exit(0)
    sys.exit(run(globals()))
