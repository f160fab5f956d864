"""The sign module over real sockets, 2 workers: RFC 9421 hmac-sha256 and classic signatures
made here with Python's hmac/hashlib (a second implementation), one test per refusal rule,
replays across workers, reloads and a killed worker, a full nonce store, a large upload
refused before its body, and httpd-sign | curl -K - end to end."""
import base64
import hashlib
import hmac
import os
import signal
import subprocess
import threading
import time

from harness import HTTPD, Reader, Server, run, wait_for

SECRET = base64.b64decode("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==")
HTTPD_SIGN = os.environ.get("HTTPD_SIGN_BIN", "tools/httpd-sign")
NONCE = [0]


def nonce():
    NONCE[0] += 1
    return "n-%d-%d" % (os.getpid(), NONCE[0])


def write_key(srv, name, secret=SECRET, mode=0o600):
    path = os.path.join(srv.dir, name)
    with open(path, "w") as f:
        f.write(base64.b64encode(secret).decode() + "\n")
    os.chmod(path, mode)
    return path


def start(extra="", store="", workers=2):
    srv = Server(workers=workers)
    key = write_key(srv, "app-1.key")
    old = write_key(srv, "old.key", secret=b"o" * 40)
    srv.globals_text = store
    srv.locations = ('location "/api/" {\n  handler = "echo"\n  check = {"sign"}\n'
                     '  sign {\n    key "app-1" { secret_file = "%s" }\n'
                     '    key "old" { secret_file = "%s" not_after = "2020-01-01T00:00:00Z" }\n'
                     '    %s\n  }\n}\n'
                     'location "/classic/" {\n  handler = "echo"\n  check = {"sign"}\n'
                     '  sign { key "app-1" { secret_file = "%s" } mode = "classic" }\n}\n'
                     % (key, old, extra, key))
    srv.write_config()
    srv.start()
    srv.key = key
    time.sleep(1.1)   # signatures made in the second the server started are not "restarted"
    return srv


def rfc_headers(method, target, body=b"", components=('"@method"', '"@target-uri"'), created=None,
                keyid="app-1", secret=SECRET, extra_params="", nonce_value=None, host="127.0.0.1",
                headers=(), label="sig1", digest="sha-256", tamper=False, port=None, scheme="http"):
    """Signature-Input and Signature over the raw request, as RFC 9421 §2.5 builds the base."""
    created = int(time.time()) if created is None else created
    nonce_value = nonce() if nonce_value is None else nonce_value
    fields = dict((k.lower(), v) for k, v in headers)
    hdrs = list(headers)
    if body and digest:
        alg = hashlib.sha512 if digest == "sha-512" else hashlib.sha256
        cd = "%s=:%s:" % (digest, base64.b64encode(alg(body).digest()).decode())
        hdrs.append(("Content-Digest", cd))
        fields["content-digest"] = cd
        if '"content-digest"' not in components:
            components = tuple(components) + ('"content-digest"',)
    authority = host if port is None else "%s:%d" % (host, port)
    lines = []
    for c in components:
        name = c.strip('"')
        if name == "@method":
            value = method
        elif name == "@target-uri":
            value = "%s://%s%s" % (scheme, authority, target)
        elif name == "@authority":
            value = authority
        elif name == "@path":
            value = target.split("?")[0]
        else:
            value = fields.get(name, "")
        lines.append("%s: %s" % (c, value))
    params = "(%s)" % " ".join(components)
    if created is not False:
        params += ";created=%d" % created
    params += ';keyid="%s";alg="hmac-sha256"' % keyid
    if nonce_value is not False:
        params += ';nonce="%s"' % nonce_value
    params += extra_params
    lines.append('"@signature-params": %s' % params)
    mac = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).digest()
    if tamper:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    hdrs.append(("Signature-Input", "%s=%s" % (label, params)))
    hdrs.append(("Signature", "%s=:%s:" % (label, base64.b64encode(mac).decode())))
    return hdrs


def raw_request(method, target, headers, body=b"", port=None):
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1%s\r\n" % (method, target, "" if port is None else ":%d" % port)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


def send(srv, method, target, headers, body=b""):
    s = srv.connect()
    s.sendall(raw_request(method, target, headers, body))
    r = Reader(s).response()
    s.close()
    return r


def expect(r, status, token):
    assert r.status == status, r
    assert r.header("Sign-Error") == token, r


