//! The invoices, as imported from the partner's billing system.

use std::fmt;

/// One invoice. `amount` is the partner's text, such as `120.00`: it was never validated on
/// import, so an export checks it.
#[derive(Debug, Clone)]
pub struct Invoice {
    /// The invoice number, such as `INV-1001`.
    pub id: String,
    /// Who was billed.
    pub customer: String,
    /// The amount as the partner wrote it.
    pub amount: String,
}

impl Invoice {
    /// An invoice as it arrives from the import.
    pub fn new(id: &str, customer: &str, amount: &str) -> Self {
        Self {
            id: id.to_owned(),
            customer: customer.to_owned(),
            amount: amount.to_owned(),
        }
    }

    /// The amount in cents: `120.00` and `120` are 12000; anything else is an error.
    pub fn amount_cents(&self) -> Result<u64, InvalidAmount> {
        let invalid = || InvalidAmount {
            invoice: self.id.clone(),
            amount: self.amount.clone(),
        };
        let (units, cents) = self.amount.split_once('.').unwrap_or((&self.amount, "00"));
        let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if !digits(units) || !digits(cents) || cents.len() != 2 {
            return Err(invalid());
        }
        let units: u64 = units.parse().map_err(|_| invalid())?;
        let cents: u64 = cents.parse().map_err(|_| invalid())?;
        units
            .checked_mul(100)
            .and_then(|total| total.checked_add(cents))
            .ok_or_else(invalid)
    }
}

/// An amount that is not a plain decimal with two places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAmount {
    /// Which invoice.
    pub invoice: String,
    /// The amount as found.
    pub amount: String,
}

impl fmt::Display for InvalidAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invoice {}: amount {:?} is not a decimal like 120.00",
            self.invoice, self.amount
        )
    }
}

impl std::error::Error for InvalidAmount {}

/// Every invoice, in the order they were issued.
#[derive(Debug, Default)]
pub struct Ledger {
    invoices: Vec<Invoice>,
}

impl Ledger {
    /// A ledger holding `invoices`.
    pub fn new(invoices: Vec<Invoice>) -> Self {
        Self { invoices }
    }

    /// The invoices of `customer`, in order.
    pub fn invoices_of<'a>(&'a self, customer: &'a str) -> impl Iterator<Item = &'a Invoice> {
        self.invoices
            .iter()
            .filter(move |invoice| invoice.customer == customer)
    }
}
