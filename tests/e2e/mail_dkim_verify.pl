#!/usr/bin/perl
# Perl's Mail::DKIM on one message: every DKIM signature and the ARC chain.
#
#     mail_dkim_verify.pl DNS-PORT < message
#
# Key lookups go to the test's dnsmasq on 127.0.0.1:DNS-PORT.  Prints one
# line per DKIM signature, "dkim DOMAIN RESULT", then "arc RESULT" (none,
# pass or fail), Mail::DKIM's own words for the results.
use strict;
use warnings;

use Mail::DKIM::ARC::Verifier;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Net::DNS::Resolver;

my $port = shift @ARGV or die "usage: mail_dkim_verify.pl DNS-PORT < message\n";
Mail::DKIM::DNS::resolver(
    Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port, recurse => 1,
                            udp_timeout => 5, tcp_timeout => 5));

binmode STDIN;
my $message = do { local $/; <STDIN> };

my $dkim = Mail::DKIM::Verifier->new();
$dkim->PRINT($message);
$dkim->CLOSE();
foreach my $sig ($dkim->signatures) {
    printf "dkim %s %s\n", lc($sig->domain // ''), $sig->result;
}

my $arc = Mail::DKIM::ARC::Verifier->new();
$arc->PRINT($message);
$arc->CLOSE();
printf "arc %s\n", $arc->result;
