/* Unit tests for exec/output: the cap on kept bytes, the count of dropped
 * bytes, the closing truncation notice, the log file's mode, and the digest
 * of what the file holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/sha.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/output.h"

#define NOTICE_START "\n[OUTPUT TRUNCATED"

static char tmpdir[] = "/tmp/attune-test-output-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir) == 0 ? 0 : -1;
}

static char *log_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void read_whole(const char *path, struct strbuf *out)
{
    strbuf_init(out);
    assert_int_equal(read_file(path, 0, out), 0);
}

static void test_under_cap_kept_whole(void **state)
{
    (void)state;
    char *path = log_path("small.log");
    struct output_sink sink;
    assert_int_equal(output_sink_open(&sink, path, 100), 0);
    assert_true(sink.fd >= 0);
    output_sink_write(&sink, "hello ", 6);
    output_sink_write(&sink, "", 0);
    output_sink_write(&sink, "world\n", 6);
    assert_int_equal(sink.kept, 12);
    assert_int_equal(sink.dropped, 0);
    assert_false(output_sink_truncated(&sink));
    output_sink_close(&sink);
    assert_int_equal(sink.fd, -1);

    struct strbuf got;
    read_whole(path, &got);
    /* No notice when nothing was cut. */
    assert_string_equal(got.data, "hello world\n");
    strbuf_free(&got);

    /* Exactly at the cap is not truncation either. */
    assert_int_equal(output_sink_open(&sink, path, 5), 0);
    output_sink_write(&sink, "12345", 5);
    assert_false(output_sink_truncated(&sink));
    output_sink_close(&sink);
    read_whole(path, &got);
    assert_string_equal(got.data, "12345");
    strbuf_free(&got);
    free(path);
}

static void test_cap_respected_and_dropped_counted(void **state)
{
    (void)state;
    char *path = log_path("big.log");
    struct output_sink sink;
    assert_int_equal(output_sink_open(&sink, path, 10), 0);
    output_sink_write(&sink, "0123456", 7);
    /* This write crosses the cap: its head is kept, its tail dropped. */
    output_sink_write(&sink, "789abcdef", 9);
    output_sink_write(&sink, "ghij", 4);
    assert_int_equal(sink.kept, 10);
    assert_int_equal(sink.dropped, 10);
    assert_true(output_sink_truncated(&sink));

    /* Large writes past the cap are counted, never kept. */
    size_t big = 1 << 20;
    char *data = xmalloc(big);
    memset(data, 'z', big);
    output_sink_write(&sink, data, big);
    assert_int_equal(sink.kept, 10);
    assert_int_equal(sink.dropped, 10 + (int64_t)big);
    free(data);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 10); /* the cap holds while the child writes */
    output_sink_close(&sink);

    struct strbuf got;
    read_whole(path, &got);
    assert_true(got.len > 10);
    assert_memory_equal(got.data, "0123456789", 10);
    /* The notice follows the kept bytes and says how much was cut. */
    const char *notice = got.data + 10;
    if (!str_starts_with(notice, NOTICE_START))
        fail_msg("no truncation notice after the kept bytes: '%s'", got.data);
    char *count = xasprintf("%lld", (long long)(10 + big));
    assert_non_null(strstr(notice, count));
    assert_null(strchr(notice, 'z'));
    assert_int_equal(got.data[got.len - 1], '\n');
    free(count);
    strbuf_free(&got);
    free(path);
}

static void test_zero_cap_keeps_nothing(void **state)
{
    (void)state;
    char *path = log_path("zero.log");
    struct output_sink sink;
    assert_int_equal(output_sink_open(&sink, path, 0), 0);
    output_sink_write(&sink, "abc", 3);
    assert_int_equal(sink.kept, 0);
    assert_int_equal(sink.dropped, 3);
    assert_true(output_sink_truncated(&sink));
    output_sink_close(&sink);
    struct strbuf got;
    read_whole(path, &got);
    assert_true(str_starts_with(got.data, NOTICE_START));
    assert_null(strstr(got.data, "abc"));
    strbuf_free(&got);
    free(path);
}

