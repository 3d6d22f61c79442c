/*
 * test_file_faults.c - saving that fails midway, and loading from paths
 * that are not model files.
 *
 * A save that cannot complete (the disk fills up, the directory refuses
 * new files, the path is a directory or lies below a file) returns
 * INVDL_EIO, leaves the file that was at the path byte for byte as it
 * was, and leaves no temporary file behind.  A full disk is simulated
 * with RLIMIT_FSIZE (SIGXFSZ ignored, so write() fails with EFBIG), which
 * binds root too.  An unwritable directory is made with chmod 0500 or,
 * where that does not bind (root), with the immutable attribute; the
 * test says so and skips when neither works.
 */
#define _GNU_SOURCE /* FS_IOC_SETFLAGS through <linux/fs.h> */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/fs.h>
#endif

#include "invdl.h"

enum { W = 5 };

typedef struct files {
    char dir[64];
    char path[96];       /* dir/model.invdl, holding model a */
    invdl_model *a, *b;  /* b differs from a and saves larger */
    unsigned char *a_bytes;
    size_t a_size, b_size;
} files;

static invdl_model *model(uint64_t seed, size_t dense)
{
    invdl_model *m = invdl_model_create(W);
    for (size_t i = 0; i < dense; i++) {
        assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, seed + i)), INVDL_OK);
        assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(W, seed + 100 + i)), INVDL_OK);
    }
    return m;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return p;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    files *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/invdl-faults-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/model.invdl", f->dir);
    f->a = model(1, 1);
    f->b = model(7, 3);
    if (invdl_model_save(f->a, f->path) != INVDL_OK ||
        invdl_model_save_memory(f->b, NULL, 0, &f->b_size) != INVDL_OK)
        return -1;
    f->a_bytes = read_file(f->path, &f->a_size);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    files *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char p[400];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
        if (remove(p) != 0)
            fprintf(stderr, "could not remove %s: %s\n", p, strerror(errno));
    }
    if (d != NULL)
        closedir(d);
    rmdir(f->dir);
    invdl_model_free(f->a);
    invdl_model_free(f->b);
    free(f->a_bytes);
    free(f);
    return 0;
}

/* The file at f->path is still model a, byte for byte, it loads, and it
 * is alone in the directory (no temporary file left behind). */
static void assert_old_file_intact(const files *f)
{
    size_t size;
    unsigned char *now = read_file(f->path, &size);
    assert_int_equal(size, f->a_size);
    assert_memory_equal(now, f->a_bytes, size);
    free(now);
    invdl_status st = INVDL_EIO;
    invdl_model *m = invdl_model_load(f->path, &st);
    assert_int_equal(st, INVDL_OK);
    assert_int_equal(invdl_model_depth(m), invdl_model_depth(f->a));
    invdl_model_free(m);
    assert_int_equal(count_entries(f->dir), 1);
}

/* The disk fills up after `limit` bytes of any file: write() fails with
 * EFBIG at the limit, part of the way through the model. */
static invdl_status save_with_file_limit(const invdl_model *m, const char *path, rlim_t limit)
{
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = limit;
    void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_true(handler != SIG_ERR);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    invdl_status st = invdl_model_save(m, path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, handler);
    return st;
}

static void test_disk_full(void **state)
{
    files *f = *state;
    assert_true(f->b_size > f->a_size);
    const rlim_t limits[] = {0, 1, 40, f->b_size / 2, f->b_size - 4, f->b_size - 1};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        assert_int_equal(save_with_file_limit(f->b, f->path, limits[i]), INVDL_EIO);
        assert_old_file_intact(f);
    }
    /* No file yet at the path: none afterwards either. */
    char fresh[128];
    snprintf(fresh, sizeof fresh, "%s/fresh.invdl", f->dir);
    assert_int_equal(save_with_file_limit(f->b, fresh, f->b_size / 2), INVDL_EIO);
    assert_int_equal(access(fresh, F_OK), -1);
    assert_int_equal(count_entries(f->dir), 1);
    /* The limit, not something else, made those fail: exactly the bytes
     * needed are enough. */
    assert_int_equal(save_with_file_limit(f->b, f->path, f->b_size), INVDL_OK);
    invdl_model *m = invdl_model_load(f->path, NULL);
    assert_non_null(m);
    assert_int_equal(invdl_model_depth(m), invdl_model_depth(f->b));
    invdl_model_free(m);
    assert_int_equal(invdl_model_save(f->a, f->path), INVDL_OK);
    assert_old_file_intact(f);
}

