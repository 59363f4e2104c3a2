//! Money movements (deposits, payouts, fees, transfers and batches, postings, reversals, FX conversions) and the journal of transactions.

use super::*;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletAmount {
    pub wallet: String,
    /// Decimal string in the wallet's currency.
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    /// Optional; must be the wallet's currency.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Deposits only: EXTERNAL (default) or OPENING.
    pub source: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/deposits", context_path = "/coffer/v1", tag = "movements", request_body = WalletAmount,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn deposit(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let a = caller.wallet_ref(&s.store, path_id("account", &b.wallet)?).await?;
    let source = match b.source.as_deref() {
        None => SystemAccount::External,
        Some(x) => x.parse().map_err(bad_name("source"))?,
    };
    let op = MoneyOp::Deposit { account: a.id, amount: money(&s, &a, &b.amount, b.currency.as_deref()).await?, source };
    movement(&s, &caller, &headers, b.metadata, op).await
}

/// `wallet` and `amount` of a request that takes no `source`.
pub(super) async fn plain_amount(
    s: &AppState,
    caller: &Caller,
    b: &WalletAmount,
    what: &str,
) -> Result<(Place, Money), ApiError> {
    let a = caller.wallet_ref(&s.store, path_id("account", &b.wallet)?).await?;
    if b.source.is_some() {
        return Err(ApiError::invalid("invalid_argument", format!("{what} take no source")).param("source"));
    }
    let m = money(s, &a, &b.amount, b.currency.as_deref()).await?;
    Ok((a, m))
}

#[utoipa::path(post, path = "/payouts", context_path = "/coffer/v1", tag = "movements", request_body = WalletAmount,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn payout(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let (a, amount) = plain_amount(&s, &caller, &b, "payouts").await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Payout { account: a.id, amount }).await
}

#[utoipa::path(post, path = "/fees", context_path = "/coffer/v1", tag = "movements", request_body = WalletAmount,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn fee(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let (a, amount) = plain_amount(&s, &caller, &b, "fees").await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Fee { account: a.id, amount }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub from: String,
    pub to: String,
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/transfers", context_path = "/coffer/v1", tag = "movements", request_body = NewTransfer,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn transfer(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewTransfer>,
) -> Result<Response, ApiError> {
    let from = caller.wallet_ref(&s.store, path_id("account", &b.from)?).await?;
    let to = caller.wallet_ref(&s.store, path_id("account", &b.to)?).await?;
    let amount = money(&s, &from, &b.amount, b.currency.as_deref()).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Transfer { from: from.id, to: to.id, amount }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchTransfer {
    pub idempotency_key: String,
    pub from: String,
    pub to: String,
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// 1 to 8192 transfers.
    pub transfers: Vec<BatchTransfer>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchItemView {
    pub index: usize,
    /// accepted or refused.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<MovementView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchView {
    pub accepted: usize,
    pub refused: usize,
    /// In request order.
    pub results: Vec<BatchItemView>,
}

/// One command of a batch, checked: the caller reaches both wallets and the amount parses.
pub(super) async fn batch_command(s: &AppState, caller: &Caller, t: BatchTransfer) -> Result<Command, ApiError> {
    let from = caller.wallet_ref(&s.store, path_id("account", &t.from)?).await?;
    let to = caller.wallet_ref(&s.store, path_id("account", &t.to)?).await?;
    let amount = money(s, &from, &t.amount, t.currency.as_deref()).await?;
    Ok(Command::Move(Movement {
        platform: caller.acting.platform,
        idempotency_key: t.idempotency_key,
        metadata: t.metadata.unwrap_or_default(),
        op: MoneyOp::Transfer { from: from.id, to: to.id, amount },
    }))
}

pub(super) async fn batch_item(s: AppState, caller: Caller, t: BatchTransfer) -> Result<MovementView, ApiError> {
    let cmd = batch_command(&s, &caller, t).await?;
    Ok(movement_response(&s, &caller, run(&s, cmd).await?).await?.1)
}

#[utoipa::path(post, path = "/transfers/batch", context_path = "/coffer/v1", tag = "movements", request_body = Batch,
    description = "Up to 8192 transfers, each with its own idempotency key, each accepted or refused on its own.",
    responses((status = 200, body = BatchView), WriteErrors))]
