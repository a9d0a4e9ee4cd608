/*
 * Unit tests for what the start-up scan does with what it cannot take for
 * a message, and that it says so truly (docs/spool.md, "Start-up"): a
 * journal record whose state byte is unknown or whose image is no
 * message, kept as a .corrupt file before its segment may go; entries
 * named like messages that are no files, moved aside once; and the words
 * of every report.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spool.h"
#include "spool_fixture.h"
#include "spool_record.h"

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 30);

#define RECOVER_SEG "journal/0000000000000001"

static void recover_set_state(const spool_msg_t *m, char state)
{
    int fd = open(m->path, O_WRONLY);

    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, &state, 1, (off_t)m->joff), 1);
    close(fd);
}

/* The whole of sdir/name, which must be len bytes long. */
static char *recover_file(const char *name, uint64_t len, ino_t *ino)
{
    char path[400];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    cr_assert_eq(stat(path, &st), 0, "%s: %s", name, strerror(errno));
    cr_assert_eq((uint64_t)st.st_size, len, "%s: %lld bytes", name, (long long)st.st_size);
    if (ino != NULL)
        *ino = st.st_ino;
    return read_range(path, 0, len);
}

static bool recover_synced(ino_t ino)
{
    for (int i = 0; i < hook.nsynced; i++)
        if (hook.synced[i] == ino)
            return true;
    return false;
}

Test(spool, an_unknown_state_byte_keeps_its_record_as_a_corrupt_file_and_reading_goes_on)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t a = commit_text(s, "first\r\n", 7, 7, &env);
    commit_result_t b = commit_text(s, "second\r\n", 8, 8, &env);
    char *image, *kept, name[64], path[400], back[400], want[160];
    scan_result_t sr = {0};
    ino_t ino;

    cr_assert_eq(a.msg->jseq, b.msg->jseq, "one segment");
    cr_assert_lt(a.msg->joff, b.msg->joff);
    image = read_range(a.msg->path, a.msg->joff + SPOOL__JREC_HDR, a.msg->jlen);
    close_spool(s);
    /* The state byte is outside the CRC: one bad byte, the rest whole. */
    recover_set_state(a.msg, 'Q');

    s = open_journal_spool(&hook_io);
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    cr_assert_eq(sr.nmsgs, 1, "the next record is read");
    cr_assert_str_eq(sr.msgs[0]->id, b.msg->id);
    snprintf(name, sizeof(name), "%s.corrupt", a.msg->id);
    kept = recover_file(name, a.msg->jlen, &ino);
    cr_assert(memcmp(kept, image, a.msg->jlen) == 0, "the image, byte for byte");
    cr_assert(recover_synced(ino), "the file was fsynced");
    cr_assert_geq(atomic_load(&hook.dir_syncs), 1, "and its directory");
    snprintf(want, sizeof(want), "record at offset %llu, state byte 0x51, kept as %s",
             (unsigned long long)a.msg->joff, name);
    cr_assert_eq(find_problem(&sr, RECOVER_SEG), SPOOL_EJOURNAL);
    cr_assert_str_eq(find_done(&sr, RECOVER_SEG), want);
    cr_assert_eq(sr.nproblems, 1);
    cr_assert_eq(record_state(a.msg), 'X', "accounted for, once it is kept");
    cr_assert_str_eq(segments(), "0000000000000001", "the second message is queued in it");
    scan_free(&sr);
    close_spool(s);

    /* Nothing more to say at the next start; and an admin who renames
     * the file to its id gets the message queued. */
    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    snprintf(back, sizeof(back), "%s/%s", sdir, a.msg->id);
    cr_assert_eq(rename(path, back), 0);
    s = restart_journal(&sr);
    cr_assert_eq(sr.nproblems, 0);
    cr_assert_eq(sr.nmsgs, 2);
    cr_assert_str_eq(sr.msgs[0]->id, a.msg->id);
    cr_assert_eq(sr.msgs[0]->jseq, 0, "from its file");
    assert_envelope(sr.msgs[0], &env);
    scan_free(&sr);
    close_spool(s);
    free(kept);
    free(image);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
}

