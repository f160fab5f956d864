"""The application behind the proxy in test_proxy.py: a small Flask app served by Debian's gunicorn.
It answers what it saw (method, path, headers, body size and digest, and the TCP connection it came
on), slowly, streamed, in bulk, and with its own name, so a test can tell the backends apart."""
import hashlib
import os
import time

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
NAME = os.environ.get("APP_NAME", "app")
HEALTH_PROBES = []   # one gunicorn process with threads: a list is enough
SEEN = []            # every request that reached the app: [method, raw target, body sha256]
SLOW_STARTED = []    # /slow requests that reached the app, as they arrive


@app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
@app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def echo(path):
    args = request.args
    if path == "_seen":
        return jsonify(seen=SEEN)
    if path == "_slow_started":
        return jsonify(count=len(SLOW_STARTED))
    if path == "slow":
        SLOW_STARTED.append(time.monotonic())
        time.sleep(float(args.get("s", "3")))
    if path == "stream":
        n = int(args.get("n", "5"))
        return Response((("chunk %d\n" % i).encode() for i in range(n)), mimetype="text/plain")
    if path == "bulk":
        size, block = int(args.get("size", "1048576")), b"0123456789abcdef" * 4096
        def gen():
            left = size
            while left > 0:
                piece = block[:min(left, len(block))]
                left -= len(piece)
                yield piece
        return Response(gen(), mimetype="application/octet-stream", headers={"Content-Length": str(size)})
    if path == "drip":
        # the first part at once, the rest only once the test has seen it (or after 20 s)
        gate = args.get("gate", "")
        def drip():
            yield b"first part of the stream\n" * 40
            deadline = time.monotonic() + 20
            while gate and not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.02)
            yield b"the rest, after the gate\n" * 40
        return Response(drip(), mimetype="text/plain")
    if path == "notransform":
        return Response(b"keep these bytes as they are\n" * 100, mimetype="text/plain",
                        headers={"Cache-Control": "public, no-transform"})
    if path == "encoded":
        import gzip as gzip_module
        body = gzip_module.compress(b"already compressed by the app\n" * 100)
        return Response(body, mimetype="text/plain", headers={"Content-Encoding": "gzip"})
    if path == "health":
        HEALTH_PROBES.append(time.monotonic())
        down = os.environ.get("APP_DOWN_FILE")
        if down and os.path.exists(down):
            return Response("down\n", status=503)
        return Response("ok\n")
    if path == "probes":
        return jsonify(count=len(HEALTH_PROBES))
    if path == "status":
        return Response("status %s\n" % args.get("code", "200"), status=int(args.get("code", "200")))
    digest, total = hashlib.sha256(), 0
    while True:
        piece = request.stream.read(65536)
        if not piece:
            break
        digest.update(piece)
        total += len(piece)
    SEEN.append([request.method, request.environ.get("RAW_URI", ""), digest.hexdigest()])
    resp = jsonify(app=NAME, method=request.method, path=request.full_path.rstrip("?"),
                   raw_uri=request.environ.get("RAW_URI", ""),
                   headers=[[k, v] for k, v in request.headers.items()], body_len=total,
                   body_sha256=digest.hexdigest(), peer_port=request.environ.get("REMOTE_PORT"),
                   chunked=request.environ.get("HTTP_TRANSFER_ENCODING", ""))
    resp.headers["X-App"] = NAME
    if "cc" in args:
        resp.headers["Cache-Control"] = args["cc"]   # for the proxy cache (test_seam.py)
    resp.headers["Keep-Alive"] = "timeout=5"            # hop-by-hop: must not reach the client
    # gunicorn drops an app's Connection (and so sends X-Hop as an ordinary field): a Connection
    # that names fields reaches the proxy from test_proxy.py's RawBackend("hop-answer") instead
    resp.headers["X-Hop"] = "secret"
    resp.headers["Connection"] = "X-Hop"
    return resp
