//! The [`CryptoProvider`] umqtt hands to embedded-tls: the caller's RNG,
//! the optional client certificate and key, and a certificate verifier
//! that closes the gaps of embedded-tls 0.19's own (see [`Verifier`]).

use core::marker::PhantomData;

use embedded_tls::{
    Aes128GcmSha256, Certificate, CertificateEntryRef, CertificateRef, CertificateVerifyRef,
    CryptoProvider, CryptoRngCore, SignatureScheme, TlsCipherSuite, TlsClock, TlsError,
    TlsVerifier, UnsecureProvider,
};
use sha2::Digest;

use super::verify::{self, CertificateError};
use super::{TlsOptions, Trust};

/// Bytes kept of the server's certificate between its Certificate and
/// CertificateVerify messages: the leaf's public key only (an RSA-4096
/// SubjectPublicKeyInfo takes 550). Lives only while the handshake runs.
pub const SERVER_CHAIN_CAPACITY: usize = verify::LEAF_KEY_CAPACITY;

/// The cipher suite umqtt offers: TLS_AES_128_GCM_SHA256, which every TLS
/// 1.3 server must support (RFC 8446 §9.1).
pub type CipherSuite = Aes128GcmSha256;

/// A [`CryptoProvider`] that verifies the server against one CA and the
/// server name, and signs with the client key for mutual TLS.
///
/// Built by [`connect`](super::connect); public for callers who drive
/// `embedded_tls::TlsConnection::open` themselves (then check
/// [`server_authenticated`](Self::server_authenticated) after `open`).
pub struct TlsProvider<'a, R, C: TlsClock> {
    // embedded-tls's `UnsecureProvider` is only "unsecure" because it has no
    // verifier; umqtt uses it for the RNG and the client key (SEC1 DER →
    // P-256 signer) and adds the verifier below.
    signing: UnsecureProvider<'a, CipherSuite, R>,
    verifier: Option<Verifier<'a, C>>,
}

impl<'a, R: CryptoRngCore, C: TlsClock> TlsProvider<'a, R, C> {
    /// A provider for `options` drawing randomness from `rng`.
    pub fn new(options: &TlsOptions<'a, C>, rng: R) -> Self {
        let mut signing = UnsecureProvider::new::<CipherSuite>(rng);
        if let Some(client) = options.client {
            signing = signing
                .with_cert(Certificate::X509(client.certificate_der))
                .with_priv_key(client.key.sec1_der());
        }
        let verifier = match options.trust {
            Trust::Ca(ca) => Some(Verifier::new(ca, options.server_name)),
            Trust::DangerAcceptAnything => None,
        };
        Self { signing, verifier }
    }

    /// After the handshake: whether the server presented a certificate
    /// chain that verified and proved it holds the leaf's key. Always true
    /// with verification disabled.
    pub fn server_authenticated(&self) -> bool {
        self.verifier.as_ref().is_none_or(|v| v.signature_verified)
    }

    /// After a failed handshake: why the verifier refused the server, if
    /// it did.
    pub fn certificate_error(&self) -> Option<CertificateError> {
        self.verifier.as_ref().and_then(|v| v.error)
    }
}

impl<R: CryptoRngCore, C: TlsClock> CryptoProvider for TlsProvider<'_, R, C> {
    type CipherSuite = CipherSuite;
    type Signature = <UnsecureProvider<'static, CipherSuite, R> as CryptoProvider>::Signature;

    fn rng(&mut self) -> impl CryptoRngCore {
        self.signing.rng()
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<CipherSuite>, TlsError> {
        // `Unimplemented` is embedded-tls's "skip verification" signal.
        self.verifier.as_mut().ok_or(TlsError::Unimplemented)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<Self::Signature>, SignatureScheme), TlsError> {
        self.signing.signer()
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.signing.client_cert()
    }
}

