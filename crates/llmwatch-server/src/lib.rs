//! OTLP receivers (gRPC and HTTP; protobuf and JSON; traces and logs) and the admin listener
//! (Prometheus `/metrics`, `/healthz`, `/readyz`).
//!
//! Receiving never waits on a later stage: requests are decoded and fed to the processor inline,
//! which only updates in-memory aggregates; a scrape reads a snapshot under per-shard read locks.

mod admin;
pub mod body;
mod drift;
pub mod exposition;
mod feedback;
mod grpc;
mod http;
pub mod persist;
pub mod review;
mod sessions;
mod signal;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use llmwatch_core::Processor;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Listener addresses and limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub metrics: SocketAddr,
    /// Largest request body, checked before and after decompression.
    pub max_request_bytes: usize,
    /// Export requests processed at once; more are refused with 429 / RESOURCE_EXHAUSTED.
    pub max_inflight_requests: usize,
    /// What `Retry-After` / RetryInfo tells an overloaded client to wait.
    pub retry_after: Duration,
    /// Longest wait for an OTLP/HTTP request body (408 past it).
    pub body_read_timeout: Duration,
    /// Label sets idle this long are dropped; zero keeps them forever.
    pub series_idle_timeout: Duration,
    /// How often drift is evaluated.
    pub drift_interval: Duration,
    /// Where drift baselines and chart state persist (`None`: not kept across restarts).
    pub drift_state_file: Option<std::path::PathBuf>,
    /// How often that state is written (also at shutdown).
    pub drift_state_interval: Duration,
    /// Pin every key's current window as its reference once the service has run this long
    /// (a scheduled pin; `None`: only on demand through the admin API).
    pub drift_pin_after: Option<Duration>,
    /// How often sessions inactive past their timeout are ended (implicit signals).
    pub session_sweep_interval: Duration,
    /// Where flagged calls are kept (JSON lines; `None`: in memory only).
    pub review_file: Option<std::path::PathBuf>,
    /// The review file's size before it is rotated (one previous file is kept).
    pub review_max_file_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            otlp_grpc: SocketAddr::from(([127, 0, 0, 1], 4317)),
            otlp_http: SocketAddr::from(([127, 0, 0, 1], 4318)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_request_bytes: 16 << 20,
            max_inflight_requests: 64,
            retry_after: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(10),
            series_idle_timeout: Duration::from_secs(3600),
            drift_interval: Duration::from_secs(60),
            drift_state_file: None,
            drift_state_interval: Duration::from_secs(300),
            drift_pin_after: None,
            session_sweep_interval: Duration::from_secs(10),
            review_file: None,
            review_max_file_bytes: 16 << 20,
        }
    }
}

/// State shared by every receiver.
#[derive(Debug)]
pub(crate) struct Shared {
    pub processor: Arc<Processor>,
    pub config: ServerConfig,
    pub inflight: Arc<Semaphore>,
    pub ready: AtomicBool,
}

impl Shared {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The addresses the listeners really bound (useful with port 0).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddrs {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub metrics: SocketAddr,
}

/// Bound, not yet serving.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    grpc: TcpListener,
    http: TcpListener,
    metrics: TcpListener,
}

async fn bind(what: &str, addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}"))
    })
}

impl Server {
    /// Binds all three listeners; an address in use is an error that names it.
    pub async fn bind(config: ServerConfig, processor: Arc<Processor>) -> std::io::Result<Server> {
        if let Some(path) = &config.drift_state_file {
            drift::restore(&processor, path);
        }
        if let Some(path) = &config.review_file {
            review::restore(&processor, path);
        }
        let grpc = bind("OTLP/gRPC", config.otlp_grpc).await?;
        let http = bind("OTLP/HTTP", config.otlp_http).await?;
        let metrics = bind("metrics", config.metrics).await?;
        let shared = Arc::new(Shared {
            processor,
            inflight: Arc::new(Semaphore::new(config.max_inflight_requests)),
            config,
            ready: AtomicBool::new(false),
        });
        Ok(Server {
            shared,
            grpc,
            http,
            metrics,
        })
    }

    pub fn local_addrs(&self) -> std::io::Result<BoundAddrs> {
        Ok(BoundAddrs {
            otlp_grpc: self.grpc.local_addr()?,
            otlp_http: self.http.local_addr()?,
            metrics: self.metrics.local_addr()?,
        })
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and returns.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let grpc = tokio::spawn(grpc::serve(
            self.grpc,
            self.shared.clone(),
            stopped(stop_rx.clone()),
        ));
        let http = tokio::spawn(http::serve(
            self.http,
            self.shared.clone(),
            stopped(stop_rx.clone()),
        ));
        let admin = tokio::spawn(admin::serve(
            self.metrics,
            self.shared.clone(),
            stopped(stop_rx.clone()),
        ));
        let expiry = tokio::spawn(expire_idle_series(
            self.shared.clone(),
            stopped(stop_rx.clone()),
        ));
        let sweep = tokio::spawn(sessions::sweep(
            self.shared.clone(),
            stopped(stop_rx.clone()),
        ));
        let review = tokio::spawn(review::run(self.shared.clone(), stopped(stop_rx.clone())));
        let drift = tokio::spawn(drift::run(self.shared.clone(), stopped(stop_rx)));
        self.shared.ready.store(true, Ordering::Release);
        tracing::info!("llmwatch is ready");

        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        self.shared.ready.store(false, Ordering::Release);
        let _ = stop_tx.send(true);
        for task in [grpc, http, admin] {
            task.await.map_err(std::io::Error::other)??;
        }
        expiry.abort();
        sweep.abort();
        // The drift task evaluates and writes its state one last time as it stops.
        drift.await.map_err(std::io::Error::other)?;
        // Flagged calls not yet on disk are written as the task stops.
        review.await.map_err(std::io::Error::other)?;
        Ok(())
    }
}

/// Drops idle label sets periodically so a model or service that went away stops costing memory.
async fn expire_idle_series(shared: Arc<Shared>, stop: impl Future<Output = ()>) {
    let idle = shared.config.series_idle_timeout;
    if idle.is_zero() {
        return stop.await;
    }
    let mut tick =
        tokio::time::interval((idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {
                let removed = shared.processor.expire_idle(idle.as_secs());
                if removed > 0 {
                    tracing::debug!(removed, "expired idle series");
                }
            }
        }
    }
}
