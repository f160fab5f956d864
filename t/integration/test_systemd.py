"""systemd without systemd: a fake NOTIFY_SOCKET sees the exact message sequence for start,
good reload, failed reload and stop (and the watchdog); the server runs under
systemd-socket-activate on the socket it inherits."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import HTTPD, Reader, Server, run, wait_for


class Notify:
    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "httpd-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="notify-")
            path = os.path.join(self.dir, "notify.sock")
            self.sock.bind(path)
            self.env = path
        self.sock.settimeout(10)

    def next(self, skip=("WATCHDOG=1",)):
        """The next message, leaving out the watchdog and the periodic STATUS= (every 10 s)."""
        while True:
            msg = self.sock.recv(4096).decode()
            if msg not in skip and not (msg.startswith("STATUS=serving:") and "\n" not in msg):
                return msg

    def close(self):
        self.sock.close()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)


def start_with_env(srv, env):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return srv.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_notify_sequence_start_reload_failed_reload_stop():
    notify = Notify()
    srv = Server(workers=2)
    try:
        start_with_env(srv, {"NOTIFY_SOCKET": notify.env})
        msg = notify.next()
        assert msg.startswith("READY=1\nSTATUS=serving: 2 workers, 1 listeners; 0 reloads, 0 failed"), msg
        srv.signal(signal.SIGHUP)
        msg = notify.next()
        lines = msg.split("\n")
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=") and int(lines[1][15:]) > 0, msg
        assert notify.next() == "READY=1\nSTATUS=serving: 2 workers, 1 listeners; 1 reloads, 0 failed"
        srv.write_config(srv.config_text() + "nonsense = 1\n")
        srv.signal(signal.SIGHUP)
        assert notify.next().startswith("RELOADING=1\nMONOTONIC_USEC=")
        msg = notify.next()
        assert msg.startswith("READY=1\nSTATUS=reload failed (configuration errors); serving with the previous "
                              "configuration, 1 reloads failed so far"), msg
        srv.signal(signal.SIGTERM)
        assert notify.next() == "STOPPING=1\nSTATUS=stopping (Terminated)"
        srv.proc.wait(timeout=20)
    finally:
        srv.cleanup()
        notify.close()


def test_watchdog_and_abstract_socket():
    notify = Notify(abstract=True)
    srv = Server(workers=1)
    try:
        start_with_env(srv, {"NOTIFY_SOCKET": notify.env, "WATCHDOG_USEC": "400000"})
        assert notify.next().startswith("READY=1")
        # Every 200 ms while the worker runs.
        assert notify.next(skip=()) == "WATCHDOG=1"
        assert notify.next(skip=()) == "WATCHDOG=1"
        # Every 10 s: workers, request rate, reloads.
        notify.sock.settimeout(20)
        msg = ""
        while not msg.startswith("STATUS=serving:"):
            msg = notify.sock.recv(4096).decode()
        assert msg.startswith("STATUS=serving: 1 workers, ") and " req/s; 0 reloads, 0 failed" in msg, msg
    finally:
        srv.cleanup()
        notify.close()


def test_socket_activation_uses_the_inherited_socket():
    srv = Server(workers=2)
    srv.file("a.txt", b"activated\n")
    tool = shutil.which("systemd-socket-activate")
    assert tool, "systemd-socket-activate (Debian package systemd) is a test dependency"
    log = open(os.path.join(srv.dir, "activate.log"), "wb")
    proc = subprocess.Popen([tool, "-l", "127.0.0.1:%d" % srv.port, "--fdname=web", HTTPD, "-F", "-f", srv.conf],
                            stdout=log, stderr=log, start_new_session=True)
    try:
        # The first connection makes it start httpd, which must serve it on the passed socket.
        s = None
        for _ in range(100):
            try:
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                break
            except OSError:
                time.sleep(0.05)
        s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        r = Reader(s).response()
        assert r.status == 200 and r.body == b"activated\n", r
        s.close()
        assert wait_for(lambda: "using the socket systemd passed" in srv.log()), srv.log()
        assert "cannot bind" not in srv.log()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
