"""A small HTTP/2 client for the tests, on Debian's python3-h2 (hyper-h2, hpack, hyperframe): real
frames over a real socket, with the checks on what we send turned off when a test means to send
something malformed, and raw frames for the flood tests."""
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Response:
    def __init__(self):
        self.headers = []
        self.body = bytearray()
        self.ended = False
        self.reset = None      # RST_STREAM error code, if the stream was reset
        self.trailers = []
        self.interim = []      # the header lists of 1xx answers, in order

    @property
    def status(self):
        for k, v in self.headers:
            if k == ":status":
                return int(v)
        return None

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self):
        return "<h2 %s %r %d bytes reset=%r>" % (self.status, self.headers, len(self.body), self.reset)


class H2:
    """One HTTP/2 connection: cleartext with prior knowledge, or TLS with ALPN h2."""

    def __init__(self, port, host="127.0.0.1", tls_name=None, cafile=None, validate=True, source=None,
                 timeout=20, settings=None, preamble=b"", auto_ack=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        if preamble:
            self.sock.sendall(preamble)
        if tls_name is not None:
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname=tls_name)
            assert self.sock.selected_alpn_protocol() == "h2", self.sock.selected_alpn_protocol()
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate, normalize_outbound_headers=validate,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.responses = {}
        self.terminated = None     # the GOAWAY's error code once one came
        self.last_stream_id = None
        self.closed = False
        self.window_updates = 0
        self.pings_acked = 0
        self.settings_seen = []    # (identifier, value) of every SETTINGS the server sent
        self.auto_ack = auto_ack   # False: the client's windows stay as the server used them
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def raw(self, data):
        self.sock.sendall(data)

    def pump(self, timeout=None):
        """Reads once and handles what came; False once the connection is closed."""
        if self.closed:
            return False
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            import sys
            print("# h2 client: protocol error: %r" % e, file=sys.stderr)
            self.closed = True
            return False
        for ev in events:
            sid = getattr(ev, "stream_id", None)
            r = self.responses.setdefault(sid, Response()) if sid else None
            if isinstance(ev, h2.events.ResponseReceived):
                r.headers = list(ev.headers)
            elif isinstance(ev, h2.events.InformationalResponseReceived):
                r.interim.append(list(ev.headers))
            elif isinstance(ev, h2.events.TrailersReceived):
                r.trailers = list(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                r.body += ev.data
                if ev.flow_controlled_length and self.auto_ack:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                r.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                r.reset = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = ev.error_code
                self.last_stream_id = ev.last_stream_id
            elif isinstance(ev, h2.events.WindowUpdated):
                self.window_updates += 1
            elif isinstance(ev, h2.events.PingAckReceived):
                self.pings_acked += 1
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings_seen += [(int(k), v.new_value) for k, v in ev.changed_settings.items()]
        try:
            self.flush()
        except OSError:
            self.closed = True
        return True

    def open(self, headers, end=True, flush=True):
        """A new stream with exactly these header fields (pseudo-headers included); its id."""
        sid = self.conn.get_next_available_stream_id()
        self.responses[sid] = Response()
        self.conn.send_headers(sid, list(headers), end_stream=end)
        if flush:
            self.flush()
        return sid

    def request(self, method, path, headers=(), body=None, authority="127.0.0.1", scheme="http", end=True):
        hdrs = [(":method", method), (":path", path), (":scheme", scheme), (":authority", authority)]
        sid = self.open(hdrs + list(headers), end=end and not body)
        if body:
            self.send_body(sid, body, end=end)
        return sid

    def send_body(self, sid, body, end=True):
        """Sends body within the flow-control windows the server grants."""
        view = memoryview(body)
        while len(view) > 0:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                if not self.pump(timeout=20):
                    raise AssertionError("connection closed while sending a body")
                r = self.responses.get(sid)
                if r is not None and (r.reset is not None or r.ended):
                    return
                continue
            self.conn.send_data(sid, bytes(view[:room]))
            view = view[room:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def response(self, sid, timeout=30):
        deadline = time.monotonic() + timeout
        r = self.responses[sid]
        while not r.ended and r.reset is None and not self.closed:
            if time.monotonic() > deadline:
                raise AssertionError("no response on stream %d in %ds" % (sid, timeout))
            self.pump(timeout=max(0.1, deadline - time.monotonic()))
        return r

    def wait(self, cond, timeout=20):
        """Reads until cond() holds; False if the connection closed or the time ran out first.  Reads
        in short turns: cond may wait on something besides this connection (a log, a metric)."""
        deadline = time.monotonic() + timeout
        while not cond():
            if self.closed or time.monotonic() > deadline:
                return False
            try:
                self.pump(timeout=min(0.2, max(0.01, deadline - time.monotonic())))
            except socket.timeout:
                pass
        return True

    def get(self, path, timeout=30, **kw):
        return self.response(self.request("GET", path, **kw), timeout=timeout)

    def wait_closed(self, timeout=20):
        """Reads until the server closes; True if it did within timeout."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            try:
                self.pump(timeout=max(0.1, deadline - time.monotonic()))
            except socket.timeout:
                pass
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
