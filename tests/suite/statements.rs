//! Statements (issue 18): `GET /fintech/statement` in JSON and CSV, whose opening and closing
//! balances and running balances agree with the ledger, and whose parameters are validated.
use sendinchat_tests::app::{AppOptions, Response, TestApp, TestUser, funded_pair_on_app_with, private_app};
use sendinchat_tests::ledger::assert_ledger_invariants;
use serde_json::{Value, json};

fn app() -> &'static TestApp {
    TestApp::shared()
}

fn statement(user: &TestUser, query: &str) -> Response {
    app().get(&format!("/fintech/statement?{query}"), Some(&user.token))
}

/// A whole year before any transfer the suite makes.
const LONG_AGO: &str = "from=2020-01-01&to=2020-12-31";

/// (yesterday, tomorrow) as dates, by the database's clock: they hold everything a test just did.
fn yesterday_and_tomorrow() -> (String, String) {
    let row = app()
        .database()
        .query_one(
            "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD'),
                    to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYY-MM-DD')",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

fn around_today() -> String {
    let (yesterday, tomorrow) = yesterday_and_tomorrow();
    format!("from={yesterday}&to={tomorrow}")
}

fn lines(statement: &Response) -> &Vec<Value> {
    statement.body["lines"].as_array().unwrap_or_else(|| panic!("no lines in {}", statement.text))
}

#[test]
fn a_statement_lists_every_movement_with_running_balances_that_match_the_ledger() {
    let (alice, bob) = (app().new_user(), app().new_user());
    app().fund(&alice, "50");
    let paid = app().transfer(&alice, &json!({"receiver_id": bob.id, "amount": "12.50", "note": "rent, \"June\""}));
    assert_eq!(paid.status, 201, "{}", paid.text);
    let refund = app().refund(&bob, paid.body["id"].as_i64().unwrap(), &json!({"amount": "2.50"}));
    assert_eq!(refund.status, 201, "{}", refund.text);
    let back = app().transfer(&bob, &json!({"receiver_id": alice.id, "amount": "1.00"}));
    assert_eq!(back.status, 201, "{}", back.text);

    let period = around_today();
    let shown = statement(&alice, &period);
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["currency"], "USD");
    assert_eq!(shown.body["opening_balance"], "0.00");
    let summary: Vec<(&str, &str, &str)> = lines(&shown)
        .iter()
        .map(|line| {
            (line["kind"].as_str().unwrap(), line["amount"].as_str().unwrap(), line["balance"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("deposit", "50.00", "50.00"),
            ("payment", "-12.50", "37.50"),
            ("refund", "2.50", "40.00"),
            ("payment", "1.00", "41.00")
        ]
    );
    assert_eq!(shown.body["closing_balance"], app().balance(&alice), "the closing balance is the ledger's");
    let payment_line = &lines(&shown)[1];
    assert_eq!(payment_line["counterparty_id"], bob.id);
    assert_eq!(payment_line["counterparty_username"], bob.username.as_str());
    assert_eq!(payment_line["note"], "rent, \"June\"");
    assert_eq!(lines(&shown)[2]["refund_of"], paid.body["id"]);

    // Bob's side of the same transfers, and an empty period before any of them.
    let bobs = statement(&bob, &period);
    assert_eq!(bobs.body["closing_balance"], app().balance(&bob));
    assert_eq!(lines(&bobs).len(), 3);
    let before = statement(&alice, LONG_AGO);
    assert_eq!((before.status, before.body["opening_balance"].as_str()), (200, Some("0.00")));
    assert!(lines(&before).is_empty());
    assert_eq!(before.body["closing_balance"], "0.00");
    assert_ledger_invariants(&mut app().database());
}

#[test]
fn a_statement_starting_after_some_movements_opens_with_the_balance_then() {
    let (alice, bob) = (app().new_user(), app().new_user());
    app().fund(&alice, "30");
    let cut: String = app()
        .database()
        .query_one("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", &[])
        .unwrap()
        .get(0);
    let paid = app().transfer(&alice, &json!({"receiver_id": bob.id, "amount": "4.25"}));
    assert_eq!(paid.status, 201, "{}", paid.text);
    let (yesterday, tomorrow) = yesterday_and_tomorrow();

    let shown = statement(&alice, &format!("from={cut}&to={tomorrow}"));
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["opening_balance"], "30.00");
    assert_eq!(lines(&shown).len(), 1, "{}", shown.text);
    assert_eq!(shown.body["closing_balance"], "25.75");
    assert_eq!(shown.body["closing_balance"], app().balance(&alice));
    // Until the cut: the deposit alone, closing where the later statement opens.
    let earlier = statement(&alice, &format!("from={yesterday}&to={cut}"));
    assert_eq!(
        (lines(&earlier).len(), earlier.body["closing_balance"].as_str()),
        (1, Some("30.00")),
        "{}",
        earlier.text
    );
}

#[test]
fn a_csv_statement_is_rfc_4180_with_opening_and_closing_rows() {
    // A username may start with `-`, which a spreadsheet reads as a formula (`-1-2` is -3).
    let bob_name = format!("-1-2-{}", sendinchat_tests::app::unique_suffix());
    let (alice, bob) = (app().new_user(), app().sign_up(&bob_name, "bob's long enough password"));
    app().fund(&alice, "20");
    let note = "=HYPERLINK(\"x\"), two\nlines";
    let paid = app().transfer(&alice, &json!({"receiver_id": bob.id, "amount": "3.00", "note": note}));
    assert_eq!(paid.status, 201, "{}", paid.text);

    let csv = statement(&alice, &format!("{}&format=csv&currency=USD", around_today()));
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8; header=present"));
    assert_eq!(csv.header("content-disposition"), Some("attachment; filename=\"statement-USD.csv\""));
    let records: Vec<&str> = csv.text.split_inclusive("\r\n").collect();
    assert_eq!(
        records[0],
        "created_at,transfer_id,kind,counterparty_id,counterparty_username,refund_of,note,amount,balance\r\n"
    );
    assert!(records[1].contains(",,opening_balance,,,,,,0.00\r\n"), "{:?}", records[1]);
    assert!(records[2].contains(",deposit,,,,,20.00,20.00\r\n"), "{:?}", records[2]);
    let expected_payment =
        format!(",payment,{},'{},,\"'=HYPERLINK(\"\"x\"\"), two\nlines\",-3.00,17.00\r\n", bob.id, bob.username);
    assert!(records[3].ends_with(&expected_payment), "{:?}", records[3]);
    assert!(records[4].contains(",,closing_balance,,,,,,17.00\r\n"), "{:?}", records[4]);
    assert_eq!(records.len(), 5, "{:?}", csv.text);
}

#[test]
fn statement_parameters_are_validated() {
    let alice = app().new_user();
    for (query, status, code) in [
        ("to=2026-02-01", 400, "missing_parameter"),
        ("from=2026-01-01", 400, "missing_parameter"),
        ("from=yesterday&to=2026-02-01", 400, "invalid_period"),
        ("from=2026-02-30&to=2026-03-01", 400, "invalid_period"),
        ("from=0000-01-01&to=0000-02-01", 400, "invalid_period"),
        // 9999-12-31T23:00-05:00 is in the year 10000 in UTC.
        ("from=9999-12-30&to=9999-12-31T23:00:00-05:00", 400, "invalid_period"),
        // Equal once cut to Postgres' microseconds.
        ("from=2026-01-01T00:00:00.0000001Z&to=2026-01-01T00:00:00.0000002Z", 400, "invalid_period"),
        ("from=2026-02-01&to=2026-01-01", 400, "invalid_period"),
        ("from=2026-01-01&to=2026-01-01", 400, "invalid_period"),
        ("from=2025-01-01&to=2026-01-03", 400, "period_too_long"),
        ("from=2026-01-01&to=2026-02-01&currency=usd", 400, "invalid_currency"),
        ("from=2026-01-01&to=2026-02-01&currency=XXX", 422, "unsupported_currency"),
        ("from=2026-01-01&to=2026-02-01&format=xlsx", 400, "invalid_format"),
    ] {
        let refused = statement(&alice, query);
        assert_eq!((refused.status, refused.code()), (status, code), "{query}: {}", refused.text);
    }
    let timestamps = statement(&alice, "from=2026-01-01T00:00:00%2B02:00&to=2026-12-31T23:59:59.5Z");
    assert_eq!(timestamps.status, 200, "{}", timestamps.text);
    assert_eq!(timestamps.body["from"], "2025-12-31T22:00:00.000000Z");
    // A currency the ledger holds but the caller has no account in: an empty statement at zero.
    let no_account = statement(&alice, "from=2026-01-01&to=2026-02-01&currency=EUR");
    assert_eq!(no_account.status, 200, "{}", no_account.text);
    assert_eq!((&no_account.body["currency"], &no_account.body["opening_balance"]), (&json!("EUR"), &json!("0.00")));
    assert!(lines(&no_account).is_empty());
    assert_eq!(no_account.body["closing_balance"], "0.00");
    let unauthenticated = app().get("/fintech/statement?from=2026-01-01&to=2026-02-01", None);
    assert_eq!(unauthenticated.status, 401);
}

/// A statement longer than one chunk of the streamed body (16 KiB) arrives whole: every line once,
/// in order, each balance the one before plus its amount, closing at the ledger's balance.
#[test]
fn a_long_statement_streams_whole_in_order() {
    let (alice, bob) = (app().new_user(), app().new_user());
    let deposit = app().fund(&alice, "1000").body["id"].as_i64().unwrap();
    let mut made: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let (alice, bob) = (&alice, &bob);
                scope.spawn(move || {
                    (0..40)
                        .map(|index| {
                            let note =
                                format!("line {worker}-{index}, with a note long enough to fill the chunks quickly");
                            let body = json!({"receiver_id": bob.id, "amount": "1.25", "note": note});
                            let paid = app().transfer(alice, &body);
                            assert_eq!(paid.status, 201, "{}", paid.text);
                            paid.body["id"].as_i64().unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().unwrap()).collect()
    });
    made.push(deposit);
    made.sort_unstable();
    let csv = statement(&alice, &format!("{}&format=csv", around_today()));
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.text.len() > 16 * 1024, "{} bytes", csv.text.len());
    let records: Vec<&str> = csv.text.split_inclusive("\r\n").collect();
    assert_eq!(records.len(), 1 + 1 + 161 + 1, "header, opening, every transfer, closing");
    assert!(records[163].contains(",,closing_balance,,,,,,800.00\r\n"), "{:?}", records[163]);

    let shown = statement(&alice, &format!("{}&format=json", around_today()));
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(shown.text.len() > 16 * 1024, "{} bytes", shown.text.len());
    let lines = lines(&shown);
    let listed: Vec<(String, i64)> = lines
        .iter()
        .map(|line| (line["created_at"].as_str().unwrap().to_owned(), line["transfer_id"].as_i64().unwrap()))
        .collect();
    assert!(listed.windows(2).all(|pair| pair[0] < pair[1]), "in (created_at, id) order, each once");
    let mut listed_ids: Vec<i64> = listed.iter().map(|(_, id)| *id).collect();
    listed_ids.sort_unstable();
    assert_eq!(listed_ids, made, "every transfer, none other");
    let cents = |text: &Value| -> i64 { text.as_str().unwrap().replace('.', "").parse().unwrap() };
    let mut balance = cents(&shown.body["opening_balance"]);
    for line in lines {
        balance += cents(&line["amount"]);
        assert_eq!(balance, cents(&line["balance"]), "{line}");
    }
    assert_eq!(shown.body["closing_balance"], app().balance(&alice));
    assert_eq!(shown.body["closing_balance"], "800.00");
}

/// A statement is read whole before it is sent, so it has a size limit: past
/// `statement_lines_max` lines, a 422 asks for a shorter period.
#[test]
fn a_statement_past_its_line_limit_is_refused() {
    let Some((app, alice, bob)) = funded_pair_on_app_with("statement_lines_max", "3", "10") else {
        return;
    };
    let today = |app: &TestApp, user: &TestUser| {
        let (yesterday, tomorrow) = yesterday_and_tomorrow();
        app.get(&format!("/fintech/statement?from={yesterday}&to={tomorrow}"), Some(&user.token))
    };
    for _ in 0..2 {
        assert_eq!(app.transfer(&alice, &json!({"receiver_id": bob.id, "amount": "1"})).status, 201);
    }
    let three = today(&app, &alice);
    assert_eq!((three.status, lines(&three).len()), (200, 3), "{}", three.text);
    assert_eq!(app.transfer(&alice, &json!({"receiver_id": bob.id, "amount": "1"})).status, 201);
    let four = today(&app, &alice);
    assert_eq!((four.status, four.code()), (422, "statement_too_large"), "{}", four.text);
}

/// Each statement reads up to `statement_lines_max` lines into memory, so each user has a budget
/// of them (`statements_per_minute`); a refused one is refused before any is read, and bad input
/// is answered before the budget is spent.
#[test]
fn statements_are_rate_limited_per_user() {
    let Some((app, alice, bob)) = funded_pair_on_app_with("statements_per_minute", "2", "10") else {
        return;
    };
    let today = |user: &TestUser, query: &str| app.get(&format!("/fintech/statement?{query}"), Some(&user.token));
    let period = around_today();
    assert_eq!(today(&alice, "from=2020-02-01&to=2020-01-01").status, 400, "bad input costs nothing");
    for _ in 0..2 {
        let answered = today(&alice, &period);
        assert_eq!(answered.status, 200, "{}", answered.text);
    }
    let refused = today(&alice, &period);
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"), "{}", refused.text);
    assert!(refused.header("retry-after").is_some(), "a 429 says when to retry");
    assert_eq!(today(&bob, &period).status, 200, "the budget is per user");
}

/// A client that does not read its statement holds no database connection: the rows are read
/// before the answer starts. (Streamed from the query instead, 64 such clients took the
/// component's whole pool, and under Spin, which sets no deadline, kept it.)
#[test]
fn a_statement_nobody_reads_holds_no_database_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = private_app(AppOptions::default().host_arg("--metrics-listen=127.0.0.1:0")) else {
        return;
    };
    let user = app.new_user();
    // Several MB of JSON: far more than the sockets between host and client can buffer.
    app.database()
        .execute(
            "SELECT fintech_deposit($1, 1, 'USD', repeat('n', 280), NULL) FROM generate_series(1, 8000)",
            &[&user.id],
        )
        .expect("deposits");
    let (yesterday, tomorrow) = yesterday_and_tomorrow();
    let address = app.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let request = format!(
        "GET /fintech/statement?from={yesterday}&to={tomorrow} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        user.token
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Reads the answer's first bytes (its status line), then nothing more.
    let (_unread, first_bytes) = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(address.parse().unwrap()).await.expect("connect");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut first_bytes = [0; 12];
        stream.read_exact(&mut first_bytes).await.expect("the answer starts");
        (stream, first_bytes)
    });
    assert_eq!(&first_bytes, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&first_bytes));
    let metrics_url = app.metrics_url().expect("the host serves metrics");
    let fintech_in_use = || {
        let metrics = ureq::get(metrics_url).call().unwrap().into_body().read_to_string().unwrap();
        let in_use: Vec<String> = metrics
            .lines()
            .filter(|line| line.starts_with("sendinchat_host_postgres_connections_in_use{") && line.contains("fintech"))
            .map(str::to_owned)
            .collect();
        assert!(!in_use.is_empty(), "fintech's pool is reported: {metrics}");
        in_use
    };
    let released = sendinchat_tests::wait::until(std::time::Duration::from_secs(5), || {
        Some(()).filter(|()| fintech_in_use().iter().all(|line| line.ends_with(" 0")))
    });
    assert!(released.is_some(), "a statement nobody reads holds {:?}", fintech_in_use());
}
