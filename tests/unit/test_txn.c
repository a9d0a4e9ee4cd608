/* Unit tests for smtpd/txn.c: the envelope of one transaction. */
#include <criterion/criterion.h>
#include <string.h>

#include "txn.h"

static txn_t *new_txn(const char *sender)
{
    proto_mail_t mail = {.smtputf8 = true, .body = PROTO_BODY_8BITMIME};

    return txn_new(sender, strlen(sender), &mail);
}

Test(txn, destinations_deduplicated_with_their_alias)
{
    txn_t *t = new_txn("a@origin.test");
    const char *team[] = {"alice@example.com", "bob@example.org"};
    const char *alice[] = {"Alice@Example.com"};
    const char *carol[] = {"carol@example.net", "bob@example.org"};

    txn_add_rcpt(t, "team@alias.test", 15, NULL, team, 2);
    txn_add_rcpt(t, "alice@alias.test", 16, NULL, alice, 1);
    txn_add_rcpt(t, "carol@alias.test", 16, NULL, carol, 2);
    cr_assert_eq(txn_nrcpts(t), 3);
    cr_assert_eq(txn_ndests(t), 3);
    cr_assert_str_eq(txn_dest(t, 0)->addr, "alice@example.com");
    cr_assert_str_eq(txn_dest(t, 0)->orig, "team@alias.test");
    cr_assert_str_eq(txn_dest(t, 1)->addr, "bob@example.org");
    cr_assert_str_eq(txn_dest(t, 1)->orig, "team@alias.test");
    cr_assert_str_eq(txn_dest(t, 2)->addr, "carol@example.net");
    cr_assert_str_eq(txn_dest(t, 2)->orig, "carol@alias.test");
    cr_assert_null(txn_dest(t, 3));
    cr_assert_null(txn_single_rcpt(t));
    txn_free(t);
}

Test(txn, envelope)
{
    txn_t *t = new_txn("a@origin.test");
    const char *d[] = {"x@example.com"};

    cr_assert_str_eq(txn_sender(t), "a@origin.test");
    cr_assert_str_eq(txn_forward_sender(t), "a@origin.test");
    txn_set_forward_sender(t, "SRS0=abcd=AB=origin.test=a@fwd.test");
    cr_assert_str_eq(txn_forward_sender(t), "SRS0=abcd=AB=origin.test=a@fwd.test");
    cr_assert(txn_smtputf8(t) && txn_8bitmime(t));
    cr_assert_not(txn_rcpt_tried(t));
    txn_note_rcpt_tried(t);
    cr_assert(txn_rcpt_tried(t));
    txn_add_rcpt(t, "x@alias.test", 12, NULL, d, 1);
    cr_assert_str_eq(txn_single_rcpt(t), "x@alias.test");
    txn_free(t);
    t = new_txn("");
    cr_assert_str_eq(txn_sender(t), "");
    txn_free(t);
}
