"""TLS: two certificates on one address chosen by SNI, 421 for a Host the SNI did not name,
protocol versions, ALPN, a 100 MiB file byte for byte (kTLS fallback), session resumption
across workers and across reloads and log reopening, certificate reload without a failed
request, a bad key on reload, key file permissions, HTTP on the TLS port and TLS on the HTTP
port, slow handshakes, client certificates, redirect_https, hsts, PROXY before TLS.
Certificates come from a CA made with the openssl CLI at test time."""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import hpack
from hyperframe.frame import HeadersFrame, SettingsFrame, WindowUpdateFrame

from harness import HTTPD, Reader, Server, curl, free_port, recv_all, run, wait_for
from tlsutil import CA, context, https_get, peer_serial

CA_ = CA()
A = CA_.issue("a.test", ["www.a.test"])
B = CA_.issue("b.test", ["*.b.test"])
LOG_FORMAT = ("$pid $scheme $server_name $ssl_protocol $ssl_session_reused sni=$ssl_server_name "
              "dn=$ssl_client_s_dn $status $request_uri")


def tls_server(workers=1, globals_text="", a_extra="", b_extra="", listen_flags="tls", start=True):
    srv = Server(workers=workers)
    srv.tls_port = free_port()
    srv.listen = ["127.0.0.1:%d" % srv.port, "127.0.0.1:%d %s" % (srv.tls_port, listen_flags)]
    srv.a_cert, srv.a_key = os.path.join(srv.dir, "a.pem"), os.path.join(srv.dir, "a.key")
    shutil.copy(A[0], srv.a_cert)
    shutil.copy(A[1], srv.a_key)
    os.chmod(srv.a_key, 0o600)
    for site in ("a", "b"):
        os.makedirs(os.path.join(srv.root, site), exist_ok=True)
        srv.file(site + "/index.html", "site %s\n" % site)
    srv.globals_text = ('access_log_buffer = "0"\nerror_log_level = "info"\n'
                        'log_format "t" { format = "%s" }\naccess_log_format = "t"\n' % LOG_FORMAT + globals_text)
    srv.locations = """
server "a.test" {
  aliases = {"www.a.test"}
  default_server = true
  tls_certificate = "%(a_cert)s"
  tls_certificate_key = "%(a_key)s"
  %(a_extra)s
  location "/echo" { handler = "echo" }
  location "/" { handler = "static" root = "%(root)s/a" }
}
server "b.test" {
  aliases = {"*.b.test"}
  tls_certificate = "%(b_cert)s"
  tls_certificate_key = "%(b_key)s"
  %(b_extra)s
  location "/echo" { handler = "echo" }
  location "/" { handler = "static" root = "%(root)s/b" }
}
""" % dict(a_cert=srv.a_cert, a_key=srv.a_key, b_cert=B[0], b_key=B[1], root=srv.root, a_extra=a_extra,
           b_extra=b_extra)
    srv.write_config()
    return srv.start() if start else srv


def s_client(port, *args, stdin=b"", timeout=20):
    proc = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", CA_.cert] +
                          list(args), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors="replace")


def access_lines(srv):
    with open(srv.access_log) as f:
        return f.read().splitlines()


def test_sni_picks_the_certificate_and_the_site():
    srv = tls_server()
    try:
        assert peer_serial(srv.tls_port, "a.test", CA_) == A[2]
        assert peer_serial(srv.tls_port, "b.test", CA_) == B[2]
        assert peer_serial(srv.tls_port, "shop.b.test", CA_) == B[2]
        assert peer_serial(srv.tls_port, "unknown.test", CA_) == A[2]   # the default server's
        for name, body in (("a.test", b"site a\n"), ("www.a.test", b"site a\n"), ("b.test", b"site b\n"),
                           ("x.b.test", b"site b\n")):
            rc, out, err = curl("--cacert", CA_.cert, "--resolve", "%s:%d:127.0.0.1" % (name, srv.tls_port),
                                "https://%s:%d/" % (name, srv.tls_port))
            assert rc == 0 and out == body, (name, rc, out, err)
        status, _, body = https_get(srv.tls_port, "b.test", "/echo?format=json", CA_)
        assert status == 200 and b'"server":"b.test"' in body and b'"scheme":"https"' in body, body
        assert b'"server_name":"b.test"' in body and b'"protocol":"TLSv1.3"' in body, body
        assert any(" https b.test TLSv1.3 . sni=b.test " in line for line in access_lines(srv)), access_lines(srv)
    finally:
        srv.cleanup()


