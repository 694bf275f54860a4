//! HTTP for interactive queries (feature `http`): any instance answers any query, forwarding a
//! key to the instance that owns it and fanning a range out to every instance — the RPC layer
//! Kafka Streams leaves to its users.
//!
//! [`router`] gives an axum [`Router`] to serve (alone, or merged into an application's own):
//!
//! | route | answers |
//! |---|---|
//! | `GET /state/instances` | every instance and its partitions |
//! | `GET /state/keyvalue/{store}/{key}` | one key |
//! | `GET /state/keyvalues/{store}/all`, `…/range/{from}/{to}` | key ranges |
//! | `GET /state/windowed/{store}/{key}/{from}/{to}` | one key's windows starting in `[from, to]` |
//! | `GET /state/windows/{store}/{from}/{to}` | every key's windows starting in `[from, to]` |
//! | `GET /state/session/{store}/{key}` | one key's sessions |
//!
//! Every route takes `?position=<JSON Position>` (answers at least that fresh) and
//! `?partitions=0,3`; `?local=true` answers from this instance alone (what forwarded requests
//! use). A partition that is restoring, rebalancing or behind the bound gives
//! `503 Service Unavailable` with `Retry-After`, never a partial or stale answer; an unknown
//! store `404`, a key absent from the store `404` with `"value": null`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query as UrlQuery, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::runtime::Queryable;
use crate::serdes::Serde;

use super::{
    Position, PositionBound, QueryFailure, RawAnswer, RawQuery, StateQueryRequest, StoreQuery,
};

/// A JSON body (serialized by serde_json; axum's own `Json` needs a feature that rebuilds
/// half the workspace, see `streamlib/Cargo.toml`).
struct Json<T>(T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}

/// A response that ends a request early, boxed (a `Response` is large).
struct Refused(Box<Response>);

impl From<Response> for Refused {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Seconds a client should wait before asking again when a partition cannot answer yet.
const RETRY_AFTER_SECONDS: &str = "1";

/// How the HTTP layer reads one store's bytes: keys from URL segments, keys and values to JSON.
pub trait StoreCodec: Send + Sync {
    /// The store key named by a URL segment.
    fn key(&self, store: &str, text: &str) -> Result<Vec<u8>, String>;
    /// A stored key as JSON.
    fn key_json(&self, store: &str, bytes: &[u8]) -> Value;
    /// A stored value as JSON.
    fn value_json(&self, store: &str, bytes: &[u8]) -> Value;
}

/// A [`StoreCodec`] from the store's serdes: keys parsed with [`std::str::FromStr`], keys and
/// values shown with their `Serialize` form (bytes that do not deserialize show as an error
/// object, never as a wrong value).
pub struct SerdeCodec<K, V> {
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K, V> SerdeCodec<K, V> {
    /// The codec of a store written with `keys` and `values`.
    pub fn new(keys: impl Serde<K>, values: impl Serde<V>) -> Self {
        Self {
            keys: Arc::new(keys),
            values: Arc::new(values),
        }
    }
}

fn shown<T: serde::Serialize>(decoded: Result<T, crate::serdes::SerdeError>) -> Value {
    decoded
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
        .unwrap_or_else(|error| json!({ "error": error }))
}

impl<K, V> StoreCodec for SerdeCodec<K, V>
where
    K: std::str::FromStr + serde::Serialize + 'static,
    K::Err: std::fmt::Display,
    V: serde::Serialize + 'static,
{
    fn key(&self, store: &str, text: &str) -> Result<Vec<u8>, String> {
        let key: K = text.parse().map_err(|e: K::Err| e.to_string())?;
        self.keys.serialize(store, &key).map_err(|e| e.to_string())
    }

    fn key_json(&self, store: &str, bytes: &[u8]) -> Value {
        shown(self.keys.deserialize(store, bytes))
    }

    fn value_json(&self, store: &str, bytes: &[u8]) -> Value {
        shown(self.values.deserialize(store, bytes))
    }
}

/// What the routes serve: this instance's queries, the stores' codecs, and a client for
/// asking the other instances.
#[derive(Clone)]
pub struct QueryService {
    queryable: Queryable,
    codecs: Arc<BTreeMap<String, Arc<dyn StoreCodec>>>,
    client: reqwest::Client,
}

impl QueryService {
    /// Serves the queries of `queryable` on the stores given with [`Self::with_store`].
    pub fn new(queryable: Queryable) -> Self {
        Self {
            queryable,
            codecs: Arc::new(BTreeMap::new()),
            client: reqwest::Client::new(),
        }
    }

