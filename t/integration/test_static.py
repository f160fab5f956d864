"""The static module over real sockets: files, types, directories, errors, and the root boundary."""
import os
import re
import socket
import sys
import time

from harness import Reader, Server, curl, get, recv_all, run, wait_for, IS_ROOT

SERVER = None


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server(workers=2)
        SERVER.file("hello.txt", b"Hello, world!\n")
        SERVER.file("style.css", b"body{}\n")
        SERVER.file("blob.unknownext", b"\x00\x01\x02")
        SERVER.file("noext", b"x")
        SERVER.file("dir/index.html", b"<h1>dir index</h1>\n")
        SERVER.file("sub/page.html", b"<p>page</p>\n")
        os.makedirs(os.path.join(SERVER.root, "empty"))
        SERVER.file("big.bin", os.urandom(5 * 1024 * 1024 + 123))
        SERVER.file("a b%c.txt", b"spaces\n")
        SERVER.file("secret-perm.txt", b"nope", mode=0o000)
        outside = os.path.join(SERVER.dir, "outside-secret.txt")
        with open(outside, "w") as f:
            f.write("TOP SECRET\n")
        os.chmod(outside, 0o644)
        os.symlink(outside, os.path.join(SERVER.root, "escape-link"))
        os.symlink(SERVER.dir, os.path.join(SERVER.root, "escape-dir"))
        os.symlink("../outside-secret.txt", os.path.join(SERVER.root, "escape-relative"))
        os.symlink("hello.txt", os.path.join(SERVER.root, "inside-link"))
        SERVER.start()
    return SERVER


def teardown_module():
    if SERVER is not None:
        SERVER.cleanup()


