#!/usr/bin/env python3
"""paho-mqtt (Python, MQTT 3.1.1) side of the benchmark: the same modes and
one-line `key=value` output as the Rust bench binaries.

    bench_paho.py pub0 PORT TOPIC N SIZE
    bench_paho.py pub1 PORT TOPIC N SIZE INFLIGHT
    bench_paho.py pub2 PORT TOPIC N SIZE INFLIGHT
    bench_paho.py rtt PORT TOPIC N SIZE
    bench_paho.py prep PORT CLIENT_ID TOPIC QOS
    bench_paho.py drain PORT CLIENT_ID N
"""
import socket
import sys
import time

import paho.mqtt.client as mqtt


def payload(size):
    return bytes(ord("a") + i % 26 for i in range(size))


def nodelay(client):
    # paho-mqtt leaves Nagle on; the other clients turn it off.
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(port, client_id="", clean=True, inflight=None):
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean,
        protocol=mqtt.MQTTv311,
    )
    if inflight is not None:
        client.max_inflight_messages_set(inflight)
    client.connect("127.0.0.1", port, keepalive=60)
    nodelay(client)
    while not client.is_connected():
        client.loop(timeout=1.0)
    return client


def disconnect(client):
    client.disconnect()
    client.loop(timeout=0.1)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode in ("pub0", "pub1", "pub2", "rtt"):
        topic, n, size = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        body = payload(size)
        client = connect(port, inflight=int(sys.argv[6]) if mode in ("pub1", "pub2") else None)
        if mode == "pub0":
            start = time.perf_counter()
            for _ in range(n):
                client.publish(topic, body, qos=0)
            # publish() writes at once when it can; push out what is queued.
            while client.want_write():
                client.loop_write()
            print(f"sent_s={time.perf_counter() - start}")
        elif mode in ("pub1", "pub2"):
            qos = int(mode[-1])
            acked = [0]
            client.on_publish = lambda c, u, mid, rc, props: acked.__setitem__(0, acked[0] + 1)
            start = time.perf_counter()
            for _ in range(n):
                client.publish(topic, body, qos=qos)
                client.loop(timeout=0)  # read PUBACKs that are already there
            while acked[0] < n:
                client.loop(timeout=1.0)
            print(f"acked_s={time.perf_counter() - start}")
        else:
            done = [False]
            client.on_publish = lambda c, u, mid, rc, props: done.__setitem__(0, True)
            rtts = []
            for i in range(n + 100):
                done[0] = False
                t = time.perf_counter()
                client.publish(topic, body, qos=1)
                while not done[0]:
                    client.loop(timeout=1.0)
                if i >= 100:
                    rtts.append(time.perf_counter() - t)
            rtts.sort()
            at = lambda q: rtts[round((len(rtts) - 1) * q)] * 1e6
            print(f"median_us={at(0.5)} p99_us={at(0.99)}")
        disconnect(client)
    elif mode == "prep":
        client_id, topic, qos = sys.argv[3], sys.argv[4], int(sys.argv[5])
        client = connect(port, client_id, clean=False)
        done = [False]
        client.on_subscribe = lambda c, u, mid, codes, props: done.__setitem__(0, True)
        client.subscribe(topic, qos)
        while not done[0]:
            client.loop(timeout=1.0)
        disconnect(client)
    elif mode == "drain":
        client_id, n = sys.argv[3], int(sys.argv[4])
        received = [0]
        start = time.perf_counter()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.on_message = lambda c, u, m: received.__setitem__(0, received[0] + 1)
        client.connect("127.0.0.1", port, keepalive=60)
        nodelay(client)
        while received[0] < n:
            client.loop(timeout=1.0)
        print(f"recv_s={time.perf_counter() - start}")
        disconnect(client)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
