//! A bank operator's commands, through the bank node's operator API: accounts, payments,
//! quotes, returns and recalls, and the reads (`status`, `payments`, `balances`,
//! `statement`).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use corridor::model::{Currency, wire};
use corridor::net::operator_client;
use corridor::pb;
use corridor::tls::NetworkDir;

use super::output::{money, statement_text};
use super::{JsonArgs, PeriodArgs, json};

/// Where a bank node's operator API is and who we are.
#[derive(Args)]
pub struct BankArgs {
    /// Network directory (for the operator certificate).
    #[arg(long)]
    dir: PathBuf,
    /// The bank node's operator API URL, for example https://127.0.0.1:7001.
    #[arg(long)]
    bank: String,
}

/// The arguments of `corridor open-account`.
#[derive(Args)]
pub struct OpenAccountArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// Account id (1 to 34 characters: A-Z a-z 0-9 - . /).
    #[arg(long)]
    account: String,
    /// ISO 4217 currency code.
    #[arg(long)]
    currency: String,
    /// Holder's name.
    #[arg(long)]
    name: String,
    /// Opening cash deposit, decimal text such as 1000.00.
    #[arg(long, default_value = "0")]
    deposit: String,
}

/// The arguments of `corridor block-account`.
#[derive(Args)]
pub struct BlockAccountArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// Account id.
    #[arg(long)]
    account: String,
    /// Unblock instead.
    #[arg(long)]
    unblock: bool,
}

/// The arguments of `corridor pay`: an order given by its fields, or a document.
#[derive(Args)]
pub struct PayArgs {
    #[command(flatten)]
    pub(super) bank: BankArgs,
    /// Paying customer's account at this bank.
    #[arg(long, required_unless_present_any = DOCUMENT_FLAGS)]
    from: Option<String>,
    /// Beneficiary's bank (BIC).
    #[arg(long, required_unless_present_any = DOCUMENT_FLAGS)]
    to_bank: Option<String>,
    /// Beneficiary's account there.
    #[arg(long, required_unless_present_any = DOCUMENT_FLAGS)]
    to: Option<String>,
    /// Amount as decimal text, for example 1234.56.
    #[arg(long, required_unless_present_any = DOCUMENT_FLAGS)]
    amount: Option<String>,
    /// ISO 4217 currency code.
    #[arg(long, required_unless_present_any = DOCUMENT_FLAGS)]
    currency: Option<String>,
    /// Beneficiary's name (defaults to the account).
    #[arg(long)]
    name: Option<String>,
    /// Free text for the beneficiary.
    #[arg(long, default_value = "")]
    remittance: String,
    /// The beneficiary bank's currency (ISO 4217), when it is not --currency: the
    /// payment is converted at the rate of the hub's agreement in force for the pair
    /// (or at --quote's rate), and the beneficiary receives the converted amount.
    #[arg(long)]
    settlement_currency: Option<String>,
    /// A quote id from `corridor quote` for exactly this amount and pair: the payment
    /// is converted at the quote's rate, if it has not expired. Used once.
    #[arg(long, requires = "settlement_currency")]
    quote: Option<String>,
    /// Pay as a pacs.008.001.08 document says (ISO 20022 XML, with or without its AppHdr):
    /// the payment keeps its UETR, so paying the same file again pays once.
    #[arg(long, value_name = "FILE", conflicts_with_all = ORDER_FLAGS)]
    pub(super) xml: Option<PathBuf>,
    /// Pay as an MT103 says: translated to a pacs.008 by the CBPR+ mapping (what
    /// Corridor does not carry is told on stderr), then paid as with --xml.
    #[arg(long, value_name = "FILE", conflicts_with_all = ORDER_FLAGS, conflicts_with = "xml")]
    pub(super) mt103: Option<PathBuf>,
}

/// The flags that give a payment as a document.
const DOCUMENT_FLAGS: [&str; 2] = ["xml", "mt103"];

/// The flags of an order given by its fields, which a document replaces.
const ORDER_FLAGS: [&str; 9] =
    ["from", "to_bank", "to", "amount", "currency", "name", "remittance", "settlement_currency", "quote"];

