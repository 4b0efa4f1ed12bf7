//! An hourly budget for judge calls: pure bookkeeping, the caller passes the time and prices.

use std::time::{Duration, Instant};

/// The most a window may spend, in US dollars or in tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpendCap {
    /// Dollars per window; the caller prices each call (with `llmwatch-pricing`).
    Usd(f64),
    /// Prompt plus completion tokens per window.
    Tokens(u64),
}

impl SpendCap {
    /// The cap as a number in its unit.
    pub fn limit(&self) -> f64 {
        match *self {
            SpendCap::Usd(usd) => usd,
            SpendCap::Tokens(tokens) => tokens as f64,
        }
    }

    /// `usd` or `tokens`: the unit every amount passed to the guard is in.
    pub fn unit(&self) -> &'static str {
        match self {
            SpendCap::Usd(_) => "usd",
            SpendCap::Tokens(_) => "tokens",
        }
    }
}

/// A claim on the budget for one call, made before it starts; hand it back with
/// [`SpendGuard::record`] once the call has been billed, or [`SpendGuard::release`] when it
/// was never made. Dropping it leaves its amount reserved for good.
#[derive(Debug, PartialEq)]
#[must_use = "a reservation holds budget until it is recorded or released"]
pub struct Reservation {
    amount: f64,
}

impl Reservation {
    /// The amount reserved.
    pub fn amount(&self) -> f64 {
        self.amount
    }
}

/// Caps what judge calls spend per window (an hour by default), in dollars or tokens.
///
/// A call first reserves its estimated cost ([`SpendGuard::try_reserve`]), which is refused
/// when the window's recorded spend, the reservations still outstanding and the estimate
/// together would pass the cap; the caller then drops the call and counts it. When the call
/// ends its actual cost replaces the reservation ([`SpendGuard::record`]), so concurrent calls
/// cannot overshoot the cap by more than their estimates were short.
///
/// Windows are fixed: the first starts at the first `now` seen, the next ones follow it
/// back to back. When one ends the recorded spend starts again from zero; reservations
/// still outstanding stay reserved (those calls are in flight) and what they record counts in
/// the window in which it is recorded. No clock is read: every method takes `now`.
#[derive(Debug, Clone)]
pub struct SpendGuard {
    cap: SpendCap,
    window: Duration,
    window_start: Option<Instant>,
    spent: f64,
    reserved: f64,
}

impl SpendGuard {
    /// A guard of `cap` per hour.
    pub fn hourly(cap: SpendCap) -> SpendGuard {
        SpendGuard::new(cap, Duration::from_secs(3600))
    }

    /// A guard of `cap` per `window`.
    ///
    /// # Panics
    /// When `window` is zero.
    pub fn new(cap: SpendCap, window: Duration) -> SpendGuard {
        assert!(!window.is_zero(), "the spend window must be longer than 0");
        SpendGuard {
            cap,
            window,
            window_start: None,
            spent: 0.0,
            reserved: 0.0,
        }
    }

    /// The cap.
    pub fn cap(&self) -> SpendCap {
        self.cap
    }

    /// Reserves `estimate` (in the cap's unit) if it fits in the current window's budget.
    /// `None` when it does not, or when `estimate` is negative or not finite.
    pub fn try_reserve(&mut self, now: Instant, estimate: f64) -> Option<Reservation> {
        self.roll(now);
        if !estimate.is_finite() || estimate < 0.0 {
            return None;
        }
        if self.spent + self.reserved + estimate > self.cap.limit() {
            return None;
        }
        self.reserved += estimate;
        Some(Reservation { amount: estimate })
    }

    /// Settles `reservation` with the call's `actual` cost, counted in the window of `now`.
    /// An `actual` that is negative or not finite is taken to be the reserved amount.
    pub fn record(&mut self, now: Instant, reservation: Reservation, actual: f64) {
        self.roll(now);
        self.unreserve(reservation.amount);
        let actual = if actual.is_finite() && actual >= 0.0 {
            actual
        } else {
            reservation.amount
        };
        self.spent += actual;
    }

    /// Gives back a reservation whose call was never made.
    pub fn release(&mut self, reservation: Reservation) {
        self.unreserve(reservation.amount);
    }

    /// What the current window has recorded.
    pub fn spent(&mut self, now: Instant) -> f64 {
        self.roll(now);
        self.spent
    }

    /// What outstanding reservations hold.
    pub fn reserved(&self) -> f64 {
        self.reserved
    }

    /// What is left of the current window's budget after its spend and the reservations (zero
    /// when overspent).
    pub fn remaining(&mut self, now: Instant) -> f64 {
        self.roll(now);
        (self.cap.limit() - self.spent - self.reserved).max(0.0)
    }

    /// When the current window ends, once a window has started.
    pub fn window_end(&self) -> Option<Instant> {
        self.window_start.map(|start| start + self.window)
    }

    fn unreserve(&mut self, amount: f64) {
        self.reserved -= amount;
        // Float sums of many reservations may leave dust below zero.
        if self.reserved < 1e-9 {
            self.reserved = 0.0;
        }
    }

