//! `umqtt`: a `no_std`, zero-allocation MQTT 3.1.1 client for
//! microcontrollers and hosts.
//!
//! Three floors, each usable alone:
//!
//! - [`packet`]: the zero-copy codec for all 14 control packets, plus
//!   [`topic`] validation and matching;
//! - [`session`]: the pieces of session state (packet identifiers, the
//!   outbox of unfinished QoS 1 and 2 messages, keepalive arithmetic);
//! - [`engine`]: the sans-I/O protocol engine that owns that state and
//!   takes every protocol decision, driven by plain function calls;
//! - [`Client`]: the async client over any `embedded-io-async` transport,
//!   with the small API of MicroPython's `umqtt.simple`, a thin driver of
//!   the engine;
//! - [`blocking::Client`]: the same API without an executor, over any
//!   `embedded-io` transport, with a caller-supplied clock;
//! - [`connect`]: connectors that open a transport by host name (over
//!   embedded-nal-async / embassy-net, tokio, `std::net`, and TLS over any).
//!
//! ```
//! use umqtt::packet::{self, Packet};
//! use umqtt::topic::{TopicFilter, TopicName};
//!
//! let filter = TopicFilter::new("sensors/+/temp")?;
//! assert!(filter.matches(&TopicName::new("sensors/01/temp")?));
//!
//! let mut buf = [0u8; 2];
//! let len = packet::encode(&Packet::PingReq, &mut buf)?;
//! assert_eq!(&buf[..len], &[0xc0, 0x00]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Time
//!
//! The API takes [`Duration`] and [`Instant`] (re-exported from
//! `embassy-time`). The async [`Client`] reads `embassy_time::Instant::now()`
//! and sleeps with embassy-time, so the program must link an embassy-time
//! driver: the HAL's on a board (`embassy-rp`, `esp-hal-embassy`), and on a
//! host `embassy-time` with `features = ["std", "generic-queue-64"]` (without
//! one, linking fails on `_embassy_time_now`). The blocking client takes a
//! [`blocking::Clock`] instead and needs no driver.
//!
//! # Cargo features
//!
//! None is on by default; the library is `no_std` without them unless the
//! row says otherwise.
//!
//! | feature | what it adds |
//! |---|---|
//! | `defmt` | `defmt::Format` for every public error and packet type; log records through `defmt` |
//! | `log` | log records through the `log` crate |
//! | `std` | `umqtt::blocking::StdClock`, [`blocking::Transport`] for `std::net::TcpStream` (through `embedded-io-adapters`) and `umqtt::connect::StdConnector`; needs `std` |
//! | `mock` | `umqtt::mock`: a scripted transport for host unit tests; implies `std` |
//! | `tls` | `umqtt::tls`: TLS 1.3 through `embedded-tls`: PEM decoding, certificate verification (ECDSA P-256) |
//! | `tls-p384` | also verify ECDSA P-384 certificate chains; implies `tls` |
//! | `tls-rsa` | also verify RSA certificate chains and CertificateVerify, without a heap; implies `tls` |
//! | `tls-compact-sha2` | SHA-2 without loop unrolling: less flash, slower hashing; implies `tls` |
//! | `ws` | `umqtt::ws`: MQTT over WebSocket (RFC 6455 client side); with `tls`, `wss` |
//! | `nal` | `umqtt::connect::TcpConnector`: connect by host name or IP over embedded-nal-async `TcpConnect` + `Dns` (embassy-net's `TcpClient` and `DnsSocket`) |
//! | `tokio` | `umqtt::connect::TokioConnector`: connect by host name over tokio TCP; implies `std` |
//! | `robust` | `umqtt::robust`: the always-connected client, a runner task that reconnects with backoff and resubscribes, and `Copy` handles for other tasks (embassy-sync) |
//! | `store-flash` | `umqtt::store::FlashStore`: the session (QoS 1/2 state) kept in NOR flash through sequential-storage, so it survives a reboot; with `std`, `FileFlash` |
//!
//! On docs.rs every feature is enabled and each feature-gated item is marked
//! with the feature it needs.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod blocking;
mod client;
pub mod connect;
pub mod engine;
mod fmt;
#[cfg(feature = "mock")]
pub mod mock;
pub mod packet;
#[cfg(feature = "robust")]
pub mod robust;
pub mod session;
pub mod store;
#[cfg(feature = "tls")]
pub mod tls;
pub mod topic;
#[cfg(feature = "ws")]
pub mod ws;

pub use client::{
    Client, ConnectOptions, Connected, Error, MAX_SUBSCRIBE_TOPICS, Oversize, ProtocolError,
    PublishError, ReturnCodes, State,
};
pub use engine::Session;
pub use packet::{ProtocolLevel, Publish, QoS, SubscribeReturnCode, SubscribeTopic};

/// The time types the API takes (`ConnectOptions::ack_timeout`,
/// `blocking::Clock`, the engine's `now`), re-exported from `embassy-time`
/// so a program needs no direct dependency on it for them.
pub use embassy_time::{Duration, Instant};

/// The README's examples, compiled and run by `cargo test --doc` with the
/// features its TLS and WebSocket sections need (`scripts/test` enables them).
#[cfg(all(doctest, feature = "tls", feature = "ws"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
