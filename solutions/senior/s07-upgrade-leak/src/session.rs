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
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message, Role};

use crate::Hub;

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Answers a WebSocket handshake with `101 Switching Protocols`, and starts the session once
/// hyper has handed the connection over.
pub(crate) async fn upgrade(
    mut request: Request<Incoming>,
    hub: Arc<Hub>,
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
    // Tracked, so that shutdown can wait for the session to end.
    hub.running.clone().spawn(async move {
        let Ok(upgraded) = switched.await else {
            return; // the client left before the switch
        };
        let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None);
        // Shutdown ends the session here if it has not ended on its own in time.
        let _ = hub
            .ending
            .run_until_cancelled(run(socket.await, &hub))
            .await;
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

/// One dashboard's session: forwards every broadcast until the client goes away or the
/// server stops.
async fn run(mut socket: Socket, hub: &Hub) {
    // Leaves the hub when dropped, whichever way this function ends.
    let mut registration = hub.register();
    loop {
        tokio::select! {
            () = hub.stopping.cancelled() => {
                // 1001: the browser reconnects elsewhere at once instead of reporting a failure.
                let going_away = CloseFrame {
                    code: CloseCode::Away,
                    reason: "the server is restarting".into(),
                };
                let _ = socket.send(Message::Close(Some(going_away))).await;
                break;
            }
            Some(text) = registration.inbox.recv() => {
                if socket.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            incoming = socket.next() => match incoming {
                // tungstenite answers pings itself; a dashboard sends nothing else we need.
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
