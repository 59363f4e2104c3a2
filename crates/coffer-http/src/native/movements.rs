//! Money movements (deposits, payouts, fees, transfers and batches, postings, reversals, FX conversions) and the journal of transactions.

use super::*;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"wallet": "0193a4b2-7c1e-7d2a-9f00-1c2b3d4e5f60", "amount": "125.50", "currency": "USD", "metadata": {"reference": "order-1001"}}))]
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
    let source = b.source.as_deref().map(str::parse).transpose().map_err(bad_name("source"))?;
    one_wallet(&s, &caller, &headers, b, OneWallet::Deposit(source)).await
}

/// A movement of one wallet and an amount; only deposits take a `source`.
pub(super) async fn one_wallet(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    b: WalletAmount,
    kind: OneWallet,
) -> Result<Response, ApiError> {
    let wallet = path_id("account", &b.wallet)?;
    if b.source.is_some() && !matches!(kind, OneWallet::Deposit(_)) {
        let what = match kind {
            OneWallet::Payout => "payouts",
            OneWallet::Fee => "fees",
            _ => "incoming credits",
        };
        return Err(ApiError::invalid("invalid_argument", format!("{what} take no source")).param("source"));
    }
    let r = service::movements::WalletAmount { wallet, amount: &b.amount, currency: b.currency.as_deref() };
    let planned = service::movements::one_wallet(&s.store, caller.into(), kind, r).await?;
    movement(s, caller, headers, b.metadata, planned).await
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
    one_wallet(&s, &caller, &headers, b, OneWallet::Payout).await
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
    one_wallet(&s, &caller, &headers, b, OneWallet::Fee).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "0193a4b2-7c1e-7d2a-9f00-1c2b3d4e5f60", "to": "0193a4b2-7c1e-7d2a-9f00-1c2b3d4e5f61", "amount": "20.00", "metadata": {"reference": "settle-2026-12-05"}}))]
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
    let planned = planned_transfer(&s, &caller, &b.from, &b.to, &b.amount, b.currency.as_deref()).await?;
    movement(&s, &caller, &headers, b.metadata, planned).await
}

async fn planned_transfer(
    s: &AppState,
    caller: &Caller,
    from: &str,
    to: &str,
    amount: &str,
    currency: Option<&str>,
) -> Result<Planned, ApiError> {
    let from = path_id("account", from)?;
    let to = path_id("account", to)?;
    Ok(service::movements::transfer(&s.store, caller.into(), from, to, amount, currency).await?)
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

/// One transfer of a batch, checked (the caller reaches both wallets and the amount parses)
/// and committed under its own idempotency key.
pub(super) async fn batch_item(s: AppState, caller: Caller, t: BatchTransfer) -> Result<MovementView, ApiError> {
    let planned = planned_transfer(&s, &caller, &t.from, &t.to, &t.amount, t.currency.as_deref()).await?;
    let metadata = t.metadata.unwrap_or_default();
    Ok(service::commit(&s.store, (&caller).into(), planned, t.idempotency_key, metadata).await?.view)
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
    let reqs: Vec<service::movements::PostingReq> = b
        .postings
        .iter()
        .map(|p| service::movements::PostingReq { account: &p.account, amount: &p.amount, currency: Some(&p.currency) })
        .collect();
    let planned = service::movements::postings(&s.store, (&caller).into(), caller.acting.platform, &reqs).await?;
    movement(&s, &caller, &headers, b.metadata, planned).await
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
    let w = window(&q, limit)?;
    let wallet = q.wallet.as_deref().map(|w| path_id("account", w)).transpose()?;
    let tag = match (q.metadata_key.as_deref(), q.metadata_value.as_deref(), q.reference.as_deref()) {
        (None, None, None) => None,
        (Some(k), Some(v), None) => Some((k, v)),
        (None, None, Some(r)) => Some(("reference", r)),
        _ => {
            return Err(ApiError::invalid(
                "invalid_argument",
                "give metadata_key with metadata_value, or reference (not both)",
            )
            .param("metadata_key"))
        }
    };
    let search = service::journal::Search {
        kind,
        tag,
        min_amount: q.min_amount.as_deref(),
        max_amount: q.max_amount.as_deref(),
    };
    Ok(Json(service::journal::transactions(&s.store, (&caller).into(), wallet, search, w).await?))
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
    Ok(Json(service::journal::transaction(&s.store, (&caller).into(), seq).await?))
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
    let planned = service::movements::reversal(&s.store, (&caller).into(), b.transaction).await?;
    movement(&s, &caller, &headers, b.metadata, planned).await
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
    let wallets = (path_id("account", &b.from)?, path_id("account", &b.to)?);
    let rate = match b.rate.as_deref() {
        Some(r) => RateChoice::Given(r.parse().map_err(|e| ApiError::from(e).param("rate"))?),
        None => RateChoice::Stored(s.fx_policy()),
    };
    let planned = service::movements::conversion(&s.store, (&caller).into(), wallets, &b.amount, rate).await?;
    movement(&s, &caller, &headers, b.metadata, planned).await
}
