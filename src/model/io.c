/*
 * io.c - model files.
 *
 * Format, version 1.  All integers are unsigned little-endian; floats are
 * IEEE 754 binary32 bit patterns stored as little-endian u32, so a loaded
 * model holds bit-identical parameters.
 *
 *   offset  size  field
 *   0       8     magic "INVDLMDL"
 *   8       4     version = 1
 *   12      4     flags = 0 (reserved)
 *   16      8     width (1 to INVDL_MAX_WIDTH)
 *   24      8     B: parameter blocks
 *   32      8     L: layers
 *   40            B blocks, each:
 *                   u32 kind (1 ssin, 2 abstanh, 3 mprelu, 4 dense,
 *                       5 dense_lu, 6 coupling)
 *                   u32 S: settings (mprelu 1: alpha_min; dense_lu
 *                       1 + width: s_min, then the permutation p_0 ..
 *                       p_width-1 as exact integers; coupling 2: hidden
 *                       and flags as exact integers; others 0)
 *                   u64 V: values (0; 0; width; width*width + width;
 *                       width*width + width; coupling hidden*(d1 + 1 + m)
 *                       + m, d1 condition features, m rows of W2)
 *                   f32 settings[S], f32 values[V]
 *                 L layers, in the order they are applied, each:
 *                   u64 block index (< B)
 *                   u32 direction (0 forward, 1 inverse)
 *                   u32 reserved = 0
 *   end - 4 4     CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320,
 *                 initial value and final xor 0xFFFFFFFF) of every byte
 *                 before it
 *
 * Each block appears once however many layers use it, so layers that
 * share parameters in a model share them again after loading.  Every
 * block is used by at least one layer.  The loader checks the size and the
 * CRC before anything else (CRC-32 detects every single-bit error and
 * every burst up to 32 bits), then every field: known kind, the kind's
 * setting and value counts, finite values, valid settings (a permutation
 * that is one), a nonsingular W, indices in range, reserved fields 0, and
 * no byte left over.  It builds nothing until the whole file has been
 * read.
 *
 * Compatibility.  The kinds added since version 1 was defined (dense_lu,
 * coupling) change nothing in the layout, so the version stays 1: files
 * written before them load unchanged, and a reader that predates a kind
 * refuses a file holding it (INVDL_EFORMAT: unknown kind) before reading
 * its block.
 */
#define _POSIX_C_SOURCE 200809L

#include "model.h"
#include "rng.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_MAGIC "INVDLMDL"
#define FILE_VERSION 1u
#define HEADER_BYTES 40u
#define BLOCK_BYTES 16u
#define LAYER_BYTES 16u
#define CRC_BYTES 4u

/* CRC-32 four bits at a time: a 16-entry table, no mutable state. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
        0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
    };
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15u];
        crc = (crc >> 4) ^ nibble[crc & 15u];
    }
    return crc ^ 0xffffffffu;
}

/* ---- writing ------------------------------------------------------------- */

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 4;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

static unsigned char *put_floats(unsigned char *p, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        p = put_u32(p, bits);
    }
    return p;
}

/* Bytes of the file for these blocks, 0 if it would overflow. */
static size_t file_size(const invdl_model *m, invdl_params *const *blocks, size_t nblocks)
{
    size_t size = HEADER_BYTES + CRC_BYTES, layers;
    if (!invdl_mul_size(m->depth, LAYER_BYTES / sizeof(float), &layers))
        return 0;
    size += layers * sizeof(float);
    for (size_t b = 0; b < nblocks; b++) {
        size_t ns = blocks[b]->nsettings, floats = ns + blocks[b]->count;
        /* S is a u32 in the file. */
        if (ns > UINT32_MAX || ns > SIZE_MAX - blocks[b]->count ||
            floats > (SIZE_MAX - size - BLOCK_BYTES) / sizeof(float))
            return 0;
        size += BLOCK_BYTES + floats * sizeof(float);
    }
    return size;
}

