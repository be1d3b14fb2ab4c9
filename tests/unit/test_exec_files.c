/* Unit tests for executor/exec_files, core/fsat and the artifacts root check:
 * symlinks, FIFOs and directories planted where the worker writes are
 * refused or replaced, never followed or opened, and the logs are read back
 * from the worker's own descriptors. */
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
#include <unistd.h>

#include "core/fsat.h"
#include "core/util.h"
#include "executor/exec_files.h"
#include "worker/artifacts.h"

static char tmpdir[] = "/tmp/attune-test-exec-files-XXXXXX";
static char *root, *outside;

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    root = xasprintf("%s/root", tmpdir);
    outside = xasprintf("%s/outside", tmpdir);
    return mkdir(root, 0700) == 0 && mkdir(outside, 0700) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(root);
    free(outside);
    return remove_tree(tmpdir) == 0 ? 0 : -1;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *slurp(const char *path)
{
    struct strbuf sb;
    strbuf_init(&sb);
    assert_int_equal(read_file(path, 0, &sb), 0);
    return strbuf_detach(&sb, NULL);
}

static void write_log(struct exec_files *f, int which, const char *text)
{
    int fd = exec_files_open_log(f, which);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static void test_layout_and_read_back(void **state)
{
    (void)state;
    struct exec_files f;
    char err[512] = "";
    exec_files_init(&f);
    assert_int_equal(exec_files_create(&f, root, "w", "1", err, sizeof(err)), 0);
    write_log(&f, EXEC_FILES_STDOUT, "hello");
    write_log(&f, EXEC_FILES_STDERR, "oops");
    char *dir = xasprintf("%s/w/1", root);
    char *files = xasprintf("%s/files", dir);
    char *out = xasprintf("%s/stdout.log", dir);
    assert_int_equal(mode_of(dir) & 07777, 0700);
    assert_int_equal(mode_of(files) & 07777, 0700);
    assert_int_equal(mode_of(out) & 07777, 0600);

    /* Appended to by name, then swapped for a symlink: the result still
     * reads what the worker wrote, and no further. */
    int fd = open(out, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, "-forged", 7), 0);
    close(fd);
    assert_int_equal(unlink(out), 0);
    assert_int_equal(symlink("/etc/passwd", out), 0);
    char *text = exec_files_read_log(&f, EXEC_FILES_STDOUT, 5);
    assert_string_equal(text, "hello");
    free(text);
    text = exec_files_read_log(&f, EXEC_FILES_STDERR, 4);
    assert_string_equal(text, "oops");
    free(text);
    exec_files_close(&f);
    free(dir);
    free(files);
    free(out);
}

static void test_planted_execution_dir(void **state)
{
    (void)state;
    struct exec_files f;
    char err[512] = "";
    char *worker = xasprintf("%s/w", root);
    char *link = xasprintf("%s/2", worker);
    char *made = xasprintf("%s/3", worker);
    assert_int_equal(mkdir_p(worker, 0700), 0);
    /* A symlink to a directory someone else controls. */
    assert_int_equal(symlink(outside, link), 0);
    exec_files_init(&f);
    assert_int_equal(exec_files_create(&f, root, "w", "2", err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "already exists"));
    exec_files_close(&f);
    char *escaped = xasprintf("%s/files", outside);
    assert_false(exists(escaped));
    /* A directory made in advance, a FIFO waiting as its stdout.log. */
    assert_int_equal(mkdir(made, 0700), 0);
    char *fifo = xasprintf("%s/stdout.log", made);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(exec_files_create(&f, root, "w", "3", err, sizeof(err)), -EEXIST);
    exec_files_close(&f);
    free(worker);
    free(link);
    free(made);
    free(escaped);
    free(fifo);
}

static void test_planted_logs(void **state)
{
    (void)state;
    struct exec_files f;
    char err[512] = "";
    exec_files_init(&f);
    assert_int_equal(exec_files_create(&f, root, "w", "4", err, sizeof(err)), 0);
    char *fifo = xasprintf("%s/w/4/stdout.log", root);
    char *link = xasprintf("%s/w/4/stderr.log", root);
    char *target = xasprintf("%s/target", outside);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(symlink(target, link), 0);
    /* Neither blocks on the FIFO nor creates the symlink's target. */
    assert_int_equal(exec_files_open_log(&f, EXEC_FILES_STDOUT), -EEXIST);
    assert_int_equal(exec_files_open_log(&f, EXEC_FILES_STDERR), -EEXIST);
    assert_false(exists(target));
    exec_files_close(&f);
    free(fifo);
    free(link);
    free(target);
}

