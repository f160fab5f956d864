"""Reloads and rotations under keep-alive load lose nothing: a load client with 20 keep-alive
connections that retries nothing and checks every response byte for byte, while the test sends
SIGHUPs with alternating configurations (and SIGUSR1s); 0 failed requests, and the new
configuration takes effect."""
import os
import signal
import threading
import time

from harness import Server, get, keepalive_load, run, wait_for

BODY = bytes(range(256)) * 8


def under_load(srv, action):
    stop = threading.Event()
    results = [{"ok": 0, "failed": 0, "closed": 0, "why": [], "servers": set()} for _ in range(20)]
    threads = [threading.Thread(target=keepalive_load, args=(srv.port, "/f.bin", BODY, stop, r, 50000))
               for r in results]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        action()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    ok = sum(r["ok"] for r in results)
    failed = sum(r["failed"] for r in results)
    why = [w for r in results for w in r["why"]][:5]
    assert failed == 0, "%d of %d requests failed: %s\n%s" % (failed, ok + failed, why, srv.log()[-3000:])
    assert ok > 200, ok
    return results


def test_twenty_reloads_under_keep_alive_load_lose_nothing():
    srv = Server(workers=2, globals_text="server_tokens = true\n")
    srv.file("f.bin", BODY)
    srv.start()
    try:
        def reloads():
            for i in range(20):
                srv.globals_text = "server_tokens = %s\n" % ("false" if i % 2 == 0 else "true")
                srv.write_config()
                srv.signal(signal.SIGHUP)
                time.sleep(0.25)
        results = under_load(srv, reloads)
        # Connections were handed over with Connection: close, not cut.
        assert sum(r["closed"] for r in results) > 0
        servers = set().union(*(r["servers"] for r in results))
        assert "prefork-httpd" in servers and any(s.startswith("prefork-httpd/") for s in servers), servers
        # The last configuration (server_tokens = true) is the one in force.
        assert wait_for(lambda: get(srv, "/f.bin").header("Server").startswith("prefork-httpd/"))
        assert wait_for(lambda: len(srv.worker_pids()) == 2, timeout=20), srv.worker_pids()
    finally:
        srv.cleanup()


def test_log_rotations_under_keep_alive_load_lose_nothing():
    srv = Server(workers=2, globals_text='access_log_buffer = "0"\n')
    srv.file("f.bin", BODY)
    srv.start()
    try:
        workers = srv.worker_pids()

        def rotations():
            for i in range(5):
                os.rename(srv.access_log, srv.access_log + ".%d" % i)
                srv.signal(signal.SIGUSR1)
                time.sleep(0.2)
        results = under_load(srv, rotations)
        assert srv.worker_pids() == workers
        assert sum(r["closed"] for r in results) == 0, "a rotation closed connections"
        # Every request has exactly one line, across the rotated files.
        ok = sum(r["ok"] for r in results)
        lines = 0
        for name in os.listdir(srv.dir):
            if name.startswith("access.log"):
                with open(os.path.join(srv.dir, name)) as f:
                    lines += sum(1 for line in f if "GET /f.bin" in line)
        assert lines == ok, (lines, ok)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
