"""Command line and configuration errors: "file:line: message" and exit status 1."""
import socket
import subprocess
import sys

from harness import HTTPD, Server, module_dir_with_tests, run


def httpd(*args):
    proc = subprocess.run([HTTPD] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=20)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def check_error(srv, text, expected):
    srv.write_config(text)
    rc, out, err = httpd("-t", "-f", srv.conf)
    assert rc == 1, (rc, out, err)
    assert expected % {"conf": srv.conf} in err, (expected, err)


def test_version():
    rc, out, _ = httpd("-v")
    assert rc == 0 and out.startswith("prefork-httpd ")


def test_long_version_names_abi_and_libraries():
    rc, out, _ = httpd("-V")
    assert rc == 0 and out.startswith("prefork-httpd "), out
    assert "module ABI: 2" in out and "zlib " in out and "libconfuse " in out and "glibc " in out, out


def test_effective_configuration_has_every_default():
    srv = Server()
    try:
        rc, out, err = httpd("-T", "-f", srv.conf)
        assert rc == 0, err
        assert out.startswith("# %s: configuration is valid" % srv.conf), out
        # Set in the file, and defaults never written there:
        assert 'listen = {"127.0.0.1:%d"}' % srv.port in out, out
        for default in ('keepalive_timeout="15"', 'drain_timeout="300"', 'access_log_format="combined"',
                        'proxy_protocol_timeout="5"', 'max_body_size="1m"'):
            assert default in out, (default, out)
        assert 'location "/" {' in out and 'handler="static"' in out, out
        # A broken file is reported like -t does.
        srv.write_config(srv.config_text() + "nonsense = 1\n")
        rc, out, err = httpd("-T", "-f", srv.conf)
        assert rc == 1 and srv.conf + ":" in err, err
    finally:
        srv.cleanup()


def test_module_list_shows_abi_and_use():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.write_config()
        rc, out, err = httpd("-M", "-f", srv.conf)
        assert rc == 0, err
        rows = dict((line.split()[0], line.split()[1:]) for line in out.splitlines()[1:])
        assert rows["static"] == ["2.5", "yes"], rows
        assert rows["echo"] == ["2.5", "no"] and rows["sign"] == ["2.5", "no"], rows
        assert rows["gzip"] == ["2.5", "no"] and rows["brotli"] == ["2.5", "no"], rows
        # a coding module is used when compress names its coding
        srv.locations = srv.locations.replace('handler = "static"', 'handler = "static"\n  compress = {"br"}')
        srv.write_config()
        rc, out, err = httpd("-M", "-f", srv.conf)
        rows = dict((line.split()[0], line.split()[1:]) for line in out.splitlines()[1:])
        assert rc == 0 and rows["brotli"] == ["2.5", "yes"] and rows["zstd"] == ["2.5", "no"], (rows, err)
        assert rows["abi1"][0] == "1" and rows["badabi"][0] != "2", rows
    finally:
        srv.cleanup()


def test_bad_option_usage():
    rc, _, err = httpd("-Z")
    assert rc == 1 and "usage" in err


def test_config_test_ok():
    srv = Server()
    try:
        rc, out, err = httpd("-t", "-f", srv.conf)
        assert rc == 0, err
        assert "valid" in out
    finally:
        srv.cleanup()


def test_config_errors_have_file_and_line():
    srv = Server()
    base = srv.config_text()
    lines = base.count("\n")
    try:
        check_error(srv, base + "\nworkers = \"many\"\n", "%%(conf)s:%d: workers must be" % (lines + 2))
        check_error(srv, "# c\n\nlisten = {\"1.2.3.4:77777\"}\n" + base.split("\n", 1)[1],
                    "%(conf)s:3: listen:")
        check_error(srv, base + "\n\nfrobnicate = yes\n", "%%(conf)s:%d: no such option 'frobnicate'" % (lines + 3))
        check_error(srv, base + '\nlocation "/x" {\n handler = "nosuch"\n}\n',
                    "%%(conf)s:%d: cannot load module \"nosuch\"" % (lines + 2))
        check_error(srv, base + '\nlocation "/x" {\n handler = "static"\n}\n',
                    "%%(conf)s:%d: location \"/x\": root is required" % (lines + 2))
        check_error(srv, base + '\nlocation "/x" {\n handler = "static"\n root = "/nonexistent/dir"\n}\n',
                    "%%(conf)s:%d: location \"/x\": root \"/nonexistent/dir\": No such file or directory" % (lines + 2))
        check_error(srv, base + '\nlocation "x" {\n handler = "static"\n root = "/"\n}\n',
                    "the prefix must start with '/'")
        check_error(srv, base + '\nlocation "/y" {\n handler = "static"\n root = "/"\n bogus = 1\n}\n',
                    "no such option 'bogus'")
        check_error(srv, base.replace('location "/"', 'location "/" {\n}\nlocation "/"', 1),
                    "found duplicate title")
    finally:
        srv.cleanup()


def test_option_of_another_module_refused():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        text = srv.config_text() + 'location "/t" {\n handler = "testmod"\n root = "/"\n}\n'
        check_error(srv, text, "option \"root\" is not one of handler \"testmod\"")
    finally:
        srv.cleanup()


def test_module_abi_mismatch_refused():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        text = srv.config_text() + 'location "/b" {\n handler = "badabi"\n}\n'
        srv.write_config(text)
        rc, _, err = httpd("-t", "-f", srv.conf)
        assert rc == 1
        assert "badabi.so: module ABI version 1000, this server needs 2" in err, err
    finally:
        srv.cleanup()


def test_abi1_module_refused_naming_both_versions():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        text = srv.config_text() + 'location "/b" {\n handler = "abi1"\n}\n'
        srv.write_config(text)
        rc, _, err = httpd("-t", "-f", srv.conf)
        assert rc == 1
        assert "abi1.so: module ABI version 1, this server needs 2; rebuild the module" in err, err
        assert ":%d:" % (text.count("\n") - 2) in err, err   # the location's line
    finally:
        srv.cleanup()


def test_missing_mime_types_fails_check_with_line():
    srv = Server()
    try:
        text = srv.config_text().replace(
            'module_dir', 'mime_types = "/nonexistent/mime.types"\nmodule_dir', 1)
        srv.write_config(text)
        line = text.split("\n").index('mime_types = "/nonexistent/mime.types"') + 1
        rc, out, err = httpd("-t", "-f", srv.conf)
        assert rc == 1, (out, err)
        assert "%s:%d: mime_types: cannot open /nonexistent/mime.types" % (srv.conf, line) in err, err
        assert "valid" not in out
    finally:
        srv.cleanup()


def test_missing_config_file():
    rc, _, err = httpd("-t", "-f", "/nonexistent/httpd.conf")
    assert rc == 1 and "/nonexistent/httpd.conf" in err and "No such file" in err


def test_port_in_use_exit_1_with_address():
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    srv = Server(listen=["127.0.0.1:%d" % port])
    try:
        rc, _, err = httpd("-F", "-f", srv.conf)
        assert rc == 1, err
        assert "cannot bind 127.0.0.1:%d" % port in err and "Address already in use" in err, err
        assert srv.conf + ":1:" in err, err
    finally:
        blocker.close()
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(run(globals()))
