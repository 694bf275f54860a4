//! The `main` of every stream-app binary: parse flags (with `--config`), log, build the
//! topology, run it on Kafka until SIGINT/SIGTERM (serving its interactive queries at
//! `--application-server`), exit non-zero on failure.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser};
use streamlib::error::ErrorAction;
use streamlib::prelude::Topology;
use streamlib::runtime::{run_until_signal, KafkaStreams, StreamsConfig};

use crate::cli::{init_tracing, StreamOptions};
use crate::counters::Counters;
use crate::topics::Topics;

/// Flags of a stream app: the shared ones plus the app's own `A`.
#[derive(Parser, Debug)]
#[command(args_override_self = true)]
struct AppArgs<A: Args> {
    #[command(flatten)]
    stream: StreamOptions,
    /// Serve this app's interactive queries over HTTP at this `host:port` (Kafka Streams'
    /// `application.server`; the metrics and alerts apps' stores, `crate::queries`): any
    /// instance answers any key, forwarding it to its owner.
    #[arg(long, env = "APPLICATION_SERVER")]
    application_server: Option<String>,
    #[command(flatten)]
    app: A,
}

/// For apps without flags of their own.
#[derive(Args, Debug)]
pub struct NoArgs {}

/// The runtime configuration of app `name`: failing records of any kind (undecodable, failing
/// in a processor, or refused by the broker) go to the platform's dead-letter topic (they are
/// counted, and processing goes on), and the runtime reports to the registry of the app's
/// counters, so that `--metrics-addr` serves both.
pub fn app_config(
    name: &str,
    options: &StreamOptions,
    topics: &Topics,
    counters: &Counters,
) -> StreamsConfig {
    let mut config = options.streams_config(name);
    config.handlers.deserialization = ErrorAction::DeadLetter;
    config.handlers.processing = ErrorAction::DeadLetter;
    config.handlers.production = ErrorAction::DeadLetter;
    config.handlers.dead_letter_topic = Some(topics.dlq.clone());
    config.metrics_registry = Some(counters.registry().clone());
    config
}

/// Runs app `name` whose topology `build` makes from its flags, until a signal arrives.
pub fn main<A: Args>(
    name: &'static str,
    about: &'static str,
    build: impl FnOnce(&A, &Topics, &Counters) -> anyhow::Result<Topology>,
) -> ExitCode {
    init_tracing();
    let args: AppArgs<A> = parse_args_named(name, about);
    let topics = Topics::prefixed(&args.stream.topic_prefix);
    let counters = Counters::default();
    let result = build(&args.app, &topics, &counters).and_then(|topology| {
        let mut config = app_config(name, &args.stream, &topics, &counters);
        config.application_server = args.application_server.clone();
        tracing::info!(app = name, application_id = %config.application_id, bootstrap = %config.bootstrap_servers, "starting");
        // Bound before the app starts: a taken address fails the start, not a later query.
        let listener = args
            .application_server
            .as_deref()
            .map(|addr| {
                std::net::TcpListener::bind(addr)
                    .with_context(|| format!("binding the application server {addr}"))
            })
            .transpose()?;
        let mut app = KafkaStreams::new(topology, config);
        app.start()?;
        let server = match (listener, app.queryable()) {
            (Some(listener), Some(queryable)) => Some(crate::queries::start_server(
                listener,
                crate::queries::service(name, queryable),
            )?),
            _ => None,
        };
        if let Some(server) = &server {
            tracing::info!(app = name, addr = %server.addr(), "serving interactive queries");
        }
        let ran = run_until_signal(&mut app);
        if let Some(server) = server {
            server.stop()?;
        }
        ran?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(app = name, "{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args_named<A: Args>(name: &'static str, about: &'static str) -> AppArgs<A> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = AppArgs::<A>::command()
        .name(name)
        .about(about)
        .get_matches_from(crate::cli::process_args());
    AppArgs::<A>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
