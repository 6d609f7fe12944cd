//! Settings baked in at build time from environment variables.
//!
//! ```text
//! WIFI_SSID=home WIFI_PASSWORD=secret MQTT_HOST=192.168.1.10 MQTT_PORT=1883 \
//!     cargo build --release
//! ```
//!
//! Unset variables fall back to the defaults below. Cargo rebuilds the
//! firmware when one of them changes (see `build.rs`).

/// Wi-Fi network name.
pub const WIFI_SSID: &str = env_or(option_env!("WIFI_SSID"), "umqtt-test");
/// Wi-Fi WPA2 passphrase (empty for an open network).
pub const WIFI_PASSWORD: &str = env_or(option_env!("WIFI_PASSWORD"), "umqtt-test-password");
/// Broker host name or IPv4 address.
pub const MQTT_HOST: &str = env_or(option_env!("MQTT_HOST"), "test.mosquitto.org");
/// Broker TCP port: 1883 for plain MQTT, 8883 with the `tls` feature.
pub const MQTT_PORT: u16 = match option_env!("MQTT_PORT") {
    Some(port) => parse_port(port),
    None if cfg!(feature = "tls") => 8883,
    None => 1883,
};
/// MQTT client id; also used in the topic names.
pub const MQTT_CLIENT_ID: &str = env_or(option_env!("MQTT_CLIENT_ID"), "umqtt-pico-w");

/// MQTT keepalive in seconds.
pub const KEEP_ALIVE_SECS: u16 = 60;
/// Seconds between two telemetry publishes.
pub const PUBLISH_INTERVAL_SECS: u64 = 5;
/// First reconnect delay; doubles after each failure up to [`BACKOFF_MAX_SECS`]
/// (less up to 25 % of jitter).
pub const BACKOFF_MIN_SECS: u64 = 1;
/// Longest reconnect delay.
pub const BACKOFF_MAX_SECS: u64 = 64;
/// Bound on one connection attempt: Wi-Fi join, DHCP, DNS, TCP, the TLS
/// handshake and CONNACK.
pub const CONNECT_TIMEOUT_SECS: u64 = 30;

const fn env_or(value: Option<&'static str>, default: &'static str) -> &'static str {
    match value {
        Some(v) => v,
        None => default,
    }
}

/// Parses a decimal port at compile time; a bad value stops the build.
const fn parse_port(s: &str) -> u16 {
    let bytes = s.as_bytes();
    assert!(!bytes.is_empty(), "MQTT_PORT is empty");
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(digit.is_ascii_digit(), "MQTT_PORT must be a decimal number");
        value = value * 10 + (digit - b'0') as u32;
        assert!(value <= 65535, "MQTT_PORT must be at most 65535");
        i += 1;
    }
    assert!(value != 0, "MQTT_PORT must not be 0");
    value as u16
}
