//! Re-runs the build when a build-time setting read with option_env!() changes.

fn main() {
    for var in [
        "WIFI_SSID",
        "WIFI_PASSWORD",
        "MQTT_HOST",
        "MQTT_PORT",
        "MQTT_CLIENT_ID",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
