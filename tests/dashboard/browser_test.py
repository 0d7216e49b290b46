"""The dashboard in a real browser: `ssmrl serve` on a free loopback port, Debian's Chromium driven
headless by chromedriver over the W3C WebDriver protocol (plain HTTP and JSON, no client library).

The page loads; a short run starts from the form (a bad knob first: the command line's message on
the page, nothing started); its curve gains points; an override written from the page shows in the
audit log; stopping works; adaptation and the self-improvement daemon run from the page. Requests
without the token, and names that lead outside the served directory (`../`, absolute paths, a
symlink), are refused. A screenshot of the page is kept in the work directory.

usage: browser_test.py SSMRL_BINARY WORK_DIR
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ssmrl, work = sys.argv[1], os.path.abspath(sys.argv[2])
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    """(status, parsed JSON or text) of a request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def answers(url):
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


def wait_for(condition, what, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            print("ok   " + what, flush=True)
            return value
        time.sleep(0.25)
    check(False, what + " (waited %.0f s)" % timeout)
    return None


class Browser:
    """A WebDriver session of chromedriver."""

    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        options = {"args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--window-size=1280,2200", "--user-data-dir=" + tempfile.mkdtemp(dir=work)]}
        chromium = shutil.which("chromium")
        if chromium:
            options["binary"] = chromium
        status, reply = http("POST", self.base + "/session",
                             {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}})
        if status != 200:
            raise RuntimeError("chromedriver refused the session: %s" % reply)
        self.session = self.base + "/session/" + reply["value"]["sessionId"]

    def command(self, method, path, body=None):
        status, reply = http(method, self.session + path, body if body is not None else ({} if method == "POST" else None))
        if status != 200:
            raise RuntimeError("WebDriver %s %s: %s" % (method, path, reply))
        return reply["value"]

    def open(self, url):
        self.command("POST", "/url", {"url": url})

    def find(self, css):
        found = self.command("POST", "/elements", {"using": "css selector", "value": css})
        return [next(iter(e.values())) for e in found]

    def one(self, css):
        found = self.find(css)
        if not found:
            raise RuntimeError("no element " + css)
        return found[0]

    def click(self, css):
        self.command("POST", "/element/%s/click" % self.one(css))

    def type(self, css, text):
        element = self.one(css)
        self.command("POST", "/element/%s/clear" % element)
        self.command("POST", "/element/%s/value" % element, {"text": text})

    def script(self, source, *args):
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    def text(self, css):
        return self.script("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css)

    def select(self, css, value):
        self.script("const e = document.querySelector(arguments[0]); e.value = arguments[1];"
                    "e.dispatchEvent(new Event('change'));", css, value)

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.command("GET", "/screenshot")))

    def close(self):
        http("DELETE", self.session)


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
served = os.path.join(work, "runs")
outside = os.path.join(work, "outside")
os.makedirs(served)
os.makedirs(os.path.join(outside, "secret"))
with open(os.path.join(outside, "secret", "train.csv"), "w") as f:
    f.write("iteration,secret\n0,42\n")
os.symlink(os.path.join(outside, "secret"), os.path.join(served, "escape"))
# A run from elsewhere whose checkpoint holds metadata of the wrong type, and a train.csv of junk.
os.makedirs(os.path.join(served, "imported"))
header = json.dumps({"__metadata__": {"ssmrl.config": 5, "ssmrl.iteration": "7"}}).encode()
with open(os.path.join(served, "imported", "latest.safetensors"), "wb") as f:
    f.write(len(header).to_bytes(8, "little") + header)
with open(os.path.join(served, "imported", "train.csv"), "wb") as f:
    f.write(b"iteration,\xff\xfe\n1,\"unterminated\n")

