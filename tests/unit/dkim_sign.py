#!/usr/bin/python3
"""Sign test messages with real DKIM signers from Debian, at test time.

Usage: dkim_sign.py OUTDIR

Makes fresh keys (openssl for RSA, PyNaCl for Ed25519), signs messages with
python3-dkim: its command-line signer /usr/bin/dkimsign for two of them, its
library for the rest (one process, and the command has no option for l=),
and writes
OUTDIR/manifest: one line per case,

    NAME <TAB> KEY-RECORD-NAME <TAB> KEY-RECORD-TEXT <TAB> EXPECTED <TAB> FILE

EXPECTED is what a verifier must say: pass, fail or permerror.  Run it with
Debian's /usr/bin/python3, whose dkim module this is.
"""
import base64
import os
import subprocess
import sys

import dkim
import nacl.signing

DOMAIN = "example.net"

# Folded headers, white space runs, trailing blanks and empty lines at the
# end: what canonicalization is about.
MESSAGE = (
    b"From: Alice Example <alice@example.net>\r\n"
    b"To: bob@alias.test\r\n"
    b"Subject:  a   test\t message \r\n"
    b"  folded onto a second line\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <t1@example.net>\r\n"
    b"\r\n"
    b"Hello Bob,  \r\n"
    b"\r\n"
    b"  lines with\ttabs and   runs of spaces\t\r\n"
    b".a line that was dot-stuffed on the wire\r\n"
    + b"0123456789" * 30 + b"\r\n"
    b"\r\n"
    b"\r\n"
)


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout


def rsa_key(outdir, name, bits):
    path = os.path.join(outdir, name + ".pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
            "-out", path)
    der = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
    return path, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def ed25519_key(outdir, name):
    key = nacl.signing.SigningKey.generate()
    path = os.path.join(outdir, name + ".key")
    with open(path, "wb") as f:
        f.write(base64.b64encode(bytes(key)))
    pub = base64.b64encode(bytes(key.verify_key)).decode()
    return path, "v=DKIM1; k=ed25519; p=" + pub


def dkimsign(selector, keyfile, hcanon, bcanon, alg, message=MESSAGE):
    """The dkimsign command, as an administrator would run it."""
    return subprocess.run(
        ["/usr/bin/python3", "/usr/bin/dkimsign", "--hcanon", hcanon, "--bcanon", bcanon,
         "--signalg", alg, selector, DOMAIN, keyfile],
        input=message, check=True, stdout=subprocess.PIPE).stdout


def main():
    outdir = sys.argv[1]
    cases = []

    rsa2048, rec2048 = rsa_key(outdir, "rsa2048", 2048)
    rsa1024, rec1024 = rsa_key(outdir, "rsa1024", 1024)
    ed, reced = ed25519_key(outdir, "ed")

    cases.append(("cli-rsa2048", "r2048", rec2048, "pass",
                  dkimsign("r2048", rsa2048, "relaxed", "simple", "rsa-sha256")))
    cases.append(("cli-ed25519", "ed", reced, "pass",
                  dkimsign("ed", ed, "simple", "relaxed", "ed25519-sha256")))
    # Every canonicalization pair, through the same signer's library (one
    # process instead of one per signature).
    for hc in ("simple", "relaxed"):
        for bc in ("simple", "relaxed"):
            for alg, sel, keyfile, rec in ((b"rsa-sha256", "r2048", rsa2048, rec2048),
                                           (b"ed25519-sha256", "ed", ed, reced)):
                with open(keyfile, "rb") as f:
                    sig = dkim.sign(MESSAGE, sel.encode(), DOMAIN.encode(), f.read(),
                                    canonicalize=(hc.encode(), bc.encode()),
                                    signature_algorithm=alg)
                cases.append(("%s-%s-%s" % (sel, hc, bc), sel, rec, "pass", sig + MESSAGE))
    cases.append(("rsa1024", "r1024", rec1024, "pass",
                  dkimsign("r1024", rsa1024, "relaxed", "simple", "rsa-sha256")))

    # l=: the signer covers the body it saw; text appended later (a list
    # footer) is outside the signature, which still verifies.
    with open(rsa2048, "rb") as f:
        sig = dkim.sign(MESSAGE, b"r2048", DOMAIN.encode(), f.read(),
                        canonicalize=(b"relaxed", b"relaxed"), length=True)
    cases.append(("rsa-length", "r2048", rec2048, "pass",
                  sig + MESSAGE + b"-- \r\nappended footer\r\n"))

    # A signature made, then the body changed: fail.
    signed = [c for c in cases if c[0] == "ed-relaxed-relaxed"][0][4]
    cases.append(("ed25519-tampered", "ed", reced, "fail",
                  signed.replace(b"Hello Bob", b"Hello Eve")))

    # A key under 1024 bits: RFC 8301 says never valid.
    rsa768, rec768 = rsa_key(outdir, "rsa768", 768)
    with open(rsa768, "rb") as f:
        sig = dkim.sign(MESSAGE, b"r768", DOMAIN.encode(), f.read())
    cases.append(("rsa768", "r768", rec768, "permerror", sig + MESSAGE))

    with open(os.path.join(outdir, "manifest"), "w") as m:
        for name, selector, record, expected, data in cases:
            path = os.path.join(outdir, name + ".eml")
            with open(path, "wb") as f:
                f.write(data)
            m.write("%s\t%s._domainkey.%s\t%s\t%s\t%s\n"
                    % (name, selector, DOMAIN, record, expected, path))


if __name__ == "__main__":
    main()
