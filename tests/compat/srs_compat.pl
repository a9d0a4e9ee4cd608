#!/usr/bin/perl
# Compatibility of mxfwd's SRS with Mail::SRS (Debian's libmail-srs-perl,
# the Guarded scheme): the same secret makes the same address (up to the
# hash alphabet: mxfwd writes "-" and "_" where Mail::SRS writes "+" and
# "/"), and each side reverses what the other wrote, SRS0 and SRS1, with
# rotated secrets, expired and tampered addresses.
#
# usage: srs_compat.pl PATH/TO/srs_tool
# mxfwd's side is srs_tool on a pipe; both clocks are pinned per request
# (Mail::SRS's through CORE::GLOBAL::time).  Ends with
# "RESULT: passed=N failed=M"; exit 1 on any failure.
use strict;
use warnings;
use IPC::Open2;

our $NOW;
BEGIN { *CORE::GLOBAL::time = sub () { defined $NOW ? $NOW : CORE::time() }; }
require Mail::SRS;

my $tool = shift or die "usage: $0 SRS_TOOL\n";
my $pid = open2(my $from_tool, my $to_tool, $tool) or die "cannot run $tool: $!\n";
my ($passed, $failed) = (0, 0);
my $DAY = 86400;
# Mail::SRS warns when a hash matches only without regard to case.
$SIG{__WARN__} = sub { warn @_ unless $_[0] =~ /Case insensitive hash match/ };

sub check {
    my ($ok, $what) = @_;
    if ($ok) { $passed++ } else { $failed++; print "FAIL: $what\n" }
}

sub tool {
    my $req = shift;
    print $to_tool "$req\n";
    my $ans = <$from_tool>;
    die "srs_tool died on: $req\n" unless defined $ans;
    chomp $ans;
    return $ans;
}

# Our side: "new" then forward/reverse; results "ok ADDR" or "err NAME".
sub ours_new { my ($domain, @secrets) = @_; tool("new $domain 21 @secrets") eq "ok" or die }
sub ours_fwd { my ($t, $a) = @_; tool("f $t $a") }
sub ours_rev { my ($t, $a) = @_; tool("r $t $a") }

# Mail::SRS's side at time $t: the address, or "err: <reason>".
sub ref_srs { Mail::SRS->new(Secret => [@_], HashLength => 4, MaxAge => 21, AlwaysRewrite => 1) }
sub ref_fwd {
    my ($srs, $t, $sender, $alias) = @_;
    local $NOW = $t;
    my $r = eval { $srs->forward($sender, $alias) };
    return defined $r ? $r : "err: $@";
}
sub ref_rev {
    my ($srs, $t, $addr) = @_;
    local $NOW = $t;
    my $r = eval { $srs->reverse($addr) };
    return defined $r ? $r : "err: $@";
}

# Mail::SRS writes the standard base64 alphabet: map ours to it.
sub std_alphabet {
    my $a = shift;
    $a =~ s/^(SRS0=)([^=]+)/$1 . ($2 =~ tr{-_}{+\/}r)/e;
    $a =~ s/^(SRS1=)([^=]+)/$1 . ($2 =~ tr{-_}{+\/}r)/e;
    return $a;
}

# PostSRSd's published vector; both implementations must produce it.
{
    my $t = 1577836860;
    my $ref1 = ref_srs("tops3cr3t");
    ours_new("example.com", "tops3cr3t");
    my $srs0 = 'SRS0=vmyz=2W=otherdomain.com=test@example.com';
    my $srs1 = 'SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@fwd2.example';
    check(ref_fwd($ref1, $t, 'test@otherdomain.com', 'example.com') eq $srs0, "Mail::SRS vector SRS0");
    check(ours_fwd($t, 'test@otherdomain.com') eq "ok $srs0", "our vector SRS0");
    ours_new("fwd2.example", "tops3cr3t");
    check(ref_fwd($ref1, $t, $srs0, 'fwd2.example') eq $srs1, "Mail::SRS vector SRS1");
    check(ours_fwd($t, $srs0) eq "ok $srs1", "our vector SRS1");
    check(ours_rev($t, $srs1) eq "ok $srs0", "our reverse of the SRS1 vector");
}

