//! TLS 1.3 for the client (feature `tls`), through `embedded-tls`, with the
//! parts users get wrong done once: the broker's PEM CA file decoded to DER
//! without allocation, the server name used for both SNI and host-name
//! verification, certificate verification on unless explicitly disabled,
//! certificate validity checked when a clock is given, and mutual TLS with
//! an ECDSA P-256 client key.
//!
//! ```
//! use embedded_io_async::{Read, Write};
//! use umqtt::tls::{self, TlsOptions, pem};
//!
//! async fn open<S: Read + Write>(
//!     socket: S,                         // a connected TCP socket
//!     rng: impl tls::CryptoRngCore,      // the HAL RNG, or OsRng on a host
//!     read_record: &mut [u8],            // tls::READ_RECORD_BUFFER bytes (33 285)
//!     write_record: &mut [u8],           // e.g. 2 * (1024 + tls::TLS_RECORD_OVERHEAD)
//! ) -> Result<(), tls::ConnectError> {
//!     const CA_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
//!     let mut ca_der = [0u8; 1024];
//!     let ca = pem::certificate_der(CA_PEM, &mut ca_der).expect("CA PEM");
//!     let options = TlsOptions::new("broker.example.com", ca);
//!     let stream = tls::connect(socket, read_record, write_record, &options, rng).await?;
//!     // `stream` implements embedded-io-async Read + Write:
//!     // umqtt::Client::new(stream, &mut rx, &mut tx, on_message)
//!     # drop(stream);
//!     Ok(())
//! }
//! ```
//!
//! embedded-tls speaks TLS 1.3 only, with TLS_AES_128_GCM_SHA256 and an
//! ECDHE P-256 key exchange. Certificates are checked by umqtt's verifier
//! (through embedded-tls's `TlsVerifier` trait): ECDSA P-256 chains; RSA
//! chains of 2048 to 4096 bits (PKCS#1 v1.5 and PSS, SHA-256/384/512) with
//! the `tls-rsa` feature, without a heap (module `rsa`; about 43 KB more
//! flash on a Cortex-M4, 15 KB with `tls-compact-sha2`); P-384 ones with
//! `tls-p384` (about 150 KB more). Keys of each kind may be mixed in one
//! chain. The server name is matched against DNS SANs (RFC 6125
//! wildcards) or, for an IP address, against IP-address SANs only; see
//! [`CertificateError`] for the refusals.
//!
//! **Cancel safety**: the stream [`connect`] returns reads the socket
//! through [`RecordFramed`], so dropping a pending read (`check_msg`, a
//! `select` with a timer) loses nothing, and writes each record whole or
//! not at all, never reusing a sequence number (nonce), unlike a bare
//! embedded-tls connection. See [`connect`] and [`TlsStream`].

mod connector;
mod der;
mod framed;
pub mod pem;
mod provider;
#[cfg(feature = "tls-rsa")]
pub mod rsa;
mod stream;
mod verify;

use core::fmt;
use core::marker::PhantomData;

use embedded_io_async::{Read, Write};
use embedded_tls::alert::AlertDescription;
use embedded_tls::{TlsConfig, TlsConnection, TlsContext};

pub use connector::{TlsConnector, TlsConnectorError};
pub use embedded_tls::{
    CryptoRngCore, MaxFragmentLength, NoClock, TLS_RECORD_OVERHEAD, TlsClock, TlsError,
};
pub use framed::{FramedError, RecordFramed};
pub use pem::{EcPrivateKey, PemError};
pub use provider::{CipherSuite, SERVER_CHAIN_CAPACITY, TlsProvider};
pub use stream::TlsStream;
pub use verify::CertificateError;

/// Read record buffer size without max fragment length negotiation
/// (33 285 bytes): embedded-tls's record buffer for the largest TLS 1.3
/// record body (2^14 plaintext + 256, RFC 8446 §5.2) plus the
/// [`RecordFramed`] buffer for the same record with its 5-byte header.
pub const READ_RECORD_BUFFER: usize = read_record_buffer_len(None);

