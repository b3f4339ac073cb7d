"""Every table of the store, in one MetaData: the demo business and the platform's own."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from dataintel.store.types import UTCDateTime

REGIONS = ("north_america", "europe", "asia_pacific", "latin_america")
TIERS = ("bronze", "silver", "gold", "platinum")
ACQUISITION_CHANNELS = ("organic", "paid_search", "social", "referral", "email")
CATEGORIES = ("electronics", "home", "garden", "books", "toys", "apparel", "beauty", "sports")
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "refunded")
SALES_CHANNELS = ("web", "mobile", "marketplace")
EVENT_TYPES = ("page_view", "sign_up", "add_to_cart", "purchase")
LEDGER_STATUSES = ("booked", "reversed")
CURRENCIES = ("USD",)

# Fixed constraint names, so that migrations name the same objects on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


# --- The demo business -------------------------------------------------------------------

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("acquisition_channel", sa.String(32), nullable=False),
    sa.Column("signed_up_at", UTCDateTime, nullable=False),
    _one_of("region", REGIONS),
    _one_of("tier", TIERS),
    _one_of("acquisition_channel", ACQUISITION_CHANNELS),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("price_cents", sa.BigInteger, nullable=False),
    _one_of("category", CATEGORIES),
    sa.CheckConstraint("price_cents >= 0", name="price_cents_not_negative"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("placed_at", UTCDateTime, nullable=False),
    sa.Column("total_cents", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    _one_of("status", ORDER_STATUSES),
    _one_of("channel", SALES_CHANNELS),
    _one_of("currency", CURRENCIES),
    sa.Index(None, "customer_id"),
    # With id, so that keyset pages over (placed_at, id) read the index in order.
    sa.Index(None, "placed_at", "id"),
    sa.Index(None, "status"),
)

order_items = sa.Table(
    "order_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    sa.CheckConstraint("unit_price_cents >= 0", name="unit_price_cents_not_negative"),
    sa.Index(None, "order_id"),
    sa.Index(None, "product_id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # Null for anonymous visitors, who have no customer record yet.
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=True),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    _one_of("type", EVENT_TYPES),
    _one_of("channel", SALES_CHANNELS),
    sa.Index(None, "occurred_at", "id"),
    sa.Index(None, "customer_id"),
    # A rollup's distinct count of sessions re-reads the rows of the sessions a day touched.
    sa.Index(None, "session_id"),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entry_ref", sa.String(32), nullable=False, unique=True),
    # Deliberately not a foreign key: the ledger is another system's copy, and entries
    # without an order are among the discrepancies that reconciliation must find.
    sa.Column("order_id", sa.Integer, nullable=True),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("booked_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    _one_of("status", LEDGER_STATUSES),
    sa.Index(None, "order_id"),
)

feature_values = sa.Table(
    "feature_values",
    metadata,
    sa.Column("entity_type", sa.String(32), primary_key=True),
    sa.Column("entity_id", sa.String(64), primary_key=True),
    sa.Column("feature_name", sa.String(128), primary_key=True),
    sa.Column("value_double", sa.Float, nullable=True),
    sa.Column("value_text", sa.Text, nullable=True),
    sa.Column("event_timestamp", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# --- The platform ------------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "role_name",
        sa.String(64),
        sa.ForeignKey("roles.name", ondelete="CASCADE"),
        primary_key=True,
    ),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Index(None, "user_id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("target", sa.String(512), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True),
    # JSON kept as text: the hash chain covers these exact characters.
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(128), nullable=True),
    sa.Column("entry_hash", sa.String(128), nullable=False),
    sa.Index(None, "occurred_at"),
    # Without AUTOINCREMENT SQLite may reuse the id of a deleted last row; an audit trail
    # must never hand out an id twice.
    sqlite_autoincrement=True,
)

jobs = sa.Table(
    "jobs",
    metadata,
    # The record of truth of every background job: the queue only moves it, so any replica
    # answers about a job after the queue has forgotten it.
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    # QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED or EXPIRED.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(320), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    # none_as_null: a job without a result holds SQL NULL, not the JSON text 'null'.
    sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    # Which run holds the job: a worker that lost it (its heartbeat went stale and another
    # took over) can no longer write its outcome.
    sa.Column("claim", sa.String(36), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("heartbeat_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("requested_by", "idempotency_key"),
    sa.Index(None, "status", "heartbeat_at"),
    sa.Index(None, "requested_by", "created_at"),
    sa.Index(None, "created_at"),
)

cache_tag_versions = sa.Table(
    "cache_tag_versions",
    metadata,
    # Without Redis, a command's writes reach running servers through this table: each bump
    # takes a serial above every earlier one, and servers poll for serials they have not seen.
    sa.Column("tag", sa.String(512), primary_key=True),
    sa.Column("serial", sa.BigInteger, nullable=False),
    sa.Column("bumped_at", UTCDateTime, nullable=False),
    sa.Index(None, "serial"),
)

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("comparison_id", sa.String(128), nullable=False),
    # OK, DISCREPANCIES or ERROR.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(320), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=False),
    # The report as JSON text (null for an ERROR), and why a run could not be made.
    sa.Column("report", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index(None, "comparison_id", "id"),
)

quality_results = sa.Table(
    "quality_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # Every result of one runQualityChecks (or CLI run) shares its run id.
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("check_id", sa.String(128), nullable=False),
    sa.Column("dataset", sa.String(128), nullable=False),
    # PASS, WARN, FAIL or ERROR.
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    # The result's measurements as JSON text.
    sa.Column("result", sa.Text, nullable=False),
    sa.Index(None, "check_id", "id"),
    sa.Index(None, "run_id"),
)

row_change_counts = sa.Table(
    "row_change_counts",
    metadata,
    # Kept by triggers (migrations 0006 to 0008): rows of a table inserted, deleted or updated
    # (old and new), per UTC day of the row's time ('YYYY-MM-DD'; '*': a table without one).
    # Only ever grows; a rollup partition is current while its counters are those it was
    # built at.
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("changes", sa.BigInteger, nullable=False),
)

analytics_rollup_state = sa.Table(
    "analytics_rollup_state",
    metadata,
    # Per rollup and partition (a UTC day or month): the definition it was built from, the rows it
    # holds, the write counters of the tables it reads then (row_change_counts) and when.
    # The rollup tables themselves are derived data that `dataintel analytics rollups build`
    # creates.
    sa.Column("rollup", sa.String(64), primary_key=True),
    sa.Column("partition", sa.String(10), primary_key=True),
    sa.Column("definition", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("changes", sa.BigInteger, nullable=False),
    sa.Column("built_at", UTCDateTime, nullable=False),
)

ROW_CHANGE_TIMES = {
    "orders": "orders.placed_at",
    "events": "events.occurred_at",
    "order_items": "orders.placed_at",
    "ledger_entries": "ledger_entries.booked_at",
}
"""The time whose UTC day row_change_counts files a table's written rows under (as migration
0008 counts them); the other demo tables count under '*'."""

ALL_PERIODS = "*"
"""The counter period of a row without a time, and of every row of a table without one."""


def counter_period(moment: datetime | None) -> str:
    """The row_change_counts period of a row's time, as the triggers key it: its UTC day."""
    if moment is None:
        return ALL_PERIODS
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


subject_requests = sa.Table(
    "subject_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # ACCESS or ERASURE.
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    # The subject as resolved when the request was received: a customer id, never an email.
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested_by", sa.String(320), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("extended_months", sa.Integer, nullable=False, default=0),
    sa.Column("extension_reason", sa.Text, nullable=True),
    sa.Column("verified_at", UTCDateTime, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("denial_reason", sa.Text, nullable=True),
    sa.Column("job_id", sa.String(64), nullable=True),
    # The outcome as JSON text: counts per dataset, the access package's manifest.
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index(None, "status"),
    sa.Index(None, "customer_id"),
    # A request id is named in the audit log: it must never be handed out twice.
    sqlite_autoincrement=True,
)

export_suppressions = sa.Table(
    "export_suppressions",
    metadata,
    # Subjects whose data was erased: exports leave out every row linked to them
    # (PrivacyMap.suppressed), whatever a later materialization or copy brings back.
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("subject_request_id", sa.Integer, nullable=False),
    sa.Column("suppressed_at", UTCDateTime, nullable=False),
)

DEMO_TABLES = (customers, products, orders, order_items, events, ledger_entries, feature_values)
"""The tables the seed owns, parents before children."""
