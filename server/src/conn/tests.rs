//! Unit tests for a connection's outbound queue, close signal, budgets and
//! rate limiter, driven without a socket (paused time for the deadlines).
//! They live apart so that `conn.rs` reads as the plumbing alone.

use std::time::Duration;

use super::*;

#[tokio::test(start_paused = true)]
async fn rate_limiter_allows_bursts_then_refills() {
    let mut limiter = RateLimiter::new(10, 5);
    for _ in 0..5 {
        assert!(limiter.allow());
    }
    assert!(!limiter.allow());
    tokio::time::advance(Duration::from_millis(200)).await;
    assert!(limiter.allow());
    assert!(limiter.allow());
    assert!(!limiter.allow());
}

#[tokio::test]
async fn the_queue_is_bounded_and_holds_nothing_when_idle() {
    let (tx, rx) = channel(ConnId::next(), 3, crate::metrics::YJS, Metrics::new());
    for text in ["a", "b", "c"] {
        assert!(tx.send(Message::Text(text.into())));
    }
    // The fourth frame finds the queue full: the slow client is closed.
    assert!(!tx.send(Message::Text("d".into())));
    assert_eq!(rx.signal().code(), CloseCode::SlowConsumer);
    // Closing goes before what is queued; the close sequence drains it.
    assert!(matches!(rx.next().await, Outgoing::Closed));
    let texts: Vec<String> = rx
        .take()
        .into_iter()
        .map(|message| match message {
            Message::Text(text) => text.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["a", "b", "c"]);
    let idle = rx.0.queue.lock().map(|queue| queue.frames.capacity()).ok();
    assert_eq!(idle, Some(0), "an emptied queue keeps no allocation");
    // Nothing is queued once the connection is closing.
    assert!(!tx.send(Message::Text("e".into())));
}

fn frame(bytes: u32) -> Message {
    Message::Binary(vec![0; bytes as usize].into())
}

const MIB: u32 = 1024 * 1024;

#[tokio::test]
async fn one_frame_of_any_size_passes_and_the_rest_is_counted_in_bytes() {
    let (tx, rx) = channel(ConnId::next(), 512, crate::metrics::YJS, Metrics::new());
    // A whole large document, more than the budget on its own.
    assert!(tx.send(frame(OUTBOUND_BUDGET + 10 * MIB)));
    // Besides it, frames up to the budget.
    assert!(tx.send(frame(OUTBOUND_BUDGET - MIB)));
    assert!(tx.send(frame(MIB)));
    assert!(!rx.signal().is_closed());
    assert!(!tx.send(frame(1)), "one byte over the budget");
    assert_eq!(rx.signal().code(), CloseCode::SlowConsumer);
    assert!(rx.is_abandoned(), "a write in progress is given up");
}

#[tokio::test]
async fn a_burst_counts_until_its_write_completes() {
    let (tx, rx) = channel(ConnId::next(), 512, crate::metrics::YJS, Metrics::new());
    let first = tx.send_tracked(frame(3 * MIB));
    assert!(first.is_some_and(|queued| tx.unwritten(queued)));
    // Taken for writing: out of the queue, still waiting for the peer.
    let Outgoing::Burst(burst) = rx.next().await else {
        panic!("a burst was queued");
    };
    assert_eq!(burst.len(), 1);
    assert!(first.is_some_and(|queued| tx.unwritten(queued)));
    // The 3 MiB in flight are the largest frame: the budget is for the
    // others, and the 2 MiB now queued count.
    assert!(tx.send(frame(2 * MIB)));
    assert!(tx.send(frame(OUTBOUND_BUDGET - 2 * MIB)));
    rx.written();
    assert!(first.is_some_and(|queued| !tx.unwritten(queued)));
    // The write completed: its 3 MiB no longer count, and what is
    // queued (4 MiB, its largest 2 MiB) leaves 2 MiB of room.
    assert!(tx.send(frame(MIB)));
    assert!(!rx.signal().is_closed());
    // A frame queued after the burst was taken waits for the next one.
    let second = tx.send_tracked(frame(1));
    assert!(second.is_some_and(|queued| tx.unwritten(queued)));
    assert!(matches!(rx.next().await, Outgoing::Burst(burst) if burst.len() == 4));
    assert!(second.is_some_and(|queued| tx.unwritten(queued)));
    rx.written();
    assert!(second.is_some_and(|queued| !tx.unwritten(queued)));
    // Everything written: the whole budget is free again.
    assert!(tx.send(frame(OUTBOUND_BUDGET)));
    assert!(tx.send(frame(OUTBOUND_BUDGET)));
    assert!(!rx.signal().is_closed());
    let idle = rx.take();
    assert_eq!(idle.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_write_past_its_deadline_is_abandoned_and_closed_with_4008() {
    let deadline = WriteDeadline {
        base: Duration::from_secs(2),
        bytes_per_second: MIB,
    };
    let (tx, rx) = channel_with(
        ConnId::next(),
        512,
        deadline,
        crate::metrics::YJS,
        Metrics::new(),
    );
    let signal = rx.signal();
    assert!(!signal.write_overdue(), "no write, no deadline");
    // 2 s, plus 1 s for 1 MiB: three sweeps pass, the fourth abandons.
    assert!(tx.send(frame(MIB)));
    assert!(matches!(rx.next().await, Outgoing::Burst(_)));
    let rx = Arc::new(rx);
    let waiter = tokio::spawn({
        let rx = rx.clone();
        async move { rx.abandoned().await }
    });
    for _ in 0..3 {
        assert!(!signal.write_overdue());
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert!(!waiter.is_finished());
    assert!(signal.write_overdue());
    let woken = tokio::time::timeout(Duration::from_secs(1), waiter).await;
    assert!(matches!(woken, Ok(Ok(()))), "{woken:?}");
    assert_eq!(signal.code(), CloseCode::SlowConsumer);
    assert!(!signal.write_overdue(), "abandoned once");
    rx.written();
    assert!(rx.is_abandoned(), "a late completion does not undo it");
}

#[tokio::test]
async fn a_completed_write_disarms_its_deadline() {
    let deadline = WriteDeadline {
        base: Duration::from_secs(1),
        bytes_per_second: MIB,
    };
    let (tx, rx) = channel_with(
        ConnId::next(),
        8,
        deadline,
        crate::metrics::YJS,
        Metrics::new(),
    );
    let signal = rx.signal();
    for _ in 0..5 {
        assert!(tx.send(frame(16)));
        assert!(matches!(rx.next().await, Outgoing::Burst(_)));
        assert!(!signal.write_overdue());
        rx.written();
        assert!(!signal.write_overdue());
    }
    assert!(!rx.is_abandoned() && !signal.is_closed());
}

#[tokio::test]
async fn the_writer_wakes_for_a_frame_queued_while_it_waits() {
    let (tx, rx) = channel(ConnId::next(), 8, crate::metrics::YJS, Metrics::new());
    let waiter = tokio::spawn(async move {
        match rx.next().await {
            Outgoing::Burst(burst) => burst.len(),
            Outgoing::Closed => 0,
        }
    });
    tokio::task::yield_now().await;
    assert!(tx.send(Message::Text("late".into())));
    let taken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(matches!(taken, Ok(Ok(1))), "{taken:?}");
}

#[tokio::test]
async fn a_close_wakes_the_waiting_writer_and_the_first_code_wins() {
    let (tx, rx) = channel(ConnId::next(), 8, crate::metrics::YJS, Metrics::new());
    let signal = rx.signal();
    assert!(!signal.is_closed());
    let waiter = tokio::spawn(async move { matches!(rx.next().await, Outgoing::Closed) });
    tokio::task::yield_now().await;
    signal.close(CloseCode::SlowConsumer);
    tx.close(CloseCode::Normal);
    let woken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(matches!(woken, Ok(Ok(true))), "{woken:?}");
    assert!(signal.is_closed() && tx.is_closed());
    assert_eq!(signal.code(), CloseCode::SlowConsumer);
}
