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

/// Runs openssl `args` in `dir` (all `&str`).
fn ossl(dir: &Path, args: &[&str]) {
    openssl(dir, args);
}

/// An RSA key of `bits` in `name.key`.
fn rsa_key(dir: &Path, name: &str, bits: u32) {
    let bits = format!("rsa_keygen_bits:{bits}");
    let out = format!("{name}.key");
    ossl(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", &bits, "-out", &out]);
}

/// A P-256 key in `name.key`.
fn ec_key(dir: &Path, name: &str) {
    let out = format!("{name}.key");
    ossl(
        dir,
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &out],
    );
}

/// Certificate `name.pem` for key `name.key`, subject `cn`, signed by
/// `ca` (itself when `ca == name`) with digest `md`, extension lines
/// `ext`, `days` of validity (negative: expired), and extra openssl
/// arguments (e.g. PSS `-sigopt`s).
#[allow(clippy::too_many_arguments, reason = "one call per certificate, each argument named above")]
fn sign(
    dir: &Path,
    name: &str,
    cn: &str,
    ca: &str,
    md: &str,
    ext: &str,
    days: i32,
    extra: &[&str],
) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let (key, csr, ext_file, out) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.pem"),
    );
    let subject = format!("/CN={cn}");
    ossl(dir, &["req", "-new", "-key", &key, "-subj", &subject, "-out", &csr]);
    let days = days.to_string();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    let md = format!("-{md}");
    let mut args =
        vec!["x509", "-req", &md, "-in", &csr, "-extfile", &ext_file, "-days", &days, "-out", &out];
    if ca == name {
        args.extend(["-key", &ca_key]);
    } else {
        args.extend(["-CA", &ca_pem, "-CAkey", &ca_key, "-set_serial", "0x4321"]);
    }
    args.extend(extra);
    ossl(dir, &args);
}

fn concat(dir: &Path, out: &str, parts: &[&str]) {
    let mut all = Vec::new();
    for part in parts {
        all.extend(std::fs::read(dir.join(part)).unwrap());
    }
    std::fs::write(dir.join(out), all).unwrap();
}

const LEAF_EXT: &str = "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";

