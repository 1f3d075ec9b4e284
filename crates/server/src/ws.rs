//! Bounds on WebSocket clients: how many connections in total, per address and per user,
//! and how much may wait for a client that does not read.
//!
//! Every message to a client goes through its outbox, a queue bounded in messages and bytes
//! that a writer task empties into the socket. While it is full the subscriptions wait (a
//! slow reader slows them down; what they read from NATS is pulled as it is sent, not
//! buffered). When the client has read nothing for the outbox's stall time, the GraphQL side
//! of the connection ends at once (its subscriptions and what they hold are dropped), the
//! queue is emptied unsent, and the client gets a close frame with [`SLOW_CLIENT`] and a
//! reason saying what to do.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::task::AtomicWaker;
use futures::{Sink, SinkExt};
use tokio::sync::Notify;

/// Close code sent to a client that did not read what it was sent (1008: policy violation).
pub const SLOW_CLIENT: u16 = 1008;

/// How long a close frame may take to reach a client before the socket is dropped.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// The caps, from the console's settings.
#[derive(Debug, Clone, Copy)]
pub struct CapSettings {
    pub total: usize,
    pub per_address: usize,
    pub per_user: usize,
    /// Messages that may wait unread for one client.
    pub outbox_messages: usize,
    /// Bytes that may wait unread for one client.
    pub outbox_bytes: usize,
    /// How long a full outbox may wait for the client to read before it is disconnected.
    pub outbox_stall: Duration,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<String, usize>,
    by_user: HashMap<String, usize>,
}

/// Open connections, counted against the caps. Cheap to clone.
#[derive(Clone)]
pub struct Caps {
    settings: CapSettings,
    counts: Arc<Mutex<Counts>>,
}

/// A connection counted in the total and against its address; uncounted when dropped.
#[derive(Debug)]
pub struct AddressSlot {
    counts: Arc<Mutex<Counts>>,
    address: String,
}

/// A connection counted against its user; uncounted when dropped.
#[derive(Debug)]
pub struct UserSlot {
    counts: Arc<Mutex<Counts>>,
    user: String,
}

impl Caps {
    pub fn new(settings: CapSettings) -> Self {
        Self {
            settings,
            counts: Arc::default(),
        }
    }

    pub fn settings(&self) -> CapSettings {
        self.settings
    }

    /// Counts a new connection from `address`, or says which cap it would pass.
    pub fn admit_address(&self, address: &str) -> Result<AddressSlot, String> {
        let mut c = self.counts.lock().expect("caps lock");
        if c.total >= self.settings.total {
            return Err(format!(
                "the console has {} WebSocket connections open, its limit; retry later or ask for a higher \
                 --max-connections",
                c.total
            ));
        }
        let n = c.by_address.get(address).copied().unwrap_or(0);
        if n >= self.settings.per_address {
            return Err(format!(
                "{n} WebSocket connections are open from your address, its limit; close some (one connection \
                 carries many subscriptions) or ask for a higher --max-connections-per-address"
            ));
        }
        c.total += 1;
        *c.by_address.entry(address.to_string()).or_default() += 1;
        Ok(AddressSlot {
            counts: self.counts.clone(),
            address: address.to_string(),
        })
    }

    /// Counts a connection of `user` (once it signed in), or says that it has too many.
    pub fn admit_user(&self, user: &str) -> Result<UserSlot, String> {
        let mut c = self.counts.lock().expect("caps lock");
        let n = c.by_user.get(user).copied().unwrap_or(0);
        if n >= self.settings.per_user {
            return Err(format!(
                "you have {n} WebSocket connections open, the limit per user; close some (one connection carries \
                 many subscriptions)"
            ));
        }
        *c.by_user.entry(user.to_string()).or_default() += 1;
        Ok(UserSlot {
            counts: self.counts.clone(),
            user: user.to_string(),
        })
    }
}

fn uncount(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("caps lock");
        c.total -= 1;
        uncount(&mut c.by_address, &self.address);
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("caps lock");
        uncount(&mut c.by_user, &self.user);
    }
}

/// What the GraphQL side writes to: the outbox of one connection. While it is full (in
/// messages or bytes) the GraphQL side waits, so a client that reads slowly slows its
/// subscriptions down; one that reads nothing for `stall` is disconnected.
pub struct Outbox {
    shared: Arc<Shared>,
    max_messages: usize,
    max_bytes: usize,
    stall: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// What the outbox and its writer share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Woken when the writer took a message: room again.
    room: AtomicWaker,
    /// Notified when a message waits, or the outbox was dropped.
    waiting: Notify,
    overflow: Overflow,
}

/// The messages waiting for the writer. Its memory is given back whenever it is empty, so
/// an idle connection holds none (a channel would keep a block of slots for its lifetime).
#[derive(Default)]
struct Queue {
    messages: VecDeque<Message>,
    /// Bytes waiting in `messages`.
    bytes: usize,
    /// The outbox was dropped: the writer sends what waits, then ends.
    outbox_gone: bool,
    /// The writer ended: nothing more is taken.
    writer_gone: bool,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().expect("outbox lock")
    }

    /// The next message for the writer, waiting for one; `None` once the outbox is dropped
    /// and everything was taken.
    async fn next(&self) -> Option<Message> {
        loop {
            {
                let mut q = self.queue();
                if let Some(m) = q.messages.pop_front() {
                    q.bytes -= message_len(&m);
                    if q.messages.is_empty() {
                        q.messages = VecDeque::new();
                    }
                    return Some(m);
                }
                if q.outbox_gone {
                    return None;
                }
            }
            // A notification sent between the look and this wait is kept (notify_one).
            self.waiting.notified().await;
        }
    }
}

