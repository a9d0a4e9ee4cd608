#!/usr/bin/python3
"""An upstream ARC sealer for the unit tests: python3-dkim's arc_sign.

Usage: ext_arc_sign.py KEY.pem SELECTOR DOMAIN SRV_ID < MESSAGE > SEALED

The message must carry an Authentication-Results field of SRV_ID (what a
sealer seals).  Writes the new ARC set followed by the message.  The key
is an RSA key in any PEM form (python3-dkim reads PKCS#1 only: openssl
converts it).  Run it with Debian's /usr/bin/python3.
"""
import subprocess
import sys

import dkim


def main():
    keyfile, selector, domain, srv_id = sys.argv[1:5]
    key = subprocess.run(["openssl", "rsa", "-in", keyfile, "-traditional"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    message = sys.stdin.buffer.read()
    headers = dkim.arc_sign(message, selector.encode(), domain.encode(), key, srv_id.encode(),
                            linesep=b"\r\n")
    if not headers:
        sys.exit("arc_sign made no ARC set")
    sys.stdout.buffer.write(b"".join(headers) + message)


if __name__ == "__main__":
    main()
