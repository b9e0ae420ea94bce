#!/usr/bin/env python3
"""A stand-in for `cloudflared` and `ngrok`, run under either name from a
folder put first on PATH by the tests: no test reaches the internet.

It takes the real programs' flags (and refuses others as they do), prints
what they print, serves their local metrics or agent API at the address it
is given, and relays its public side, an https server on 127.0.0.1 whose
name is `localhost:PORT`, to the local URL it was given.

FAKE_TUNNEL_DIR holds the public side's certificate (cert.pem, key.pem) and
what the test wants to see or change:
  <name>.pids     one line per start: the pid (appended)
  <name>.argv     the last start's arguments, one per line
  <name>.env      the names of its DANUBE_* environment variables
  fail            if present: print its text as the program's error, exit 1
  no-url          if present: never give a public URL
  url-after       if present: give the URL only after this many seconds
  exit-after      if present: exit 1 after this many seconds
  url-host        if present: the public URL's host instead of localhost:PORT
  served-host     if present: the host its metrics or agent API names,
                  unlike what it prints (as a squatter on that port would)
"""

import datetime
import http.client
import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse

NAME = os.path.basename(sys.argv[0])
DIR = os.environ.get("FAKE_TUNNEL_DIR", "")
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding",
    "te", "trailer", "upgrade", "host",
}


def knob(name):
    path = os.path.join(DIR, name)
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return None


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_start(argv):
    with open(os.path.join(DIR, NAME + ".pids"), "a") as f:
        f.write("%d\n" % os.getpid())
    with open(os.path.join(DIR, NAME + ".argv"), "w") as f:
        f.write("\n".join(argv) + "\n")
    with open(os.path.join(DIR, NAME + ".env"), "w") as f:
        f.write("".join(name + "\n" for name in os.environ if name.startswith("DANUBE_")))


class Relay(http.server.BaseHTTPRequestHandler):
    """The public side: every request goes on to the local URL."""
    protocol_version = "HTTP/1.1"
    target = None

    def log_message(self, *args):
        pass

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.target)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except OSError as err:
            # What the real tunnels answer when the origin is down.
            self.send_response(502)
            data = ("origin unreachable: %s\n" % err).encode()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = relay