    /// Makes store `name` queryable over HTTP, read with `codec`.
    pub fn with_store(mut self, name: &str, codec: impl StoreCodec + 'static) -> Self {
        Arc::make_mut(&mut self.codecs).insert(name.to_owned(), Arc::new(codec));
        self
    }
}

/// The routes of the module doc, over `service`.
pub fn router(service: QueryService) -> Router {
    Router::new()
        .route("/state/instances", get(instances))
        .route("/state/keyvalue/{store}/{key}", get(key_value))
        .route("/state/keyvalues/{store}/all", get(all_key_values))
        .route("/state/keyvalues/{store}/range/{from}/{to}", get(key_range))
        .route("/state/windowed/{store}/{key}/{from}/{to}", get(windowed))
        .route("/state/windows/{store}/{from}/{to}", get(windows))
        .route("/state/session/{store}/{key}", get(session))
        .with_state(service)
}

/// The URL parameters every route takes.
#[derive(Debug, Default, Deserialize)]
struct Params {
    /// A JSON [`Position`] the answer must be at or past.
    position: Option<String>,
    /// Comma-separated partitions to ask.
    partitions: Option<String>,
    /// Answer from this instance alone.
    #[serde(default)]
    local: bool,
}

impl Params {
    fn bound(&self) -> Result<PositionBound, Refused> {
        match &self.position {
            None => Ok(PositionBound::Unbounded),
            Some(text) => serde_json::from_str::<Position>(text)
                .map(PositionBound::AtLeast)
                .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("position: {e}"))),
        }
    }

    fn partitions(&self) -> Result<Option<BTreeSet<i32>>, Refused> {
        self.partitions
            .as_ref()
            .map(|text| {
                text.split(',')
                    .map(|p| p.trim().parse::<i32>())
                    .collect::<Result<BTreeSet<_>, _>>()
                    .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("partitions: {e}")))
            })
            .transpose()
    }

    /// The query string to forward (always `local=true`), with `partitions` replaced.
    fn forwarded(&self, partitions: Option<&BTreeSet<i32>>) -> Vec<(String, String)> {
        let mut out = vec![("local".to_owned(), "true".to_owned())];
        if let Some(position) = &self.position {
            out.push(("position".to_owned(), position.clone()));
        }
        if let Some(partitions) = partitions {
            let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
            out.push(("partitions".to_owned(), list.join(",")));
        }
        out
    }
}

fn error(status: StatusCode, message: &str) -> Refused {
    (status, Json(json!({ "error": message })))
        .into_response()
        .into()
}

/// A failure as a response: `503` with `Retry-After` for the ones that pass.
fn failure(partition: i32, failure: &QueryFailure) -> Refused {
    let status = match failure {
        QueryFailure::NotPresent
        | QueryFailure::NotActive
        | QueryFailure::Restoring
        | QueryFailure::NotUpToBound { .. } => StatusCode::SERVICE_UNAVAILABLE,
        QueryFailure::UnknownStore(_) => StatusCode::NOT_FOUND,
        QueryFailure::UnknownQueryType { .. } => StatusCode::BAD_REQUEST,
        QueryFailure::StoreException(_) | QueryFailure::Deserialization(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let body = Json(json!({
        "error": failure.to_string(),
        "partition": partition,
        "failure": failure,
    }));
    let response = if status == StatusCode::SERVICE_UNAVAILABLE {
        (status, [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)], body).into_response()
    } else {
        (status, body).into_response()
    };
    response.into()
}

async fn instances(State(service): State<QueryService>) -> Response {
    let queryable = service.queryable.clone();
    match tokio::task::spawn_blocking(move || queryable.all_metadata()).await {
        Ok(Ok(instances)) => Json(instances).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()).into_response(),
    }
}

/// One store's request, in bytes, before it is asked.
struct Asked {
    store: String,
    codec: Arc<dyn StoreCodec>,
    query: StoreQuery,
    params: Params,
    /// The URL path, to forward.
    path: String,
}

impl QueryService {
    fn asked(
        &self,
        store: &str,
        params: Params,
        path: String,
        query: impl FnOnce(&dyn StoreCodec, &str) -> Result<StoreQuery, String>,
    ) -> Result<Asked, Refused> {
        let codec =
            self.codecs.get(store).cloned().ok_or_else(|| {
                error(StatusCode::NOT_FOUND, &format!("no store named `{store}`"))
            })?;
        let query = query(codec.as_ref(), store).map_err(|e| error(StatusCode::BAD_REQUEST, &e))?;
        Ok(Asked {
            store: store.to_owned(),
            codec,
            query,
            params,
            path,
        })
    }