static void test_file_mode_and_truncation(void **state)
{
    (void)state;
    mode_t old = umask(0);
    char *path = log_path("mode.log");
    struct output_sink sink;
    assert_int_equal(output_sink_open(&sink, path, 64), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    output_sink_write(&sink, "first run with long content", 27);
    output_sink_close(&sink);

    /* Reopening truncates what an earlier run left. */
    assert_int_equal(output_sink_open(&sink, path, 64), 0);
    output_sink_write(&sink, "second", 6);
    output_sink_close(&sink);
    umask(old);
    struct strbuf got;
    read_whole(path, &got);
    assert_string_equal(got.data, "second");
    strbuf_free(&got);
    free(path);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct output_sink sink;
    char *missing = log_path("no/such/dir.log");
    assert_int_equal(output_sink_open(&sink, missing, 10), -ENOENT);
    /* A failed sink is harmless to write to and close. */
    output_sink_write(&sink, "abc", 3);
    output_sink_close(&sink);
    free(missing);

    /* A symlink planted at the path is not followed. */
    char *target = log_path("target");
    char *link = log_path("link.log");
    int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(output_sink_open(&sink, link, 10), -ELOOP);
    free(target);
    free(link);
}

/* The SHA-256 of a file's bytes, as lowercase hex, computed here apart. */
static void file_sha256(const char *path, char hex[65], int64_t *size)
{
    struct strbuf got;
    read_whole(path, &got);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)(got.data ? got.data : ""), got.len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    *size = (int64_t)got.len;
    strbuf_free(&got);
}

static void assert_digest_matches_file(const struct output_sink *sink, const char *path)
{
    char hex[65], want[65];
    int64_t size = -1, want_size = -2;
    assert_true(output_sink_digest(sink, &size, hex));
    file_sha256(path, want, &want_size);
    assert_string_equal(hex, want);
    assert_int_equal(size, want_size);
}

static void test_digest_of_the_file(void **state)
{
    (void)state;
    char *path = log_path("digest.log");
    struct output_sink sink;
    assert_int_equal(output_sink_open(&sink, path, 100), 0);
    output_sink_start_digest(&sink);
    output_sink_write(&sink, "line one\n", 9);
    output_sink_write(&sink, "line two\n", 9);
    output_sink_close(&sink);
    assert_digest_matches_file(&sink, path);

    /* Past the cap: the kept bytes and the notice, as the file holds them. */
    assert_int_equal(output_sink_open(&sink, path, 4), 0);
    output_sink_start_digest(&sink);
    output_sink_write(&sink, "abcdefgh", 8);
    output_sink_close(&sink);
    assert_digest_matches_file(&sink, path);

    /* Nothing written: the digest of the empty file. */
    assert_int_equal(output_sink_open(&sink, path, 4), 0);
    output_sink_start_digest(&sink);
    output_sink_close(&sink);
    assert_digest_matches_file(&sink, path);
    free(path);
}

static void test_no_digest_unless_asked(void **state)
{
    (void)state;
    char *path = log_path("nodigest.log");
    struct output_sink sink;
    char hex[65];
    int64_t size;
    assert_int_equal(output_sink_open(&sink, path, 100), 0);
    output_sink_write(&sink, "x", 1);
    assert_false(output_sink_digest(&sink, &size, hex));
    output_sink_close(&sink);
    assert_false(output_sink_digest(&sink, &size, hex));
    free(path);
}

static void test_failed_write_has_no_digest(void **state)
{
    (void)state;
    char *path = log_path("fails.log");
    struct output_sink sink;
    char hex[65];
    int64_t size;
    assert_int_equal(output_sink_open(&sink, path, 100), 0);
    output_sink_start_digest(&sink);
    /* A descriptor that refuses writes: the file's content is unknown. */
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    close(sink.fd);
    sink.fd = ro;
    output_sink_write(&sink, "lost", 4);
    assert_true(sink.write_error < 0);
    output_sink_close(&sink);
    assert_false(output_sink_digest(&sink, &size, hex));
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_under_cap_kept_whole),
        cmocka_unit_test(test_cap_respected_and_dropped_counted),
        cmocka_unit_test(test_zero_cap_keeps_nothing),
        cmocka_unit_test(test_file_mode_and_truncation),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_digest_of_the_file),
        cmocka_unit_test(test_no_digest_unless_asked),
        cmocka_unit_test(test_failed_write_has_no_digest),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
