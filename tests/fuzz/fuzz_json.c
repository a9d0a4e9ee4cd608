/*
 * libFuzzer harness for json_parse(): any bytes as a document (what the
 * command-line tools read from the control socket).  Beyond "no crash, no
 * sanitizer report": a refusal leaves no tree, and every string of a
 * parsed tree, written back with json_strn(), parses to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_strings(const json_t *v, int depth)
{
    if (depth > JSON_DEPTH_MAX + 1)
        abort();
    if (v->type == JSON_STRING) {
        json_t *back = NULL;
        buf_t b;

        buf_init(&b, SIZE_MAX);
        if (json_strn(&b, v->string, v->len) != 0 ||
            json_parse(buf_ptr(&b), buf_used(&b), &back) != 0 || back->type != JSON_STRING)
            abort();
        /* Valid UTF-8 survives as it is; broken bytes become U+FFFD, so
         * only compare when nothing was replaced. */
        if (memmem(buf_ptr(&b), buf_used(&b), "\\ufffd", 6) == NULL &&
            (back->len != v->len || memcmp(back->string, v->string, v->len) != 0))
            abort();
        json_free(back);
        buf_free(&b);
    }
    for (size_t i = 0; i < v->n; i++) {
        if (v->type == JSON_OBJECT && v->keys[i] == NULL)
            abort();
        fuzz_check_strings(v->items[i], depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = (json_t *)1;
    int rc = json_parse((const char *)data, size, &v);

    if (rc != 0) {
        if (v != NULL || (rc != JSON_ESYNTAX && rc != JSON_EDEPTH))
            abort();
        return 0;
    }
    fuzz_check_strings(v, 0);
    json_free(v);
    return 0;
}
