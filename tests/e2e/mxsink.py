"""mxsink - the SMTP sink of the end-to-end tests (mxtest.Sink): an SMTP
server on a loopback port that records every transaction byte for byte,
with scripted replies, TLS and DSN extensions as a test asks.  Part of
the harness (tests/e2e/mxtest.py, which imports it); its own file for
size."""

import os
import re
import socket
import ssl
import threading
import time

from mxtest import TIMEOUT, on_cleanup, wait_until

class Transaction:
    def __init__(self, helo, tls, session=0):
        self.helo = helo
        self.tls = tls         # the TLS version ("TLSv1.3"), or False
        self.session = session # which connection (1, 2, ...) it came on
        self.mail_from = None
        self.mail_params = ""
        self.rcpts = []        # accepted recipients
        self.rcpt_params = {}  # recipient -> the parameters of its RCPT ("NOTIFY=... ORCPT=...")
        self.refused = []      # recipients answered with 4xx/5xx
        self.raw = b""         # DATA bytes as sent on the wire, before the final dot
        self.data = b""        # the same, dot-unstuffed: the message
        self.reads = set()     # socket reads that brought MAIL, RCPT and DATA

    def __repr__(self):
        return f"Transaction(from={self.mail_from!r}, rcpts={self.rcpts!r}, {len(self.data)} bytes)"


