#!/usr/bin/env bash
# The SRS commands as an admin runs them: mxfwd srs forward / srs reverse,
# resolve on srs_domain, check-config on the secrets file.  Addresses of a
# given age are made with Mail::SRS, its clock moved back.
# usage: srs_cli.sh PATH/TO/mxfwd.  Ends with "RESULT: passed=N failed=M".
set -u
mxfwd=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0

# expect WHAT WANT_STATUS WANT_OUTPUT_REGEX -- COMMAND...: stdout and
# stderr together must match the (extended) regex.
expect() {
    local what=$1 status=$2 regex=$3 out rc
    shift 4
    out=$("$@" 2>&1)
    rc=$?
    # A sanitizer build's report fails the check even when the rest matches.
    if [[ $out =~ (Address|Leak)Sanitizer|runtime\ error: ]]; then
        failed=$((failed + 1))
        echo "FAIL: $what: sanitizer report: $out"
    elif [ "$rc" -eq "$status" ] && [[ $out =~ $regex ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $what: exit $rc (want $status), output: $out"
    fi
}

secret=cli-test-secret-0123456789
cat >"$dir/mxfwd.conf" <<CONF
hostname = mx.fwd.test
srs_domain = fwd.test
srs_secrets = $dir/srs.secrets
forward_table = $dir/forwards
CONF
printf 'alice@alias.test alice@example.com\npostmaster@fwd.test root@example.com\n' >"$dir/forwards"
printf '# the first signs\n%s\n' "$secret" >"$dir/srs.secrets"
chmod 600 "$dir/srs.secrets"
conf=$dir/mxfwd.conf

# Mail::SRS's address for $1 made $2 days ago (negative: in the future).
made_ago() {
    perl -e 'my ($s, $days, $secret) = @ARGV;
             *CORE::GLOBAL::time = sub () { CORE::time() - $days * 86400 };
             require Mail::SRS;
             print Mail::SRS->new(Secret => [$secret])->forward($s, "fwd.test")' "$1" "$2" "$secret"
}

# (and notes, on a line of its own, that nothing is signed without a key)
expect "check-config counts the secret" 0 "1 SRS secret"$'\n'"note: signing_key is not set" \
    -- "$mxfwd" check-config -c "$conf"
chmod 644 "$dir/srs.secrets"
expect "check-config warns about mode 0644" 0 "srs.secrets: warning: group or others may read.*0644" \
    -- "$mxfwd" check-config -c "$conf"
chmod 600 "$dir/srs.secrets"

fwd=$("$mxfwd" -c "$conf" srs forward alice@Example.com)
expect "srs forward" 0 "^SRS0=[A-Za-z0-9_-]{4}=[A-Z2-7]{2}=Example.com=alice@fwd.test$" \
    -- "$mxfwd" -c "$conf" srs forward alice@Example.com
expect "srs reverse of it" 0 "^alice@Example.com$" -- "$mxfwd" srs reverse -c "$conf" "$fwd"
expect "brackets accepted" 0 "^alice@Example.com$" -- "$mxfwd" srs reverse -c "$conf" "<$fwd>"
expect "the null sender stays" 0 "^<>$" -- "$mxfwd" -c "$conf" srs forward "<>"
expect "our own domain is not rewritten" 0 "^$fwd$" -- "$mxfwd" -c "$conf" srs forward "$fwd"
expect "SRS1 from an SRS0 of elsewhere" 0 "^SRS1=[A-Za-z0-9_-]{4}=a.example==x=" \
    -- "$mxfwd" -c "$conf" srs forward "SRS0=x=AA=b.example=u@a.example"
# A long sender: a keyed address by default (srs_long_senders = store;
# the store file is the daemon's to make), refused with reject.
expect "long sender: keyed" 0 "not recorded"$'\n'"SRS0=[A-Za-z0-9_-]{4}=[A-Z2-7]{2}=-=[A-Z2-7]{26}@fwd.test$" \
    -- "$mxfwd" -c "$conf" srs forward "abcdefghijklmnopqrstuvwxyz0123456789@abcdefghijklmn.xy"
sed 's/^srs_domain = fwd.test$/&\nsrs_long_senders = reject/' "$conf" >"$dir/reject.conf"
expect "too-long" 1 "^too-long: <.*> would become an SRS address with a local part over 64 octets" \
    -- "$mxfwd" -c "$dir/reject.conf" srs forward "abcdefghijklmnopqrstuvwxyz0123456789@abcdefghijklmn.xy"
expect "forward malformed" 1 "^malformed: " -- "$mxfwd" -c "$conf" srs forward '"a b"@example.com'

old=$(made_ago bob@example.org 30)
young=$(made_ago bob@example.org 21)
future=$(made_ago bob@example.org -2)
expect "expired, with its age" 1 \
    "^expired: the SRS address is 30 days old; addresses older than 21 days are refused$" \
    -- "$mxfwd" -c "$conf" srs reverse "$old"
expect "21 days is still valid" 0 "^bob@example.org$" -- "$mxfwd" -c "$conf" srs reverse "$young"
expect "future stamp" 1 "^expired: the SRS address is dated 2 days in the future" \
    -- "$mxfwd" -c "$conf" srs reverse "$future"
expect "bad-hash" 1 "^bad-hash: " -- "$mxfwd" -c "$conf" srs reverse "${young/=/=X}"
expect "malformed" 1 "^malformed: " -- "$mxfwd" -c "$conf" srs reverse "SRS0=abc=AA=x.example=u@fwd.test"
expect "not-srs" 1 "^not-srs: " -- "$mxfwd" -c "$conf" srs reverse "bob@fwd.test"

# resolve: the original address, or the words of the SMTP reply.
srs1=$("$mxfwd" -c "$conf" srs forward "SRS0=x=AA=b.example=u@a.example")
expect "resolve SRS0" 0 $'^bob@example.org\n-- an SRS address: accepted from <> ' -- "$mxfwd" -c "$conf" resolve "$young"
expect "resolve SRS1 gives the first forwarder's SRS0" 0 $'^SRS0=x=AA=b.example=u@a.example\n-- ' \
    -- "$mxfwd" -c "$conf" resolve "$srs1"
expect "resolve expired" 1 "^550 5.7.1 <$old>: Recipient address rejected: SRS address expired$" \
    -- "$mxfwd" -c "$conf" resolve "$old"
expect "resolve bad hash" 1 "^550 5.7.1 <.*>: Recipient address rejected: invalid SRS signature$" \
    -- "$mxfwd" -c "$conf" resolve "${young/=/=X}"
expect "resolve malformed" 1 "^550 5.7.1 <.*>: Recipient address rejected: malformed SRS address$" \
    -- "$mxfwd" -c "$conf" resolve "SRS0=abc=AA=x.example=u@FWD.test"
expect "resolve unknown user of srs_domain" 1 "^550 5.1.1 <nobody@fwd.test>" \
    -- "$mxfwd" -c "$conf" resolve "nobody@fwd.test"
expect "resolve an alias of srs_domain" 0 $'^root@example.com\n-- .*/forwards:2: postmaster@fwd.test, ' \
    -- "$mxfwd" -c "$conf" resolve "postmaster@fwd.test"
expect "resolve SRS of another domain is not ours" 1 "^554 5.7.1" \
    -- "$mxfwd" -c "$conf" resolve "$(echo "$young" | sed 's/@fwd.test/@other.test/')"

printf '# c\nshort\n' >"$dir/srs.secrets"
expect "short secret" 1 "srs.secrets:2: the secret is 5 bytes long; at least 16" \
    -- "$mxfwd" check-config -c "$conf"
expect "srs forward needs the secrets" 1 "srs.secrets:2: the secret is 5 bytes" \
    -- "$mxfwd" -c "$conf" srs forward a@example.com
: >"$dir/srs.secrets"
expect "empty secrets file" 1 "srs.secrets: no secret in the file" -- "$mxfwd" check-config -c "$conf"
rm "$dir/srs.secrets"
expect "missing secrets file" 1 "srs.secrets: cannot open: No such file" \
    -- "$mxfwd" check-config -c "$conf"

echo "RESULT: passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
