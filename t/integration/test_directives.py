#!/usr/bin/env python3
"""The directive table over the built daemon: every error at its own line, durations, modules' typed options
(ABI 2.1), modules built before minor versions, and modules that need a newer minor."""
import subprocess
import sys

from harness import HTTPD, Server, config_check, config_error_at, exchange, module_dir_with_tests, run


def abi():
    """The server's module ABI, "2.N", as httpd -v says."""
    out = subprocess.run([HTTPD, "-v"], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    return out.split("module ABI ")[1].rstrip(")\n")


check = config_check
expect_error_at = config_error_at


def line_of(text, needle):
    return text.split("\n").index(needle) + 1


def test_location_options_report_their_own_line():
    srv = Server()
    try:
        cases = (
            ("  gzip_level = 12", "gzip_level must be from 1 to 9"),
            ("  max_body_size = \"lots\"", "max_body_size: \"lots\" is not a size"),
            ("  access_log_min_status = 700", "access_log_min_status must be from 0 to 599"),
            ("  limit_req_status = 200", "limit_req_status must be from 400 to 599"),
            ("  access_log = \"maybe\"", "access_log must be \"on\" or \"off\", not \"maybe\""),
            ("  access = {\"allow 10.0.0.0/8\", \"permit all\"}", "access: \"permit all\" is not a rule"),
            ("  nosuch_option = 1", "no such option 'nosuch_option'"),
        )
        for bad, message in cases:
            # the bad line sits in the middle of its location, well after the location's own line
            text = srv.config_text().replace('  handler = "static"\n', '  handler = "static"\n\n  gzip = true\n'
                                             + bad + '\n  gzip_min_length = 10\n', 1)
            expect_error_at(srv, text, bad, message)
        # an option of another module, in a location whose handler does not know it: at the option's line
        srv.module_dir = module_dir_with_tests(srv.dir)
        text = srv.config_text() + 'location "/t" {\n handler = "echo"\n\n\n root = "/srv"\n}\n'
        expect_error_at(srv, text, ' root = "/srv"', 'option "root" is not one of handler "echo"')
    finally:
        srv.cleanup()


def test_block_and_server_options_report_their_own_line():
    srv = Server()
    try:
        text = srv.config_text().replace("module_dir", 'limit_req_zone "z" {\n  key = "$remote_addr"\n'
                                         '  rate = "1r/s"\n  size = "lots"\n}\nmodule_dir', 1)
        expect_error_at(srv, text, '  size = "lots"', 'limit_req_zone "z": size: "lots" is not a size')
        text = srv.config_text().replace("module_dir", 'limit_req_zone "z" { key = "$remote_addr" rate = "1r/s" }\n'
                                         'module_dir', 1).replace(
            '  handler = "static"\n', '  handler = "static"\n  limit_req "z" {\n    burst = 5\n    delay = -1\n  }\n')
        expect_error_at(srv, text, "    delay = -1", "delay must be from 0 to 1000000")
        text = srv.config_text() + ('server "a.example" {\n  aliases = {"b.example"}\n\n  hsts = -5\n'
                                    '  location "/" { handler = "echo" }\n}\n')
        expect_error_at(srv, text, "  hsts = -5", "hsts must be from 0 to 100000000")
        text = srv.config_text() + ('server "a.example" {\n  tls_verify_client = "sometimes"\n'
                                    '  location "/" { handler = "echo" }\n}\n')
        expect_error_at(srv, text, '  tls_verify_client = "sometimes"',
                        'tls_verify_client must be "off", "optional" or "required"')
        text = srv.config_text().replace("module_dir", 'error_log_level = "loud"\nmodule_dir', 1)
        expect_error_at(srv, text, 'error_log_level = "loud"', 'error_log_level must be "error", "warn", "notice"')
        text = srv.config_text().replace("module_dir", 'pid_file = "httpd.pid"\nmodule_dir', 1)
        expect_error_at(srv, text, 'pid_file = "httpd.pid"', "pid_file must be an absolute path")
    finally:
        srv.cleanup()


def test_durations_take_units_and_bare_seconds():
    srv = Server(globals_text='keepalive_timeout = "1s"\nheader_timeout = 10\nsend_timeout = "2m"\n'
                              'drain_timeout = "500ms"\n')
    try:
        rc, err = check(srv, srv.config_text())
        assert rc == 0, err
        # the words some path directives take besides a path
        for words in ('error_log = "stderr"', 'error_log = "syslog"', 'access_log = "off"'):
            rc, err = check(srv, srv.config_text().replace("module_dir", words + "\nmodule_dir", 1))
            assert rc == 0, (words, err)
        for bad, message in (('keepalive_timeout = "5 minutes"', 'keepalive_timeout: "5 minutes" is not a duration'),
                             ('body_timeout = "0ms"', "body_timeout must be from 1ms to 1000000s"),
                             ('shutdown_delay = "1w"', 'shutdown_delay: "1w" is not a duration')):
            text = srv.config_text().replace("module_dir", bad + "\nmodule_dir", 1)
            expect_error_at(srv, text, bad, message)
        srv.write_config()
        srv.start()
        # an idle keep-alive connection closes after about a second: long before the default 15 s would
        s = srv.connect(timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        from harness import Reader
        reader = Reader(s)
        assert reader.response().status in (200, 403, 404)
        assert reader.closed(timeout=10)
    finally:
        srv.cleanup()


def test_module_typed_options_read_and_checked():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.locations += ('location "/d/" { handler = "testmod" }\n'
                          'location "/t/" {\n  handler = "testmod"\n  typed_size = "64k"\n  typed_wait = "1500ms"\n'
                          '  typed_mode = "safe"\n  typed_count = 3\n}\n')
        srv.write_config()
        for bad, message in (('  typed_size = "2m"', "typed_size must be from 1k to 1m"),
                             ('  typed_wait = "11s"', "typed_wait must be from 0s to 10s"),
                             ('  typed_wait = "soon"', 'typed_wait: "soon" is not a duration'),
                             ('  typed_mode = "slow"', 'typed_mode must be "fast" or "safe", not "slow"'),
                             ('  typed_count = 11', "typed_count must be from 1 to 10")):
            text = srv.config_text().replace('  typed_count = 3\n', '  typed_count = 3\n' + bad + '\n', 1)
            expect_error_at(srv, text, bad, message)
        srv.write_config()
        srv.start()
        r, _ = exchange(srv, b"GET /t/typed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert r.status == 200 and r.body == b"size 65536 wait 1500 mode 1 safe count 3\n", r
        r, _ = exchange(srv, b"GET /d/typed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert r.status == 200 and r.body == b"size 16384 wait 2000 mode 0 fast count 1\n", r
    finally:
        srv.cleanup()


def test_module_built_before_minor_versions_still_loads():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.locations += ('location "/old/" { handler = "abi_minor0" }\n'
                          'location "/set/" {\n  handler = "abi_minor0"\n  old_greeting = "hi"\n  old_count = 7\n'
                          '  old_flag = true\n  old_part "p" { label = "L" }\n}\n')
        srv.write_config()
        rc, err = check(srv, srv.config_text())
        assert rc == 0, err
        srv.start()
        r, _ = exchange(srv, b"GET /old/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert r.status == 200 and r.body == b"hello 2 0 -\n", r
        r, _ = exchange(srv, b"GET /set/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert r.status == 200 and r.body == b"hi 7 1 L\n", r
        rc, out, err = (lambda p: (p.returncode, p.stdout.decode(), p.stderr.decode()))(subprocess.run(
            [HTTPD, "-M", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30))
        rows = dict((l.split()[0], l.split()[1:]) for l in out.splitlines()[1:])
        assert rows["abi_minor0"] == ["2.0", "yes"] and rows["testmod"][0] == abi(), rows
    finally:
        srv.cleanup()


def test_module_needing_a_newer_minor_is_refused_naming_both():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        text = srv.config_text() + 'location "/n" {\n  handler = "abi_future_minor"\n}\n'
        rc, err = check(srv, text)
        assert rc == 1, err
        minor = int(abi().split(".")[1])
        assert "abi_future_minor.so: module built for ABI 2.%d, this server has ABI 2.%d" % (minor + 1, minor) in err, err
        assert "%s:%d:" % (srv.conf, line_of(text, 'location "/n" {')) in err, err
    finally:
        srv.cleanup()


def test_server_names_and_defaults_are_unique_among_thousands():
    srv = Server()
    try:
        blocks = "".join('server "s%d.test" {\n  aliases = {"www.s%d.test"}\n  location "/" { handler = "echo" }\n}\n'
                         % (n, n) for n in range(3000))
        rc, err = config_check(srv, srv.config_text() + blocks)
        assert rc == 0, err
        text = srv.config_text() + blocks + 'server "late.test" {\n  aliases = {"www.s7.test"}\n  location "/" { handler = "echo" }\n}\n'
        expect_error_at(srv, text, 'server "late.test" {', 'server "late.test": the name "www.s7.test" is already server '
                        '"s7.test"\'s at %s:%d' % (srv.conf, line_of(text, 'server "s7.test" {')))
        text = srv.config_text() + ('server "a.test" {\n  default_server = true\n  location "/" { handler = "echo" }\n}\n'
                                    'server "b.test" {\n  default_server = true\n  location "/" { handler = "echo" }\n}\n')
        expect_error_at(srv, text, 'server "b.test" {', 'server "b.test": default_server is already server "a.test"')
    finally:
        srv.cleanup()


def test_only_the_module_api_is_exported():
    out = subprocess.run(["nm", "-D", "--defined-only", HTTPD], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    functions = [l.split()[2] for l in out.splitlines() if len(l.split()) == 3 and l.split()[1] == "T"]
    assert any(f.startswith("httpd_") for f in functions), functions
    # the status module's two scoreboard readers and the CIDR matcher are the only others (see src/httpd.dynamic);
    # a sanitizer build also exports the sanitizer's own interceptors (malloc, strcpy, ...)
    others = sorted(f for f in functions if not f.startswith("httpd_"))
    if "__asan_init" not in out:
        assert set(others) <= {"score_counters_add", "score_counters_read", "cidr_parse", "cidr_list_contains"}, others
    for internal in ("config_load", "conn_linger_begin", "http1_start", "directive_value_parse"):
        assert internal not in functions, internal


if __name__ == "__main__":
    sys.exit(run(globals()))
