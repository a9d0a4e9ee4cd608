#!/usr/bin/perl
# An independent verifier for the unit tests: Perl's Mail::DKIM (Debian's
# libmail-dkim-perl).
#
# Usage: ext_verify.pl dkim|arc NAME=RECORD... < MESSAGE
#
# Keys come from the arguments: Mail::DKIM::DNS::query is replaced, so no
# DNS is asked.  Prints, for dkim, one line per DKIM-Signature, top to
# bottom: its result ("pass", "fail", "invalid", ...) and the detail; for
# arc, "cv=RESULT DETAIL", then one line per seal and message signature.
use strict;
use warnings;

use Mail::DKIM::ARC::Verifier;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Net::DNS;

my $mode = shift @ARGV;
my %keys;
for my $arg (@ARGV) {
    my ($name, $record) = split /=/, $arg, 2;
    $name = lc $name;
    $name =~ s/\.$//;
    $keys{$name} = $record;
}

{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($domain, $type) = @_;
        my $name = lc $domain;
        $name =~ s/\.$//;
        if (!exists $keys{$name} || uc $type ne 'TXT') {
            $@ = 'NXDOMAIN';
            return;
        }
        my $text = $keys{$name};
        my @chunks = unpack '(a255)*', $text;
        $@ = 'NOERROR';
        return Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => [@chunks]);
    };
}

binmode STDIN;
local $/;
my $message = <STDIN>;
my $v = $mode eq 'arc' ? Mail::DKIM::ARC::Verifier->new(Strict => 1) : Mail::DKIM::Verifier->new();
$v->PRINT($message);
$v->CLOSE;
if ($mode eq 'arc') {
    printf "cv=%s %s\n", $v->result, $v->result_detail // '';
    for my $sig ($v->signatures) {
        printf "%s i=%s %s\n", ref $sig, $sig->instance // '?', $sig->result // '?';
    }
} else {
    for my $sig ($v->signatures) {
        printf "%s %s\n", $sig->result // '?', $sig->result_detail // '';
    }
}
