//! Ordering concurrent requests: a test holds a lock in a transaction of its own, lets requests
//! queue behind it one by one (seen in `pg_stat_activity`), then lets go, so the interleaving
//! under test is the one that runs rather than one a scheduler may or may not pick.
use std::time::Duration;

use crate::app::TestApp;
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

/// Runs `request` while the test holds the `users` row of `user_id`; once the request queues
/// behind it on `statement`, sets the user's password hash to `password_hash` (a password change
/// committing meanwhile) and lets go. What `request` returned.
pub fn with_password_changed_meanwhile<T: Send>(
    app: &TestApp,
    user_id: i64,
    statement: &str,
    password_hash: &str,
    request: impl FnOnce() -> T + Send,
) -> T {
    let mut database = app.database();
    let mut holder = database.transaction().unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).unwrap();
    let mut observer = app.database();
    std::thread::scope(|scope| {
        let answer = scope.spawn(request);
        wait_until_queued(&mut observer, holder_pid, statement, 1, statement, Duration::from_secs(30));
        holder.execute("UPDATE users SET password_hash = $1 WHERE id = $2", &[&password_hash, &user_id]).unwrap();
        holder.commit().unwrap();
        answer.join().unwrap()
    })
}
