"""Word lists and sentence templates for the sample world's names and notes."""

from __future__ import annotations

NAME_FIRST: tuple[str, ...] = (
    "Acme",
    "Blue",
    "Cedar",
    "Summit",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Keystone",
    "Lakeside",
    "Maple",
    "North",
    "Oak",
    "Pioneer",
    "Quarry",
    "Redwood",
    "Silver",
    "Tri-County",
    "Union",
    "Valley",
    "Westfield",
    "Atlas",
    "Beacon",
    "Crescent",
    "Delta",
    "Evergreen",
    "Frontier",
    "Golden",
    "Highland",
    "Pacific",
)
NAME_SECOND: tuple[str, ...] = (
    "Logistics",
    "Foods",
    "Machining",
    "Health",
    "Builders",
    "Electric",
    "Packaging",
    "Dental",
    "Software",
    "Textiles",
    "Plastics",
    "Farms",
    "Motors",
    "Print",
    "Labs",
    "Hardware",
    "Supply",
    "Analytics",
    "Freight",
    "Marine",
    "Retail",
    "Controls",
    "Chemicals",
    "Interiors",
)
NAME_SUFFIX: tuple[str, ...] = ("Inc", "LLC", "Co", "Group", "Partners", "Ltd", "Corp", "Holdings")

INDUSTRIES: tuple[str, ...] = (
    "Manufacturing",
    "Wholesale",
    "Construction",
    "Healthcare",
    "Retail",
    "Technology",
    "Transportation",
    "Hospitality",
    "Professional services",
    "Agriculture",
)
COLLECTORS: tuple[str, ...] = ("Dana Whitfield", "Marcus Lee", "Priya Raman", "Tom Okafor", "Elena Garcia")
US_REGIONS: tuple[str, ...] = ("Northeast", "Midwest", "South", "West")
PAYMENT_METHODS: tuple[str, ...] = ("ach", "wire", "check", "card")

NOTE_POSITIVE: tuple[str, ...] = (
    "Thanks for the quick turnaround on the invoice copy, payment is scheduled.",
    "AP confirmed they pay everything in the next run, no issues on their side.",
    "Great relationship, customer asked about early-payment options.",
    "Customer praised the new portal, says it makes paying easier.",
    "Payment already approved by their controller, happy with the service.",
    "Customer set up automatic ACH for all future invoices.",
)
NOTE_NEUTRAL: tuple[str, ...] = (
    "Updated the billing contact email address.",
    "Customer asked for a W-9 copy; sent.",
    "Requested remittance details for the last payment.",
    "Customer asked to add their PO reference to future invoices.",
    "Quarterly account review held, volumes expected to stay flat.",
    "Sent statement of account as requested.",
    "Customer moved offices; updated the mailing address.",
    "Asked whether invoices can be emailed to a shared AP inbox.",
)
NOTE_DISTRESS: tuple[str, ...] = (
    "Customer said cash flow is tight this quarter.",
    "They are waiting on their own customer to pay before releasing funds.",
    "AP asked whether we can split the balance into instalments.",
    "Controller mentioned a delay in their bank line renewal.",
    "Customer asked to push payment to next month, cash is short.",
    "They said payments are on hold until their financing closes.",
    "Customer mentioned layoffs and a freeze on outgoing payments.",
)
NOTE_DISPUTE: tuple[str, ...] = (
    "Customer says the invoice quantity is wrong.",
    "PO missing on the invoice, AP will not process it without one.",
    "Customer disputes the unit price versus the quote.",
    "Complaint about product quality, they want a credit before paying.",
    "Customer believes they were billed twice for the same order.",
)
DISPUTE_NOTE_BY_CATEGORY: dict[str, str] = {
    "pricing": "Dispute opened: customer says the price billed does not match the agreed quote.",
    "quantity": "Dispute opened: the invoice quantity is wrong, fewer units were received.",
    "quality": "Dispute opened: goods arrived damaged, customer wants a credit for the quality issue.",
    "missing PO": "Dispute opened: PO missing on the invoice, AP cannot match it.",
    "duplicate billing": "Dispute opened: customer says this is a duplicate of an invoice already billed.",
}
CHANGE_NOTE: dict[str, str] = {
    "new_cfo": "A new CFO started this month and is reorganising the AP process; payments should be more regular.",
    "cash_squeeze": "Customer warned that cash flow is tight after losing a major client; expect slower payments.",
}
