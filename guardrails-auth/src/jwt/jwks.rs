//! Keys from a JWKS URL or OpenID Connect discovery, cached and refreshed.
//!
//! - **Background refresh** every `refresh_interval` (default 5 minutes),
//!   started when the verifier is built inside a tokio runtime; the first
//!   fetch happens right away.
//! - **Refetch on an unknown `kid`**, at most once per `min_refetch_interval`
//!   (default 30 s) whatever the number of requests: a client spraying random
//!   `kid`s gets `401 invalid_token` without causing a fetch per request.
//! - **Bounded fetches**: a timeout (default 5 s) and a response size cap
//!   (default 256 KiB); `https` only unless `insecure_allow_http` is set.
//! - **Stale-if-error**: when the endpoint fails, the last good keys keep
//!   serving; failures are counted (`guardrails_auth_jwks_fetches_total{outcome="error"}`).
//! - **Discovery**: `{issuer}/.well-known/openid-configuration` is read once,
//!   its `issuer` must equal the configured issuer exactly, and its
//!   `jwks_uri` must be `https`.
//!
//! The HTTP client is hyper-util's with rustls on the aws-lc-rs provider
//! (Mozilla's roots from webpki-roots).
//!
//! ```no_run
//! use std::time::Duration;
//! use guardrails_auth::jwt::{Issuer, JwksConfig, JwtVerifier};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::builder("https://id.example.com/")
//!     .audience("invoices")
//!     .jwks(JwksConfig::discovery().min_refetch_interval(Duration::from_secs(60)))
//!     .build()?;
//! issuer.refresh().await?; // optional: fetch before the first request
//! let verifier = JwtVerifier::builder().issuer(issuer).build()?;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::Algorithm;
use sha2::{Digest, Sha256};

use super::{ConfigError, KeySet};

/// Where and how to fetch a JWK set.
#[derive(Clone, Debug)]
#[must_use]
pub struct JwksConfig {
    location: Location,
    refresh_interval: Duration,
    min_refetch_interval: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    allow_http: bool,
}

#[derive(Clone, Debug)]
enum Location {
    Url(String),
    Discovery,
}

impl JwksConfig {
    /// Keys from the JWK set at `url`.
    pub fn url(url: impl Into<String>) -> Self {
        Self::with_location(Location::Url(url.into()))
    }

    /// Keys found by OpenID Connect discovery from the issuer identifier.
    pub fn discovery() -> Self {
        Self::with_location(Location::Discovery)
    }

    fn with_location(location: Location) -> Self {
        Self {
            location,
            refresh_interval: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
            allow_http: false,
        }
    }

    /// How often the key set is refreshed in the background (default 5 min).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// The least time between two fetches caused by unknown `kid`s
    /// (default 30 s).
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// The deadline of one fetch (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest JWKS or discovery document read (default 256 KiB).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Allows plain `http` URLs. Only for tests and for loopback identity
    /// providers: keys fetched over plain HTTP can be replaced by anyone on
    /// the path.
    pub fn insecure_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }
}

/// Why a fetch failed. Never includes response content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The connection or request failed.
    #[error("request failed")]
    Request,
    /// The fetch took longer than the timeout.
    #[error("timed out")]
    Timeout,
    /// The server answered with a status other than 200.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The document is larger than the cap.
    #[error("response too large")]
    TooLarge,
    /// The document is not a JWK set (or a discovery document).
    #[error("invalid document")]
    InvalidDocument,
    /// The discovery document names another issuer.
    #[error("discovery document names another issuer")]
    IssuerMismatch,
    /// A URL is not `https` (and `insecure_allow_http` is not set).
    #[error("insecure or invalid URL")]
    InsecureUrl,
    /// The JWK set has no usable key; the previous keys are kept.
    #[error("no usable key in the JWK set")]
    NoUsableKey,
    /// No tokio runtime to run the fetch on.
    #[error("no tokio runtime")]
    NoRuntime,
}