Test(spool, a_record_that_cannot_be_kept_keeps_its_segment)
{
    spool_envelope_t env = envelope(1);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t a = commit_text(s, "only\r\n", 6, 6, &env);
    char name[64], want[160], *kept;
    scan_result_t sr = {0};

    close_spool(s);
    recover_set_state(a.msg, 'Q');
    hook.fsync_errno = EIO; /* files' fsyncs */

    s = open_journal_spool(&hook_io);
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    cr_assert_eq(sr.nmsgs, 0);
    snprintf(want, sizeof(want),
             "record at offset %llu, state byte 0x51, left in place: Input/output error",
             (unsigned long long)a.msg->joff);
    cr_assert_str_eq(find_done(&sr, RECOVER_SEG), want);
    cr_assert_str_eq(segments(), "0000000000000001", "not lost before the copy is durable");
    cr_assert_eq(record_state(a.msg), 'Q');
    cr_assert_str_eq(listing(), "journal", "no half-made copy left");
    close_spool(s);

    hook.fsync_errno = 0;
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 0);
    snprintf(name, sizeof(name), "%s.corrupt", a.msg->id);
    kept = recover_file(name, a.msg->jlen, NULL);
    free(kept);
    cr_assert_str_eq(segments(), "", "with its only record kept, the segment goes");
    close_spool(s);
    spool_msg_free(a.msg);
}

Test(spool, a_whole_record_that_is_no_message_is_kept_as_a_corrupt_file)
{
    static const char junk[] = "MXFSPL01 whole by its checksum, yet no message";
    spool_envelope_t env = envelope(1);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t a = commit_text(s, "a\r\n", 3, 3, &env);
    size_t ilen = sizeof(junk) - 1;
    unsigned char rec[SPOOL__JREC_HDR + sizeof(junk)];
    char seg[400], name[96], want[200], *kept;
    scan_result_t sr;
    struct stat st;
    int fd;

    close_spool(s);
    memcpy(rec + SPOOL__JREC_HDR, junk, ilen);
    spool_record_jrec_seal(rec, (uint32_t)ilen);
    snprintf(seg, sizeof(seg), "%s/" RECOVER_SEG, sdir);
    cr_assert_eq(stat(seg, &st), 0);
    fd = open(seg, O_WRONLY | O_APPEND);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, rec, SPOOL__JREC_HDR + ilen), (ssize_t)(SPOOL__JREC_HDR + ilen));
    close(fd);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, a.msg->id);
    snprintf(name, sizeof(name), "journal-0000000000000001-%lld.corrupt", (long long)st.st_size);
    kept = recover_file(name, ilen, NULL);
    cr_assert(memcmp(kept, junk, ilen) == 0);
    free(kept);
    snprintf(want, sizeof(want), "record at offset %lld, kept as %s", (long long)st.st_size, name);
    cr_assert_eq(find_problem(&sr, RECOVER_SEG), SPOOL_ECORRUPT);
    cr_assert_str_eq(find_done(&sr, RECOVER_SEG), want);
    kept = read_range(seg, (uint64_t)st.st_size, 1);
    cr_assert_eq(kept[0], 'X');
    free(kept);
    scan_free(&sr);
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nproblems, 0);
    scan_free(&sr);
    close_spool(s);
    spool_msg_free(a.msg);
}

