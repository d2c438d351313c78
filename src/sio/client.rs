//! One Socket.IO connection over WebSocket. (Being written: see the sio helper.)
use serde_json::Value;
use tokio::sync::mpsc;

use super::{CallError, ConnectError, ConnectOptions, Inbound, SendError};

#[derive(Clone, Debug)]
pub struct Client;

#[derive(Debug)]
pub struct Ack;

impl Ack {
    pub fn send(self, _args: Vec<Value>) {}
}

pub async fn connect(
    _opts: ConnectOptions,
) -> Result<(Client, mpsc::Receiver<Inbound>), ConnectError> {
    Err(ConnectError::Unreachable("not implemented yet".into()))
}

impl Client {
    pub async fn emit(&self, _event: &str, _data: Value) -> Result<(), SendError> {
        Err(SendError::Closed)
    }
    pub async fn call(
        &self,
        _event: &str,
        _data: Value,
        _timeout: std::time::Duration,
    ) -> Result<Vec<Value>, CallError> {
        Err(CallError::Closed)
    }
    pub async fn disconnect(&self) {}
}
