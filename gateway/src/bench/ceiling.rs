//! `gateway bench ceiling`: the HTTP ceiling. A bare hyper server over tokio-rustls with the
//! gateway's own TLS configuration (mutual TLS, the same certificate and CA) that reads each
//! request's body and answers 202 with a receipt-sized JSON body — no routing, no store, no
//! limits. The bench's senders against it measure what HTTP and TLS alone cost on this machine,
//! so the gateway's figures can be read as a share of it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::net::pki::PkiLayout;

/// Options of `gateway bench ceiling`.
#[derive(Debug, Clone, clap::Args)]
pub struct CeilingArgs {
    /// The dev PKI folder.
    #[arg(long)]
    pub pki: PathBuf,
    /// Where to listen.
    #[arg(long)]
    pub listen: SocketAddr,
}

/// What every request is answered: the shape of the gateway's receipt.
const RECEIPT: &str = r#"{"message_ids":["gw-0196f1d2a3b47c5e8f90a1b2c3d4e5f6"],"deliveries":3}"#;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(RECEIPT.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Serves until killed; prints `{"listening": ADDR}` once bound.
pub async fn run(args: CeilingArgs) -> Result<()> {
    let pki = PkiLayout::new(&args.pki);
    let (cert, key) = pki.gateway();
    let tls = crate::net::tls::server_config(&pki.ca, &cert, &key)?;
    let acceptor = TlsAcceptor::from(tls);
    let listener = TcpListener::bind(args.listen).await?;
    println!(
        "{}",
        serde_json::json!({ "listening": listener.local_addr()?.to_string() })
    );
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service_fn(answer))
                .await;
        });
    }
}