def public_side(target):
    Relay.target = target
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(DIR, "cert.pem"), os.path.join(DIR, "key.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = knob("url-host") or "localhost:%d" % server.server_address[1]
    return host


def local_server(addr, routes):
    """The metrics server or agent API at `addr` (host:port)."""
    host, port = addr.rsplit(":", 1)

    class Local(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            route = routes.get(self.path.split("?")[0])
            answer = route() if route else None
            if answer is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer((host.strip("[]"), int(port)), Local)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def usage_error(message):
    # Both are Go programs whose flag parsers answer so.
    sys.stderr.write("Incorrect Usage: %s\n" % message if NAME == "cloudflared" else "ERROR:  %s\n" % message)
    sys.exit(1 if NAME == "cloudflared" else 1)


def take(argv, known_values, known_flags):
    """Flags as Go's flag packages take them: --name value or --name=value."""
    values, flags, positional = {}, set(), []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, _, inline = arg.lstrip("-").partition("=")
            if name in known_flags:
                flags.add(name)
            elif name in known_values:
                if not inline:
                    i += 1
                    if i >= len(argv):
                        usage_error("flag needs an argument: -%s" % name)
                    inline = argv[i]
                values.setdefault(name, []).append(inline)
            else:
                usage_error("flag provided but not defined: -%s" % name)
        else:
            positional.append(arg)
        i += 1
    return values, flags, positional


def exit_later():
    after = knob("exit-after")
    if after is not None:
        time.sleep(float(after))
        sys.stderr.write("%s ERR the tunnel connection was lost\n" % now())
        sys.stderr.flush()
        os._exit(1)


def cloudflared(argv):
    if not argv or argv[0] != "tunnel":
        usage_error("this stand-in runs only `cloudflared tunnel`")
    values, flags, positional = take(
        argv[1:], {"url", "metrics", "loglevel", "logfile"}, {"no-autoupdate"})
    if positional:
        usage_error("unexpected argument %s" % positional[0])
    if "url" not in values:
        sys.stderr.write("You did not specify any valid additional argument to the cloudflared tunnel command.\n")
        sys.exit(1)
    metrics = values.get("metrics", ["127.0.0.1:20241"])[-1]
    log = lambda line: (sys.stderr.write("%s %s\n" % (now(), line)), sys.stderr.flush())
    log("INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee.")
    log("INF Requesting new quick Tunnel on trycloudflare.com...")
    fail = knob("fail")
    if fail is not None:
        log("ERR %s" % fail)
        sys.exit(1)
    host = public_side(values["url"][-1])
    time.sleep(float(knob("url-after") or 0))
    no_url = knob("no-url") is not None
    if not no_url:
        log("INF +--------------------------------------------------------------------------------------------+")
        log("INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |")
        log("INF |  %-90s|" % ("https://" + host))
        log("INF +--------------------------------------------------------------------------------------------+")
    log("INF Version 2026.11.0 (Checksum 0000)")
    served = knob("served-host") or host
    local_server(metrics, {
        "/quicktunnel": lambda: {"hostname": "" if no_url else served},
        "/ready": lambda: None if no_url else {"status": 200, "readyConnections": 1, "connectorId": "00000000-0000-4000-8000-000000000000"},
    })
    log("INF Starting metrics server on %s/metrics" % metrics)
    if not no_url:
        log("INF Registered tunnel connection connIndex=0 connection=00000000-0000-4000-8000-000000000001 event=0 ip=198.41.200.13 location=ams01 protocol=quic")
    exit_later()
    signal.pause()


def ngrok_web_addr(configs):
    """web_addr as ngrok merges its config files: the last one that sets it
    (top level in version 2, under agent: in version 3)."""
    addr = "127.0.0.1:4040"
    for path in configs:
        section = ""
        with open(path) as f:
            for line in f:
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if not line.startswith(" "):
                    section = line.split(":")[0].strip()
                key, _, value = line.strip().partition(":")
                if key == "web_addr" and (section in ("web_addr", "agent")):
                    addr = value.strip().strip('"')
    return addr


def ngrok(argv):
    if not argv or argv[0] != "http":
        usage_error("this stand-in runs only `ngrok http`")
    values, flags, positional = take(
        argv[1:], {"log", "log-format", "log-level", "config", "url", "authtoken"}, set())
    if len(positional) != 1:
        usage_error("accepts 1 arg(s), received %d" % len(positional))
    configs = [c for v in values.get("config", []) for c in v.split(",")]
    for path in configs:
        if not os.path.exists(path):
            sys.stdout.write(json.dumps({"lvl": "eror", "msg": "open config file", "err": "open %s: no such file or directory" % path}) + "\n")
            sys.exit(1)
    target = positional[0]
    if not target.startswith("http"):
        target = "http://localhost:%s" % target if target.isdigit() else "http://" + target
    as_json = values.get("log", [""])[-1] == "stdout" and values.get("log-format", [""])[-1] == "json"

    def log(fields):
        fields = dict({"t": now(), "lvl": "info"}, **fields)
        if as_json:
            sys.stdout.write(json.dumps(fields) + "\n")
        else:
            sys.stdout.write("t=%s lvl=%s msg=%r\n" % (fields["t"], fields["lvl"], fields["msg"]))
        sys.stdout.flush()

    log({"msg": "no configuration paths supplied"} if not configs else {"msg": "open config file", "path": configs[-1], "err": None})
    fail = knob("fail")
    if fail is not None:
        log({"lvl": "crit", "msg": "command failed", "err": fail})
        sys.exit(1)
    web_addr = ngrok_web_addr(configs)
    log({"msg": "starting web service", "obj": "web", "addr": web_addr, "allow_hosts": []})
    host = public_side(target)
    time.sleep(float(knob("url-after") or 0))
    url = "https://" + host
    no_url = knob("no-url") is not None
    served = "https://" + (knob("served-host") or host)
    tunnel = {"name": "command_line", "ID": "a1b2c3", "uri": "/api/tunnels/command_line",
              "public_url": served, "proto": "https", "config": {"addr": target, "inspect": True}}
    local_server(web_addr, {"/api/tunnels": lambda: {"tunnels": [] if no_url else [tunnel], "uri": "/api/tunnels"}})
    log({"msg": "tunnel session started", "obj": "tunnels.session"})
    if not no_url:
        log({"msg": "started tunnel", "obj": "tunnels", "name": "command_line", "addr": target, "url": url})
    exit_later()
    signal.pause()


def main():
    if not DIR:
        sys.stderr.write("%s (stand-in): FAKE_TUNNEL_DIR is not set\n" % NAME)
        sys.exit(1)
    argv = sys.argv[1:]
    if argv in (["--version"], ["version"]):
        print("%s version 2026.11.0 (stand-in)" % NAME)
        return
    record_start(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if NAME == "cloudflared":
        cloudflared(argv)
    elif NAME == "ngrok":
        ngrok(argv)
    else:
        sys.stderr.write("run me as cloudflared or ngrok, not %s\n" % NAME)
        sys.exit(2)


main()
