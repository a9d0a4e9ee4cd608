#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

int notify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_storage ss;
    socklen_t len;
    size_t n = strlen(state);
    ssize_t sent;
    int fd, err;

    if (path == NULL || path[0] == '\0')
        return 0;
    if (parse_unix_sockaddr(path, &ss, &len) < 0 || n == 0 || n > NOTIFY_STATE_MAX)
        return -EINVAL;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* One datagram: the manager reads each as a whole set of
     * assignments.  MSG_NOSIGNAL: a manager gone away is an error here,
     * not a SIGPIPE. */
    do
        sent = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&ss, len);
    while (sent < 0 && errno == EINTR);
    err = sent < 0 ? -errno : (size_t)sent != n ? -EMSGSIZE : 1;
    close(fd);
    return err;
}

uint64_t notify_monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int notify_reloading(void)
{
    char state[64];

    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, notify_monotonic_usec());
    return notify_send(state);
}
