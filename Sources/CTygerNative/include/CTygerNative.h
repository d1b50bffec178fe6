// C shims for the pieces of the data path that Swift cannot reach directly on Linux:
// isa-l's CRC32C and igzip, zlib for the higher compression levels, and the Linux-only
// syscalls splice/vmsplice/renameat2 and pipe sizing.
#ifndef C_TYGER_NATIVE_H
#define C_TYGER_NATIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// CRC32C (Castagnoli) of `len` bytes, continuing from `crc` (pass 0 to start).
uint32_t tyger_crc32c(uint32_t crc, const void *buf, size_t len);

/// zlib-format deflate of `in` into `out`. Level 1 uses isa-l igzip, 2...9 use zlib.
/// Returns 0 on success (with `*out_len` set), 1 when `out` is too small, negative on error.
int tyger_deflate(int level, const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len);

/// Inflates a zlib-format stream (libdeflate, which checks the Adler-32 trailer). Returns 0 on success, 1 when
/// `out` is too small, 2 when bytes follow the stream, negative when the stream is corrupt or truncated.
int tyger_inflate(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len);

/// Upper bound of the deflate output for `len` input bytes.
size_t tyger_deflate_bound(size_t len);

/// Fills `len` bytes with the `buffer gen` pattern as it appears at stream offset `offset`.
void tyger_gen_fill(void *buf, size_t len, uint64_t offset);

/// splice(2) from `fd_in` (at `*off_in` if not NULL) to `fd_out`. Returns bytes moved or -1 (errno set).
ssize_t tyger_splice(int fd_in, int64_t *off_in, int fd_out, size_t len, unsigned int more);

/// vmsplice(2) of one iovec into the pipe `fd`. Returns bytes moved or -1 (errno set).
ssize_t tyger_vmsplice(int fd, const void *base, size_t len);

/// renameat2(RENAME_NOREPLACE). Returns 0 or -1 (errno set; EEXIST when `newpath` exists).
int tyger_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// Sets the capacity of a pipe (F_SETPIPE_SZ). Returns the new size or -1.
int tyger_set_pipe_size(int fd, int size);

/// Returns the capacity of a pipe (F_GETPIPE_SZ) or -1.
int tyger_get_pipe_size(int fd);

/// syncfs(2) on the filesystem that holds `fd`.
int tyger_syncfs(int fd);

/// flock(2) wrappers: exclusive/shared, non-blocking. 0 on success, -1 (errno EWOULDBLOCK when held).
int tyger_flock(int fd, int exclusive, int nonblocking);

/// Sets O_NONBLOCK on (`on` != 0) or off.
int tyger_set_nonblocking(int fd, int on);

/// Sets or clears O_DIRECT on an open descriptor. Returns -1 with errno (EINVAL where the file system has no direct
/// I/O, as tmpfs).
int tyger_set_direct(int fd, int on);


#endif

#ifndef C_TYGER_NATIVE_SPAWN_H
#define C_TYGER_NATIVE_SPAWN_H
/// Starts `path` with `argv` (NULL-terminated) in a new session, stdin from /dev/null and stdout/stderr to
/// `log_fd`, not waiting for it. Returns the child's pid, or -1 (errno set).
int tyger_spawn_detached(const char *path, char *const argv[], int log_fd);
#endif

#ifndef C_TYGER_NATIVE_MD5_H
#define C_TYGER_NATIVE_MD5_H
/// MD5 of `count` (>= 1) messages of the same length, hashed side by side in SIMD lanes: 16 at a time with
/// AVX-512 (about 8 GB/s per core for 16 messages, 4 GB/s for 8 on AMD Zen 5), 8 at a time with AVX2 (about
/// 2.9 GB/s), else one by one in plain C (about 0.9 GB/s). Batches of 16 use the AVX-512 lanes fully; larger counts
/// are hashed in passes of 16. `digests` receives `count` 16-byte digests. Returns 1 when a SIMD path ran, 0 when
/// every message was hashed in plain C (always so for a single message).
int tyger_md5_multi(const void *const *messages, int count, size_t length, unsigned char *digests);
#endif
