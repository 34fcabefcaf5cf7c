"""Run a WSGI app: Flask's development server, or waitress for production.

Either runs in this one process with threads, as the job runner needs (its jobs live in
memory). ``port=0`` picks a free port; the real address is announced once listening.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from flask import Flask


def run_server(app: Flask, host: str, port: int, server: str, announce: Callable[[str], None]) -> None:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    announce(f"http://{shown}:{bound_port}/")
    if server == "waitress":
        from waitress import serve

        serve(app, sockets=[sock], threads=8, ident="strongroom")
        return
    from werkzeug.serving import make_server

    make_server(host, bound_port, app, threaded=True, fd=sock.fileno()).serve_forever()