static void test_planted_files_dir_and_result(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/d5", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(symlinkat(outside, dfd, "files"), 0);
    assert_int_equal(fsat_mkdir_open(dfd, "files", 0700, true), -EEXIST);
    assert_int_equal(fsat_mkdir_open(dfd, "files", 0700, false), -ENOTDIR);

    /* result.json planted as a symlink: replaced, its target untouched. */
    char *target = xasprintf("%s/victim", outside);
    int fd = open(target, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, "keep", 4), 0);
    close(fd);
    assert_int_equal(symlinkat(target, dfd, "result.json"), 0);
    assert_int_equal(symlinkat(target, dfd, ".result.json.new"), 0);
    assert_int_equal(fsat_replace(dfd, "result.json", "{}\n", 3), 0);
    char *result = xasprintf("%s/result.json", dir);
    assert_true(S_ISREG(mode_of(result)));
    assert_int_equal(mode_of(result) & 07777, 0600);
    char *text = slurp(result);
    assert_string_equal(text, "{}\n");
    free(text);
    text = slurp(target);
    assert_string_equal(text, "keep");
    free(text);
    close(dfd);
    free(dir);
    free(target);
    free(result);
}

static void test_worker_dir_checked(void **state)
{
    (void)state;
    struct exec_files f;
    char err[512] = "";
    char *open_dir = xasprintf("%s/wopen", root);
    assert_int_equal(mkdir(open_dir, 0700), 0);
    assert_int_equal(chmod(open_dir, 0777), 0);
    exec_files_init(&f);
    assert_int_equal(exec_files_create(&f, root, "wopen", "1", err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "writable by group or others"));
    char *link = xasprintf("%s/wlink", root);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(exec_files_create(&f, root, "wlink", "1", err, sizeof(err)), -ENOTDIR);
    assert_non_null(strstr(err, "not a directory"));
    exec_files_close(&f);
    free(open_dir);
    free(link);
}

static void test_remove_tree_keeps_targets(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/tree", tmpdir);
    char *sub = xasprintf("%s/a/b", dir);
    char *keep = xasprintf("%s/keep", outside);
    assert_int_equal(mkdir_p(sub, 0700), 0);
    assert_int_equal(mkdir(keep, 0700), 0);
    char *link = xasprintf("%s/link", sub);
    assert_int_equal(symlink(keep, link), 0);
    assert_int_equal(fsat_remove_tree(AT_FDCWD, dir), 0);
    assert_false(exists(dir));
    assert_true(exists(keep));
    free(dir);
    free(sub);
    free(keep);
    free(link);
}

static void test_root_check(void **state)
{
    (void)state;
    char err[1024] = "";
    char *fresh = xasprintf("%s/var/lib/attune/artifacts", tmpdir);
    assert_int_equal(artifacts_root_check(fresh, err, sizeof(err)), 0);
    assert_int_equal(mode_of(fresh) & 07777, 0700);
    char *parent = xasprintf("%s/var/lib/attune", tmpdir);
    assert_int_equal(mode_of(parent) & 07777, 0755);
    /* An existing private root passes as it is. */
    assert_int_equal(artifacts_root_check(fresh, err, sizeof(err)), 0);
    assert_int_equal(chmod(fresh, 0777), 0);
    assert_int_equal(artifacts_root_check(fresh, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "not writable by group or others"));
    assert_int_equal(chmod(fresh, 0750), 0);
    assert_int_equal(artifacts_root_check(fresh, err, sizeof(err)), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(fresh, 65534, 65534), 0);
        assert_int_equal(artifacts_root_check(fresh, err, sizeof(err)), -EPERM);
        assert_non_null(strstr(err, "owned by uid 65534"));
    }
    free(fresh);
    free(parent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_read_back),
        cmocka_unit_test(test_planted_execution_dir),
        cmocka_unit_test(test_planted_logs),
        cmocka_unit_test(test_planted_files_dir_and_result),
        cmocka_unit_test(test_worker_dir_checked),
        cmocka_unit_test(test_remove_tree_keeps_targets),
        cmocka_unit_test(test_root_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