    /// Starts the first window at `now`, or moves to the window holding `now` (a `now` before
    /// the current window changes nothing).
    fn roll(&mut self, now: Instant) {
        let Some(start) = self.window_start else {
            self.window_start = Some(now);
            return;
        };
        let Some(elapsed) = now.checked_duration_since(start) else {
            return;
        };
        if elapsed < self.window {
            return;
        }
        let windows = elapsed.as_nanos() / self.window.as_nanos();
        let skip = u32::try_from(windows)
            .ok()
            .and_then(|n| self.window.checked_mul(n))
            .unwrap_or(elapsed);
        self.window_start = Some(start + skip);
        self.spent = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn reservations_are_refused_past_the_cap() {
        let t0 = Instant::now();
        let mut guard = SpendGuard::hourly(SpendCap::Usd(1.0));
        let a = guard.try_reserve(t0, 0.4).unwrap();
        let b = guard.try_reserve(t0, 0.4).unwrap();
        // 0.8 reserved: another 0.4 would pass the cap; 0.2 fits.
        assert_eq!(guard.try_reserve(t0, 0.4), None);
        let c = guard.try_reserve(t0, 0.2).unwrap();
        assert_eq!(guard.remaining(t0), 0.0);
        // The calls cost less than estimated: the difference is free again.
        guard.record(t0, a, 0.1);
        guard.record(t0, b, 0.1);
        guard.release(c);
        assert!((guard.spent(t0) - 0.2).abs() < 1e-12);
        assert_eq!(guard.reserved(), 0.0);
        assert!((guard.remaining(t0) - 0.8).abs() < 1e-12);
        assert!(guard.try_reserve(t0, 0.8).is_some());
    }

    #[test]
    fn actual_cost_over_the_estimate_is_counted() {
        let t0 = Instant::now();
        let mut guard = SpendGuard::hourly(SpendCap::Tokens(1000));
        let r = guard.try_reserve(t0, 500.0).unwrap();
        guard.record(t0, r, 1200.0);
        assert_eq!(guard.spent(t0), 1200.0);
        assert_eq!(guard.remaining(t0), 0.0);
        assert_eq!(guard.try_reserve(t0, 0.0), None);
    }

    #[test]
    fn windows_roll_over_and_keep_in_flight_reservations() {
        let t0 = Instant::now();
        let mut guard = SpendGuard::hourly(SpendCap::Tokens(1000));
        let first = guard.try_reserve(t0, 600.0).unwrap();
        let in_flight = guard.try_reserve(t0, 300.0).unwrap();
        guard.record(t0 + Duration::from_secs(10), first, 600.0);
        assert_eq!(guard.window_end(), Some(t0 + HOUR));
        assert_eq!(
            guard.try_reserve(t0 + HOUR - Duration::from_secs(1), 200.0),
            None
        );

        // The next hour: spend starts from zero, the in-flight 300 stays reserved.
        let t1 = t0 + HOUR;
        assert_eq!(guard.spent(t1), 0.0);
        assert_eq!(guard.reserved(), 300.0);
        assert_eq!(guard.remaining(t1), 700.0);
        // It is recorded in the window it ends in.
        guard.record(t1 + Duration::from_secs(5), in_flight, 250.0);
        assert_eq!(guard.spent(t1), 250.0);

        // Windows stay aligned to the first: 3.5 hours in is the window starting at 3 hours.
        let t3 = t0 + HOUR * 3 + HOUR / 2;
        assert_eq!(guard.spent(t3), 0.0);
        assert_eq!(guard.window_end(), Some(t0 + HOUR * 4));
        // A time before the window (clocks passed in out of order) changes nothing.
        let r = guard.try_reserve(t3, 100.0).unwrap();
        guard.record(t1, r, 100.0);
        assert_eq!(guard.spent(t3), 100.0);
    }

    #[test]
    fn bad_amounts() {
        let t0 = Instant::now();
        let mut guard = SpendGuard::new(SpendCap::Usd(1.0), Duration::from_secs(60));
        assert_eq!(guard.try_reserve(t0, f64::NAN), None);
        assert_eq!(guard.try_reserve(t0, -0.1), None);
        assert_eq!(guard.try_reserve(t0, f64::INFINITY), None);
        assert_eq!(guard.try_reserve(t0, 1.5), None);
        let r = guard.try_reserve(t0, 0.3).unwrap();
        assert_eq!(r.amount(), 0.3);
        guard.record(t0, r, f64::NAN);
        assert_eq!(guard.spent(t0), 0.3);
        assert_eq!(SpendCap::Usd(1.0).unit(), "usd");
        assert_eq!(SpendCap::Tokens(5).unit(), "tokens");
        assert_eq!(SpendCap::Tokens(5).limit(), 5.0);
    }

    #[test]
    #[should_panic(expected = "longer than 0")]
    fn zero_window_panics() {
        let _ = SpendGuard::new(SpendCap::Tokens(1), Duration::ZERO);
    }
}