    /// Asks this instance's tasks.
    async fn ask_local(
        &self,
        asked: &Asked,
        partitions: Option<BTreeSet<i32>>,
    ) -> Result<BTreeMap<i32, Result<(RawAnswer, Position), QueryFailure>>, Refused> {
        let bound = asked.params.bound()?;
        let mut request = StateQueryRequest::in_store(&asked.store)
            .with_query(RawQuery(asked.query.clone()))
            .with_position_bound(bound);
        if let Some(partitions) = partitions {
            request = request.with_partitions(partitions);
        }
        let queryable = self.queryable.clone();
        let result = tokio::task::spawn_blocking(move || queryable.query(&request))
            .await
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))?;
        Ok(result
            .partitions
            .into_iter()
            .map(|(p, r)| (p, r.map(|a| (a.value, a.position))))
            .collect())
    }

    /// Asks `host` for `partitions` of the same path, and returns its JSON body.
    async fn ask_remote(
        &self,
        host: &str,
        asked: &Asked,
        partitions: Option<&BTreeSet<i32>>,
    ) -> Result<Value, Refused> {
        let mut url =
            reqwest::Url::parse(&format!("http://{host}{}", asked.path)).map_err(|e| {
                error(
                    StatusCode::BAD_GATEWAY,
                    &format!("the address of {host}: {e}"),
                )
            })?;
        url.query_pairs_mut()
            .extend_pairs(asked.params.forwarded(partitions));
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| error(StatusCode::BAD_GATEWAY, &format!("asking {host}: {e}")))?;
        let status = response.status();
        let retry = response.headers().get(header::RETRY_AFTER).cloned();
        let body: Value = response
            .json()
            .await
            .map_err(|e| error(StatusCode::BAD_GATEWAY, &format!("reading {host}: {e}")))?;
        // A key absent from its owner's store is an answer, not a failure.
        let absent = status == reqwest::StatusCode::NOT_FOUND && body.get("value").is_some();
        if status.is_success() || absent {
            return Ok(body);
        }
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = (status, Json(body)).into_response();
        if let Some(retry) = retry {
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        Err(response.into())
    }

    /// The host that owns `partition` when it is not this instance.
    async fn owner(&self, partition: i32) -> Option<String> {
        let queryable = self.queryable.clone();
        let instances = tokio::task::spawn_blocking(move || queryable.all_metadata())
            .await
            .ok()?
            .ok()?;
        let owner = instances
            .into_iter()
            .find(|i| i.partitions.contains(&partition))?
            .host;
        (Some(owner.as_str()) != self.queryable.application_server()).then_some(owner)
    }

    /// Answers `asked` whole: this instance's partitions, and the others' from their owners
    /// (unless `local`), as the items of every partition (a key route's one value, a range
    /// route's entries) and their merged position; a failing partition fails it all.
    async fn answer(&self, asked: &Asked) -> Result<(Vec<Value>, Position), Refused> {
        let local = self.ask_local(asked, asked.params.partitions()?).await?;
        let mut items: Vec<Value> = Vec::new();
        let mut position = Position::default();
        let mut elsewhere: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for (partition, result) in local {
            match result {
                Ok((answer, at)) => {
                    position.merge(&at);
                    items.extend(render(asked.codec.as_ref(), &asked.store, answer));
                }
                Err(f @ (QueryFailure::NotPresent | QueryFailure::NotActive))
                    if !asked.params.local =>
                {
                    let host = self
                        .owner(partition)
                        .await
                        .ok_or_else(|| failure(partition, &f))?;
                    elsewhere.entry(host).or_default().insert(partition);
                }
                Err(f) => return Err(failure(partition, &f)),
            }
        }
        for (host, partitions) in &elsewhere {
            let body = self.ask_remote(host, asked, Some(partitions)).await?;
            if let Ok(at) = serde_json::from_value::<Position>(body["position"].clone()) {
                position.merge(&at);
            }
            match body.get("entries").and_then(Value::as_array) {
                Some(entries) => items.extend(entries.iter().cloned()),
                None => items.push(body["value"].clone()),
            }
        }
        Ok((items, position))
    }
}

