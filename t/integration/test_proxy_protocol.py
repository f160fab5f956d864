"""PROXY protocol v1/v2 listeners over raw sockets: the preamble's source becomes the client
(modules, access log); every boundary of the grammar; refusals close without a byte and are
counted; proxy_protocol_from and proxy_protocol_timeout; config errors with file:line."""
import json
import socket
import struct
import subprocess
import time

from harness import HTTPD, Reader, Server, free_port, run, wait_for

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
FULL6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
REQUEST = b"GET /echo?format=json HTTP/1.1\r\nHost: t\r\n\r\n"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def v2(src="192.0.2.9", dst="127.0.0.1", sport=5555, dport=80, tlvs=b"", crc=False, cmd=0x21, fam=0x11,
       bad_crc=False):
    if fam == 0x11:
        addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    elif fam == 0x21:
        addrs = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                 + struct.pack(">HH", sport, dport))
    else:
        addrs = b""
    body = addrs + tlvs
    if crc:
        body += b"\x03\x00\x04\x00\x00\x00\x00"
    head = V2_SIG + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body
    if crc:
        value = crc32c(head) ^ (1 if bad_crc else 0)
        head = head[:-4] + struct.pack(">I", value)
    return head


def tlv(kind, value):
    return bytes([kind]) + struct.pack(">H", len(value)) + value


def start(globals_text="", fmt=None):
    srv = Server(workers=1)
    srv.plain_port = srv.port
    srv.proxy_port = free_port()
    srv.listen = ["127.0.0.1:%d" % srv.plain_port, "127.0.0.1:%d proxy_protocol" % srv.proxy_port]
    srv.globals_text = 'access_log_buffer = "0"\n' + globals_text
    if fmt:
        srv.globals_text += 'log_format "lb" { format = "%s" }\naccess_log_format = "lb"\n' % fmt
    srv.locations = 'location "/echo" { handler = "echo" }\n'
    srv.write_config()
    return srv.start()


def send(srv, data, source="127.0.0.1", split=False):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.proxy_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if split:
        for i in range(len(data)):
            s.send(data[i:i + 1])
            time.sleep(0.003)
    else:
        s.sendall(data)
    return s


def echo(srv, preamble, **kw):
    s = send(srv, preamble + REQUEST, **kw)
    r = Reader(s).response()
    s.close()
    assert r.status == 200, r
    return json.loads(r.body)


def refused(srv, data, **kw):
    """The server closes the connection without sending a single byte."""
    s = send(srv, data, **kw)
    try:
        s.settimeout(5)
        try:
            got = s.recv(100)
        except ConnectionResetError:
            got = b""
        return got == b""
    finally:
        s.close()