static void serialize(const invdl_model *m, invdl_params *const *blocks, size_t nblocks,
                      unsigned char *out, size_t size)
{
    unsigned char *p = out;
    memcpy(p, FILE_MAGIC, 8);
    p = put_u32(p + 8, FILE_VERSION);
    p = put_u32(p, 0);
    p = put_u64(p, m->width);
    p = put_u64(p, nblocks);
    p = put_u64(p, m->depth);
    for (size_t b = 0; b < nblocks; b++) {
        const invdl_params *k = blocks[b];
        p = put_u32(p, k->ops->kind);
        p = put_u32(p, (uint32_t)k->nsettings);
        p = put_u64(p, k->count);
        p = put_floats(p, k->settings, k->nsettings);
        p = put_floats(p, k->values, k->count);
    }
    for (size_t l = 0; l < m->depth; l++) {
        size_t index = 0;
        while (blocks[index] != m->layers[l]->params)
            index++;
        p = put_u64(p, index);
        p = put_u32(p, (uint32_t)m->layers[l]->inverse);
        p = put_u32(p, 0);
    }
    put_u32(p, crc32_of(out, size - CRC_BYTES));
}

/* The file's bytes in a new array (*size bytes); NULL on ENOMEM or a size
 * that does not fit. */
static unsigned char *to_bytes(const invdl_model *m, size_t *size, invdl_status *status)
{
    invdl_params **blocks;
    size_t nblocks;
    *status = INVDL_ENOMEM;
    if (invdl_model_blocks(m, &blocks, &nblocks) != INVDL_OK)
        return NULL;
    *size = file_size(m, blocks, nblocks);
    unsigned char *bytes = *size == 0 ? NULL : invdl_malloc(*size);
    if (bytes != NULL) {
        serialize(m, blocks, nblocks, bytes, *size);
        *status = INVDL_OK;
    }
    invdl_free(blocks);
    return bytes;
}

invdl_status invdl_model_save_memory(const invdl_model *model, void *data, size_t capacity,
                                     size_t *size)
{
    if (model == NULL || size == NULL)
        return INVDL_EINVAL;
    invdl_params **blocks;
    size_t nblocks;
    if (invdl_model_blocks(model, &blocks, &nblocks) != INVDL_OK)
        return INVDL_ENOMEM;
    size_t need = file_size(model, blocks, nblocks);
    invdl_status st = INVDL_OK;
    if (need == 0) {
        st = INVDL_ENOMEM;
    } else {
        *size = need;
        if (data == NULL && capacity == 0)
            st = INVDL_OK;
        else if (data == NULL || capacity < need)
            st = INVDL_EINVAL;
        else
            serialize(model, blocks, nblocks, data, need);
    }
    invdl_free(blocks);
    return st;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Syncs the directory holding path (its first dir_len bytes), so that the
 * rename is durable.  buf has room for dir_len + 1 bytes. */
static void sync_directory(const char *path, size_t dir_len, char *buf)
{
    const char *dir = ".";
    if (dir_len > 0) {
        memcpy(buf, path, dir_len);
        buf[dir_len] = '\0';
        dir = buf;
    }
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        (void)close(fd);
    }
}

/* The temporary file's name in the target's directory: fixed, whatever
 * the length of the target's name, so that every name that can be saved
 * to has room for it. */
#define TEMP_PREFIX ".invdl-tmp-"
#define TEMP_RANDOM 12
#define TEMP_ATTEMPTS 100

/* Creates the temporary file in path's directory (its first dir_len
 * bytes) with open(O_CREAT | O_EXCL, mode): the umask applies as it does
 * to fopen().  mkstemp() would create it 0600 and leave the mode to set
 * afterwards, and reading the umask means changing it, which no thread
 * can do safely while others create files.  The name's random part comes
 * from the time, the process and this call's buffer address, and a name
 * that exists already is drawn again.  tmp receives the name.  Returns
 * the descriptor, or -1. */
