"""scripted_milter - a mail filter speaking the Sendmail milter protocol
(version 6) that does what a test tells it, for the cases real milters do
not produce on demand (docs/milter.md).

    m = ScriptedMilter({"R": "reject", "E": [("h", "X-Test", "yes"), "a"]})
    ... mxfwd with milter = m.spec ...
    m.sessions[0].commands   # [(cmd, data, macros), ...] as the MTA sent them

A script maps a command byte ("C" connect, "H" HELO, "M" MAIL, "R" RCPT,
"T" DATA, "L" header, "N" end of headers, "B" body chunk, "E" end of
message) to what the filter does when it gets it:

    "c", "a", "r", "t", "d", "f", "p"      that reply
    ("y", "554 5.7.1 text")               a reply code and text
    ("h", NAME, VALUE) ("i", IDX, NAME, VALUE) ("m", IDX, NAME, VALUE)
    ("+", ADDR) ("-", ADDR) ("e", ADDR) ("q", REASON) ("b", BYTES)
                                          changes, before the final reply
    ("sleep", SECONDS)                    wait first (for a command left
                                          unanswered: wait, the first time)
    "close"                               close the connection, no reply
    ("raw", BYTES)                        send these bytes as they are
    a list                                each of them in turn
    a callable(session, data)             returns one of the above

A command without an entry gets "c" (unless the negotiation said it gets
no reply).  actions and protocol are what the filter answers in the
negotiation (the steps it skips, SMFIP_NR_* for those it leaves
unanswered).
"""

import os
import socket
import struct
import threading
import time

import mxtest

# SMFIF_*, SMFIP_*
ACT_ALL = 0x1FF
NOCONNECT, NOHELO, NOMAIL, NORCPT, NOBODY, NOHDRS, NOEOH = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40
NR_HDR, NODATA, SKIP = 0x80, 0x200, 0x400
NR_CONN, NR_HELO, NR_MAIL, NR_RCPT, NR_DATA, NR_EOH, NR_BODY = (
    0x1000, 0x2000, 0x4000, 0x8000, 0x10000, 0x40000, 0x80000)
HDR_LEADSPC = 0x100000

# The commands each no-reply flag covers.
_NO_REPLY = {"C": NR_CONN, "H": NR_HELO, "M": NR_MAIL, "R": NR_RCPT, "T": NR_DATA,
             "L": NR_HDR, "N": NR_EOH, "B": NR_BODY}


def packet(cmd, data=b""):
    if isinstance(cmd, str):
        cmd = cmd.encode()
    return struct.pack(">I", len(data) + 1) + cmd + data


def _z(*strings):
    return b"".join((s.encode() if isinstance(s, str) else s) + b"\0" for s in strings)


class Session:
    """What one MTA connection sent: commands [(cmd, data, macros)]."""

    def __init__(self):
        self.commands = []
        self.macros = {}      # stage -> {name: value}, the last sent for each
        self.version = None
        self.offered = None   # (actions, protocol) the MTA offered
        self.closed_by_mta = False

    def cmds(self):
        return "".join(c for c, _, _ in self.commands)

    def headers(self):
        """The header fields the MTA sent, [(name, value)]."""
        out = []
        for c, data, _ in self.commands:
            if c == "L":
                name, value = data.split(b"\0")[:2]
                out.append((name.decode(), value.decode()))
        return out

    def body(self):
        return b"".join(d for c, d, _ in self.commands if c == "B")


class ScriptedMilter:
    def __init__(self, script=None, actions=ACT_ALL, protocol=0, version=6, unix=False):
        self.script = dict(script or {})
        self.actions = actions
        self.protocol = protocol
        self.version = version
        self.sessions = []
        self.lock = threading.Lock()
        if unix:
            self.path = os.path.join(mxtest.tempdir(), "milter.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(self.path)
            self.spec = f"unix:{self.path}"
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.spec = f"inet:127.0.0.1:{self.port}"
        self.sock.listen(64)
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        mxtest.on_cleanup(self.close)

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=mxtest.TIMEOUT)

    def wait_sessions(self, n, timeout=mxtest.TIMEOUT):
        mxtest.wait_until(lambda: len(self.sessions) >= n, timeout, what=f"{n} milter sessions")
        return self.sessions

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            s = Session()
            with self.lock:
                self.sessions.append(s)
            threading.Thread(target=self._serve, args=(conn, s), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError()
            data += chunk
        return data

    def _serve(self, conn, s):
        conn.settimeout(60)
        pending_macros = {}
        try:
            while True:
                length = struct.unpack(">I", self._read(conn, 4))[0]
                body = self._read(conn, length)
                cmd, data = chr(body[0]), body[1:]
                if cmd == "O":
                    s.version, acts, proto = struct.unpack(">III", data[:12])
                    s.offered = (acts, proto)
                    conn.sendall(packet("O", struct.pack(">III", self.version, self.actions,
                                                         self.protocol)))
                    continue
                if cmd == "D":
                    parts = data[1:].split(b"\0")
                    names = dict(zip([p.decode() for p in parts[0::2]],
                                     [p.decode() for p in parts[1::2]]))
                    names.pop("", None)
                    pending_macros = names
                    s.macros[chr(data[0])] = names
                    continue
                s.commands.append((cmd, data, pending_macros))
                pending_macros = {}
                if cmd == "Q":
                    s.closed_by_mta = True
                    return
                if cmd in "AK":
                    continue
                if self.protocol & _NO_REPLY.get(cmd, 0):
                    # Unanswered: only a pause may be scripted for it.
                    what = self.script.get(cmd)
                    if isinstance(what, tuple) and what[0] == "sleep":
                        time.sleep(what[1])
                        self.script.pop(cmd)
                    continue
                if not self._act(conn, s, self.script.get(cmd, "c"), data):
                    return
        except (EOFError, OSError):
            s.closed_by_mta = True
        finally:
            conn.close()

    def _act(self, conn, s, what, data):
        """Do what the script says; False once the connection is closed."""
        if callable(what):
            what = what(s, data)
        if isinstance(what, list):
            for w in what:
                if not self._act(conn, s, w, data):
                    return False
            return True
        if what == "close":
            conn.close()
            return False
        if isinstance(what, str):
            conn.sendall(packet(what))
            return True
        kind, args = what[0], what[1:]
        if kind == "sleep":
            time.sleep(args[0])
        elif kind == "raw":
            conn.sendall(args[0])
        elif kind in ("y", "q", "+", "-"):
            conn.sendall(packet(kind, _z(args[0])))
        elif kind == "e":
            conn.sendall(packet(kind, _z(*args)))
        elif kind == "h":
            conn.sendall(packet(kind, _z(args[0], args[1])))
        elif kind in ("i", "m"):
            conn.sendall(packet(kind, struct.pack(">I", args[0]) + _z(args[1], args[2])))
        elif kind == "b":
            conn.sendall(packet(kind, args[0]))
        else:
            raise ValueError(f"unknown script step {what!r}")
        return True