/// umqtt's certificate verifier ([`super::verify`]), through
/// embedded-tls's `TlsVerifier` trait, with three checks embedded-tls
/// 0.19's `pki::CertVerifier` lacks besides RSA and IP addresses:
///
/// - every certificate above the leaf must be a CA (`basicConstraints
///   cA=TRUE`); otherwise anyone holding a leaf certificate from the CA
///   (for example a device's client certificate) could sign a certificate
///   for any host name with its key and have it accepted;
/// - a CertificateVerify without a verified Certificate before it is a
///   handshake error (embedded-tls would panic on an `unwrap`);
/// - the connection only counts as authenticated when the CertificateVerify
///   signature was checked: embedded-tls accepts a server Finished when the
///   server sent no Certificate and no CertificateVerify at all, which lets
///   an active attacker skip authentication. [`connect`](super::connect)
///   refuses such a connection before any application data is sent.
///
/// Between Certificate and CertificateVerify it keeps only the leaf's
/// public key ([`SERVER_CHAIN_CAPACITY`] bytes) and the transcript hash.
pub(crate) struct Verifier<'a, C: TlsClock> {
    ca: &'a [u8],
    host: &'a str,
    leaf_key: [u8; SERVER_CHAIN_CAPACITY],
    leaf_key_len: usize,
    transcript: Option<<CipherSuite as TlsCipherSuite>::Hash>,
    certificate_verified: bool,
    signature_verified: bool,
    error: Option<CertificateError>,
    clock: PhantomData<fn() -> C>,
}

impl<'a, C: TlsClock> Verifier<'a, C> {
    fn new(ca: &'a [u8], host: &'a str) -> Self {
        Self {
            ca,
            host,
            leaf_key: [0; SERVER_CHAIN_CAPACITY],
            leaf_key_len: 0,
            transcript: None,
            certificate_verified: false,
            signature_verified: false,
            error: None,
            clock: PhantomData,
        }
    }

    fn refuse(&mut self, error: CertificateError) -> TlsError {
        self.error = Some(error);
        error.tls_error()
    }
}

impl<C: TlsClock> TlsVerifier<CipherSuite> for Verifier<'_, C> {
    /// The name checked is the one in [`TlsOptions`] (an IP address is
    /// not sent as SNI, so embedded-tls may not call this).
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), TlsError> {
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &<CipherSuite as TlsCipherSuite>::Hash,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        self.certificate_verified = false;
        let mut chain: heapless::Vec<&[u8], 16> = heapless::Vec::new();
        for entry in &cert.entries {
            match entry {
                CertificateEntryRef::X509(der) => {
                    // Cannot fail: `entries` holds at most 16 too.
                    let _ = chain.push(der);
                }
                _ => return Err(self.refuse(CertificateError::UnsupportedAlgorithm)),
            }
        }
        let leaf_key = match verify::verify_chain(self.ca, &chain, self.host, C::now()) {
            Ok(key) => key,
            Err(e) => return Err(self.refuse(e)),
        };
        match self.leaf_key.get_mut(..leaf_key.len()) {
            Some(slot) => slot.copy_from_slice(leaf_key),
            None => return Err(self.refuse(CertificateError::KeyTooLarge)),
        }
        self.leaf_key_len = leaf_key.len();
        self.transcript = Some(transcript.clone());
        self.certificate_verified = true;
        Ok(())
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        let transcript = self.transcript.take();
        let (true, Some(transcript)) =
            (core::mem::take(&mut self.certificate_verified), transcript)
        else {
            return Err(TlsError::InvalidHandshake);
        };
        let hash = Digest::finalize(transcript);
        let key = self.leaf_key.get(..self.leaf_key_len).unwrap_or_default();
        match verify::verify_certificate_verify(
            key,
            verify.signature_scheme,
            verify.signature,
            &hash,
        ) {
            Ok(()) => {
                self.signature_verified = true;
                Ok(())
            }
            Err(e) => Err(self.refuse(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_tls::NoClock;

    struct CountingRng(u64);
    impl rand_core::RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 += 1;
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(1);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            dest.fill(1);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for CountingRng {}

    #[test]
    fn server_without_certificate_verify_is_not_authenticated() {
        let options = TlsOptions::new("broker.example", &[0x30, 0x00]);
        let provider = TlsProvider::new(&options, CountingRng(0));
        assert!(!provider.server_authenticated());
    }

    #[test]
    fn danger_mode_counts_as_authenticated_and_has_no_verifier() {
        let options = TlsOptions::<NoClock>::danger_accept_invalid_certificates("broker");
        let mut provider = TlsProvider::new(&options, CountingRng(0));
        assert!(provider.server_authenticated());
        assert!(matches!(provider.verifier(), Err(TlsError::Unimplemented)));
    }

    #[test]
    fn empty_chain_is_refused() {
        let mut verifier = Verifier::<NoClock>::new(&[0x30, 0x00], "broker");
        let chain = CertificateRef::with_context(&[]);
        let hash = <CipherSuite as embedded_tls::TlsCipherSuite>::Hash::default();
        assert!(matches!(
            verifier.verify_certificate(&hash, chain),
            Err(TlsError::InvalidCertificate)
        ));
    }
}
