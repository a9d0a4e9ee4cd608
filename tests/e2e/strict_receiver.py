#!/usr/bin/python3
"""A strict receiver's verdict on one forwarded message, as a big mailbox
provider judges it (RFC 7208, RFC 6376, RFC 8617, RFC 7489 with relaxed
alignment, Gmail's published rules for what follows a DMARC fail).

    strict_receiver.py --dns-port P --client-ip IP --mail-from ADDR < message

Run with Debian's python3 (python3-dkim, python3-dnspython).  Every DNS
question goes to the test's dnsmasq on 127.0.0.1:P; nothing leaves
loopback.  Prints one JSON object:

    {"spf": "pass", "spf_domain": "fwd.test",
     "dkim": [{"d": "sign.test", "ok": true}, ...],
     "arc": "pass" | "fail" | "none",
     "from_domain": "origin.test", "policy": "reject" | ... | null,
     "dmarc": "pass" | "fail" | "none", "aligned_by": "dkim" | "spf" | null,
     "fate": "inbox" | "spam" | "rejected"}

The SPF evaluator knows the mechanisms the tests publish (ip4, ip6, a,
mx, include, all with its qualifiers); it is a test's receiver, not a
library.  The organizational domain is the last two labels: the test
zones are all under a one-label suffix.
"""

import argparse
import email.parser
import email.utils
import ipaddress
import json
import sys

import dkim
import dns.resolver

RESOLVER = dns.resolver.Resolver(configure=False)


def txt(name):
    try:
        answer = RESOLVER.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def addresses(name):
    out = []
    for rtype in ("A", "AAAA"):
        try:
            out += [ipaddress.ip_address(r.to_text()) for r in RESOLVER.resolve(name, rtype)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            pass
    return out


def spf_eval(domain, ip, depth=0):
    """The SPF result of ip for domain: pass, fail, softfail, neutral,
    none or permerror."""
    if depth > 10:
        return "permerror"
    records = [r for r in txt(domain) if r.lower().startswith("v=spf1")]
    if not records:
        return "none"
    if len(records) > 1:
        return "permerror"
    qualifiers = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
    for term in records[0].split()[1:]:
        q = "+"
        if term[0] in qualifiers:
            q, term = term[0], term[1:]
        name, _, arg = term.partition(":")
        name = name.lower()
        if name == "all":
            match = True
        elif name in ("ip4", "ip6"):
            match = ip in ipaddress.ip_network(arg, strict=False)
        elif name == "a":
            match = ip in addresses(arg or domain)
        elif name == "mx":
            try:
                hosts = [r.exchange.to_text().rstrip(".")
                         for r in RESOLVER.resolve(arg or domain, "MX")]
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                hosts = []
            match = any(ip in addresses(h) for h in hosts)
        elif name == "include":
            match = spf_eval(arg, ip, depth + 1) == "pass"
        else:
            continue  # redirect=, exp= and the rest: not published by the tests
        if match:
            return qualifiers[q]
    return "neutral"


def org(domain):
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


def dmarc_record(domain):
    """(tags of the record that applies, whether it is the org domain's)."""
    for name, inherited in ((domain, False), (org(domain), True)):
        for r in txt("_dmarc." + name):
            if r.lower().replace(" ", "").startswith("v=dmarc1"):
                tags = {}
                for part in r.split(";"):
                    k, _, v = part.strip().partition("=")
                    if k:
                        tags[k.strip().lower()] = v.strip().lower()
                return tags, inherited and name != domain
        if name == org(domain):
            break
    return None, False


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    records = txt(name.rstrip("."))
    return records[0].encode() if records else b""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dns-port", type=int, required=True)
    ap.add_argument("--client-ip", required=True)
    ap.add_argument("--mail-from", required=True)
    args = ap.parse_args()
    RESOLVER.nameservers = ["127.0.0.1"]
    RESOLVER.port = args.dns_port
    message = sys.stdin.buffer.read()
    out = {}

    spf_domain = args.mail_from.rpartition("@")[2].lower()
    out["spf_domain"] = spf_domain
    out["spf"] = spf_eval(spf_domain, ipaddress.ip_address(args.client_ip)) if spf_domain else "none"

    headers = email.parser.BytesHeaderParser().parsebytes(message)
    sigs = headers.get_all("DKIM-Signature") or []
    out["dkim"] = []
    for i in range(len(sigs)):
        d = dkim.DKIM(message)
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException:
            ok = False
        tags = dict(t.strip().split("=", 1) for t in
                    "".join(str(sigs[i]).split()).split(";") if "=" in t)
        out["dkim"].append({"d": tags.get("d", "").lower(), "ok": bool(ok)})

    if headers.get_all("ARC-Seal"):
        cv, _, _ = dkim.arc_verify(message, dnsfunc=dnsfunc)
        out["arc"] = cv.decode() if isinstance(cv, bytes) else str(cv)
    else:
        out["arc"] = "none"

    froms = headers.get_all("From") or []
    pairs = email.utils.getaddresses(froms)
    from_domain = pairs[0][1].rpartition("@")[2].lower() if len(pairs) == 1 else ""
    out["from_domain"] = from_domain
    tags, inherited = dmarc_record(from_domain) if from_domain else (None, False)
    policy = None
    if tags is not None:
        policy = tags.get("sp", tags.get("p")) if inherited else tags.get("p")
    out["policy"] = policy
    aligned = None
    if any(s["ok"] and org(s["d"]) == org(from_domain) for s in out["dkim"]):
        aligned = "dkim"
    elif out["spf"] == "pass" and spf_domain and org(spf_domain) == org(from_domain):
        aligned = "spf"
    out["aligned_by"] = aligned
    if not from_domain:
        out["dmarc"] = "fail"
    elif tags is None:
        out["dmarc"] = "none"
    else:
        out["dmarc"] = "pass" if aligned else "fail"
    if out["dmarc"] == "fail" and (policy == "reject" or not from_domain):
        out["fate"] = "rejected"
    elif out["dmarc"] == "fail" and policy == "quarantine":
        out["fate"] = "spam"
    else:
        out["fate"] = "inbox"
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