def test_host_other_than_sni_is_misdirected():
    srv = tls_server()
    try:
        status, _, _ = https_get(srv.tls_port, "b.test", "/", CA_, host_header="a.test")
        assert status == 421
        status, _, _ = https_get(srv.tls_port, "b.test", "/", CA_, host_header="nowhere.test")
        assert status == 421
        status, _, body = https_get(srv.tls_port, "b.test", "/", CA_, host_header="Deep.B.Test:%d" % srv.tls_port)
        assert status == 200 and body == b"site b\n"
        status, _, body = https_get(srv.tls_port, "a.test", "/", CA_, host_header="www.a.test")
        assert status == 200 and body == b"site a\n"
        # an SNI naming no server chose the default: a Host naming another server is misdirected
        status, _, _ = https_get(srv.tls_port, "unknown.test", "/", CA_, host_header="b.test", check_hostname=False)
        assert status == 421
        status, _, body = https_get(srv.tls_port, "unknown.test", "/", CA_, check_hostname=False)
        assert status == 200 and body == b"site a\n"
    finally:
        srv.cleanup()


def test_protocol_versions_and_alpn():
    srv = tls_server(b_extra="http2 = false")
    try:
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        assert rc != 0 and "alert protocol version" in out, out
        for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = s_client(srv.tls_port, "-servername", "a.test", flag)
            assert rc == 0 and ("Protocol  : %s" % name in out or "New, %s" % name in out), out
        # h2 first where the server speaks it; http2 = false (b.test) leaves http/1.1 alone.
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-alpn", "http/1.1,h2")
        assert "ALPN protocol: h2" in out, out
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-alpn", "http/1.1")
        assert "ALPN protocol: http/1.1" in out, out
        rc, out = s_client(srv.tls_port, "-servername", "b.test", "-alpn", "h2,http/1.1")
        assert "ALPN protocol: http/1.1" in out, out
        rc, out = s_client(srv.tls_port, "-servername", "b.test", "-alpn", "h2")
        assert "No ALPN negotiated" in out, out
    finally:
        srv.cleanup()


def test_tls_protocols_and_ciphers_per_server():
    srv = tls_server(a_extra='tls_protocols = "TLSv1.2"\ntls_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"')
    try:
        rc, out = s_client(srv.tls_port, "-servername", "a.test")
        assert rc == 0 and "TLSv1.2" in out and "ECDHE-ECDSA-AES128-GCM-SHA256" in out, out
        rc, out = s_client(srv.tls_port, "-servername", "b.test")
        assert rc == 0 and "TLSv1.3" in out, out
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-tls1_3")
        assert rc != 0, out
    finally:
        srv.cleanup()


def test_tls13_suites_prefer_aes128_and_follow_tls_ciphersuites_per_server():
    srv = tls_server(b_extra='tls_ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"')
    try:
        # OpenSSL's client offers AES-256 first: the server's order (AES-128 first) wins
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-tls1_3")
        assert rc == 0 and "TLS_AES_128_GCM_SHA256" in out, out
        # a client that offers only AES-256 still gets it
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384")
        assert rc == 0 and "TLS_AES_256_GCM_SHA384" in out, out
        # b.test's own list, chosen after SNI
        rc, out = s_client(srv.tls_port, "-servername", "b.test", "-tls1_3")
        assert rc == 0 and "TLS_CHACHA20_POLY1305_SHA256" in out, out
        rc, out = s_client(srv.tls_port, "-servername", "b.test", "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")
        assert rc != 0, out
    finally:
        srv.cleanup()
    srv = tls_server(start=False, a_extra='tls_ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_NO_SUCH_SUITE"')
    try:
        rc, err = check(srv)
        assert rc == 1 and '%s:%d: tls_ciphersuites: "TLS_NO_SUCH_SUITE" is not a TLS 1.3 suite' % (
            srv.conf, conf_line(srv, "tls_ciphersuites")) in err, err
        srv.write_config(open(srv.conf).read().replace('tls_ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_NO_SUCH_SUITE"',
                                                       'tls_ciphers = "NO-SUCH-CIPHER"'))
        rc, err = check(srv)
        assert rc == 1 and '%s:%d: tls_ciphers: "NO-SUCH-CIPHER" names no cipher' % (
            srv.conf, conf_line(srv, "tls_ciphers")) in err, err
    finally:
        srv.cleanup()


