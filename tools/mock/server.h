/*
 * server.h - gemroute-mock's HTTP side: the listening socket, the
 * libmicrohttpd daemon and the request handlers.
 */
#ifndef GR_MOCK_SERVER_H
#define GR_MOCK_SERVER_H

#include "state.h"

#include <stddef.h>

struct gr_mock_server;

/*
 * Bind and listen on spec ("127.0.0.1:8080", "[::1]:0", "localhost:0";
 * port 0 picks a free one).  Returns the socket or -errno with a sentence
 * in err; *bound gets "HOST:PORT" with the port actually bound and
 * *loopback whether only this host can connect.
 */
int gr_mock_server_listen(const char *spec, char *bound, size_t boundlen,
                          int *loopback, char *err, size_t errlen);

/* Serve st on fd with a pool of threads.  0 or -errno. */
int gr_mock_server_start(struct gr_mock_state *st, int fd, unsigned threads,
                         int verbose, struct gr_mock_server **out);

/*
 * The same over HTTPS when cert_pem is not NULL: cert_pem and key_pem are
 * the PEM texts of the certificate (chain) and its private key.
 * -ENOTSUP when this libmicrohttpd has no TLS, -EINVAL when it refused
 * the pair (what it said went to stderr, never the key), else as above.
 * Both may be wiped once this returns.
 */
int gr_mock_server_start_tls(struct gr_mock_state *st, int fd,
                             unsigned threads, int verbose,
                             const char *cert_pem, const char *key_pem,
                             struct gr_mock_server **out);

/* Answer what is parked, stop serving, close fd, free. */
void gr_mock_server_stop(struct gr_mock_server *srv);

#endif