/// Counters of one JWKS cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksStats {
    /// Fetches attempted (JWKS documents, not counting discovery).
    pub fetches: u64,
    /// Fetches that failed.
    pub failures: u64,
    /// Usable keys held now.
    pub keys: usize,
    /// How many times the key set changed.
    pub rotations: u64,
}

/// What caused a fetch, a metric label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trigger {
    Startup,
    Background,
    UnknownKid,
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Background => "background",
            Self::UnknownKid => "unknown_kid",
            Self::Manual => "manual",
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub(crate) struct JwksCache {
    config: JwksConfig,
    issuer: String,
    allowed: Vec<Algorithm>,
    keys: RwLock<Arc<KeySet>>,
    fingerprint: Mutex<Option<[u8; 32]>>,
    epoch: AtomicU64,
    last_attempt: Mutex<Option<Instant>>,
    fetches: AtomicU64,
    failures: AtomicU64,
    jwks_url: OnceLock<String>,
    client: HttpClient,
    single_flight: tokio::sync::Mutex<()>,
    /// How many fetches are claimed or running. Requests with an unknown
    /// `kid` that cannot claim a fetch wait on this until it is zero: the
    /// count and its changes live in one `watch` channel, so a waiter that
    /// reads a non-zero count is woken by the decrement, however the two
    /// interleave (no lost wake-up).
    running: tokio::sync::watch::Sender<u32>,
    /// Whether a background refresh task is alive (it clears this when it
    /// ends, also when its runtime shuts down and drops it).
    refreshing: AtomicBool,
}

/// Clears [`JwksCache::refreshing`] when the refresh task ends or is dropped.
struct RefreshAlive(Weak<JwksCache>);

impl Drop for RefreshAlive {
    fn drop(&mut self) {
        if let Some(cache) = self.0.upgrade() {
            cache.refreshing.store(false, Ordering::Release);
        }
    }
}

/// One claimed or running fetch: counted in [`JwksCache::running`] from its
/// creation until it is dropped (also when the future that holds it is
/// dropped before it ran, so waiters are never left waiting on a fetch that
/// will not happen).
pub(crate) struct Running<C: std::ops::Deref<Target = JwksCache>> {
    cache: C,
}

impl<C: std::ops::Deref<Target = JwksCache>> Running<C> {
    fn new(cache: C) -> Self {
        cache.running.send_modify(|n| *n += 1);
        Self { cache }
    }

    /// The cache this fetch belongs to.
    pub(crate) fn cache(&self) -> &JwksCache {
        &self.cache
    }
}

impl<C: std::ops::Deref<Target = JwksCache>> Drop for Running<C> {
    fn drop(&mut self) {
        self.cache.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A claimed refetch for an unknown `kid`, owned by the request that claimed it.
pub(crate) type RefetchClaim = Running<Arc<JwksCache>>;

/// A request's place in line behind the running fetches: subscribed before
/// the state was checked.
pub(crate) struct FetchWaiter {
    rx: tokio::sync::watch::Receiver<u32>,
    timeout: Duration,
}

impl FetchWaiter {
    /// Waits until no fetch is claimed or running (at most the fetch timeout
    /// plus a second: a waiter never hangs on a stuck fetch).
    pub(crate) async fn wait(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.rx.wait_for(|n| *n == 0)).await;
    }
}

fn url_ok(url: &str, allow_http: bool) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match uri.scheme_str() {
        Some("https") => uri.host().is_some(),
        Some("http") => allow_http && uri.host().is_some(),
        _ => false,
    }
}

