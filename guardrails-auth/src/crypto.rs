//! The crypto backend of jsonwebtoken, chosen once, explicitly.
//!
//! jsonwebtoken 11 picks its provider from its own features and panics on
//! first use when neither or both of `aws_lc_rs` and `rust_crypto` are on.
//! This crate turns both cases into something better:
//!
//! - neither `aws-lc-rs` nor `rust-crypto` enabled: a compile error naming the
//!   features;
//! - both enabled (as `cargo test --all-features` does): `aws-lc-rs` takes
//!   precedence, installed explicitly as the process default before any key is
//!   used, so nothing panics.
//!
//! An application that installed its own provider first keeps it.

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "guardrails-auth needs a crypto backend: enable the `aws-lc-rs` feature (the default) \
     or the `rust-crypto` feature"
);

use std::sync::Once;

use jsonwebtoken::crypto::CryptoProvider;

/// The provider this build of guardrails-auth uses: aws-lc-rs when the
/// `aws-lc-rs` feature is on (even together with `rust-crypto`), RustCrypto
/// otherwise.
pub(crate) fn provider() -> &'static CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    {
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
    }
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    {
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER
    }
}

/// Installs the crate's provider as jsonwebtoken's process default, once.
///
/// Every builder of this crate calls it, so applications need not; call it
/// yourself before using jsonwebtoken directly when both backends are compiled
/// in. When a provider is already installed, it is kept.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first: keep it.
        let _ = provider().install_default();
    });
}

pub(crate) fn ensure_provider() {
    install_crypto_provider();
}

/// The name of the backend in use: `aws-lc-rs` or `rust-crypto`.
pub const fn backend() -> &'static str {
    #[cfg(feature = "aws-lc-rs")]
    {
        "aws-lc-rs"
    }
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    {
        "rust-crypto"
    }
}