def test_large_file_byte_identical_with_ktls_fallback():
    srv = tls_server(globals_text="tls_ktls = true\n")
    try:
        data = os.urandom(1 << 20) * 100   # 100 MiB
        srv.file("a/big.bin", data)
        out = os.path.join(srv.dir, "got.bin")
        # HTTP/1.1: its file bodies go by sendfile (kTLS when the kernel offers it)
        rc, _, err = curl("--http1.1", "--max-time", "120", "--cacert", CA_.cert,
                          "--resolve", "a.test:%d:127.0.0.1" % srv.tls_port, "-o", out,
                          "https://a.test:%d/big.bin" % srv.tls_port)
        assert rc == 0, err
        with open(out, "rb") as f:
            assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
        # a range from the middle, over TLS
        rc, body, err = curl("--http1.1", "--cacert", CA_.cert, "--resolve", "a.test:%d:127.0.0.1" % srv.tls_port,
                             "-r", "52428700-52428899", "https://a.test:%d/big.bin" % srv.tls_port)
        assert rc == 0 and body == data[52428700:52428900], err
        assert wait_for(lambda: "tls_ktls: the kernel does not offer TLS offload" in srv.log()) or \
            "kTLS" in srv.log(), srv.log()
        assert srv.log().count("tls_ktls:") == 1, srv.log()   # said once per worker
    finally:
        srv.cleanup()


def resume_round(srv, sess, count=20):
    reused = 0
    for _ in range(count):
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-sess_in", sess, "-ign_eof",
                           stdin=b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert "HTTP/1.1 200" in out, out
        reused += "Reused, TLSv1.3" in out
    return reused


def test_resumption_across_workers_reloads_and_reopen():
    srv = tls_server(workers=2, globals_text="reuseport = true\n")
    try:
        sess = os.path.join(srv.dir, "sess.pem")
        rc, out = s_client(srv.tls_port, "-servername", "a.test", "-sess_out", sess, "-ign_eof",
                           stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert rc == 0 and "New, TLSv1.3" in out, out
        assert resume_round(srv, sess) == 20
        def resumed_on():
            return {line.split()[0] for line in access_lines(srv) if " r sni=a.test " in line}
        # the last line is written after its answer is sent
        assert wait_for(lambda: len(resumed_on()) == 2), ("resumed on one worker only", resumed_on())
        before = set(srv.worker_pids())
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: not (set(srv.worker_pids()) & before) and len(srv.worker_pids()) == 2, timeout=20)
        assert resume_round(srv, sess) == 20
        srv.signal(signal.SIGUSR1)
        assert wait_for(lambda: "logs reopened" in srv.log())
        assert resume_round(srv, sess) == 20
    finally:
        srv.cleanup()


