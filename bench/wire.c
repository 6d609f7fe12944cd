/* The wire-speed peer of scripts/bench and the raw loops that measure the
 * ceiling. Part of the benchmark, not of the library.
 *
 *   wire peer PORT
 *       A minimal MQTT 3.1.1 server on 127.0.0.1:PORT (0: any; the port is
 *       printed as "port=P") that serves one connection at a time: CONNACK
 *       for CONNECT, SUBACK for SUBSCRIBE (granted = requested), UNSUBACK,
 *       PINGRESP; QoS 0 PUBLISH discarded, QoS 1 answered with PUBACK, QoS 2
 *       with PUBREC and PUBREL with PUBCOMP. Every packet of one read is
 *       handled before the answers go out in one write. A CONNECT whose
 *       client id is "burst-qQ-nN-sS..." is answered with CONNACK (session
 *       present) followed by a pre-encoded burst of N PUBLISHes of S-byte
 *       payloads at QoS Q (0 or 1), written as fast as the socket takes
 *       them (at most 65,535 unacknowledged); the PUBACKs are checked (every
 *       id acknowledged once). After each connection one line:
 *         conn pub0=.. pub1=.. pub2=.. first=T last=T sent=.. acks=..
 *              bad_acks=.. cpu_s=.. wall_s=..
 *       (first / last: CLOCK_MONOTONIC of the reads that brought the first
 *       and the last PUBLISH; cpu_s: the peer's own user + system time for
 *       the connection.)
 *
 *   wire raw MODE PORT ARGS   the ceiling: no MQTT logic, pre-encoded bytes
 *       pub0 PORT TOPIC N SIZE          write N QoS 0 PUBLISHes
 *       pub1 PORT TOPIC N SIZE WINDOW   N QoS 1 PUBLISHes, WINDOW in flight,
 *                                       acks counted as 4-byte records
 *       pub2 PORT TOPIC N SIZE WINDOW   QoS 2: PUBREC answered by PUBREL
 *       rtt PORT TOPIC N SIZE           QoS 1 stop-and-wait
 *       drain PORT CLIENT_ID N          read and count N PUBLISHes (QoS 1:
 *                                       a PUBACK for each, one write a read)
 *       Output: the key=value line of the other bench clients.
 *
 * Build: cc -O2 -o wire wire.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXID 65535

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("malloc");
    return p;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Remaining-length varint into p; returns its length. */
static int put_len(uint8_t *p, size_t n) {
    int i = 0;
    do {
        uint8_t b = n % 128;
        n /= 128;
        p[i++] = b | (n ? 128 : 0);
    } while (n);
    return i;
}

/* One PUBLISH (packet id 0 for QoS 0) into p; returns its length. */
static size_t put_publish(uint8_t *p, int qos, const char *topic, int size, unsigned id) {
    size_t tl = strlen(topic), rl = 2 + tl + (qos ? 2 : 0) + size;
    size_t i = 0;
    p[i++] = 0x30 | qos << 1;
    i += put_len(p + i, rl);
    p[i++] = tl >> 8;
    p[i++] = tl & 255;
    memcpy(p + i, topic, tl);
    i += tl;
    if (qos) {
        p[i++] = id >> 8;
        p[i++] = id & 255;
    }
    for (int k = 0; k < size; k++) p[i++] = 'a' + k % 26;
    return i;
}

/* N PUBLISHes back to back, ids 1..65535 cycling; *each = one's length. */
static uint8_t *encode_burst(int qos, const char *topic, long n, int size, size_t *each) {
    uint8_t one[1024];
    *each = put_publish(one, qos, topic, size, 1);
    uint8_t *buf = xmalloc(*each * n);
    /* One encoded message copied N times, the packet id patched in. */
    size_t id_at = *each - size - 2;
    for (long i = 0; i < n; i++) {
        uint8_t *p = buf + *each * i;
        memcpy(p, one, *each);
        if (qos) {
            unsigned id = (unsigned)(i % MAXID) + 1;
            p[id_at] = id >> 8, p[id_at + 1] = id & 255;
        }
    }
    return buf;
}

/* ---------------------------------------------------------------- peer */

