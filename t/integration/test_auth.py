"""auth_basic over real sockets: htpasswd -B (bcrypt), openssl passwd -5/-6 users; missing, wrong and
unknown credentials; the user in the access log; weak hash schemes refused at load with file:line;
a password changed and reloaded; bcrypt logins in parallel never hold up the worker's other requests."""
import base64
import os
import signal
import subprocess
import threading

from harness import HTTPD, Reader, Server, run, wait_for


def htpasswd_file(srv, lines):
    path = os.path.join(srv.dir, "htpasswd")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def bcrypt(user, password, cost=5):
    out = subprocess.run(["htpasswd", "-nbB", "-C", str(cost), user, password], stdout=subprocess.PIPE,
                         check=True, timeout=60).stdout.decode().strip()
    return out


def openssl_crypt(user, password, scheme):
    out = subprocess.run(["openssl", "passwd", scheme, password], stdout=subprocess.PIPE, check=True,
                         timeout=30).stdout.decode().strip()
    return "%s:%s" % (user, out)


def start(lines, workers=1, extra=""):
    srv = Server(workers=workers, globals_text='access_log_buffer = "0"\n' + extra)
    path = htpasswd_file(srv, lines)
    srv.locations = ('location "/" { handler = "static" root = "%s" }\n'
                     'location "/private/" {\n  handler = "static"\n  root = "%s/private"\n'
                     '  auth_basic = "Staff only"\n  auth_basic_user_file = "%s"\n}\n' % (srv.root, srv.root, path))
    srv.file("index.html", "public\n")
    srv.file("private/doc.txt", "secret doc\n")
    srv.write_config()
    srv.htpasswd = path
    return srv


def ask(srv, user=None, password=None, path="/private/doc.txt", header=None):
    head = "GET %s HTTP/1.1\r\nHost: t\r\n" % path
    if header is not None:
        head += "Authorization: %s\r\n" % header
    elif user is not None:
        head += "Authorization: Basic %s\r\n" % base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    s = srv.connect(timeout=60)
    s.sendall((head + "\r\n").encode())
    r = Reader(s).response()
    s.close()
    return r


def test_modern_hashes_accepted_and_every_refusal_is_401():
    srv = start([bcrypt("alice", "correct horse"), openssl_crypt("bob", "pw-six", "-6"),
                 openssl_crypt("carol", "pw-five", "-5"), "# a comment", ""])
    try:
        srv.start()
        r = ask(srv)
        assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="Staff only", charset="UTF-8"', r
        r = ask(srv, "alice", "correct horse")
        assert r.status == 200 and r.body == b"secret doc\n", r
        assert ask(srv, "bob", "pw-six").status == 200
        assert ask(srv, "carol", "pw-five").status == 200
        for user, password in (("alice", "wrong"), ("alice", ""), ("mallory", "correct horse"), ("", "")):
            r = ask(srv, user, password)
            assert r.status == 401 and r.header("WWW-Authenticate"), (user, r)
        for header in ("Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic"):
            assert ask(srv, header=header).status == 401, header
        assert ask(srv, path="/index.html").status == 200   # other locations are not behind it
        assert wait_for(lambda: '- alice [' in open(srv.access_log).read()), open(srv.access_log).read()
        assert "wrong password" in srv.log() and "unknown user" in srv.log()
        assert "sends passwords in clear text" in srv.stderr() + srv.log()
    finally:
        srv.cleanup()


def test_weak_schemes_refused_at_load_with_file_and_line():
    for hashed, scheme in (("$apr1$abcdefgh$0123456789012345678901", "$apr1$"),
                           ("{SHA}qvTGHdzF6KLavt4PO0gs2a6pQ00=", "{SHA}"),
                           ("plaintext", "plain text")):
        srv = start([bcrypt("alice", "x"), "dave:" + hashed])
        try:
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=30)
            err = proc.stderr.decode()
            # the line of auth_basic_user_file, whose file holds the refused hash
            line = [i + 1 for i, l in enumerate(srv.config_text().split("\n")) if 'auth_basic_user_file' in l][0]
            assert proc.returncode == 1, err
            assert '%s:%d: location "/private/": auth_basic_user_file %s:2: user "dave": ' % (
                srv.conf, line, srv.htpasswd) in err and scheme in err and "htpasswd -B" in err, err
        finally:
            srv.cleanup()


def test_a_changed_password_takes_effect_on_reload():
    srv = start([bcrypt("alice", "old password")], workers=2)
    try:
        srv.start()
        assert ask(srv, "alice", "old password").status == 200
        htpasswd_file(srv, [bcrypt("alice", "new password")])
        before = set(srv.worker_pids())
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: not (set(srv.worker_pids()) & before) and len(srv.worker_pids()) == 2, timeout=20)
        assert ask(srv, "alice", "old password").status == 401
        assert ask(srv, "alice", "new password").status == 200
    finally:
        srv.cleanup()


def test_bcrypt_logins_never_hold_up_the_event_loop():
    """One worker, expensive hashes (cost 10) on its thread pool: a plain request sent while 40
    logins are being hashed is answered before the last of them."""
    srv = start([bcrypt("alice", "pw", cost=10)])
    try:
        srv.start()
        order = []
        lock = threading.Lock()

        def login():
            r = ask(srv, "alice", "pw")
            with lock:
                order.append(("login", r.status))
        threads = [threading.Thread(target=login) for _ in range(40)]
        for t in threads:
            t.start()
        wait_for(lambda: False, timeout=0.3)   # let the logins reach the worker
        r = ask(srv, path="/index.html")
        with lock:
            order.append(("static", r.status))
        for t in threads:
            t.join(120)
        assert r.status == 200
        logins = [status for kind, status in order if kind == "login"]
        assert logins == [200] * 40, order
        # hashed on the loop, the plain request would wait for every login accepted before it
        assert order.index(("static", 200)) <= len(order) - 11, order
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
