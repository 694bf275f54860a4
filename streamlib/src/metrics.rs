//! One Prometheus registry per process and the HTTP endpoint that serves it.
//!
//! A [`MetricsRegistry`] wraps a `prometheus-client` [`Registry`]: the streams runtime registers
//! a collector of its counters in it (see `StreamsConfig::metrics_registry`), and applications
//! register their own metrics next to them. [`serve`] (async) and [`MetricsServer`] (on a
//! thread of its own, for code without a tokio runtime) serve `GET /metrics` from it in the
//! Prometheus text format (version 0.0.4).
//!
//! ```
//! use prometheus_client::metrics::counter::Counter;
//! use streamlib::metrics::{MetricsRegistry, MetricsServer};
//!
//! let registry = MetricsRegistry::default();
//! let widgets = Counter::<u64>::default();
//! // Counters are registered without `_total`: the encoder appends it.
//! registry.register("app_widgets", "Widgets made", widgets.clone());
//! widgets.inc_by(7);
//! assert!(registry.encode().contains("\napp_widgets_total 7\n"));
//!
//! let server = MetricsServer::start(registry, "127.0.0.1:0".parse()?)?;
//! assert_ne!(server.addr().port(), 0);
//! server.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::{Metric, Registry};

/// The `Content-Type` of what [`serve`] answers.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A shared Prometheus registry; clones share it.
#[derive(Clone, Default)]
pub struct MetricsRegistry(Arc<Inner>);

#[derive(Default)]
struct Inner {
    registry: Mutex<Registry>,
    /// Collectors registered once per registry, by type ([`MetricsRegistry::shared_collector`]).
    shared: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRegistry(..)")
    }
}

impl MetricsRegistry {
    /// Registers `metric` as `name` with `help`. `prometheus-client` appends a period to the
    /// help text and `_total` to a counter's name, so give neither.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        lock(&self.0.registry).register(name, help, metric);
    }

    /// Registers `collector`, asked for its metrics on every scrape.
    pub fn register_collector(&self, collector: impl Collector) {
        lock(&self.0.registry).register_collector(Box::new(collector));
    }

    /// The registry's one collector of type `C`, registered on first use. Several users of
    /// one registry (e.g. the streams instances of a process) add themselves to it, so that
    /// each metric family is described once.
    pub fn shared_collector<C: Collector + Default>(&self) -> Arc<C> {
        let mut shared = lock(&self.0.shared);
        let entry = shared.entry(TypeId::of::<C>()).or_insert_with(|| {
            let collector = Arc::new(C::default());
            self.register_collector(collector.clone());
            collector
        });
        match entry.clone().downcast::<C>() {
            Ok(collector) => collector,
            // Entries are keyed by their own type.
            Err(_) => unreachable!("shared collector of another type"),
        }
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, nor do our metrics and collectors.
        if let Err(error) = prometheus_text::encode(&mut text, &lock(&self.0.registry)) {
            tracing::warn!(%error, "encoding metrics");
        }
        text
    }
}

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("binding the metrics address {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The server's thread or its tokio runtime could not be started.
    #[error("starting the metrics server: {0}")]
    Start(#[source] std::io::Error),
}

/// Serves `GET /metrics` from `registry` on `addr` until `shutdown` completes (in-flight
/// requests finish). Returns the bound address (port 0 picks a free one) and the server task.
///
/// # Errors
/// [`MetricsError::Bind`] when `addr` cannot be bound.
pub async fn serve(
    registry: MetricsRegistry,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), MetricsError> {
    let bind = |source| MetricsError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    registry.encode(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(%error, "metrics endpoint stopped");
        }
    });
    Ok((bound, task))
}

/// [`serve`] on a thread of its own with a one-thread tokio runtime, for callers without
/// one (the streams runtime). Stops on [`MetricsServer::stop`] or when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` on it.
    ///
    /// # Errors
    /// [`MetricsError::Bind`] when `addr` cannot be bound, [`MetricsError::Start`] when the
    /// thread or its runtime cannot be started.
    pub fn start(registry: MetricsRegistry, addr: SocketAddr) -> Result<Self, MetricsError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(MetricsError::Start)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, task) = runtime.block_on(serve(registry, addr, async {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        }))?;
        let thread = std::thread::Builder::new()
            .name(format!("metrics-{}", addr.port()))
            .spawn(move || {
                if let Err(error) = runtime.block_on(task) {
                    tracing::warn!(%error, "metrics server task failed");
                }
            })
            .map_err(MetricsError::Start)?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread to end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the metrics server thread panicked");
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_the_registry_on_get_metrics_until_stopped() {
        let registry = MetricsRegistry::default();
        let counter = Counter::<u64>::default();
        registry.register("widgets", "Widgets made", counter.clone());
        let server =
            MetricsServer::start(registry.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
        counter.inc_by(3);
        let response = get(server.addr(), "/metrics");
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.contains(&format!("content-type: {CONTENT_TYPE}")),
            "{response}"
        );
        assert!(
            response.ends_with(
                "\r\n\r\n# HELP widgets_total Widgets made.\n# TYPE widgets_total counter\n\
                 widgets_total 3\n"
            ),
            "{response}"
        );
        assert!(get(server.addr(), "/other").starts_with("HTTP/1.1 404"));
        let addr = server.addr();
        server.stop();
        assert!(std::net::TcpStream::connect(addr).is_err(), "still serving");
    }

    #[test]
    fn a_taken_address_is_a_bind_error_naming_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = MetricsServer::start(MetricsRegistry::default(), addr).err();
        assert!(
            matches!(error, Some(MetricsError::Bind { addr: a, .. }) if a == addr),
            "{error:?}"
        );
    }

    #[derive(Debug, Default)]
    struct Once;

    impl Collector for Once {
        fn encode(
            &self,
            mut encoder: prometheus_client::encoding::DescriptorEncoder,
        ) -> Result<(), std::fmt::Error> {
            use prometheus_client::encoding::EncodeMetric;
            let gauge = prometheus_client::metrics::gauge::ConstGauge::new(1i64);
            gauge.encode(encoder.encode_descriptor(
                "once",
                "Described once.",
                None,
                gauge.metric_type(),
            )?)
        }
    }

    #[test]
    fn a_shared_collector_is_registered_once() {
        let registry = MetricsRegistry::default();
        let first = registry.shared_collector::<Once>();
        let second = registry.shared_collector::<Once>();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(registry.encode().matches("# TYPE once gauge").count(), 1);
    }
}