/// Smallest write record buffer [`connect`] accepts without a client
/// certificate: a ClientHello with a 64-byte server name plus the record
/// overhead embedded-tls reserves (its part of the buffer), and the
/// smallest outbox of the [`RecordFramed`] adapter that makes writes
/// cancel-safe.
pub const MIN_WRITE_RECORD_BUFFER: usize = MIN_HANDSHAKE_WRITE + MIN_OUTBOX;

/// embedded-tls's part of the write buffer must hold the ClientHello.
const MIN_HANDSHAKE_WRITE: usize = 512;

/// Smallest outbox: records of 106 bytes of plaintext.
const MIN_OUTBOX: usize = 128;

/// Read record buffer size for a given max fragment length (`None`: the
/// default 2^14): twice the largest record body (the fragment plus 256
/// bytes of AEAD expansion allowance; once for embedded-tls, once for
/// [`RecordFramed`]) plus a record header. 8 709 bytes for
/// [`MaxFragmentLength::Bits12`].
pub const fn read_record_buffer_len(max_fragment_length: Option<MaxFragmentLength>) -> usize {
    record_body_len(max_fragment_length) + framing_buffer_len(max_fragment_length)
}

/// The [`RecordFramed`] part of the read record buffer: one whole record,
/// header included (16 645 bytes by default).
pub const fn framing_buffer_len(max_fragment_length: Option<MaxFragmentLength>) -> usize {
    5 + record_body_len(max_fragment_length)
}

/// Largest record body (ciphertext) for a max fragment length.
const fn record_body_len(max_fragment_length: Option<MaxFragmentLength>) -> usize {
    fragment_len(max_fragment_length) + 256
}

const fn fragment_len(max_fragment_length: Option<MaxFragmentLength>) -> usize {
    match max_fragment_length {
        None => 16_384,
        Some(MaxFragmentLength::Bits9) => 512,
        Some(MaxFragmentLength::Bits10) => 1024,
        Some(MaxFragmentLength::Bits11) => 2048,
        Some(MaxFragmentLength::Bits12) => 4096,
    }
}

/// What the server is checked against.
#[derive(Clone, Copy)]
enum Trust<'a> {
    /// DER of the CA certificate that issued the server's chain.
    Ca(&'a [u8]),
    /// Nothing: any certificate, any name.
    DangerAcceptAnything,
}

/// A client certificate and its key, for mutual TLS.
#[derive(Clone, Copy)]
struct ClientIdentity<'a> {
    certificate_der: &'a [u8],
    key: EcPrivateKey<'a>,
}

/// TLS settings for one broker. `C` is the clock for certificate validity
/// times ([`NoClock`] by default: validity periods are **not** checked).
///
/// ```
/// # use umqtt::tls::{TlsClock, TlsOptions};
/// struct Rtc;
/// impl TlsClock for Rtc {
///     fn now() -> Option<u64> {
///         Some(1_750_000_000) // seconds since 1970, e.g. from SNTP or an RTC
///     }
/// }
/// # let ca_der = [0u8; 0];
/// let options = TlsOptions::new("broker.example.com", &ca_der).clock::<Rtc>();
/// ```
pub struct TlsOptions<'a, C: TlsClock = NoClock> {
    server_name: &'a str,
    trust: Trust<'a>,
    client: Option<ClientIdentity<'a>>,
    max_fragment_length: Option<MaxFragmentLength>,
    clock: PhantomData<fn() -> C>,
}