impl JwksCache {
    pub(crate) fn new(
        config: JwksConfig,
        issuer: &str,
        allowed: Vec<Algorithm>,
        initial: KeySet,
    ) -> Result<Arc<Self>, ConfigError> {
        match &config.location {
            Location::Url(url) if !url_ok(url, config.allow_http) => {
                return Err(ConfigError::InsecureUrl { what: "JWKS" });
            }
            Location::Discovery if !url_ok(issuer, config.allow_http) => {
                return Err(ConfigError::InsecureUrl { what: "issuer" });
            }
            _ => {}
        }
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|_| ConfigError::Client)?;
        let connector = if config.allow_http {
            builder.https_or_http().enable_http1().build()
        } else {
            builder.https_only().enable_http1().build()
        };
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let jwks_url = OnceLock::new();
        if let Location::Url(url) = &config.location {
            let _ = jwks_url.set(url.clone());
        }
        Ok(Arc::new(Self {
            config,
            issuer: issuer.to_owned(),
            allowed,
            keys: RwLock::new(Arc::new(initial)),
            fingerprint: Mutex::new(None),
            epoch: AtomicU64::new(0),
            last_attempt: Mutex::new(None),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            jwks_url,
            client,
            single_flight: tokio::sync::Mutex::new(()),
            running: tokio::sync::watch::Sender::new(0),
            refreshing: AtomicBool::new(false),
        }))
    }

    pub(crate) fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> JwksStats {
        JwksStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            keys: self.keys().len(),
            rotations: self.epoch(),
        }
    }

    /// Claims the right to refetch for an unknown `kid`: at most once per
    /// `min_refetch_interval`. The claim counts as a running fetch from now
    /// on (under the same lock as the rate limit, so a request that loses
    /// the claim always sees it), until the claim is dropped.
    pub(crate) fn try_claim_refetch(self: &Arc<Self>) -> Option<RefetchClaim> {
        let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match *last {
            Some(at) if now.duration_since(at) < self.config.min_refetch_interval => None,
            _ => {
                *last = Some(now);
                Some(Running::new(Arc::clone(self)))
            }
        }
    }

    /// For a request whose `kid` was unknown and that lost the claim: a
    /// waiter when waiting can help, that is when a fetch is claimed or
    /// running, or when the key set changed since `epoch_before` (read before
    /// the keys were looked up); `None` when the answer stands.
    pub(crate) fn waiter(&self, epoch_before: u64) -> Option<FetchWaiter> {
        // Subscribe first, then read the count, then the epoch: a fetch that
        // completes after the count was read wakes the waiter; one that
        // completed before it has already moved the epoch (keys are stored
        // and the epoch bumped before the count goes down).
        let mut rx = self.running.subscribe();
        let running = *rx.borrow_and_update();
        if running == 0 && self.epoch() == epoch_before {
            return None;
        }
        Some(FetchWaiter {
            rx,
            timeout: self.config.timeout + Duration::from_secs(1),
        })
    }

    /// Starts the background refresh (and first fetch) on the current tokio
    /// runtime, unless one is alive. Called when the verifier is built and
    /// on every verification, so a verifier built outside a runtime, or in
    /// one that has since shut down (which ends its task), starts refreshing
    /// in the runtime that uses it; one atomic load when it runs.
    pub(crate) fn start_background_refresh(self: &Arc<Self>) {
        if self.refreshing.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = self.config.refresh_interval;
        // Made before the task: dropped with it even if it never runs (a
        // runtime shut down before polling it).
        let alive = RefreshAlive(Weak::clone(&weak));
        handle.spawn(async move {
            let _alive = alive;
            let mut trigger = Trigger::Startup;
            loop {
                let Some(cache) = weak.upgrade() else { break };
                if let Err(error) = cache.refresh(trigger).await {
                    tracing::warn!(
                        target: "guardrails_auth",
                        issuer = %cache.issuer,
                        %error,
                        "JWKS refresh failed; keeping the last good keys"
                    );
                }
                drop(cache);
                trigger = Trigger::Background;
                tokio::time::sleep(interval).await;
            }
        });
    }

    /// Fetches the key set once (single-flight), replacing the keys on success.
    pub(crate) async fn refresh(&self, trigger: Trigger) -> Result<(), FetchError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(FetchError::NoRuntime);
        }
        // Counted as running while it waits for the lock and fetches, so
        // requests with an unknown kid wait for it.
        let _running = Running::new(self);
        let before = self.fetches.load(Ordering::Acquire);
        let _guard = self.single_flight.lock().await;
        // Someone else fetched while we waited: their result stands.
        if self.fetches.load(Ordering::Acquire) != before && !matches!(trigger, Trigger::Manual) {
            return Ok(());
        }
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
            *last = Some(Instant::now());
        }
        self.fetches.fetch_add(1, Ordering::AcqRel);
        let result = self.fetch_and_store().await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        metrics::counter!(
            "guardrails_auth_jwks_fetches_total",
            "outcome" => outcome,
            "trigger" => trigger.as_str()
        )
        .increment(1);
        result
    }

    async fn fetch_and_store(&self) -> Result<(), FetchError> {
        let url = match self.jwks_url.get() {
            Some(url) => url.clone(),
            None => {
                let url = self.discover().await?;
                let _ = self.jwks_url.set(url.clone());
                url
            }
        };
        let body = self.get(&url).await?;
        let set = KeySet::from_jwks_json(&body, &self.allowed)
            .map_err(|_| FetchError::InvalidDocument)?;
        if set.is_empty() {
            return Err(FetchError::NoUsableKey);
        }
        let fingerprint: [u8; 32] = Sha256::digest(&body).into();
        let mut last = self.fingerprint.lock().unwrap_or_else(|e| e.into_inner());
        if *last != Some(fingerprint) {
            *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
            *last = Some(fingerprint);
            // Key rotation: verified-token caches keyed to the old epoch flush.
            self.epoch.fetch_add(1, Ordering::AcqRel);
            tracing::info!(
                target: "guardrails_auth",
                issuer = %self.issuer,
                keys = self.keys().len(),
                "JWKS key set updated"
            );
        }
        Ok(())
    }

    async fn discover(&self) -> Result<String, FetchError> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let base = self.issuer.trim_end_matches('/');
        let body = self
            .get(&format!("{base}/.well-known/openid-configuration"))
            .await?;
        let doc: Discovery =
            serde_json::from_slice(&body).map_err(|_| FetchError::InvalidDocument)?;
        if doc.issuer != self.issuer {
            return Err(FetchError::IssuerMismatch);
        }
        if !url_ok(&doc.jwks_uri, self.config.allow_http) {
            return Err(FetchError::InsecureUrl);
        }
        Ok(doc.jwks_uri)
    }

    async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|_| FetchError::InsecureUrl)?;
        let max = self.config.max_body_bytes;
        let fetch = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|_| FetchError::Request)?;
            if response.status() != http::StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let limited = Limited::new(response.into_body(), max);
            match limited.collect().await {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge),
                Err(_) => Err(FetchError::Request),
            }
        };
        tokio::time::timeout(self.config.timeout, fetch)
            .await
            .map_err(|_| FetchError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https() {
        assert!(url_ok("https://id.example.com/jwks", false));
        assert!(!url_ok("http://id.example.com/jwks", false));
        assert!(url_ok("http://127.0.0.1:1/jwks", true));
        assert!(!url_ok("file:///etc/passwd", true));
        assert!(!url_ok("not a url", true));
        let err = JwksCache::new(
            JwksConfig::url("http://id.example.com/jwks"),
            "https://id.example.com",
            vec![Algorithm::RS256],
            KeySet::new(),
        );
        assert!(matches!(
            err,
            Err(ConfigError::InsecureUrl { what: "JWKS" })
        ));
    }

    #[test]
    fn refetch_is_rate_limited() {
        let cache = JwksCache::new(
            JwksConfig::url("https://id.example.com/jwks")
                .min_refetch_interval(Duration::from_secs(60)),
            "https://id.example.com",
            vec![Algorithm::RS256],
            KeySet::new(),
        )
        .unwrap();
        let claim = cache.try_claim_refetch().expect("first claim");
        for _ in 0..1000 {
            assert!(cache.try_claim_refetch().is_none());
        }
        // Losers wait while the claim is held, not once it is dropped.
        let epoch = cache.epoch();
        assert!(cache.waiter(epoch).is_some());
        drop(claim);
        assert!(cache.waiter(epoch).is_none());
        // A key set that changed since the lookup: retry, even with no fetch running.
        assert!(cache.waiter(epoch.wrapping_sub(1)).is_some());
    }
}