/// The RSA and name-matching PKI (openssl, once per test binary). Server
/// files are `<name>.pem` (leaf first, then intermediates) and
/// `<name>.key`; trust anchors `<root>.pem`:
/// - `r2048` → `i2048` → `l2048` (all RSA-2048, SHA-256): chain `rsa2048-chain.pem`;
/// - `r4096` (SHA-512) → `i3072` (SHA-384) → `l4096x` (RSA-2048): `rsa4096-chain.pem`;
/// - `r2048` → `ec-leaf` (P-256): `rsa-over-ec.pem`;
/// - `r2048` → `pss-leaf` (RSA-2048, signed RSASSA-PSS SHA-256): `pss-leaf.pem`;
/// - `other-r2048` → `other-leaf`: `other-chain.pem` (trusted `r2048`: another key);
/// - `tampered.pem`: `l2048`'s chain with one signature byte of the leaf flipped;
/// - `r2048` → `weak-int` (RSA-1024 CA) → `weak-leaf`: `weak-chain.pem`;
/// - `r2048` → `expired-rsa` (notAfter yesterday): `expired-rsa-chain.pem`;
/// - `p384-root` → `p384-leaf` (ECDSA P-384, SHA-384);
/// - under the P-256 `ca` of [`pki`]: `ip-only` (IP:127.0.0.1), `dns-only`
///   (DNS:localhost), `wild` (DNS:*.umqtt.test), `ip6` (IP:::1).
pub fn rsa_pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("umqtt-tls-rsa-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.as_path();
        for (name, bits) in [
            ("r2048", 2048),
            ("i2048", 2048),
            ("l2048", 2048),
            ("r4096", 4096),
            ("i3072", 3072),
            ("l4096x", 2048),
            ("pss-leaf", 2048),
            ("other-r2048", 2048),
            ("other-leaf", 2048),
            ("weak-int", 1024),
            ("weak-leaf", 2048),
            ("expired-rsa", 2048),
        ] {
            rsa_key(d, name, bits);
        }
        sign(d, "r2048", "umqtt rsa root", "r2048", "sha256", CA_EXT, 30, &[]);
        sign(d, "i2048", "umqtt rsa int", "r2048", "sha256", CA_EXT, 30, &[]);
        sign(d, "l2048", "localhost", "i2048", "sha256", LEAF_EXT, 30, &[]);
        concat(d, "rsa2048-chain.pem", &["l2048.pem", "i2048.pem"]);
        sign(d, "r4096", "umqtt rsa4096 root", "r4096", "sha512", CA_EXT, 30, &[]);
        sign(d, "i3072", "umqtt rsa3072 int", "r4096", "sha512", CA_EXT, 30, &[]);
        sign(d, "l4096x", "localhost", "i3072", "sha384", LEAF_EXT, 30, &[]);
        concat(d, "rsa4096-chain.pem", &["l4096x.pem", "i3072.pem"]);
        ec_key(d, "ec-leaf");
        sign(d, "ec-leaf", "localhost", "r2048", "sha256", LEAF_EXT, 30, &[]);
        concat(d, "rsa-over-ec.pem", &["ec-leaf.pem"]);
        let pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"];
        sign(d, "pss-leaf", "localhost", "r2048", "sha256", LEAF_EXT, 30, &pss);
        sign(d, "other-r2048", "umqtt rsa root", "other-r2048", "sha256", CA_EXT, 30, &[]);
        sign(d, "other-leaf", "localhost", "other-r2048", "sha256", LEAF_EXT, 30, &[]);
        concat(d, "other-chain.pem", &["other-leaf.pem"]);
        sign(d, "weak-int", "umqtt weak int", "r2048", "sha256", CA_EXT, 30, &[]);
        sign(d, "weak-leaf", "localhost", "weak-int", "sha256", LEAF_EXT, 30, &[]);
        concat(d, "weak-chain.pem", &["weak-leaf.pem", "weak-int.pem"]);
        sign(d, "expired-rsa", "localhost", "r2048", "sha256", LEAF_EXT, -1, &[]);
        concat(d, "expired-rsa-chain.pem", &["expired-rsa.pem"]);
        // The leaf's last signature byte flipped, re-encoded as PEM.
        ossl(d, &["x509", "-in", "l2048.pem", "-outform", "DER", "-out", "l2048.der"]);
        let mut der = std::fs::read(d.join("l2048.der")).unwrap();
        *der.last_mut().unwrap() ^= 0x01;
        std::fs::write(d.join("tampered.der"), der).unwrap();
        ossl(d, &["x509", "-inform", "DER", "-in", "tampered.der", "-out", "tampered-leaf.pem"]);
        concat(d, "tampered.pem", &["tampered-leaf.pem", "i2048.pem"]);
        std::fs::copy(d.join("l2048.key"), d.join("tampered.key")).unwrap();
        // ECDSA P-384 (feature tls-p384): root → leaf, SHA-384.
        for name in ["p384-root", "p384-leaf"] {
            let out = format!("{name}.key");
            ossl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                    "-out",
                    &out,
                ],
            );
        }
        sign(d, "p384-root", "umqtt p384 root", "p384-root", "sha384", CA_EXT, 30, &[]);
        sign(d, "p384-leaf", "localhost", "p384-root", "sha384", LEAF_EXT, 30, &[]);
        // Name matching, under the P-256 CA of `pki()`.
        let ec = pki();
        for f in ["ca.pem", "ca.key"] {
            std::fs::copy(ec.path(f), d.join(f)).unwrap();
        }
        for (name, san) in [
            ("ip-only", "IP:127.0.0.1"),
            ("dns-only", "DNS:localhost"),
            ("wild", "DNS:*.umqtt.test"),
            ("ip6", "IP:::1"),
        ] {
            ec_key(d, name);
            let ext = format!("basicConstraints=critical,CA:FALSE\nsubjectAltName={san}\n");
            sign(d, name, "umqtt name test", "ca", "sha256", &ext, 30, &[]);
        }
        for (key, chain) in [
            ("l2048", "rsa2048-chain"),
            ("l4096x", "rsa4096-chain"),
            ("ec-leaf", "rsa-over-ec"),
            ("other-leaf", "other-chain"),
            ("weak-leaf", "weak-chain"),
            ("expired-rsa", "expired-rsa-chain"),
        ] {
            std::fs::copy(d.join(format!("{key}.key")), d.join(format!("{chain}.key"))).unwrap();
        }
        Pki { dir }
    })
}

/// Mosquitto lines for a TLS 1.3 listener on `port` serving `<name>.pem`
/// and `<name>.key` from `pki`, without client certificates. OpenSSL's
/// security level is lowered so that it serves even a 1024-bit chain (the
/// client must be the one refusing it).
pub fn server_listener(pki: &Pki, port: u16, name: &str) -> String {
    format!(
        "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\ntls_version tlsv1.3\nciphers DEFAULT:@SECLEVEL=0\n",
        pki.path(&format!("{name}.pem")).display(),
        pki.path(&format!("{name}.key")).display(),
    )
}