struct conn {
    int fd;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    long pub[3];
    double first, last;
    int closing;
    /* burst */
    uint8_t *burst;
    size_t each;
    long burst_n, sent, acks, bad_acks;
    int burst_qos;
    uint32_t *unacked; /* per id: PUBLISHes written minus PUBACKs seen */
};

static void out_put(struct conn *c, const uint8_t *p, size_t n) {
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        while (c->out_len + n > c->out_cap) {
            c->out_cap *= 2;
            c->out = realloc(c->out, c->out_cap);
            if (!c->out) die("realloc");
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void ack(struct conn *c, uint8_t type, const uint8_t *id) {
    uint8_t p[4] = {type, 2, id[0], id[1]};
    out_put(c, p, 4);
}

static void on_connect(struct conn *c, const uint8_t *b, size_t n) {
    /* protocol name, level, flags, keepalive, then the client id */
    if (n < 2) return;
    size_t pl = (size_t)b[0] << 8 | b[1];
    size_t at = 2 + pl + 4;
    char id[256] = "";
    if (at + 2 <= n) {
        size_t il = (size_t)b[at] << 8 | b[at + 1];
        if (il > 255) il = 255;
        if (at + 2 + il <= n) memcpy(id, b + at + 2, il), id[il] = 0;
    }
    int q, s;
    long num;
    int burst = sscanf(id, "burst-q%d-n%ld-s%d", &q, &num, &s) == 3 && (q == 0 || q == 1) && num > 0;
    uint8_t connack[4] = {0x20, 2, burst, 0};
    out_put(c, connack, 4);
    if (burst) {
        c->burst = encode_burst(q, "bench/burst", num, s, &c->each);
        c->burst_n = num;
        c->burst_qos = q;
        c->unacked = calloc(MAXID + 1, sizeof *c->unacked);
    }
}

/* Handles every complete packet in c->in; returns whether a PUBLISH came. */
static int handle(struct conn *c) {
    size_t at = 0;
    int published = 0;
    while (at < c->in_len) {
        const uint8_t *p = c->in + at;
        size_t avail = c->in_len - at, rl = 0, h = 1;
        int shift = 0;
        for (;;) {
            if (h >= avail) goto incomplete;
            uint8_t b = p[h++];
            rl |= (size_t)(b & 127) << shift;
            shift += 7;
            if (!(b & 128)) break;
            if (shift > 21) { fprintf(stderr, "peer: bad length\n"); c->closing = 1; return published; }
        }
        if (h + rl > avail) goto incomplete;
        const uint8_t *body = p + h;
        switch (p[0] >> 4) {
        case 1: on_connect(c, body, rl); break;
        case 3: {
            int qos = (p[0] >> 1) & 3;
            c->pub[qos > 2 ? 2 : qos]++;
            published = 1;
            if (qos) {
                size_t tl = (size_t)body[0] << 8 | body[1];
                ack(c, qos == 1 ? 0x40 : 0x50, body + 2 + tl);
            }
            break;
        }
        case 4: /* PUBACK of a burst PUBLISH */
            if (c->unacked) {
                unsigned id = body[0] << 8 | body[1];
                if (c->unacked[id]) c->unacked[id]--, c->acks++;
                else c->bad_acks++;
            }
            break;
        case 6: ack(c, 0x70, body); break;             /* PUBREL -> PUBCOMP */
        case 8: {                                       /* SUBSCRIBE -> SUBACK */
            uint8_t sub[260];
            size_t k = 4, i = 2;
            sub[0] = 0x90, sub[2] = body[0], sub[3] = body[1];
            while (i + 2 < rl + 1 && k < sizeof sub) {
                size_t fl = (size_t)body[i] << 8 | body[i + 1];
                i += 2 + fl;
                if (i >= rl) break;
                sub[k++] = body[i++] & 3;
            }
            sub[1] = (uint8_t)(k - 2);
            out_put(c, sub, k);
            break;
        }
        case 10: ack(c, 0xb0, body); break;            /* UNSUBSCRIBE */
        case 12: { uint8_t r[2] = {0xd0, 0}; out_put(c, r, 2); break; }
        case 14: c->closing = 1; break;                /* DISCONNECT */
        default: break;
        }
        at += h + rl;
    }
incomplete:
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    return published;
}

/* Writes queued answers, then as much of the burst as the window allows.
 * Returns 1 while something is left to write, -1 on error. */
static int flush_out(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) return errno == EAGAIN ? 1 : -1;
        c->out_off += w;
    }
    c->out_off = c->out_len = 0;
    while (c->burst && c->sent < c->burst_n) {
        long upto = c->burst_n;
        if (c->burst_qos && upto > c->acks + MAXID) upto = c->acks + MAXID;
        if (upto <= c->sent) return 0; /* wait for PUBACKs */
        /* Whole messages only, so the id accounting stays exact. */
        ssize_t w = write(c->fd, c->burst + c->each * c->sent, c->each * (upto - c->sent));
        if (w < 0) return errno == EAGAIN ? 1 : -1;
        long whole = w / c->each;
        size_t rest = w % c->each;
        if (c->burst_qos)
            for (long i = c->sent; i < c->sent + whole + (rest ? 1 : 0); i++) c->unacked[i % MAXID + 1]++;
        c->sent += whole;
        if (rest) {
            /* Finish the partial message through the answer buffer. */
            out_put(c, c->burst + c->each * c->sent + rest, c->each - rest);
            c->sent++;
            return 1;
        }
    }
    return 0;
}

