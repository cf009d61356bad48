//! Ordering concurrent requests: a test holds a lock in a transaction of its own, lets requests
//! queue behind it one by one (seen in `pg_stat_activity`), then lets go, so the interleaving
//! under test is the one that runs rather than one a scheduler may or may not pick.
use std::time::Duration;

use crate::wait;

/// How many backends running `statement` wait, directly or in a queue, behind one of `holders`
/// (the test's own lock holders: another test's backends running the same functions never wait
/// behind those).
pub fn backends_waiting_behind(observer: &mut postgres::Client, statement: &str, holders: &[i32]) -> i64 {
    let query = "WITH RECURSIVE behind(pid) AS ( \
                     SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && $2::int4[] \
                     UNION SELECT waiter.pid FROM pg_stat_activity AS waiter, behind \
                           WHERE behind.pid = ANY (pg_blocking_pids(waiter.pid))) \
                 SELECT count(*) FROM behind JOIN pg_stat_activity USING (pid) \
                 WHERE query LIKE '%' || $1 || '%'";
    observer.query_one(query, &[&statement, &holders]).unwrap().get(0)
}

/// Waits until `count` backends running `statement` queue behind `holder` (a backend's pid);
/// panics, naming `what`, if they do not within `timeout`.
pub fn wait_until_queued(
    observer: &mut postgres::Client,
    holder: i32,
    statement: &str,
    count: i64,
    what: &str,
    timeout: Duration,
) {
    let queued =
        wait::until(timeout, || (backends_waiting_behind(observer, statement, &[holder]) >= count).then_some(()));
    queued.unwrap_or_else(|| panic!("{what} never queued behind the test's lock"));
}
