# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
"""Drive headless Chromium through the DevTools protocol over a pipe
(--remote-debugging-pipe: JSON messages ended by NUL on fds 3 and 4), so no
websocket library is needed. Python 3 standard library only.

    b = Browser("/tmp/profile")
    page = b.open("http://127.0.0.1:8082/", headers={...})
    page.wait("document.title === 'x'", timeout=10)
    page.eval("document.querySelectorAll('tr').length")
    page.requests      # every URL the page asked for
    page.exceptions    # uncaught JavaScript exceptions
    b.close()
"""
import json
import os
import select
import shutil
import subprocess
import time


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, profile_dir, binary=None):
        binary = binary or find_chromium()
        if not binary:
            raise CDPError("no chromium")
        to_r, self._to_w = os.pipe()    # we write, chromium reads on fd 3
        self._from_r, from_w = os.pipe()  # chromium writes on fd 4, we read

        def child_fds():
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                "--user-data-dir=" + profile_dir, "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--mute-audio",
                "--disable-dev-shm-usage", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=child_fds,
                                     pass_fds=(3, 4))
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self._events = []

    def _send(self, method, params=None, session=None):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        return self._id

    def _read(self, timeout):
        """One message, or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self._from_r], [], [], left)
            if not r:
                return None
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise CDPError("chromium went away")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None, timeout=15.0):
        want = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise CDPError("no answer to %s" % method)
            if msg.get("id") == want:
                if "error" in msg:
                    raise CDPError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self._events.append(msg)

    def pump(self, timeout=0.05):
        """Collect events for up to timeout seconds."""
        msg = self._read(timeout)
        while msg is not None:
            self._events.append(msg)
            msg = self._read(0)

    def open(self, url, headers=None):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Network", "Page", "Runtime"):
            self.call(domain + ".enable", session=session)
        if headers:
            self.call("Network.setExtraHTTPHeaders", {"headers": headers}, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        return page

    def close(self):
        try:
            self._send("Browser.close")
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self._to_w)
        os.close(self._from_r)


class Page:
    def __init__(self, browser, session):
        self.b, self.session = browser, session
        self.requests, self.exceptions, self.console_errors = [], [], []

    def _collect(self):
        keep = []
        for ev in self.b._events:
            if ev.get("sessionId") != self.session:
                keep.append(ev)
                continue
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Network.requestWillBeSent":
                self.requests.append(p["request"]["url"])
            elif m == "Runtime.exceptionThrown":
                self.exceptions.append(p["exceptionDetails"].get("text", "") + " " +
                                       str(p["exceptionDetails"].get("exception", {}).get("description", "")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                self.console_errors.append(str(p.get("args")))
        self.b._events = keep

    def eval(self, expr):
        r = self.b.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                             "awaitPromise": True}, session=self.session)
        self._collect()
        if "exceptionDetails" in r:
            raise CDPError("%s: %s" % (expr, r["exceptionDetails"].get("text")))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout=10.0):
        """Poll a JavaScript expression until it is truthy; its last value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = self.eval(expr)
            except CDPError:
                v = None
            if v or time.monotonic() >= deadline:
                return v
            self.b.pump(0.1)
            self._collect()
