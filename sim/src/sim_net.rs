//! turmoil's simulated TCP as a [`pchat_server::host::Listener`], so the real server
//! code runs unchanged on a simulated host.

use std::io;
use std::net::SocketAddr;

/// A turmoil listener usable by `pchat_server::host::serve`.
pub struct SimListener(pub turmoil::net::TcpListener);

impl pchat_server::host::Listener for SimListener {
    type Stream = turmoil::net::TcpStream;
    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }
}