/* Whether a new file can be made in dir. */
static int can_create_in(const char *dir)
{
    char probe[128];
    snprintf(probe, sizeof probe, "%s/probe", dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return 0;
    close(fd);
    unlink(probe);
    return 1;
}

/* Sets or clears the immutable attribute of dir; 0 if not supported. */
static int set_immutable(const char *dir, int on)
{
#if defined(FS_IOC_GETFLAGS) && defined(FS_IOC_SETFLAGS) && defined(FS_IMMUTABLE_FL)
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return 0;
    int flags = 0, ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
    if (ok) {
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    close(fd);
    return ok;
#else
    (void)dir, (void)on;
    return 0;
#endif
}

static void test_unwritable_directory(void **state)
{
    files *f = *state;
    const char *how = "chmod 0500";
    int immutable = 0;
    assert_int_equal(chmod(f->dir, 0500), 0);
    if (can_create_in(f->dir)) {
        /* Permissions do not bind this process (root). */
        assert_int_equal(chmod(f->dir, 0700), 0);
        how = "the immutable attribute";
        immutable = set_immutable(f->dir, 1);
        if (immutable && can_create_in(f->dir)) {
            assert_true(set_immutable(f->dir, 0));
            immutable = 0;
        }
        if (!immutable) {
            print_message("no way to make a directory unwritable here (permissions do not "
                          "bind this user and the immutable attribute is not available)\n");
            skip();
        }
    }
    print_message("unwritable directory by %s\n", how);
    invdl_status st = invdl_model_save(f->b, f->path);
    if (immutable)
        assert_true(set_immutable(f->dir, 0));
    else
        assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(st, INVDL_EIO);
    assert_old_file_intact(f);
}

static void test_path_is_directory(void **state)
{
    files *f = *state;
    char sub[128], inner[160];
    snprintf(sub, sizeof sub, "%s/sub", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    /* An empty directory (rename could replace an empty directory only
     * by a directory), then one holding a file. */
    assert_int_equal(invdl_model_save(f->b, sub), INVDL_EIO);
    struct stat info;
    assert_int_equal(stat(sub, &info), 0);
    assert_true(S_ISDIR(info.st_mode));
    snprintf(inner, sizeof inner, "%s/keep", sub);
    FILE *keep = fopen(inner, "w");
    assert_non_null(keep);
    fclose(keep);
    assert_int_equal(invdl_model_save(f->b, sub), INVDL_EIO);
    assert_int_equal(stat(inner, &info), 0);
    assert_int_equal(count_entries(f->dir), 2);
    assert_int_equal(remove(inner), 0);
    assert_int_equal(rmdir(sub), 0);
    /* A file where a directory should be, a missing directory, an empty
     * path. */
    char below[160];
    snprintf(below, sizeof below, "%s/model.invdl", f->path);
    assert_int_equal(invdl_model_save(f->b, below), INVDL_EIO);
    snprintf(below, sizeof below, "%s/missing/model.invdl", f->dir);
    assert_int_equal(invdl_model_save(f->b, below), INVDL_EIO);
    assert_int_equal(invdl_model_save(f->b, ""), INVDL_EIO);
    assert_old_file_intact(f);
}

/* The temporary file's name does not grow with the target's: every name
 * the file system takes can be saved to (NAME_MAX bytes, 255 on most),
 * new or replaced, and a name one byte too long is INVDL_EIO with nothing
 * left behind. */
static void test_long_file_names(void **state)
{
    files *f = *state;
    long name_max = pathconf(f->dir, _PC_NAME_MAX);
    if (name_max < 0 || name_max > 1000)
        name_max = 255;
    const size_t lengths[] = {1, (size_t)name_max - 12, (size_t)name_max - 1, (size_t)name_max};
    char path[1100];
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        int at = snprintf(path, sizeof path, "%s/", f->dir);
        memset(path + at, 'm', lengths[k]);
        path[(size_t)at + lengths[k]] = '\0';
        for (int again = 0; again < 2; again++) {
            assert_int_equal(invdl_model_save(f->b, path), INVDL_OK);
            invdl_status st = INVDL_EIO;
            invdl_model *m = invdl_model_load(path, &st);
            assert_int_equal(st, INVDL_OK);
            assert_int_equal(invdl_model_depth(m), invdl_model_depth(f->b));
            invdl_model_free(m);
            assert_int_equal(count_entries(f->dir), 2);
        }
        assert_int_equal(unlink(path), 0);
    }
    int at = snprintf(path, sizeof path, "%s/", f->dir);
    memset(path + at, 'm', (size_t)name_max + 1);
    path[(size_t)at + (size_t)name_max + 1] = '\0';
    assert_int_equal(invdl_model_save(f->b, path), INVDL_EIO);
    assert_old_file_intact(f);
}

/* A new file gets the mode fopen() would give it, 0666 less the umask; a
 * replaced file keeps its own mode whatever the umask. */
static void test_file_modes(void **state)
{
    files *f = *state;
    const mode_t masks[] = {077, 027, 022, 002, 0};
    char fresh[128];
    struct stat info;
    snprintf(fresh, sizeof fresh, "%s/fresh.invdl", f->dir);
    mode_t saved = umask(022);
    for (size_t k = 0; k < sizeof masks / sizeof masks[0]; k++) {
        umask(masks[k]);
        invdl_status st = invdl_model_save(f->b, fresh);
        int got = stat(fresh, &info);
        umask(saved);
        assert_int_equal(st, INVDL_OK);
        assert_int_equal(got, 0);
        assert_int_equal(info.st_mode & 07777, 0666 & ~masks[k]);
        assert_int_equal(unlink(fresh), 0);
    }
    const mode_t kept[] = {0640, 0604, 0600, 0666};
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
        assert_int_equal(chmod(f->path, kept[k]), 0);
        for (size_t j = 0; j < sizeof masks / sizeof masks[0]; j += 4) {
            umask(masks[j]);
            invdl_status st = invdl_model_save(f->a, f->path);
            int got = stat(f->path, &info);
            umask(saved);
            assert_int_equal(st, INVDL_OK);
            assert_int_equal(got, 0);
            assert_int_equal(info.st_mode & 07777, kept[k]);
        }
    }
    assert_old_file_intact(f);
}

/* Loading from a FIFO with no writer, a device, a directory, a dangling
 * link: INVDL_EIO at once, never a wait. */
static void test_load_odd_paths(void **state)
{
    files *f = *state;
    char p[128];
    invdl_status st;
    snprintf(p, sizeof p, "%s/fifo", f->dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    st = INVDL_OK;
    alarm(10); /* a load that waits for a writer ends the test */
    assert_null(invdl_model_load(p, &st));
    alarm(0);
    assert_int_equal(st, INVDL_EIO);
    assert_int_equal(unlink(p), 0);
    st = INVDL_OK;
    assert_null(invdl_model_load("/dev/null", &st));
    assert_int_equal(st, INVDL_EIO);
    st = INVDL_OK;
    assert_null(invdl_model_load(f->dir, &st));
    assert_int_equal(st, INVDL_EIO);
    snprintf(p, sizeof p, "%s/link", f->dir);
    assert_int_equal(symlink("nowhere", p), 0);
    st = INVDL_OK;
    assert_null(invdl_model_load(p, &st));
    assert_int_equal(st, INVDL_EIO);
    assert_int_equal(unlink(p), 0);
    assert_old_file_intact(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_is_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_odd_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_file_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
