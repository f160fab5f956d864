"""Upstream servers given by name, re-resolved in the background without a reload: a local dnsmasq
(started here on a loopback port, its names in an addresses file it re-reads on SIGHUP, answers with
a TTL of 1 s) in front of two backends on 127.0.0.2 and 127.0.0.3, the same port.  An address that
comes is used, one that goes is dropped, a pooled connection to an address that stays is kept, a
name that stops resolving keeps its last good addresses, and a name that does not resolve at load is
an error at its line.  Skipped, saying so, only where dnsmasq is not installed (CI installs it)."""
import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading

from dnsutil import DNS, DNSMASQ
from harness import HTTPD, Reader, Server, free_port, run, wait_for



class Backend:
    """An HTTP/1.1 keep-alive server on ip:port answering with its address and the caller's port."""

    def __init__(self, ip, port):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = ("%s %d\n" % (ip, self.client_address[1])).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer((ip, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def proxy(dns, port, name="app.test", workers=1):
    srv = Server(workers=workers)
    srv.globals_text = ('upstream "app" { server = {"%s:%d"}  resolver = {"127.0.0.1:%d"}  resolver_valid = 5\n'
                        '  keepalive = 8  max_fails = 0 }\n' % (name, port, dns.port))
    srv.locations = 'location "/" { handler = "proxy"  upstream = "app" }\n'
    srv.write_config()
    return srv


def ask(srv, conn=None):
    """GET / (on conn, kept open, or a new connection): the backend's "ip port" answer."""
    s = conn or socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = Reader(s).response()
        assert r.status == 200, (r, srv.log()[-2000:])
        ip, port = r.body.decode().split()
        return ip, int(port)
    finally:
        if conn is None:
            s.close()


@contextlib.contextmanager
def backends_by_name():
    """dnsmasq naming app.test 127.0.0.2, the backends on 127.0.0.2 and .3; yields (dns, port, servers)."""
    dns = DNS()
    port = free_port(host="127.0.0.2")
    a, b = Backend("127.0.0.2", port), Backend("127.0.0.3", port)
    servers = []
    try:
        dns.set({"app.test": ["127.0.0.2"]})
        yield dns, port, servers
    finally:
        for srv in servers:
            srv.stop()
            srv.cleanup()
        a.stop()
        b.stop()
        dns.cleanup()


def test_addresses_that_come_and_go_are_followed_without_a_reload():
    with backends_by_name() as (dns, port, servers):
        srv = proxy(dns, port)
        servers.append(srv)
        srv.start()
        first = ask(srv)
        assert first[0] == "127.0.0.2", first
        # kept alive to the backend: the next request comes on the same upstream connection
        assert ask(srv) == first
        # a second address comes: it is used, and the pooled connection to the first stays
        dns.set({"app.test": ["127.0.0.2", "127.0.0.3"]})
        seen = set()
        assert wait_for(lambda: seen.add(ask(srv)) or any(ip == "127.0.0.3" for ip, _ in seen), timeout=15), \
            (seen, srv.log()[-2000:])
        assert first in seen or ask(srv) == first or ask(srv) == first, (first, seen)
        # the first goes: nothing more reaches it
        dns.set({"app.test": ["127.0.0.3"]})
        assert wait_for(lambda: all(ask(srv)[0] == "127.0.0.3" for _ in range(6)), timeout=15), srv.log()[-2000:]
        # the name stops resolving: its last good address stays, and the failure is logged
        dns.set({})
        assert wait_for(lambda: "does not resolve" in srv.log(), timeout=15), srv.log()[-2000:]
        assert all(ask(srv)[0] == "127.0.0.3" for _ in range(6))
        # and it comes back
        dns.set({"app.test": ["127.0.0.2"]})
        assert wait_for(lambda: all(ask(srv)[0] == "127.0.0.2" for _ in range(6)), timeout=15), srv.log()[-2000:]
        assert "resolves to 1 address now" in srv.log()


def test_every_worker_follows_the_name():
    with backends_by_name() as (dns, port, servers):
        srv = proxy(dns, port, workers=2)
        servers.append(srv)
        srv.globals_text += "reuseport = true\n"   # fresh connections spread over both workers
        srv.write_config()
        srv.start()
        dns.set({"app.test": ["127.0.0.3"]})
        assert wait_for(lambda: all(ask(srv)[0] == "127.0.0.3" for _ in range(20)), timeout=15), srv.log()[-2000:]


def test_a_name_that_does_not_resolve_at_load_is_an_error_at_its_line():
    dns = DNS()
    srv = None
    try:
        dns.set({"other.test": ["127.0.0.2"]})
        srv = proxy(dns, 8000, name="missing.test")
        # httpd -t needs no DNS (a build machine has none of the cluster's)
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr
        proc = subprocess.run([HTTPD, "-F", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60)
        assert proc.returncode == 1 and b"httpd.conf:" in proc.stderr and b"missing.test does not resolve" in \
            proc.stderr, proc.stderr
        for text, needle in (('upstream "app" { server = {"app.test:80"}  resolver = {"dns.example"} }\n',
                              b"must be an IP address"),
                             ('upstream "app" { server = {"app_test:80"} }\n', b"neither an IPv4 address nor a DNS name")):
            srv.globals_text = text
            srv.write_config()
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=30)
            assert proc.returncode == 1 and b"httpd.conf:" in proc.stderr and needle in proc.stderr, proc.stderr
        srv.globals_text = ""
        srv.locations = 'location "/" { handler = "proxy"  proxy_to = "http://app.test:8000" }\n'
        srv.write_config()
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        assert proc.returncode == 1 and b"upstream block" in proc.stderr, proc.stderr
    finally:
        if srv is not None:
            srv.cleanup()
        dns.cleanup()


if __name__ == "__main__":
    if not os.path.exists(DNSMASQ):
        print("1..0 # SKIP dnsmasq is not installed (apt-get install dnsmasq-base)")
        sys.exit(0)
    sys.exit(run(globals()))
