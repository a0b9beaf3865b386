"""Electronic receipts (医疗收费电子票据 on the provincial 财政电子票据 platform):
issued when an order is paid, voided (冲红) on a full refund, voided and issued again
for what is kept after a partial refund. ``base`` is the platform interface,
``sandbox`` its offline stand-in, ``services`` the lifecycle (ADR 0044)."""
