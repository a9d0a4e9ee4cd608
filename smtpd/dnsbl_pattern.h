/*
 * dnsbl_pattern - which answers of a DNS list count (docs/smtp.md, "DNS
 * lists"), in Postfix's syntax: four octets, each a number or a bracketed
 * list of numbers and ranges, "127.0.0.2", "127.0.0.[2..11]",
 * "127.0.0.[2;4;10..12]".  Without a pattern, any answer in 127.0.0.0/8
 * counts.  Pure.
 */
#ifndef MXFWD_DNSBL_PATTERN_H
#define MXFWD_DNSBL_PATTERN_H

#include <netinet/in.h>
#include <stdbool.h>

/* Whether pattern is one; whether a matches it (NULL: no pattern). */
bool dnsbl_pattern_valid(const char *pattern);
bool dnsbl_pattern_match(const char *pattern, const struct in_addr *a);

#endif
