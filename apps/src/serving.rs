//! An HTTP server on a thread and tokio runtime of its own, for the synchronous binaries:
//! started on a listener bound beforehand (so its address is known and a taken port fails
//! early), stopped and joined by [`Server::stop`]. The apps' interactive queries
//! ([`crate::queries`]) and the live dashboard ([`crate::dashboard`]) run on it.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use anyhow::Context;
use tokio::sync::watch;

/// A running server.
pub struct Server {
    name: &'static str,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Runs `serve(listener, stop)` on a new thread until `stop` turns true.
    pub fn start<F>(
        name: &'static str,
        listener: TcpListener,
        serve: impl FnOnce(TcpListener, watch::Receiver<bool>) -> F + Send + 'static,
    ) -> anyhow::Result<Self>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .with_context(|| format!("starting the {name} server's runtime"))?;
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{addr}"))
            .spawn(move || runtime.block_on(serve(listener, stopped)))?;
        Ok(Self {
            name,
            addr,
            stop,
            thread,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the server to end; its error, if it failed.
    pub fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the {} server panicked", self.name))?
    }
}
