//! The network around a server under test: an address nothing listens on, and a TCP proxy on
//! loopback whose open connections can be cut at once, as a network failure would.
//!
//! The proxy forwards bytes and nothing else; it must not read or change them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A loopback address nothing listens on (it was free a moment ago and has been let go).
///
/// # Panics
/// When no loopback port can be bound at all.
pub fn unused_port() -> SocketAddr {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1");
    listener.local_addr().expect("the bound port's address")
}

/// Forwards every connection to a target; [`CuttableProxy::cut`] drops the open ones (both sides
/// see the TCP connection close) while new connections are forwarded as before, so a client can
/// reconnect. [`CuttableProxy::go_down`] makes the target unreachable until
/// [`CuttableProxy::come_back`] (a database that went away and returned). Stops on drop.
pub struct CuttableProxy {
    pub addr: SocketAddr,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accepted: Arc<AtomicUsize>,
    /// While set, new connections are closed at once.
    down: Arc<AtomicBool>,
    accept_task: JoinHandle<()>,
}

impl CuttableProxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy address");
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let accept_task = {
            let open = open.clone();
            let accepted = accepted.clone();
            let down = down.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let task = tokio::spawn(async move {
                        let _ = client.set_nodelay(true);
                        let Ok(mut upstream) = TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = upstream.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    });
                    let mut open = open.lock().expect("proxy list");
                    open.retain(|handle| !handle.is_finished());
                    open.push(task.abort_handle());
                }
            })
        };
        CuttableProxy {
            addr,
            open,
            accepted,
            down,
            accept_task,
        }
    }

    /// The target goes away: open connections are cut and new ones closed at once.
    pub fn go_down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// The target is reachable again.
    pub fn come_back(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Drops every open connection (both sides see the TCP connection close); returns how many.
    pub fn cut(&self) -> usize {
        let handles: Vec<AbortHandle> = std::mem::take(&mut *self.open.lock().expect("proxy list"));
        let live = handles
            .iter()
            .filter(|handle| !handle.is_finished())
            .count();
        for handle in handles {
            handle.abort();
        }
        live
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut();
    }
}
