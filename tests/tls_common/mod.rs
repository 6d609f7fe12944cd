//! TLS test support: a PKI generated at run time with the `openssl`
//! command, the host examples' OS RNG and system clock for embedded-tls,
//! and Mosquitto TLS listener configuration.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use umqtt::tls;

/// Certificates and keys in one directory, generated once per test binary.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Path of a generated file.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Contents of a generated file.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// DER of the certificate in PEM file `name`.
    pub fn cert_der(&self, name: &str) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let len = tls::pem::certificate_der(&self.read(name), &mut buf).unwrap().len();
        buf.truncate(len);
        buf
    }

    /// Mosquitto lines for a TLS 1.3 listener on `port` with server
    /// certificate chain `cert` and key `key`, trusting `ca.pem` for client
    /// certificates.
    pub fn listener(&self, port: u16, cert: &str, key: &str, require_certificate: bool) -> String {
        format!(
            "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\ntls_version tlsv1.3\nrequire_certificate {require_certificate}\n",
            self.path("ca.pem").display(),
            self.path(cert).display(),
            self.path(key).display(),
        )
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs `name.csr` (from key `name.key`, subject `cn`) with `ca` into
/// `name.pem` using extension lines `ext` and validity `days` (negative:
/// already expired).
fn issue(dir: &Path, name: &str, cn: &str, ca: &str, ext: &str, days: i32) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let subject = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &subject,
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let days = days.to_string();
    let csr = format!("{name}.csr");
    let ext_file = format!("{name}.ext");
    let out = format!("{name}.pem");
    let ca_pem = format!("{ca}.pem");
    let ca_key = format!("{ca}.key");
    let mut args = vec![
        "x509", "-req", "-sha256", "-in", &csr, "-extfile", &ext_file, "-days", &days, "-out", &out,
    ];
    if ca == name {
        args.extend(["-signkey", &ca_key]);
    } else {
        args.extend(["-CA", &ca_pem, "-CAkey", &ca_key, "-set_serial", "0x1234"]);
    }
    openssl(dir, &args);
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
const SERVER_EXT: &str = "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT: &str = "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n";

/// The test PKI:
/// - `ca` (P-256, SEC1 key) issues `server` (localhost + 127.0.0.1, PKCS#8 key),
///   `expired` (same names, notAfter yesterday) and `client` (SEC1 key with an
///   `EC PARAMETERS` block, as `openssl ecparam -genkey` writes it);
/// - `other-ca`, unrelated, issues `rogue` (localhost);
/// - `evil` (localhost) is issued by `client`'s key (a leaf, not a CA);
///   `evil-chain.pem` is `evil` followed by `client`.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("umqtt-tls-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.as_path();
        for ca in ["ca", "other-ca"] {
            openssl(
                d,
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    &format!("{ca}.key"),
                ],
            );
            issue(d, ca, &format!("umqtt test {ca}"), ca, CA_EXT, 30);
        }
        for key in ["server", "expired", "rogue", "evil"] {
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    &format!("{key}.key"),
                ],
            );
        }
        openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-out", "client.key"]);
        issue(d, "server", "localhost", "ca", SERVER_EXT, 30);
        issue(d, "expired", "localhost", "ca", SERVER_EXT, -1);
        issue(d, "client", "umqtt-test-client", "ca", CLIENT_EXT, 30);
        issue(d, "rogue", "localhost", "other-ca", SERVER_EXT, 30);
        issue(d, "evil", "localhost", "client", SERVER_EXT, 30);
        let mut chain = std::fs::read(d.join("evil.pem")).unwrap();
        chain.extend(std::fs::read(d.join("client.pem")).unwrap());
        std::fs::write(d.join("evil-chain.pem"), chain).unwrap();
        Pki { dir }
    })
}

/// Whether the `openssl` command is available (else TLS tests skip).
pub fn have_openssl(test: &str) -> bool {
    let ok = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !std::env::var("UMQTT_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1"),
            "{test}: openssl not found and UMQTT_REQUIRE_MOSQUITTO=1"
        );
        println!("SKIPPED {test}: openssl not on PATH");
    }
    ok
}

// The OS RNG and the system clock are the host examples' own.
#[path = "../../examples/tls_open/mod.rs"]
mod tls_open;
#[allow(unused_imports, reason = "not every TLS test binary uses both")]
pub use tls_open::{OsRng, SystemClock};