def test_rfc9421_accepted_and_replay_refused_on_another_connection():
    srv = start()
    try:
        h = rfc_headers("GET", "/api/orders?id=42&note=a%20b%7E")
        held = srv.connect()      # held open, so the replay is likely to land on the other worker
        held.sendall(raw_request("GET", "/api/orders?id=42&note=a%20b%7E", h))
        assert Reader(held).response().status == 200
        expect(send(srv, "GET", "/api/orders?id=42&note=a%20b%7E", h), 401, "replay")
        held.close()
        body = b'{"hello": "world"}'
        h = rfc_headers("POST", "/api/orders", body, headers=[("Content-Type", "application/json")],
                        components=('"@method"', '"@target-uri"', '"content-type"'))
        r = send(srv, "POST", "/api/orders", h, body)
        assert r.status == 200 and r.body.endswith(b'\n\n{"hello": "world"}'), r
        assert send(srv, "POST", "/api/orders", rfc_headers("POST", "/api/orders", body, digest="sha-512"),
                    body).status == 200
        # A signature for someone else's key beside ours is ignored.
        h = rfc_headers("GET", "/api/x", keyid="someone-else", label="other") + \
            rfc_headers("GET", "/api/x")[-2:]
        h = [("Signature-Input", h[0][1] + ", " + h[2][1]), ("Signature", h[1][1] + ", " + h[3][1])]
        assert send(srv, "GET", "/api/x", h).status == 200
    finally:
        srv.cleanup()


def test_each_refusal_rule_names_its_token():
    srv = start()
    try:
        now = int(time.time())
        cases = [
            ([], 401, "missing-signature"),
            (rfc_headers("GET", "/api/x")[:1], 401, "missing-signature"),                    # input only
            ([("Signature-Input", 'a=("@method");created=%d;keyid="app-1";nonce="x"' % now),
              ("Signature", "b=:AAAA:")], 401, "missing-signature"),                           # labels differ
            ([("Signature-Input", "sig1=(\"@method\""), ("Signature", "sig1=:AAAA:")], 400, "malformed"),
            (rfc_headers("GET", "/api/x", keyid="nobody"), 401, "unknown-key"),
            (rfc_headers("GET", "/api/x", keyid="old", secret=b"o" * 40), 401, "key-not-valid"),
            (rfc_headers("GET", "/api/x", extra_params=";foo=1"), 401, "unknown-parameter"),
            ([(k, v.replace('alg="hmac-sha256"', 'alg="hmac-sha512"')) for k, v in rfc_headers("GET", "/api/x")],
             401, "alg"),
            (rfc_headers("GET", "/api/x", created=False), 401, "missing-created"),
            (rfc_headers("GET", "/api/x", created=now + 120), 401, "created-in-future"),
            (rfc_headers("GET", "/api/x", created=now - 400), 401, "too-old"),
            (rfc_headers("GET", "/api/x", extra_params=";expires=%d" % (now - 1)), 401, "expired"),
            (rfc_headers("GET", "/api/x", nonce_value=False), 401, "missing-nonce"),
            (rfc_headers("GET", "/api/x", nonce_value="n" * 200), 401, "bad-nonce"),
            (rfc_headers("GET", "/api/x", components=('"@method"',)), 401, "not-covered"),
            (rfc_headers("GET", "/api/x", components=('"@method"', '"@target-uri"', '"x-missing"')),
             401, "component-unavailable"),
            (rfc_headers("GET", "/api/x", tamper=True), 401, "signature-mismatch"),
        ]
        for headers, status, token in cases:
            r = send(srv, "GET", "/api/x", headers)
            assert r.status == status and r.header("Sign-Error") == token, (token, r)
            assert SECRET not in r.raw and b"@signature-params" not in r.raw, r
        r = send(srv, "GET", "/api/x", [])
        assert r.header("Accept-Signature") == 'sig1=("@method" "@target-uri");created;nonce;alg="hmac-sha256"', r
        # Bodies: the digest must be covered, accepted, and match what arrived.
        body = b"payload"
        h = rfc_headers("POST", "/api/x", body, digest=None)
        expect(send(srv, "POST", "/api/x", h, body), 401, "not-covered")
        h = rfc_headers("POST", "/api/x", b"other body")
        expect(send(srv, "POST", "/api/x", h, body), 401, "digest-mismatch")
        md5 = "md5=:%s:" % base64.b64encode(hashlib.md5(body).digest()).decode()
        h = rfc_headers("POST", "/api/x", body, digest=None, headers=[("Content-Digest", md5)],
                        components=('"@method"', '"@target-uri"', '"content-digest"'))
        expect(send(srv, "POST", "/api/x", h, body), 401, "digest-algorithm")
        # restarted: created before this server started (within the window).
        started = int(os.stat(srv.pid_file).st_mtime)
        expect(send(srv, "GET", "/api/x", rfc_headers("GET", "/api/x", created=started - 5)), 401, "restarted")
        assert "refused" not in srv.log()    # info level: not in the default error log
    finally:
        srv.cleanup()


