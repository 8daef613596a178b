"""Serves the dashboard's assets the way `delega serve` is meant to, for
development and for the browser tests until the binary embeds them:

    /              -> index.html (API base filled in from --api)
    /index.html    -> the same
    /ui/           -> the same
    /ui/<file>     -> src/dashboard/assets/<file>

with the response headers the binary should send (Content-Security-Policy
and friends, see src/dashboard/README.md). The API runs elsewhere, either

  --api ORIGIN    called cross-origin by the page (start the server with
                  DELEGA_CORS_ORIGINS=<this server's origin>), or
  --proxy ORIGIN  forwarded from here (/api/…, /health), so the page and
                  the API share one origin exactly as when the binary
                  serves both; responses are streamed, so SSE works.

It binds 127.0.0.1 only and exits by itself after --lifetime seconds.
Standard library only.
"""

import argparse
import http.client
import mimetypes
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ASSETS = os.path.join(os.path.dirname(__file__), "..", "..", "src", "dashboard", "assets")
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


def security_headers(api_origin):
    connect = "'self'" + (f" {api_origin}" if api_origin else "")
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}


def make_handler(api_origin, proxy=None):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet; the tests log requests themselves
            pass

        def forward(self):
            """Passes the request to the API server as it is (Host and Origin
            included, so its same-origin check sees this origin) and streams
            the answer back until either side closes."""
            target = urlsplit(proxy)
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=3600)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                conn.close()

        def proxied(self):
            path = urlsplit(self.path).path
            return proxy and (path.startswith("/api/") or path == "/health")

        def do_POST(self):
            if self.proxied():
                return self.forward()
            self.send_error(404)

        do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST

        def do_GET(self):
            if self.proxied():
                return self.forward()
            path = urlsplit(self.path).path
            if path in ("/", "/index.html", "/ui", "/ui/", "/ui/index.html"):
                return self.index()
            if path.startswith("/ui/"):
                name = path[len("/ui/"):]
                # Flat directory: no sub-paths, no dot files, no traversal.
                if "/" in name or name.startswith(".") or not name:
                    return self.send_error(404)
                file = os.path.join(ASSETS, name)
                if os.path.isfile(file):
                    with open(file, "rb") as f:
                        return self.send(200, f.read(), TYPES.get(os.path.splitext(name)[1],
                                                                  mimetypes.guess_type(name)[0] or "application/octet-stream"))
            self.send_error(404)

        def index(self):
            with open(os.path.join(ASSETS, "index.html"), encoding="utf-8") as f:
                html = f.read()
            if api_origin:
                html = html.replace('<meta name="delega-api-base" content="">',
                                    f'<meta name="delega-api-base" content="{api_origin}">')
            self.send(200, html.encode(), TYPES[".html"])

        def send(self, status, body, ctype):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in security_headers(api_origin).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--api", default="", help="API origin the page calls, e.g. http://127.0.0.1:18890")
    ap.add_argument("--proxy", default="", help="API origin to forward /api/ and /health to")
    ap.add_argument("--lifetime", type=float, default=3600)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 make_handler(args.api.rstrip("/"), args.proxy.rstrip("/") or None))
    server.daemon_threads = True
    threading.Timer(args.lifetime, server.shutdown).start()
    where = args.api or (f"same origin, forwarded to {args.proxy}" if args.proxy else "same origin")
    print(f"dashboard assets on http://127.0.0.1:{args.port}/ (API: {where})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