def test_ticket_key_file_shared_between_hosts():
    keyfile = os.path.join(CA_.dir, "ticket.key")
    with open(keyfile, "wb") as f:
        f.write(os.urandom(80))
    os.chmod(keyfile, 0o600)
    one = tls_server(globals_text='tls_ticket_key_file = "%s"\n' % keyfile)
    two = tls_server(globals_text='tls_ticket_key_file = "%s"\n' % keyfile)
    alone = tls_server()
    try:
        sess = os.path.join(one.dir, "sess.pem")
        rc, out = s_client(one.tls_port, "-servername", "a.test", "-sess_out", sess, "-ign_eof",
                           stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert rc == 0 and "New, TLSv1.3" in out, out
        # another host with the same key file resumes it; one with its own keys does not
        rc, out = s_client(two.tls_port, "-servername", "a.test", "-sess_in", sess)
        assert "Reused, TLSv1.3" in out, out
        rc, out = s_client(alone.tls_port, "-servername", "a.test", "-sess_in", sess)
        assert "New, TLSv1.3" in out, out
        # the file is a secret: group-readable is refused, and so is a wrong size
        os.chmod(keyfile, 0o640)
        rc, err = check(one)
        assert rc == 1 and "%s:%d: tls_ticket_key_file: %s is readable by group or others" % (
            one.conf, conf_line(one, "tls_ticket_key_file"), keyfile) in err, err
        os.chmod(keyfile, 0o600)
        with open(keyfile, "wb") as f:
            f.write(os.urandom(48))
        rc, err = check(one)
        assert rc == 1 and "must hold exactly 80 random bytes" in err, err
    finally:
        one.cleanup()
        two.cleanup()
        alone.cleanup()


def load_thread(port, stop, results):
    import http.client
    ctx = context(CA_)

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                        server_hostname="a.test")

    conn = None
    for _ in range(20000):
        if stop.is_set():
            break
        try:
            if conn is None:
                conn = Conn("a.test", port, timeout=10)
            conn.request("GET", "/", headers={"Host": "a.test"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200 and body == b"site a\n":
                results["ok"] += 1
            else:
                results["failed"] += 1
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            results["failed"] += 1
            results["why"].append(repr(e))
            conn = None


def test_certificate_replaced_on_sighup_without_a_failed_request():
    srv = tls_server(workers=2)
    try:
        assert peer_serial(srv.tls_port, "a.test", CA_) == A[2]
        stop = threading.Event()
        results = [{"ok": 0, "failed": 0, "why": []} for _ in range(4)]
        threads = [threading.Thread(target=load_thread, args=(srv.tls_port, stop, r), daemon=True) for r in results]
        for t in threads:
            t.start()
        time.sleep(0.5)
        fresh = CA_.issue("a.test", ["www.a.test"])
        shutil.copy(fresh[0], srv.a_cert)
        shutil.copy(fresh[1], srv.a_key)
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: peer_serial(srv.tls_port, "a.test", CA_) == fresh[2], timeout=20)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        ok = sum(r["ok"] for r in results)
        failed = sum(r["failed"] for r in results)
        assert ok > 100 and failed == 0, (ok, failed, [w for r in results for w in r["why"]][:5])
        # a key that does not match: the reload fails and the running certificate stays
        other = CA_.issue("other.test")
        shutil.copy(other[1], srv.a_key)
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: "does not match tls_certificate" in srv.log(), timeout=10), srv.log()
        assert wait_for(lambda: "keeping the running configuration" in srv.log(), timeout=10), srv.log()
        assert peer_serial(srv.tls_port, "a.test", CA_) == fresh[2]
        status, _, body = https_get(srv.tls_port, "a.test", "/", CA_)
        assert status == 200 and body == b"site a\n"
    finally:
        srv.cleanup()


def check(srv):
    proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc.returncode, proc.stderr.decode()


def conf_line(srv, needle, nth=1):
    with open(srv.conf) as f:
        lines = [i for i, line in enumerate(f.read().splitlines(), 1) if needle in line]
    return lines[nth - 1]


def test_config_errors_name_the_line():
    srv = tls_server(start=False)
    try:
        os.chmod(srv.a_key, 0o644)
        rc, err = check(srv)
        assert rc == 1 and "%s:%d: tls_certificate_key: %s is readable by others (mode 0644)" % (
            srv.conf, conf_line(srv, "tls_certificate_key"), srv.a_key) in err, err
        os.chmod(srv.a_key, 0o640)
        rc, err = check(srv)
        assert rc == 1 and "readable by its group" in err, err
        os.chmod(srv.a_key, 0o600)
        other = CA_.issue("mismatch.test")
        shutil.copy(other[1], srv.a_key)
        rc, err = check(srv)
        assert rc == 1 and "%s:%d: server \"a.test\": tls_certificate_key %s does not match" % (
            srv.conf, conf_line(srv, "tls_certificate_key"), srv.a_key) in err, err
        shutil.copy(A[1], srv.a_key)
        assert check(srv)[0] == 0
        # two servers claiming one name: both title lines
        text = open(srv.conf).read().replace('aliases = {"*.b.test"}', 'aliases = {"*.b.test", "WWW.a.test"}')
        srv.write_config(text)
        rc, err = check(srv)
        assert rc == 1 and '%s:%d: server "b.test": the name "www.a.test" is already server "a.test"\'s at %s:%d' % (
            srv.conf, conf_line(srv, 'server "b.test"'), srv.conf, conf_line(srv, 'server "a.test"')) in err, err
        # a tls listener whose default server has no certificate
        text = open(srv.conf).read().replace('aliases = {"*.b.test", "WWW.a.test"}', 'aliases = {"*.b.test"}')
        text = re.sub(r'  tls_certificate = "%s"\n  tls_certificate_key = "%s"\n' % (re.escape(srv.a_cert),
                                                                                   re.escape(srv.a_key)), "", text)
        srv.write_config(text)
        rc, err = check(srv)
        assert rc == 1 and '%s:%d: server "a.test" is the default server of the tls listeners but has no ' \
            'tls_certificate' % (srv.conf, conf_line(srv, 'server "a.test"')) in err, err
        srv.write_config(text.replace("tls_certificate =", "tls_protocols = \"TLSv1.1 TLSv1.3\"\n  tls_certificate =", 1))
        rc, err = check(srv)
        assert rc == 1 and "leaves a gap" in err, err
    finally:
        srv.cleanup()