server = subprocess.Popen([ssmrl, "serve", "--dir", served, "--port", "0"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
driver = None
browser = None
try:
    url = None
    for line in server.stdout:
        print("serve: " + line.rstrip(), flush=True)
        m = re.search(r"(http://127\.0\.0\.1:(\d+)/)\?token=([0-9a-f]+)", line)
        if m:
            url, port, token = m.group(0), int(m.group(2)), m.group(3)
            base = m.group(1)
            break
    check(url is not None, "serve prints a URL with a token")
    check(len(token) == 48, "the token has 48 hex digits")

    # ---- the token, and the Host header ----
    auth = {"X-Ssmrl-Token": token}
    status, _ = http("GET", base + "api/state")
    check(status == 403, "GET /api/state without the token is refused (%d)" % status)
    status, reply = http("GET", base)
    check(status == 403 and "access token" in str(reply), "the page without the token is refused")
    status, _ = http("GET", base + "api/state?token=" + "0" * 48)
    check(status == 403, "a wrong token is refused")
    status, _ = http("GET", base + "app.js")
    check(status == 403, "the page's script without the token is refused")
    status, _ = http("POST", base + "api/stop?token=" + token, {})
    check(status == 403, "a POST with the token only in the URL is refused (actions need the header)")
    status, _ = http("POST", base + "api/stop", {}, {"Cookie": "ssmrl_token=" + token})
    check(status == 403, "a POST with the token only in the cookie is refused")
    status, _ = http("GET", base + "api/state?token=" + token, headers={"Host": "evil.example:%d" % port})
    check(status == 403, "a request for another host name is refused (DNS rebinding)")
    status, state = http("GET", base + "api/state?token=" + token)
    check(status == 200 and "configs" in state, "GET /api/state with the token answers")
    check(all(r["name"] != "escape" for r in state["runs"]), "a symlink leading outside is not listed")
    imported = [r for r in state["runs"] if r["name"] == "imported"]
    check(len(imported) == 1 and imported[0]["config"] == "" and imported[0]["iteration"] == "7",
          "a checkpoint with metadata of the wrong type is listed without it: %s" % imported)
    status, reply = http("GET", base + "api/run?token=%s&name=imported" % token)
    check(status == 200 and "ssmrl.config" not in reply.get("metadata", {}), "its run view answers (%d)" % status)

    second = subprocess.run([ssmrl, "serve", "--dir", served, "--port", "0"], capture_output=True, text=True,
                            timeout=60)
    check(second.returncode != 0 and "in use by another process" in second.stderr,
          "a second dashboard on the same directory is refused: %r" % second.stderr.strip())

    # ---- no path outside the served directory ----
    for name in ["../outside/secret", "..", "/etc", os.path.join(outside, "secret"), "escape", "a/../../outside"]:
        q = urllib.request.quote(name, safe="")
        status, reply = http("GET", base + "api/run?token=%s&name=%s" % (token, q))
        check(status in (400, 403) and "csv" not in reply and "42" not in json.dumps(reply),
              "run view of %r is refused (%d: %s)" % (name, status, reply.get("error", "")[:90]))
        status, reply = http("POST", base + "api/adapt", {"run": name, "file": "latest.safetensors"}, auth)
        check(status in (400, 403), "adapting %r is refused (%d)" % (name, status))
        status, reply = http("POST", base + "api/train", {"config": "navigation2d", "name": name}, auth)
        check(status in (400, 403), "training into %r is refused (%d)" % (name, status))
        status, reply = http("POST", base + "api/rsi/start", {"name": name}, auth)
        check(status in (400, 403), "self-improvement in %r is refused (%d)" % (name, status))
    raw = urllib.request.Request(base + "api/train", data=b"{not json", method="POST",
                                 headers=dict(auth, **{"Content-Type": "application/json"}))
    try:
        urllib.request.urlopen(raw, timeout=30)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    check(status == 400, "a body that is not JSON is refused (%d)" % status)
    for body in [{"config": 5, "name": "x"}, {"config": "navigation2d", "name": "x", "knobs": [1]},
                 {"config": "navigation2d", "name": "x", "seed": "-1"}, {"config": "cartpole-ppo", "name": "x",
                                                                         "tasks_per_batch": "3"}]:
        status, reply = http("POST", base + "api/train", body, auth)
        check(status == 400 and reply.get("error"), "train %s is refused: %s" % (body, reply.get("error")))
    status, reply = http("POST", base + "api/rsi/start", {"name": "injected", "budget": "1", "hidden": "--foreground"},
                         auth)
    check(status == 400 and "--hidden" in reply.get("error", "") and not os.path.exists(os.path.join(served, "injected", "rsi.pid")),
          "a form value that looks like an option stays a value: %s" % reply.get("error", "")[:100])
    status, reply = http("POST", base + "api/adapt", {"pretrained": "cartpole-ppo.safetensors", "strategy": "--no-guards"}, auth)
    check(status == 400, "an adaptation strategy that looks like an option is refused (%d)" % status)
    status, reply = http("GET", base + "api/run?token=" + token)
    check(status == 400, "a run view without a name is refused (%d)" % status)
    status, reply = http("POST", base + "api/override", {"text": "{}"}, auth)
    check(status == 409, "an override without a training run is refused (%d)" % status)
    status, reply = http("POST", base + "api/adapt", {"pretrained": "../../etc/passwd"}, auth)
    check(status in (400, 403), "a shipped checkpoint named with ../ is refused (%d)" % status)
    check(sorted(n for n in os.listdir(served) if n != ".lock") == ["escape", "imported"], "the refusals created nothing")
    check(sorted(os.listdir(os.path.join(outside, "secret"))) == ["train.csv"], "nothing was written outside")

    # ---- the browser ----
    driver_port = free_port()
    driver = subprocess.Popen(["chromedriver", "--port=%d" % driver_port], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: answers("http://127.0.0.1:%d/status" % driver_port), "chromedriver answers", 30)
    browser = Browser(driver_port)
    browser.open(url)
    wait_for(lambda: browser.script("return document.body.dataset.ready === 'true';"), "the page loads")
    check("ssmrl dashboard" in browser.script("return document.title;"), "the page's title")
    options = browser.script("return [...document.querySelectorAll('#train-config option')].map(o => o.value);")
    check("navigation2d" in options and "cartpole-ppo" in options, "the form lists the configurations")
    shipped = browser.script("return [...document.querySelectorAll('#pretrained li')].map(l => l.textContent);")
    check(any("navigation2d.safetensors" in s for s in shipped), "the shipped checkpoints are listed")

    # A bad knob: the command line's message on the page, and nothing started.
    browser.select("#train-config", "navigation2d")
    wait_for(lambda: browser.find("#train-knobs [name='knob.max_kl']"), "the knob fields follow the configuration")
    browser.type("#train-name", "nav")
    browser.type("#train-steps", "3000")
    browser.type("#train-tasks", "4")
    browser.type("#train-knobs [name='knob.max_kl']", "5")
    browser.click("#train-start")
    message = wait_for(lambda: browser.text("#train-message"), "a bad knob gets a message")
    check(message is not None and "ssmrl train --set" in message and "max_kl" in message and "range" in message,
          "the message is the command line's: %r" % message)
    check(not os.path.exists(os.path.join(served, "nav")), "a refused run leaves nothing")

    # A short run from the page.
    browser.type("#train-knobs [name='knob.max_kl']", "0.01")
    browser.click("#train-start")
    wait_for(lambda: "started run nav" in (browser.text("#train-message") or ""), "the run starts")
    wait_for(lambda: "training nav" in (browser.text("#job-status") or ""), "the page shows the run training")
    first = wait_for(lambda: int(browser.script("return document.getElementById('run-plot').dataset.points;")) >= 2,
                     "the curve gets points", 60)
    points = int(browser.script("return document.getElementById('run-plot').dataset.points;"))
    wait_for(lambda: int(browser.script("return document.getElementById('run-plot').dataset.points;")) > points + 2,
             "the curve gains points while it trains", 60)
    legend = browser.script("return [...document.querySelectorAll('#run-plot text')].map(t => t.textContent);")
    check("max_kl 0.01" in (browser.text("#run-knobs") or ""), "the run view shows the knobs in effect")
    wait_for(lambda: "ssmrl.config" in (browser.text("#run-settings") or ""), "the run view shows its configuration", 60)
    check("meta-iteration" in legend and any("return per episode" in t for t in legend)
          and "post_adaptation_return" in legend, "the plot has axes with units and a legend")
    status, reply = http("POST", base + "api/train", {"config": "navigation2d", "name": "second"}, auth)
    check(status == 409 and "one run at a time" in reply.get("error", ""), "a second run is refused while one trains")

    # An override from the page: refused whole when bad, then in the audit log.
    browser.script("document.getElementById('override-text').value = arguments[0];", '{"max_kl": 7}')
    browser.click("#override-apply")
    message = wait_for(lambda: browser.text("#override-message"), "a bad override gets a message")
    check(message is not None and "max_kl" in message and "range" in message, "the bad override's message: %r" % message)
    check(not os.path.exists(os.path.join(served, "nav", "override.json")), "a bad override writes nothing")
    browser.script("document.getElementById('override-text').value = arguments[0];", '{"max_kl": 0.02}')
    browser.click("#override-apply")
    wait_for(lambda: "override written" in (browser.text("#override-message") or ""), "the override is written")
    audit = wait_for(lambda: [r for r in browser.script(
        "return [...document.querySelectorAll('#audit-table tbody tr')].map(r => r.textContent);")
        if "max_kl" in r and "0.02" in r and "override" in r], "the override shows in the audit log", 60)
    check(bool(audit), "audit row: %s" % (audit[:1],))
    wait_for(lambda: browser.find("#run-plot .override-mark"), "the override is marked on the curves", 30)
    browser.screenshot(os.path.join(work, "dashboard.png"))
    browser.click("#override-remove")
    wait_for(lambda: "override removed" in (browser.text("#override-message") or ""), "the override is removed")
    check(not os.path.exists(os.path.join(served, "nav", "override.json")), "the override file is gone")
    wait_for(lambda: browser.script("return document.getElementById('override-text').value;") == "{}",
             "the page shows the override gone")
    status, reply = http("POST", base + "api/rsi/start", {"name": "nav"}, auth)
    check(status == 409, "self-improvement in a training run's directory is refused (%d)" % status)

    # Stopping.
    browser.click("#train-stop")
    wait_for(lambda: "ended (exit status 143)" in (browser.text("#job-status") or ""), "the run stops", 120)
    check(os.path.exists(os.path.join(served, "nav", "latest.safetensors")), "the stopped run kept a checkpoint")

    # Adaptation of the new checkpoint, and of a shipped one with a strategy.
    wait_for(lambda: browser.script("return [...document.querySelectorAll('#adapt-checkpoint option')]"
                                    ".some(o => o.textContent === 'nav/latest.safetensors');"),
             "the new checkpoint is offered for adaptation")
    browser.script("const s = document.getElementById('adapt-checkpoint');"
                   "s.value = [...s.options].find(o => o.textContent === 'nav/latest.safetensors').value;")
    browser.type("#adapt-episodes", "2")
    browser.click("#adapt-run")
    wait_for(lambda: len(browser.find("#adapt-table tbody tr")) >= 2, "the adaptation table fills", 120)
    check("mean return" in (browser.text("#adapt-table thead") or ""), "the adaptation table's header")
    browser.script("const s = document.getElementById('adapt-checkpoint');"
                   "s.value = [...s.options].find(o => o.textContent === 'shipped: cartpole-ppo.safetensors').value;")
    browser.select("#adapt-strategy", "all")
    browser.type("#adapt-steps", "1")
    browser.click("#adapt-run")
    wait_for(lambda: "hybrid" in (browser.text("#adapt-table thead") or ""), "the strategies' table fills", 120)

    # Self-improvement: start, status and history, stop.
    browser.type("#rsi-name", "improve")
    browser.type("#rsi-cycles", "0")
    browser.type("#rsi-budget", "1")
    browser.type("#rsi-hidden", "8,8")
    browser.type("#rsi-tasks", "2")
    browser.type("#rsi-replicates", "1")
    browser.click("#rsi-start")
    wait_for(lambda: "daemon started" in (browser.text("#rsi-message") or ""), "the daemon starts", 60)
    wait_for(lambda: "running" in (browser.text("#rsi-status") or ""), "its status shows it running", 30)
    wait_for(lambda: len(browser.find("#rsi-history tbody tr")) >= 2, "its history shows cycles", 120)
    browser.click("#rsi-stop")
    wait_for(lambda: "not running" in (browser.text("#rsi-status") or ""), "the daemon stops", 90)
    browser.screenshot(os.path.join(work, "dashboard-end.png"))
finally:
    if browser:
        browser.close()
    if driver:
        driver.terminate()
        driver.wait(timeout=30)
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
    print("serve: " + server.stdout.read().strip(), flush=True)
check(server.returncode == 0, "serve ends cleanly on SIGTERM (%s)" % server.returncode)

print("screenshot: " + os.path.join(work, "dashboard.png"))
if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
