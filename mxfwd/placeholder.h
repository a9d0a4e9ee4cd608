/*
 * placeholder - the sample values a configuration must not keep on port
 * 25: a hostname that is no fully qualified name, domains reserved for
 * examples (RFC 2606, RFC 6761: .test, .example, .invalid, .localhost,
 * example.com/net/org) as hostname, srs_domain or signing_domain, the
 * public sample SRS secret, and sample aliases in the forward table.
 *
 * `mxfwd check-config` prints each as a warning; `mxfwd serve` refuses to
 * listen on port 25 while any is left (docs/admin-guide.md, "Installing").
 */
#ifndef MXFWD_PLACEHOLDER_H
#define MXFWD_PLACEHOLDER_H

#include "config.h"
#include "diag.h"
#include "srs_secrets.h"
#include "table.h"

/* The secret etc/srs.secrets ships with, for loopback trials. */
#define PLACEHOLDER_SECRET "sample-secret-for-loopback-tests-only-replace-me"

/* Report each placeholder through report(ctx, "problem") (table and
 * secrets may be NULL when they did not load).  Returns how many. */
int placeholder_check(const config_t *cfg, const table_t *table, const srs_secrets_t *secrets,
                      diag_fn report, void *ctx);

/* Whether cfg listens on port 25 (where placeholders are refused). */
bool placeholder_port25(const config_t *cfg);

#endif