def test_eight_simultaneous_copies_give_exactly_one_2xx():
    srv = start()
    try:
        h = rfc_headers("GET", "/api/race")
        raw = raw_request("GET", "/api/race", h)
        socks = [srv.connect() for _ in range(8)]
        barrier = threading.Barrier(8)
        statuses = []

        def go(s):
            barrier.wait()
            s.sendall(raw)
            statuses.append(Reader(s).response().status)
        threads = [threading.Thread(target=go, args=(s,)) for s in socks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        for s in socks:
            s.close()
        assert sorted(statuses) == [200] + [401] * 7, statuses
    finally:
        srv.cleanup()


def test_replay_refused_after_a_killed_worker_and_a_reload():
    srv = start()
    try:
        h1, h2 = rfc_headers("GET", "/api/a"), rfc_headers("GET", "/api/b")
        assert send(srv, "GET", "/api/a", h1).status == 200
        assert send(srv, "GET", "/api/b", h2).status == 200
        before = srv.worker_pids()
        os.kill(before[0], signal.SIGKILL)
        assert wait_for(lambda: len(srv.worker_pids()) == 2 and srv.worker_pids() != before, timeout=15)
        expect(send(srv, "GET", "/api/a", h1), 401, "replay")
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: "reload" in srv.log() and len(srv.worker_pids()) == 2, timeout=15)
        time.sleep(0.5)
        expect(send(srv, "GET", "/api/b", h2), 401, "replay")
        assert send(srv, "GET", "/api/c", rfc_headers("GET", "/api/c")).status == 200
    finally:
        srv.cleanup()


def test_full_store_answers_503_and_never_evicts():
    srv = start(store="sign_nonce_store { entries = 16 }\n")
    try:
        signed = [rfc_headers("GET", "/api/f%d" % i) for i in range(17)]
        results = [send(srv, "GET", "/api/f%d" % i, h) for i, h in enumerate(signed)]
        assert [r.status for r in results[:16]] == [200] * 16, [r.status for r in results]
        assert results[16].status == 503 and results[16].header("Sign-Error") == "nonce-store-full"
        assert results[16].header("Retry-After") == "1"
        expect(send(srv, "GET", "/api/f0", signed[0]), 401, "replay")     # still remembered
    finally:
        srv.cleanup()


def test_large_upload_with_a_bad_signature_is_refused_before_its_body():
    srv = start(store='max_body_size = "100m"\n')
    try:
        size = 50 * 1024 * 1024
        h = rfc_headers("POST", "/api/upload", b"x", tamper=True)
        s = srv.connect()
        head = raw_request("POST", "/api/upload", h).replace(b"\r\n\r\n", b"\r\nContent-Length: %d\r\n\r\n" % size)
        s.sendall(head)                  # not one body byte
        r = Reader(s).response()
        assert r.status == 401 and r.header("Sign-Error") == "signature-mismatch", r
        assert r.header("Connection") == "close", r
        s.close()
    finally:
        srv.cleanup()


def classic_headers(method, target, body=b"", ts=None, nonce_value=None, keyid="app-1", tamper=False):
    ts = str(int(time.time())) if ts is None else ts
    nonce_value = nonce() if nonce_value is None else nonce_value
    path, _, query = target.partition("?")
    pairs = sorted(query.split("&"), key=lambda p: p.split("=")[0].encode()) if query else []
    text = "\n".join([method, path, "&".join(pairs), ts, nonce_value, hashlib.sha256(body).hexdigest()])
    mac = hmac.new(SECRET, text.encode(), hashlib.sha256).hexdigest()
    if tamper:
        mac = ("0" if mac[0] != "0" else "1") + mac[1:]
    return [("X-Sign-Key", keyid), ("X-Sign-Timestamp", ts), ("X-Sign-Nonce", nonce_value), ("X-Sign", mac)]


