"""Synthetic scenarios with ground truth: ordinary life, confounders and planted fraud.

``generate(accounts=2000, days=2, seed=7, start="2026-11-01T00:00:00Z")`` is deterministic
by seed (one ``random.Random(seed)``, no clock reading): the same arguments give
byte-identical files. ``Scenario.write(out_dir)`` (and ``fraudlocal generate``) writes:

``transactions.jsonl``
    One canonical transaction per line (the fields of ``fraudcore.model.Transaction``,
    absent ones left out), sorted by event time: ``transaction_id``, ``timestamp``
    (ISO 8601 UTC with milliseconds, ``2026-11-01T08:15:30.123Z``), ``account_id``,
    ``amount``, ``currency`` (USD), ``merchant_id``, ``card_id``, ``device_id``, ``ip``,
    ``email``, ``phone``, ``counterparty_account_id`` (transfers only), ``channel``
    (``card_present``, ``card_not_present``, ``mobile``, ``transfer``), ``country``.

``labels.jsonl``
    One object per labelled account, sorted by account id; accounts not listed are
    ordinary::

        {"account_id": "acc-000123", "label": "fraud", "pattern": "fraud_ring", "ring_id": "ring-002",
         "role": "burster", "variant": null}

    ``label`` is ``fraud`` or ``confounder``. Fraud patterns: ``fraud_ring``,
    ``card_testing``, ``account_takeover``, ``mule_chain``, ``device_farm``. Confounder
    patterns (benign, but fraud-like to a naive detector): ``household``, ``public_ip``,
    ``office_device``, ``big_spender``, ``traveller``, ``shared_card_family``,
    ``large_transfer``, ``carrier_nat``. ``ring_id`` names the planted group
    (``ring-001``, ``mule-001``, ``household-017``, ``public-ip-002``,
    ``family-card-003``, ``large-transfer-001``, ``carrier-nat-001``...); it is null for
    confounders who act alone (big spenders, travellers). Every account has at most one
    label. ``role`` says what the account did in its group (``burster``, ``member``,
    ``collector``, ``source``, ``cash_out``, ``forwarder``, ``victim``, ``beneficiary``,
    ``tester``, ``farm_account``, ``household_member``...); ``variant`` names the form its
    group took in a wide world (null in classic ones). :func:`load_labels` reads this file
    (and labels from other sources, whose ``pattern`` may be any text and which may lack
    ``role`` and ``variant``).

``scenario.json``
    The parameters, :meth:`Scenario.summary` (counts per pattern) and every planted group
    with its members, shared identifiers, roles and key facts (burst times and sums).

``generate(..., variety="wide")`` (``fraudlocal generate --variety wide``) plants the same
patterns with every parameter drawn from wide ranges per seed, in variants, with harder
confounders (see :mod:`.wide`); ``bench/quality.py`` measures detection on such worlds.
The classic variety, the default, is described below.

What is planted (at 2,000 accounts, where 3-5% of accounts are fraudulent; counts scale
with the number of accounts, at least one group of each pattern, at least 500 accounts):

- ``fraud_ring`` (5): 4-8 accounts sharing a mix of devices, cards, emails and phones; one
  or two members spend more than 50,000 within 5 minutes; transfers among members.
- ``card_testing`` (2): one card, 8-20 amounts under 5 at several merchants within a few
  minutes, then one large purchase (the card shared by 1-2 accounts).
- ``account_takeover`` (2): an active ordinary account (its history stays) gets a new device
  and IP, sometimes abroad, a small probe, then more than 50,000 within 5 minutes.
- ``mule_chain`` (2): 4-6 feeders transfer to a mule, which forwards more than 50,000 within
  5 minutes to 2-3 branches of 2-3 hops each, amounts slightly decreasing at each hop; the
  end of each branch spends most of it (cash-out).
- ``device_farm`` (1): 14-30 new accounts within one hour on 1-3 devices (10 or more on the
  main one), a few purchases each.
- confounders: 50 households (2-3 accounts sharing a home IP and a device), 2 public IPs
  (120-200 accounts each, dozens of them within one rush hour: a confounder for
  ``ip_account_burst``), 2 office devices (3-6 colleagues each),
  10 big spenders and 14 travellers (a new country at most every 12 hours, with hours of
  travel between).
- harder confounders, built to resemble the evidence of rings and mules:
  8 ``shared_card_family`` groups (2-3 people of one household on one card, usually with a
  shared email or phone as well, plus a home IP and a family computer: the card, email and
  phone are each used by two or more accounts within hours, as in a ring); 6
  ``large_transfer`` pairs (one legitimate transfer of 8,000-40,000, a deposit or a car
  bought from a friend, which the receiver keeps: no onward movement; ``ring_id`` names the
  pair, roles ``sender`` and ``receiver``); 1 ``carrier_nat`` (40-80 mobile subscribers
  whose phones go out through one carrier IP).

One big spender per 2,000 accounts once spends more than 50,000 within 5 minutes (a car, in
two or three payments): a deliberate confounder for the ``high_value_burst`` rule. No
other unlabelled or confounder account reaches that sum. Planted bursts sit inside one
epoch-aligned window (see :mod:`.bursts`), so binned and sliding rules see them alike.
"""

from .generator import (
    DEFAULT_ACCOUNTS,
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_START,
    LABELS_FILE,
    MIN_ACCOUNTS,
    SCENARIO_FILE,
    TRANSACTIONS_FILE,
    VARIETIES,
    Scenario,
    generate,
    group_counts,
)
from .labels import (
    CONFOUNDER,
    CONFOUNDER_PATTERNS,
    FRAUD,
    FRAUD_PATTERNS,
    PATTERNS,
    Label,
    LabelsError,
    load_labels,
    parse_labels,
)
from .world import PlantedGroup

__all__ = [
    "CONFOUNDER",
    "CONFOUNDER_PATTERNS",
    "DEFAULT_ACCOUNTS",
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "DEFAULT_START",
    "FRAUD",
    "FRAUD_PATTERNS",
    "LABELS_FILE",
    "MIN_ACCOUNTS",
    "PATTERNS",
    "SCENARIO_FILE",
    "TRANSACTIONS_FILE",
    "VARIETIES",
    "Label",
    "LabelsError",
    "PlantedGroup",
    "Scenario",
    "generate",
    "group_counts",
    "load_labels",
    "parse_labels",
]