def test_get_file_exact_bytes_and_headers():
    r = get(server(), "/hello.txt")
    assert r.status == 200, r
    assert r.body == b"Hello, world!\n"
    assert r.header("Content-Length") == "14"
    assert r.header("Content-Type") == "text/plain"
    assert re.match(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$", r.header("Last-Modified"))
    assert re.match(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$", r.header("Date"))
    assert r.header("Server").startswith("prefork-httpd")


def test_permission_denied_403_says_why_in_the_error_log():
    srv = Server(workers=1)
    srv.file("locked.txt", b"secret", mode=0o000)
    srv.file(".hidden", b"h")
    srv.start()
    try:
        assert get(srv, "/locked.txt").status == 403
        assert wait_for(lambda: "GET /locked.txt: 403: cannot open %s/locked.txt: Permission denied" % srv.root
                        in srv.log()), srv.log()
        assert get(srv, "/nothing-here").status == 404
        assert "nothing-here" not in srv.log()          # a plain 404 is not an error
    finally:
        srv.cleanup()


def test_raw_response_framing_byte_for_byte():
    s = server().connect()
    s.sendall(b"GET /noext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    data = recv_all(s)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK", lines
    assert b"Content-Length: 1" in lines
    assert b"Connection: close" in lines
    assert b"Content-Type: application/octet-stream" in lines
    assert body == b"x"


def test_content_type_from_mime_types():
    assert get(server(), "/style.css").header("Content-Type") == "text/css"
    assert get(server(), "/blob.unknownext").header("Content-Type") == "application/octet-stream"
    assert get(server(), "/sub/page.html").header("Content-Type") == "text/html"


def test_head_has_get_headers_and_no_body():
    s = server().connect()
    s.sendall(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /noext HTTP/1.1\r\nHost: t\r\n\r\n")
    from harness import Reader
    reader = Reader(s)
    head = reader.response(head_request=True)
    assert head.status == 200
    assert head.header("Content-Length") == "14"
    nxt = reader.response()
    assert nxt.status == 200 and nxt.body == b"x", "HEAD must not send a body: %r" % nxt


def test_directory_index():
    r = get(server(), "/dir/")
    assert r.status == 200 and r.body == b"<h1>dir index</h1>\n"
    assert r.header("Content-Type") == "text/html"


def test_directory_without_slash_redirects():
    r = get(server(), "/dir?x=1")
    assert r.status == 301, r
    assert r.header("Location") == "/dir/?x=1"
    assert b"301" in r.body


def test_directory_without_index_is_403():
    r = get(server(), "/empty/")
    assert r.status == 403, r
    assert b"403 Forbidden" in r.body and r.header("Content-Type").startswith("text/html")


def test_missing_file_404_html():
    r = get(server(), "/nope.html")
    assert r.status == 404
    assert r.body.startswith(b"<!DOCTYPE html>") and b"404 Not Found" in r.body


def test_unreadable_file_403():
    if not IS_ROOT and os.geteuid() == 0:
        return
    r = get(server(), "/secret-perm.txt")
    assert r.status == 403, r


def test_percent_encoded_name():
    r = get(server(), "/a%20b%25c.txt")
    assert r.status == 200 and r.body == b"spaces\n", r


def test_dotdot_traversal_refused():
    for path in ["/../outside-secret.txt", "/%2e%2e/outside-secret.txt", "/%2E%2E/outside-secret.txt",
                 "/sub/../../outside-secret.txt", "/sub/%2e%2e/%2e%2e/outside-secret.txt",
                 "/..%2foutside-secret.txt", "/sub%2f..%2f..%2foutside-secret.txt"]:
        r = get(server(), path)
        assert r.status == 400, (path, r)
        assert b"TOP SECRET" not in r.body


def test_nul_byte_refused():
    r = get(server(), "/hello.txt%00.html")
    assert r.status == 400, r


def test_symlinks_out_of_root_refused():
    for path in ["/escape-link", "/escape-relative", "/escape-dir/outside-secret.txt"]:
        r = get(server(), path)
        assert r.status in (403, 404), (path, r)
        assert b"TOP SECRET" not in r.body


def test_symlink_inside_root_served():
    r = get(server(), "/inside-link")
    assert r.status == 200 and r.body == b"Hello, world!\n"


def test_large_file_via_curl_sendfile():
    out = os.path.join(server().dir, "big.download")
    rc, _, err = curl("-o", out, server().url("/big.bin"))
    assert rc == 0, err
    with open(out, "rb") as a, open(os.path.join(server().root, "big.bin"), "rb") as b:
        assert a.read() == b.read()


def test_first_answer_filling_the_socket_and_waiting_for_the_next_request():
    # A connection enters the worker's epoll set only when it has to wait. Here it has to wait
    # twice from its very first request: for a full socket (a 5 MiB answer to a client that has
    # not read yet, with a small receive buffer), then for a request sent half a second later.
    srv = server()
    with open(os.path.join(srv.root, "big.bin"), "rb") as f:
        big = f.read()
    host, port = srv.address(0)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((host, port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.5)
    reader = Reader(s)
    r = reader.response()
    assert r.status == 200 and r.body == big
    time.sleep(0.5)
    s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    r = reader.response()
    assert r.status == 200 and r.body == b"Hello, world!\n"
    assert s.recv(1) == b""
    s.close()


def test_large_downloads_taking_turns_and_clients_resetting_midway():
    # Large bodies go out in turns (a share per connection per round). Clients that reset their
    # connection in the middle, while it waits for its next turn, leave the worker sound, and
    # the downloads beside them arrive whole.
    import struct
    import threading
    srv = Server()
    try:
        big = os.urandom(3 * 1024 * 1024 + 7)
        srv.file("big.bin", big)
        srv.start()
        pids = srv.worker_pids()
        results = []

        def whole():
            s = srv.connect(timeout=20)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            r = Reader(s).response()
            results.append(r.status == 200 and r.body == big)
            s.close()

        def reset():
            s = srv.connect(timeout=20)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            s.recv(65536)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()   # RST while the server still has most of the file to send

        threads = [threading.Thread(target=whole) for _ in range(4)]
        threads += [threading.Thread(target=reset) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == [True] * 4, results
        r = get(srv, "/big.bin")
        assert r.status == 200 and r.body == big
        assert srv.worker_pids() == pids, (pids, srv.worker_pids(), srv.log(), srv.stderr())
    finally:
        srv.cleanup()


def test_curl_head_and_keepalive_reuse():
    rc, out, err = curl("-v", server().url("/hello.txt"), server().url("/style.css"))
    assert rc == 0, err
    assert out == b"Hello, world!\nbody{}\n"
    assert "Re-using existing connection" in err, err


def test_longest_prefix_location_wins():
    srv = Server()
    try:
        other = os.path.join(srv.dir, "other")
        os.mkdir(other)
        os.chmod(other, 0o755)
        with open(os.path.join(other, "f.txt"), "w") as f:
            f.write("from other root\n")
        os.chmod(os.path.join(other, "f.txt"), 0o644)
        srv.file("f.txt", "from main root\n")
        srv.file("docs/f.txt", "main docs\n")
        srv.locations = ('location "/" { handler = "static" root = "%s" }\n'
                         'location "/docs/" { handler = "static" root = "%s" }\n') % (srv.root, other)
        srv.write_config()
        srv.start()
        assert get(srv, "/f.txt").body == b"from main root\n"
        assert get(srv, "/docs/f.txt").body == b"from other root\n"
    finally:
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(run(globals()))
