#define _GNU_SOURCE
#include "CTygerSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int tyger_spawn_io(const char *path, char *const argv[], char *const envp[], const char *cwd, int stdin_fd,
                   int stdout_fd, int stderr_fd, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return rc;
    }
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (rc == 0) {
        rc = stdin_fd >= 0 ? posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0)
                           : posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    }
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Only stdio goes to the child. Descriptors the server opened without O_CLOEXEC (its listening socket, client
    // connections) would otherwise outlive a killed server in the run's processes, and a restarted server would
    // find its socket still answering ("another server is already listening").
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    if (rc == 0 && cwd != NULL) rc = posix_spawn_file_actions_addchdir_np(&actions, cwd);
    if (rc == 0) rc = posix_spawnattr_setflags(
                      &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0) rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

/// Decodes a waitpid status as `tyger_wait` reports it.
static void decode_status(int status, int *code, int *signal) {
    if (WIFEXITED(status)) {
        *code = WEXITSTATUS(status);
        *signal = 0;
    } else if (WIFSIGNALED(status)) {
        *signal = WTERMSIG(status);
        *code = 128 + *signal;
    } else {
        *code = -1;
        *signal = 0;
    }
}

int tyger_wait(pid_t pid, int *code, int *signal) {
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, 0);
        if (r == pid) break;
        if (r < 0 && errno == EINTR) continue;
        return errno;
    }
    decode_status(status, code, signal);
    return 0;
}

int tyger_kill_group(pid_t pgid, int sig) { return kill(-pgid, sig) == 0 ? 0 : errno; }

int tyger_kill(pid_t pid, int sig) { return kill(pid, sig) == 0 ? 0 : errno; }

int tyger_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int tyger_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int tyger_wait_timeout(pid_t pid, int timeout_ms, int *code, int *signal) {
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (int waited = 0;; waited += 5) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == pid) {
            decode_status(status, code, signal);
            return 0;
        }
        if (waited >= timeout_ms) return ETIMEDOUT;
        nanosleep(&pause, NULL);
    }
}

int tyger_open_path(const char *path) { return open(path, O_PATH | O_CLOEXEC); }
