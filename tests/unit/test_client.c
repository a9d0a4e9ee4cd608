/*
 * Unit tests for client/: what the outbound client can be asked without a
 * network peer.  A connect on loopback to a closed port in the ephemeral
 * range can land on its own socket (source port == destination port, a
 * simultaneous open); the client must see that nobody is there
 * (docs/delivery.md, The session).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "client.h"

static uv_loop_t loop;

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

TestSuite(client, .init = setup, .fini = teardown);

/* A socket of family af bound to the loopback address, port chosen by the
 * kernel; its address in *sa. */
static int bound_socket(int af, struct sockaddr_storage *sa, socklen_t *len)
{
    int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(sa, 0, sizeof(*sa));
    if (af == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        *len = sizeof(*in6);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)sa, *len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)sa, len);
    return fd;
}

/* What client_self_connected() says of fd, handed to a uv_tcp_t. */
static bool self_connected(int fd)
{
    uv_tcp_t tcp;
    bool self;

    cr_assert_eq(uv_tcp_init(&loop, &tcp), 0);
    cr_assert_eq(uv_tcp_open(&tcp, fd), 0);
    self = client_self_connected(&tcp);
    uv_close((uv_handle_t *)&tcp, closed_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    return self;
}

/* The very situation: a socket whose connect to its own address and port
 * succeeds, as one to a closed port of the ephemeral range may. */
static void check_self(int af)
{
    struct sockaddr_storage sa;
    socklen_t len;
    int fd = bound_socket(af, &sa, &len);

    if (fd < 0 && af == AF_INET6)
        cr_skip_test("no IPv6 loopback here");
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, len), 0, "connect to itself: %s",
                 strerror(errno));
    cr_assert(self_connected(fd), "a socket connected to itself is seen as such");
}

Test(client, a_socket_connected_to_itself_is_seen_ipv4)
{
    check_self(AF_INET);
}

Test(client, a_socket_connected_to_itself_is_seen_ipv6)
{
    check_self(AF_INET6);
}

/* A real peer on the same address is another port: both ends are fine. */
Test(client, a_connection_to_a_listener_is_not_to_itself)
{
    struct sockaddr_storage sa, unused;
    socklen_t len, ulen;
    int lfd = bound_socket(AF_INET, &sa, &len), cfd, afd;

    cr_assert_geq(lfd, 0);
    cr_assert_eq(listen(lfd, 1), 0);
    cfd = bound_socket(AF_INET, &unused, &ulen);
    cr_assert_geq(cfd, 0);
    cr_assert_eq(connect(cfd, (struct sockaddr *)&sa, len), 0);
    afd = accept(lfd, NULL, NULL);
    cr_assert_geq(afd, 0);
    cr_assert_not(self_connected(cfd));
    cr_assert_not(self_connected(afd));
    close(lfd);
}

/* No peer at all (never connected): not "itself" either. */
Test(client, an_unconnected_socket_is_not_connected_to_itself)
{
    struct sockaddr_storage sa;
    socklen_t len;
    int fd = bound_socket(AF_INET, &sa, &len);

    cr_assert_geq(fd, 0);
    cr_assert_not(self_connected(fd));
}
