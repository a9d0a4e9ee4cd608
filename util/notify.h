/*
 * notify - tell the service manager how the daemon is doing (systemd's
 * sd_notify protocol, without libsystemd).
 *
 * When systemd starts a Type=notify service it puts the path of a Unix
 * datagram socket in NOTIFY_SOCKET ("/run/systemd/notify", or "@name" for
 * one in the abstract namespace).  notify_send() sends one datagram of
 * newline-separated assignments to it: "READY=1" once the daemon serves,
 * "RELOADING=1" and "READY=1" around a reload, "STOPPING=1" as it stops,
 * "STATUS=..." for people (systemctl status).  Without NOTIFY_SOCKET it
 * does nothing, so the daemon runs the same by hand.
 *
 * The environment variable is read at each call; nothing is kept open.
 * Errors are returned, never logged: the caller decides whether a service
 * manager that cannot be told is worth a warning.
 */
#ifndef MXFWD_NOTIFY_H
#define MXFWD_NOTIFY_H

#include <stdint.h>

/* Longest state sent at once. */
#define NOTIFY_STATE_MAX 1024

/* Send state ("READY=1\nSTATUS=serving") to $NOTIFY_SOCKET.  1 when sent,
 * 0 when there is no NOTIFY_SOCKET, -EINVAL for an unusable socket
 * address or state, or -errno from socket(2)/sendto(2). */
int notify_send(const char *state);

/* "RELOADING=1" with "MONOTONIC_USEC=" the CLOCK_MONOTONIC time of now, as
 * systemd wants a reload announced (since v253 it matches it with the
 * READY=1 that ends the reload).  As notify_send(). */
int notify_reloading(void);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t notify_monotonic_usec(void);

#endif
