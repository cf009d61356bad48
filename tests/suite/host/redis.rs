//! `spin:redis@3.0.0` and the Redis trigger.

use std::time::{Duration, Instant};

use sendinchat_tests::processes::{HostProcess, RedisServer, TestServices};
use serde_json::{Value, json};

use super::{Names, conformance_options_with, get_json, names, own_host, shared_app};

/// Messages in the burst the ordering test publishes.
const BURST: usize = 500;

fn probe(base_url: &str, path: &str) -> Value {
    let (status, body) = get_json(&format!("{base_url}/probe/redis/{path}"));
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Waits until the list `key` on `redis_url` holds `count` entries, and returns them.
fn recorded(redis_url: &str, key: &str, count: usize, timeout: Duration) -> Vec<String> {
    let mut connection = redis::Client::open(redis_url).unwrap().get_connection().unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        let entries: Vec<String> = redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(&mut connection).unwrap();
        if entries.len() >= count || Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn delete_key(redis_url: &str, key: &str) {
    let mut connection = redis::Client::open(redis_url).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("DEL").arg(key).query(&mut connection).unwrap();
}

#[test]
fn every_command_answers_as_under_spin() {
    let prefix = format!("host-commands-{}", std::process::id());
    let body = probe(shared_app().base_url(), &format!("commands/{prefix}"));
    assert_eq!(body["get"], "value");
    assert_eq!(body["get_missing"], Value::Null);
    assert_eq!(body["incr"], json!([1, 2]));
    assert!(body["incr_not_a_number"].as_str().unwrap().contains("not an integer"), "{body}");
    assert_eq!(body["sadd"], 3);
    assert_eq!(body["smembers"], json!(["a", "b", "c"]));
    assert_eq!(body["srem"], 1);
    assert!(body["sadd_wrong_type"].as_str().unwrap().contains("WRONGTYPE"), "{body}");
    assert_eq!(body["execute_mset"], json!(["status:OK"]));
    assert_eq!(body["execute_mget"], json!(["binary:1", "nil"]));
    assert_eq!(body["execute_append"], json!(["int64:6"]));
    assert_eq!(body["del"], 5);
}

/// The local host shares one Redis connection between requests (Spin opens one per `open`), so
/// commands that change a connection's state or block it are refused there rather than carried
/// over to other requests; other commands still run. (Host only: Spin runs them.)
#[test]
fn commands_that_change_or_block_the_shared_connection_are_refused() {
    let base_url = own_host().base_url();
    let key = format!("host-refused-{}", std::process::id());
    for command in
        ["SELECT/1", "select/1", "MULTI", "CLIENT/REPLY/OFF", "HELLO/3", "SUBSCRIBE/x", "WATCH/k", "BLPOP/k/1", "SYNC"]
            .into_iter()
            .map(str::to_owned)
            .chain([format!("XREAD/BLOCK/0/STREAMS/{key}/$")])
    {
        let body = probe(base_url, &format!("execute/{command}"));
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{command} ran: {body}"));
        assert!(error.contains("shares between requests"), "{command}: {error}");
    }
    let body = probe(base_url, &format!("execute/SET/{key}/kept"));
    assert_eq!(body["results"], json!(["status:OK"]), "{body}");
    let body = probe(base_url, &format!("execute/GET/{key}"));
    assert_eq!(body["results"], json!(["binary:kept"]), "database 0 still: {body}");
    let body = probe(base_url, &format!("execute/XREAD/STREAMS/{key}-stream/0"));
    assert!(body["error"].is_null(), "a stream read that does not block runs: {body}");
    let body = probe(base_url, "execute/XREAD/COUNT/1/STREAMS/BLOCK/0");
    assert!(body["error"].is_null(), "a stream named BLOCK is no option: {body}");
}

#[test]
fn an_undeclared_redis_host_is_refused() {
    let body = probe(shared_app().base_url(), "undeclared");
    assert_eq!(body["error"], "Error::InvalidAddress");
}

#[test]
fn a_burst_of_messages_is_delivered_exactly_once_in_order() {
    let redis_url = TestServices::from_env().redis_url;
    let names = names();
    delete_key(&redis_url, &names.record_key);
    let body = probe(shared_app().base_url(), &format!("publish/{}/{BURST}", names.events_channel));
    assert_eq!(body["published"], BURST);
    let entries = recorded(&redis_url, &names.record_key, BURST, Duration::from_secs(60));
    let expected: Vec<String> = (0..BURST).map(|n| n.to_string()).collect();
    assert_eq!(entries, expected);
    // Nothing arrives twice, even a little later: messages arrive in order, so one published after
    // the burst is the next and last one recorded.
    publish(&redis_url, &names.events_channel, "after the burst");
    let entries = recorded(&redis_url, &names.record_key, BURST + 1, Duration::from_secs(20));
    assert_eq!(entries[..BURST], expected);
    assert_eq!(entries[BURST..], ["after the burst"]);
}

fn publish(redis_url: &str, channel: &str, message: &str) {
    let mut connection = redis::Client::open(redis_url).unwrap().get_connection().unwrap();
    let _: i64 = redis::cmd("PUBLISH").arg(channel).arg(message).query(&mut connection).unwrap();
}

#[test]
fn the_trigger_resumes_after_redis_restarts() {
    let mut redis = RedisServer::start().unwrap();
    let names = Names::unique();
    let host = HostProcess::start(&conformance_options_with(Some(&redis.url()), &names).unwrap()).unwrap();
    let (key, channel) = (&names.record_key, &names.events_channel);

    probe(host.base_url(), &format!("publish/{channel}/3"));
    assert_eq!(recorded(&redis.url(), key, 3, Duration::from_secs(20)), ["0", "1", "2"]);

    redis.stop().unwrap();
    host.wait_for_log("Redis trigger lost its connection", Duration::from_secs(20)).unwrap();
    redis.restart().unwrap();
    host.wait_for_log("Redis trigger reconnected", Duration::from_secs(30)).unwrap();

    // The restarted server is empty; messages published now must arrive.
    probe(host.base_url(), &format!("publish/{channel}/5"));
    assert_eq!(recorded(&redis.url(), key, 5, Duration::from_secs(20)), ["0", "1", "2", "3", "4"]);
}