static void serve(int fd) {
    struct conn c = {0};
    c.fd = fd;
    c.in_cap = 256 * 1024;
    c.in = xmalloc(c.in_cap);
    c.out_cap = 64 * 1024;
    c.out = xmalloc(c.out_cap);
    double cpu0 = cpu_s(), t0 = now();
    int pending = 0;
    for (;;) {
        struct pollfd pf = {fd, POLLIN | (pending ? POLLOUT : 0), 0};
        if (poll(&pf, 1, 60000) <= 0) break;
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(fd, c.in + c.in_len, c.in_cap - c.in_len);
            if (r == 0 || (r < 0 && errno != EAGAIN)) break;
            if (r > 0) {
                c.in_len += r;
                if (handle(&c)) {
                    c.last = now();
                    if (!c.first) c.first = c.last;
                }
            }
        }
        pending = flush_out(&c);
        if (pending < 0 || (c.closing && !pending)) break;
    }
    printf("conn pub0=%ld pub1=%ld pub2=%ld first=%.9f last=%.9f sent=%ld acks=%ld bad_acks=%ld "
           "cpu_s=%.6f wall_s=%.6f\n",
           c.pub[0], c.pub[1], c.pub[2], c.first, c.last, c.sent, c.acks, c.bad_acks, cpu_s() - cpu0,
           now() - t0);
    fflush(stdout);
    close(fd);
    free(c.in);
    free(c.out);
    free(c.burst);
    free(c.unacked);
}

static _Noreturn void peer(int port) {
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 16)) die("bind");
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("port=%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) die("accept");
        nodelay(fd);
        serve(fd);
    }
}

/* ----------------------------------------------------------------- raw */

static int dial(int port, const char *client_id) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect");
    nodelay(fd);
    size_t il = strlen(client_id);
    uint8_t p[300] = {0x10, 0, 0, 4, 'M', 'Q', 'T', 'T', 4, client_id[0] ? 0 : 2, 0, 60, il >> 8, il & 255};
    memcpy(p + 14, client_id, il);
    p[1] = (uint8_t)(12 + il);
    if (write(fd, p, 14 + il) != (ssize_t)(14 + il)) die("write");
    uint8_t connack[4];
    for (size_t got = 0; got < 4;) {
        ssize_t r = read(fd, connack + got, 4 - got);
        if (r <= 0) die("connack");
        got += r;
    }
    return fd;
}

static void write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write");
        p += w, n -= w;
    }
}

