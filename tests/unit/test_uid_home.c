/* Unit tests for exec/uid_home: an execution's home/ is a new empty folder of
 * the worker's, 0700, whether made on the spot or ahead; none is made ahead
 * until a second execution started; one made ahead is used, and is never one
 * made beside another folder; what waits is removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsat.h"
#include "exec/uid_home.h"

struct fixture {
    char root[64];
    int worker_fd, other_fd;
};

static int count_waiting(int dir_fd)
{
    int fd = dup(dir_fd), n = 0;
    DIR *d = fdopendir(fd);
    struct dirent *e;
    rewinddir(d);
    while ((e = readdir(d)))
        n += strncmp(e->d_name, ".home-", 6) == 0;
    closedir(d);
    return n;
}

/* A new execution folder name in parent_fd, open. */
static int new_execution(int parent_fd, int id)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", id);
    assert_int_equal(mkdirat(parent_fd, name, 0700), 0);
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    return fd;
}

static void assert_fresh_home(int dir_fd)
{
    struct stat st;
    assert_int_equal(fstatat(dir_fd, "home", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(st.st_nlink, 2); /* empty: no folder inside */
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->root, "/tmp/attune-uid-home-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    int root_fd = open(f->root, O_RDONLY | O_DIRECTORY);
    assert_int_equal(mkdirat(root_fd, "worker", 0700), 0);
    assert_int_equal(mkdirat(root_fd, "other", 0700), 0);
    f->worker_fd = openat(root_fd, "worker", O_RDONLY | O_DIRECTORY);
    f->other_fd = openat(root_fd, "other", O_RDONLY | O_DIRECTORY);
    close(root_fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close(f->worker_fd);
    close(f->other_fd);
    char *slash = strrchr(f->root, '/');
    *slash = '\0';
    int tmp_fd = open(f->root, O_RDONLY | O_DIRECTORY);
    fsat_remove_tree(tmp_fd, slash + 1);
    close(tmp_fd);
    free(f);
    return 0;
}

static void test_made_ahead_after_the_second_start(void **state)
{
    struct fixture *f = *state;
    struct uid_homes h;
    uid_homes_init(&h);
    int first = new_execution(f->worker_fd, 1);
    assert_int_equal(uid_homes_place(&h, first), 0);
    assert_fresh_home(first);
    uid_homes_refill(&h); /* one start so far: a run-action, perhaps */
    assert_int_equal(count_waiting(f->worker_fd), 0);
    int second = new_execution(f->worker_fd, 2);
    assert_int_equal(uid_homes_place(&h, second), 0);
    assert_fresh_home(second);
    for (int i = 0; i < UID_HOMES_MAX + 2; i++)
        uid_homes_refill(&h);
    assert_int_equal(count_waiting(f->worker_fd), UID_HOMES_MAX);
    int third = new_execution(f->worker_fd, 3);
    assert_int_equal(uid_homes_place(&h, third), 0);
    assert_fresh_home(third);
    assert_int_equal(count_waiting(f->worker_fd), UID_HOMES_MAX - 1);
    uid_homes_free(&h);
    assert_int_equal(count_waiting(f->worker_fd), 0);
    close(first);
    close(second);
    close(third);
}

static void test_never_one_made_beside_another_folder(void **state)
{
    struct fixture *f = *state;
    struct uid_homes h;
    uid_homes_init(&h);
    int a = new_execution(f->worker_fd, 1), b = new_execution(f->worker_fd, 2);
    assert_int_equal(uid_homes_place(&h, a), 0);
    assert_int_equal(uid_homes_place(&h, b), 0);
    uid_homes_refill(&h);
    assert_int_equal(count_waiting(f->worker_fd), 1);
    int elsewhere = new_execution(f->other_fd, 3);
    assert_int_equal(uid_homes_place(&h, elsewhere), 0);
    assert_fresh_home(elsewhere);
    /* The one waiting in worker/ could not be renamed there: it is dropped. */
    assert_int_equal(count_waiting(f->worker_fd), 0);
    uid_homes_free(&h);
    close(a);
    close(b);
    close(elsewhere);
}

static void test_one_removed_meanwhile_is_replaced(void **state)
{
    struct fixture *f = *state;
    struct uid_homes h;
    char name[64];
    uid_homes_init(&h);
    int a = new_execution(f->worker_fd, 1), b = new_execution(f->worker_fd, 2);
    assert_int_equal(uid_homes_place(&h, a), 0);
    assert_int_equal(uid_homes_place(&h, b), 0);
    uid_homes_refill(&h);
    snprintf(name, sizeof(name), ".home-%ld-0", (long)getpid());
    assert_int_equal(unlinkat(f->worker_fd, name, AT_REMOVEDIR), 0);
    int c = new_execution(f->worker_fd, 3);
    assert_int_equal(uid_homes_place(&h, c), 0);
    assert_fresh_home(c);
    uid_homes_free(&h);
    close(a);
    close(b);
    close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_made_ahead_after_the_second_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_one_made_beside_another_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_removed_meanwhile_is_replaced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
