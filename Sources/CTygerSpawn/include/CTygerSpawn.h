#ifndef CTYGER_SPAWN_H
#define CTYGER_SPAWN_H

#include <sys/types.h>

/// Spawns `path` (an absolute or relative path, no PATH search) in a new process group whose id is the child's pid.
/// stdin is dup2'ed from `stdin_fd` (/dev/null when it is negative), stdout and stderr from the given descriptors;
/// every other descriptor is closed in the child (glibc ≥ 2.34); every signal is reset to its default disposition and the signal
/// mask is cleared (the server ignores SIGPIPE; its children must not). `cwd` may be NULL. Returns 0 and sets *pid,
/// or an errno value.
int tyger_spawn_io(const char *path, char *const argv[], char *const envp[], const char *cwd, int stdin_fd,
                   int stdout_fd, int stderr_fd, pid_t *pid);

/// Waits for `pid` to end for at most `timeout_ms` milliseconds (polling every 5 ms). Returns 0 with *code and
/// *signal set as `tyger_wait` does, ETIMEDOUT when it is still running, or another errno value.
int tyger_wait_timeout(pid_t pid, int timeout_ms, int *code, int *signal);

/// memfd_create(name, MFD_CLOEXEC): an anonymous file in memory. Returns the descriptor or -1.
int tyger_memfd(const char *name);

/// Waits (blocking, retrying on EINTR) for `pid` to end. Sets *code to the exit status, or to 128 + signal number
/// when it was killed by a signal, and *signal to that signal (0 if it exited). Returns 0 or an errno value.
int tyger_wait(pid_t pid, int *code, int *signal);

/// Sends `sig` to every process of the group `pgid`. Returns 0 or an errno value (ESRCH when the group is empty).
int tyger_kill_group(pid_t pgid, int sig);

/// Sends `sig` to `pid`. Returns 0 or an errno value.
int tyger_kill(pid_t pid, int sig);

/// pipe2(fds, O_CLOEXEC). Returns 0 or -1 with errno set.
int tyger_pipe_cloexec(int fds[2]);

/// open(path, O_PATH | O_CLOEXEC): a handle on the file itself (a FIFO can later be reopened through
/// /proc/self/fd/N even after it was unlinked). Returns the descriptor or -1.
int tyger_open_path(const char *path);

#endif