impl<C: TlsClock> fmt::Debug for TlsOptions<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("server_name", &self.server_name)
            .field("verify", &matches!(self.trust, Trust::Ca(_)))
            .field("client_certificate", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> TlsOptions<'a, NoClock> {
    /// Verify the server: its chain must be issued by the CA certificate
    /// `ca_der` (DER; see [`pem::certificate_der`]) and name `server_name`,
    /// which is also sent as SNI unless it is an IP address. A DNS name is
    /// matched against the certificate's DNS SANs (the common name only
    /// without SANs), an IP address (`192.168.1.10`, `fe80::1`) against its
    /// IP-address SANs only.
    pub fn new(server_name: &'a str, ca_der: &'a [u8]) -> Self {
        Self::with_trust(server_name, Trust::Ca(ca_der))
    }

    /// **Unsafe for production.** Encrypts but accepts *any* certificate
    /// for *any* name, so anyone on the network path can impersonate the
    /// broker and read the credentials and messages. For a test broker with
    /// a throw-away certificate only. `server_name` is still sent as SNI.
    pub fn danger_accept_invalid_certificates(server_name: &'a str) -> Self {
        Self::with_trust(server_name, Trust::DangerAcceptAnything)
    }

    /// Verify the server against the CA certificate `ca_der`, under the
    /// host name its [`TlsConnector`] connects to (the inner connector's
    /// [`HostName`](crate::connect::HostName)), which is also the SNI.
    /// [`connect`] refuses these options ([`ConnectError::InvalidServerName`])
    /// until a name is set with [`with_server_name`](Self::with_server_name).
    pub fn for_host(ca_der: &'a [u8]) -> Self {
        Self::with_trust("", Trust::Ca(ca_der))
    }

    fn with_trust(server_name: &'a str, trust: Trust<'a>) -> Self {
        Self { server_name, trust, client: None, max_fragment_length: None, clock: PhantomData }
    }
}

impl<'a, C: TlsClock> TlsOptions<'a, C> {
    /// Authenticate to the broker with a client certificate (DER) and its
    /// ECDSA P-256 key (see [`pem::private_key`]), for brokers with
    /// `require_certificate true`.
    pub fn client_certificate(mut self, certificate_der: &'a [u8], key: EcPrivateKey<'a>) -> Self {
        self.client = Some(ClientIdentity { certificate_der, key });
        self
    }

    /// Ask the server for records of at most this size (RFC 6066), so the
    /// read record buffer can be [`read_record_buffer_len`] instead of
    /// [`READ_RECORD_BUFFER`]. Mosquitto (OpenSSL) honours it.
    pub fn max_fragment_length(mut self, length: MaxFragmentLength) -> Self {
        self.max_fragment_length = Some(length);
        self
    }

    /// Check certificate validity times against clock `C2`.
    pub fn clock<C2: TlsClock>(self) -> TlsOptions<'a, C2> {
        TlsOptions {
            server_name: self.server_name,
            trust: self.trust,
            client: self.client,
            max_fragment_length: self.max_fragment_length,
            clock: PhantomData,
        }
    }

    /// The server name (SNI and verification); empty after
    /// [`for_host`](TlsOptions::for_host).
    pub fn server_name(&self) -> &'a str {
        self.server_name
    }

    /// Check the server against (and send as SNI) `server_name` instead of
    /// the name given before, or the connector's host name.
    pub fn with_server_name(mut self, server_name: &'a str) -> Self {
        self.server_name = server_name;
        self
    }

    /// The same options under another server name, for one handshake.
    fn named<'n>(&self, server_name: &'n str) -> TlsOptions<'n, C>
    where
        'a: 'n,
    {
        TlsOptions {
            server_name,
            trust: self.trust,
            client: self.client,
            max_fragment_length: self.max_fragment_length,
            clock: PhantomData,
        }
    }

    /// Whether the server's certificate is verified (false only after
    /// [`danger_accept_invalid_certificates`](TlsOptions::danger_accept_invalid_certificates)).
    pub fn verifies_server(&self) -> bool {
        matches!(self.trust, Trust::Ca(_))
    }

    /// Read record buffer size these options need.
    pub fn read_record_buffer_len(&self) -> usize {
        read_record_buffer_len(self.max_fragment_length)
    }

    /// Smallest write record buffer these options accept: what the
    /// handshake is encoded in (including the client certificate), plus the
    /// smallest outbox of [`RecordFramed`].
    pub fn min_write_record_buffer_len(&self) -> usize {
        self.handshake_write_len() + MIN_OUTBOX
    }

    /// embedded-tls's part of the write buffer: the handshake is encoded in
    /// it.
    fn handshake_write_len(&self) -> usize {
        MIN_HANDSHAKE_WRITE + self.client.map_or(0, |c| c.certificate_der.len() + 16)
    }

    /// Largest useful write record buffer: records may not exceed the
    /// negotiated fragment length (twice: embedded-tls and the outbox).
    fn max_write_record_buffer_len(&self) -> usize {
        2 * (fragment_len(self.max_fragment_length) + TLS_RECORD_OVERHEAD)
    }
}

