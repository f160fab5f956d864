"""The health module and shutdown_delay: liveness, readiness that fails as soon as a
stop begins while the server keeps serving, SIGINT stopping at once."""
import signal
import time

from harness import Server, get, run, wait_for


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


if __name__ == "__main__":
    raise SystemExit(run(globals()))