def test_v1_client_becomes_the_client_and_is_logged():
    srv = start()
    try:
        j = echo(srv, b"PROXY TCP4 203.0.113.7 198.51.100.1 56324 443\r\n")
        assert j["client"] == "203.0.113.7" and j["peer"] == "203.0.113.7", j
        p = j["proxy_protocol"]
        assert p["version"] == "1" and p["port"] == "56324" and p["server_addr"] == "198.51.100.1", p
        assert p["server_port"] == "443" and p["balancer_addr"] == "127.0.0.1", p
        j = echo(srv, b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n")
        assert j["client"] == "2001:db8::7", j
        assert wait_for(lambda: "203.0.113.7 - - [" in open(srv.access_log).read())
        assert wait_for(lambda: "2001:db8::7 - - [" in open(srv.access_log).read()), open(srv.access_log).read()
        # The plain listener beside it is untouched.
        s = socket.create_connection(("127.0.0.1", srv.plain_port), timeout=5)
        s.sendall(REQUEST)
        assert json.loads(Reader(s).response().body)["client"] == "127.0.0.1"
        s.close()
    finally:
        srv.cleanup()


def test_v1_keep_alive_keeps_the_client():
    srv = start()
    try:
        s = send(srv, b"PROXY TCP4 203.0.113.8 127.0.0.1 1000 80\r\n" + REQUEST + REQUEST)
        rd = Reader(s)
        assert json.loads(rd.response().body)["client"] == "203.0.113.8"
        assert json.loads(rd.response().body)["client"] == "203.0.113.8"
        s.close()
    finally:
        srv.cleanup()


def test_v1_length_boundary_107_and_108():
    srv = start()
    try:
        line = ("PROXY UNKNOWN %s %s 65535 65535\r\n" % (FULL6, FULL6)).encode()
        assert len(line) == 107
        j = echo(srv, line)
        assert j["client"] == "127.0.0.1" and j["proxy_protocol"]["version"] == "1", j   # UNKNOWN: real peer
        too_long = ("PROXY UNKNOWN %s %s 65535 655350\r\n" % (FULL6, FULL6)).encode()
        assert len(too_long) == 108
        assert refused(srv, too_long + REQUEST)
    finally:
        srv.cleanup()


def test_v1_grammar_refusals_close_without_a_byte():
    srv = start()
    try:
        for bad in (b"PROXY TCP4 010.0.0.1 127.0.0.1 1 2\r\n",     # leading zero
                    b"PROXY TCP4 10.0.0.1 127.0.0.1 01 2\r\n",
                    b"PROXY TCP4 10.0.0.1 127.0.0.1 1 2\n",        # lone LF
                    b"PROXY TCP5 10.0.0.1 127.0.0.1 1 2\r\n",      # unknown family
                    b"PROXY TCP4 10.0.0.1 127.0.0.1 1 65536\r\n",
                    b"GET / HTTP/1.1\r\n"):                        # no preamble at all
            assert refused(srv, bad + REQUEST), bad
        assert wait_for(lambda: "PROXY protocol: " in srv.log())
    finally:
        srv.cleanup()


def test_v2_tlvs_reach_modules_and_the_log_format():
    srv = start(fmt="$remote_addr via $realip_remote_addr|$proxy_protocol_balancer_addr "
                    "id=$proxy_protocol_tlv_unique_id alpn=$proxy_protocol_tlv_alpn "
                    "sni=$proxy_protocol_tlv_authority ssl=$proxy_protocol_tlv_ssl_version "
                    "cn=$proxy_protocol_tlv_ssl_cn $status")
    try:
        ssl = b"\x05\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"client.example")
        tlvs = (tlv(0x01, b"http/1.1") + tlv(0x02, b"www.example.com") + tlv(0x05, b"uid-42")
                + tlv(0xE0, b"skipped") + tlv(0x20, ssl))
        j = echo(srv, v2(tlvs=tlvs, crc=True))
        p = j["proxy_protocol"]
        assert j["client"] == "192.0.2.9" and p["version"] == "2" and p["crc32c"] == "1", j
        assert p["unique_id"] == "uid-42" and p["alpn"] == "http/1.1" and p["authority"] == "www.example.com", p
        assert p["ssl"] == "5" and p["ssl_verify"] == "0" and p["ssl_version"] == "TLSv1.3", p
        assert p["ssl_cn"] == "client.example", p
        expect = ("192.0.2.9 via 192.0.2.9|127.0.0.1 id=uid-42 alpn=http/1.1 sni=www.example.com "
                  "ssl=TLSv1.3 cn=client.example 200\n")
        assert wait_for(lambda: expect in open(srv.access_log).read()), open(srv.access_log).read()
        j = echo(srv, v2(src="2001:db8::5", dst="::1", fam=0x21))
        assert j["client"] == "2001:db8::5", j
        # LOCAL (a balancer's health check): the real endpoints stay.
        j = echo(srv, v2(cmd=0x20, fam=0x00))
        assert j["client"] == "127.0.0.1", j
    finally:
        srv.cleanup()


def test_v2_refusals_and_split_header():
    srv = start()
    try:
        assert refused(srv, v2(crc=True, bad_crc=True) + REQUEST)
        assert refused(srv, v2(fam=0x41) + REQUEST)                                  # unknown family
        big = V2_SIG + b"\x21\x11" + struct.pack(">H", 5000) + b"\x00" * 64
        assert refused(srv, big)                                                     # beyond the buffer
        assert refused(srv, V2_SIG[:6] + b"\x00" + V2_SIG[7:] + b"\x21\x11\x00\x0c" + b"\x00" * 12)
        assert refused(srv, b"\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x00" + REQUEST)    # version 1 in binary
        # Byte by byte is fine.
        j = echo(srv, v2(src="198.51.100.77", tlvs=tlv(0x05, b"slow"), crc=True), split=True)
        assert j["client"] == "198.51.100.77" and j["proxy_protocol"]["unique_id"] == "slow", j
    finally:
        srv.cleanup()


def test_proxy_protocol_from_and_timeout():
    srv = start('proxy_protocol_from = {"127.0.0.1"}\nproxy_protocol_timeout = 1\n')
    try:
        preamble = b"PROXY TCP4 203.0.113.9 127.0.0.1 1 2\r\n"
        assert echo(srv, preamble)["client"] == "203.0.113.9"
        assert refused(srv, preamble + REQUEST, source="127.0.0.2")
        # Half a header, then nothing: closed at proxy_protocol_timeout, still without a byte.
        start_t = time.monotonic()
        assert refused(srv, b"PROXY TCP4 203.0.")
        assert time.monotonic() - start_t < 4.5
        assert wait_for(lambda: "peer not in proxy_protocol_from" in srv.log())
        srv.stop()
        log = srv.log()
        assert "PROXY protocol connections refused: 1 not in proxy_protocol_from, 0 invalid or cut short, " \
               "1 timed out" in log, log
    finally:
        srv.cleanup()


def test_config_errors_name_the_line():
    srv = Server()
    try:
        cases = (('listen = {"127.0.0.1:%d proxy"}' % srv.port, 'unknown flag "proxy"'),
                 ('real_ip_header = "proxy_protocol"', "needs a listen address with the proxy_protocol flag"),
                 ('proxy_protocol_from = {"127.0.0.1"}', "no listen address has the proxy_protocol flag"),
                 ('proxy_protocol_from = {"10.0.0.0/33"}', 'proxy_protocol_from: "10.0.0.0/33" is not'),
                 ('access_log_format = "nosuch"', 'no log_format "nosuch"'),
                 ('log_format "x" { format = "$nosuch" }', "unknown variable $nosuch"))
        for text, message in cases:
            conf = srv.config_text()
            if text.startswith("listen"):
                conf = conf.replace(conf.split("\n")[0], text, 1)
            else:
                conf = conf.replace("module_dir", text + "\nmodule_dir", 1)
            srv.write_config(conf)
            line = conf.split("\n").index(text) + 1
            proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=20)
            assert proc.returncode == 1, text
            assert ("%s:%d: " % (srv.conf, line)).encode() in proc.stderr, (text, proc.stderr)
            assert message.encode() in proc.stderr, (text, proc.stderr)
    finally:
        srv.cleanup()


