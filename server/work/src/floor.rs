//! The pay floor: a project's `target_hourly_rate` is a minimum, not a
//! wish. When a room's approved entries are paid, and at least daily, each
//! worker whose effective hourly rate since the room's last floor check is
//! below the target gets a top-up that brings it to the target (as
//! Prolific's adjustment payments do).
//!
//! The rule, in full (docs/API.md says it to users):
//! - **Earned**: the worker's answer and bonus entries created in the
//!   period that are pending, approved or paid (rejected and disputed ones
//!   are not earned; earlier top-ups are not counted again).
//! - **Time**: the lead time (reservation to submit) of the worker's
//!   answers submitted in the period, except answers whose rejection stands
//!   and was the worker's fault, plus the time of reservations that ended in
//!   the period without an answer through no fault of theirs
//!   ([`no_fault_ms`]). A rejection is the worker's fault unless the
//!   moderator who rejected it said otherwise (`no_fault`: a broken task,
//!   unclear instructions); a disputed rejection still counts as theirs
//!   until a moderator upholds the dispute, which approves the entry.
//! - **Top-up**: the target rate times that time, rounded up to a whole
//!   micro-unit, less what was earned, when that is positive.
//!
//! Everything here is integer arithmetic in `i128`, saturating back to
//! `i64`: no input, however hostile, can overflow or panic.

use crate::queue::{Freed, Reservation};

/// Milliseconds in an hour.
const HOUR_MS: i128 = 3_600_000;

/// What the floor counted for one worker over one period, and the top-up
/// it owes (0 when the worker earned at least the target rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopUp {
    /// Micro-units earned in the period (see the module doc).
    pub earned: i64,
    /// Milliseconds counted: answers' lead time and no-fault time.
    pub counted_ms: i64,
    /// Of which no-fault time on reservations that ended unanswered.
    pub no_fault_ms: i64,
    /// What the target rate pays for `counted_ms`, rounded up.
    pub due: i64,
    /// `due - earned` when positive, else 0.
    pub amount: i64,
}

/// The floor's verdict for one worker: `target_hourly_rate` in micro-units
/// per hour, `answer_ms` the counted lead time of their answers,
/// `no_fault_ms` their no-fault time on unanswered reservations. Negative
/// inputs count as 0.
pub fn top_up(target_hourly_rate: i64, earned: i64, answer_ms: i64, no_fault_ms: i64) -> TopUp {
    let earned = earned.max(0);
    let no_fault_ms = no_fault_ms.max(0);
    let counted_ms = answer_ms.max(0).saturating_add(no_fault_ms);
    let rate = i128::from(target_hourly_rate.max(0));
    // Rounded up: paid exactly `due`, the worker's rate is at least the target.
    let due = (rate * i128::from(counted_ms) + HOUR_MS - 1) / HOUR_MS;
    let due = i64::try_from(due).unwrap_or(i64::MAX);
    TopUp {
        earned,
        counted_ms,
        no_fault_ms,
        due,
        amount: due.saturating_sub(earned).max(0),
    }
}

/// The time the floor counts for a reservation that ended without an
/// answer, or None when its end was the holder's own doing:
/// - freed by a moderator ([`Freed::Released`]): from its grant to now;
/// - expired at the project's reservation cap: its holder kept it alive
///   with heartbeats (their activity) until the project's own limit ended
///   it, so from its grant to the cap;
/// - expired because heartbeats stopped (the worker left), or skipped: not
///   counted.
pub fn no_fault_ms(why: Freed, reservation: &Reservation, now_ms: i64) -> Option<i64> {
    let held_until = match why {
        Freed::Released => now_ms.min(reservation.cap_at),
        Freed::Expired if reservation.expires_at >= reservation.cap_at => reservation.cap_at,
        Freed::Expired | Freed::Skipped => return None,
    };
    let held = held_until.saturating_sub(reservation.created_at);
    (held > 0).then_some(held)
}

/// The top-up's reason, shown to the worker and kept in the entry's audit
/// trail: the computation in words, amounts in currency units.
pub fn explain(top_up: &TopUp, target_hourly_rate: i64) -> String {
    format!(
        "pay floor: {earned} earned for {time} of work ({no_fault} of it on reservations that ended \
         through no fault of yours) is below the target of {target}/h, which pays {due} for that \
         time; top-up {amount}",
        earned = units(top_up.earned),
        time = duration(top_up.counted_ms),
        no_fault = duration(top_up.no_fault_ms),
        target = units(target_hourly_rate),
        due = units(top_up.due),
        amount = units(top_up.amount),
    )
}

