"""The health module and shutdown_delay: liveness, readiness that fails as soon as a
stop begins while the server keeps serving, SIGINT stopping at once."""
import signal
import time

from harness import Reader, Server, get, module_dir_with_tests, run, wait_for


def server(delay):
    srv = Server(workers=2, globals_text="shutdown_delay = %d\n" % delay)
    srv.locations = ('location "/healthz" { handler = "health" }\n'
                     'location "/readyz" { handler = "health" ready = true }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % srv.root)
    srv.write_config()
    srv.file("a.txt", b"AAAA")
    return srv.start()


def test_liveness_and_readiness_answer_200():
    srv = server(0)
    try:
        r = get(srv, "/healthz")
        assert r.status == 200 and r.body == b"ok\n" and r.header("Cache-Control") == "no-store", r
        assert get(srv, "/readyz").status == 200
        assert get(srv, "/readyz").status == 200   # both workers, whichever answers
    finally:
        srv.cleanup()


def readiness_fails_then_stops(sig):
    srv = server(3)
    try:
        assert get(srv, "/readyz").status == 200
        srv.signal(sig)
        # Readiness fails at once on every worker ...
        assert wait_for(lambda: all(get(srv, "/readyz").status == 503 for _ in range(4)), timeout=5)
        r = get(srv, "/readyz")
        assert r.body == b"draining\n" and r.header("Retry-After") == "5", r
        # ... while the server still accepts and serves, and liveness holds.
        assert get(srv, "/a.txt").body == b"AAAA"
        assert get(srv, "/healthz").status == 200
        # Then it stops by itself.
        srv.proc.wait(timeout=20)
        assert "failing readiness for 3 s before stopping" in srv.log()
    finally:
        srv.cleanup()


def test_sigterm_fails_readiness_for_shutdown_delay_then_stops():
    readiness_fails_then_stops(signal.SIGTERM)


def test_sigquit_fails_readiness_for_shutdown_delay_then_drains():
    readiness_fails_then_stops(signal.SIGQUIT)


def test_sigint_stops_at_once_without_the_delay():
    srv = server(60)
    try:
        assert get(srv, "/readyz").status == 200
        srv.signal(signal.SIGINT)
        srv.proc.wait(timeout=15)     # far less than shutdown_delay: no readiness phase
        assert "failing readiness" not in srv.log()
    finally:
        srv.cleanup()


def slow_server(globals_text):
    srv = Server(workers=1, globals_text=globals_text)
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.locations = 'location "/t/" { handler = "testmod" }\n'
    srv.write_config()
    return srv.start()


def slow_request(srv, ms):
    s = srv.connect()
    s.sendall(b"GET /t/async/timer?ms=%d HTTP/1.1\r\nHost: t\r\n\r\n" % ms)
    time.sleep(0.3)   # the request is in flight
    return s


def test_sigterm_finishes_requests_in_flight_then_stops():
    srv = slow_server("shutdown_timeout = 10\n")
    try:
        s = slow_request(srv, 1500)
        idle = srv.connect()          # a kept-alive connection with no request: closed at once
        srv.signal(signal.SIGTERM)
        assert Reader(idle).closed(timeout=5)
        r = Reader(s).response()
        assert r.status == 200 and r.body == b"timer fired\n", r
        assert r.header("Connection") == "close", r
        srv.proc.wait(timeout=15)
        assert "finishing requests in flight (shutdown_timeout 10 s)" in srv.log()
    finally:
        srv.cleanup()


def cut_by(sig, globals_text):
    """A request in flight whose handler would answer in a minute is cut: closed with no answer."""
    srv = slow_server(globals_text)
    try:
        s = slow_request(srv, 60000)
        srv.signal(sig)
        assert Reader(s).closed(timeout=20)
        srv.proc.wait(timeout=15)
    finally:
        srv.cleanup()


def test_sigterm_gives_up_after_shutdown_timeout_sigquit_waits_drain_timeout():
    cut_by(signal.SIGTERM, "shutdown_timeout = 1\ndrain_timeout = 30\n")
    srv = slow_server("shutdown_timeout = 1\ndrain_timeout = 30\n")
    try:
        s = slow_request(srv, 3000)
        srv.signal(signal.SIGQUIT)    # drain_timeout, not shutdown_timeout, applies
        r = Reader(s).response()
        assert r.status == 200 and r.body == b"timer fired\n", r
        srv.proc.wait(timeout=15)
        assert "draining connections (drain_timeout 30 s)" in srv.log()
    finally:
        srv.cleanup()


def test_sigint_cuts_requests_in_flight():
    cut_by(signal.SIGINT, "shutdown_timeout = 30\n")   # shutdown_timeout does not apply


if __name__ == "__main__":
    raise SystemExit(run(globals()))
