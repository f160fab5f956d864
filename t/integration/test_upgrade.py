"""SIGUSR2 binary upgrade: the master starts its binary again with the listening sockets, the
new master takes over (pid file, workers) under keep-alive load with 0 failed requests; a new
binary that fails to start, or never becomes ready, leaves the old master serving."""
import os
import shutil
import signal
import time

from harness import HTTPD, KeepaliveLoad, Server, get, run, wait_for
from test_systemd import Notify

BODY = b"upgrade me\n" * 50


def server_with_own_binary(globals_text=""):
    """A copy of the binary in the test directory, so the test can replace it as apt would."""
    srv = Server(workers=2, globals_text=globals_text)
    binary = os.path.join(srv.dir, "httpd")
    shutil.copy(HTTPD, binary)
    srv.binary = binary
    srv.file("f.bin", BODY)
    return srv


def start(srv, foreground=True):
    import harness
    saved = harness.HTTPD
    harness.HTTPD = srv.binary
    try:
        return srv.start(foreground=foreground)
    finally:
        harness.HTTPD = saved


def replace_binary(srv, content, mode=0o755):
    """Like a package upgrade: a new file at the same path (the running one stays open)."""
    tmp = srv.binary + ".new"
    if isinstance(content, bytes):
        with open(tmp, "wb") as f:
            f.write(content)
    else:
        shutil.copy(content, tmp)
    os.chmod(tmp, mode)
    os.rename(tmp, srv.binary)


def test_upgrade_under_keep_alive_load_loses_nothing():
    srv = server_with_own_binary()
    notify = Notify()
    saved = dict(os.environ)
    os.environ["NOTIFY_SOCKET"] = notify.env
    try:
        start(srv, foreground=False)   # a daemon, as the package runs it
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        assert notify.next().startswith("READY=1")
        old = srv.master_pid()
        old_workers = srv.worker_pids()
        replace_binary(srv, HTTPD)
        with KeepaliveLoad(srv.port, "/f.bin", BODY, 10) as load:
            os.kill(old, signal.SIGUSR2)
            assert wait_for(lambda: srv.master_pid() != old, timeout=30), srv.log()
            new = srv.master_pid()
            # The old master drains and exits; the new one and its workers serve.
            assert wait_for(lambda: not os.path.exists("/proc/%d" % old), timeout=30), srv.log()
            time.sleep(0.5)
        assert load.failed == 0, load.why
        assert load.ok > 100
        assert get(srv, "/f.bin").body == BODY
        assert len(srv.worker_pids()) == 2 and not set(old_workers) & set(srv.worker_pids())
        assert "upgrade: the new master (pid %d) serves" % new in srv.log(), srv.log()
        assert "using the socket systemd passed" in srv.log()   # inherited, not bound again
        # systemd hears about the new main process from the old one.
        msgs = []
        while not any(m.startswith("MAINPID=") for m in msgs):
            msgs.append(notify.next())
        assert "MAINPID=%d\nREADY=1" % new in msgs[-1], msgs
    finally:
        srv.cleanup()
        notify.close()


def test_failed_upgrades_leave_the_old_master_serving():
    srv = server_with_own_binary('upgrade_timeout = 2\n')
    start(srv)
    try:
        old = srv.master_pid()
        workers = srv.worker_pids()
        # A new binary that cannot start at all.
        replace_binary(srv, b"#!/bin/sh\nexit 1\n")
        srv.signal(signal.SIGUSR2)
        assert wait_for(lambda: "exited (status 1) before it was ready" in srv.log(), timeout=15), srv.log()
        # The failed binary was our child: it may take a moment to be gone from /proc.
        assert srv.master_pid() == old and wait_for(lambda: srv.worker_pids() == workers, timeout=10), \
            (srv.worker_pids(), workers)
        assert get(srv, "/f.bin").body == BODY
        # One that starts but never becomes ready: stopped after upgrade_timeout.
        replace_binary(srv, b"#!/bin/sh\nexec sleep 60\n")
        srv.signal(signal.SIGUSR2)
        assert wait_for(lambda: "was not ready within 2 s" in srv.log(), timeout=15), srv.log()
        assert srv.master_pid() == old and wait_for(lambda: srv.worker_pids() == workers, timeout=10), \
            (srv.worker_pids(), workers)
        assert get(srv, "/f.bin").body == BODY
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