def test_plain_http_on_the_tls_port_and_tls_on_the_plain_port():
    srv = tls_server()
    try:
        s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = recv_all(s)
        s.close()
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"use https://" in data, data
        # a ClientHello on the plain port is a malformed request
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = context(CA_).wrap_bio(incoming, outgoing, server_hostname="a.test")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        s = srv.connect()
        s.sendall(hello)
        data = recv_all(s)
        s.close()
        assert data.startswith(b"HTTP/1.1 400 "), data[:100]
        # and the server still serves both
        status, _, body = https_get(srv.tls_port, "a.test", "/", CA_)
        assert status == 200 and body == b"site a\n"
    finally:
        srv.cleanup()


def test_slow_handshake_is_dropped_at_header_timeout():
    srv = tls_server(globals_text="header_timeout = 2\n")
    try:
        slow = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=15)
        slow.sendall(b"\x16\x03\x01")   # the first bytes of a ClientHello, and nothing more
        silent = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=15)
        status, _, body = https_get(srv.tls_port, "a.test", "/", CA_)   # the worker is not held
        assert status == 200 and body == b"site a\n"
        assert slow.recv(100) == b"" and silent.recv(100) == b""         # closed, not answered
        slow.close()
        silent.close()
    finally:
        srv.cleanup()


def test_client_certificates():
    alice = CA_.issue("alice", client=True)
    srv = tls_server(a_extra='tls_client_ca = "%s"\ntls_verify_client = "optional"' % CA_.cert,
                     b_extra='tls_client_ca = "%s"' % CA_.cert)
    try:
        # optional: without a certificate the request goes through, with one the subject is known
        status, _, body = https_get(srv.tls_port, "a.test", "/echo?format=json", CA_)
        assert status == 200 and b'"client_verify":"NONE"' in body, body
        status, _, body = https_get(srv.tls_port, "a.test", "/echo?format=json", CA_, client_cert=alice[:2])
        assert status == 200 and b'"client_verify":"SUCCESS"' in body and b"CN=alice" in body, body
        assert wait_for(lambda: any("dn=O=httpd tests,CN=alice" in line for line in access_lines(srv))), \
            access_lines(srv)
        # required (the default with tls_client_ca): no certificate, no request
        try:
            https_get(srv.tls_port, "b.test", "/echo?format=json", CA_)
            raise AssertionError("served without a client certificate")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError) as e:
            assert not isinstance(e, AssertionError)
        status, _, body = https_get(srv.tls_port, "b.test", "/echo?format=json", CA_, client_cert=alice[:2])
        assert status == 200 and b"CN=alice" in body, body
        # a certificate from another CA is refused
        stranger_ca = CA()
        mallory = stranger_ca.issue("mallory", client=True)
        try:
            https_get(srv.tls_port, "b.test", "/echo?format=json", CA_, client_cert=mallory[:2])
            raise AssertionError("served a client certificate from an unknown CA")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError) as e:
            assert not isinstance(e, AssertionError)
    finally:
        srv.cleanup()


def test_redirect_https_and_hsts():
    srv = tls_server(a_extra="hsts = 31536000", b_extra="redirect_https = true")
    try:
        s = srv.connect()
        s.sendall(b"GET /p/q.html?x=1&y=2 HTTP/1.1\r\nHost: shop.B.test:%d\r\n\r\n" % srv.port)
        resp = Reader(s).response()
        s.close()
        assert resp.status == 308, resp
        assert resp.header("Location") == "https://shop.B.test:%d/p/q.html?x=1&y=2" % srv.tls_port, resp
        status, headers, _ = https_get(srv.tls_port, "a.test", "/", CA_)
        assert status == 200 and headers.get("strict-transport-security") == "max-age=31536000", headers
        s = srv.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        resp = Reader(s).response()
        s.close()
        assert resp.status == 200 and resp.header("Strict-Transport-Security") is None, resp
        status, headers, _ = https_get(srv.tls_port, "b.test", "/", CA_)
        assert status == 200 and "strict-transport-security" not in headers
    finally:
        srv.cleanup()


