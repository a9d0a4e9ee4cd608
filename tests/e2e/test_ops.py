"""End-to-end tests of running mxfwd as a service: the service manager's
notifications (NOTIFY_SOCKET), the Prometheus endpoint (metrics_listen),
logging to syslog and debug lines (serve -v).

The service manager and the syslog daemon are played by Unix datagram
sockets the test binds; mail goes to the test sink on loopback."""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import ssl
import time

import mxtest
from mxtest import test

FORWARDS = "alice@alias.test  user@dest.test\nslow@alias.test  slow@dest.test\n"

BODY = (b"From: Sender <sender@origin.test>\r\nTo: alice@alias.test\r\nSubject: metrics\r\n"
        b"\r\nHello.\r\n")


def datagram_socket(name=None):
    """A bound Unix datagram socket: at a path in a temporary directory, or
    at the abstract name given.  (socket, the address as mxfwd takes it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    mxtest.on_cleanup(s.close)
    if name is None:
        path = os.path.join(mxtest.tempdir(), "sock")
        s.bind(path)
        return s, path
    s.bind("\0" + name)
    return s, "@" + name


def receive(s, timeout=mxtest.TIMEOUT):
    s.settimeout(timeout)
    try:
        return s.recv(65536).decode()
    except socket.timeout:
        raise AssertionError(f"no datagram within {timeout}s")


def nothing_more(s, wait=0.3):
    s.settimeout(wait)
    try:
        extra = s.recv(65536)
    except socket.timeout:
        return
    raise AssertionError(f"unexpected datagram {extra!r}")


# ---- NOTIFY_SOCKET -----------------------------------------------------------

def notify_sequence(abstract):
    sock, address = datagram_socket(f"mxfwd-notify-{os.getpid()}" if abstract else None)
    m = mxtest.Mxfwd(forwards=FORWARDS, start=False)
    m.proc = mxtest.Process([mxtest.MXFWD, "serve", "-c", m.conf],
                            log_path=os.path.join(m.dir, "mxfwd.log"),
                            env=dict(os.environ, NOTIFY_SOCKET=address))
    ready = receive(sock)
    assert ready.split("\n")[0] == "READY=1", ready
    # Ready means serving: SMTP answers and the control socket is there.
    assert mxtest._port_open(m.port), "READY=1 before the listener"
    assert os.path.exists(m.settings["control_socket"]), "READY=1 before the control socket"
    assert m.run("queue").stdout.strip() == "Mail queue is empty"

    with open(m.settings["forward_table"], "a") as f:
        f.write("bob@alias.test  bob@example.org\n")
    m.proc.send_signal(signal.SIGHUP)
    reloading = receive(sock)
    lines = reloading.split("\n")
    assert lines[0] == "RELOADING=1", reloading
    usec = re.fullmatch(r"MONOTONIC_USEC=(\d+)", lines[1])
    assert usec, reloading
    # CLOCK_MONOTONIC, as Python's time.monotonic() on Linux.
    assert abs(int(usec.group(1)) / 1e6 - time.monotonic()) < 5, reloading
    ready = receive(sock)
    assert ready.split("\n")[0] == "READY=1", ready
    # READY=1 comes once the new table is in use.
    assert "reloaded forward table" in m.log() and "3 aliases" in m.log(), m.log()
    nothing_more(sock)

    m.proc.send_signal(signal.SIGTERM)
    stopping = receive(sock)
    assert stopping.split("\n")[0] == "STOPPING=1", stopping
    assert m.proc.wait() == 0
    m.stop()
    nothing_more(sock, wait=0.05)


@test
def notify_ready_reloading_stopping_on_a_socket_path():
    notify_sequence(abstract=False)


@test
def notify_on_an_abstract_socket():
    notify_sequence(abstract=True)


@test
def a_notify_socket_that_is_gone_is_one_warning():
    d = mxtest.tempdir()
    m = mxtest.Mxfwd(forwards=FORWARDS, start=False)
    m.start(env={"NOTIFY_SOCKET": os.path.join(d, "nobody-listens")})
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"reloaded forward table")
    assert m.stop() == 0
    warnings = re.findall(r"warning: cannot notify the service manager.*", m.log())
    assert len(warnings) == 1 and "No such file or directory" in warnings[0], m.log()


# ---- metrics ------------------------------------------------------------------

def http(port, request, timeout=mxtest.TIMEOUT):
    """Send request bytes, read the whole answer until the server closes:
    (status, headers dict, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    assert int(headers["content-length"]) == len(body) or request.startswith(b"HEAD"), data
    return status, headers, body.decode()


SAMPLE = re.compile(r'^([a-z_]+)(?:\{([a-z_]+)="((?:[^"\\]|\\.)*)"\})? (\d+(?:\.\d+)?)$')


def scrape(port):
    """GET /metrics, checked against the text format: {name or
    (name, label value): value}, and the TYPE of each family."""
    status, headers, body = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200, (status, body)
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", headers
    samples, types, helps = {}, {}, set()
    for line in body.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in types, f"{name}: TYPE twice"
            types[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, label, value = m.group(1), m.group(2), float(m.group(4))
            # Every sample follows its family's HELP and TYPE; a
            # histogram's are its _bucket, _sum and _count.
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            if types.get(family) == "histogram":
                assert name != family and (label is None) == (name != family + "_bucket"), line
            else:
                family = name
            assert family in types and family in helps, line
            samples[(name, m.group(3)) if label else name] = value
    for name, kind in types.items():
        # The process's own metrics by the names every exporter gives them.
        assert name.startswith("mxfwd_") or name.startswith("process_"), name
        assert (kind == "counter") == name.endswith("_total"), (name, kind)
    return samples, types


def metered(sink, **config):
    dns = mxtest.Dnsmasq([mxtest.txt_record("spf-fail.test", "v=spf1 -all")])
    port = mxtest.free_port()
    settings = {
        "dns_servers": dns.server,
        "route": f"dest.test 127.0.0.1:{sink.port}",
        "outbound_tls": "off",
        "retry_schedule": "1h",
        "metrics_listen": f"127.0.0.1:{port}",
    }
    settings.update(config)
    m = mxtest.Mxfwd(forwards=FORWARDS, config=settings)
    m.metrics_port = port
    return m


def send(m, rcpt):
    c = m.client()
    r = c.transaction("sender@origin.test", [rcpt], BODY)
    assert r.code == 250, r
    c.cmd("QUIT")
    c.close()
    return re.search(r"queued as ([0-9A-F]+)", r.text).group(1)


@test
def metrics_count_a_message_through_to_the_sink():
    d = mxtest.tempdir()
    cert, key = mxtest.tls_certificate(d, "mx.fwd.test")
    sink = mxtest.Sink(replies={"slow@dest.test": "451 4.3.0 try again later"})
    m = metered(sink, tls_cert=cert, tls_key=key)
    m.wait_log(rf"metrics on http://127\.0\.0\.1:{m.metrics_port}/metrics")
    before, types = scrape(m.metrics_port)
    for family, kind in [("mxfwd_connections_total", "counter"),
                         ("mxfwd_accepted_total", "counter"),
                         ("mxfwd_rejected_total", "counter"),
                         ("mxfwd_delivered_total", "counter"),
                         ("mxfwd_deferred_total", "counter"),
                         ("mxfwd_bounced_total", "counter"),
                         ("mxfwd_queue_messages", "gauge"),
                         ("mxfwd_queue_oldest_age_seconds", "gauge"),
                         ("mxfwd_dns_queries_total", "counter"),
                         ("mxfwd_dns_failures_total", "counter"),
                         ("mxfwd_tls_total", "counter"),
                         ("mxfwd_outbound_tls_total", "counter")]:
        assert types.get(family) == kind, (family, types.get(family))
    assert before["mxfwd_queue_messages"] == 0
    assert before["mxfwd_queue_oldest_age_seconds"] == 0
    # The version, the start time, every refusal reason at 0 already, and
    # the delivery delays' histogram.
    version = mxtest.run([mxtest.MXFWD, "--version"]).stdout.split()[1]
    assert before[("mxfwd_build_info", version)] == 1, before
    assert types["process_start_time_seconds"] == "gauge"
    assert abs(before["process_start_time_seconds"] - time.time()) < 60
    for reason in ("relay_denied", "unknown_user", "auth_spf", "auth_dmarc", "no_from",
                   "srs_bad_hash", "too_big", "hops"):
        assert before[("mxfwd_rejected_total", reason)] == 0, reason
    assert types["mxfwd_delivery_delay_seconds"] == "histogram"
    assert before["mxfwd_delivery_delay_seconds_count"] == 0
    assert before[("mxfwd_delivery_delay_seconds_bucket", "+Inf")] == 0

    # One message delivered, one refused for relaying, one STARTTLS.
    qid = send(m, "alice@alias.test")
    sink.wait(1)
    m.wait_log(rf"{qid}: removed")
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
    assert c.cmd("RCPT TO:<someone@elsewhere.test>").code == 554
    c.cmd("QUIT")
    c.close()
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    # Refused after DATA: SPF fails for the sender's domain.
    r = c.transaction("sender@spf-fail.test", ["alice@alias.test"], BODY)
    assert r.code == 550 and r.lines[0].startswith("5.7.23"), r
    c.cmd("RSET", expect=250)
    # A message without an author: counted under a reason of its own.
    c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
    c.cmd("RCPT TO:<alice@alias.test>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: nobody wrote this\r\n\r\nbody\r\n.\r\n")
    r = c.reply()
    assert r.code == 550 and "no From: header" in r.text, r
    c.cmd("RSET", expect=250)
    c.cmd("STARTTLS", expect=220)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    c.starttls(context=ctx)
    c.cmd("EHLO client.test", expect=250)
    c.cmd("QUIT")
    c.close()
    m.wait_log(r"TLS connection established from .*: TLSv1")

    after, _ = scrape(m.metrics_port)
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert moved["mxfwd_connections_total"] == 3, moved
    assert moved["mxfwd_accepted_total"] == 1, moved
    assert moved[("mxfwd_rejected_total", "relay_denied")] == 1, moved
    assert moved[("mxfwd_rejected_total", "auth_spf")] == 1, moved
    assert moved[("mxfwd_rejected_total", "no_from")] == 1, moved
    assert moved[("mxfwd_rejected_total", "auth_dmarc")] == 0, moved
    assert moved["mxfwd_delivered_total"] == 1, moved
    assert moved["mxfwd_deferred_total"] == 0 and moved["mxfwd_bounced_total"] == 0, moved
    assert moved["mxfwd_tls_total"] == 1, moved
    assert moved["mxfwd_outbound_transactions_total"] == 1, moved
    # The delivery went into the delays' histogram: under a minute.
    assert moved["mxfwd_delivery_delay_seconds_count"] == 1, moved
    assert moved[("mxfwd_delivery_delay_seconds_bucket", "60")] == 1, moved
    assert moved[("mxfwd_delivery_delay_seconds_bucket", "+Inf")] == 1, moved
    assert 0 <= moved["mxfwd_delivery_delay_seconds_sum"] < 60, moved
    # Three clients' names and the sender checks' lookups went to DNS.
    assert moved["mxfwd_dns_queries_total"] + moved["mxfwd_dns_cache_hits_total"] >= 3, moved
    assert after["mxfwd_queue_messages"] == 0

    # A message that waits: the queue's gauges show it, and its age.
    qid = send(m, "slow@alias.test")
    m.wait_log(rf"{qid}: to=<slow@dest\.test>, .* status=deferred")
    time.sleep(1.1)
    later, _ = scrape(m.metrics_port)
    assert later["mxfwd_queue_messages"] == 1, later
    assert later["mxfwd_queue_recipients"] == 1, later
    assert later["mxfwd_queue_oldest_age_seconds"] >= 1, later
    assert later["mxfwd_deferred_total"] - after["mxfwd_deferred_total"] == 1, later
    # `mxfwd stats` reads the same registry.
    stats = m.run("stats").stdout
    assert re.search(r"^queue_oldest_age_seconds +[1-9]", stats, re.M), stats
    assert re.search(r"^tls +1$", stats, re.M), stats


@test
def the_shipped_alerts_and_dashboard_read_metrics_that_exist():
    """etc/prometheus/mxfwd-alerts.yml and etc/grafana/mxfwd-dashboard.json
    parse, are shaped as Prometheus and Grafana want, and every metric they
    name is one a running mxfwd exports."""
    sink = mxtest.Sink()
    m = metered(sink)
    samples, types = scrape(m.metrics_port)
    exported = set(types) | {name if isinstance(name, str) else name[0] for name in samples}
    root = os.environ.get("MXFWD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
    r = subprocess.run([mxtest.DEBIAN_PYTHON, "-c",
                        "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), "
                        "sys.stdout)", os.path.join(root, "etc/prometheus/mxfwd-alerts.yml")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rules = json.loads(r.stdout)["groups"][0]["rules"]
    with open(os.path.join(root, "etc/grafana/mxfwd-dashboard.json")) as f:
        dashboard = json.load(f)
    exprs = []
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule
        assert rule["annotations"]["summary"], rule
        exprs.append(rule["expr"])
    assert dashboard["uid"] and dashboard["panels"], dashboard.keys()
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"], panel
        exprs += [t["expr"] for t in panel["targets"]]
    named = set()
    for expr in exprs:
        named |= set(re.findall(r"\b((?:mxfwd|process)_[a-z_]+)", expr))
    assert len(named) > 10, named
    for name in named:
        assert name in exported, (name, sorted(exported))


@test
def metrics_answers_only_get_metrics():
    sink = mxtest.Sink()
    m = metered(sink)
    port = m.metrics_port
    status, headers, body = http(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert status == 200 and body == "" and int(headers["content-length"]) > 100, headers
    status, _, body = http(port, b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n")
    assert status == 200 and "mxfwd_accepted_total 0" in body
    status, _, _ = http(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404
    status, _, _ = http(port, b"GET /metricsx HTTP/1.1\r\n\r\n")
    assert status == 404
    status, headers, _ = http(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert status == 405 and headers["allow"] == "GET, HEAD", headers
    status, _, _ = http(port, b"GET /metrics\r\n\r\n")
    assert status == 400
    status, _, _ = http(port, b"GET /metrics HTTP/2.0\r\n\r\n")
    assert status == 505
    # A head that never ends: refused once it is too long.
    status, _, _ = http(port, b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 9000 + b"\r\n")
    assert status == 431
    # A client that shuts its side once the request is sent gets it all.
    with socket.create_connection(("127.0.0.1", port), timeout=mxtest.TIMEOUT) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"mxfwd_accepted_total 0" in body
        assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) == len(body)
    # Bare LF line ends, and a request sent a byte at a time.
    with socket.create_connection(("127.0.0.1", port), timeout=mxtest.TIMEOUT) as s:
        for b in b"GET /metrics HTTP/1.0\n\n":
            s.send(bytes([b]))
        assert s.recv(100).startswith(b"HTTP/1.1 200 OK\r\n")


@test
def metrics_clients_are_bounded_and_never_hold_up_mail():
    sink = mxtest.Sink()
    m = metered(sink)
    idle = []
    # Clients that connect and say nothing take a place each...
    for _ in range(64):
        idle.append(socket.create_connection(("127.0.0.1", m.metrics_port), timeout=5))
    time.sleep(0.2)
    # ... and past the limit, a connection is closed at once.
    with socket.create_connection(("127.0.0.1", m.metrics_port), timeout=5) as extra:
        try:
            extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            answer = extra.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""  # closed with the request unread: a reset
        assert answer == b"", answer
    # Meanwhile SMTP is served as ever, and so is the control socket.
    qid = send(m, "alice@alias.test")
    sink.wait(1)
    assert m.run("stats").returncode == 0
    # A client that sends no request in 5 seconds is closed: the places
    # come back by themselves.
    start = time.monotonic()
    for s in idle:
        s.settimeout(10)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        s.close()
    assert 4 < time.monotonic() - start < 8, time.monotonic() - start
    samples, _ = scrape(m.metrics_port)
    assert samples["mxfwd_accepted_total"] == 1, qid


@test
def metrics_listen_that_cannot_bind_stops_the_start():
    blocker = socket.socket()
    mxtest.on_cleanup(blocker.close)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    m = mxtest.Mxfwd(forwards=FORWARDS, config={"metrics_listen": f"127.0.0.1:{port}"},
                     start=False)
    r = mxtest.run([mxtest.MXFWD, "serve", "-c", m.conf])
    assert r.returncode == 1, r
    assert f"fatal: cannot listen on 127.0.0.1:{port} (metrics_listen): address already in use" \
        in r.stderr, r.stderr


# ---- syslog and debug lines -----------------------------------------------------

SYSLOG_LINE = re.compile(r"^<(\d+)>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) (mxfwd/\w+\[(\d+)\]: .*)$")


def syslog_lines(sock, until, timeout=mxtest.TIMEOUT):
    """Datagrams until one whose line matches the regular expression until:
    [(priority, line)]."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dgram = receive(sock, timeout=max(0.01, deadline - time.monotonic()))
        m = SYSLOG_LINE.match(dgram)
        assert m, f"not a syslog datagram: {dgram!r}"
        got.append((int(m.group(1)), m.group(3)))
        if re.search(until, m.group(3)):
            return got
    raise AssertionError(f"no syslog line /{until}/ in {got}")


@test
def log_syslog_sends_the_same_lines_with_facility_mail():
    sock, path = datagram_socket()
    m = mxtest.Mxfwd(forwards=FORWARDS, config={"log": "syslog"}, start=False)
    m.start(env={"MXFWD_SYSLOG_SOCKET": path})
    pid = m.proc.pid
    lines = syslog_lines(sock, r"mxfwd started")
    # mail.info is <22> (facility 2, level 6), the line as on stderr.
    assert (22, f"mxfwd/master[{pid}]: listening on 127.0.0.1:{m.port}") in lines, lines
    assert all(p == 22 for p, _ in lines), lines

    # An error (a broken table on SIGHUP) is mail.err, <19>, prefixed.
    table = m.settings["forward_table"]
    with open(table, "w") as f:
        f.write("broken@alias.test\n")
    m.proc.send_signal(signal.SIGHUP)
    lines = syslog_lines(sock, r"not reloaded")
    assert (19, f"mxfwd/master[{pid}]: error: {table}:1: alias broken@alias.test has no destinations") \
        in lines, lines
    assert (22, f"mxfwd/master[{pid}]: reloading on SIGHUP") in lines, lines
    assert m.stop() == 0
    lines = syslog_lines(sock, r"mxfwd stopped")
    assert (22, f"mxfwd/master[{pid}]: mxfwd stopped") in lines
    # Nothing went to stderr.
    assert m.log() == "", m.log()


@test
def log_syslog_without_a_syslog_daemon_falls_back_to_stderr():
    d = mxtest.tempdir()
    m = mxtest.Mxfwd(forwards=FORWARDS, config={"log": "syslog"}, start=False)
    m.start(env={"MXFWD_SYSLOG_SOCKET": os.path.join(d, "no-syslogd")})
    m.wait_log(rf"^mxfwd/master\[{m.proc.pid}\]: listening on 127\.0\.0\.1:{m.port}$")


@test
def serve_v_adds_debug_lines():
    m = mxtest.Mxfwd(forwards=FORWARDS, args=("-v",))
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("QUIT")
    m.wait_log(r"^mxfwd/smtpd\[\d+\]: debug: unknown\[127\.0\.0\.1\]: < EHLO client\.test$")
    quiet = mxtest.Mxfwd(forwards=FORWARDS)
    c = quiet.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("QUIT")
    quiet.wait_log(r"disconnect")
    assert "debug:" not in quiet.log(), quiet.log()


# ---- open files ----------------------------------------------------------------

def nofile_limits(pid):
    """The running process's open-files limits: (soft, hard)."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open-files line in /proc/PID/limits")


def start_with_nofile(config, soft, hard):
    m = mxtest.Mxfwd(forwards=FORWARDS, config=config, start=False)
    m.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
    return m


WARNING = "open files limited to"


@test
def the_open_files_limit_is_raised_to_what_the_configuration_needs():
    # 2 x 1000 sessions + 3 x 50 deliveries + 128.
    need = 2 * 1000 + 3 * 50 + 128
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard < need:
        return  # this machine cannot lend the room; the next test covers it
    m = start_with_nofile({"max_connections": 1000, "max_deliveries": 50}, 256, hard)
    assert nofile_limits(m.proc.pid) == (need, hard)
    # Mail flows, and nothing was said about open files.
    m.client().transaction("sender@origin.test", ["alice@alias.test"], BODY)
    assert WARNING not in m.log(), m.log()
    m.stop()


@test
def a_hard_limit_below_the_need_is_warned_about_once():
    m = start_with_nofile({"max_connections": 1000, "max_deliveries": 50}, 512, 1024)
    soft, hard = nofile_limits(m.proc.pid)
    if hard >= 2278:
        # Root with CAP_SYS_RESOURCE raised the hard limit itself: no word.
        assert soft == 2278 and WARNING not in m.log(), m.log()
    else:
        # Up to the hard limit, and one warning that says what is short.
        assert (soft, hard) == (1024, 1024)
        lines = [l for l in m.log().splitlines() if WARNING in l]
        assert len(lines) == 1, m.log()
        assert ("open files limited to 1024 by the hard limit, below the 2278 that "
                "max_connections = 1000 and max_deliveries = 50 may need") in lines[0], lines
    m.stop()


@test
def a_limit_that_fits_is_left_alone():
    m = start_with_nofile({"max_connections": 100, "max_deliveries": 10}, 4096, 4096)
    assert nofile_limits(m.proc.pid) == (4096, 4096)
    assert WARNING not in m.log(), m.log()
    m.stop()


mxtest.main()
