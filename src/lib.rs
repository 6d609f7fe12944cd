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
//!   `embedded-io` transport, with a caller-supplied clock.
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

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