/// Set once when the client is given up on; the writer waits on it.
#[derive(Default)]
struct Overflow {
    happened: AtomicBool,
    notify: Notify,
}

impl Overflow {
    fn set(&self) {
        self.happened.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn is_set(&self) -> bool {
        self.happened.load(Ordering::Acquire)
    }

    async fn wait(&self) {
        while !self.is_set() {
            self.notify.notified().await;
        }
    }
}

/// The client read nothing for the outbox's whole stall time.
#[derive(Debug)]
pub struct SlowClient;

impl Sink<Message> for Outbox {
    type Error = SlowClient;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SlowClient>> {
        let this = self.get_mut();
        this.shared.room.register(cx.waker());
        let (room, writer_gone) = {
            let q = this.shared.queue();
            (
                q.messages.len() < this.max_messages && q.bytes < this.max_bytes,
                q.writer_gone,
            )
        };
        if writer_gone {
            return Poll::Ready(Err(SlowClient));
        }
        if room {
            this.deadline = None;
            return Poll::Ready(Ok(()));
        }
        let stall = this.stall;
        let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if deadline.as_mut().poll(cx).is_ready() {
            this.shared.overflow.set();
            return Poll::Ready(Err(SlowClient));
        }
        Poll::Pending
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), SlowClient> {
        {
            let mut q = self.shared.queue();
            if q.writer_gone {
                return Err(SlowClient);
            }
            q.bytes += message_len(&msg);
            q.messages.push_back(msg);
        }
        self.shared.waiting.notify_one();
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SlowClient>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SlowClient>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.shared.queue().outbox_gone = true;
        self.shared.waiting.notify_one();
    }
}

/// Marks the writer gone however it ends (returned, or dropped with its task).
struct WriterGone(Arc<Shared>);

impl Drop for WriterGone {
    fn drop(&mut self) {
        self.0.queue().writer_gone = true;
        self.0.room.wake();
    }
}

fn message_len(msg: &Message) -> usize {
    match msg {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 16,
    }
}

/// An outbox for `sink` and the task that empties it, bounded by `settings`. The task ends
/// when the outbox is dropped; after the client was given up on it drops what waits and
/// closes the connection with [`SLOW_CLIENT`].
pub fn outbox(sink: SplitSink<WebSocket, Message>, settings: CapSettings) -> (Outbox, impl Future<Output = ()>) {
    let shared = Arc::new(Shared::default());
    let outbox = Outbox {
        shared: shared.clone(),
        max_messages: settings.outbox_messages.max(1),
        max_bytes: settings.outbox_bytes,
        stall: settings.outbox_stall,
        deadline: None,
    };
    let writer = async move {
        let gone = WriterGone(shared);
        let shared = &*gone.0;
        let mut sink = sink;
        let mut closed = false;
        loop {
            let Some(msg) = shared.next().await else { break };
            shared.room.wake();
            if shared.overflow.is_set() {
                break;
            }
            closed = matches!(msg, Message::Close(_));
            // The send waits while the client does not read, for the stall time at most;
            // giving up on it ends the wait (the frame stays in the socket's buffer and
            // goes first).
            let sent = tokio::select! {
                r = sink.send(msg) => r.is_ok(),
                _ = shared.overflow.wait() => true,
                _ = tokio::time::sleep(settings.outbox_stall) => {
                    shared.overflow.set();
                    true
                }
            };
            if !sent || closed {
                return;
            }
        }
        if shared.overflow.is_set() {
            let unsent = {
                let mut q = shared.queue();
                q.writer_gone = true;
                q.bytes = 0;
                std::mem::take(&mut q.messages).len()
            };
            metrics::counter!("jsconsole_websocket_slow_clients_closed_total").increment(1);
            tracing::info!(
                unsent,
                "WebSocket: the client did not read what it was sent; closed the connection"
            );
            let frame = CloseFrame {
                code: SLOW_CLIENT,
                reason: format!(
                    "too slow: messages waited unread for {} s; read as they come, or subscribe to less",
                    settings.outbox_stall.as_secs_f64()
                )
                .into(),
            };
            let _ = tokio::time::timeout(CLOSE_WITHIN, sink.send(Message::Close(Some(frame)))).await;
        } else if !closed {
            let _ = tokio::time::timeout(CLOSE_WITHIN, sink.close()).await;
        }
    };
    (outbox, writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps::new(CapSettings {
            total: 3,
            per_address: 2,
            per_user: 1,
            outbox_messages: 4,
            outbox_bytes: 1024,
            outbox_stall: Duration::from_secs(1),
        })
    }

    #[test]
    fn connections_are_capped_in_total_per_address_and_per_user_and_freed_when_dropped() {
        let c = caps();
        let a1 = c.admit_address("a").unwrap();
        let _a2 = c.admit_address("a").unwrap();
        assert!(c.admit_address("a").unwrap_err().contains("from your address"));
        let _b = c.admit_address("b").unwrap();
        assert!(c.admit_address("c").unwrap_err().contains("its limit"));
        drop(a1);
        let _c = c.admit_address("c").unwrap();
        let u = c.admit_user("u").unwrap();
        assert!(c.admit_user("u").unwrap_err().contains("per user"));
        drop(u);
        assert!(c.admit_user("u").is_ok());
    }
}