def test_json_access_log_is_valid_json_for_any_bytes():
    srv = Server(workers=1, globals_text='access_log_buffer = "0"\naccess_log_format = "json"\n')
    srv.locations = 'location "/echo" { handler = "echo" }\n'
    srv.write_config()
    srv.start()
    try:
        raw = bytes(b for b in range(0x21, 0x100) if b not in b"\x7f")
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(b"GET /echo?q=%C3%A9 HTTP/1.1\r\nHost: t\r\nUser-Agent: " + raw
                  + b"\r\nReferer: \"\\\x80\xc3\xa9\r\n\r\n")
        assert Reader(s).response().status == 200
        s.close()
        # A request the parser refuses is logged too.
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(b"GET /x\xff\x01 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert Reader(s).response().status == 400
        s.close()
        assert wait_for(lambda: len(open(srv.access_log, "rb").read().splitlines()) == 2)
        with open(srv.access_log, "rb") as f:
            lines = f.read().splitlines()
        entry = json.loads(lines[0].decode("utf-8"))   # valid UTF-8 and valid JSON
        assert entry["status"] == 200 and entry["remote_addr"] == "127.0.0.1", entry
        assert entry["referer"] == '"\\\u0080\u00e9', entry
        assert entry["user_agent"] == raw.decode("latin-1"), entry   # each stray byte as \u00XX
        assert entry["uri"] == "/echo?q=%C3%A9", entry
        assert entry["request_time_us"] >= 0 and entry["request_length"] > 40, entry
        assert json.loads(lines[1].decode("utf-8"))["status"] == 400
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
