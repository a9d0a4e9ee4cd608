#include "resolve.h"

#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "cli.h"
#include "str.h"

static const char *resolve_kind_name(rcpt_kind_t kind)
{
    switch (kind) {
    case RCPT_FORWARD:
        return "forward";
    case RCPT_BOUNCE:
        return "bounce";
    case RCPT_KEYED:
        return "keyed";
    case RCPT_DISCARD:
        return "discard";
    case RCPT_HOLD:
        return "hold";
    case RCPT_REFUSE:
        break;
    }
    return "refuse";
}

void resolve_json(const rcpt_ctx_t *ctx, const char *table_path, const char *addr, buf_t *out)
{
    size_t len = strlen(addr);
    rcpt_route_t route;
    bool postmaster;
    addr_t a;

    /* "<a@b>" as well as "a@b", as people paste either. */
    if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>') {
        addr++;
        len -= 2;
    }
    /* As RCPT TO:<postmaster> has it (RFC 5321 4.5.1). */
    postmaster = str_eq_ci_n(addr, len, "postmaster");
    if (!postmaster && addr_parse(addr, len, &a) < 0) {
        route = (rcpt_route_t){.kind = RCPT_REFUSE, .reason = REPLY_BAD_RCPT};
        route.words = *reply_get(REPLY_BAD_RCPT);
    } else {
        rcpt_route(ctx, addr, len, &a, postmaster, NULL, &route);
    }
    buf_puts(out, "{\"ok\":true,\"kind\":");
    json_str(out, resolve_kind_name(route.kind));
    if (route.kind == RCPT_REFUSE) {
        char reply[TABLE_TEXT_MAX + 512];

        /* The address as typed, within reason, then the words. */
        snprintf(reply, sizeof(reply), "%d %s <%.*s>: %s", route.words.code, route.words.esc,
                 (int)(len < 256 ? len : 256), addr, route.words.text);
        buf_puts(out, ",\"reply\":");
        json_str(out, reply);
    }
    buf_puts(out, ",\"dests\":[");
    if (route.kind == RCPT_BOUNCE || route.kind == RCPT_KEYED) {
        json_str(out, route.orig);
    } else if (route.kind == RCPT_FORWARD) {
        for (size_t i = 0; i < route.dests.n; i++) {
            buf_puts(out, i > 0 ? "," : "");
            json_str(out, route.dests.addr[i]);
        }
    }
    buf_puts(out, "]");
    if (route.from_table) {
        buf_puts(out, ",\"entry\":");
        json_str(out, route.dests.key);
        buf_puts(out, ",\"file\":");
        json_str(out, table_path);
        buf_printf(out, ",\"line\":%u", route.dests.line);
    }
    buf_puts(out, "}");
}

int resolve_print(const json_t *v, const char *source)
{
    const char *kind = json_get_str(v, "kind", "refuse");
    const json_t *dests = json_get(v, "dests");
    bool accepted = strcmp(kind, "refuse") != 0;

    if (strcmp(kind, "refuse") == 0)
        printf("%s\n", json_get_str(v, "reply", ""));
    else if (strcmp(kind, "discard") == 0)
        printf("DISCARD: accepted and dropped\n");
    else if (strcmp(kind, "hold") == 0)
        printf("HOLD: accepted and held in the queue for the admin (postmaster is not set)\n");
    for (size_t i = 0; dests != NULL && i < dests->n; i++)
        printf("%s\n", dests->items[i]->string);
    if (strcmp(kind, "bounce") == 0)
        printf("-- an SRS address: accepted from <> (a bounce) only, to the original sender\n");
    if (json_get(v, "entry") != NULL)
        printf("-- %s:%.0f: %s, %s\n", json_get_str(v, "file", "?"), json_get_num(v, "line", 0),
               json_get_str(v, "entry", "?"), source);
    return accepted ? CLI_OK : CLI_FAIL;
}
