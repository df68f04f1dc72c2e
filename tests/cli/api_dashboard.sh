# SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
# The dashboard in a real browser: a node (sentrypeer run -a, with a token)
# in a private network namespace gets events over SIP and records from an
# import; headless Chromium (Debian chromium, driven through the DevTools
# protocol over a pipe: tests/cli/cdp.py) opens the page and we check what
# it shows: top addresses and numbers, recent events, the plot, local and
# peer data, DHT state, the lookup box, a live update without reload, text
# an attacker chose shown as text, and no request to any other host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sip_lib.sh"

if [ -z "$(command -v chromium || command -v chromium-browser || command -v google-chrome)" ]; then
	skip "api_dashboard: Chromium is not installed (Debian: apt-get install chromium); the dashboard is not tested in a browser"
	finish
	exit 77
fi
ip addr add 203.0.113.50/32 dev lo
ip addr add 203.0.113.51/32 dev lo
PORT=5060
TOKEN="dash-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"

start_node dash --sip-address 127.0.0.1 --sip-port "$PORT" --no-sip-tls --no-sip-tcp -a \
	--api-token "$TOKEN" || { finish; exit 1; }
wait_file_has "$NODE_LOG" "HTTP API listening" 10 || fail "API did not start"
make_fixture "$TMP/f.jsonl"
sp import --data-dir "$NODE_DIR" "$TMP/f.jsonl" >/dev/null 2>&1

pyrun "dashboard in headless Chromium" "$PORT" "$TOKEN" "$TMP/chrome" <<'EOF'
import json, sys, time
import api_client as A
from cdp import Browser, CDPError
from sip_client import check
port, token, profile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
A.TOKEN = token
for i in range(6):
    A.invite("203.0.113.50", "127.0.0.1", port, "+46500729221", ua="friendly-scanner")
A.invite("203.0.113.50", "127.0.0.1", port, "100", ua="<img src=x onerror=window.pwned=1>")
check(A.wait_for(lambda: A.get("/api/v1/ip-addresses/203.0.113.50?source=local").status == 200),
      "events recorded before the page opens")

b = Browser(profile)
try:
    page = b.open("http://127.0.0.1:8082/", headers={"Authorization": "Bearer " + token})
    check(page.wait("document.readyState === 'complete' && document.title") == "SentryPeer node",
          "the page loads")
    rows = page.wait("""(() => { const t = [...document.querySelectorAll('#top-ips tbody tr')]
                                  .map(r => r.cells[0].textContent);
                                  return t.includes('203.0.113.50') && t.includes('203.0.113.5') ? t : null })()""")
    check(rows, "top source addresses: the SIP source and the imported one", rows)
    top = page.eval("[...document.querySelectorAll('#top-ips tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])")
    check(top and top[0] == ["203.0.113.5", "42"], "sorted by events, counts shown", top)
    nums = page.wait("[...document.querySelectorAll('#top-numbers tbody tr')].map(r => r.cells[0].textContent)")
    check(nums and "46500729221" in nums and "441234" in nums, "top called numbers", nums)
    ev = page.wait("""(() => { const r = [...document.querySelectorAll('#recent-events tbody tr')];
                               return r.length >= 7 ? r.map(x => [...x.cells].map(c => c.textContent)) : null })()""")
    check(ev and ev[0][1] == "203.0.113.50" and ev[0][2] == "UDP" and ev[0][3] == "INVITE",
          "recent events: source, transport, method", ev and ev[:2])
    total = page.wait("Number(document.getElementById('chart').dataset.total) >= 7 && ({...document.getElementById('chart').dataset})")
    check(total and int(total["total"]) >= 7 and int(total["bars"]) >= 1, "events over time plotted", total)
    px = page.eval("""(() => { const c = document.getElementById('chart'), x = c.getContext('2d');
                       const d = x.getImageData(0, 0, c.width, c.height).data; let n = 0;
                       for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i+1] < 100) n++; return n })()""")
    check(px and px > 10, "bars drawn on the canvas", px)
    src = page.eval("[...document.querySelectorAll('#src-ip td')].map(c => c.textContent)")
    check(src == ["3", "1", "1"], "IP addresses: seen here only / here and by peers / peers only", src)
    dht = page.eval("document.getElementById('dht-state').textContent")
    check(dht and dht.startswith("off"), "DHT state shown (off: this node has none)", dht)
    check(page.eval("document.getElementById('live').textContent") == "live", "marked live")

    # what an attacker chose is text, not markup
    uas = page.wait("[...document.querySelectorAll('#recent-events tbody td')].map(c => c.textContent).filter(t => t.startsWith('<img'))")
    check(uas == ["<img src=x onerror=window.pwned=1>"], "a hostile user agent shown as text", uas)
    check(page.eval("typeof window.pwned") == "undefined" and
          page.eval("document.querySelectorAll('main img').length") == 0, "and never run")

    # live: new events appear without a reload
    updates = int(page.eval("document.getElementById('updated').dataset.updates"))
    for i in range(3):
        A.invite("203.0.113.51", "127.0.0.1", port, "200", ua="live-update-ua")
    live = page.wait("[...document.querySelectorAll('#recent-events tbody td')].some(c => c.textContent === 'live-update-ua')", timeout=15)
    check(live, "new events show up without a reload")
    live = page.wait("[...document.querySelectorAll('#top-ips tbody td')].some(c => c.textContent === '203.0.113.51')", timeout=15)
    check(live, "and the new source reaches the top addresses")
    check(int(page.eval("document.getElementById('updated').dataset.updates")) > updates, "the page polled again")

    # the lookup box
    page.eval("document.getElementById('lookup-input').value = '203.0.113.5'; document.getElementById('lookup-form').requestSubmit(); 1")
    res = page.wait("(t => t.includes('is listed') ? t : null)(document.getElementById('lookup-result').textContent)")
    check(res and "42 times" in res and "local store" in res, "lookup: a listed address with its record", res)
    page.eval("document.getElementById('lookup-input').value = '+441234'; document.getElementById('lookup-form').requestSubmit(); 1")
    res = page.wait("(t => t.includes('+441234 is listed') ? t : null)(document.getElementById('lookup-result').textContent)")
    check(res and "+441234" in res and "00441234" in res, "lookup: a number, with the forms it was dialled in", res)
    page.eval("document.getElementById('lookup-input').value = '192.0.2.200'; document.getElementById('lookup-form').requestSubmit(); 1")
    res = page.wait("(t => t.includes('not listed') ? t : null)(document.getElementById('lookup-result').textContent)")
    check(res and "DHToff" in res.replace(" ", ""), "lookup: not listed, and the DHT is off", res)
    page.eval("document.getElementById('lookup-input').value = 'not a thing!'; document.getElementById('lookup-form').requestSubmit(); 1")
    res = page.wait("(e => e.className.includes('error') ? e.textContent : null)(document.getElementById('lookup-result'))")
    check(res and "not" in res, "lookup: bad input explained", res)

    # the page stays home: every request went to this node
    b.pump(0.2)
    page._collect()
    away = [u for u in page.requests if not (u.startswith("http://127.0.0.1:8082/") or u.startswith("data:"))]
    check(page.requests and not away, "no request to any other host (%d requests)" % len(page.requests), away)
    check(not page.exceptions, "no JavaScript exceptions", page.exceptions)
finally:
    b.close()

# without the token the browser gets 401 and asks (Basic): no data leaks
r = A.get("/", token="")
check(r.status == 401 and "Basic" in (r.header("www-authenticate") or ""), "without the token: 401 with a Basic challenge")
EOF
stop_node
finish