pub(super) async fn transfer_batch(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<Batch>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let n = b.transfers.len();
    if n == 0 || n > MAX_BATCH {
        return Err(ApiError::invalid("invalid_argument", format!("a batch holds 1 to {MAX_BATCH} transfers"))
            .param("transfers"));
    }
    // Submitted together, so they share group commits.
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in b.transfers.into_iter().enumerate() {
        let (s, caller) = (s.clone(), caller.clone());
        set.spawn(async move { (i, batch_item(s, caller, t).await) });
    }
    let mut results: Vec<Option<BatchItemView>> = (0..n).map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        let (i, r) = done.map_err(|e| {
            tracing::error!(error = %e, "batch item task failed");
            ApiError::internal()
        })?;
        results[i] = Some(match r {
            Ok(v) => BatchItemView { index: i, status: "accepted".into(), result: Some(v), error: None },
            Err(e) => BatchItemView { index: i, status: "refused".into(), result: None, error: Some(e.body()) },
        });
    }
    let results: Vec<BatchItemView> = results.into_iter().flatten().collect();
    let accepted = results.iter().filter(|r| r.result.is_some()).count();
    Ok(Json(BatchView { accepted, refused: n - accepted, results }).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingReq {
    /// A wallet id, or SYSTEM_<EXTERNAL|FEES|FX_CLEARING|OPENING>:<CUR> (platform keys only).
    pub account: String,
    /// Signed decimal: negative debits, positive credits.
    #[schema(pattern = "^-?[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransaction {
    /// 1 to 64 postings summing to zero per currency.
    pub postings: Vec<PostingReq>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/transactions", context_path = "/coffer/v1", tag = "movements", request_body = NewTransaction,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn post_transaction(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewTransaction>,
) -> Result<Response, ApiError> {
    let max = coffer_core::command::limits::MAX_POSTINGS;
    if b.postings.is_empty() || b.postings.len() > max {
        return Err(
            ApiError::invalid("invalid_argument", format!("a transaction holds 1 to {max} postings")).param("postings")
        );
    }
    let mut postings = Vec::with_capacity(b.postings.len());
    for p in b.postings {
        let currency: CurrencyCode = p.currency.parse().map_err(|e| ApiError::from(e).param("currency"))?;
        let (account, exp) = match p.account.strip_prefix("SYSTEM_") {
            Some(rest) => {
                if caller.acting.id != caller.acting.platform {
                    return Err(ApiError::not_found("account", &p.account));
                }
                let (kind, cur) = rest.split_once(':').unwrap_or((rest, ""));
                let kind: SystemAccount = kind.parse().map_err(bad_name("account"))?;
                let cur: CurrencyCode = cur.parse().map_err(|e| ApiError::from(e).param("account"))?;
                let exp = s
                    .store
                    .exponent(caller.acting.platform, cur)
                    .await
                    .map_err(|e| ApiError::from(e).param("account"))?;
                (AccountRef::System(kind, cur), exp)
            }
            None => {
                let a = caller.wallet_ref(&s.store, path_id("account", &p.account)?).await?;
                (AccountRef::Id(a.id), a.exponent)
            }
        };
        let minor = parse_minor(&p.amount, exp).map_err(|e| ApiError::from(e).param("amount"))?;
        postings.push(Posting { account, amount: Money::new(minor, currency) });
    }
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Postings { postings }).await
}

#[derive(Serialize, ToSchema)]
pub struct TransactionsView {
    pub data: Vec<TransactionView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/transactions", context_path = "/coffer/v1", tag = "movements",
    description = "Journal entries, newest first: of one wallet, or (platform keys) of the whole platform.",
    params(ListQuery), responses((status = 200, body = TransactionsView), ReadErrors))]
