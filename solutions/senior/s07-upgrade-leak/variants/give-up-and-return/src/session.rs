//! The WebSocket side: the handshake, then one session per client.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};

use crate::Hub;

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Answers a WebSocket handshake with `101 Switching Protocols`, and starts the session once
/// hyper has handed the connection over.
pub(crate) async fn upgrade(
    mut request: Request<Incoming>,
    hub: Arc<Hub>,
    stop: tokio_util::sync::CancellationToken,
    tracker: tokio_util::task::TaskTracker,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_websocket = request
        .headers()
        .get(UPGRADE)
        .is_some_and(|upgrade| upgrade.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let key = request.headers().get(SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(key)) = (is_websocket, key) else {
        let mut response = Response::new(Full::from("a WebSocket handshake, please\n"));
        *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
        return Ok(response);
    };
    // The connection is ours once hyper has written the 101 below.
    let switched = hyper::upgrade::on(&mut request);
    tracker.spawn(async move {
        let Ok(upgraded) = switched.await else {
            return; // the client left before the switch
        };
        let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None);
        run(socket.await, &hub, &stop).await;
    });
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    let accept = derive_accept_key(key.as_bytes());
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        accept.parse().expect("base64 is a valid header"),
    );
    Ok(response)
}

struct Leave<'a>(&'a Hub, u64);
impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.unregister(self.1);
    }
}

/// One dashboard's session: forwards every broadcast until the client goes away.
async fn run(mut socket: Socket, hub: &Hub, stop: &tokio_util::sync::CancellationToken) {
    let (id, mut inbox) = hub.register();
    let _leave = Leave(hub, id);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(text) = inbox.recv() => {
                if socket.send(Message::text(text)).await.is_err() { return }
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    // Shutting down: say goodbye, give the client a while to answer.
    let goodbye = async {
        let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away,
            reason: "server going away".into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
        while let Some(Ok(_)) = socket.next().await {}
    };
    goodbye.await;
}
