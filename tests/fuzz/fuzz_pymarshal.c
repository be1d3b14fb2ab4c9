/* libFuzzer target: pymarshal_decode on arbitrary bytes (what a python action
 * can write on the wrapper's control pipe), and every decoded value must
 * survive pymarshal_encode and decode again unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/util.h"
#include "runtime/pymarshal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_pymarshal: %s: %s\n", what, detail);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    json_t *v = pymarshal_decode(data, size, err, sizeof(err));
    if (!v) {
        if (!err[0])
            fail("rejected without a message", "");
        return 0;
    }
    struct strbuf out;
    strbuf_init(&out);
    pymarshal_encode(v, &out);
    json_t *back = pymarshal_decode(out.data, out.len, err, sizeof(err));
    if (!back)
        fail("the encoding of a decoded value does not decode", err);
    if (!json_equal(back, v)) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fail("encode and decode changes the value", text ? text : "?");
    }
    json_decref(back);
    strbuf_free(&out);
    json_decref(v);
    return 0;
}