/// The items of one partition's answer as JSON: a value (or `null`), or its entries.
fn render(codec: &dyn StoreCodec, store: &str, answer: RawAnswer) -> Vec<Value> {
    let key = |k: &[u8]| codec.key_json(store, k);
    let value = |v: &[u8]| codec.value_json(store, v);
    match answer {
        RawAnswer::Value(found) => vec![found.map_or(Value::Null, |v| value(&v))],
        RawAnswer::Entries(entries) => entries
            .iter()
            .map(|(k, v)| json!({ "key": key(k), "value": value(v) }))
            .collect(),
        RawAnswer::Windows(windows) => windows
            .iter()
            .map(|(k, start, v)| json!({ "key": key(k), "start": start, "value": value(v) }))
            .collect(),
        RawAnswer::Sessions(sessions) => sessions
            .iter()
            .map(|(k, start, end, v)| {
                json!({ "key": key(k), "start": start, "end": end, "value": value(v) })
            })
            .collect(),
    }
}

/// What every route extracts besides its path segments: the service, the URL parameters and
/// the path itself (to forward).
struct Call {
    service: QueryService,
    params: Params,
    path: String,
}

impl FromRequestParts<QueryService> for Call {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &QueryService,
    ) -> Result<Self, Response> {
        let UrlQuery(params) = UrlQuery::<Params>::from_request_parts(parts, service)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            service: service.clone(),
            params,
            path: parts.uri.path().to_owned(),
        })
    }
}

impl Call {
    fn asked(
        self,
        store: &str,
        query: impl FnOnce(&dyn StoreCodec, &str) -> Result<StoreQuery, String>,
    ) -> Result<(QueryService, Asked), Refused> {
        let asked = self.service.asked(store, self.params, self.path, query)?;
        Ok((self.service, asked))
    }

    /// Asks `query` of `store` and answers with `{ "entries", "position" }`.
    async fn entries(
        self,
        store: &str,
        query: impl FnOnce(&dyn StoreCodec, &str) -> Result<StoreQuery, String>,
    ) -> Response {
        let answered = match self.asked(store, query) {
            Ok((service, asked)) => service.answer(&asked).await,
            Err(response) => return response.into_response(),
        };
        match answered {
            Ok((items, position)) => {
                Json(json!({ "entries": items, "position": position })).into_response()
            }
            Err(response) => response.into_response(),
        }
    }
}

fn millis(text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .map_err(|e| format!("`{text}` is not a time in milliseconds: {e}"))
}

async fn key_value(call: Call, Path((store, key)): Path<(String, String)>) -> Response {
    let answered = match call.asked(&store, |c, store| Ok(StoreQuery::Key(c.key(store, &key)?))) {
        Ok((service, asked)) => service.answer(&asked).await,
        Err(response) => return response.into_response(),
    };
    match answered {
        Ok((items, position)) => {
            let value = items.into_iter().next().unwrap_or(Value::Null);
            let status = if value.is_null() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            let body = json!({ "key": key, "value": value, "position": position });
            (status, Json(body)).into_response()
        }
        Err(response) => response.into_response(),
    }
}

async fn all_key_values(call: Call, Path(store): Path<String>) -> Response {
    call.entries(&store, |_, _| {
        Ok(StoreQuery::Range {
            from: None,
            to: None,
        })
    })
    .await
}

async fn key_range(
    call: Call,
    Path((store, from, to)): Path<(String, String, String)>,
) -> Response {
    call.entries(&store, |c, store| {
        Ok(StoreQuery::Range {
            from: Some(c.key(store, &from)?),
            to: Some(c.key(store, &to)?),
        })
    })
    .await
}

async fn windowed(
    call: Call,
    Path((store, key, from, to)): Path<(String, String, String, String)>,
) -> Response {
    call.entries(&store, |c, store| {
        Ok(StoreQuery::WindowKey {
            key: c.key(store, &key)?,
            from_start: millis(&from)?,
            to_start: millis(&to)?,
        })
    })
    .await
}

async fn windows(call: Call, Path((store, from, to)): Path<(String, String, String)>) -> Response {
    call.entries(&store, |_, _| {
        Ok(StoreQuery::WindowRange {
            from_start: millis(&from)?,
            to_start: millis(&to)?,
        })
    })
    .await
}

async fn session(call: Call, Path((store, key)): Path<(String, String)>) -> Response {
    call.entries(&store, |c, store| {
        Ok(StoreQuery::Session {
            key: c.key(store, &key)?,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_that_cannot_answer_yet_are_503_with_retry_after() {
        let behind = QueryFailure::NotUpToBound {
            position: Position::default(),
            bound: Position::default().with("in", 0, 5),
        };
        for passing in [QueryFailure::Restoring, QueryFailure::NotPresent, behind] {
            let response = failure(2, &passing).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        }
        let response = failure(0, &QueryFailure::UnknownStore("x".into())).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