/// The arguments of `corridor quote`.
#[derive(Args)]
pub struct QuoteArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// Amount the paying customer would send, decimal text, for example 100.00.
    #[arg(long)]
    amount: String,
    /// Its currency (ISO 4217), for example RUB.
    #[arg(long)]
    currency: String,
    /// The beneficiary bank's currency (ISO 4217), for example IRR.
    #[arg(long)]
    to_currency: String,
    #[command(flatten)]
    output: JsonArgs,
}

/// The arguments of `corridor return`.
#[derive(Args)]
pub struct ReturnArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// The payment's UETR.
    #[arg(long)]
    uetr: String,
    /// ISO return reason code: AC04 (closed account), AC01 (wrong account), AM05
    /// (duplicate), CUST (customer's request), ...
    #[arg(long)]
    reason: String,
    /// Free text for the sender.
    #[arg(long, default_value = "")]
    info: String,
}

/// The arguments of `corridor recall`.
#[derive(Args)]
pub struct RecallArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// The payment's UETR.
    #[arg(long)]
    uetr: String,
    /// ISO cancellation reason code: DUPL (duplicate), FRAD (fraud), CUST (customer's
    /// request), ...
    #[arg(long)]
    reason: String,
    /// Free text for the beneficiary's bank.
    #[arg(long, default_value = "")]
    info: String,
}

/// The arguments of `corridor answer-recall`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("answer").required(true).args(["accept", "refuse"])))]
pub struct AnswerRecallArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// The payment's UETR.
    #[arg(long)]
    uetr: String,
    /// Accept: return the funds to the sender.
    #[arg(long)]
    accept: bool,
    /// Refuse: keep the funds (needs --reason).
    #[arg(long, requires = "reason")]
    refuse: bool,
    /// Why it is refused (ISO code): NOAS (no answer from the customer), CUST
    /// (customer refuses), AC04 (closed account), AM04 (insufficient funds), ...
    #[arg(long, conflicts_with = "accept")]
    reason: Option<String>,
    /// Free text for the sender's bank.
    #[arg(long, default_value = "")]
    info: String,
}

/// The arguments of `corridor status`.
#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// The payment's UETR.
    uetr: String,
    #[command(flatten)]
    output: JsonArgs,
}

/// The arguments of `corridor balances`.
#[derive(Args)]
pub struct BalancesArgs {
    #[command(flatten)]
    bank: BankArgs,
    #[command(flatten)]
    output: JsonArgs,
}

/// The arguments of `corridor payments`.
#[derive(Args)]
pub struct PaymentsArgs {
    #[command(flatten)]
    bank: BankArgs,
    #[command(flatten)]
    output: JsonArgs,
}

/// The arguments of `corridor statement`.
#[derive(Args)]
pub struct StatementArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// Account id [default: the settlement account in --currency].
    #[arg(long, default_value = "")]
    account: String,
    /// ISO 4217 code of the settlement account.
    #[arg(long, default_value = "")]
    currency: String,
    #[command(flatten)]
    period: PeriodArgs,
    #[command(flatten)]
    output: JsonArgs,
    /// Print the statement as camt.053.001.08 XML (AppHdr + Document), from the bank to
    /// the hub.
    #[arg(long, conflicts_with = "json")]
    xml: bool,
}

type Client = pb::bank_service_client::BankServiceClient<tonic::transport::Channel>;

pub(super) async fn connect(args: &BankArgs) -> Result<Client> {
    operator_client(&NetworkDir::new(&args.dir), &args.bank).await.map_err(|e| anyhow!(e))
}

/// A refusal of the operator API as an error a user can act on.
pub(super) fn status(s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::Unimplemented => {
            anyhow!("that server does not offer the bank operator API: is --bank the URL of a bank node?")
        }
        code if s.message().is_empty() => anyhow!("{} ({code:?})", code.description()),
        code => anyhow!("{} ({code:?})", s.message()),
    }
}

/// `corridor open-account`.
pub async fn open_account(args: OpenAccountArgs) -> Result<()> {
    let OpenAccountArgs { bank, account, currency, name, deposit } = args;
    let mut client = connect(&bank).await?;
    let request = pb::OpenAccountRequest { account_id: account, currency, name, opening_deposit: deposit };
    let account =
        client.open_account(request).await.map_err(status)?.into_inner().account.unwrap_or_default();
    say!("opened {} with {}", account.id, money(account.balance.as_ref()));
    Ok(())
}