Test(spool, entries_named_like_messages_that_are_no_files_are_moved_aside_once)
{
    static const char *const names[] = {"18C3F2A9B47D0", "18C3F2A9B47D2", "18C3F2A9B47D3.tmp",
                                         "18C3F2A9B47D4"};
    char path[400], target[400], *got;
    spool_t *s = open_spool();
    scan_result_t sr;
    struct stat st;

    close_spool(s);
    snprintf(path, sizeof(path), "%s/18C3F2A9B47D0", sdir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(target, sizeof(target), "%s/elsewhere", root);
    snprintf(path, sizeof(path), "%s/18C3F2A9B47D2", sdir);
    cr_assert_eq(symlink(target, path), 0);
    put_file("../../elsewhere", "not ours\n", 9);
    snprintf(path, sizeof(path), "%s/18C3F2A9B47D3.tmp", sdir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/18C3F2A9B47D4", sdir);
    cr_assert_eq(mkfifo(path, 0600), 0);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char want[96];

        snprintf(want, sizeof(want), "moved aside as %s.corrupt", names[i]);
        cr_assert_eq(find_problem(&sr, names[i]), SPOOL_ENOTFILE, "%s", names[i]);
        cr_assert_str_eq(find_done(&sr, names[i]), want);
    }
    cr_assert_eq(sr.nproblems, 4);
    cr_assert_str_eq(listing(), "18C3F2A9B47D0.corrupt 18C3F2A9B47D2.corrupt "
                                "18C3F2A9B47D3.tmp.corrupt 18C3F2A9B47D4.corrupt");
    snprintf(path, sizeof(path), "%s/18C3F2A9B47D2.corrupt", sdir);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the symlink itself, not followed");
    got = read_range(target, 0, 9);
    cr_assert_str_eq(got, "not ours\n");
    free(got);
    close_spool(s);

    s = restart(&sr);
    cr_assert_eq(sr.nproblems, 0, "said once");
    close_spool(s);
}

Test(spool, an_entry_that_cannot_be_moved_aside_is_named_with_the_reason_and_its_id_stays_taken)
{
    int64_t now = 0x18C3F2A9B47D1;
    char path[400];
    spool_t *s = open_spool();
    spool_writer_t *w;
    scan_result_t sr = {0};

    close_spool(s);
    snprintf(path, sizeof(path), "%s/18C3F2A9B47D1", sdir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(hook.rename_fail, sizeof(hook.rename_fail), "18C3F2A9B47D1.");
    hook.rename_errno = EPERM;

    s = open_clock_spool(&now, true, &hook_io);
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    cr_assert_eq(find_problem(&sr, "18C3F2A9B47D1"), SPOOL_ENOTFILE);
    cr_assert_str_eq(find_done(&sr, "18C3F2A9B47D1"), "left in place: Operation not permitted");
    cr_assert_str_eq(listing(), "18C3F2A9B47D1");
    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_str_eq(spool_writer_id(w), "18C3F2A9B47D2", "the clock's id is taken");
    spool_writer_abort(w);
    close_spool(s);
}

Test(spool, every_recovery_report_says_what_was_done)
{
    static const char partial[] = "MXFSPL01B\0\0\0\0\0\0\0\x10partial";
    spool_envelope_t env = envelope(1);
    char *big = message_text(300000, 4), *magicless, *longer;
    spool_t *s = open_journal_spool(NULL);
    commit_result_t f = commit_text(s, big, 300000, 65536, &env);
    size_t over = SPOOL__JMAGIC_LEN + 4 * 1024 * 1024 + 1;
    char corrupt[64];
    scan_result_t sr;
    struct stat st;

    close_spool(s);
    cr_assert_eq(stat(f.msg->path, &st), 0);
    cr_assert_eq(truncate(f.msg->path, st.st_size - 9), 0); /* no END: partial */
    put_file("18C3F2A9B47D1.tmp", partial, sizeof(partial) - 1);
    put_file("18C3F2A9B47D2", "not a spool file\n", 17);
    magicless = calloc(1, 64);
    memcpy(magicless, "NOTMAGIC", 8);
    put_file("journal/0000000000000005", magicless, 64);
    longer = calloc(1, over);
    memcpy(longer, SPOOL__JMAGIC, SPOOL__JMAGIC_LEN);
    put_file("journal/0000000000000006", longer, over);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 0);
    cr_assert_eq(find_problem(&sr, f.msg->id), SPOOL_EPARTIAL);
    cr_assert_str_eq(find_done(&sr, f.msg->id), "removed");
    cr_assert_eq(find_problem(&sr, "18C3F2A9B47D1.tmp"), SPOOL_EPARTIAL);
    cr_assert_str_eq(find_done(&sr, "18C3F2A9B47D1.tmp"), "removed");
    snprintf(corrupt, sizeof(corrupt), "kept as 18C3F2A9B47D2.corrupt");
    cr_assert_eq(find_problem(&sr, "18C3F2A9B47D2"), SPOOL_ECORRUPT);
    cr_assert_str_eq(find_done(&sr, "18C3F2A9B47D2"), corrupt);
    cr_assert_eq(find_problem(&sr, "journal/0000000000000005"), SPOOL_EJOURNAL);
    cr_assert_str_eq(find_done(&sr, "journal/0000000000000005"),
                     "left in place: not a journal segment (bad magic)");
    cr_assert_eq(find_problem(&sr, "journal/0000000000000006"), SPOOL_EJOURNAL);
    cr_assert_str_eq(find_done(&sr, "journal/0000000000000006"),
                     "left in place: longer than a segment can be");
    cr_assert_eq(sr.nproblems, 5);
    cr_assert_str_eq(listing(), "18C3F2A9B47D2.corrupt journal");
    cr_assert_str_eq(segments(), "0000000000000005 0000000000000006");
    close_spool(s);
    free(magicless);
    free(longer);
    free(big);
    spool_msg_free(f.msg);
}
