"""limit_req and limit_conn over real sockets, 2 workers: one zone for the whole server (never per
worker), burst and nodelay, delayed requests served later rather than refused, a zone exhausted
before a reload still exhausted after it, keys from X-Forwarded-For through real_ip_from, dry run,
limit_conn against a slow application, and configuration errors with file:line."""
import json
import signal
import socket
import subprocess
import threading
import urllib.request

from harness import HTTPD, Reader, Server, run, wait_for
from test_proxy import App

APPS = []


def teardown_module():
    for a in APPS:
        a.stop()


def parallel(srv, n, path="/a/", headers="", source="127.0.0.1"):
    """n requests on n connections, heads sent as close together as possible; their responses."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(30)
        s.connect(("127.0.0.1", srv.port))
        socks.append(s)
    raw = ("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path, headers)).encode()
    for s in socks:
        s.sendall(raw)
    out = []
    for s in socks:
        out.append(Reader(s).response())
        s.close()
    return out


def statuses(responses):
    return sorted(r.status for r in responses)


ZONES = ('limit_req_zone "one" { key = "$remote_addr" rate = "1r/m" size = "1m" }\n'
         'limit_req_zone "three" { key = "$remote_addr" rate = "1r/m" size = "1m" }\n')
LOCS = ('location "/a/" { handler = "static" root = "%(root)s" limit_req "one" { burst = 0 nodelay = true } }\n'
        'location "/b/" { handler = "static" root = "%(root)s" limit_req "three" { burst = 3 nodelay = true } }\n'
        'location "/" { handler = "static" root = "%(root)s" }\n')


def test_one_zone_for_the_whole_server():
    srv = Server(workers=2)
    srv.globals_text = ZONES
    srv.locations = LOCS % {"root": srv.root}
    srv.file("index.html", "hello\n")
    srv.write_config()
    srv.start()
    try:
        got = parallel(srv, 10, "/a/index.html")
        assert statuses(got) == [200] + [429] * 9, statuses(got)
        refused = [r for r in got if r.status == 429]
        assert all(int(r.header("Retry-After")) >= 1 for r in refused), refused[0]
        got = parallel(srv, 10, "/b/index.html")
        assert statuses(got) == [200] * 4 + [429] * 6, statuses(got)
        assert parallel(srv, 1, "/index.html")[0].status == 200   # an unlimited location
        assert 'limit_req "one": key "127.0.0.1" over its limit' in srv.log()
        # a zone exhausted before a reload is still exhausted after it
        before = set(srv.worker_pids())
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: not (set(srv.worker_pids()) & before) and len(srv.worker_pids()) == 2, timeout=20)
        assert parallel(srv, 1, "/a/index.html")[0].status == 429
        # each real client is its own key
        got = parallel(srv, 1, "/a/index.html", source="127.0.0.3")
        assert got[0].status == 200, got
        # a zone whose size changes starts anew, and says so
        srv.write_config(srv.config_text().replace('"one" { key = "$remote_addr" rate = "1r/m" size = "1m" }',
                                                   '"one" { key = "$remote_addr" rate = "1r/m" size = "2m" }'))
        before = set(srv.worker_pids())
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: not (set(srv.worker_pids()) & before) and len(srv.worker_pids()) == 2, timeout=20)
        assert 'limit zone "one": its key or size changed' in srv.log(), srv.log()
        assert parallel(srv, 1, "/a/index.html")[0].status == 200
    finally:
        srv.cleanup()


def one(srv, path, headers="", source="127.0.0.1"):
    return parallel(srv, 1, path, headers, source)[0]


def test_keys_from_x_forwarded_for_and_dry_run():
    srv = Server(workers=2)
    srv.globals_text = ('access_log_buffer = "0"\nreal_ip_from = {"127.0.0.2"}\n'
                        'log_format "l" { format = "$remote_addr $status $limit_req_status $request_uri" }\n'
                        'access_log_format = "l"\n' + ZONES)
    srv.locations = ('location "/a/" { handler = "static" root = "%s" limit_req "one" { } }\n'
                     'location "/dry/" {\n  handler = "static"\n  root = "%s"\n  limit_req "three" { }\n'
                     '  limit_req_dry_run = true\n}\n' % (srv.root, srv.root))
    srv.file("index.html", "hello\n")
    srv.write_config()
    srv.start()
    try:
        xff = "X-Forwarded-For: 198.51.100.1\r\n"
        assert [one(srv, "/a/index.html", xff, "127.0.0.2").status for _ in range(3)] == [200, 429, 429]
        # the trusted proxy's own address is not the key: another client behind it has its own bucket
        assert one(srv, "/a/index.html", "X-Forwarded-For: 198.51.100.2\r\n", "127.0.0.2").status == 200
        # dry run: counted and logged, nothing refused
        assert [one(srv, "/dry/index.html").status for _ in range(4)] == [200] * 4
        assert wait_for(lambda: open(srv.access_log).read().count("200 REJECTED_DRY_RUN /dry/") == 3), \
            open(srv.access_log).read()
        assert "198.51.100.1 429 REJECTED /a/index.html" in open(srv.access_log).read()
        assert "(dry run: let through)" in srv.log()
    finally:
        srv.cleanup()


def test_limit_conn_against_a_slow_application():
    app = App("limits")
    APPS.append(app)
    srv = Server(workers=2)
    srv.globals_text = ('upstream "app" { server = { "127.0.0.1:%d" } }\n'
                        'limit_conn_zone "c" { key = "$remote_addr" size = "1m" }\n' % app.port)
    srv.locations = ('location "/" {\n  handler = "proxy"\n  upstream = "app"\n  limit_conn "c" { max = 1 }\n'
                     '  limit_conn_status = 503\n}\n')
    srv.write_config()
    srv.start()
    try:
        def slow_started():
            with urllib.request.urlopen("http://127.0.0.1:%d/_slow_started" % app.port, timeout=10) as resp:
                return json.loads(resp.read())["count"]
        started = slow_started()
        slow = {}
        t = threading.Thread(target=lambda: slow.setdefault("r", one(srv, "/slow?s=3")))
        t.start()
        # once the slow one is at the application (it holds its slot), this client may start no other
        assert wait_for(lambda: slow_started() > started, timeout=20)
        r = one(srv, "/fast")
        assert r.status == 503 and r.header("Retry-After") == "1", (r, slow)
        assert one(srv, "/fast", source="127.0.0.3").status == 200   # another client is not held up
        t.join(60)
        assert slow["r"].status == 200, slow
        assert one(srv, "/fast").status == 200   # its slot came back when it ended
    finally:
        srv.cleanup()


def test_config_errors_name_the_line():
    srv = Server()
    try:
        for text, message in (
                ('limit_req_zone "z" { key = "$remote_addr" rate = "10 per second" }', 'limit_req_zone "z": rate: "10 per second" is not'),
                ('limit_req_zone "z" { key = "$nosuch" rate = "1r/s" }', "nosuch"),
                ('limit_req_zone "z" { rate = "1r/s" }', "needs key and rate")):
            conf = srv.config_text().replace("module_dir", text + "\nmodule_dir", 1)
            srv.write_config(conf)
            line = conf.split("\n").index(text) + 1
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=20)
            assert proc.returncode == 1 and ("%s:%d: " % (srv.conf, line)).encode() in proc.stderr \
                and message.encode() in proc.stderr, (text, proc.stderr)
        conf = srv.config_text().replace('handler = "static"', 'handler = "static"\n  limit_req "missing" { }', 1)
        srv.write_config(conf)
        line = conf.split("\n").index('  limit_req "missing" { }') + 1
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=20)
        assert proc.returncode == 1 and ('%s:%d: limit_req "missing": no limit_req_zone' % (srv.conf, line)).encode() \
            in proc.stderr, proc.stderr
    finally:
        srv.cleanup()


def test_delayed_requests_are_served_later_not_refused():
    srv = Server(workers=2)
    srv.globals_text = ('access_log_buffer = "0"\nlog_format "l" { format = "$status $limit_req_status" }\n'
                        'access_log_format = "l"\n'
                        'limit_req_zone "slow" { key = "$remote_addr" rate = "2r/s" size = "1m" }\n')
    srv.locations = 'location "/" { handler = "static" root = "%s" limit_req "slow" { burst = 5 } }\n' % srv.root
    srv.file("index.html", "hello\n")
    srv.write_config()
    srv.start()
    try:
        got = parallel(srv, 5, "/index.html")
        assert statuses(got) == [200] * 5, statuses(got)
        assert wait_for(lambda: open(srv.access_log).read().count("200 DELAYED") >= 3), open(srv.access_log).read()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