/// `corridor block-account`.
pub async fn block_account(args: BlockAccountArgs) -> Result<()> {
    let BlockAccountArgs { bank, account, unblock } = args;
    let mut client = connect(&bank).await?;
    let request = pb::SetAccountBlockedRequest { account_id: account, blocked: !unblock };
    let account =
        client.set_account_blocked(request).await.map_err(status)?.into_inner().account.unwrap_or_default();
    say!("{} is {}", account.id, if account.blocked { "blocked" } else { "unblocked" });
    Ok(())
}

/// `corridor pay`: prints the UETR.
pub async fn pay(args: PayArgs) -> Result<()> {
    if args.xml.is_some() || args.mt103.is_some() {
        return super::edge::pay_document(args).await;
    }
    let PayArgs {
        bank,
        from,
        to_bank,
        to,
        amount,
        currency,
        name,
        remittance,
        settlement_currency,
        quote,
        ..
    } = args;
    let required = |value: Option<String>| value.expect("clap requires it without a document");
    let to = required(to);
    let mut client = connect(&bank).await?;
    let request = pb::SubmitPaymentRequest {
        debtor_account: required(from),
        creditor_agent_bic: required(to_bank),
        creditor_name: name.unwrap_or_else(|| to.clone()),
        creditor_account: to,
        amount: required(amount),
        currency: required(currency),
        remittance_information: remittance,
        end_to_end_id: String::new(),
        settlement_currency: settlement_currency.unwrap_or_default(),
        quote_id: quote.unwrap_or_default(),
    };
    let payment =
        client.submit_payment(request).await.map_err(status)?.into_inner().payment.unwrap_or_default();
    say!("{}", payment.uetr);
    Ok(())
}

/// `corridor quote`.
pub async fn quote(args: QuoteArgs) -> Result<()> {
    let QuoteArgs { bank, amount, currency, to_currency, output } = args;
    // The amount is decimal text; the request carries minor units.
    let code = Currency::parse(&currency).map_err(|e| anyhow!("--currency: {}", e.rule))?;
    let instructed =
        corridor::model::Amount::parse(&amount, code).map_err(|e| anyhow!("--amount: {}", e.rule))?;
    let mut client = connect(&bank).await?;
    let request = pb::QuoteRequest {
        instructed_amount: Some(wire::money_of_amount(&instructed)),
        settlement_currency: to_currency,
    };
    let q = client.get_quote(request).await.map_err(status)?.into_inner();
    if output.json {
        return json::print(&json::Quote::from(&q));
    }
    say!(
        "{}  {} -> {} at {}, firm until {}",
        q.quote_id,
        money(q.instructed_amount.as_ref()),
        money(q.settlement_amount.as_ref()),
        q.exchange_rate,
        wire::format_unix_ms(q.expires_unix_ms)
    );
    Ok(())
}

/// `corridor return`.
pub async fn return_payment(args: ReturnArgs) -> Result<()> {
    let ReturnArgs { bank, uetr, reason, info } = args;
    let mut client = connect(&bank).await?;
    let request = pb::ReturnPaymentRequest { uetr, reason_code: reason, additional_information: info };
    let response = client.return_payment(request).await.map_err(status)?;
    say!("{}", payment_line(&response.into_inner().payment.unwrap_or_default()));
    Ok(())
}

/// `corridor recall`.
pub async fn recall(args: RecallArgs) -> Result<()> {
    let RecallArgs { bank, uetr, reason, info } = args;
    let mut client = connect(&bank).await?;
    let request = pb::RecallPaymentRequest { uetr, reason_code: reason, additional_information: info };
    let response = client.recall_payment(request).await.map_err(status)?;
    say!("{}", payment_line(&response.into_inner().payment.unwrap_or_default()));
    Ok(())
}

/// `corridor answer-recall`.
pub async fn answer_recall(args: AnswerRecallArgs) -> Result<()> {
    let AnswerRecallArgs { bank, uetr, accept, refuse: _, reason, info } = args;
    let mut client = connect(&bank).await?;
    let request = pb::AnswerRecallRequest {
        uetr,
        accept,
        reason_code: reason.unwrap_or_default(),
        additional_information: info,
    };
    let response = client.answer_recall(request).await.map_err(status)?;
    say!("{}", payment_line(&response.into_inner().payment.unwrap_or_default()));
    Ok(())
}

