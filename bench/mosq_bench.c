/* libmosquitto (C) side of the benchmark: the modes mosquitto_pub and
 * mosquitto_sub cannot time themselves. Same one-line key=value output as
 * the other bench clients. The client runs in the caller's thread
 * (`mosquitto_loop`, no `mosquitto_loop_start`), TCP_NODELAY on.
 *
 *   mosq_bench pub0 PORT TOPIC N SIZE       QoS 0 publish loop
 *   mosq_bench pub1 PORT TOPIC N SIZE INFLIGHT  pipelined QoS 1, until all PUBACKs
 *   mosq_bench pub2 PORT TOPIC N SIZE INFLIGHT  pipelined QoS 2, until all PUBCOMPs
 *   mosq_bench rtt PORT TOPIC N SIZE        QoS 1 stop-and-wait round trips
 *   mosq_bench prep PORT CLIENT_ID TOPIC QOS persistent session: subscribe
 *   mosq_bench drain PORT CLIENT_ID N       resume the session, receive N
 *
 * Build: cc -O2 -o mosq_bench mosq_bench.c -lmosquitto
 */
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile int acked, subscribed;
static volatile long acks;
static volatile int connected;
static volatile long received;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_connect(struct mosquitto *m, void *u, int rc) { (void)m; (void)u; connected = rc == 0; }
static void on_publish(struct mosquitto *m, void *u, int mid) { (void)m; (void)u; (void)mid; acked = 1; acks++; }
static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *q) {
    (void)m; (void)u; (void)mid; (void)n; (void)q; subscribed = 1;
}
static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
    (void)m; (void)u; (void)msg; received++;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static void check(int rc, const char *what) {
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "%s: %s\n", what, mosquitto_strerror(rc)); exit(1); }
}
static struct mosquitto *connect_to(int port, const char *id, int clean, int inflight) {
    struct mosquitto *m = mosquitto_new(id, clean, NULL);
    if (!m) { perror("mosquitto_new"); exit(1); }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    if (inflight) check(mosquitto_max_inflight_messages_set(m, inflight), "inflight");
    check(mosquitto_connect(m, "127.0.0.1", port, 60), "connect");
    return m;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see the source\n"); return 2; }
    const char *mode = argv[1];
    int port = atoi(argv[2]);
    mosquitto_lib_init();
    if ((!strcmp(mode, "pub0") && argc == 6) || ((!strcmp(mode, "pub1") || !strcmp(mode, "pub2")) && argc == 7)) {
        const char *topic = argv[3];
        long n = atol(argv[4]);
        int size = atoi(argv[5]), qos = mode[3] - '0';
        char *body = malloc(size);
        for (int i = 0; i < size; i++) body[i] = 'a' + i % 26;
        struct mosquitto *m = connect_to(port, NULL, 1, qos ? atoi(argv[6]) : 0);
        /* Wait for CONNACK, as the other clients do before timing. */
        while (!connected) check(mosquitto_loop(m, 1000, 1), "loop");
        double t = now();
        long window = qos ? atol(argv[6]) : 0;
        for (long i = 0; i < n; i++) {
            /* Window full: wait for PUBACKs (the loop also sends). */
            while (qos && i - acks >= window) check(mosquitto_loop(m, 1000, 1), "loop");
            /* Writes at once when the socket takes it (no loop thread). */
            check(mosquitto_publish(m, NULL, topic, size, body, qos, false), "publish");
            if (!qos && mosquitto_want_write(m)) check(mosquitto_loop(m, 0, 1), "loop");
        }
        if (qos) {
            while (acks < n) check(mosquitto_loop(m, 1000, 1), "loop");
            printf("acked_s=%f\n", now() - t);
        } else {
            while (mosquitto_want_write(m)) check(mosquitto_loop_write(m, 1), "loop_write");
            printf("sent_s=%f\n", now() - t);
        }
        mosquitto_disconnect(m);
    } else if (!strcmp(mode, "rtt") && argc == 6) {
        const char *topic = argv[3];
        int n = atoi(argv[4]), size = atoi(argv[5]);
        char *body = malloc(size);
        for (int i = 0; i < size; i++) body[i] = 'a' + i % 26;
        double *rtts = malloc(sizeof(double) * n);
        struct mosquitto *m = connect_to(port, NULL, 1, 0);
        for (int i = 0; i < n + 100; i++) {
            acked = 0;
            double t = now();
            check(mosquitto_publish(m, NULL, topic, size, body, 1, false), "publish");
            while (!acked) check(mosquitto_loop(m, 1000, 1), "loop");
            if (i >= 100) rtts[i - 100] = now() - t;
        }
        qsort(rtts, n, sizeof(double), cmp);
        printf("median_us=%f p99_us=%f\n", rtts[(int)((n - 1) * 0.5 + 0.5)] * 1e6,
               rtts[(int)((n - 1) * 0.99 + 0.5)] * 1e6);
        mosquitto_disconnect(m);
    } else if (!strcmp(mode, "prep") && argc == 6) {
        struct mosquitto *m = connect_to(port, argv[3], 0, 0);
        check(mosquitto_subscribe(m, NULL, argv[4], atoi(argv[5])), "subscribe");
        while (!subscribed) check(mosquitto_loop(m, 1000, 1), "loop");
        mosquitto_disconnect(m);
    } else if (!strcmp(mode, "drain") && argc == 5) {
        long n = atol(argv[4]);
        double t = now();
        struct mosquitto *m = connect_to(port, argv[3], 0, 0);
        while (received < n) check(mosquitto_loop(m, 1000, 1), "loop");
        printf("recv_s=%f\n", now() - t);
        mosquitto_disconnect(m);
    } else {
        fprintf(stderr, "usage: see the source\n");
        return 2;
    }
    mosquitto_lib_cleanup();
    return 0;
}
