//! CONNECT (3.1) and CONNACK (3.2).

use core::fmt;

use super::wire::{Reader, Writer, binary_len, str_len};
use super::{Malformed, QoS};
use crate::topic::TopicName;

/// Protocol name and level in CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolLevel {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    V311,
}

impl ProtocolLevel {
    const fn name(self) -> &'static str {
        match self {
            Self::V31 => "MQIsdp",
            Self::V311 => "MQTT",
        }
    }

    const fn level(self) -> u8 {
        match self {
            Self::V31 => 3,
            Self::V311 => 4,
        }
    }
}

/// The last will: published by the server when the client goes away
/// without DISCONNECT (3.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LastWill<'a> {
    /// Topic name of the will message.
    pub topic: &'a str,
    /// Payload of the will message.
    pub payload: &'a [u8],
    /// QoS of the will message.
    pub qos: QoS,
    /// Whether the will message is retained.
    pub retain: bool,
}

/// CONNECT: the first packet a client sends (3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Connect<'a> {
    /// MQTT 3.1 or 3.1.1.
    pub protocol: ProtocolLevel,
    /// Start a new session (`true`) or resume the stored one (`false`).
    pub clean_session: bool,
    /// Keep alive interval in seconds; 0 turns the mechanism off.
    pub keep_alive: u16,
    /// Client identifier; may be empty only with `clean_session`.
    pub client_id: &'a str,
    /// Optional last will.
    pub will: Option<LastWill<'a>>,
    /// Optional user name.
    pub username: Option<&'a str>,
    /// Optional password; 3.1.1 requires a user name with it.
    pub password: Option<&'a [u8]>,
}

const FLAG_CLEAN_SESSION: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

impl<'a> Connect<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Malformed> {
        let protocol = match (r.binary()?, r.u8()?) {
            (b"MQTT", 4) => ProtocolLevel::V311,
            (b"MQIsdp", 3) => ProtocolLevel::V31,
            (b"MQTT" | b"MQIsdp", _) => return Err(Malformed::UnsupportedProtocolLevel),
            _ => return Err(Malformed::InvalidProtocolName),
        };
        let flags = r.u8()?;
        if flags & 0x01 != 0 {
            return Err(Malformed::ConnectReservedFlag); // [MQTT-3.1.2-3]
        }
        let will_flag = flags & FLAG_WILL != 0;
        let will_qos = QoS::from_bits((flags >> 3) & 0b11)?; // [MQTT-3.1.2-14]
        let will_retain = flags & FLAG_WILL_RETAIN != 0;
        if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(Malformed::WillFlagsWithoutWill); // [MQTT-3.1.2-11/13/15]
        }
        let has_username = flags & FLAG_USERNAME != 0;
        let has_password = flags & FLAG_PASSWORD != 0;
        if has_password && !has_username && protocol == ProtocolLevel::V311 {
            return Err(Malformed::PasswordWithoutUsername); // [MQTT-3.1.2-22]
        }
        let keep_alive = r.u16()?;
        let client_id = r.str()?;
        let will = if will_flag {
            let topic = r.str()?;
            TopicName::new(topic)?;
            let payload = r.binary()?;
            Some(LastWill { topic, payload, qos: will_qos, retain: will_retain })
        } else {
            None
        };
        let username = if has_username { Some(r.str()?) } else { None };
        let password = if has_password { Some(r.binary()?) } else { None };
        Ok(Self {
            protocol,
            clean_session: flags & FLAG_CLEAN_SESSION != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_session {
            flags |= FLAG_CLEAN_SESSION;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | ((will.qos as u8) << 3);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        flags
    }

    pub(crate) fn body_len(&self) -> Result<usize, Malformed> {
        if self.client_id.is_empty() && !self.clean_session {
            return Err(Malformed::EmptyClientIdWithSession); // [MQTT-3.1.3-7]
        }
        if self.password.is_some()
            && self.username.is_none()
            && self.protocol == ProtocolLevel::V311
        {
            return Err(Malformed::PasswordWithoutUsername); // [MQTT-3.1.2-22]
        }
        let mut len = 2 + self.protocol.name().len() + 1 + 1 + 2 + str_len(self.client_id)?;
        if let Some(will) = &self.will {
            TopicName::new(will.topic)?;
            len += str_len(will.topic)? + binary_len(will.payload)?;
        }
        if let Some(username) = self.username {
            len += str_len(username)?;
        }
        if let Some(password) = self.password {
            len += binary_len(password)?;
        }
        Ok(len)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.str(self.protocol.name())?;
        w.u8(self.protocol.level())?;
        w.u8(self.flags())?;
        w.u16(self.keep_alive)?;
        w.str(self.client_id)?;
        if let Some(will) = &self.will {
            w.str(will.topic)?;
            w.binary(will.payload)?;
        }
        if let Some(username) = self.username {
            w.str(username)?;
        }
        if let Some(password) = self.password {
            w.binary(password)?;
        }
        Ok(())
    }
}

/// CONNACK return code (3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0x00: connection accepted.
    Accepted = 0,
    /// 0x01: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 0x02: the client identifier is not allowed.
    IdentifierRejected = 2,
    /// 0x03: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 0x04: the user name or password is malformed.
    BadUserNameOrPassword = 4,
    /// 0x05: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for `byte`; values above 5 are reserved.
    pub const fn from_u8(byte: u8) -> Result<Self, Malformed> {
        Ok(match byte {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return Err(Malformed::InvalidConnectReturnCode),
        })
    }

    /// What the code means, in words.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "connection accepted",
            Self::UnacceptableProtocolVersion => "unacceptable protocol version",
            Self::IdentifierRejected => "identifier rejected",
            Self::ServerUnavailable => "server unavailable",
            Self::BadUserNameOrPassword => "bad user name or password",
            Self::NotAuthorized => "not authorized",
        }
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CONNACK: the server's answer to CONNECT (3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnAck {
    /// The server resumed a stored session.
    pub session_present: bool,
    /// Accepted, or why not.
    pub code: ConnectReturnCode,
}

impl ConnAck {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        let flags = r.u8()?;
        if flags & 0xfe != 0 {
            return Err(Malformed::ConnAckReservedFlags);
        }
        let code = ConnectReturnCode::from_u8(r.u8()?)?;
        let ack = Self { session_present: flags & 1 != 0, code };
        ack.check()?;
        Ok(ack)
    }

    /// `[MQTT-3.2.2-4]`: a refusal never has Session Present set.
    fn check(&self) -> Result<(), Malformed> {
        if self.session_present && self.code != ConnectReturnCode::Accepted {
            Err(Malformed::SessionPresentWithRefusal)
        } else {
            Ok(())
        }
    }

    pub(crate) fn body_len(&self) -> Result<usize, Malformed> {
        self.check()?;
        Ok(2)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.u8(u8::from(self.session_present))?;
        w.u8(self.code as u8)
    }
}