/// Micro-units as currency units with six decimals trimmed to at least two.
fn units(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    let fraction = format!("{:06}", micros % 1_000_000);
    let fraction = fraction.trim_end_matches('0');
    let fraction = format!("{fraction:0<2}");
    format!("{sign}{}.{fraction}", micros / 1_000_000)
}

/// Milliseconds as `1 h 02 min 03 s`, leaving out leading zero units;
/// under a minute, in seconds to a tenth (`4.2 s`).
fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let seconds = ms / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}.{} s", ms % 1000 / 100),
        (0, _) => format!("{minutes} min {seconds:02} s"),
        _ => format!("{hours} h {minutes:02} min {seconds:02} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_worker_below_the_target_is_topped_up_to_it() {
        // 15.00/h for 12 minutes is 3.00; 1.00 earned leaves 2.00.
        let top = top_up(15_000_000, 1_000_000, 10 * 60_000, 2 * 60_000);
        assert_eq!(top.counted_ms, 12 * 60_000);
        assert_eq!(top.due, 3_000_000);
        assert_eq!(top.amount, 2_000_000);
        let reason = explain(&top, 15_000_000);
        assert!(reason.contains("1.00 earned for 12 min 00 s"), "{reason}");
        assert!(reason.contains("2 min 00 s of it"), "{reason}");
        assert!(reason.ends_with("top-up 2.00"), "{reason}");
    }

    #[test]
    fn a_worker_at_or_above_the_target_gets_nothing() {
        assert_eq!(top_up(15_000_000, 3_000_000, 12 * 60_000, 0).amount, 0);
        assert_eq!(top_up(15_000_000, 9_000_000, 12 * 60_000, 0).amount, 0);
        assert_eq!(top_up(0, 0, 12 * 60_000, 0).amount, 0);
        assert_eq!(top_up(15_000_000, 0, 0, 0).amount, 0);
    }

    #[test]
    fn only_no_fault_ends_count() {
        let held = Reservation {
            task_id: 1,
            created_at: 1_000,
            expires_at: 61_000,
            cap_at: 3_601_000,
        };
        assert_eq!(no_fault_ms(Freed::Released, &held, 31_000), Some(30_000));
        assert_eq!(no_fault_ms(Freed::Expired, &held, 61_000), None);
        assert_eq!(no_fault_ms(Freed::Skipped, &held, 31_000), None);
        let capped = Reservation {
            expires_at: held.cap_at,
            ..held
        };
        assert_eq!(
            no_fault_ms(Freed::Expired, &capped, 3_700_000),
            Some(3_600_000)
        );
        // A release after the cap (not swept yet) counts up to the cap.
        assert_eq!(
            no_fault_ms(Freed::Released, &held, 9_000_000),
            Some(3_600_000)
        );
    }

    #[test]
    fn amounts_read_in_currency_units() {
        assert_eq!(units(0), "0.00");
        assert_eq!(units(1_500_000), "1.50");
        assert_eq!(units(1_234_567), "1.234567");
        assert_eq!(units(-50_000), "-0.05");
        assert_eq!(duration(3_723_000), "1 h 02 min 03 s");
        assert_eq!(duration(59_999), "59.9 s");
        assert_eq!(duration(250), "0.2 s");
    }

    proptest! {
        /// The top-up is the least that brings the rate to the target, and
        /// never negative, whatever the inputs.
        #[test]
        fn the_top_up_is_the_least_that_meets_the_target(
            rate in any::<i64>(), earned in any::<i64>(),
            answer_ms in any::<i64>(), no_fault in any::<i64>(),
        ) {
            let top = top_up(rate, earned, answer_ms, no_fault);
            prop_assert!(top.amount >= 0);
            prop_assert!(top.amount <= top.due);
            let target = i128::from(rate.max(0)) * i128::from(top.counted_ms);
            let paid = i128::from(top.earned) + i128::from(top.amount);
            if top.due < i64::MAX && top.earned < i64::MAX {
                // Paid at least the target rate for the time counted...
                prop_assert!(paid * HOUR_MS >= target);
                // ...and not one micro-unit more than needed when topped up.
                if top.amount > 0 {
                    prop_assert!((paid - 1) * HOUR_MS < target);
                }
            }
        }
    }
}
