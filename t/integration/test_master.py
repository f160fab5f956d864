"""The master: worker pool, respawn with back-off, signals, reload, log reopen, daemon mode."""
import os
import signal
import socket
import subprocess
import sys
import time

from harness import HTTPD, recv_all, Reader, Server, get, module_dir_with_tests, run, wait_for


def request(path="/a.txt"):
    return ("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode()


def server_socket_owner(srv, client):
    """The worker pid holding the server side of client's connection (via /proc)."""
    local_port = client.getsockname()[1]
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == local_port:
                inodes.add(fields[9])
    for pid in srv.worker_pids():
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        except OSError:
            pass
    return None


def test_worker_count_and_privileges():
    def real_uid(pid):
        try:
            with open("/proc/%d/status" % pid) as f:
                return [l for l in f if l.startswith("Uid:")][0].split()[1]
        except (OSError, IndexError):
            return None   # gone meanwhile

    srv = Server(workers=3).start()
    try:
        assert wait_for(lambda: len(srv.worker_pids()) == 3), srv.worker_pids()
        if os.geteuid() == 0:
            # a worker just forked is root until it drops privileges: wait for that, then every one has
            assert wait_for(lambda: all(real_uid(pid) not in ("0", None) for pid in srv.worker_pids())), \
                "workers must drop root: %r" % [(pid, real_uid(pid)) for pid in srv.worker_pids()]
    finally:
        srv.cleanup()


def test_sigkill_worker_replaced_while_other_connection_served():
    srv = Server(workers=2)
    srv.file("a.txt", b"AAAA")
    srv.start()
    try:
        assert wait_for(lambda: len(srv.worker_pids()) == 2)
        s = srv.connect()
        reader = Reader(s)
        s.sendall(request())
        assert reader.response().body == b"AAAA"
        owner = server_socket_owner(srv, s)
        assert owner is not None
        victim = [p for p in srv.worker_pids() if p != owner][0]
        os.kill(victim, signal.SIGKILL)
        # The surviving worker keeps serving its connection meanwhile.
        for _ in range(20):
            s.sendall(request())
            assert reader.response().body == b"AAAA"
        assert wait_for(lambda: len(srv.worker_pids()) == 2 and victim not in srv.worker_pids()), \
            srv.worker_pids()
        # read until it is there: once under ASan the line was not yet in the file when the new worker was
        assert wait_for(lambda: "killed by signal 9" in srv.log()), srv.log()
        for _ in range(10):
            assert get(srv, "/a.txt").body == b"AAAA"
    finally:
        srv.cleanup()


def test_worker_crash_on_request_is_respawned():
    srv = Server(workers=1)
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.locations = 'location "/" { handler = "testmod" crash_path = "/crash" }\n'
    srv.write_config()
    srv.start()
    try:
        before = srv.worker_pids()
        s = srv.connect()
        s.sendall(request("/crash"))
        assert Reader(s).closed(), "the crashed worker's connection closes"
        assert wait_for(lambda: len(srv.worker_pids()) == 1 and srv.worker_pids() != before)
        assert get(srv, "/fine").body == b"testmod\n"
        assert wait_for(lambda: "killed by signal 6" in srv.log()), srv.log()
    finally:
        srv.cleanup()


def test_crash_loop_backs_off():
    srv = Server(workers=1)
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.locations = 'location "/" { handler = "testmod" fail_init = true }\n'
    srv.write_config()
    srv.start(expect_ok=False)
    try:
        assert wait_for(lambda: os.path.exists(srv.pid_file))
        time.sleep(3)
        respawns = srv.log().count("respawning in")
        # Without back-off this would be thousands in 3 s; with it, delays double from 100 ms.
        assert 2 <= respawns <= 8, (respawns, srv.log())
        assert "respawning in 200 ms" in srv.log() and "respawning in 400 ms" in srv.log()
    finally:
        srv.cleanup()


def test_sigterm_stops_cleanly():
    srv = Server(workers=2).start()
    workers = srv.worker_pids()
    srv.signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=15) == 0
    assert not os.path.exists(srv.pid_file), "pid file removed"
    for pid in workers:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    srv.cleanup()


