//! The connector the always-connected client opens every connection
//! through: it joins the Wi-Fi network when the link is down and waits for
//! the DHCP lease, then hands over to the inner connector (TCP by host
//! name, or TLS over it). Wi-Fi lost, broker gone or handshake refused are
//! all the same to the runner: a failed attempt, retried after its backoff.

use cyw43::{Control, JoinError, JoinOptions};
use defmt::{info, warn};
use embassy_net::Stack;
use umqtt::connect::Connector;

use crate::config::{MQTT_HOST, MQTT_PORT, WIFI_PASSWORD, WIFI_SSID};

/// Wi-Fi first, then `K` (a [`umqtt::connect::TcpConnector`], or a
/// [`umqtt::tls::TlsConnector`] over one).
pub struct WifiLink<K> {
    control: Control<'static>,
    stack: Stack<'static>,
    inner: K,
}

impl<K> WifiLink<K> {
    /// `inner` over the network `stack`, whose Wi-Fi chip `control` drives.
    pub fn new(control: Control<'static>, stack: Stack<'static>, inner: K) -> Self {
        Self { control, stack, inner }
    }

    /// Joins the network if the link is down, then waits for an address
    /// (the runner's connect timeout bounds both).
    async fn up(&mut self) -> Result<(), JoinError> {
        if !self.stack.is_link_up() {
            info!("joining Wi-Fi network {}", WIFI_SSID);
            let options = if WIFI_PASSWORD.is_empty() {
                JoinOptions::new_open()
            } else {
                JoinOptions::new(WIFI_PASSWORD.as_bytes())
            };
            self.control.join(WIFI_SSID, options).await?;
        }
        if !self.stack.is_config_up() {
            info!("waiting for a DHCP lease");
            self.stack.wait_config_up().await;
        }
        Ok(())
    }
}

/// Why a connection could not be opened.
#[derive(Debug, defmt::Format)]
pub enum LinkError<E> {
    /// Joining the Wi-Fi network failed.
    Join(JoinError),
    /// The inner connector failed (DNS, TCP, TLS).
    Connect(E),
}

impl<K: Connector> Connector for WifiLink<K>
where
    K::Error: defmt::Format,
{
    type Transport<'c>
        = K::Transport<'c>
    where
        Self: 'c;
    type Error = LinkError<K::Error>;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        if let Err(e) = self.up().await {
            warn!("Wi-Fi join failed: {}", e);
            return Err(LinkError::Join(e));
        }
        info!("connecting to {}:{}", MQTT_HOST, MQTT_PORT);
        match self.inner.connect().await {
            Ok(transport) => Ok(transport),
            Err(e) => {
                warn!("connecting to {} failed: {}", MQTT_HOST, e);
                Err(LinkError::Connect(e))
            }
        }
    }
}
