//! Startup shared by `delega serve` and the tests: open the store, settle
//! the project token, bind the listener, run until stopped.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_cors::Cors;
use std::future::ready;
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, KeepAlive};
use actix_server::Server;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, ServiceResponse};
use tokio::net::TcpStream;

use crate::api::wire::JsonErrors;
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Condition, ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, App, HttpRequest, ResponseError};

use crate::api::{self, AppState, Dialect};
use crate::config::Config;
use crate::domain::keys;
use crate::error::Error;
use crate::hub::Hub;
use crate::ops::auth::Authenticator;
use crate::ops::Context;
use crate::scheduler::Scheduler;
use crate::store::{self, settings, Store};
use crate::webhooks::dispatcher::Dispatcher;

pub struct Application {
    port: u16,
    host: String,
    server: Server,
    /// A project token generated on this start, to be shown once.
    pub new_project_token: Option<String>,
    pub store: Store,
    dispatcher: Dispatcher,
    scheduler: Scheduler,
}

/// Uses the configured token, or the stored one; generates one on the
/// first start. Returns the hash in force and a newly generated token.
fn settle_project_token(
    conn: &rusqlite::Connection,
    config: &Config,
) -> anyhow::Result<(String, Option<String>)> {
    if let Some(token) = &config.project_token {
        let hash = keys::hash(token);
        settings::set(conn, settings::PROJECT_TOKEN_HASH, &hash)
            .map_err(|e| anyhow::anyhow!("storing the project token: {e}"))?;
        return Ok((hash, None));
    }
    if let Some(hash) = settings::get(conn, settings::PROJECT_TOKEN_HASH)
        .map_err(|e| anyhow::anyhow!("reading the project token: {e}"))?
    {
        return Ok((hash, None));
    }
    let token = keys::new_project_token();
    let hash = keys::hash(&token);
    settings::set(conn, settings::PROJECT_TOKEN_HASH, &hash)
        .map_err(|e| anyhow::anyhow!("storing the project token: {e}"))?;
    Ok((hash, Some(token)))
}

/// Rotates the project token of a database (offline), returning the new one.
pub fn rotate_project_token(db: &std::path::Path) -> anyhow::Result<String> {
    let conn = store::open_connection(db)?;
    let token = keys::new_project_token();
    settings::set(&conn, settings::PROJECT_TOKEN_HASH, &keys::hash(&token))
        .map_err(|e| anyhow::anyhow!("storing the project token: {e}"))?;
    Ok(token)
}

async fn not_found(req: HttpRequest) -> Error {
    Error::not_found(format!("no route for {} {}", req.method(), req.path()))
}

/// Replaces actix's empty 405 answers with the JSON error body.
fn method_not_allowed<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (req, _) = res.into_parts();
    let resp = Error::MethodNotAllowed(format!(
        "method {} is not allowed on {}",
        req.method(),
        req.path()
    ))
    .error_response();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, resp).map_into_right_body(),
    ))
}