class Sink:
    """An SMTP server that records every transaction byte for byte.

    replies: {recipient address (lowercase): "450 4.2.0 try later"} answers
    RCPT for chosen recipients; data_reply answers the final dot;
    tls: (cert, key) to offer STARTTLS; ehlo_extensions to advertise.

    For testing clients: a reply value may be a list, used one per attempt
    (then the recipient is accepted); data_reply too.  Any 421 reply is
    followed by closing the connection.  greeting, ehlo_reply (refuses
    EHLO), starttls_reply (refuses STARTTLS) and rset_reply replace those
    replies, mail_reply refuses MAIL (a string or a list, like replies);
    tls_break answers STARTTLS with 220 and then garbage instead
    of a handshake; stall ("greeting", "ehlo", "mail", "rcpt", "data",
    "body", "dot") stops answering (or, for "body", reading) at that point; host binds another loopback
    address.  Counters: connections, max_active (sessions at once), rsets,
    quits; attempts lists every transaction begun, transactions those that
    were accepted.
    """

    def __init__(self, replies=None, data_reply="250 2.0.0 Ok: queued", tls=None,
                 extensions=("PIPELINING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES",
                             "SMTPUTF8"), port=None, hostname="sink.test", host="127.0.0.1",
                 greeting=None, ehlo_reply=None, starttls_reply=None, rset_reply=None,
                 tls_break=False, stall=None, mail_reply=None, tls_versions=None):
        self.replies = {k.lower(): (list(v) if isinstance(v, (list, tuple)) else v)
                        for k, v in (replies or {}).items()}
        self.data_reply = list(data_reply) if isinstance(data_reply, (list, tuple)) else data_reply
        self.extensions = list(extensions)
        self.hostname = hostname
        self.host = host
        self.greeting = greeting or f"220 {hostname} ESMTP sink"
        self.ehlo_reply = ehlo_reply
        self.starttls_reply = starttls_reply
        self.rset_reply = rset_reply
        self.mail_reply = list(mail_reply) if isinstance(mail_reply, (list, tuple)) else mail_reply
        self.tls_break = tls_break
        self.stall = stall
        self.tls_context = None
        if tls:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(*tls)
            if tls_versions:
                # An old server: only these versions (ssl.TLSVersion), and
                # the ciphers and SHA-1 signatures they need.
                self.tls_context.minimum_version, self.tls_context.maximum_version = tls_versions
                self.tls_context.set_ciphers("DEFAULT:@SECLEVEL=0")
        self.transactions = []
        self.attempts = []
        self.connections = 0
        self.max_active = 0    # most sessions open at once
        self._open = set()     # streams of the sessions open now
        self.rsets = 0
        self.quits = 0
        self.lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(128)
        self._stop = False
        self._threads = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()
        on_cleanup(self.close)

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._acceptor.join(timeout=TIMEOUT)

    def wait(self, count, timeout=TIMEOUT):
        """Wait until count transactions have completed; returns them."""
        wait_until(lambda: len(self.transactions) >= count, timeout,
                   what=f"{count} transactions at the sink (have {len(self.transactions)})")
        return self.transactions

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._session, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _session(self, conn):
        conn.settimeout(30)
        # Replies to a pipelined batch go out one write each: without this,
        # Nagle holds each back for the client's delayed ACK (40 ms).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = _SinkStream(conn)
        with self.lock:
            f.number = self.connections
            # A client that closes one session and opens the next has
            # already sent its FIN when the next is accepted, but the
            # thread of the old session may not have seen it yet: count
            # only the sessions whose peer is still there.
            self._open = {o for o in self._open if not o.peer_closed()}
            self._open.add(f)
            self.max_active = max(self.max_active, len(self._open))
        try:
            self._converse(f)
        except (OSError, EOFError, ssl.SSLError, _SinkClose):
            pass
        finally:
            f.close()
            with self.lock:
                self._open.discard(f)

    def _next_reply(self, value):
        """A reply from a fixed string or a list used one per attempt."""
        if isinstance(value, list):
            with self.lock:
                return value.pop(0) if value else None
        return value

    def _answer(self, f, reply):
        f.write(reply + "\r\n")
        if reply.startswith("421"):
            raise _SinkClose()

    def _stall(self, f, stage):
        """Stop answering at stage: read and drop until the client leaves."""
        if self.stall != stage:
            return
        while not self._stop:
            f.discard()

    def _converse(self, f):
        self._stall(f, "greeting")
        self._answer(f, self.greeting)
        helo, tls, tx = None, False, None
        while True:
            line = f.readline()
            verb = line.split(b" ", 1)[0].upper().decode("ascii", "replace")
            arg = line[len(verb) + 1:].decode("utf-8", "replace")
            if verb in ("EHLO", "HELO"):
                helo = arg
                tx = None
                self._stall(f, "ehlo")
                if verb == "EHLO" and self.ehlo_reply:
                    self._answer(f, self.ehlo_reply)
                    continue
                if verb == "HELO":
                    f.write(f"250 {self.hostname}\r\n")
                    continue
                exts = list(self.extensions)
                if self.tls_context and not tls:
                    exts.append("STARTTLS")
                lines = [self.hostname] + exts
                f.write("".join(f"250{'-' if i < len(lines) - 1 else ' '}{l}\r\n"
                                for i, l in enumerate(lines)))
            elif verb == "STARTTLS" and self.tls_context and not tls:
                if self.starttls_reply:
                    self._answer(f, self.starttls_reply)
                    continue
                f.write("220 2.0.0 Ready to start TLS\r\n")
                if self.tls_break:
                    f.write("this is not a TLS handshake\r\n")
                    return
                tls, helo, tx = f.starttls(self.tls_context), None, None
            elif verb == "MAIL":
                m = re.match(r"(?i)FROM:<([^>]*)>(.*)", arg)
                tx = Transaction(helo, tls, f.number)
                tx.mail_from, tx.mail_params = m.group(1), m.group(2).strip()
                tx.reads.add(f.line_read)
                with self.lock:
                    self.attempts.append(tx)
                self._stall(f, "mail")
                reply = self._next_reply(self.mail_reply)
                if reply and reply[0] in "45":
                    tx = None
                    self._answer(f, reply)
                    continue
                f.write("250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                m = re.match(r"(?i)TO:<([^>]*)>(.*)", arg)
                addr = m.group(1)
                if not tx:
                    f.write("503 5.5.1 Error: need MAIL command\r\n")
                    continue
                tx.reads.add(f.line_read)
                self._stall(f, "rcpt")
                reply = self._next_reply(self.replies.get(addr.lower()))
                if reply and reply[0] in "45":
                    tx.refused.append(addr)
                    self._answer(f, reply)
                else:
                    tx.rcpts.append(addr)
                    tx.rcpt_params[addr] = m.group(2).strip()
                    f.write("250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                if tx:
                    tx.reads.add(f.line_read)
                if not tx or not tx.rcpts:
                    f.write("554 5.5.1 No valid recipients\r\n")
                    continue
                self._stall(f, "data")
                f.write("354 End data with <CR><LF>.<CR><LF>\r\n")
                if self.stall == "body":
                    # Read nothing more: the client's writes back up.
                    deadline = time.monotonic() + 3 * TIMEOUT
                    while not self._stop and time.monotonic() < deadline:
                        time.sleep(0.05)
                    return
                raw = f.read_data()
                tx.raw = raw
                tx.data = _unstuff(raw)
                self._stall(f, "dot")
                reply = self._next_reply(self.data_reply) or "250 2.0.0 Ok: queued"
                if reply.startswith("2"):
                    with self.lock:
                        self.transactions.append(tx)
                tx = None
                self._answer(f, reply)
            elif verb == "RSET":
                tx = None
                with self.lock:
                    self.rsets += 1
                self._answer(f, self.rset_reply or "250 2.0.0 Ok")
            elif verb == "NOOP":
                f.write("250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                with self.lock:
                    self.quits += 1
                f.write("221 2.0.0 Bye\r\n")
                return
            else:
                f.write("502 5.5.2 Command not recognized\r\n")


def _unstuff(raw):
    """Remove the dot-stuffing of DATA bytes (RFC 5321 4.5.2)."""
    out = []
    for line in raw.split(b"\r\n"):
        out.append(line[1:] if line.startswith(b".") else line)
    return b"\r\n".join(out)


class _SinkClose(Exception):
    """The sink ends the session (after a 421)."""


class _SinkStream:
    def __init__(self, conn):
        self.conn = conn
        self.buf = b""
        self.number = 0     # the session's number at the sink
        self.reads = 0      # socket reads so far
        self.line_read = 0  # the read that completed the last line returned

    def starttls(self, context):
        self.conn = context.wrap_socket(self.conn, server_side=True)
        return self.conn.version()

    def peer_closed(self):
        """True once the client has closed its end (or this end is closed).
        Looks without reading; a TLS session counts as open."""
        if isinstance(self.conn, ssl.SSLSocket):
            return False
        try:
            if self.conn.fileno() < 0:
                return True
            # A non-blocking peek through a duplicate of the descriptor: the
            # session's own thread may take the bytes at any moment, and a
            # peek through self.conn (30 s timeout) would then wait, holding
            # the sink's lock, which that thread needs next.
            with socket.socket(fileno=os.dup(self.conn.fileno())) as peek:
                peek.setblocking(False)
                return peek.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    def write(self, text):
        self.conn.sendall(text.encode() if isinstance(text, str) else text)

    def _fill(self):
        chunk = self.conn.recv(65536)
        if not chunk:
            raise EOFError()
        self.reads += 1
        self.buf += chunk

    def discard(self):
        """Read and drop whatever comes; EOFError at the end."""
        self.buf = b""
        self._fill()

    def readline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.line_read = self.reads
        return line

    def read_data(self):
        """DATA bytes up to CRLF.CRLF, without the final dot line."""
        while b"\r\n.\r\n" not in self.buf:
            if self.buf.startswith(b".\r\n"):  # an empty message
                self.buf = self.buf[3:]
                return b""
            self._fill()
        data, self.buf = self.buf.split(b"\r\n.\r\n", 1)
        return data + b"\r\n"

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass
