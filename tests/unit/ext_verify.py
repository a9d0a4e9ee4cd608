#!/usr/bin/python3
"""An independent verifier for the unit tests: python3-dkim (Debian's).

Usage: ext_verify.py dkim|arc NAME=RECORD... < MESSAGE

Keys come from the arguments through python3-dkim's dnsfunc hook, never
from DNS.  Prints, for dkim, one line per DKIM-Signature, top to bottom:
"pass" or "fail"; for arc, "cv=none|pass|fail" and the reason, then one
line per instance, newest first: "i=N ams=pass|fail as=pass|fail".
Run it with Debian's /usr/bin/python3, whose dkim module this is.
"""
import sys

import dkim


def main():
    mode = sys.argv[1]
    keys = {}
    for arg in sys.argv[2:]:
        name, _, record = arg.partition("=")
        keys[name.lower().rstrip(".")] = record.encode()

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return keys.get(name.lower().rstrip("."))

    message = sys.stdin.buffer.read()
    if mode == "dkim":
        d = dkim.DKIM(message)
        count = len([1 for n, _ in d.headers if n.lower() == b"dkim-signature"])
        for i in range(count):
            try:
                ok = dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc)
            except dkim.DKIMException as e:
                print("fail", e)
                continue
            print("pass" if ok else "fail")
    else:
        cv, results, reason = dkim.arc_verify(message, dnsfunc=dnsfunc)
        cv = cv.decode() if isinstance(cv, bytes) else str(cv)
        print("cv=%s %s" % (cv, reason))
        for r in results:
            print("i=%d ams=%s as=%s" % (r["instance"], "pass" if r.get("ams-valid") else "fail",
                                        "pass" if r.get("as-valid") else "fail"))


if __name__ == "__main__":
    main()
