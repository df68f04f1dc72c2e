# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
"""HTTP helpers for the API tests: requests to the node's API (keep-alive or
not), raw bytes for hostile ones, and SIP INVITEs from chosen source
addresses. Python 3 standard library only; every call has a timeout."""
import http.client
import json
import socket
import time

from sip_client import family_of, request as sip_request

API = ("127.0.0.1", 8082)
TOKEN = None


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


def get(path, token=None, host=None, method="GET", headers=None, timeout=10.0):
    """One request on its own connection."""
    h, p = host or API
    conn = http.client.HTTPConnection(h, p, timeout=timeout)
    hdrs = dict(headers or {})
    tok = token if token is not None else TOKEN
    if tok:
        hdrs["Authorization"] = "Bearer " + tok
    try:
        conn.request(method, path, headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, body)
    finally:
        conn.close()


def raw(data, host=None, timeout=5.0):
    """Send bytes, return what comes back before the server closes (or the timeout)."""
    h, p = host or API
    s = socket.create_connection((h, p), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_of(raw_reply):
    try:
        return int(raw_reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def invite(src, dst, port, number, ua="sentrypeer-test"):
    """An INVITE over UDP from address src (which must be on an interface)."""
    s = socket.socket(family_of(dst), socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        s.sendto(sip_request("INVITE", dst, port, number=number, ua=ua, local=(src, 5999)), (dst, port))
    finally:
        s.close()


def wait_for(pred, timeout=10.0, every=0.1):
    """Poll pred() until it is true or timeout seconds pass; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(every)
