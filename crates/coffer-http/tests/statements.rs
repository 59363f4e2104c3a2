//! Statements against a reference model: a random walk of deposits, transfers, payouts and
//! holds on one wallet, with the instant between every two operations noted; a statement over
//! any two of those instants opens and closes at the model's balances there, lists exactly the
//! movements in between (paged), and its movements and totals add up to the difference. The
//! CSV form carries the same rows, oldest first.

mod support;

use coffer_core::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::{code, settled, Server};
use support::Rng;

/// "12.34" in cents.
fn cents(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("{v}"));
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (i, f) = s.split_once('.').unwrap_or((s, "00"));
    let c = i.parse::<i64>().unwrap() * 100 + format!("{f:0<2}").parse::<i64>().unwrap();
    if neg {
        -c
    } else {
        c
    }
}

fn money(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_between_any_two_instants_matches_the_model() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let (a, b) = (s.wallet(m, WalletType::Operating, "USD").await, s.wallet(m, WalletType::Reserve, "USD").await);
    let mut rng = Rng(0x5eed_1234_abcd);
    // Model of wallet a: (posted, held) after each step, the instant after it, and its lines.
    let (mut posted, mut held, mut holds) = (0i64, 0i64, Vec::<(String, i64)>::new());
    let mut marks = vec![(now(), 0i64, 0i64, 0usize)];
    let mut lines = 0usize;
    for i in 0..60 {
        let x = 1 + rng.next(5000) as i64;
        let idem = format!("op{i}");
        let (path, body, dp, dh) = match rng.next(5) {
            0 | 1 => ("/deposits", json!({"wallet": a, "amount": money(x)}), x, 0),
            2 if posted - held >= x => ("/transfers", json!({"from": a, "to": b, "amount": money(x)}), -x, 0),
            3 if posted - held >= x => ("/payouts", json!({"wallet": a, "amount": money(x)}), -x, 0),
            4 if posted - held >= x => ("/holds", json!({"wallet": a, "amount": money(x)}), 0, x),
            _ if !holds.is_empty() => {
                let (h, amount) = holds.remove(0);
                (Box::leak(format!("/holds/{h}/release").into_boxed_str()) as &str, json!({}), 0, -amount)
            }
            _ => ("/deposits", json!({"wallet": a, "amount": money(x)}), x, 0),
        };
        let (st, v) = s.post(path, &key, Some(&idem), body).await;
        assert!(st.is_success(), "{path}: {v}");
        if path == "/holds" {
            holds.push((v["hold"]["id"].as_str().unwrap().to_string(), x));
        }
        (posted, held, lines) = (posted + dp, held + dh, lines + 1);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        marks.push((now(), posted, held, lines));
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let (_, last) = s.get("/transactions?limit=1", &key).await;
    settled(&s, &key, last["data"][0]["seq"].as_u64().unwrap()).await;

    for _ in 0..20 {
        let i = rng.next(marks.len() as u64 - 1) as usize;
        let j = i + 1 + rng.next((marks.len() - i - 1) as u64) as usize;
        let ((from, p0, h0, l0), (to, p1, h1, l1)) = (&marks[i], &marks[j]);
        let q = format!("from={from}&to={to}&totals=true&limit=7");
        let (mut cursor, mut moves) = (String::new(), Vec::new());
        let first = loop {
            let (st, v) = s.get(&format!("/wallets/{a}/statement?{q}{cursor}"), &key).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            moves.extend(v["movements"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break v,
            }
        };
        let v = first;
        assert_eq!((cents(&v["opening"]["posted"]), cents(&v["opening"]["held"])), (*p0, *h0), "opening at {from}");
        assert_eq!((cents(&v["closing"]["posted"]), cents(&v["closing"]["held"])), (*p1, *h1), "closing at {to}");
        assert_eq!(moves.len(), l1 - l0, "movements between {from} and {to}");
        let sum = |f: &str| moves.iter().map(|m| cents(&m[f])).sum::<i64>();
        assert_eq!(sum("posted"), p1 - p0);
        assert_eq!(sum("held"), h1 - h0);
        // Running balances chain, newest first.
        let mut after = *p1;
        for mv in &moves {
            assert_eq!(cents(&mv["posted_after"]), after);
            after -= cents(&mv["posted"]);
        }
        assert_eq!(after, *p0);
        let totals = v["totals"].as_array().unwrap();
        let t = |f: &str| totals.iter().map(|k| cents(&k[f])).sum::<i64>();
        assert_eq!(t("posted_in") - t("posted_out"), p1 - p0);
        assert_eq!(totals.iter().map(|k| k["count"].as_u64().unwrap()).sum::<u64>() as usize, moves.len());

        // The same period as CSV: header, opening, the movements oldest first, closing.
        let (st, csv, h) = s
            .call(
                "GET",
                &format!("/wallets/{a}/statement?from={from}&to={to}"),
                Some(&key),
                None,
                &[("Accept", "text/csv")],
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
        let rows: Vec<Vec<String>> =
            csv.as_str().unwrap().lines().map(|l| l.split(',').map(String::from).collect()).collect();
        assert_eq!(rows.len(), moves.len() + 3);
        assert_eq!((rows[1][0].as_str(), cents(&json!(rows[1][7]))), ("opening", *p0));
        assert_eq!((rows[rows.len() - 1][0].as_str(), cents(&json!(rows[rows.len() - 1][7]))), ("closing", *p1));
        let oldest_first: Vec<&str> = rows[2..rows.len() - 1].iter().map(|r| r[1].as_str()).collect();
        let mut expected: Vec<String> = moves.iter().map(|m| m["transaction"].to_string()).collect();
        expected.reverse();
        assert_eq!(oldest_first, expected);
    }

    // The owner's statement: both wallets, the operating one at the model's ends.
    let ((from, p0, _, _), (to, p1, _, _)) = (&marks[0], &marks[marks.len() - 1]);
    let (st, v) = s.get(&format!("/owners/{m}/statement?currency=USD&from={from}&to={to}"), &key).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ws = v["wallets"].as_array().unwrap();
    assert_eq!(ws.len(), 2);
    let op = ws.iter().find(|w| w["wallet_type"] == "OPERATING").unwrap();
    assert_eq!((cents(&op["opening"]["posted"]), cents(&op["closing"]["posted"])), (*p0, *p1));
    assert_eq!(cents(&op["posted_change"]), p1 - p0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_periods_and_outsiders_are_refused() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let (m, n) = (s.merchant(p, "M").await, s.merchant(p, "N").await);
    let w = s.wallet(m, WalletType::Operating, "USD").await;
    let nkey = s.key(n, KeyScope::ReadOnly).await;
    let mkey = s.key(m, KeyScope::ReadOnly).await;
    for (q, param) in [
        ("from=2026-01-01&to=2025-12-01", "to"),
        ("from=2025-01-01&to=2026-01-03", "to"),
        ("from=2026-01-01&to=2026-01-02&tz=Mars/Olympus", "tz"),
        ("from=yesterday&to=2026-01-02", "from"),
        ("from=2026-01-01&to=2026-01-02&limit=1001", "limit"),
    ] {
        let (st, v) = s.get(&format!("/wallets/{w}/statement?{q}"), &mkey).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"]["param"], param, "{q}: {v}");
    }
    // Another merchant's wallet does not exist for N.
    let (st, v) = s.get(&format!("/wallets/{w}/statement?from=2026-01-01&to=2026-01-02"), &nkey).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "account_not_found"), "{v}");
    let (st, _) = s.get(&format!("/owners/{m}/statement?currency=USD&from=2026-01-01&to=2026-01-02"), &nkey).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A whole day in a zone: New York's 2026-03-08 is 23 hours long (DST begins).
    let (st, v) =
        s.get(&format!("/wallets/{w}/statement?from=2026-03-08&to=2026-03-08&tz=America/New_York"), &mkey).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["from"].as_str().unwrap(), v["to"].as_str().unwrap()),
        ("2026-03-08T05:00:00.000000Z", "2026-03-09T04:00:00.000000Z")
    );
}
