#!/usr/bin/env python3
"""A tiny webhook receiver for the README tour: prints every POST it gets and answers 200.

Standard library only, so it runs before anything is installed:
    python3 scripts/demo-sink.py            # listens on 127.0.0.1:9099
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            doc = json.loads(body)
            n = doc.get("notification", {})
            print(f"{n.get('action', '?'):<12} incident={doc.get('id')} "
                  f"status={doc.get('status')} title={doc.get('title')!r} "
                  f"idempotency-key={self.headers.get('Idempotency-Key')}", flush=True)
        except (ValueError, AttributeError):
            print(f"non-JSON body of {len(body)} bytes", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9099
    print(f"demo sink listening on 127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Sink).serve_forever()