/// `corridor status`.
pub async fn payment_status(args: StatusArgs) -> Result<()> {
    let StatusArgs { bank, uetr, output } = args;
    let mut client = connect(&bank).await?;
    let response = client.get_payment(pb::GetPaymentRequest { uetr }).await.map_err(status)?;
    let p = response.into_inner().payment.unwrap_or_default();
    if output.json {
        return json::print(&json::Payment::from(&p));
    }
    say!("{}", payment_line(&p));
    Ok(())
}

/// `corridor payments`.
pub async fn payments(args: PaymentsArgs) -> Result<()> {
    let mut client = connect(&args.bank).await?;
    let response = client.list_payments(pb::ListPaymentsRequest {}).await.map_err(status)?.into_inner();
    if args.output.json {
        return json::print(&json::Payments::from(&response));
    }
    for p in &response.payments {
        say!("{}", payment_line(p));
    }
    Ok(())
}

/// `corridor balances`.
pub async fn balances(args: BalancesArgs) -> Result<()> {
    let mut client = connect(&args.bank).await?;
    let response = client.list_accounts(pb::ListAccountsRequest {}).await.map_err(status)?.into_inner();
    if args.output.json {
        return json::print(&json::Balances::from(&response));
    }
    for a in &response.accounts {
        let blocked = if a.blocked { "  (blocked)" } else { "" };
        say!("{:<24} {:>20}{blocked}", a.id, money(a.balance.as_ref()));
    }
    say!("ledger balances: {}", if response.ledger_balanced { "yes" } else { "NO" });
    Ok(())
}

/// `corridor statement`.
pub async fn statement(args: StatementArgs) -> Result<()> {
    let StatementArgs { bank, account, currency, period, output, xml } = args;
    let mut client = connect(&bank).await?;
    let request = pb::GetStatementRequest {
        account_id: account,
        currency,
        from_time_unix_ms: period.from_ms,
        to_time_unix_ms: period.to_ms,
    };
    if xml {
        let statement = client.get_statement_xml(request).await.map_err(status)?.into_inner();
        say!("{}", statement.xml);
        return Ok(());
    }
    let statement = client.get_statement(request).await.map_err(status)?.into_inner();
    if output.json {
        return json::print(&json::Statement::from(&statement));
    }
    say!("{}", statement_text(&statement).trim_end());
    Ok(())
}

fn payment_line(p: &pb::Payment) -> String {
    let status = pb::PaymentStatus::try_from(p.status)
        .map(|s| s.as_str_name().trim_start_matches("PAYMENT_STATUS_").to_owned())
        .unwrap_or_default();
    let direction = if p.direction == pb::PaymentDirection::Incoming as i32 { "from" } else { "to" };
    let reason = if p.reason_code.is_empty() { String::new() } else { format!(" {}", p.reason_code) };
    // A converted payment: the other bank's side and the rate.
    let converted = match &p.counter_amount {
        Some(counter) if !p.exchange_rate.is_empty() => {
            format!(" ({} at {})", money(Some(counter)), p.exchange_rate)
        }
        _ => String::new(),
    };
    let returned = match pb::ReturnState::try_from(p.return_state) {
        Ok(pb::ReturnState::Returning) => format!("  returning {}", p.return_reason_code),
        Ok(pb::ReturnState::Returned) => format!("  returned {}", p.return_reason_code),
        _ => String::new(),
    };
    let recall = match pb::InvestigationStatus::try_from(p.recall_status) {
        Ok(status) if status != pb::InvestigationStatus::Unspecified => format!(
            "  recall {} {} case {}",
            status.as_str_name().trim_start_matches("INVESTIGATION_STATUS_"),
            p.recall_reason_code,
            p.recall_case_id
        ),
        _ => String::new(),
    };
    format!(
        "{}  {status}{reason}  {}{converted} {direction} {}  {}{returned}{recall}  {}",
        p.uetr,
        money(p.amount.as_ref()),
        p.counterparty_bic,
        p.creditor_account,
        p.detail
    )
}
