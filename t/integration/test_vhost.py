"""Name-based virtual hosts over plain HTTP: Host (any case, any port, absolute-form) picks the
server block, aliases and wildcards, the default server (the top-level locations, or
default_server = true), each server's own locations, error pages and access log, and log
reopening for every file."""
import os
import signal

from harness import Reader, Server, run, wait_for


def vhost_server(default_flag="", top=True, c_log=None):
    srv = Server()
    for site in ("top", "a", "b"):
        os.makedirs(os.path.join(srv.root, site), exist_ok=True)
        srv.file(site + "/index.html", "site %s\n" % site)
    srv.file("a/only-a.txt", "only in a\n")
    with open(os.path.join(srv.dir, "b-404.html"), "w") as f:
        f.write("<p>b has no such page</p>\n")
    srv.b_log = os.path.join(srv.dir, "b-access.log")
    srv.globals_text = ('access_log_buffer = "0"\nlog_format "v" { format = "$server_name $host $status $uri" }\n'
                        'access_log_format = "v"\n')
    srv.locations = ((('location "/" { handler = "static" root = "%s/top" }\n' % srv.root) if top else "") + """
server "a.test" {
  aliases = {"www.a.test", "*.a.test"}
  %(default_flag)s
  location "/" { handler = "static" root = "%(root)s/a" }
}
server "b.test" {
  aliases = {"*.b.test", "b.example"}
  access_log = "%(b_log)s"
  error_page(404, "%(dir)s/b-404.html")
  location "/" { handler = "static" root = "%(root)s/b" }
}
""" % dict(root=srv.root, dir=srv.dir, b_log=srv.b_log, default_flag=default_flag))
    srv.write_config()
    return srv.start()


def fetch(srv, target, host):
    s = srv.connect()
    s.sendall(("GET %s HTTP/1.1\r\n%s\r\n" % (target, "Host: %s\r\n" % host if host is not None else "")).encode())
    resp = Reader(s).response()
    s.close()
    return resp


def read(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def test_host_picks_the_server():
    srv = vhost_server()
    try:
        cases = [("a.test", b"site a\n"), ("A.TEST", b"site a\n"), ("a.test:8080", b"site a\n"),
                 ("a.test.", b"site a\n"), ("www.a.test", b"site a\n"), ("deep.shop.a.test", b"site a\n"),
                 ("b.test", b"site b\n"), ("x.b.test", b"site b\n"), ("b.example", b"site b\n"),
                 ("unknown.test", b"site top\n"), ("127.0.0.1:%d" % srv.port, b"site top\n"),
                 ("[::1]:80", b"site top\n"), ("a.test.evil", b"site top\n")]
        for host, body in cases:
            resp = fetch(srv, "/", host)
            assert resp.status == 200 and resp.body == body, (host, resp)
        # HTTP/1.0 without Host: the default server
        s = srv.connect()
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        resp = Reader(s).response()
        s.close()
        assert resp.body == b"site top\n", resp
        # absolute-form names the server, whatever Host says (RFC 9112 §3.2.2)
        resp = fetch(srv, "http://b.test/", "a.test")
        assert resp.status == 200 and resp.body == b"site b\n", resp
        # each server has its own locations
        assert fetch(srv, "/only-a.txt", "a.test").status == 200
        assert fetch(srv, "/only-a.txt", "b.test").status == 404
    finally:
        srv.cleanup()


def test_error_pages_and_access_logs_per_server():
    srv = vhost_server()
    try:
        resp = fetch(srv, "/missing", "b.test")
        assert resp.status == 404 and resp.body == b"<p>b has no such page</p>\n", resp
        resp = fetch(srv, "/missing", "a.test")
        assert resp.status == 404 and b"b has no such page" not in resp.body, resp
        fetch(srv, "/", "x.b.test")
        fetch(srv, "/", "www.a.test")
        assert wait_for(lambda: len(read(srv.b_log)) == 2 and len(read(srv.access_log)) == 2)
        assert read(srv.b_log) == ["b.test b.test 404 /missing", "b.test x.b.test 200 /"], read(srv.b_log)
        assert read(srv.access_log) == ["a.test a.test 404 /missing", "a.test www.a.test 200 /"], \
            read(srv.access_log)
        # SIGUSR1 reopens every file
        os.rename(srv.b_log, srv.b_log + ".1")
        os.rename(srv.access_log, srv.access_log + ".1")
        srv.signal(signal.SIGUSR1)
        assert wait_for(lambda: os.path.exists(srv.b_log) and os.path.exists(srv.access_log))
        assert wait_for(lambda: "logs reopened" in srv.log())
        fetch(srv, "/", "b.test")
        fetch(srv, "/", "nowhere.test")
        assert wait_for(lambda: read(srv.b_log) == ["b.test b.test 200 /"]), read(srv.b_log)
        assert wait_for(lambda: read(srv.access_log) == ["- nowhere.test 200 /"]), read(srv.access_log)
        assert len(read(srv.b_log + ".1")) == 2
    finally:
        srv.cleanup()


def test_default_server_flag():
    srv = vhost_server(default_flag="default_server = true")
    try:
        assert fetch(srv, "/", "unknown.test").body == b"site a\n"
        assert fetch(srv, "/", None).status == 400   # HTTP/1.1 without Host is malformed
    finally:
        srv.cleanup()
    srv = vhost_server(top=False)
    try:
        assert fetch(srv, "/", "unknown.test").body == b"site a\n"   # the first server block
        assert fetch(srv, "/", "b.test").body == b"site b\n"
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