static void bye(int fd) {
    uint8_t d[2] = {0xe0, 0};
    write_all(fd, d, 2);
    close(fd);
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int raw(int argc, char **argv) {
    const char *mode = argv[2];
    int port = atoi(argv[3]);
    static uint8_t in[256 * 1024];
    if (!strcmp(mode, "drain") && argc == 6) {
        long n = atol(argv[5]);
        double t = now();
        int fd = dial(port, argv[4]);
        size_t have = 0, each = 0;
        long got = 0;
        int qos = 0;
        uint8_t *acks = xmalloc(sizeof in / 8 * 4 + 64);
        while (got < n) {
            ssize_t r = read(fd, in + have, sizeof in - have);
            if (r <= 0) die("read");
            have += r;
            if (!each) {
                /* The length of one PUBLISH, from the first header. */
                size_t rl = 0, h = 1;
                int shift = 0;
                while (h < have) {
                    rl |= (size_t)(in[h] & 127) << shift;
                    shift += 7;
                    if (!(in[h++] & 128)) break;
                }
                if (h >= have) continue;
                each = h + rl;
                qos = (in[0] >> 1) & 3;
            }
            size_t whole = have / each, k = 0;
            if (qos) {
                size_t tl = (size_t)in[2] << 8 | in[3]; /* fixed header of 2 bytes */
                for (size_t i = 0; i < whole; i++) {
                    const uint8_t *id = in + i * each + 4 + tl;
                    acks[k++] = 0x40, acks[k++] = 2, acks[k++] = id[0], acks[k++] = id[1];
                }
                write_all(fd, acks, k);
            }
            got += whole;
            memmove(in, in + whole * each, have - whole * each);
            have -= whole * each;
        }
        printf("recv_s=%f\n", now() - t);
        bye(fd);
        return 0;
    }
    if (argc < 7) return 2;
    const char *topic = argv[4];
    long n = atol(argv[5]);
    int size = atoi(argv[6]);
    int fd = dial(port, "");
    double t = now();
    size_t each;
    if (!strcmp(mode, "pub0")) {
        uint8_t *msgs = encode_burst(0, topic, n, size, &each);
        t = now();
        for (long i = 0; i < n; i += 1024) write_all(fd, msgs + each * i, each * ((n - i) < 1024 ? (n - i) : 1024));
        printf("sent_s=%f\n", now() - t);
    } else if (!strcmp(mode, "rtt")) {
        uint8_t msg[1024];
        each = put_publish(msg, 1, topic, size, 1);
        double *rtts = xmalloc(sizeof(double) * n);
        for (long i = 0; i < n + 100; i++) {
            double s = now();
            write_all(fd, msg, each);
            for (size_t got = 0; got < 4;) {
                ssize_t r = read(fd, in + got, 4 - got);
                if (r <= 0) die("read");
                got += r;
            }
            if (i >= 100) rtts[i - 100] = now() - s;
        }
        qsort(rtts, n, sizeof(double), cmpd);
        printf("median_us=%f p99_us=%f\n", rtts[(long)((n - 1) * 0.5 + 0.5)] * 1e6,
               rtts[(long)((n - 1) * 0.99 + 0.5)] * 1e6);
    } else if ((!strcmp(mode, "pub1") || !strcmp(mode, "pub2")) && argc == 8) {
        int qos = mode[3] - '0';
        long window = atol(argv[7]), sent = 0, done = 0;
        if (window > MAXID) window = MAXID;
        uint8_t *msgs = encode_burst(qos, topic, n, size, &each);
        uint8_t *rels = xmalloc(sizeof in + 4);
        size_t have = 0;
        t = now();
        while (done < n) {
            long upto = done + window < n ? done + window : n;
            if (upto > sent) write_all(fd, msgs + each * sent, each * (upto - sent)), sent = upto;
            ssize_t r = read(fd, in + have, sizeof in - have);
            if (r <= 0) die("read");
            have += r;
            size_t whole = have / 4, k = 0;
            if (qos == 1) {
                done += whole;
            } else {
                for (size_t i = 0; i < whole; i++) {
                    const uint8_t *a = in + 4 * i;
                    if (a[0] == 0x50) rels[k++] = 0x62, rels[k++] = 2, rels[k++] = a[2], rels[k++] = a[3];
                    else done++;
                }
                if (k) write_all(fd, rels, k);
            }
            memmove(in, in + whole * 4, have - whole * 4);
            have -= whole * 4;
        }
        printf("acked_s=%f\n", now() - t);
    } else {
        return 2;
    }
    bye(fd);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && !strcmp(argv[1], "peer")) peer(atoi(argv[2]));
    if (argc >= 5 && !strcmp(argv[1], "raw")) {
        int rc = raw(argc, argv);
        if (rc != 2) return rc;
    }
    fprintf(stderr, "usage: see the head of bench/wire.c\n");
    return 2;
}