static int create_temporary(const char *path, size_t dir_len, mode_t mode, char *tmp)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    struct timespec now = {0, 0};
    (void)clock_gettime(CLOCK_REALTIME, &now);
    uint64_t state = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    state ^= (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)tmp;
    memcpy(tmp, path, dir_len);
    char *name = tmp + dir_len, *random = name + sizeof TEMP_PREFIX - 1;
    memcpy(name, TEMP_PREFIX, sizeof TEMP_PREFIX - 1);
    random[TEMP_RANDOM] = '\0';
    for (int attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
        uint64_t r = invdl_rng_next(&state);
        for (int i = 0; i < TEMP_RANDOM; i++, r /= 36)
            random[i] = digits[r % 36];
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

invdl_status invdl_model_save(const invdl_model *model, const char *path)
{
    if (model == NULL || path == NULL)
        return INVDL_EINVAL;
    const char *slash = strrchr(path, '/');
    size_t len = strlen(path), dir_len = slash == NULL ? 0 : (size_t)(slash - path) + 1;
    size_t size, tmp_size = dir_len + sizeof TEMP_PREFIX + TEMP_RANDOM;
    invdl_status st;
    unsigned char *bytes = to_bytes(model, &size, &st);
    char *tmp = invdl_malloc(tmp_size);
    if (bytes == NULL || tmp == NULL) {
        invdl_free(bytes);
        invdl_free(tmp);
        return INVDL_ENOMEM;
    }
    /* The temporary file sits beside the target, on the same file system,
     * so that rename() replaces the target in one step.  A file being
     * replaced keeps its mode: the temporary starts private and gets that
     * mode before anything is written. */
    st = INVDL_EIO;
    struct stat old;
    int replacing = stat(path, &old) == 0;
    int fd = len == dir_len ? -1 : create_temporary(path, dir_len, replacing ? 0600 : 0666, tmp);
    if (fd >= 0) {
        int ok = (!replacing || fchmod(fd, old.st_mode & 07777) == 0) &&
                 write_all(fd, bytes, size) && fsync(fd) == 0;
        ok &= close(fd) == 0;
        if (ok && rename(tmp, path) == 0) {
            sync_directory(path, dir_len, tmp);
            st = INVDL_OK;
        } else {
            (void)unlink(tmp);
        }
    }
    invdl_free(tmp);
    invdl_free(bytes);
    return st;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

static int get_u32(reader *r, uint32_t *v)
{
    if (r->left < 4)
        return 0;
    *v = 0;
    for (int i = 0; i < 4; i++)
        *v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    r->left -= 4;
    return 1;
}

static int get_u64(reader *r, uint64_t *v)
{
    uint32_t lo, hi;
    if (r->left < 8 || !get_u32(r, &lo) || !get_u32(r, &hi))
        return 0;
    *v = (uint64_t)hi << 32 | lo;
    return 1;
}

static int get_floats(reader *r, float *v, size_t n)
{
    if (r->left / 4 < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = 0;
        (void)get_u32(r, &bits);
        memcpy(&v[i], &bits, sizeof bits);
    }
    return 1;
}

static void free_layers(invdl_layer **layers, size_t n)
{
    if (layers == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        invdl_layer_free(layers[i]);
    invdl_free(layers);
}

/* Reads one block into a new forward layer at *layer. */
static invdl_status read_block(reader *r, size_t width, invdl_layer **layer)
{
    uint32_t kind, nsettings;
    uint64_t nvalues;
    size_t expected;
    if (!get_u32(r, &kind) || !get_u32(r, &nsettings) || !get_u64(r, &nvalues))
        return INVDL_EFORMAT;
    const invdl_layer_ops *ops = invdl_layer_ops_for_kind(kind);
    if (ops == NULL || !invdl_settings_count(ops, width, &expected) || nsettings != expected ||
        nsettings > r->left / 4)
        return INVDL_EFORMAT;
    float *settings = NULL, *values = NULL;
    if (nsettings > 0) {
        settings = invdl_alloc_array(nsettings, sizeof *settings);
        if (settings == NULL)
            return INVDL_ENOMEM;
        (void)get_floats(r, settings, nsettings);
    }
    invdl_status st = INVDL_EFORMAT;
    /* The value count may depend on the settings (read, not yet checked:
     * count() copes with any). */
    if (nvalues != ops->count(width, settings) || nvalues > r->left / 4)
        goto done;
    if (nvalues > 0) {
        values = invdl_alloc_array((size_t)nvalues, sizeof *values);
        if (values == NULL) {
            st = INVDL_ENOMEM;
            goto done;
        }
        (void)get_floats(r, values, (size_t)nvalues);
    }
    *layer = invdl_layer_create(ops, width, settings, values, &st);
    if (*layer == NULL && st != INVDL_ENOMEM)
        st = INVDL_EFORMAT;
done:
    invdl_free(settings);
    return st;
}

/* Reads the B blocks into one forward layer each. */
static invdl_status read_blocks(reader *r, size_t width, invdl_layer **blocks, size_t nblocks)
{
    for (size_t b = 0; b < nblocks; b++) {
        invdl_status st = read_block(r, width, &blocks[b]);
        if (st != INVDL_OK)
            return st;
    }
    return INVDL_OK;
}

invdl_model *invdl_model_load_memory(const void *data, size_t size, invdl_status *status)
{
    invdl_status st = INVDL_EFORMAT;
    invdl_layer **blocks = NULL;
    invdl_model *m = NULL;
    size_t nblocks = 0;
    const unsigned char *bytes = data;
    if (data == NULL && size > 0) {
        st = INVDL_EINVAL;
        goto fail;
    }
    if (size < HEADER_BYTES + CRC_BYTES)
        goto fail;
    reader crc = {bytes + size - CRC_BYTES, CRC_BYTES};
    uint32_t stored_crc = 0, version = 0, flags = 0;
    (void)get_u32(&crc, &stored_crc);
    if (stored_crc != crc32_of(bytes, size - CRC_BYTES) || memcmp(bytes, FILE_MAGIC, 8) != 0)
        goto fail;
    reader r = {bytes + 8, size - 8 - CRC_BYTES};
    uint64_t width = 0, b64 = 0, depth = 0;
    (void)get_u32(&r, &version);
    (void)get_u32(&r, &flags);
    (void)get_u64(&r, &width);
    (void)get_u64(&r, &b64);
    (void)get_u64(&r, &depth);
    /* Counts are bounded by the bytes they need before anything is
     * allocated for them. */
    if (version != FILE_VERSION || flags != 0 || width == 0 || width > INVDL_MAX_WIDTH ||
        b64 > r.left / BLOCK_BYTES || depth > r.left / LAYER_BYTES || b64 > depth)
        goto fail;
    nblocks = (size_t)b64;
    blocks = invdl_calloc_array(nblocks, sizeof *blocks);
    m = invdl_model_create((size_t)width);
    if (blocks == NULL || m == NULL) {
        st = INVDL_ENOMEM;
        goto fail;
    }
    st = read_blocks(&r, (size_t)width, blocks, nblocks);
    if (st != INVDL_OK)
        goto fail;
    st = INVDL_EFORMAT;
    if (r.left != depth * LAYER_BYTES)
        goto fail;
    for (size_t l = 0; l < depth; l++) {
        uint64_t index = 0;
        uint32_t direction = 0, reserved = 0;
        (void)get_u64(&r, &index);
        (void)get_u32(&r, &direction);
        (void)get_u32(&r, &reserved);
        if (index >= nblocks || direction > 1 || reserved != 0)
            goto fail;
        invdl_layer *layer = invdl_layer_share(blocks[index], (int)direction);
        if (layer == NULL || invdl_model_add(m, layer) != INVDL_OK) {
            st = INVDL_ENOMEM;
            goto fail;
        }
    }
    /* Every block must be used by some layer. */
    for (size_t b = 0; b < nblocks; b++) {
        int used = 0;
        for (size_t l = 0; l < m->depth && !used; l++)
            used = invdl_layer_shares_params(m->layers[l], blocks[b]);
        if (!used)
            goto fail;
    }
    free_layers(blocks, nblocks);
    if (status != NULL)
        *status = INVDL_OK;
    return m;

fail:
    free_layers(blocks, nblocks);
    invdl_model_free(m);
    if (status != NULL)
        *status = st;
    return NULL;
}

invdl_model *invdl_model_load(const char *path, invdl_status *status)
{
    invdl_status st = INVDL_EINVAL;
    unsigned char *bytes = NULL;
    invdl_model *m = NULL;
    int fd = -1;
    if (path == NULL)
        goto done;
    st = INVDL_EIO;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a
     * writer; anything but a regular file is refused below, and reads of
     * a regular file ignore the flag. */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || info.st_size < 0)
        goto done;
    if ((uintmax_t)info.st_size > (uintmax_t)PTRDIFF_MAX) {
        st = INVDL_ENOMEM;
        goto done;
    }
    size_t size = (size_t)info.st_size, got = 0;
    bytes = invdl_malloc(size);
    if (bytes == NULL) {
        st = INVDL_ENOMEM;
        goto done;
    }
    while (got < size) {
        ssize_t n = read(fd, bytes + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        if (n == 0)
            break; /* shrank while being read: judged on what is there */
        got += (size_t)n;
    }
    m = invdl_model_load_memory(bytes, got, &st);
done:
    if (fd >= 0)
        (void)close(fd);
    invdl_free(bytes);
    if (status != NULL)
        *status = st;
    return m;
}
