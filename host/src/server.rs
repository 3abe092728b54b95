//! Wires the rooms together: storage, demo data, runtime, plugins, service
//! and the HTTP listener. `main` calls [`Server::start`]; so do the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::calendar::Calendar;
use crate::config::Config;
use crate::connections::{self, Admission, Connections};
use crate::datasets::{self, Datasets, ImportError};
use crate::deploy::{DeployError, Deployer};
use crate::http::{Api, WriterStatsSource};
use crate::identity::Verifier;
use crate::metrics::Metrics;
use crate::overdue::DeadlineLoop;
use crate::places::{Places, PlacesError};
use crate::plugins::PluginSet;
use crate::runtime::{LoadError, Runtime};
use crate::service::{Clock, ManualClock, Service, SystemClock};
use crate::storage::sled::SledStorage;
use crate::storage::{Storage, StorageError};

/// How long a shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data dir could not be opened.
    #[error("cannot open the data dir: {0}")]
    Storage(#[from] StorageError),
    /// The demo data could not be loaded.
    #[error("cannot load the demo datasets: {0}")]
    Demo(#[from] ImportError),
    /// The demo place tree could not be loaded.
    #[error("cannot load the demo place tree: {0}")]
    DemoPlaces(#[from] PlacesError),
    /// The wasm engine could not be created.
    #[error(transparent)]
    Runtime(#[from] LoadError),
    /// The registry could not be opened.
    #[error("cannot open the plugin registry: {0}")]
    Registry(#[from] DeployError),
    /// The identity provider's key is not valid.
    #[error("[identity] is not valid: {0}")]
    Identity(String),
    /// The holiday calendar could not be read.
    #[error(transparent)]
    Holidays(#[from] crate::calendar::HolidayFileError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The identity provider's verifier: the configured one; in demo mode
/// without one, the development provider; otherwise none (identified
/// routes answer 401).
fn identity_verifier(config: &Config) -> Result<Option<Verifier>, StartError> {
    match &config.identity {
        Some(identity) => Verifier::new(&identity.issuer, &identity.public_key, identity.leeway_s)
            .map(Some)
            .map_err(StartError::Identity),
        None if config.demo_plugins => {
            tracing::warn!(
                "citizen and department tokens are checked against the public DEVELOPMENT identity key (demo mode): anyone can mint them; configure [identity] for real use"
            );
            Ok(Some(Verifier::dev()))
        }
        None => {
            tracing::error!(
                "no [identity] configured: citizens, departments and devices will all be refused (401)"
            );
            Ok(None)
        }
    }
}

/// A running host.
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    plugin_errors: Vec<DeployError>,
}

impl Server {
    /// Opens storage, loads plugins and starts listening, with the system
    /// clock.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`Server::start`], with a given clock.
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StorageError::Backend(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open_in(
            &config.data_dir,
            config.timezone_offset_hours * 60,
        )?);
        Self::start_with(config, storage, clock).await
    }

    /// Starts on storage that is already open (`config.data_dir` is not
    /// used), with a given clock.
    pub async fn start_with(
        config: Config,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartError> {
        let manual_clock = config.testing.manual_clock.then(|| {
            tracing::warn!("[testing] manual_clock is on: operators can move this host's clock");
            Arc::new(ManualClock::at(clock.now()))
        });
        let clock: Arc<dyn Clock> = match &manual_clock {
            Some(manual) => manual.clone(),
            None => clock,
        };
        if config.demo_data && datasets::seed_demo(storage.as_ref()).await? {
            tracing::info!("demo datasets loaded into an empty data dir");
        }
        let places = Arc::new(Places::load(storage.clone()).await?);
        if config.demo_data && places.seed_demo().await? {
            tracing::info!("demo place tree loaded into an empty data dir");
        }
        let metrics = Arc::new(Metrics::default());
        metrics.set_open_cases(i64::try_from(storage.open_cases().await?).unwrap_or(i64::MAX));
        let runtime = Arc::new(Runtime::new(
            &config.limits,
            storage.clone(),
            storage.clone(),
            Some(config.data_dir.join("compile-cache")),
            metrics.clone(),
        )?);
        let plugins = Arc::new(PluginSet::default());
        let deployer = Arc::new(
            Deployer::open(
                runtime.clone(),
                plugins.clone(),
                storage.clone(),
                config.data_dir.join("blobs"),
                clock.clone(),
            )
            .await?,
        );
        let mut plugin_errors = deployer.restore().await;
        if config.demo_plugins && config.plugins_dir.is_dir() {
            plugin_errors.extend(deployer.seed_demo(&config.plugins_dir).await);
        }
        let mut calendar = Calendar::new(config.timezone_offset_hours);
        if let Some(file) = &config.holidays_file {
            calendar = calendar.with_holiday_file(file)?;
        }
        let datasets = Arc::new(Datasets::new(storage.clone()));
        let writer_stats: WriterStatsSource = {
            let storage = storage.clone();
            Arc::new(move || storage.writer_stats())
        };
        let service = Arc::new(
            Service::new(
                storage,
                plugins.clone(),
                places.clone(),
                calendar,
                clock,
                metrics.clone(),
            )
            .with_limits(&config.limits),
        );
        let api = Arc::new(
            Api::new(
                service.clone(),
                deployer,
                plugins,
                places,
                datasets,
                metrics.clone(),
                writer_stats,
            )
            .with_limits(&config.limits)
            .with_admin_token(config.admin_token.clone())
            .with_manual_clock(manual_clock)
            .with_identity(identity_verifier(&config)?),
        );
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "listening on a non-loopback address");
        }
        let (shutdown, signal) = watch::channel(false);
        let file_limit = connections::raise_file_limit();
        let max_connections = connections::fitting_cap(config.limits.max_connections, file_limit);
        tracing::info!(
            max_connections,
            configured = config.limits.max_connections,
            file_limit,
            "connection cap"
        );
        let limits = config.limits.floored();
        let http = HttpLimits {
            header_timeout: Duration::from_millis(limits.header_read_timeout_ms),
            max_header_bytes: limits.max_header_bytes,
            connections: Connections::new(max_connections, metrics.clone()),
        };
        let deadlines = tokio::spawn(
            DeadlineLoop::new(service).run(config.deadline_check_interval(), signal.clone()),
        );
        let task = tokio::spawn(async move {
            accept_loop(listener, api, signal, http, runtime).await;
            let _ = deadlines.await;
        });
        tracing::info!(%addr, "onething listening");
        Ok(Server {
            addr,
            shutdown,
            task,
            plugin_errors,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plugins that could not be loaded at start.
    pub fn plugin_errors(&self) -> &[DeployError] {
        &self.plugin_errors
    }

    /// Stops accepting, lets requests in flight finish (up to a grace
    /// period), and closes storage.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Runs until the task ends (it ends only on shutdown).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Connection-level limits.
struct HttpLimits {
    header_timeout: Duration,
    max_header_bytes: usize,
    /// The open connections and their cap.
    connections: Arc<Connections>,
}

async fn accept_loop(
    listener: TcpListener,
    api: Arc<Api>,
    mut signal: watch::Receiver<bool>,
    limits: HttpLimits,
    runtime: Arc<Runtime>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // A client that sends its head slowly is cut off after the timeout; a
    // head larger than the limit is answered 431.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes);
    let connections = limits.connections;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // At the cap with every connection busy: closed unanswered.
                let Admission::Admitted(admitted) = connections.admit() else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let api = api.clone();
                let tracker = admitted.tracker();
                let service = service_fn(move |req| {
                    let api = api.clone();
                    let in_flight = tracker.begin();
                    async move {
                        let response = api.handle(req).await;
                        drop(in_flight);
                        response
                    }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let mut shutdown = signal.clone();
                tokio::spawn(async move {
                    let mut connection = std::pin::pin!(connection);
                    // Made room for a newer one, or the host stops: finish
                    // the request in flight, if any, then close.
                    let ended = tokio::select! {
                        ended = connection.as_mut() => Some(ended),
                        () = admitted.asked_to_close() => None,
                        _ = shutdown.changed() => None,
                    };
                    let ended = match ended {
                        Some(ended) => ended,
                        None => {
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    };
                    if let Err(error) = ended {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    drop(admitted);
                });
            }
            _ = signal.changed() => break,
        }
    }
    drop(listener);
    // Open operations streams never end by themselves.
    api.close_streams();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.all_closed())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the grace period were cut");
    }
    // The runtime (and its epoch ticker) and, through the API, storage are
    // dropped here, closing the data dir.
    drop(api);
    drop(runtime);
}
