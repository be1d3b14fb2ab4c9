/* The observability key of the configuration: observability.listen, the
 * address of the HTTP endpoint (worker/observability.c), and its check. */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/config_table.h"
#include "core/util.h"

#define LISTEN_HOST_MAX 64

static int listen_error(char *err, size_t errlen, const char *text, const char *why)
{
    return set_error(err, errlen, EINVAL,
                     "observability.listen: %s; expected HOST:PORT with a numeric IPv4 address, "
                     "[IPv6] or localhost and a port from 1 to 65535, or \"\" for no endpoint "
                     "(got \"%.*s%s\")",
                     why, ECHO_MAX, text, strlen(text) > ECHO_MAX ? "..." : "");
}

/* Splits "host:port" or "[host]:port" at the last colon; an IPv6 address
 * needs its brackets, so that the port is never read from it. */
static int split_host_port(const char *text, char *host, long *port, bool *bracketed)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return -1;
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    *bracketed = h[0] == '[';
    if (*bracketed) {
        if (hlen < 3 || h[hlen - 1] != ']')
            return -1;
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen)) {
        return -1;
    }
    if (hlen >= LISTEN_HOST_MAX)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    *port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0)
        return -2;
    return 0;
}

int config_parse_listen(const char *text, struct sockaddr_storage *addr, unsigned *addrlen,
                        char *err, size_t errlen)
{
    char host[LISTEN_HOST_MAX];
    long port;
    bool bracketed = false;
    int rc = split_host_port(text, host, &port, &bracketed);
    if (rc == -1)
        return listen_error(err, errlen, text, "no HOST:PORT");
    if (rc == -2 || port < 1 || port > 65535)
        return listen_error(err, errlen, text, "bad port");
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (!bracketed && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *addrlen = sizeof(*v4);
    } else if (bracketed && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *addrlen = sizeof(*v6);
    } else {
        return listen_error(err, errlen, text, "the host is not a numeric address");
    }
    return 0;
}

int config_check_observability_listen(const struct config *cfg, const struct key_def *def,
                                      char *err, size_t errlen)
{
    (void)def;
    const char *text = cfg->observability_listen;
    if (!text || !*text)
        return 0;
    struct sockaddr_storage addr;
    unsigned len;
    return config_parse_listen(text, &addr, &len, err, errlen);
}
