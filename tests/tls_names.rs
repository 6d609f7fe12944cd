//! Server names in real TLS 1.3 handshakes against Mosquitto (PKI made by
//! openssl per run): IP addresses match only `iPAddress` SANs and DNS names
//! only `dNSName` SANs; wildcards cover one label (RFC 6125).
#![cfg(feature = "tls")]

#[path = "tls_common/chains.rs"]
mod chains;
mod common;
mod tls_common;

use chains::{Outcome, round_trip};
use umqtt::tls::{CertificateError, ConnectError};

async fn check(test: &str, chain: &str, host: &str, accept: bool) {
    match (round_trip(test, chain, "ca", host).await, accept) {
        (Outcome::Skipped, _) | (Outcome::Delivered(_), true) => {}
        (Outcome::Refused(ConnectError::Rejected(CertificateError::NameMismatch)), false) => {}
        (Outcome::Delivered(_), false) => panic!("{chain} by {host}: accepted"),
        (Outcome::Refused(e), _) => panic!("{chain} by {host}: {e:?} (expected accept: {accept})"),
    }
}

#[tokio::test]
async fn ip_127_0_0_1_is_accepted_by_a_leaf_with_that_ip_san() {
    check("ip_san_ok", "ip-only", "127.0.0.1", true).await;
}

#[tokio::test]
async fn ip_127_0_0_1_is_refused_by_a_leaf_with_only_dns_localhost() {
    check("ip_vs_dns", "dns-only", "127.0.0.1", false).await;
}

#[tokio::test]
async fn localhost_is_refused_by_a_leaf_with_only_the_ip_san() {
    check("dns_vs_ip", "ip-only", "localhost", false).await;
}

#[tokio::test]
async fn ipv4_address_is_refused_by_a_leaf_with_another_ip() {
    check("ip_other", "ip6", "127.0.0.1", false).await;
}

#[tokio::test]
async fn wildcard_san_covers_one_label_not_two_nor_the_bare_domain() {
    check("wild_one", "wild", "mqtt.umqtt.test", true).await;
    check("wild_two", "wild", "a.mqtt.umqtt.test", false).await;
    check("wild_bare", "wild", "umqtt.test", false).await;
}
