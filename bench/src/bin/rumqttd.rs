//! rumqttd (crates.io) as the second, multi-threaded broker of
//! `scripts/bench`: one MQTT 3.1.1 listener on 127.0.0.1:PORT, limits raised
//! so that the broker never throttles a benchmark client (large in-flight
//! window, queue and segment sizes). Usage: `rumqttd-bench PORT`; prints
//! nothing, runs until killed.

const CONFIG: &str = r#"
id = 0
[router]
id = 0
max_connections = 64
max_outgoing_packet_count = 65535
max_segment_size = 1073741824
max_segment_count = 16

[v4.1]
name = "v4-1"
listen = "127.0.0.1:PORT"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = 65535
    dynamic_filters = true
"#;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: rumqttd-bench PORT");
    let text = CONFIG.replace("PORT", &port.to_string());
    let config: rumqttd::Config = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .expect("rumqttd config");
    rumqttd::Broker::new(config).start().expect("rumqttd");
}
