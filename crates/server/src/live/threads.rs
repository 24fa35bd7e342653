//! The live push's own threads. Fanning one message out to 10,000 screens is 10,000 socket
//! writes in a burst; on the server's runtime those writes queue ahead of every bet that
//! arrives meanwhile (tokio runs ready tasks first in, first out), and a bet then waits for
//! the whole burst. On threads of their own, the operating system shares the cores between
//! the burst and the requests instead, so committed events fan out without slowing the ledger.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct LiveThreads {
    /// None: the live push shares the server's runtime.
    runtime: Option<Runtime>,
}

impl LiveThreads {
    /// The live push on the server's own runtime.
    pub fn shared() -> LiveThreads {
        LiveThreads { runtime: None }
    }

    /// `threads` worker threads of their own; 0 shares the caller's runtime.
    pub fn start(threads: usize) -> std::io::Result<LiveThreads> {
        if threads == 0 {
            return Ok(LiveThreads::shared());
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("live-push")
            .enable_all()
            .build()?;
        Ok(LiveThreads {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` on the live threads (or, with none, on the current runtime).
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        }
    }
}

impl Drop for LiveThreads {
    fn drop(&mut self) {
        // Not `Runtime::drop`: that blocks, and the hub may be dropped inside a task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
