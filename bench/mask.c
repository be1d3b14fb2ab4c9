/* Measures secret masking: 10 MiB of output fed in 64 KiB reads through a
 * masker of 100 secrets with their encodings; prints milliseconds and MB/s. Run by bench/mask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "exec/mask.h"

#define OUTPUT_BYTES (10u << 20)
#define READ_BYTES 65536u
#define SECRETS 100
#define ROUNDS 5

static void count_bytes(void *userdata, const void *data, size_t len)
{
    (void)data;
    *(size_t *)userdata += len;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Log-like text: words, numbers and hex ids, a secret every 64 KiB. */
static char *make_output(void)
{
    char *text = xmalloc(OUTPUT_BYTES);
    unsigned seed = 12345;
    for (size_t i = 0; i < OUTPUT_BYTES; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 40;
        text[i] = r < 26 ? (char)('a' + r) : r < 36 ? (char)('0' + r - 26) : r < 39 ? ' ' : '\n';
    }
    for (size_t at = 1000; at + 64 < OUTPUT_BYTES; at += 65536)
        memcpy(text + at, "token-000-0123456789abcdef", 26);
    return text;
}

static double run_once(const struct mask_set *set, const char *text, size_t *emitted)
{
    struct mask_stream *s = mask_stream_new(set);
    *emitted = 0;
    double start = now_ms();
    for (size_t pos = 0; pos < OUTPUT_BYTES; pos += READ_BYTES)
        mask_stream_write(s, text + pos, READ_BYTES, count_bytes, emitted);
    mask_stream_flush(s, count_bytes, emitted);
    double ms = now_ms() - start;
    mask_stream_free(s);
    return ms;
}

int main(void)
{
    struct mask_set *set = mask_set_new();
    char value[64];
    double start = now_ms();
    for (int i = 0; i < SECRETS; i++) {
        int n = snprintf(value, sizeof(value), "token-%03d-0123456789abcdef", i);
        mask_set_add_secret(set, value, (size_t)n);
    }
    mask_set_build(set);
    double build_ms = now_ms() - start;
    char *text = make_output();
    double best = 1e9, total = 0;
    size_t emitted = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double ms = run_once(set, text, &emitted);
        best = ms < best ? ms : best;
        total += ms;
    }
    double mb = OUTPUT_BYTES / 1e6;
    printf("masking %u MiB of output in %u KiB reads, %d secrets (%zu strings with their "
           "encodings, longest %zu bytes)\n",
           OUTPUT_BYTES >> 20, READ_BYTES >> 10, SECRETS, mask_set_count(set),
           mask_set_max_len(set));
    printf("  set built in %.2f ms\n", build_ms);
    printf("  best of %d: %.1f ms (%.0f MB/s); mean %.1f ms; %zu bytes out\n", ROUNDS, best,
           mb / (best / 1e3), total / ROUNDS, emitted);
    free(text);
    mask_set_free(set);
    return 0;
}