impl Application {
    /// Opens the store and binds the configured address.
    pub fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind((config.host.as_str(), config.port)).map_err(|e| {
            anyhow::anyhow!("cannot listen on {}:{}: {e}", config.host, config.port)
        })?;
        Self::build_on(config, listener)
    }

    /// Like [`Application::build`], on a listener the caller bound (the
    /// tests bind `127.0.0.1:0` and know the port before the server runs).
    /// Must be called inside an actix system.
    pub fn build_on(config: Config, listener: TcpListener) -> anyhow::Result<Application> {
        let hub = Arc::new(Hub::default());
        let store = Store::open(&config.db_path, hub)?;
        let setup = store::open_connection(&config.db_path)?;
        let (token_hash, new_project_token) = settle_project_token(&setup, &config)?;
        drop(setup);

        let port = listener.local_addr()?.port();
        let dispatcher = Dispatcher::start(
            store.clone(),
            config.webhooks.clone(),
            config.allow_private_webhooks,
        )?;
        let config = Arc::new(config);
        let ops = Context {
            store: store.clone(),
            config: config.clone(),
            auth: Arc::new(Authenticator::new(
                token_hash,
                config.require_auth,
                config.rate_limit_per_minute,
            )),
        };
        let scheduler = Scheduler::start(ops.clone())?;
        let state = web::Data::new(AppState {
            mcp: crate::mcp::Server::new(ops.clone()),
            ops,
            started: Instant::now(),
        });
        let cors_origins = config.cors_origins.clone();
        let metrics_state = state.clone();
        let app = move || {
            let mut cors = Cors::default()
                .allow_any_method()
                .allow_any_header()
                .expose_headers(["Link", "Retry-After"])
                .max_age(3600);
            for origin in &cors_origins {
                cors = if origin == "*" {
                    cors.allow_any_origin()
                } else {
                    cors.allowed_origin(origin)
                };
            }
            App::new()
                .app_data(state.clone())
                .wrap(
                    ErrorHandlers::new()
                        .handler(StatusCode::METHOD_NOT_ALLOWED, method_not_allowed),
                )
                .wrap(from_fn(api::csrf::refuse_cross_site))
                .wrap(Condition::new(!cors_origins.is_empty(), cors))
                .wrap(from_fn(api::metrics::observe))
                .service(
                    web::scope("/api")
                        .app_data(Dialect::Api)
                        .configure(api::configure),
                )
                .service(
                    web::scope("/v1")
                        .app_data(Dialect::V1)
                        .configure(api::configure),
                )
                .route("/health", web::get().to(api::health::get))
                .route("/metrics", web::get().to(api::metrics::get))
                .route("/openapi.json", web::get().to(api::openapi::get))
                // Where MCP clients expect it (SPEC §4).
                .service(
                    web::resource("/mcp")
                        .app_data(Dialect::Api)
                        .route(web::post().to(api::mcp::post)),
                )
                .configure(crate::dashboard::configure)
                .default_service(web::to(not_found))
        };
        // What actix-web's `HttpServer` does, with one difference: each
        // connection's stream is wrapped in `JsonErrors`, so even the
        // errors the HTTP/1 codec answers by itself (a malformed request
        // line, too many headers) carry the JSON error body (SPEC §2).
        let mut builder = actix_server::Server::build()
            .shutdown_timeout(30)
            // Reads run on each worker's blocking pool. A few threads per
            // worker keep both cores busy; more only time-slice the same
            // cores (stretching every request), so extra requests queue.
            .worker_max_blocking_threads(4)
            .disable_signals();
        if config.workers > 0 {
            builder = builder.workers(config.workers);
        }
        let shutdown = builder.graceful_shutdown_signal();
        // One listener: `$app` builds the App for each worker.
        macro_rules! listen {
            ($builder:expr, $name:literal, $listener:expr, $app:expr) => {{
                let listener: TcpListener = $listener;
                let local = listener.local_addr()?;
                let shutdown = shutdown.clone();
                let app = $app;
                $builder.listen($name, listener, move || {
                    let shutdown = shutdown.clone();
                    let app = app()
                        .into_factory()
                        .map_err(|err: actix_web::Error| err.error_response());
                    fn_service(|io: TcpStream| {
                        let peer = io.peer_addr().ok();
                        ready(Ok::<_, DispatchError>((JsonErrors::new(io), peer)))
                    })
                    .and_then(
                        HttpService::build()
                            .graceful_shutdown_signal(move || {
                                let shutdown = shutdown.clone();
                                async move { shutdown.notified().await }
                            })
                            .keep_alive(KeepAlive::default())
                            .client_request_timeout(Duration::from_secs(5))
                            .client_disconnect_timeout(Duration::from_secs(1))
                            .local_addr(local)
                            .h1(map_config(app, |_| AppConfig::default())),
                    )
                })?
            }};
        }
        builder = listen!(builder, "delega", listener, app);
        if let Some(addr) = &config.metrics_bind {
            let metrics_listener = TcpListener::bind(addr.as_str())
                .map_err(|e| anyhow::anyhow!("cannot listen on metrics_bind {addr}: {e}"))?;
            let state = metrics_state;
            // Only /metrics, to anyone who reaches this address: binding it
            // is the operator's choice of who may scrape.
            let metrics_app = move || {
                App::new()
                    .app_data(state.clone())
                    .app_data(api::metrics::OpenScrape)
                    .wrap(
                        ErrorHandlers::new()
                            .handler(StatusCode::METHOD_NOT_ALLOWED, method_not_allowed),
                    )
                    .service(web::resource("/metrics").get(api::metrics::get))
                    .default_service(web::to(not_found))
            };
            builder = listen!(builder, "delega-metrics", metrics_listener, metrics_app);
        }
        let server = builder.run();
        Ok(Application {
            port,
            host: config.host.clone(),
            server,
            new_project_token,
            store,
            dispatcher,
            scheduler,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// Serves until `shutdown` completes (`delega serve` passes SIGINT or
    /// SIGTERM): ends event streams, stops accepting, lets in-flight
    /// requests finish, then lets the webhook dispatcher record the
    /// attempts it has in flight before returning.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let hub = self.store.hub().clone();
        actix_web::rt::spawn(async move {
            shutdown.await;
            log::info!("shutting down");
            hub.shut_down();
            handle.stop(true).await;
        });
        let served = self.server.await;
        self.store.hub().shut_down();
        let (dispatcher, scheduler) = (self.dispatcher, self.scheduler);
        let _ = actix_web::rt::task::spawn_blocking(move || {
            scheduler.stop();
            dispatcher.stop();
        })
        .await;
        served
    }
}

/// SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
