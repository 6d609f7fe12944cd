//! Puts `memory.x` where the linker finds it and re-runs when it changes.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    // Build-time settings read with option_env!(); listed so cargo rebuilds when they change.
    for var in [
        "WIFI_SSID",
        "WIFI_PASSWORD",
        "MQTT_HOST",
        "MQTT_PORT",
        "MQTT_CLIENT_ID",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
}