def proxied_handshake(srv, ctx, rcvbuf=None):
    """A PROXY v1 preamble for 192.0.2.7, then a TLS handshake for b.test through memory BIOs (so the
    preamble and the ClientHello go in one segment: the server reads both at once).  Returns the
    socket, the SSL object and its two BIOs."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="b.test")
    s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=30)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    first = True
    while True:
        try:
            obj.do_handshake()
            return s, obj, incoming, outgoing
        except ssl.SSLWantReadError:
            s.sendall((b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n" if first else b"") + outgoing.read())
            first = False
            got = s.recv(65536)
            assert got, "closed during the handshake"
            incoming.write(got)


def test_proxy_protocol_before_tls():
    srv = tls_server(listen_flags="tls proxy_protocol", globals_text='proxy_protocol_from = {"127.0.0.1"}\n')
    try:
        s, obj, incoming, outgoing = proxied_handshake(srv, context(CA_))
        obj.write(b"GET /echo?format=json HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
        s.sendall(outgoing.read())
        body = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            incoming.write(data)
            try:
                while True:
                    chunk = obj.read(65536)
                    if not chunk:
                        break
                    body += chunk
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        s.close()
        assert b"HTTP/1.1 200" in body and b'"client":"192.0.2.7"' in body and b'"server":"b.test"' in body, body
    finally:
        srv.cleanup()


def test_proxy_protocol_before_tls_then_h2_with_held_records():
    """A PROXY preamble, then TLS with ALPN h2, then 8 MiB the client does not read for a second: the
    records the socket does not take are held behind what went before and all arrive, in order, on
    the connection whose client is the preamble's."""
    srv = tls_server(listen_flags="tls proxy_protocol", globals_text='proxy_protocol_from = {"127.0.0.1"}\n')
    try:
        data = os.urandom(8 << 20)
        srv.file("b/big.bin", data)
        ctx = context(CA_)
        ctx.set_alpn_protocols(["h2"])
        s, obj, incoming, outgoing = proxied_handshake(srv, ctx, rcvbuf=65536)
        assert obj.selected_alpn_protocol() == "h2"
        enc = hpack.Encoder()
        obj.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0, settings={4: (1 << 31) - 1}).serialize() +
                  WindowUpdateFrame(0, window_increment=(1 << 31) - 1 - 65535).serialize())
        for sid, path in ((1, "/big.bin"), (3, "/echo?format=json")):
            obj.write(HeadersFrame(sid, enc.encode([(":method", "GET"), (":path", path), (":scheme", "https"),
                                                    (":authority", "b.test")]),
                                   flags=["END_STREAM", "END_HEADERS"]).serialize())
        s.sendall(outgoing.read())
        time.sleep(1)   # not reading: the socket fills and the rest is held
        plain, bodies, ended = b"", {1: bytearray(), 3: bytearray()}, set()
        deadline = time.monotonic() + 60
        while len(ended) < 2 and time.monotonic() < deadline:
            got = s.recv(1 << 20)
            if not got:
                break
            incoming.write(got)
            try:
                while True:
                    chunk = obj.read(1 << 20)
                    if not chunk:
                        break
                    plain += chunk
            except ssl.SSLWantReadError:
                pass
            while len(plain) >= 9 and len(plain) >= 9 + int.from_bytes(plain[:3], "big"):
                length, ftype, flags = int.from_bytes(plain[:3], "big"), plain[3], plain[4]
                sid = int.from_bytes(plain[5:9], "big") & 0x7fffffff
                if ftype == 0 and sid in bodies:
                    bodies[sid] += plain[9:9 + length]
                    if flags & 1:
                        ended.add(sid)
                plain = plain[9 + length:]
        s.close()
        assert ended == {1, 3} and len(bodies[1]) == len(data) and bytes(bodies[1]) == data, (ended, len(bodies[1]))
        assert b'"client":"192.0.2.7"' in bodies[3] and b'"server":"b.test"' in bodies[3], bytes(bodies[3])
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
