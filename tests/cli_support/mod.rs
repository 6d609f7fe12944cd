//! Running the examples as a user does: the built binaries, bounded in
//! time, their output as text. Shared by tests/cli.rs,
//! tests/cli_reconnect.rs and tests/store_kill.rs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `cli` example binary, built (or found fresh) by cargo once per run.
pub fn cli() -> Command {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    Command::new(PATH.get_or_init(|| build_example("cli")))
}

/// Builds the example `name` with the profile and features of this test
/// (a no-op when `cargo test` already built it) and returns its path.
pub fn build_example(name: &str) -> PathBuf {
    // This test runs as <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_owned();
    let target_dir = profile_dir.parent().unwrap();
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["build", "--quiet", "--example", name]);
    build.current_dir(env!("CARGO_MANIFEST_DIR")).env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    // The features of this test build, so that the build is a no-op.
    let features: Vec<&str> = [("tls", cfg!(feature = "tls")), ("ws", cfg!(feature = "ws"))]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    let status = build.status().expect("run cargo build --example");
    assert!(status.success(), "cargo build --example {name} failed");
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Waits for `child` to exit (at most 20 s, else kills it and fails).
pub fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cli did not exit within 20 s: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Bytes as text, lossy.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