# Varied senders: local parts of every atext character, mixed case,
# dots, UTF-8; host names of several labels; times over 50 years so the
# stamps go round the 1024-day wrap many times.
srand(20261128);
my @atext = ('a' .. 'z', 'A' .. 'Z', '0' .. '9', split //, q{!#$%&'*+/=?^_`{|}~-});
my @utf8 = ("j\xc3\xbcrgen", "\xe7\x94\xa8\xe6\x88\xb7", "ren\xc3\xa9e.dupont", "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd");
sub word { my ($chars, $n) = @_; join '', map { $chars->[int rand @$chars] } 1 .. $n }
sub local_part {
    return $utf8[int rand @utf8] if rand() < 0.05;
    my @parts = map { word(\@atext, 1 + int rand 8) } 1 .. 1 + int rand 3;
    return join '.', @parts;
}
sub host {
    my @ld = ('a' .. 'z', 'A' .. 'Z', '0' .. '9');
    my @labels = map { word(\@ld, 1) . (rand() < 0.3 ? '-' : '') . word(\@ld, 1 + int rand 6) } 1 .. 1 + int rand 3;
    return join('.', @labels) . '.' . ('com', 'ORG', 'example', 'Test', 'co.uk')[int rand 5];
}

my @secrets = ('first-secret-of-mxfwd-compat', 'second-secret-for-rotation');
my $ref = ref_srs($secrets[0]);
ours_new('Fwd.Example', $secrets[0]);
my ($n, $tries) = (0, 0);
while ($n < 300 && $tries++ < 5000) {
    my $sender = local_part() . '@' . host();
    my $t = 946684800 + int rand(50 * 365 * $DAY);
    my $later = $t - $t % $DAY + int(rand 22) * $DAY + int rand $DAY;  # 0..21 days on
    my $r = ref_fwd($ref, $t, $sender, 'Fwd.Example');
    my $o = ours_fwd($t, $sender);
    if ($o eq 'err too-long') {
        # Only when the SRS0 local part would exceed 64 octets.
        check(length(($r =~ /^(.*)\@/)[0]) > 64, "too-long only past 64 octets: $sender");
        next;
    }
    $n++;
    check($o =~ /^ok (.*)$/ && std_alphabet($1) eq $r, "forward of $sender: ours $o, Mail::SRS $r");
    my $ours = ($o =~ /^ok (.*)$/)[0] // '';
    check(ref_rev($ref, $later, std_alphabet($ours)) eq $sender, "Mail::SRS reverses our $ours");
    check(ours_rev($later, $r) eq "ok $sender", "we reverse Mail::SRS's $r");
    check(ours_rev($later, $ours) eq "ok $sender", "we reverse our $ours");
    # Letter case smashed by a relay: both still accept it.
    check(ours_rev($later, uc $r) =~ /^ok /, "we reverse upper-cased " . uc $r);
    check(ref_rev($ref, $later, lc std_alphabet($ours)) !~ /^err/, "Mail::SRS reverses lower-cased $ours");
}
check($n == 300, "300 senders tried ($n)");

# SRS1 chains: origin -> A (first forwarder) -> B -> C, each hop made by
# one implementation and checked against the other.
{
    my ($sa, $sb, $sc) = ('secret-of-forwarder-a-123', 'secret-of-forwarder-b-456', 'secret-of-forwarder-c-789');
    my ($ra, $rb, $rc) = (ref_srs($sa), ref_srs($sb), ref_srs($sc));
    for my $i (1 .. 40) {
        my $sender = local_part() . '@' . host();
        my $t = 946684800 + int rand(50 * 365 * $DAY);
        my $a = ref_fwd($ra, $t, $sender, 'a.example');
        next if length(($a =~ /^(.*)\@/)[0]) > 40;  # room for SRS1 at B and C
        ours_new('b.example', $sb);
        my $ob = ours_fwd($t, $a);
        my $rbv = ref_fwd($rb, $t, $a, 'b.example');
        check($ob =~ /^ok (.*)$/ && std_alphabet($1) eq $rbv, "SRS1 at B of $a: ours $ob, Mail::SRS $rbv");
        my $b = ($ob =~ /^ok (.*)$/)[0] // '';
        check(ref_rev($rb, $t, std_alphabet($b)) eq $a, "Mail::SRS at B reverses our $b to A");
        check(ours_rev($t, $rbv) eq "ok $a", "we at B reverse Mail::SRS's $rbv to A");
        # C forwards B's SRS1: A's host and SRS0 part stay, C re-signs.
        ours_new('c.example', $sc);
        my $oc = ours_fwd($t, $b);
        my $rcv = ref_fwd($rc, $t, std_alphabet($b), 'c.example');
        check($oc =~ /^ok (.*)$/ && std_alphabet($1) eq $rcv, "SRS1 at C of $b: ours $oc, Mail::SRS $rcv");
        my $c = ($oc =~ /^ok (.*)$/)[0] // '';
        check(ref_rev($rc, $t, std_alphabet($c)) eq $a, "Mail::SRS at C reverses our $c to A");
        check(ours_rev($t, $rcv) eq "ok $a", "we at C reverse Mail::SRS's $rcv to A");
        # Back at A, the SRS0 part reverses to the origin, ours or theirs.
        ours_new('a.example', $sa);
        check(ours_rev($t + $DAY, $a) eq "ok $sender", "we at A reverse $a");
        my $oa = ours_fwd($t, $sender);
        ours_new('b.example', $sb);
        my $ob2 = ours_fwd($t, ($oa =~ /^ok (.*)$/)[0] // '');
        my $b2 = ($ob2 =~ /^ok (.*)$/)[0] // '';
        my $a2 = ($oa =~ /^ok (.*)$/)[0] // '';
        check(ref_rev($rb, $t, std_alphabet($b2)) eq $a2,
              "Mail::SRS at B reverses our SRS1 $b2 of our SRS0 $a2: " . ref_rev($rb, $t, std_alphabet($b2)));
    }
}

# Secret rotation: an address signed with the old secret verifies while
# the old secret is listed after the new one, and not once it is gone.
{
    my $t = 1700000000;
    my $old = ref_srs($secrets[1]);
    my $both = ref_srs(@secrets);
    ours_new('fwd.example', @secrets);
    for my $i (1 .. 30) {
        my $sender = local_part() . '@' . host();
        my $r = ref_fwd($old, $t, $sender, 'fwd.example');
        next if $r =~ /^err/ || length(($r =~ /^(.*)\@/)[0]) > 64;
        check(ours_rev($t + $DAY, $r) eq "ok $sender", "we verify the old secret's $r");
        ours_new('fwd.example', $secrets[0]);
        check(ours_rev($t + $DAY, $r) eq 'err bad-hash', "we refuse $r once its secret is gone");
        ours_new('fwd.example', $secrets[1]);
        my $o = ours_fwd($t, $sender);
        check(ref_rev($both, $t + $DAY, std_alphabet(($o =~ /^ok (.*)$/)[0] // '')) eq $sender,
              "Mail::SRS verifies our old-secret $o");
        check(ref_rev($ref, $t + $DAY, std_alphabet(($o =~ /^ok (.*)$/)[0] // '')) =~ /Invalid hash/,
              "Mail::SRS refuses our $o without its secret");
        ours_new('fwd.example', @secrets);
    }
}

# Age: both accept 0 to 21 days, both refuse 22 days and the future,
# and both accept again after the 1024-day wrap.
{
    ours_new('fwd.example', $secrets[0]);
    for my $i (1 .. 30) {
        my $sender = local_part() . '@' . host();
        my $t = 946684800 + int rand(50 * 365 * $DAY);
        my $r = ref_fwd($ref, $t, $sender, 'fwd.example');
        my $o = ours_fwd($t, $sender);
        next if $o !~ /^ok (.*)$/;
        my $ours = std_alphabet($1);
        my $day0 = $t - $t % $DAY;
        for my $case ([21, 1], [22, 0], [-1, 0], [1024, 1], [1024 + 22, 0], [400, 0]) {
            my ($days, $valid) = @$case;
            my $at = $day0 + $days * $DAY + int rand $DAY;
            my $mine = ours_rev($at, $r);
            my $theirs = ref_rev($ref, $at, $ours);
            if ($valid) {
                check($mine eq "ok $sender", "we accept $r at $days days ($mine)");
                check($theirs eq $sender, "Mail::SRS accepts our $ours at $days days ($theirs)");
            } else {
                check($mine eq 'err expired', "we refuse $r at $days days ($mine)");
                check($theirs =~ /Invalid timestamp/, "Mail::SRS refuses our $ours at $days days");
            }
        }
        # Tampered: a changed hash character, or a changed user.
        (my $bad = $r) =~ s/^SRS0=(.)/'SRS0=' . (lc $1 eq 'a' ? 'B' : 'A')/e;
        check(ours_rev($t, $bad) eq 'err bad-hash', "we refuse tampered $bad");
        (my $bad2 = $ours) =~ s/\@/x\@/;
        check(ref_rev($ref, $t, $bad2) =~ /Invalid hash/, "Mail::SRS refuses tampered $bad2");
    }
}

close $to_tool;
waitpid $pid, 0;
print "RESULT: passed=$passed failed=$failed\n";
exit($failed ? 1 : 0);