/// Why [`connect`] failed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server's certificate chain is not issued by the CA, does not
    /// name the server, is outside its validity period (with a clock), or
    /// uses an unsupported algorithm.
    Certificate(TlsError),
    /// The server sent no certificate, or did not prove it holds the key
    /// of the certificate it sent. Refused before any data was sent.
    ServerNotAuthenticated,
    /// The server aborted the handshake with this alert (for example
    /// `HandshakeFailure` when it has only an RSA certificate or no TLS 1.3).
    Alert(AlertDescription),
    /// The connection closed or failed during the handshake (for example a
    /// port that does not speak TLS closed it).
    Io(TlsError),
    /// The server's reply is not a TLS 1.3 handshake embedded-tls accepts.
    Protocol(TlsError),
    /// The server's certificate chain or its CertificateVerify was refused,
    /// for this reason (weak RSA key, bad signature, expired, wrong name...).
    Rejected(CertificateError),
    /// The server name is empty or longer than 64 bytes.
    InvalidServerName,
    /// A record buffer is too small; `needed` bytes are required.
    BufferTooSmall {
        /// `true`: the read record buffer; `false`: the write one.
        read: bool,
        /// Bytes needed.
        needed: usize,
    },
}

impl ConnectError {
    fn from_handshake(error: TlsError) -> Self {
        match error {
            TlsError::InvalidCertificate
            | TlsError::InvalidCertificateEntry
            | TlsError::InvalidSignature
            | TlsError::InvalidSignatureScheme
            | TlsError::DecodeError => Self::Certificate(error),
            TlsError::HandshakeAborted(_, description) => Self::Alert(description),
            TlsError::ConnectionClosed | TlsError::IoError | TlsError::Io(_) => Self::Io(error),
            other => Self::Protocol(other),
        }
    }

    /// Whether the failure is about the server's identity (certificate
    /// or proof of key): do not retry without fixing the configuration.
    pub fn is_certificate_error(&self) -> bool {
        matches!(self, Self::Certificate(_) | Self::Rejected(_) | Self::ServerNotAuthenticated)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(e) => write!(f, "server certificate rejected ({e})"),
            Self::ServerNotAuthenticated => f.write_str("server did not authenticate"),
            Self::Alert(a) => write!(f, "server aborted the TLS handshake: {a:?}"),
            Self::Io(e) => write!(f, "connection failed during the TLS handshake ({e})"),
            Self::Protocol(e) => write!(f, "TLS protocol error ({e})"),
            Self::Rejected(e) => write!(f, "server certificate rejected: {e}"),
            Self::InvalidServerName => f.write_str("server name empty or longer than 64 bytes"),
            Self::BufferTooSmall { read, needed } => {
                let which = if *read { "read" } else { "write" };
                write!(f, "TLS {which} record buffer too small, need {needed} bytes")
            }
        }
    }
}

impl core::error::Error for ConnectError {}

#[cfg(feature = "defmt")]
impl defmt::Format for ConnectError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