def test_sigint_stops_cleanly():
    srv = Server(workers=1).start()
    srv.signal(signal.SIGINT)
    assert srv.proc.wait(timeout=15) == 0
    srv.cleanup()


def test_sigquit_graceful_finishes_inflight():
    srv = Server(workers=1)
    srv.file("a.txt", b"AAAA")
    srv.start()
    try:
        s = srv.connect()
        s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n")      # request half sent
        time.sleep(0.2)
        srv.signal(signal.SIGQUIT)
        time.sleep(0.2)
        s.sendall(b"\r\n")
        r = Reader(s).response()
        assert r.status == 200 and r.body == b"AAAA" and r.header("Connection") == "close"
        assert srv.proc.wait(timeout=15) == 0
    finally:
        srv.cleanup()


def test_ipv4_and_ipv6_listeners():
    port4 = Server.__init__.__globals__["free_port"]()
    try:
        port6 = Server.__init__.__globals__["free_port"](socket.AF_INET6, "::1")
    except OSError:
        return   # no IPv6 loopback on this machine
    srv = Server(listen=["127.0.0.1:%d" % port4, "[::1]:%d" % port6])
    srv.file("a.txt", b"AAAA")
    srv.start()
    try:
        for index in (0, 1):
            s = srv.connect(index)
            s.sendall(request())
            assert Reader(s).response().body == b"AAAA"
    finally:
        srv.cleanup()


def test_sighup_reload_applies_new_config():
    srv = Server(workers=1)
    srv.file("a.txt", b"AAAA")
    srv.start()
    try:
        assert get(srv, "/docs/a.txt").status == 404
        srv.locations += 'location "/docs/" { handler = "static" root = "%s" }\n' % srv.root
        srv.write_config()
        old = srv.worker_pids()
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: get(srv, "/docs/a.txt").status == 200), srv.log()
        assert wait_for(lambda: not set(old) & set(srv.worker_pids())), "old workers drained"
    finally:
        srv.cleanup()


def test_sighup_bad_config_keeps_old():
    srv = Server(workers=1)
    srv.file("a.txt", b"AAAA")
    srv.start()
    try:
        srv.write_config(srv.config_text() + "\nbogus_directive = 1\n")
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: "keeping the running configuration" in srv.log()), srv.log()
        assert "no such option 'bogus_directive'" in srv.log()
        assert get(srv, "/a.txt").body == b"AAAA"
        assert srv.proc.poll() is None
    finally:
        srv.cleanup()


