# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
"""A small SIP client for the SIP tests: builds requests, sends them over
UDP, TCP or TLS (IPv4 or IPv6), reads replies framed by Content-Length, and
reads the node's JSON log. Python 3 standard library only.

As a program:  sip_client.py options udp|tcp|tls HOST PORT [USER-AGENT]
prints the reply's status line and exits 0 on 200 OK, 1 otherwise.

Every call that waits takes a timeout: nothing here blocks for ever.
"""
import json
import os
import random
import socket
import ssl
import sys
import time

SDP_300 = None  # filled below: an SDP body of exactly 300 bytes


def host_text(h):
    return "[%s]" % h if ":" in h else h


def family_of(h):
    return socket.AF_INET6 if ":" in h else socket.AF_INET


def token(n=10):
    return "".join(random.choice("abcdef0123456789") for _ in range(n))


def request(method, host, port, number="100", transport="UDP", local=None, ua="sentrypeer-test",
            body=b"", extra=(), call_id=None, cseq=1, content_type="application/sdp"):
    """A request as bytes. ua and extra may hold any characters (latin-1)."""
    if local is None:
        local = ("127.0.0.1" if family_of(host) == socket.AF_INET else "::1", 5999)
    call_id = call_id or token(16) + "@sentrypeer.test"
    lh = "%s:%d" % (host_text(local[0]), local[1])
    rh = "%s:%d" % (host_text(host), port)
    lines = [
        "%s sip:%s@%s SIP/2.0" % (method, number, rh),
        "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport" % (transport.upper(), lh, token()),
        "Max-Forwards: 70",
        "From: \"tester\" <sip:tester@%s>;tag=%s" % (lh, token(8)),
        "To: <sip:%s@%s>" % (number, rh),
        "Call-ID: %s" % call_id,
        "CSeq: %d %s" % (cseq, method),
        "Contact: <sip:tester@%s>" % lh,
        "User-Agent: %s" % ua,
    ]
    lines += list(extra)
    if body:
        lines.append("Content-Type: %s" % content_type)
    lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def sdp(size):
    """An SDP body of exactly size bytes (size >= 120)."""
    base = ("v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
            "m=audio 49170 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n")
    pad = size - len(base) - len("a=x-pad:\r\n")
    assert pad >= 0
    return (base + "a=x-pad:" + "p" * pad + "\r\n").encode()


SDP_300 = sdp(300)


def status_line(msg):
    if not msg:
        return ""
    return msg.split(b"\r\n", 1)[0].decode("latin-1")


def status_code(msg):
    parts = status_line(msg).split(" ")
    if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return 0


def header(msg, name):
    """First value of header name (case-insensitive), or None."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


# ---- UDP ------------------------------------------------------------------

def udp_socket(host, bind=None):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    if bind:
        s.bind(bind)
    return s


def udp_recv(s, timeout):
    """One datagram, or None after timeout seconds."""
    s.settimeout(timeout)
    try:
        return s.recv(70000)
    except (socket.timeout, ConnectionRefusedError):
        return None


def udp_request(host, port, data, timeout=3.0):
    """Send one datagram, return the first reply (or None)."""
    s = udp_socket(host)
    try:
        s.connect((host, port))
        s.send(data)
        return udp_recv(s, timeout)
    finally:
        s.close()


# ---- TCP and TLS ------------------------------------------------------------

def tcp_connect(host, port, timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def tls_wrap(sock, timeout=5.0):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock.settimeout(timeout)
    return ctx.wrap_socket(sock)


def tls_connect(host, port, timeout=5.0):
    return tls_wrap(tcp_connect(host, port, timeout), timeout)


class Stream:
    """Reads whole SIP messages from a stream socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False

    def read_message(self, timeout=3.0):
        """The next message, or None on timeout or when the peer closed
        (then self.closed is True)."""
        deadline = time.monotonic() + timeout
        while True:
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end + 4]
                cl = header(head, "content-length") or header(head, "l") or "0"
                total = end + 4 + int(cl)
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                return None
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                return None
            self.buf += data


def wait_closed(sock, timeout):
    """Seconds until the peer closed the connection (recv gives b'' or a
    reset), or None if it is still open after timeout seconds. Data that
    arrives meanwhile is read and ignored."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return time.monotonic() - start
        if not data:
            return time.monotonic() - start


def stream_request(sock, data, n=1, timeout=3.0):
    """Send data, read n replies (fewer if they do not come)."""
    sock.sendall(data)
    st = Stream(sock)
    out = []
    for _ in range(n):
        m = st.read_message(timeout)
        if m is None:
            break
        out.append(m)
    return out


def options(transport, host, port, ua="sentrypeer-test", timeout=3.0):
    """One OPTIONS over transport; the reply (or None)."""
    t = transport.lower()
    msg = request("OPTIONS", host, port, transport=t.upper(), ua=ua)
    if t == "udp":
        return udp_request(host, port, msg, timeout)
    s = tcp_connect(host, port, timeout) if t == "tcp" else tls_connect(host, port, timeout)
    try:
        r = stream_request(s, msg, 1, timeout)
        return r[0] if r else None
    finally:
        s.close()


# ---- the JSON log ---------------------------------------------------------------

def json_events(path):
    """Every object in the JSON log (a line that is not JSON raises)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                out.append(json.loads(line))
    return out


def wait_events(path, pred, n=1, timeout=10.0):
    """Poll the JSON log until n events match pred; returns the matches
    (possibly fewer, after timeout seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in json_events(path) if pred(e)]
        if len(found) >= n or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def with_call_id(cid):
    return lambda e: ("Call-ID: %s\r\n" % cid) in e.get("sip_message", "")


# ---- reporting (read by pyrun in sip_lib.sh) ----------------------------------------

def check(cond, what, detail=""):
    if cond:
        print("ok - %s" % what, flush=True)
    else:
        print("FAIL - %s%s" % (what, (": " + str(detail)[:600]) if detail != "" else ""), flush=True)
    return cond


def main(argv):
    if len(argv) < 5 or argv[1] != "options":
        print("usage: sip_client.py options udp|tcp|tls HOST PORT [USER-AGENT]", file=sys.stderr)
        return 2
    ua = argv[5] if len(argv) > 5 else "sentrypeer-test"
    try:
        r = options(argv[2], argv[3], int(argv[4]), ua)
    except OSError as e:
        print("error: %s" % e)
        return 1
    print(status_line(r) if r else "no reply")
    return 0 if status_code(r) == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