pub(super) async fn list_transactions(
    State(s): State<AppState>,
    caller: Caller,
    Q(q): Q<ListQuery>,
) -> Result<Json<TransactionsView>, ApiError> {
    let limit = page_limit(q.limit)?;
    let kind: Option<EntryKind> = q.kind.as_ref().map(|k| k.parse()).transpose().map_err(bad_name("kind"))?;
    let (after, mut before) = window(&s, &q).await?;
    let wallet = match &q.wallet {
        Some(w) => Some(caller.wallet_ref(&s.store, path_id("account", w)?).await?),
        None if caller.acting.id == caller.acting.platform => None,
        None => {
            return Err(ApiError::invalid(
                "invalid_argument",
                "give wallet=<id>; only a platform lists all its transactions",
            )
            .param("wallet"))
        }
    };
    // Fetch pages until `limit` entries of the kind are found or the window is exhausted; the
    // cursor is the last seq examined, so filtered pages never skip or repeat.
    let mut out = Vec::new();
    let mut last = None;
    let mut exhausted = false;
    for _ in 0..20 {
        let page = coffer_store::Page { before, after, limit };
        let batch: Vec<Entry> = match &wallet {
            Some(a) => {
                let seqs = s.store.history(a.id, page).await?.iter().map(|h| h.seq).collect();
                s.store.entries_at(seqs).await?
            }
            None => s.store.entries(caller.acting.platform, page).await?,
        };
        let n = batch.len();
        for e in batch {
            last = Some(e.seq);
            before = Some(e.seq);
            if kind.is_none_or(|k| e.kind == k) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        if n < limit {
            exhausted = true;
            break;
        }
        if out.len() == limit {
            break;
        }
    }
    let next_cursor = if exhausted && out.len() < limit { None } else { last.map(|s| format!("s{s}")) };
    let mut data = Vec::with_capacity(out.len());
    for e in &out {
        let reach = caller.entry_reach(&s.store, e).await?;
        data.push(render::entry(&*s.store, e, &reach).await?);
    }
    Ok(Json(TransactionsView { data, next_cursor }))
}

#[utoipa::path(get, path = "/transactions/{seq}", context_path = "/coffer/v1", tag = "movements",
    params(("seq" = String, Path, description = "transaction sequence number")),
    responses((status = 200, body = TransactionView), ReadErrors))]
pub(super) async fn transaction(
    State(s): State<AppState>,
    caller: Caller,
    Path(seq): Path<String>,
) -> Result<Json<TransactionView>, ApiError> {
    let seq: u64 = path_id("transaction", &seq)?;
    let (e, reach) = caller.entry(&s.store, seq).await?;
    Ok(Json(render::entry(&*s.store, &e, &reach).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReversal {
    /// The sequence number of the transaction to reverse.
    pub transaction: u64,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/reversals", context_path = "/coffer/v1", tag = "movements", request_body = NewReversal,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn reversal(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewReversal>,
) -> Result<Response, ApiError> {
    caller.entry_to_change(&s.store, b.transaction).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Reverse { seq: b.transaction }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversion {
    pub from: String,
    pub to: String,
    /// In the source wallet's currency.
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    /// Target units per source unit, an exact decimal. Omitted: the platform's stored rate now
    /// (direct, inverse or through the pivot; a derived rate is rounded half to even to 10
    /// decimals), recorded on the transaction with its source. A missing or stale stored rate
    /// refuses the conversion (422 `rate_missing` / `rate_stale`).
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub rate: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/fx/conversions", context_path = "/coffer/v1", tag = "movements", request_body = NewConversion,
    description = "Between two wallets of one owner; the target amount is rounded half to even at its minor unit.",
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn fx_conversion(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewConversion>,
) -> Result<Response, ApiError> {
    let from = caller.wallet_ref(&s.store, path_id("account", &b.from)?).await?;
    let to = caller.wallet_ref(&s.store, path_id("account", &b.to)?).await?;
    let amount = money(&s, &from, &b.amount, None).await?;
    let (rate, rate_source) = match b.rate {
        Some(r) => (r.parse().map_err(|e| ApiError::from(e).param("rate"))?, None),
        None => {
            let (rate, source) = crate::rates::stored_rate(&s, from.platform, from.currency, to.currency).await?;
            (rate, Some(source))
        }
    };
    let op = MoneyOp::FxConvert { from: from.id, to: to.id, amount, rate, rate_source };
    movement(&s, &caller, &headers, b.metadata, op).await
}
