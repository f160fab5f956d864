"""The real client address from trusted proxies (real_ip_from, real_ip_header) over a socket:
modules and the access log see it; spoofed leftmost entries and untrusted peers are ignored."""
import json
import os
import socket
import subprocess

from harness import HTTPD, Reader, Server, run, wait_for


def start(header):
    srv = Server(workers=1, globals_text='real_ip_from = {"127.0.0.1", "10.0.0.0/8"}\n'
                                         'real_ip_header = "%s"\naccess_log_buffer = "0"\n' % header)
    srv.locations = 'location "/echo" { handler = "echo" }\n'
    srv.write_config()
    return srv.start()


def client_seen(srv, header_lines, source="127.0.0.1"):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(("GET /echo?format=json HTTP/1.1\r\nHost: t\r\n%s\r\n" % header_lines).encode())
    r = Reader(s).response()
    s.close()
    return json.loads(r.body)["client"]


def test_x_forwarded_for_rightmost_untrusted_hop():
    srv = start("X-Forwarded-For")
    try:
        assert client_seen(srv, "X-Forwarded-For: 203.0.113.7\r\n") == "203.0.113.7"
        # The client wrote 6.6.6.6 itself; our proxies (10/8) appended the rest.
        assert client_seen(srv, "X-Forwarded-For: 6.6.6.6, 198.51.100.2, 10.1.1.1\r\n") == "198.51.100.2"
        assert client_seen(srv, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.3\r\n") == "198.51.100.3"
        assert client_seen(srv, "") == "127.0.0.1"
        assert wait_for(lambda: os.path.exists(srv.access_log) and
                        "198.51.100.2 - - [" in open(srv.access_log).read())
    finally:
        srv.cleanup()


def test_header_from_an_untrusted_peer_is_ignored():
    srv = start("X-Forwarded-For")
    try:
        assert client_seen(srv, "X-Forwarded-For: 203.0.113.7\r\n", source="127.0.0.2") == "127.0.0.2"
    finally:
        srv.cleanup()


def test_forwarded_rfc7239():
    srv = start("Forwarded")
    try:
        assert client_seen(srv, 'Forwarded: for="[2001:db8::1]:4711";proto=https\r\n') == "2001:db8::1"
        assert client_seen(srv, "Forwarded: for=6.6.6.6, for=192.0.2.60;by=10.0.0.1, for=10.2.3.4\r\n") == \
            "192.0.2.60"
        assert client_seen(srv, "Forwarded: for=unknown\r\n") == "127.0.0.1"
        assert client_seen(srv, "X-Forwarded-For: 203.0.113.9\r\n") == "127.0.0.1", "only the named header counts"
    finally:
        srv.cleanup()


def ask_from(srv, source, raw):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(raw)
    reader = Reader(s)
    r = reader.response()
    r.closed = reader.closed(timeout=5)
    s.close()
    return r


def test_access_rules_first_match_on_the_real_client_address():
    srv = Server(workers=2, globals_text='real_ip_from = {"127.0.0.3"}\naccess = {"deny 127.0.0.4"}\n')
    srv.locations = ('location "/open" { handler = "echo" }\n'
                     'location "/lan" {\n  handler = "echo"\n'
                     '  access = {"allow 127.0.0.2", "allow 198.51.100.0/24", "deny all"}\n}\n')
    srv.write_config()
    srv.start()
    try:
        def status(source, path, extra=""):
            return ask_from(srv, source, ("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path, extra)).encode()).status
        assert status("127.0.0.2", "/lan") == 200
        assert status("127.0.0.1", "/lan") == 403                       # deny all
        assert status("127.0.0.3", "/lan", "X-Forwarded-For: 198.51.100.7\r\n") == 200   # the real client
        assert status("127.0.0.3", "/lan", "X-Forwarded-For: 203.0.113.1\r\n") == 403
        assert status("127.0.0.1", "/open") == 200                      # the top level's rules: not denied
        assert status("127.0.0.4", "/open") == 403
        # refused before the body: it stays unread and the connection closes after the 403
        r = ask_from(srv, "127.0.0.1", b"POST /lan HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        assert r.status == 403 and r.closed, r
        # a rule that is not one: its own line
        conf = srv.config_text().replace('"allow 198.51.100.0/24"', '"permit 198.51.100.0/24"')
        srv.write_config(conf)
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        line = [i + 1 for i, l in enumerate(conf.split("\n")) if "permit" in l][0]
        assert proc.returncode == 1 and ('%s:%d: access: "permit 198.51.100.0/24" is not a rule' % (srv.conf, line)).encode() \
            in proc.stderr, proc.stderr
    finally:
        srv.cleanup()


def test_bad_cidr_and_header_are_config_errors_with_line():
    srv = Server()
    try:
        for text, message in (('real_ip_from = {"10.0.0.0/40"}', 'real_ip_from: "10.0.0.0/40" is not'),
                              ('real_ip_header = "X-Real-IP"', "real_ip_header must be")):
            conf = srv.config_text().replace("module_dir", text + "\nmodule_dir", 1)
            srv.write_config(conf)
            line = conf.split("\n").index(text) + 1
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=20)
            assert proc.returncode == 1
            assert ("%s:%d: %s" % (srv.conf, line, message)).encode() in proc.stderr, proc.stderr
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