def test_classic_mode():
    srv = start()
    try:
        h = classic_headers("POST", "/classic/orders?b=2&a=1&b=0", b'{"hello": "world"}')
        assert send(srv, "POST", "/classic/orders?b=2&a=1&b=0", h, b'{"hello": "world"}').status == 200
        expect(send(srv, "POST", "/classic/orders?b=2&a=1&b=0", h, b'{"hello": "world"}'), 401, "replay")
        expect(send(srv, "POST", "/classic/o", classic_headers("POST", "/classic/o", b"a"), b"b"), 401,
               "signature-mismatch")          # the body is part of the string
        expect(send(srv, "GET", "/classic/o", classic_headers("GET", "/classic/o", tamper=True)), 401,
               "signature-mismatch")
        expect(send(srv, "GET", "/classic/o", classic_headers("GET", "/classic/o")[:3]), 401, "missing-signature")
        expect(send(srv, "GET", "/classic/o", classic_headers("GET", "/classic/o", keyid="x")), 401, "unknown-key")
        expect(send(srv, "GET", "/classic/o", classic_headers("GET", "/classic/o", ts=str(int(time.time()) - 999))),
               401, "too-old")
        expect(send(srv, "GET", "/classic/o", [x for x in classic_headers("GET", "/classic/o") if x[0] != "X-Sign-Nonce"]),
               401, "missing-nonce")
        expect(send(srv, "GET", "/classic/o", classic_headers("GET", "/classic/o", ts="12ab")), 400, "malformed")
    finally:
        srv.cleanup()


def signed_curl(srv, *args):
    sign = subprocess.run([HTTPD_SIGN, "--key-id", "app-1", "--secret-file", srv.key] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert sign.returncode == 0, sign.stderr
    got = subprocess.run(["curl", "-sS", "-i", "--max-time", "20", "-K", "-"], input=sign.stdout,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return got.stdout


def test_httpd_sign_piped_to_curl_both_modes():
    srv = start()
    try:
        base = "http://127.0.0.1:%d" % srv.port
        out = signed_curl(srv, "--url", base + "/api/orders?id=1")
        assert out.startswith(b"HTTP/1.1 200"), out
        out = signed_curl(srv, "--url", base + "/api/orders", "--data", '{"n": "quote\\" and slash\\\\"}',
                          "-H", "Content-Type: application/json", "--cover", "@method,@target-uri,content-type")
        assert out.startswith(b"HTTP/1.1 200"), out
        body_file = os.path.join(srv.dir, "body.bin")
        with open(body_file, "wb") as f:
            f.write(bytes(range(256)) * 100)
        out = signed_curl(srv, "--url", base + "/api/upload", "--method", "PUT", "--data", "@" + body_file,
                          "--digest", "sha-512")
        assert out.startswith(b"HTTP/1.1 200"), out
        out = signed_curl(srv, "--mode", "classic", "--url", base + "/classic/x?b=2&a=1", "--data", "hello")
        assert out.startswith(b"HTTP/1.1 200"), out
        # --verify explains a capture: the base and the verdict.
        req = subprocess.run([HTTPD_SIGN, "--key-id", "app-1", "--secret-file", srv.key, "--url",
                              base + "/api/v", "--format", "http"], stdout=subprocess.PIPE, timeout=20).stdout
        ver = subprocess.run([HTTPD_SIGN, "--verify", "--key-id", "app-1", "--secret-file", srv.key],
                             input=req, stdout=subprocess.PIPE, timeout=20)
        assert ver.returncode == 0 and b'"@signature-params": ("@method" "@target-uri")' in ver.stdout, ver.stdout
        bad = req.replace(b"/api/v", b"/api/w", 1)
        ver = subprocess.run([HTTPD_SIGN, "--verify", "--key-id", "app-1", "--secret-file", srv.key],
                             input=bad, stdout=subprocess.PIPE, timeout=20)
        assert ver.returncode == 1 and b"MISMATCH" in ver.stdout, ver.stdout
    finally:
        srv.cleanup()


def test_secret_file_errors_name_the_line():
    srv = Server()
    try:
        cases = (("mode", 0o644, base64.b64encode(SECRET), "readable or writable by group or others"),
                 ("short", 0o600, base64.b64encode(b"x" * 16), "at least 32 random bytes"),
                 ("notb64", 0o600, b"!!not base64!!", "not base64"),
                 ("missing", None, b"", "No such file"))
        for name, mode, content, message in cases:
            path = os.path.join(srv.dir, name)
            if mode is not None:
                with open(path, "wb") as f:
                    f.write(content)
                os.chmod(path, mode)
            srv.locations = ('location "/api/" {\n  handler = "echo"\n  check = {"sign"}\n  sign {\n'
                             '    key "k" { secret_file = "%s" }\n  }\n}\n' % path)
            srv.write_config()
            conf = srv.config_text()
            line = conf.split("\n").index('    key "k" { secret_file = "%s" }' % path) + 1
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=20)
            assert proc.returncode == 1, name
            assert ("%s:%d: " % (srv.conf, line)).encode() in proc.stderr, (name, proc.stderr)
            assert message.encode() in proc.stderr, (name, proc.stderr)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
