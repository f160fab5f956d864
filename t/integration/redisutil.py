"""A real redis-server for the tests: on a free loopback port, nothing saved (so a restart
forgets everything, as a Redis without persistence does), stopped and started on the same port."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import free_port, wait_for

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PREFIX = "fleet:"


def resp_command(port, *args, password=None, timeout=5):
    """One command in RESP over a socket (after AUTH when given a password): the reply's first
    line, or a bulk string's data."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        f = s.makefile("rb")
        commands = ([("AUTH", password)] if password else []) + [args]
        for cmd in commands:
            out = b"*%d\r\n" % len(cmd)
            for a in cmd:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
        for _ in commands:
            line = f.readline().rstrip(b"\r\n")
            if line.startswith(b"$") and line != b"$-1":
                line = f.read(int(line[1:]) + 2)[:-2]
        return line.decode()
    finally:
        s.close()


class Redis:
    """redis-server on a loopback port, nothing saved; stop/start keep the port."""

    def __init__(self, password=None):
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        self.port = free_port()
        self.password = password
        self.proc = None
        self.start()

    def start(self):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", "--protected-mode", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        assert wait_for(self.answering, timeout=15), "redis-server did not start"
        return self

    def answering(self):
        try:
            line = self.command("PING")
        except OSError:
            return False
        return line in ("+PONG", "-NOAUTH Authentication required.")

    def command(self, *args):
        return resp_command(self.port, *args, password=self.password if args[0] != "PING" else None)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
            self.log.close()

    def cleanup(self):
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def settled(redis, prefix=PREFIX):
    """A fleet that has been running a while: its epoch is well in the past."""
    assert redis.command("SET", prefix + "epoch", int(time.time()) - 3600) == "+OK"
