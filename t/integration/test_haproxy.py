"""Behind Debian's haproxy: two prefork-httpd instances, one fed PROXY v2 (crc32c, unique-id),
one PROXY v1, round-robin, health checks on /readyz.  Clients on distinct loopback addresses
show up under their own address in each instance's access log; SIGTERM to one instance
under bounded keep-alive load costs the clients 0 failed requests."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import curl, free_port, helper_output, helper_stop, KeepaliveLoad, recv_all, run, Server, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SHUTDOWN_DELAY = 3
LOG_FORMAT = ("$remote_addr peer=$realip_remote_addr lb=$proxy_protocol_balancer_addr "
              "v=$proxy_protocol_version uid=$proxy_protocol_tlv_unique_id \\\"$request\\\" $status")


def instance():
    srv = Server(workers=2)
    srv.plain_port = srv.port
    srv.proxy_port = free_port()
    srv.listen = ["127.0.0.1:%d" % srv.plain_port, "127.0.0.1:%d proxy_protocol" % srv.proxy_port]
    srv.globals_text = ('access_log_buffer = "0"\nshutdown_delay = %d\nshutdown_timeout = 5\n'
                        'proxy_protocol_from = {"127.0.0.1"}\n'
                        'log_format "lb" { format = "%s" }\naccess_log_format = "lb"\n'
                        % (SHUTDOWN_DELAY, LOG_FORMAT))
    srv.locations = ('location "/readyz" { handler = "health" ready = true }\n'
                     'location "/echo" { handler = "echo" }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % srv.root)
    srv.write_config()
    srv.file("page.txt", b"page\n" * 100)
    return srv.start()


class HAProxy:
    def __init__(self, a, b):
        self.dir = tempfile.mkdtemp(prefix="haproxy-test-")
        self.port = free_port()
        self.stats = os.path.join(self.dir, "stats.sock")
        conf = os.path.join(self.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write("""global
    maxconn 500
    stats socket %(stats)s mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    timeout http-keep-alive 10s
    retries 2
    option redispatch
frontend fe
    bind 127.0.0.1:%(port)d
    unique-id-format %%{+X}o%%ci-%%cp-%%rt
    default_backend be
backend be
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host lb
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
    server a 127.0.0.1:%(a)d send-proxy-v2 proxy-v2-options crc32c,unique-id check
    server b 127.0.0.1:%(b)d send-proxy check
""" % {"stats": self.stats, "port": self.port, "a": a.proxy_port, "b": b.proxy_port})
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", conf], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        ok = wait_for(lambda: self.server_states() == {"a": "UP", "b": "UP"}, timeout=15)
        assert ok, "haproxy did not see both servers up: %s\n%s" % (self.server_states(), self.output())

    def server_states(self):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(2)
            s.connect(self.stats)
            s.sendall(b"show stat\n")
            data = recv_all(s)
            s.close()
        except OSError:
            return {}
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "be" and row.get("svname") in ("a", "b"):
                states[row["svname"]] = row["status"].split()[0]
        return states

    def output(self):
        return helper_output(self.log)

    def cleanup(self):
        helper_stop(self.proc, self.log, self.dir)


def setup():
    a, b = instance(), instance()
    try:
        return a, b, HAProxy(a, b)
    except BaseException:
        a.cleanup()
        b.cleanup()
        raise


def test_each_instance_logs_the_true_client_address():
    a, b, lb = setup()
    try:
        for source in ("127.0.0.2", "127.0.0.3"):
            for _ in range(4):   # round-robin: both instances see both clients
                rc, body, err = curl("--interface", source, "http://127.0.0.1:%d/page.txt" % lb.port)
                assert rc == 0 and body == b"page\n" * 100, (rc, err)

        def lines(srv):
            with open(srv.access_log) as f:
                return [l for l in f.read().splitlines() if "/page.txt" in l]
        assert wait_for(lambda: len(lines(a)) + len(lines(b)) == 8), (lines(a), lines(b))
        for srv, version in ((a, "2"), (b, "1")):
            got = lines(srv)
            for source in ("127.0.0.2", "127.0.0.3"):
                assert any(l.startswith(source + " peer=" + source + " lb=127.0.0.1 v=" + version) for l in got), got
        # v2 carried haproxy's unique id (hex frontend address, client address and port, counter).
        assert all(" uid=" in l and " uid=- " not in l for l in lines(a)), lines(a)
        assert all(" uid=- " in l for l in lines(b)), lines(b)   # v1 has no TLVs
        # The health checks came through the PROXY listener too, and answered 200.
        assert "GET /readyz HTTP/1.1\" 200" in open(a.access_log).read()
    finally:
        lb.cleanup()
        a.cleanup()
        b.cleanup()


def test_sigterm_under_load_costs_no_request():
    a, b, lb = setup()
    try:
        with KeepaliveLoad(lb.port, "/page.txt", b"page\n" * 100, 4, bound=20000, lead=1.0) as load:
            a_master = a.master_pid()
            sent_at = time.monotonic()
            a.signal(signal.SIGTERM)
            # haproxy takes it out from /readyz well within shutdown_delay, while it still serves.
            assert wait_for(lambda: lb.server_states().get("a") in ("DOWN", "NOLB", "MAINT"), timeout=SHUTDOWN_DELAY)
            marked_down = time.monotonic() - sent_at
            assert marked_down < SHUTDOWN_DELAY, marked_down
            # Then it stops: its master exits once requests in flight are done.
            assert wait_for(lambda: not os.path.exists("/proc/%d" % a_master) or
                            open("/proc/%d/stat" % a_master).read().split()[2] == "Z",
                            timeout=SHUTDOWN_DELAY + 10)
            time.sleep(1.0)   # load keeps going on b alone
        assert load.failed == 0, "%d of %d requests failed: %s\n%s" % (load.failed, load.ok + load.failed, load.why,
                                                                       lb.output())
        assert load.ok > 100, load.ok
        print("# %d requests through haproxy, 0 failed; a marked down %.2f s after SIGTERM" % (load.ok, marked_down))
        with open(a.access_log) as f:
            served_a = sum(1 for l in f if "/page.txt" in l)
        assert served_a > 0, "a served nothing before it stopped"
        assert "stopping: finishing requests in flight" in a.log(), a.log()
    finally:
        lb.cleanup()
        a.cleanup()
        b.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
