#define _GNU_SOURCE
#include "CTygerNative.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

uint32_t tyger_crc32c(uint32_t crc, const void *buf, size_t len) {
    // isa-l works on the raw register: undo the final inversion, run, invert again.
    uint32_t reg = crc ^ 0xffffffffu;
    const unsigned char *p = (const unsigned char *)buf;
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        reg = crc32_iscsi((unsigned char *)p, chunk, reg);
        p += chunk;
        len -= (size_t)chunk;
    }
    return reg ^ 0xffffffffu;
}

size_t tyger_deflate_bound(size_t len) { return len + len / 1000 + 1024; }

static int deflate_isal(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len) {
    if (in_len > 0xffffffffu || out_cap > 0xffffffffu) return -2;
    struct isal_zstream stream;
    isal_deflate_stateless_init(&stream);
    uint8_t *level_buf = malloc(ISAL_DEF_LVL1_DEFAULT);
    if (!level_buf) return -3;
    stream.level = 1;
    stream.level_buf = level_buf;
    stream.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    stream.gzip_flag = IGZIP_ZLIB;
    stream.end_of_stream = 1;
    stream.flush = NO_FLUSH;
    stream.next_in = (uint8_t *)in;
    stream.avail_in = (uint32_t)in_len;
    stream.next_out = (uint8_t *)out;
    stream.avail_out = (uint32_t)out_cap;
    int rc = isal_deflate_stateless(&stream);
    free(level_buf);
    if (rc == STATELESS_OVERFLOW) return 1;
    if (rc != COMP_OK) return -1;
    *out_len = stream.total_out;
    return 0;
}

int tyger_deflate(int level, const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len) {
    if (level <= 1) return deflate_isal(in, in_len, out, out_cap, out_len);
    uLongf dest = (uLongf)out_cap;
    int rc = compress2((Bytef *)out, &dest, (const Bytef *)in, (uLong)in_len, level > 9 ? 9 : level);
    if (rc == Z_BUF_ERROR) return 1;
    if (rc != Z_OK) return -1;
    *out_len = (size_t)dest;
    return 0;
}

int tyger_inflate(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len) {
    // libdeflate: about 10 % faster than isa-l's inflate on mixed data here (0.87 against 0.79 GB/s per core on
    // 4 MiB blocks of a tar of /usr), with the same Adler-32 check of the zlib trailer.
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) return -3;
    size_t consumed = 0, produced = 0;
    enum libdeflate_result rc = libdeflate_zlib_decompress_ex(d, in, in_len, out, out_cap, &consumed, &produced);
    libdeflate_free_decompressor(d);
    if (rc == LIBDEFLATE_INSUFFICIENT_SPACE) return 1;
    if (rc != LIBDEFLATE_SUCCESS) return -1;
    if (consumed != in_len) return 2;
    *out_len = produced;
    return 0;
}

void tyger_gen_fill(void *buf, size_t len, uint64_t offset) {
    unsigned char *p = (unsigned char *)buf;
    unsigned char pattern[128];
    for (int i = 0; i < 128; i++) pattern[i] = (unsigned char)(':' + (i % 64));
    size_t phase = (size_t)(offset % 64);
    // Head: up to the next 64-byte boundary of the stream.
    while (len > 0 && phase != 0) {
        *p++ = pattern[phase];
        phase = (phase + 1) % 64;
        len--;
    }
    while (len >= 64) {
        memcpy(p, pattern, 64);
        p += 64;
        len -= 64;
    }
    if (len) memcpy(p, pattern, len);
}

ssize_t tyger_splice(int fd_in, int64_t *off_in, int fd_out, size_t len, unsigned int more) {
    loff_t off = off_in ? (loff_t)*off_in : 0;
    ssize_t n = splice(fd_in, off_in ? &off : NULL, fd_out, NULL, len, SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0));
    if (n > 0 && off_in) *off_in = (int64_t)off;
    return n;
}

ssize_t tyger_vmsplice(int fd, const void *base, size_t len) {
    struct iovec iov = {.iov_base = (void *)base, .iov_len = len};
    return vmsplice(fd, &iov, 1, 0);
}

int tyger_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
}

int tyger_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int tyger_get_pipe_size(int fd) { return fcntl(fd, F_GETPIPE_SZ); }
int tyger_syncfs(int fd) { return syncfs(fd); }

int tyger_flock(int fd, int exclusive, int nonblocking) {
    int op = (exclusive ? LOCK_EX : LOCK_SH) | (nonblocking ? LOCK_NB : 0);
    int rc;
    do { rc = flock(fd, op); } while (rc == -1 && errno == EINTR);
    return rc;
}

int tyger_set_direct(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
    return fcntl(fd, F_SETFL, flags);
}

int tyger_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}


#include <signal.h>
#include <spawn.h>
extern char **environ;

int tyger_spawn_detached(const char *path, char *const argv[], int log_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // The long-lived server must not keep the starting CLI's other descriptors (a caller's pipes would never see
    // end of file; its files would stay open), nor pass them on to the run processes it spawns.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path, &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}
