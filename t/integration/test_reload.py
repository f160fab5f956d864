"""Reloads and rotations under keep-alive load lose nothing: a load client with 50 keep-alive
connections that retries nothing and checks every response byte for byte, while the test sends
SIGHUPs with alternating configurations (and SIGUSR1s); 0 failed requests, and the new
configuration takes effect."""
import os
import re
import signal
import socket
import time

from harness import KeepaliveLoad, Server, get, run, wait_for

BODY = bytes(range(256)) * 8


def under_load(srv, action):
    with KeepaliveLoad(srv.port, "/f.bin", BODY, 50) as load:
        action()
        time.sleep(0.5)
    assert load.failed == 0, "%d of %d requests failed: %s\n%s" % (load.failed, load.ok + load.failed, load.why,
                                                                   srv.log()[-3000:])
    assert load.ok > 200, load.ok
    return load.results


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


def test_log_lines_whole_and_counted_across_a_reload_and_a_rotation():
    srv = Server(workers=2, globals_text='access_log_buffer = "16k"\n')
    srv.file("f.bin", BODY)
    srv.start()
    try:
        def both():
            srv.signal(signal.SIGHUP)
            time.sleep(0.3)
            os.rename(srv.access_log, srv.access_log + ".old")
            srv.signal(signal.SIGUSR1)
        results = under_load(srv, both)
        ok = sum(r["ok"] for r in results)
        srv.signal(signal.SIGTERM)        # flushes every worker's buffer
        srv.proc.wait(timeout=30)
        lines = []
        for name in ("access.log", "access.log.old"):
            with open(os.path.join(srv.dir, name), "rb") as f:
                lines += f.read().split(b"\n")[:-1]
        whole = re.compile(rb'^127\.0\.0\.1 - - \[[^\]]+\] "GET /f\.bin HTTP/1\.1" 200 2048 "-" "-"$')
        good = [l for l in lines if whole.match(l)]
        assert len(good) == len(lines), [l for l in lines if l not in good][:3]   # none torn
        assert sum(1 for l in lines if b"GET /f.bin" in l) == ok, (len(lines), ok)
    finally:
        srv.cleanup()


def test_slow_200m_download_survives_rotations_and_reloads():
    srv = Server(workers=2, globals_text="drain_timeout = 120\n")
    size = 200 * 1024 * 1024
    with open(os.path.join(srv.root, "big.bin"), "wb") as f:
        f.truncate(size)          # sparse: 200 MiB of zeros
    srv.start()
    try:
        s = srv.connect(timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        got, head = 0, b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        got = len(head.split(b"\r\n\r\n", 1)[1])
        signals = [signal.SIGUSR1, signal.SIGHUP] * 3
        step = size // (len(signals) + 1)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            if signals and got >= step * (7 - len(signals)):
                srv.signal(signals.pop(0))
            if signals:
                time.sleep(0.001)   # a slow reader while signals arrive
        assert not signals
        assert got == size, (got, size)
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
