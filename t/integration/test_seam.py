"""The seam: every bundled module in one configuration (seam.conf.in), as sites deploy them, and
the attacks of docs/security.md run against it beside ordinary requests.  Each attack test names
the defect of issue 32 it guards; every one of them failed on the code before its fix."""
import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time

from harness import HTTPD, Reader, curl, module_dir_with_tests, run, wait_for
from seam import Seam, stop_app
from test_proxy import rss_kb
from test_sign import classic_headers, raw_request, rfc_headers
from tlsutil import https_get


def teardown_module():
    stop_app()


def ask(srv, raw, port=None, source="127.0.0.1", timeout=30):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port or srv.plain_port))
    s.sendall(raw)
    r = Reader(s).response()
    s.close()
    return r


def app_saw(srv, needle):
    return [entry for entry in srv.seen() if needle in entry[1]]


def s_client(srv, *args, stdin=b""):
    proc = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port, "-CAfile",
                           srv.ca.cert, "-ign_eof"] + list(args), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=30)
    return proc.stdout.decode(errors="replace")


def test_the_seam_configuration_loads_and_serves_every_module():
    # defect 2: an option section (sign) in some locations and not in others loads
    srv = Seam(start=False)
    try:
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert not os.path.exists(os.path.join(srv.dir, "httpd.nonces")), "httpd -t made the nonce store"
        srv.start()
        r = ask(srv, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and b"seam site" in r.body, r
        r = ask(srv, b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200, r
        r = ask(srv, b"GET /status?format=json HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200, r
        r = ask(srv, b"GET /downloads/report.csv HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and r.body == b"a,b\n1,2\n" and "attachment" in r.header("Content-Disposition"), r
        r = ask(srv, b"GET /app/hello?x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and json.loads(r.body)["raw_uri"] == "/hello?x=1", r
        r = ask(srv, b"PROXY TCP4 198.51.100.4 127.0.0.1 5555 80\r\nGET /echo?format=json HTTP/1.1\r\n"
                     b"Host: a.test\r\n\r\n", port=srv.pp_port)
        assert r.status == 200 and json.loads(r.body)["client"] == "198.51.100.4", r
        status, _, body = https_get(srv.tls_port, "a.test", "/", srv.ca)
        assert status == 200 and b"seam site" in body
        status, _, body = https_get(srv.tls_port, "b.test", "/?format=json", srv.ca, client_cert=srv.alice[:2])
        assert status == 200 and b"CN=alice" in body, body
        # the signed API answers a signed request, through the proxy
        h = rfc_headers("GET", "/api/orders")
        r = ask(srv, raw_request("GET", "/api/orders", h))
        assert r.status == 200 and json.loads(r.body)["method"] == "GET", r
    finally:
        srv.cleanup()


def test_no_body_byte_reaches_the_proxy_before_the_signature_is_known():
    # defect 1: client and server, upstream and server
    srv = Seam()
    try:
        # classic: a made-up X-Sign, the body a moment after the head
        body = b'{"amount": 1000000, "x":1}'
        h = classic_headers("POST", "/classic/forged", body)
        h = [(k, "0" * 64 if k == "X-Sign" else v) for k, v in h]
        raw = raw_request("POST", "/classic/forged", h, body)
        head, _, rest = raw.partition(b"\r\n\r\n")
        s = srv.connect(timeout=20)
        s.sendall(head + b"\r\n\r\n")
        time.sleep(0.3)
        s.sendall(rest)
        r = Reader(s).response()
        s.close()
        assert r.status == 401 and r.header("Sign-Error") == "signature-mismatch", (r, srv.log()[-3000:])
        # RFC 9421: a good signature over body A, body B sent
        h = rfc_headers("POST", "/api/transfer", b"body A")
        r = ask(srv, raw_request("POST", "/api/transfer", h, b"body B"))
        assert r.status == 401 and r.header("Sign-Error") == "digest-mismatch", (r, srv.log()[-3000:])
        assert app_saw(srv, "/classic/forged") == [] and app_saw(srv, "/api/transfer") == [], srv.seen()
        # a good one goes through, once: a captured classic request is not replayed
        h = classic_headers("POST", "/classic/pay", body)
        r = ask(srv, raw_request("POST", "/classic/pay", h, body))
        assert r.status == 200, (h, r, srv.log()[-3000:])
        r = ask(srv, raw_request("POST", "/classic/pay", h, body))
        assert r.status == 401 and r.header("Sign-Error") == "replay", (r, srv.log()[-3000:])
        seen = app_saw(srv, "/classic/pay")
        assert seen == [["POST", "/classic/pay", hashlib.sha256(body).hexdigest()]], (seen, srv.log()[-3000:])
    finally:
        srv.cleanup()


def test_a_large_signed_upload_is_held_on_disk_then_forwarded_whole():
    # defect 1: the held body spills to temp_dir (64 KiB in memory) and reaches the app byte for
    # byte; the workers' memory stays flat however large it is
    srv = Seam()
    try:
        workers = srv.worker_pids()
        base = rss_kb(workers)
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(workers))
                time.sleep(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        block = os.urandom(1 << 20)
        count = 256
        digest = hashlib.sha256()
        for _ in range(count):
            digest.update(block)
        content_digest = "sha-256=:%s:" % base64.b64encode(digest.digest()).decode()
        h = rfc_headers("PUT", "/api/big", headers=[("Content-Digest", content_digest)],
                        components=('"@method"', '"@target-uri"', '"content-digest"'))
        s = srv.connect(timeout=120)
        s.sendall(raw_request("PUT", "/api/big", h).replace(b"\r\n\r\n", b"\r\nContent-Length: %d\r\n\r\n"
                                                            % (count << 20)))
        for _ in range(count):
            s.sendall(block)
        r = Reader(s).response()
        s.close()
        stop.set()
        sampler.join(5)
        assert r.status == 200, r
        d = json.loads(r.body)
        assert d["body_len"] == count << 20 and d["body_sha256"] == digest.hexdigest(), d
        assert peak[0] - base < 16 * 1024, "a 256 MiB held body grew the workers by %d KiB" % (peak[0] - base)
        assert os.listdir(os.path.join(srv.dir, "tmp")) == []   # O_TMPFILE: nothing left behind
    finally:
        srv.cleanup()


def test_signed_static_upload_is_written_only_after_the_digest_matched():
    # defect 1 with the static handler's own body hook: a bad digest leaves no file, not even a temporary one
    srv = Seam()
    try:
        h = rfc_headers("PUT", "/signed-uploads/a.txt", b"good")
        r = ask(srv, raw_request("PUT", "/signed-uploads/a.txt", h, b"evil"))
        assert r.status == 401 and r.header("Sign-Error") == "digest-mismatch", r
        assert os.listdir(os.path.join(srv.root, "uploads")) == []
        h = rfc_headers("PUT", "/signed-uploads/a.txt", b"good")
        r = ask(srv, raw_request("PUT", "/signed-uploads/a.txt", h, b"good"))
        assert r.status == 201, r
        with open(os.path.join(srv.root, "uploads", "a.txt"), "rb") as f:
            assert f.read() == b"good"
    finally:
        srv.cleanup()


def test_resumed_session_cannot_skip_client_certificates():
    # defect 3: one virtual host and another
    srv = Seam()
    try:
        for version in ("-tls1_2", "-tls1_3"):
            sess = os.path.join(srv.dir, "sess%s.pem" % version)
            out = s_client(srv, version, "-servername", "a.test", "-sess_out", sess,
                           stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            assert "HTTP/1.1 200" in out, out
            out = s_client(srv, version, "-servername", "b.test", "-sess_in", sess,
                           stdin=b"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
            assert "HTTP/1.1 200" not in out and "Reused" not in out, out
            # the session still resumes where it was made
            out = s_client(srv, version, "-servername", "a.test", "-sess_in", sess,
                           stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            assert "Reused" in out and "HTTP/1.1 200" in out, out
    finally:
        srv.cleanup()


def test_each_host_negotiates_its_own_tls13_suites_over_both_protocols():
    """b.test has its own tls_ciphersuites; a.test keeps the default (AES-128 first).  The list is
    the one SNI chose, for HTTP/1.1 and for ALPN h2 alike, and a client offering only suites the
    host does not allow is refused, not served with another host's list."""
    srv = Seam()
    try:
        key, cert = srv.alice[1], srv.alice[0]
        for alpn in ("http/1.1", "h2"):
            out = s_client(srv, "-tls1_3", "-servername", "a.test", "-alpn", alpn)
            assert "TLS_AES_128_GCM_SHA256" in out and "ALPN protocol: %s" % alpn in out, out
            out = s_client(srv, "-tls1_3", "-servername", "b.test", "-alpn", alpn, "-cert", cert,
                           "-key", key)
            assert "TLS_CHACHA20_POLY1305_SHA256" in out and "ALPN protocol: %s" % alpn in out, out
        out = s_client(srv, "-tls1_3", "-servername", "b.test", "-ciphersuites", "TLS_AES_256_GCM_SHA384",
                       "-cert", cert, "-key", key, stdin=b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
        assert "handshake failure" in out and "HTTP/1.1" not in out, out
        out = s_client(srv, "-tls1_3", "-servername", "a.test", "-ciphersuites", "TLS_AES_256_GCM_SHA384",
                       stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert "TLS_AES_256_GCM_SHA384" in out and "HTTP/1.1 200" in out, out
    finally:
        srv.cleanup()


def test_no_sni_cannot_reach_a_host_with_other_tls_settings():
    # defect 4: without SNI the connection is the default server's; b.test asks for certificates
    srv = Seam()
    try:
        out = s_client(srv, "-noservername", stdin=b"GET /?format=json HTTP/1.1\r\nHost: b.test\r\n"
                                                    b"Connection: close\r\n\r\n")
        assert "HTTP/1.1 421" in out and "CN=" not in out.split("HTTP/1.1 421", 1)[1], out
        out = s_client(srv, "-noservername", stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert "HTTP/1.1 200" in out, out
    finally:
        srv.cleanup()


def test_master_survives_a_worker_that_scribbles_over_shared_memory():
    # defect 5: worker and master
    srv = Seam(start=False)
    try:
        modules = module_dir_with_tests(srv.dir)
        marker = os.path.join(srv.dir, "scribbled")
        srv.module_dir = modules
        srv.extra_locations = '    location "/scribble" { handler = "scribble" scribble_marker = "%s" }' % marker
        os.chmod(srv.dir, 0o777)
        srv.write_config()
        srv.start()
        master = srv.master_pid()
        assert wait_for(lambda: os.path.exists(marker) and open(marker).read().endswith("pages\n"), timeout=20)
        with open(marker) as f:
            assert int(f.read().split()[0]) > 0   # it found writable shared pages and wrote over them
        time.sleep(2.5)   # the master's once-a-second work (ticket rotation, scoreboard) runs on what is left
        assert srv.master_pid() == master and os.path.exists("/proc/%d" % master)
        assert wait_for(lambda: srv.workers_running() == 2, timeout=20)
        r = ask(srv, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200, r
        r = ask(srv, b"GET /scribble HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and r.body == b"alive\n", r
        # what the scribbler left is only data to the workers too: pages that read it still answer
        for path in (b"/status", b"/status?format=json", b"/status?format=prometheus"):
            r = ask(srv, b"GET " + path + b" HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert r.status == 200, (path, r)
        # a signed request fails closed (or passes) on a scribbled nonce store and limit zone, it never
        # crashes a worker
        r = ask(srv, raw_request("GET", "/api/after", rfc_headers("GET", "/api/after")))
        assert r.status in (200, 401, 429, 500, 502, 503), r
        status, _, _ = https_get(srv.tls_port, "a.test", "/", srv.ca)
        assert status == 200
        assert "died by signal" not in srv.log(), srv.log()   # only the scribbler left, by its own _exit
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: "reload" in srv.log(), timeout=20)
        assert os.path.exists("/proc/%d" % master)
        assert ask(srv, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status == 200
    finally:
        srv.cleanup()


def test_the_client_cannot_choose_its_address_with_many_forwarded_lines():
    # defect 6: real_ip_from senders
    srv = Seam()
    try:
        lines = "".join("X-Forwarded-For: 6.6.6.%d\r\n" % i for i in range(20))
        raw = ("GET /echo?format=json HTTP/1.1\r\nHost: a.test\r\n%sX-Forwarded-For: 198.51.100.9\r\n\r\n" % lines)
        r = ask(srv, raw.encode(), source="127.0.0.2")
        assert json.loads(r.body)["client"] == "198.51.100.9", r.body
        # behind two of our proxies, each line one hop
        raw = ("GET /echo?format=json HTTP/1.1\r\nHost: a.test\r\n%sX-Forwarded-For: 198.51.100.9\r\n"
               "X-Forwarded-For: 10.0.0.7\r\n\r\n" % lines)
        r = ask(srv, raw.encode(), source="127.0.0.2")
        assert json.loads(r.body)["client"] == "198.51.100.9", r.body
    finally:
        srv.cleanup()


def test_proxy_path_is_built_from_the_path_the_location_matched():
    # defect 7: upstream and server
    srv = Seam()
    try:
        for target, expected in (("/x/../app/secret.txt?q=1", "/secret.txt?q=1"),
                                 ("/app/./a/../b%20c", "/b%20c"),
                                 ("/app//d", "/d")):
            r = ask(srv, ("GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n" % target).encode())
            assert r.status == 200 and json.loads(r.body)["raw_uri"] == expected, (target, r)
    finally:
        srv.cleanup()


def test_a_restart_reopens_no_replay_window():
    # defect 8: the nonce store is a file that outlives the master (the shm backend's)
    srv = Seam(nonces="shm")
    try:
        h = rfc_headers("GET", "/api/once", created=int(time.time()) + 20)
        assert ask(srv, raw_request("GET", "/api/once", h)).status == 200
        store = os.path.join(srv.dir, "httpd.nonces")
        assert os.stat(store).st_mode & 0o777 == 0o600
        srv.stop()
        srv.start()
        r = ask(srv, raw_request("GET", "/api/once", h))
        assert r.status == 401 and r.header("Sign-Error") == "replay", r
        # a signature of this very second is good at once: the store was reopened, not made anew
        h = rfc_headers("GET", "/api/fresh", created=int(time.time()))
        assert ask(srv, raw_request("GET", "/api/fresh", h)).status == 200
        # a store lost (deleted) is made anew, and then refuses what was created before it
        srv.stop()
        os.unlink(store)
        before = int(time.time()) - 1
        srv.start()
        r = ask(srv, raw_request("GET", "/api/old", rfc_headers("GET", "/api/old", created=before)))
        assert r.status == 401 and r.header("Sign-Error") == "restarted", r
    finally:
        srv.cleanup()


def test_the_fleets_stores_fail_closed_and_forgeries_cost_redis_nothing():
    # issue 36: the nonce store and the API's rate are the fleet's, in Redis.  A forged signature is
    # refused before any claim (Redis sees nothing of it); with Redis paused every signed or
    # fleet-limited request fails closed (503, nothing reaches the app or the disk) while the static
    # site, the cache and h2c answer at once on the same workers; Redis back, service resumes
    # without a reload, and a replay over the other protocol is still a replay
    srv = Seam()
    try:
        nonce_keys = lambda: len(srv.redis.command("KEYS", "seam:nonce:*").split())  # noqa: E731
        before = nonce_keys()
        for i in range(5):
            h = rfc_headers("GET", "/api/forged-%d" % i, tamper=True)
            r = ask(srv, raw_request("GET", "/api/forged-%d" % i, h))
            assert r.status == 401 and r.header("Sign-Error") == "signature-mismatch", r
        assert nonce_keys() == before and app_saw(srv, "/forged-") == []
        assert ask(srv, b"GET /cached/p?cc=public,max-age=600 HTTP/1.1\r\nHost: a.test\r\n\r\n").status == 200
        os.kill(srv.redis.proc.pid, signal.SIGSTOP)
        try:
            h = rfc_headers("GET", "/api/while-paused")
            r = ask(srv, raw_request("GET", "/api/while-paused", h))
            assert r.status == 503 and r.header("Retry-After") == "1", r
            body = b"signed while Redis was away\n"
            h = rfc_headers("PUT", "/signed-uploads/paused.txt", body)
            r = ask(srv, raw_request("PUT", "/signed-uploads/paused.txt", h, body))
            assert r.status == 503 and r.header("Sign-Error") == "nonce-store-unavailable", r
            assert not os.path.exists(os.path.join(srv.root, "uploads", "paused.txt"))
            assert app_saw(srv, "/while-paused") == []
            for path in (b"/", b"/cached/p?cc=public,max-age=600", b"/healthz"):
                r = ask(srv, b"GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n" % path, timeout=5)
                assert r.status == 200, (path, r)
            rc, out, err = curl("--http2-prior-knowledge", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--max-time", "5", "http://127.0.0.1:%d/" % srv.h2c_port, "-H", "Host: a.test")
            assert rc == 0 and out == b"200", (rc, out, err)
        finally:
            os.kill(srv.redis.proc.pid, signal.SIGCONT)
        # both workers back: each retries after its own backoff, two seconds at most
        time.sleep(2.2)
        passed = []
        assert wait_for(lambda: passed.append(ask(srv, raw_request("GET", "/api/back", rfc_headers(
            "GET", "/api/back")), timeout=5).status) or passed[-3:] == [200] * 3, timeout=10), passed
        h = rfc_headers("GET", "/api/again")
        assert ask(srv, raw_request("GET", "/api/again", h)).status == 200
        args = ["--http2-prior-knowledge", "-sS", "-D", "-", "-o", "/dev/null",
                "http://127.0.0.1:%d/api/again" % srv.h2c_port, "-H", "Host: 127.0.0.1"]
        for k, v in h:
            args += ["-H", "%s: %s" % (k, v)]
        rc, out, err = curl(*args)
        assert rc == 0 and b" 401" in out and b"sign-error: replay" in out.lower(), (out, err)
    finally:
        srv.cleanup()


def test_the_app_found_by_name_stays_reachable_and_checked_when_dns_fails():
    # issue 36: the application's upstream is a name the workers re-resolve.  DNS that stops answering
    # is no outage (the last good address stays, the failure is logged once), and nothing about the
    # name changes what the checks in front of it decide
    srv = Seam()
    try:
        r = ask(srv, b"GET /app/by-name HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and json.loads(r.body)["path"] == "/by-name", r
        srv.dns.set({})
        assert wait_for(lambda: "app.seam.test does not resolve" in srv.log(), timeout=15), srv.log()[-2000:]
        for i in range(6):
            r = ask(srv, b"GET /app/still-%d HTTP/1.1\r\nHost: a.test\r\n\r\n" % i)
            assert r.status == 200, r
        r = ask(srv, b"GET /api/unsigned HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 401 and app_saw(srv, "/unsigned") == [], r
        h = rfc_headers("GET", "/api/by-name")
        assert ask(srv, raw_request("GET", "/api/by-name", h)).status == 200
        srv.dns.set({"app.seam.test": ["127.0.0.1"]})
        assert wait_for(lambda: "app.seam.test resolves to 1 address now" in srv.log(), timeout=15), srv.log()[-2000:]
    finally:
        srv.dns.set({"app.seam.test": ["127.0.0.1"]})
        srv.cleanup()


def test_access_rules_use_the_real_client_address():
    # issue 34's access rules in the seam: /status is for 127.0.0.1 only, whoever connects
    srv = Seam()
    try:
        assert ask(srv, b"GET /status HTTP/1.1\r\nHost: a.test\r\n\r\n").status == 200
        r = ask(srv, b"GET /status HTTP/1.1\r\nHost: a.test\r\n\r\n", source="127.0.0.5")
        assert r.status == 403, r
        # a trusted proxy (127.0.0.2) forwarding someone else does not pass for 127.0.0.1
        r = ask(srv, b"GET /status HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 198.51.100.3\r\n\r\n",
                source="127.0.0.2")
        assert r.status == 403, r
        # nor does a client that writes 127.0.0.1 itself on the PROXY listener's other side
        r = ask(srv, b"PROXY TCP4 198.51.100.4 127.0.0.1 5555 80\r\nGET /status HTTP/1.1\r\nHost: a.test\r\n\r\n",
                port=srv.pp_port)
        assert r.status == 403, r
        assert ask(srv, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", source="127.0.0.5").status == 200
    finally:
        srv.cleanup()


def test_auth_basic_beside_signed_and_proxied_locations():
    # issue 34's auth_basic in the seam: 401 before the body, the user logged, other locations untouched
    srv = Seam()
    try:
        r = ask(srv, b"GET /staff/index.html HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 401 and r.header("WWW-Authenticate").startswith('Basic realm="Staff only"'), r
        good = base64.b64encode(b"alice:staff password")
        r = ask(srv, b"GET /staff/index.html HTTP/1.1\r\nHost: a.test\r\nAuthorization: Basic " + good + b"\r\n\r\n")
        assert r.status == 200 and b"seam site" in r.body, r
        # a refused upload never has its body read: the connection closes after the 401
        bad = base64.b64encode(b"alice:guess")
        s = srv.connect(timeout=20)
        s.sendall(b"GET /staff/x HTTP/1.1\r\nHost: a.test\r\nAuthorization: Basic " + bad +
                  b"\r\nContent-Length: 1000000\r\n\r\n")
        reader = Reader(s)
        r = reader.response()
        assert r.status == 401 and reader.closed(), r
        s.close()
        assert wait_for(lambda: " alice " in open(srv.access_log).read()), open(srv.access_log).read()
        assert ask(srv, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status == 200
    finally:
        srv.cleanup()


def test_limits_count_the_real_client_across_workers():
    # issue 34's limits in the seam: one zone for both workers, keyed on the real client address
    srv = Seam()
    try:
        def burst(source, headers=b""):
            socks = []
            for _ in range(10):
                s = socket.socket()
                s.bind((source, 0))
                s.settimeout(20)
                s.connect(("127.0.0.1", srv.plain_port))
                socks.append(s)
            for s in socks:
                s.sendall(b"GET /login HTTP/1.1\r\nHost: a.test\r\n" + headers + b"\r\n")
            got = sorted(Reader(s).response().status for s in socks)
            for s in socks:
                s.close()
            return got
        assert burst("127.0.0.5") == [200] * 3 + [429] * 7
        # a client that is not a trusted proxy cannot make itself new keys with X-Forwarded-For
        got = [ask(srv, b"GET /login HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 203.0.113.%d\r\n\r\n" % i,
                   source="127.0.0.5").status for i in range(3)]
        assert got == [429] * 3, got
        # behind the trusted proxy, each real client has its own bucket
        assert burst("127.0.0.2", b"X-Forwarded-For: 198.51.100.20\r\n") == [200] * 3 + [429] * 7
        assert ask(srv, b"GET /login HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 198.51.100.21\r\n\r\n",
                   source="127.0.0.2").status == 200
        assert ask(srv, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", source="127.0.0.5").status == 200
    finally:
        srv.cleanup()


def put(srv, path, body, headers=""):
    raw = "PUT %s HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n%s\r\n" % (path, len(body), headers)
    return ask(srv, raw.encode() + body)


def test_conditional_uploads_lose_no_update():
    # defect 9: client and server
    srv = Seam()
    try:
        path = os.path.join(srv.root, "uploads", "doc.txt")

        def content():
            with open(path, "rb") as f:
                return f.read()
        assert put(srv, "/uploads/doc.txt", b"v1").status == 201
        assert put(srv, "/uploads/doc.txt", b"v2", 'If-Match: "nope"\r\n').status == 412
        assert put(srv, "/uploads/doc.txt", b"v2", "If-None-Match: *\r\n").status == 412
        assert put(srv, "/uploads/doc.txt", b"v2", "If-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n").status == 412
        r = ask(srv, b'DELETE /uploads/doc.txt HTTP/1.1\r\nHost: a.test\r\nIf-Match: "nope"\r\n\r\n')
        assert r.status == 412, r
        assert content() == b"v1"
        etag = ask(srv, b"GET /uploads/doc.txt HTTP/1.1\r\nHost: a.test\r\n\r\n").header("ETag")
        # two editors with the same ETag: exactly one wins, whichever worker each lands on
        results = []

        def editor(i):
            results.append(put(srv, "/uploads/doc.txt", b"edit %d" % i, "If-Match: %s\r\n" % etag).status)
        threads = [threading.Thread(target=editor, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == [204] + [412] * 7, results
        assert content().startswith(b"edit ")
        assert put(srv, "/uploads/new.txt", b"n", "If-None-Match: *\r\n").status == 201
        r = ask(srv, b"DELETE /uploads/new.txt HTTP/1.1\r\nHost: a.test\r\nIf-Match: *\r\n\r\n")
        assert r.status == 204, r
        r = ask(srv, b"DELETE /uploads/none.txt HTTP/1.1\r\nHost: a.test\r\nIf-Match: *\r\n\r\n")
        assert r.status == 412, r
        assert sorted(os.listdir(os.path.join(srv.root, "uploads"))) == ["doc.txt"]   # no temporary file left
    finally:
        srv.cleanup()


def test_every_connection_line_and_every_forwarded_line_counts():
    # defect 10: hop-by-hop fields named on a second Connection line; X-Forwarded-For over several lines
    srv = Seam()
    try:
        raw = (b"GET /app/hop HTTP/1.1\r\nHost: a.test\r\nConnection: X-One\r\nConnection: X-Two\r\n"
               b"X-One: 1\r\nX-Two: 2\r\nX-Three: 3\r\nX-Forwarded-For: 192.0.2.1\r\n"
               b"X-Forwarded-For: 192.0.2.2, 192.0.2.3\r\n\r\n")
        r = ask(srv, raw)
        assert r.status == 200, r
        headers = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
        assert "x-one" not in headers and "x-two" not in headers and headers["x-three"] == "3", headers
        assert headers["x-forwarded-for"] == "192.0.2.1, 192.0.2.2, 192.0.2.3, 127.0.0.1", headers
    finally:
        srv.cleanup()


def test_secret_files_open_to_group_or_others_are_config_errors():
    # defect 10: a private key, a ticket key and a signing secret anyone else may read or replace
    srv = Seam(start=False)
    try:
        ticket = os.path.join(srv.dir, "ticket.key")
        with open(ticket, "wb") as f:
            f.write(os.urandom(80))
        text = open(srv.conf).read().replace('sign_nonce_store', 'tls_ticket_key_file = "%s"\nsign_nonce_store' % ticket, 1)
        srv.write_config(text)
        lines = text.split("\n")

        def line_of(needle):
            return [i + 1 for i, l in enumerate(lines) if needle in l][0]
        for path, mode, message, line in (
                (srv.certs["a_key"], 0o620, "tls_certificate_key: %s is writable by its group" % srv.certs["a_key"],
                 line_of("tls_certificate_key")),
                (srv.certs["a_key"], 0o604, "tls_certificate_key: %s is readable by others" % srv.certs["a_key"],
                 line_of("tls_certificate_key")),
                (ticket, 0o602, "tls_ticket_key_file: %s is writable by group or others" % ticket,
                 line_of("tls_ticket_key_file")),
                (srv.sign_key, 0o620, "secret_file %s: readable or writable by group or others" % srv.sign_key,
                 None)):
            os.chmod(ticket, 0o600)
            os.chmod(srv.certs["a_key"], 0o600)
            os.chmod(srv.sign_key, 0o600)
            os.chmod(path, mode)
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=30)
            err = proc.stderr.decode()
            assert proc.returncode == 1 and message in err, (path, oct(mode), err)
            if line is not None:
                assert "%s:%d: " % (srv.conf, line) in err, err
        os.chmod(srv.sign_key, 0o600)
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr
    finally:
        srv.cleanup()


def test_a_rewrite_into_a_signed_location_keeps_its_checks():
    # issue 37: /v1/ is rewritten into the signed /api/: the new location's sign check and limits apply
    srv = Seam()
    try:
        before = len(app_saw(srv, "/v1-probe"))
        r = ask(srv, b"POST /v1/v1-probe HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello")
        assert r.status == 401 and r.header("Sign-Error") is not None, r
        assert len(app_saw(srv, "/v1-probe")) == before      # nothing reached the application
        r = ask(srv, b"GET /old-site/spa/ HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 301 and r.header("Location") == "/spa/", r
    finally:
        srv.cleanup()


def test_compression_stays_in_the_root_and_off_refusals_and_ranges():
    # issue 38: a precompressed sibling is opened beneath the root like the file (a .br that is a symlink
    # out of the root is no sibling); refusals and ranges are never compressed; signed answers are
    srv = Seam()
    try:
        page = ("<p>%s</p>\n" % ("the seam site " * 200)).encode()
        srv.file("site/page.html", page)
        os.symlink("/etc/passwd", os.path.join(srv.root, "site", "page.html.br"))
        os.symlink("/etc/passwd", os.path.join(srv.root, "site", "page.html.gz"))
        for accept in ("br", "gzip", "br, gzip, zstd"):
            r = ask(srv, b"GET /page.html HTTP/1.1\r\nHost: a.test\r\nAccept-Encoding: %s\r\n\r\n" % accept.encode())
            assert r.status == 200 and r.header("Vary") == "Accept-Encoding", r
            coding = r.header("Content-Encoding")
            body = {"br": lambda b: __import__("brotli").decompress(b),
                    "gzip": lambda b: __import__("zlib").decompress(b, 47),
                    "zstd": lambda b: subprocess.run(["zstd", "-d", "-c", "-q"], input=b, stdout=subprocess.PIPE,
                                                     timeout=60).stdout}[coding](r.body)
            assert body == page and b"root:" not in r.body, (accept, coding)
        # a range of the page is a range of the page, identity
        r = ask(srv, b"GET /page.html HTTP/1.1\r\nHost: a.test\r\nAccept-Encoding: br\r\nRange: bytes=0-9\r\n\r\n")
        assert r.status == 206 and r.body == page[:10] and r.header("Content-Encoding") is None, r
        # a refused signed request: its 401 is not compressed, and never reaches the app
        h = rfc_headers("GET", "/api/zipped", tamper=True)
        r = ask(srv, raw_request("GET", "/api/zipped", h + [("Accept-Encoding", "br")]))
        assert r.status == 401 and r.header("Content-Encoding") is None, r
        assert app_saw(srv, "/api/zipped") == []
        # a signed one: the app's answer compressed on its way out, the signature check unchanged
        h = rfc_headers("GET", "/api/zipped?pad=" + "x" * 600)
        r = ask(srv, raw_request("GET", "/api/zipped?pad=" + "x" * 600, h + [("Accept-Encoding", "br")]))
        assert r.status == 200 and r.header("Content-Encoding") == "br", r
        assert json.loads(__import__("brotli").decompress(r.body))["path"].startswith("/api/zipped"), r
    finally:
        srv.cleanup()


def test_a_third_party_filter_and_the_coding_on_a_proxied_stream_over_both_protocols():
    # issue 38: examples/sub_filter (built outside the core, loaded from the module directory) rewrites the
    # app's stream before the coding compresses it, as it arrives, over HTTP/1.1 and over h2c
    srv = Seam()
    try:
        want = b"FIRST PART of the stream\n" * 40 + b"the rest, after the gate\n" * 40
        r = ask(srv, b"GET /app/drip HTTP/1.1\r\nHost: a.test\r\nAccept-Encoding: gzip\r\n\r\n")
        assert r.status == 200 and r.header("Content-Encoding") == "gzip", (r.headers, r.body[:200])
        assert __import__("zlib").decompress(r.body, 47) == want
        rc, out, err = curl("--http2-prior-knowledge", "-H", "Accept-Encoding: br", "-D", "-",
                            "http://127.0.0.1:%d/app/drip" % srv.h2c_port, "-H", "Host: a.test")
        head, _, data = out.partition(b"\r\n\r\n")
        assert rc == 0 and b"content-encoding: br" in head, (err, head)
        assert __import__("brotli").decompress(data) == want
        # a HEAD through the filters: the GET's head, no body, the connection goes on
        s = srv.connect(timeout=20)
        s.sendall(b"HEAD /app/drip HTTP/1.1\r\nHost: a.test\r\nAccept-Encoding: gzip\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
        reader = Reader(s)
        r = reader.response(head_request=True)
        assert r.status == 200 and r.header("Content-Encoding") == "gzip", r
        assert reader.response().status == 200
        s.close()
    finally:
        srv.cleanup()


def test_the_cache_answers_after_the_checks_and_keeps_clients_and_hosts_apart():
    # issue 35: the store is consulted only after the location's checks (an unsigned request for a
    # signed, cached answer is refused, and never served from the store); what a request with credentials
    # got is not kept for others; the key holds the host, so one site's name cannot fill another's
    # entries; hits are compressed on their way out and served over h2c like any answer
    srv = Seam()
    try:
        url = "/signed-cached/s?cc=public,max-age=600"
        r = ask(srv, b"GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n" % url.encode())
        assert r.status == 401 and app_saw(srv, "/s?cc") == [], r
        for _ in range(2):
            h = rfc_headers("GET", url)
            r = ask(srv, raw_request("GET", url, h))
            assert r.status == 200 and r.header("Cache-Status") is not None, (r, srv.log()[-2000:])
        assert len(app_saw(srv, "/s?cc")) == 1 and "; hit" in r.header("Cache-Status"), (r.headers, srv.seen())
        r = ask(srv, b"GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n" % url.encode())
        assert r.status == 401 and r.header("Cache-Status") is None, r
        # credentials: not stored (RFC 9111 §3.5), so the next client gets its own answer
        for auth, echoed in ((b"Authorization: Bearer alice-token\r\n", True), (b"", False)):
            r = ask(srv, b"GET /cached/me?cc=max-age=600 HTTP/1.1\r\nHost: a.test\r\n%s\r\n" % auth)
            assert r.status == 200 and (b"alice-token" in r.body) == echoed, r
        assert len(app_saw(srv, "/me?cc")) == 2
        # another Host is another key: evil.test's answer is not a.test's
        ask(srv, b"GET /cached/page?cc=max-age=600 HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        r = ask(srv, b"GET /cached/page?cc=max-age=600 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert "fwd=uri-miss" in r.header("Cache-Status") and len(app_saw(srv, "/page?cc")) == 2, r.headers
        assert json.loads(r.body)["headers"] and ["Host", "a.test"] in json.loads(r.body)["headers"]
        # a hit, compressed on the way out (the store keeps what the app sent) and over h2c
        r = ask(srv, b"GET /cached/page?cc=max-age=600&pad=%s HTTP/1.1\r\nHost: a.test\r\n\r\n" % (b"x" * 600))
        r = ask(srv, b"GET /cached/page?cc=max-age=600&pad=%s HTTP/1.1\r\nHost: a.test\r\nAccept-Encoding: gzip"
                     b"\r\n\r\n" % (b"x" * 600))
        assert "; hit" in r.header("Cache-Status") and r.header("Content-Encoding") == "gzip", r.headers
        assert json.loads(__import__("zlib").decompress(r.body, 47))["path"].startswith("/page"), r
        rc, out, err = curl("--http2-prior-knowledge", "-D", "-", "-H", "Host: a.test",
                            "http://127.0.0.1:%d/cached/page?cc=max-age=600" % srv.h2c_port)
        head, _, data = out.partition(b"\r\n\r\n")
        assert rc == 0 and b"cache-status: prefork-httpd; hit" in head, (err, head)
        assert len(app_saw(srv, "/page?cc")) == 3, srv.seen()
        for sub, _dirs, files in os.walk(os.path.join(srv.dir, "cache")):
            for f in files:
                assert b"alice-token" not in open(os.path.join(sub, f), "rb").read()
    finally:
        srv.cleanup()


def test_try_files_and_regex_locations_stay_in_the_root():
    # issue 37: try_files looks only beneath the root; a regex location answers before an upload's body
    srv = Seam()
    try:
        os.symlink("/etc/passwd", os.path.join(srv.root, "site", "spa", "passwd.js"))
        r = ask(srv, b"GET /spa/settings/deep HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and r.body == b"<main>spa</main>\n" and r.header("Cache-Control") == "max-age=3600"
        r = ask(srv, b"GET /spa/app.js HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and r.body == b"app();\n", r
        r = ask(srv, b"GET /spa/passwd.js HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert b"root:" not in r.body and r.body == b"<main>spa</main>\n", r   # the symlink is no file
        for target in (b"/spa/..%2f..%2f..%2fetc/passwd", b"/spa/%2e%2e/%2e%2e/%2e%2e/etc/passwd"):
            r = ask(srv, b"GET " + target + b" HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert b"root:" not in r.body, (target, r)
        # a .php upload is refused by the regex location before any body byte is read
        s = socket.create_connection(("127.0.0.1", srv.plain_port), timeout=20)
        s.sendall(b"PUT /uploads/shell.php HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000000\r\n\r\n")
        reader = Reader(s)
        r = reader.response()
        assert r.status == 403 and reader.closed(), r
        s.close()
        assert not os.path.exists(os.path.join(srv.root, "uploads", "shell.php"))
        r = ask(srv, b"GET /robots.txt HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and r.body == b"User-agent: *", r
    finally:
        srv.cleanup()


def test_add_header_values_cannot_split_the_response():
    # issue 37: a header value made from the client's bytes stays one field; "always" reaches refusals
    srv = Seam()
    try:
        r = ask(srv, b"GET /?q=%0d%0aSet-Cookie:%20evil=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 200 and r.header("Set-Cookie") is None, r
        assert r.header("X-Query") == "%0d%0aSet-Cookie:%20evil=1", r
        assert r.header("X-Content-Type-Options") == "nosniff" and r.header("X-Frame-Options") == "DENY", r
        r = ask(srv, b"GET /api/x HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert r.status == 401 and r.header("X-Frame-Options") == "DENY", r     # always
        assert r.header("X-Content-Type-Options") is None, r                    # not on a refusal
    finally:
        srv.cleanup()


def prometheus_counter(srv, name):
    r = ask(srv, b"GET /status?format=prometheus HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert r.status == 200, r
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("%s is not in the metrics:\n%s" % (name, r.body.decode()))


def counter_passes(srv, c, name, above, timeout=20):
    """Reads c (its SETTINGS acknowledged) until the metric passes above."""
    return c.wait(lambda: prometheus_counter(srv, name) > above, timeout=timeout)


def test_a_parked_h2_session_over_tls_resumes_with_every_check_in_place():
    # Parking (issue 33) frees a quiet connection's HTTP/2 session and makes a new one from what the
    # old one knew.  Over TLS, beside the proxy, sign, auth_basic and the nonce store: the resumed
    # session is the same virtual host's, and a signature, its replay and a password are checked as
    # on a fresh connection.
    from h2client import H2
    srv = Seam()
    try:
        parked0 = prometheus_counter(srv, "httpd_http2_sessions_parked_total")
        resumed0 = prometheus_counter(srv, "httpd_http2_sessions_resumed_total")
        c = H2(srv.tls_port, tls_name="a.test", cafile=srv.ca.cert)
        authority = "a.test:%d" % srv.tls_port
        hdrs = [("x-indexed-by-the-client", "v" * 120)]
        r = c.get("/", headers=hdrs, authority=authority, scheme="https")
        assert r.status == 200 and b"seam site" in bytes(r.body), r
        # the client's HPACK table is emptied (RFC 7541 §4.2), then the session goes
        assert c.wait(lambda: (1, 0) in c.settings_seen and c.settings_seen[-1] == (1, 4096)), c.settings_seen
        assert counter_passes(srv, c, "httpd_http2_sessions_parked_total", parked0), srv.log()
        assert not c.closed and c.terminated is None, (c.terminated, srv.log())
        body = os.urandom(70000)   # past the first stream window the resumed session must grant again
        signed = [(k.lower(), v) for k, v in rfc_headers(
            "POST", "/api/parked", body=body, host="a.test", port=srv.tls_port, scheme="https")]
        r = c.response(c.request("POST", "/api/parked", headers=hdrs + signed, body=body, authority=authority,
                                 scheme="https"))
        assert r.status == 200, r
        assert prometheus_counter(srv, "httpd_http2_sessions_resumed_total") > resumed0
        saw = app_saw(srv, "/api/parked")
        assert len(saw) == 1 and saw[0][2] == hashlib.sha256(body).hexdigest(), saw
        # parked again, then the same signature: a replay, refused before the app sees it
        assert counter_passes(srv, c, "httpd_http2_sessions_parked_total", parked0 + 1), srv.log()
        r = c.response(c.request("POST", "/api/parked", headers=hdrs + signed, body=body, authority=authority,
                                 scheme="https"))
        assert r.status == 401, r
        assert len(app_saw(srv, "/api/parked")) == 1
        r = c.get("/staff/index.html", authority=authority, scheme="https")
        assert r.status == 401, r
        cred = base64.b64encode(b"alice:wrong").decode()
        r = c.get("/staff/index.html", headers=[("authorization", "Basic " + cred)], authority=authority,
                  scheme="https")
        assert r.status == 401, r
        cred = base64.b64encode(b"alice:staff password").decode()
        r = c.get("/staff/index.html", headers=[("authorization", "Basic " + cred)], authority=authority,
                  scheme="https")
        assert r.status in (200, 404), r   # past the password (the page itself may not exist)
        r = c.get("/app/after-parking", authority=authority, scheme="https")
        assert r.status == 200 and app_saw(srv, "after-parking"), (r, srv.seen()[-3:])
        c.close()
        assert "cannot resume" not in srv.log() and "HTTP/2:" not in srv.log(), srv.log()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
