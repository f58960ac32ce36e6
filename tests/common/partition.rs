//! A network partition a test can make at the moment it chooses: a TCP relay between a
//! bank node and the hub (TLS runs end to end through it, so both sides still check each
//! other's certificates). While it holds, what the bank sends stops at the relay and the
//! hub never sees it, though what the hub sends still arrives; healing drops every
//! connection (and what was held with them), as a broken link would, and relays the
//! bank's next connections in full.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// Bytes read from one side before they are passed on.
const CHUNK_BYTES: usize = 16 * 1024;

/// A relay to one address, in front of which a bank is started (its hub URL is [`Partition::url`]).
pub struct Partition {
    /// The URL the bank is given as the hub's.
    pub url: String,
    holding: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accepting: JoinHandle<()>,
}

impl Partition {
    /// A relay on a free loopback port to `upstream_url` (`https://host:port`), relaying
    /// in full until told to hold.
    pub async fn relay_to(upstream_url: &str) -> Partition {
        let upstream = upstream_url.trim_start_matches("https://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let (holding, _) = watch::channel(false);
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accepting = tokio::spawn(accept(listener, upstream, holding.clone(), Arc::clone(&connections)));
        Partition { url, holding, connections, accepting }
    }

    /// From now on what the bank sends stops here (on its open connections and new ones).
    pub fn hold(&self) {
        self.holding.send_replace(true);
    }

    /// Drops every connection through the relay, with what it held, and relays the next
    /// ones in full.
    pub fn heal(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
        self.holding.send_replace(false);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.accepting.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    holding: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
) {
    while let Ok((bank, _)) = listener.accept().await {
        let Ok(hub) = TcpStream::connect(&upstream).await else { continue };
        let task = tokio::spawn(relay(bank, hub, holding.subscribe()));
        connections.lock().unwrap().push(task.abort_handle());
    }
}

/// Relays one connection: the hub's bytes always, the bank's only while not holding.
async fn relay(bank: TcpStream, hub: TcpStream, mut holding: watch::Receiver<bool>) {
    let (mut from_bank, mut to_bank) = bank.into_split();
    let (mut from_hub, mut to_hub) = hub.into_split();
    let downstream = async { tokio::io::copy(&mut from_hub, &mut to_bank).await.map(drop) };
    let upstream = async {
        let mut chunk = vec![0; CHUNK_BYTES];
        loop {
            let read = from_bank.read(&mut chunk).await?;
            if read == 0 {
                return Ok::<(), std::io::Error>(());
            }
            // Held until the relay heals, which drops this connection with it.
            if holding.wait_for(|held| !held).await.is_err() {
                return Ok(());
            }
            to_hub.write_all(&chunk[..read]).await?;
        }
    };
    // Either side ending ends the connection (both sockets close as this returns).
    tokio::select! {
        _ = downstream => {}
        _ = upstream => {}
    }
}
