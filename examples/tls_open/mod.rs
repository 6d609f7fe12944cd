//! TLS for the host examples: the `--cafile`, `--cert`, `--key`,
//! `--tls-server-name` and `--insecure` flags, and opening a
//! `umqtt::tls` stream over a connected TCP socket (feature `tls`).
#![allow(dead_code)]

/// Port used when TLS is requested and no port is given.
pub const DEFAULT_TLS_PORT: u16 = 8883;

/// Usage lines for the TLS flags.
pub const USAGE: &str = "  TLS (build with --features tls): --cafile FILE [--cert FILE --key FILE]
          [--tls-server-name NAME (default: the host)] [--insecure]; -p defaults to 8883";

/// The TLS flags as given.
#[derive(Default)]
pub struct TlsArgs {
    pub cafile: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub server_name: Option<String>,
    pub insecure: bool,
}

impl TlsArgs {
    /// Consumes `flag` if it is a TLS flag (`value` yields its argument).
    pub fn parse_flag(
        &mut self,
        flag: &str,
        mut value: impl FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--cafile" => self.cafile = Some(value()?),
            "--cert" => self.cert = Some(value()?),
            "--key" => self.key = Some(value()?),
            "--tls-server-name" => self.server_name = Some(value()?),
            "--insecure" => self.insecure = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether TLS was asked for (`--cafile` or `--insecure`).
    pub fn wanted(&self) -> bool {
        self.cafile.is_some() || self.insecure
    }

    /// Checks the flags fit together.
    pub fn validate(&self) -> Result<(), String> {
        let any = self.wanted()
            || self.cert.is_some()
            || self.key.is_some()
            || self.server_name.is_some();
        if any && !cfg!(feature = "tls") {
            return Err(
                "TLS options need a build with TLS: cargo run --example … --features tls".into()
            );
        }
        if any && !self.wanted() {
            return Err("--cert, --key and --tls-server-name need --cafile (or --insecure)".into());
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err("--cert and --key go together".into());
        }
        if self.insecure && self.cafile.is_some() {
            return Err("--insecure and --cafile exclude each other".into());
        }
        Ok(())
    }
}

/// The operating system's RNG as a rand_core 0.6 `CryptoRng`: TLS
/// key exchange, WebSocket keys and masks.
pub struct OsRng;

impl rand_core::RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        getrandom::fill(dest).expect("OS RNG");
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for OsRng {}

#[cfg(feature = "tls")]
pub use with_tls::*;

#[cfg(feature = "tls")]
mod with_tls {
    use super::TlsArgs;
    use umqtt::tls::{self, TlsClock, TlsOptions, pem};

    /// Unix time from the host clock, so expired certificates fail.
    pub struct SystemClock;

    impl TlsClock for SystemClock {
        fn now() -> Option<u64> {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            Some(now.ok()?.as_secs())
        }
    }

    /// Certificates and key read from their PEM files, as DER.
    pub struct Material {
        server_name: String,
        ca: Vec<u8>,
        client: Option<(Vec<u8>, Vec<u8>)>,
        insecure: bool,
    }

    fn read(path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
    }

    impl Material {
        /// Reads and decodes the files named by `args`; `host` is the
        /// default server name.
        pub fn load(args: &TlsArgs, host: &str) -> Result<Self, String> {
            let mut ca = vec![0u8; 8192];
            if let Some(path) = &args.cafile {
                let len = pem::certificate_der(&read(path)?, &mut ca)
                    .map_err(|e| format!("{path}: {e}"))?
                    .len();
                ca.truncate(len);
            }
            let client = match (&args.cert, &args.key) {
                (Some(cert_path), Some(key_path)) => {
                    let mut cert = vec![0u8; 8192];
                    let len = pem::certificate_der(&read(cert_path)?, &mut cert)
                        .map_err(|e| format!("{cert_path}: {e}"))?
                        .len();
                    cert.truncate(len);
                    let mut buf = vec![0u8; 1024];
                    let sec1 = pem::private_key(&read(key_path)?, &mut buf)
                        .map_err(|e| format!("{key_path}: {e}"))?
                        .sec1_der()
                        .to_vec();
                    Some((cert, sec1))
                }
                _ => None,
            };
            let server_name = args.server_name.clone().unwrap_or_else(|| host.to_owned());
            Ok(Self { server_name, ca, client, insecure: args.insecure })
        }

        /// The TLS options (verification on unless `--insecure`).
        pub fn options(&self) -> Result<TlsOptions<'_, SystemClock>, String> {
            let options = if self.insecure {
                eprintln!("warning: --insecure: the broker's certificate is NOT verified");
                TlsOptions::danger_accept_invalid_certificates(&self.server_name)
            } else {
                TlsOptions::new(&self.server_name, &self.ca)
            };
            let mut options = options.clock::<SystemClock>();
            if let Some((cert, key)) = &self.client {
                let key = pem::EcPrivateKey::from_der(key).map_err(|e| format!("--key: {e}"))?;
                options = options.client_certificate(cert, key);
            }
            Ok(options)
        }
    }

    /// Record buffers: a full 16 KiB read record and a 4 KiB write record.
    pub fn buffers() -> (Vec<u8>, Vec<u8>) {
        (vec![0u8; tls::READ_RECORD_BUFFER], vec![0u8; 4096 + tls::TLS_RECORD_OVERHEAD])
    }
}
