"""The buffered access log: every answered request logged once, whole lines only,
flushed on an interval and at exit, with workers writing concurrently."""
import json
import os
import re
import signal
import threading

from harness import Server, get, recv_all, run, wait_for

LINE = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /(a|b)\.txt\?n=\d+ HTTP/1\.1" 200 \d+ "-" "-"$')


def lines(srv):
    if not os.path.exists(srv.access_log):
        return []
    with open(srv.access_log) as f:
        return f.read().splitlines()


def test_concurrent_load_every_line_whole_and_counted():
    srv = Server(workers=2, globals_text='access_log_buffer = "4k"\naccess_log_flush = 1\n')
    srv.start()
    try:
        srv.file("a.txt", b"A" * 100)
        srv.file("b.txt", b"B" * 3000)
        total, per_thread = 0, 150
        errors = []

        def client(name, offset):
            for i in range(per_thread):
                if get(srv, "/%s.txt?n=%d" % (name, offset + i)).status != 200:
                    errors.append(i)

        threads = [threading.Thread(target=client, args=("ab"[t % 2], t * 1000)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        total = 4 * per_thread
        assert not errors
        assert wait_for(lambda: len(lines(srv)) >= total, timeout=10), len(lines(srv))
        got = lines(srv)
        assert len(got) == total, (len(got), total)
        torn = [l for l in got if not LINE.match(l)]
        assert not torn, torn[:3]
        assert len(set(got)) == total, "a line was written twice"
    finally:
        srv.cleanup()


def test_buffered_lines_written_at_exit():
    srv = Server(workers=1, globals_text='access_log_buffer = "64k"\naccess_log_flush = 60\n')
    srv.start()
    try:
        srv.file("a.txt", b"A")
        for i in range(5):
            assert get(srv, "/a.txt?n=%d" % i).status == 200
        srv.signal(signal.SIGTERM)
        srv.proc.wait(timeout=15)
        got = lines(srv)
        assert len(got) == 5 and all(LINE.match(l) for l in got), got
    finally:
        srv.cleanup()


def test_unbuffered_when_size_is_zero():
    srv = Server(workers=1, globals_text='access_log_buffer = "0"\naccess_log_flush = 60\n')
    srv.start()
    try:
        srv.file("a.txt", b"A")
        assert get(srv, "/a.txt?n=1").status == 200
        assert wait_for(lambda: len(lines(srv)) == 1, timeout=5)
    finally:
        srv.cleanup()


def test_access_log_off_and_min_status_per_location():
    srv = Server(workers=1, globals_text='access_log_buffer = "0"\n')
    srv.locations = ('location "/quiet/" { handler = "static" root = "%s" access_log = "off" }\n'
                     'location "/errors/" { handler = "static" root = "%s" access_log_min_status = 400 }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % (srv.root, srv.root, srv.root))
    srv.write_config()
    for d in ("quiet", "errors"):
        srv.file(d + "/a.txt", b"A")
    srv.file("a.txt", b"A")
    srv.start()
    try:
        for path in ("/quiet/a.txt", "/quiet/none", "/errors/a.txt", "/errors/none", "/a.txt"):
            get(srv, path)
        assert wait_for(lambda: "GET /a.txt " in open(srv.access_log).read())
        log = open(srv.access_log).read()
        assert "/quiet/" not in log, log
        assert "GET /errors/none HTTP/1.1\" 404" in log and "/errors/a.txt" not in log, log
    finally:
        srv.cleanup()


def test_json_lines_parse_whatever_bytes_the_client_sends():
    srv = Server(workers=2, globals_text='access_log_buffer = "0"\naccess_log_format = "json"\n')
    srv.start()
    try:
        answered = 0
        for b in range(256):
            byte = bytes([b])
            s = srv.connect()
            s.sendall(b"GET /x" + byte + b"y?q=" + byte + b" HTTP/1.1\r\nHost: t\r\nUser-Agent: a" + byte +
                      b"b\r\nReferer: r" + byte + b"\xc3\xa9\xff\r\nConnection: close\r\n\r\n")
            data = recv_all(s)
            s.close()
            answered += data.count(b"HTTP/1.1 ")
        assert wait_for(lambda: len(open(srv.access_log, "rb").read().splitlines()) == answered), answered
        with open(srv.access_log, "rb") as f:
            entries = [json.loads(line.decode("utf-8")) for line in f.read().splitlines()]   # strict UTF-8
        statuses = {e["status"] for e in entries}
        assert statuses <= {200, 400, 404}, statuses
        assert any(e["status"] == 404 and "\u00ff" in e["referer"] for e in entries), entries[:3]
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