/// Runs the TLS 1.3 handshake over the connected `socket` and returns the
/// encrypted stream for [`Client::new`](crate::Client::new).
///
/// `read_record` must hold [`TlsOptions::read_record_buffer_len`] bytes
/// ([`READ_RECORD_BUFFER`], 33 285, unless a max fragment length is set;
/// 8 709 with [`MaxFragmentLength::Bits12`]): it is split between
/// embedded-tls's record buffer and the [`RecordFramed`] adapter;
/// `write_record` at least [`TlsOptions::min_write_record_buffer_len`]:
/// half of it is embedded-tls's record buffer (more if a client
/// certificate needs it), the rest the outbox that makes writes
/// cancel-safe; a record carries up to `len / 2 -` [`TLS_RECORD_OVERHEAD`]
/// `- 6` bytes of plaintext: 1 018 for `2 * (1024 + TLS_RECORD_OVERHEAD)`,
/// 442 for `1024 + TLS_RECORD_OVERHEAD` (see
/// [`TlsStream::record_capacity`]; larger writes are split into several
/// records; a buffer longer than twice the negotiated fragment length plus
/// [`TLS_RECORD_OVERHEAD`] is used only up to that).
///
/// `rng` must be a cryptographically secure RNG (`rand_core` 0.6
/// `CryptoRngCore`): the HAL's hardware RNG on a board, `OsRng` on a host.
///
/// # Cancel safety
///
/// Reads of the returned stream are cancel-safe when the socket's reads
/// are (embassy-net's and tokio's are): `check_msg`, and `wait_msg` or
/// any other call inside a `select` with a timer, may be dropped at any
/// point. embedded-tls 0.19 alone is not (it keeps a record's 5-byte
/// header in a local of its read future; dropping the read while the
/// record is still arriving corrupts the stream), so the socket is read
/// through [`RecordFramed`], which hands embedded-tls only whole records:
/// its reads then wait only between records, where dropping them loses
/// nothing. The handshake reads through it too.
///
/// Writes are cancel-safe too (when the socket's `write` is): embedded-tls
/// 0.19 alone is not (it seals a record, writes it, and counts its
/// sequence number only after the write; a write dropped in between leaves
/// a truncated record on the wire and seals the next record under the
/// same AES-GCM nonce). [`TlsStream`] and the [`RecordFramed`] outbox make
/// every record complete or not start: a dropped `publish` either sent
/// nothing or is finished, whole, by the client's next call. See
/// [`TlsStream`].
pub async fn connect<'b, S, R, C>(
    socket: S,
    read_record: &'b mut [u8],
    write_record: &'b mut [u8],
    options: &TlsOptions<'_, C>,
    rng: R,
) -> Result<TlsStream<'b, S>, ConnectError>
where
    S: Read + Write + 'b,
    R: CryptoRngCore,
    C: TlsClock,
{
    if options.server_name.is_empty() || options.server_name.len() > 64 {
        return Err(ConnectError::InvalidServerName);
    }
    let needed = options.read_record_buffer_len();
    if read_record.len() < needed {
        return Err(ConnectError::BufferTooSmall { read: true, needed });
    }
    let (read_record, framing) = read_record
        .split_at_mut(read_record.len() - framing_buffer_len(options.max_fragment_length));
    let needed = options.min_write_record_buffer_len();
    if write_record.len() < needed {
        return Err(ConnectError::BufferTooSmall { read: false, needed });
    }
    let usable = write_record.len().min(options.max_write_record_buffer_len());
    let (write_record, _) = write_record.split_at_mut(usable);
    // Half for embedded-tls and half for the outbox, unless the handshake
    // (a client certificate) needs more of it.
    let tls_len = (usable / 2).max(options.handshake_write_len()).min(usable - MIN_OUTBOX);
    let (write_record, outbox) = write_record.split_at_mut(tls_len);
    let (write_record_len, outbox_len) = (write_record.len(), outbox.len());

    // An IP address is not sent as SNI (RFC 6066 §3); it is still what
    // the certificate is checked against.
    let mut config = TlsConfig::new();
    if options.server_name.parse::<core::net::IpAddr>().is_err() {
        config = config.with_server_name(options.server_name);
    }
    // Offer RSA (PKCS#1 v1.5 for certificates, PSS for CertificateVerify)
    // only when it can be verified.
    #[cfg(feature = "tls-rsa")]
    {
        config = config.enable_rsa_signatures();
    }
    if let Some(length) = options.max_fragment_length {
        config = config.with_max_fragment_length(length);
    }
    let mut provider = TlsProvider::new(options, rng);
    let socket = RecordFramed::with_outbox(socket, framing, outbox);
    let mut stream = TlsConnection::new(socket, read_record, write_record);
    stream.open(TlsContext::new(&config, &mut provider)).await.map_err(|e| {
        match provider.certificate_error() {
            Some(reason) => ConnectError::Rejected(reason),
            None => ConnectError::from_handshake(e),
        }
    })?;
    if !provider.server_authenticated() {
        return Err(ConnectError::ServerNotAuthenticated);
    }
    Ok(TlsStream::from_connection(stream, write_record_len, outbox_len))
}