def test_sigusr1_reopens_logs_in_place():
    srv = Server(workers=2, globals_text='access_log_buffer = "0"\n')
    srv.file("a.txt", b"AAAA")
    srv.file("big.bin", os.urandom(8 * 1024 * 1024))
    srv.start()
    try:
        get(srv, "/a.txt")
        assert wait_for(lambda: os.path.exists(srv.access_log) and "GET /a.txt" in open(srv.access_log).read())
        workers = srv.worker_pids()
        # A kept-alive connection and a download that is being read slowly, across the rotation.
        kept = srv.connect()
        kept.sendall(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        kept_reader = Reader(kept)
        assert kept_reader.response().body == b"AAAA"
        slow = srv.connect()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        first = slow.recv(65536)
        os.rename(srv.access_log, srv.access_log + ".1")
        os.rename(srv.error_log, srv.error_log + ".1")
        srv.signal(signal.SIGUSR1)
        assert wait_for(lambda: os.path.exists(srv.access_log) and "logs reopened" in srv.log())
        data = first + recv_all(slow)
        assert data.split(b"\r\n\r\n", 1)[1] == open(os.path.join(srv.root, "big.bin"), "rb").read()
        kept.sendall(b"GET /a.txt?kept HTTP/1.1\r\nHost: t\r\n\r\n")
        assert kept_reader.response().body == b"AAAA"
        assert srv.worker_pids() == workers, "no worker is replaced for a rotation"
        for i in range(6):   # whichever worker answers writes to the new file
            assert get(srv, "/a.txt?after%d" % i).status == 200
        assert wait_for(lambda: all("after%d" % i in open(srv.access_log).read() for i in range(6))), \
            open(srv.access_log).read()
        assert wait_for(lambda: "kept" in open(srv.access_log).read())
        assert "after" not in open(srv.access_log + ".1").read()
        assert "big.bin" in open(srv.access_log).read()    # logged when it finished, after the rotation
    finally:
        srv.cleanup()


def test_error_log_level():
    quiet = Server(workers=1, globals_text='error_log_level = "warn"\n')
    chatty = Server(workers=1, globals_text='error_log_level = "info"\n')
    try:
        quiet.start()
        chatty.start()
        for srv in (quiet, chatty):
            srv.signal(signal.SIGUSR1)
        assert wait_for(lambda: "logs reopened" in chatty.log())
        # info: the workers' own "logs reopened" lines too; warn: not even the master's notices.
        assert wait_for(lambda: "[info] worker 0" in chatty.log()), chatty.log()
        time.sleep(0.5)
        assert "[notice]" not in quiet.log() and "started" not in quiet.log(), quiet.log()
        bad = Server(globals_text='error_log_level = "loud"\n')
        try:
            proc = subprocess.run([HTTPD, "-t", "-f", bad.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=20)
            assert proc.returncode == 1 and b'error_log_level must be' in proc.stderr, proc.stderr
        finally:
            bad.cleanup()
    finally:
        quiet.cleanup()
        chatty.cleanup()


def test_error_log_to_syslog():
    """syslog(3) writes to /dev/log: where no syslog daemon owns it (CI), the test stands in for one."""
    if os.path.exists("/dev/log"):
        print("# skipped: /dev/log belongs to this machine's syslog")
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    sock.settimeout(10)
    srv = Server(workers=1, globals_text='error_log_level = "info"\n')
    srv.write_config(srv.config_text().replace('error_log = "%s"' % srv.error_log, 'error_log = "syslog"'))
    try:
        srv.start()
        got = []
        while not any("started: 1 workers" in m for m in got):
            got.append(sock.recv(4096).decode(errors="replace"))
        # RFC 3164 framing from syslog(3): <priority>timestamp httpd[pid]: role: message
        line = [m for m in got if "started: 1 workers" in m][0]
        assert line.startswith("<29>") and "httpd[%d]: master: started" % srv.master_pid() in line, line
        srv.signal(signal.SIGUSR1)
        while not any("worker 0: logs reopened" in m for m in got):
            got.append(sock.recv(4096).decode(errors="replace"))
        assert [m for m in got if "logs reopened" in m and "worker" in m][0].startswith("<30>")   # daemon.info
    finally:
        srv.cleanup()
        sock.close()
        os.unlink("/dev/log")


def test_reuseport_mode_serves_respawns_and_reloads():
    srv = Server(workers=2, globals_text="reuseport = true\n")
    srv.file("a.txt", b"AAAA")
    srv.start()
    try:
        for _ in range(20):
            assert get(srv, "/a.txt").body == b"AAAA"
        victim = srv.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(srv.worker_pids()) == 2 and victim not in srv.worker_pids())
        srv.workers = 3
        srv.write_config()
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: len(srv.worker_pids()) == 3), srv.log()
        for _ in range(20):
            assert get(srv, "/a.txt").body == b"AAAA"
        assert "SO_REUSEPORT" in srv.log()
    finally:
        srv.cleanup()


def test_daemon_mode():
    srv = Server(workers=1)
    srv.file("a.txt", b"AAAA")
    srv.start(foreground=False)
    try:
        assert srv.proc.returncode == 0, "the launching process exits 0"
        assert get(srv, "/a.txt").body == b"AAAA"
        pid = srv.master_pid()
        os.kill(pid, signal.SIGTERM)
        assert wait_for(lambda: not os.path.exists(srv.pid_file))
    finally:
        srv.proc = None
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(run(globals()))
