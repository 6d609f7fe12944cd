//! What `connect` sends: [`ConnectOptions`].

use embassy_time::Duration;

use crate::packet::{Connect, LastWill, ProtocolLevel, QoS};

/// Options for CONNECT and for the client's timers.
///
/// ```
/// use umqtt::{ConnectOptions, QoS};
///
/// let opts = ConnectOptions::new("esp32-c3-01")
///     .keep_alive_secs(60)
///     .clean_session(false)
///     .credentials("user", b"secret")
///     .will("devices/esp32-c3-01/status", b"offline", QoS::AtLeastOnce, true);
/// assert_eq!(opts.client_id, "esp32-c3-01");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ConnectOptions<'a> {
    /// Client identifier. May be empty with `clean_session`: the broker
    /// then assigns one.
    pub client_id: &'a str,
    /// Keepalive interval in seconds; 0 turns it off. Default 60.
    pub keep_alive_secs: u16,
    /// Start a fresh session (default) or resume the broker's stored one.
    pub clean_session: bool,
    /// User name, if any.
    pub username: Option<&'a str>,
    /// Password, if any.
    pub password: Option<&'a [u8]>,
    /// Last will, if any.
    pub will: Option<LastWill<'a>>,
    /// MQTT 3.1.1 (default) or 3.1.
    pub protocol: ProtocolLevel,
    /// How long CONNACK, PUBACK, PUBREC/PUBCOMP, SUBACK, UNSUBACK and
    /// PINGRESP may take. Default 10 s; at most `u32::MAX` ticks of the
    /// embassy-time tick rate (71 minutes at 1 MHz), longer is cut to that.
    pub ack_timeout: Duration,
    /// Most QoS 1 and QoS 2 messages unfinished at once (the transmit
    /// buffer may allow fewer). Default 16.
    pub max_in_flight: u16,
}

impl<'a> ConnectOptions<'a> {
    /// Defaults with `client_id`.
    pub const fn new(client_id: &'a str) -> Self {
        Self {
            client_id,
            keep_alive_secs: 60,
            clean_session: true,
            username: None,
            password: None,
            will: None,
            protocol: ProtocolLevel::V311,
            ack_timeout: Duration::from_secs(10),
            max_in_flight: 16,
        }
    }

    /// Sets the keepalive interval in seconds (0: off).
    #[must_use]
    pub const fn keep_alive_secs(mut self, secs: u16) -> Self {
        self.keep_alive_secs = secs;
        self
    }

    /// Chooses a fresh (`true`) or persistent (`false`) session.
    #[must_use]
    pub const fn clean_session(mut self, clean: bool) -> Self {
        self.clean_session = clean;
        self
    }

    /// Sets user name and password.
    #[must_use]
    pub const fn credentials(mut self, username: &'a str, password: &'a [u8]) -> Self {
        self.username = Some(username);
        self.password = Some(password);
        self
    }

    /// Sets only a user name.
    #[must_use]
    pub const fn username(mut self, username: &'a str) -> Self {
        self.username = Some(username);
        self
    }

    /// Sets the last will.
    #[must_use]
    pub const fn will(mut self, topic: &'a str, payload: &'a [u8], qos: QoS, retain: bool) -> Self {
        self.will = Some(LastWill { topic, payload, qos, retain });
        self
    }

    /// Chooses MQTT 3.1 or 3.1.1.
    #[must_use]
    pub const fn protocol(mut self, protocol: ProtocolLevel) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets the acknowledgment timeout.
    #[must_use]
    pub const fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Sets the most QoS 1 and QoS 2 messages in flight (at least 1).
    #[must_use]
    pub const fn max_in_flight(mut self, n: u16) -> Self {
        self.max_in_flight = if n == 0 { 1 } else { n };
        self
    }

    /// The CONNECT packet these options produce.
    pub const fn to_connect(&self) -> Connect<'a> {
        Connect {
            protocol: self.protocol,
            clean_session: self.clean_session,
            keep_alive: self.keep_alive_secs,
            client_id: self.client_id,
            will: self.will,
            username: self.username,
            password: self.password,
        }
    }
}
