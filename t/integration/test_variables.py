#!/usr/bin/env python3
"""One variable engine: the same $variables in log formats, limit keys and modules' expressions, each compiled once
at load (an unknown variable is an error at its own line), a module's own variables beside the server's."""
import os
import sys

from harness import Server, config_error_at, exchange, module_dir_with_tests, run, wait_for


def lines(srv):
    if not os.path.exists(srv.access_log):
        return []
    with open(srv.access_log) as f:
        return f.read().splitlines()


def get(srv, target, *headers):
    raw = "GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (target, "".join(h + "\r\n" for h in headers))
    r, _ = exchange(srv, raw.encode())
    return r


def test_log_format_reads_arguments_cookies_root_and_module_variables():
    srv = Server(globals_text='access_log_buffer = "0"\naccess_log_format = "vars"\n'
                              # single quotes: in double quotes libconfuse expands ${NAME} from the environment
                              "log_format \"vars\" { format = '[$arg_q|$arg_empty|$arg_none|$cookie_sid|$cookie_theme|"
                              "$document_root|$testmod_tag|${uri}x|$$]' }\n")
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.locations += 'location "/t/" { handler = "testmod" }\n'
        srv.write_config()
        srv.start()
        srv.file("a.txt", b"A")
        assert get(srv, "/a.txt?x=1&Q=hello%20there&empty&q=second", "Cookie: theme=dark; sid=s1",
                   "Cookie: other=1").status == 200
        assert get(srv, "/t/info", "X-Tag: abc").status == 200
        assert wait_for(lambda: len(lines(srv)) == 2)
        first, second = lines(srv)
        # $arg_ takes the first argument of that name, any case, as sent; a name without '=' is empty
        assert first == "[hello%20there|-|-|s1|dark|" + srv.root + "|-|/a.txtx|$]", first
        assert second == "[-|-|-|-|-|-|tag-abc|/t/infox|$]", second
    finally:
        srv.cleanup()


def test_unknown_variables_are_errors_at_their_line():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        base = srv.config_text()
        cases = (
            (base.replace("module_dir", 'limit_req_zone "z" {\n  rate = "1r/s"\n  key = "$remote_adr"\n}\nmodule_dir', 1),
             '  key = "$remote_adr"', 'limit_req_zone "z": key: unknown variable $remote_adr'),
            (base.replace("module_dir", 'log_format "f" {\n  format = "$status $nosuch"\n}\nmodule_dir', 1),
             '  format = "$status $nosuch"', "unknown variable $nosuch"),
            (base + 'location "/t/" {\n  handler = "testmod"\n  typed_expr = "$uri $"\n}\n',
             '  typed_expr = "$uri $"', "typed_expr: '$' without a variable name"),
        )
        for text, needle, message in cases:
            config_error_at(srv, text, needle, message)
    finally:
        srv.cleanup()


def test_module_expression_option_evaluated_per_request():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.locations += ('location "/d/" { handler = "testmod" }\n'
                          'location "/e/" { handler = "testmod"  typed_expr = "$arg_a-$cookie_b-$http_x_tag:$scheme" }\n')
        srv.write_config()
        srv.start()
        r = get(srv, "/d/expr", "X-Tag: abc")
        assert r.status == 200 and r.body == b"[GET tag-abc]\n", r
        r = get(srv, "/d/expr")
        assert r.body == b"[GET ]\n", r   # a variable without a value adds nothing
        r = get(srv, "/e/expr?a=1", "Cookie: b=2", "X-Tag: t")
        assert r.body == b"[1-2-t:http]\n", r
    finally:
        srv.cleanup()


def test_limit_key_from_a_module_variable():
    srv = Server(globals_text='limit_req_zone "tags" { key = "$testmod_tag" rate = "1r/m" }\n')
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.locations += 'location "/t/" {\n  handler = "testmod"\n  limit_req "tags" { }\n}\n'
        srv.write_config()
        srv.start()
        assert get(srv, "/t/info", "X-Tag: one").status == 200
        assert get(srv, "/t/info", "X-Tag: one").status == 429      # the same key, over its rate
        assert get(srv, "/t/info", "X-Tag: two").status == 200      # another key has its own bucket
        for _ in range(3):
            assert get(srv, "/t/info").status == 200                # an empty key is not limited, as nginx
    finally:
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(run(globals()))
