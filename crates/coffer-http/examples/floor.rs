//! The HTTP floor for `bench/http-reads.sh`: an axum hello-world on the same stack Coffer
//! serves with (axum, hyper, Tokio's multi-threaded runtime), answering a small JSON body.
//!
//!   cargo run --release -p coffer-http --example floor -- 127.0.0.1:8090

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8090".into());
    let app = Router::new().route("/", get(|| async { axum::Json(serde_json::json!({ "hello": "world" })) }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("floor listening on {}", listener.local_addr()?);
    // Like Coffer's server: replies are not held back by Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
