"""echo, download and uploads (PUT/DELETE on a writable static location), over real sockets."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

from harness import IS_ROOT, Server, exchange, run

SERVER = None
NAME = "it's a \"quoted\"; naïve café.txt"


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server(workers=2, globals_text='max_body_size = "4m"\n')
        files = os.path.join(SERVER.dir, "files")
        up = os.path.join(SERVER.dir, "up")
        for d in (files, up):
            os.mkdir(d)
            os.chmod(d, 0o777 if d == up else 0o755)
        SERVER.files_dir, SERVER.up_dir = files, up
        SERVER.locations = (
            'location "/echo" { handler = "echo" max_body_size = "1k" }\n'
            'location "/files/" { handler = "download" root = "%s" listing = true }\n'
            'location "/up/" { handler = "static" root = "%s" writable = true }\n'
            'location "/mk/" { handler = "static" root = "%s" writable = true create_dirs = true }\n'
            'location "/ro/" { handler = "static" root = "%s" }\n' % (files, up, up, up))
        SERVER.write_config()
        with open(os.path.join(files, NAME), "wb") as f:
            f.write(b"0123456789" * 100)
        os.chmod(os.path.join(files, NAME), 0o644)
        SERVER.start()
    return SERVER


def teardown_module():
    if SERVER is not None:
        SERVER.cleanup()


def send(raw, **kw):
    r, reader = exchange(server(), raw, **kw)
    reader.sock.close()
    return r


# --- echo ----------------------------------------------------------------------

def test_echo_text_reflects_request_in_order():
    raw = (b"POST /echo/x?y=1 HTTP/1.1\r\nHost: t\r\nX-B: 2\r\nX-A: 1\r\nX-A: again\r\n"
           b"Content-Length: 5\r\n\r\nhello")
    r = send(raw)
    assert r.status == 200 and r.header("Content-Type").startswith("text/plain")
    assert r.body == (b"POST /echo/x?y=1 HTTP/1.1\nHost: t\nX-B: 2\nX-A: 1\nX-A: again\n"
                      b"Content-Length: 5\n\nhello"), r.body


def test_echo_chunked_body_decoded():
    raw = (b"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert send(raw).body.endswith(b"\n\nabcde")


def test_echo_json_escaped():
    raw = ('PATCH /echo?format=json HTTP/1.1\r\nHost: t\r\nX-Q: say "hi" \\ ok\r\nX-U: caf\xc3\xa9\r\n'
           'X-L: \xe9t\xe9\r\nContent-Length: 4\r\n\r\na\n"b').encode("latin-1")
    r = send(raw)
    assert r.header("Content-Type") == "application/json"
    doc = json.loads(r.body)
    assert doc["method"] == "PATCH" and doc["target"] == "/echo?format=json" and doc["version"] == "HTTP/1.1"
    assert ["X-Q", 'say "hi" \\ ok'] in doc["headers"]
    assert ["X-U", "café"] in doc["headers"]
    assert ["X-L", "\u00e9t\u00e9"] in doc["headers"], "obs-text bytes arrive as \\u00XX"
    assert doc["body"] == 'a\n"b' and doc["body_length"] == 4


def test_echo_json_by_accept_and_binary_body():
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\nContent-Length: 3\r\n\r\n\xff\x00\xfe"
    doc = json.loads(send(raw).body)
    assert doc["body_base64"] == "/wD+"


def test_echo_body_limit_413():
    r = send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000)
    assert r.status == 413


def test_echo_answers_options_itself():
    r = send(b"OPTIONS /echo HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 200 and r.body.startswith(b"OPTIONS /echo HTTP/1.1\n")


# --- download --------------------------------------------------------------------

def disposition_name(value):
    """The RFC 8187 filename* of a Content-Disposition, decoded."""
    m = re.search(r"filename\*=UTF-8''([^;\s]+)", value)
    return urllib.parse.unquote(m.group(1), encoding="utf-8", errors="strict")


def test_download_content_disposition():
    quoted = urllib.parse.quote(NAME)
    r = send(("GET /files/%s HTTP/1.1\r\nHost: t\r\n\r\n" % quoted).encode())
    assert r.status == 200 and r.body == b"0123456789" * 100
    cd = r.header("Content-Disposition")
    assert cd.startswith("attachment; ")
    assert 'filename="it\'s a \'quoted\'; na_ve caf_.txt"' in cd, cd
    assert disposition_name(cd) == NAME
    assert all(0x20 <= ord(c) < 0x7f for c in cd), "the header stays ASCII"
    assert r.header("Content-Type") == "application/octet-stream"


def test_download_curl_OJ_round_trip():
    out = os.path.join(server().dir, "curl-out")
    os.mkdir(out)
    proc = subprocess.run(["curl", "-sS", "-OJ", server().url("/files/" + urllib.parse.quote(NAME))],
                          cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert proc.returncode == 0, proc.stderr
    saved = os.listdir(out)
    # curl 7.88 reads only filename=, the ASCII fallback; browsers use filename*.
    assert saved == ["it's a 'quoted'; na_ve caf_.txt"], saved
    with open(os.path.join(out, saved[0]), "rb") as f:
        assert f.read() == b"0123456789" * 100


def test_download_resumable():
    path = "/files/" + urllib.parse.quote(NAME)
    r = send(("GET %s HTTP/1.1\r\nHost: t\r\nRange: bytes=995-\r\n\r\n" % path).encode())
    assert r.status == 206 and r.body == b"56789" and r.header("Content-Disposition")
    etag = r.header("ETag")
    r = send(("GET %s HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nIf-Range: %s\r\n\r\n" % (path, etag)).encode())
    assert r.status == 206 and r.body == b"01"


def test_download_listing_and_hidden():
    r = send(b"GET /files/ HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 200 and "naïve".encode() in r.body
    assert send(b"GET /files/.hidden HTTP/1.1\r\nHost: t\r\n\r\n").status == 403


# --- uploads -----------------------------------------------------------------------

def put(path, body, extra=""):
    raw = ("PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n" % (path, len(body), extra)).encode() + body
    return send(raw)


def leftovers():
    return [n for n in os.listdir(server().up_dir) if n.startswith(".upload-")]


def test_put_creates_then_replaces():
    r = put("/up/new.txt", b"first")
    assert r.status == 201 and r.header("Location") == "/up/new.txt"
    assert open(os.path.join(server().up_dir, "new.txt"), "rb").read() == b"first"
    r = put("/up/new.txt", b"second body")
    assert r.status == 204
    assert send(b"GET /up/new.txt HTTP/1.1\r\nHost: t\r\n\r\n").body == b"second body"
    assert leftovers() == []


def test_delete():
    put("/up/gone.txt", b"x")
    assert send(b"DELETE /up/gone.txt HTTP/1.1\r\nHost: t\r\n\r\n").status == 204
    assert not os.path.exists(os.path.join(server().up_dir, "gone.txt"))
    assert send(b"DELETE /up/gone.txt HTTP/1.1\r\nHost: t\r\n\r\n").status == 404


def test_writable_off_by_default():
    r = put("/ro/x.txt", b"x")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, OPTIONS"
    r = send(b"OPTIONS /up/x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.header("Allow") == "GET, HEAD, PUT, DELETE, OPTIONS"


def test_put_missing_parent_409_unless_create_dirs():
    assert put("/up/no/such/dir.txt", b"x").status == 409
    assert put("/mk/a/b/c.txt", b"deep").status == 201
    assert open(os.path.join(server().up_dir, "a", "b", "c.txt"), "rb").read() == b"deep"


def test_put_outside_root_impossible():
    # Above the URL root: 400.  Inside it but outside every location: 404.
    assert put("/up/../../escape.txt", b"x").status == 400
    assert put("/up/%2e%2e/%2e%2e/escape.txt", b"x").status == 400
    assert put("/up/../escape.txt", b"x").status == 404
    assert put("/up/%2e%2e/escape.txt", b"x").status == 404
    assert not os.path.exists(os.path.join(server().dir, "escape.txt"))


def test_put_over_limit_keeps_old_file():
    put("/up/keep.txt", b"original")
    r = send(("PUT /up/keep.txt HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (5 << 20)).encode())
    assert r.status == 413
    assert open(os.path.join(server().up_dir, "keep.txt"), "rb").read() == b"original"
    assert leftovers() == []


def test_put_client_disconnects_midway():
    put("/up/half.txt", b"original")
    s = server().connect()
    s.sendall(b"PUT /up/half.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"y" * 40000)
    s.close()
    time.sleep(0.3)
    assert open(os.path.join(server().up_dir, "half.txt"), "rb").read() == b"original"
    assert leftovers() == []


def test_concurrent_puts_never_tear():
    server()   # started once, before the threads race for it
    bodies = [bytes([65 + i]) * (1 << 20) for i in range(4)]
    errors = []

    def worker(body):
        try:
            for _ in range(5):
                r = put("/up/race.bin", body)
                if r.status not in (201, 204):
                    errors.append(r.status)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    readers_saw = []

    def reader():
        for _ in range(30):
            r = send(b"GET /up/race.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            if r.status == 200:
                readers_saw.append(r.body)

    threads = [threading.Thread(target=worker, args=(b,)) for b in bodies] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    final = open(os.path.join(server().up_dir, "race.bin"), "rb").read()
    assert final in bodies, "the file is one complete body"
    for seen in readers_saw:
        assert seen in bodies, "a reader never sees a torn file"
    assert leftovers() == []


def test_full_disk_507_keeps_old_file():
    if not IS_ROOT:
        return
    tiny = os.path.join(server().up_dir, "tiny")
    os.mkdir(tiny)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs", tiny],
                      stderr=subprocess.DEVNULL).returncode != 0:
        os.rmdir(tiny)
        return   # no mount in this sandbox: nothing to prove here
    try:
        assert put("/up/tiny/f.bin", b"small").status == 201
        r = put("/up/tiny/f.bin", b"z" * (1 << 20))
        assert r.status == 507, r
        assert open(os.path.join(tiny, "f.bin"), "rb").read() == b"small"
        assert [n for n in os.listdir(tiny) if n.startswith(".upload-")] == []
    finally:
        subprocess.run(["umount", tiny])
        os.rmdir(tiny)


if __name__ == "__main__":
    sys.exit(run(globals()))
